package admin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdtest"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/config"
)

// pepperEnv returns the environment of a pepper with id and a key of
// bytes b, and its pepper.
func pepperEnv(id string, b byte) (map[string]string, apikey.Pepper) {
	p := apikey.Pepper{ID: id, Key: bytes.Repeat([]byte{b}, 32)}
	return map[string]string{"KEYGATE_PEPPER": id + ":" + base64.StdEncoding.EncodeToString(p.Key)}, p
}

// verify verifies token with a Manager over e's database holding peppers,
// as the service would.
func verify(t *testing.T, e cmdtest.Engine, token string, peppers ...apikey.Pepper) (*keygate.Key, error) {
	t.Helper()
	ctx := context.Background()
	st, err := config.Open(ctx, config.StorageOptions{DB: e.DB, TablePrefix: e.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := apikey.NewHasher(peppers[0], peppers[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := keygate.New(keygate.Config{Store: st.Store, Hasher: h, Logger: slog.New(slog.DiscardHandler), CacheTTL: -1, LastUsedInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	return m.Verify(ctx, token)
}

// TestBootstrap mints break-glass keys on every engine: refused off a
// terminal without --yes, before migration and with another pepper than
// the stored keys'; the token printed once, verifying as a super admin's,
// and the audit event and the key saying who made it.
func TestBootstrap(t *testing.T) {
	t.Parallel()
	for _, e := range cmdtest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			env, pepper := pepperEnv("ci", 1)
			run := func(inv cmdtest.Invocation, args ...string) cmdtest.Result {
				t.Helper()
				if inv.Env == nil {
					inv.Env = env
				}
				r := cmdtest.Run(t, inv, append(append([]string{"admin", "bootstrap"}, e.Args()...), args...)...)
				if strings.Contains(r.Stderr, "kg_") && strings.Contains(r.Stderr, "Reveal") {
					t.Errorf("stderr: %s", r.Stderr)
				}
				return r
			}
			run(cmdtest.Invocation{}, "--yes").Want(t, cmdutil.ExitUnavailable, "has keygate migrate run on it?")
			cmdtest.Run(t, cmdtest.Invocation{}, append([]string{"migrate"}, e.Args()...)...).Want(t, 0)

			run(cmdtest.Invocation{}).Want(t, cmdutil.ExitUsage, "give --yes")
			run(cmdtest.Invocation{InTTY: true, Stdin: "no\n"}).Want(t, cmdutil.ExitRefused, "Mint super-admin key break-glass-admin-", "not confirmed")
			r := run(cmdtest.Invocation{InTTY: true, Stdin: "y\n"}, "--reason", "INC-1234", "--name", "glass")
			r.Want(t, 0, "Pepper: id ci, from $KEYGATE_PEPPER", "msg=\"keygate audit\" event.type=key.created", "event.actor=break-glass:",
				"Break-glass key glass", "shown this once")
			token := strings.TrimSuffix(r.Out, "\n")
			if strings.Contains(r.Stderr, token) {
				t.Error("the token reached stderr")
			}
			k, err := verify(t, e, token, pepper)
			if err != nil {
				t.Fatalf("the break-glass token does not verify: %v", err)
			}
			rec := k.Key
			if !k.Principal().SuperAdmin || rec.Name != "glass" || !strings.HasPrefix(rec.Owner, "break-glass:") ||
				rec.Metadata["reason"] != "INC-1234" || rec.Metadata["break_glass_by"] == "" || !strings.Contains(rec.Description, "Break-glass") {
				t.Errorf("the key: %+v", rec)
			}
			if life := time.Until(rec.ExpiresAt); life < 23*time.Hour || life > 25*time.Hour {
				t.Errorf("expires in %v, want a day", life)
			}

			// -o json, and --admin-token-file.
			var out struct {
				ID        string    `json:"id"`
				Name      string    `json:"name"`
				Hint      string    `json:"hint"`
				Role      string    `json:"role"`
				ExpiresAt time.Time `json:"expires_at"`
				PepperID  string    `json:"pepper_id"`
				Actor     string    `json:"actor"`
				Token     string    `json:"token"`
			}
			run(cmdtest.Invocation{}, "--yes", "-o", "json", "--name", "glass2", "--expiry", "never").Decode(t, &out)
			if out.Token == "" || out.Role != "admin" || out.PepperID != "ci" || !strings.HasPrefix(out.Actor, "break-glass:") || !out.ExpiresAt.IsZero() {
				t.Errorf("-o json: %+v", out)
			}
			path := filepath.Join(t.TempDir(), "admin.token")
			r = run(cmdtest.Invocation{}, "--yes", "--admin-token-file", path, "--name", "glass3")
			r.Want(t, 0)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode())
			}
			if tok := strings.TrimSpace(string(data)); strings.Contains(r.Out+r.Stderr, tok) || !strings.Contains(r.Out, path) {
				t.Errorf("--admin-token-file: the token printed, or the file not named: %s", r.Out)
			}

			// Another pepper than the stored keys' is refused, unless told.
			other, otherPepper := pepperEnv("other", 2)
			run(cmdtest.Invocation{Env: other}, "--yes").Want(t, cmdutil.ExitRefused, "no stored key uses pepper id other")
			r = run(cmdtest.Invocation{Env: other}, "--yes", "--allow-new-pepper", "--name", "glass4")
			r.Want(t, 0, "warning: keys use pepper ids this configuration lacks, and cannot verify with it: ci (3)")
			if _, err := verify(t, e, strings.TrimSpace(r.Out), otherPepper); err != nil {
				t.Errorf("the key made with the new pepper: %v", err)
			}
			run(cmdtest.Invocation{}, "--yes", "--name", "glass").Want(t, cmdutil.ExitRefused, "name already used")
			run(cmdtest.Invocation{}, "--yes", "--expiry", "soon").Want(t, cmdutil.ExitUsage, "--expiry")
		})
	}
}

// TestBootstrapUsage: without a database or a pepper, nothing is done.
func TestBootstrapUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env, _ := pepperEnv("ci", 1)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		code int
		says string
	}{
		{env, []string{"--db", "host=db user=x"}, cmdutil.ExitUsage, "key=value DSN"},
		{nil, []string{"--db", filepath.Join(dir, "keys.db")}, cmdutil.ExitUsage, "pepper"},
		{nil, []string{"--db", "postgres://keygate@127.0.0.1:1/keys"}, cmdutil.ExitUnavailable, "database postgres://keygate@127.0.0.1:1/keys"},
		{map[string]string{"KEYGATE_PEPPER": "short"}, []string{"--db", filepath.Join(dir, "keys.db")}, cmdutil.ExitUsage, "pepper"},
	} {
		cmdtest.Run(t, cmdtest.Invocation{Env: tc.env}, append([]string{"admin", "bootstrap", "--yes"}, tc.args...)...).Want(t, tc.code, tc.says)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys.db.pepper")); err == nil {
		t.Error("bootstrap generated a pepper")
	}
	cmdtest.Run(t, cmdtest.Invocation{}, "admin").Want(t, cmdutil.ExitUsage, "admin needs a command")
}

// TestBootstrapBesideSHA256Keys: keys imported by their SHA-256 alone are
// stored under "sha256:<pepper id>" (the digest HMAC'd under that pepper),
// which counts as the pepper itself: they do not make the configured
// pepper look foreign.
func TestBootstrapBesideSHA256Keys(t *testing.T) {
	t.Parallel()
	e := cmdtest.Engines(t)[0]
	env, pepper := pepperEnv("ci", 1)
	cmdtest.Run(t, cmdtest.Invocation{}, append([]string{"migrate"}, e.Args()...)...).Want(t, 0)
	st, err := config.Open(context.Background(), config.StorageOptions{DB: e.DB, TablePrefix: e.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := apikey.NewHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	m, err := keygate.New(keygate.Config{Store: st.Store, Hasher: h, Logger: slog.New(slog.DiscardHandler), ImportedSHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	res, err := m.Import(context.Background(), keygate.System(), []keygate.ImportRequest{{CreateRequest: keygate.CreateRequest{
		Name: "legacy", Scopes: []string{"x:read"}, Expiry: keygate.NeverExpire()}, SHA256: strings.Repeat("ab", 32)}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("import: %v %v", err, res)
	}
	cmdtest.Run(t, cmdtest.Invocation{Env: env}, append([]string{"admin", "bootstrap", "--yes"}, e.Args()...)...).Want(t, 0, "Stored keys use pepper id(s): sha256:ci (1)")
}

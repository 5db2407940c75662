package pepper_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdtest"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/config"
)

// pepperA and pepperB are two peppers, and their lines.
var (
	pepperA = apikey.Pepper{ID: "a", Key: bytes.Repeat([]byte{1}, 32)}
	pepperB = apikey.Pepper{ID: "b", Key: bytes.Repeat([]byte{2}, 32)}
)

func line(p apikey.Pepper) string { return p.ID + ":" + base64.StdEncoding.EncodeToString(p.Key) }

// manager returns a Manager over e's database with peppers, as a service
// configured with them.
func manager(t *testing.T, e cmdtest.Engine, peppers ...apikey.Pepper) *keygate.Manager {
	t.Helper()
	st, err := config.Open(context.Background(), config.StorageOptions{DB: e.DB, TablePrefix: e.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	h, err := apikey.NewHasher(peppers[0], peppers[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := keygate.New(keygate.Config{Store: st.Store, Hasher: h, Logger: slog.New(slog.DiscardHandler), CacheTTL: -1, LastUsedInterval: -1,
		ImportedSHA256: true, ImportedTokens: func(tok string) bool { return strings.HasPrefix(tok, "sk_live_") }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// status is what pepper status -o json prints.
type status struct {
	Database string   `json:"database"`
	Source   string   `json:"source"`
	Current  string   `json:"current"`
	Older    []string `json:"older"`
	Peppers  []struct {
		ID         string `json:"id"`
		Keys       int64  `json:"keys"`
		Configured string `json:"configured"`
		Held       bool   `json:"held"`
	} `json:"peppers"`
	Missing map[string]int64 `json:"missing"`
}

// summary returns s's peppers as "id:keys:configured:held" words.
func (s status) summary() string {
	var out []string
	for _, p := range s.Peppers {
		held := "held"
		if !p.Held {
			held = "missing"
		}
		out = append(out, fmt.Sprintf("%s:%d:%s:%s", p.ID, p.Keys, p.Configured, held))
	}
	return strings.Join(out, " ")
}

// TestStatusThroughARotation follows a rotation from pepper a to b on
// every engine, as pepper status shows it: the keys move to b as they are
// used, a is missing when dropped too early, and rows imported by SHA-256
// need --import-sha256.
func TestStatusThroughARotation(t *testing.T) {
	t.Parallel()
	for _, e := range cmdtest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			status := func(env map[string]string, code int, args ...string) status {
				t.Helper()
				r := cmdtest.Run(t, cmdtest.Invocation{Env: env}, append(append([]string{"pepper", "status", "-o", "json"}, e.Args()...), args...)...)
				r.Want(t, code)
				var s status
				r.Decode(t, &s)
				for _, p := range []apikey.Pepper{pepperA, pepperB} {
					if strings.Contains(r.Out+r.Stderr, base64.StdEncoding.EncodeToString(p.Key)) {
						t.Error("a pepper was printed")
					}
				}
				return s
			}
			onlyA := map[string]string{"KEYGATE_PEPPER": line(pepperA)}
			cmdtest.Run(t, cmdtest.Invocation{Env: onlyA}, append([]string{"pepper", "status"}, e.Args()...)...).
				Want(t, cmdutil.ExitUnavailable, "has keygate migrate run on it?")
			cmdtest.Run(t, cmdtest.Invocation{}, append([]string{"migrate"}, e.Args()...)...).Want(t, 0)

			m := manager(t, e, pepperA)
			ctx := context.Background()
			var tokens []string
			for _, name := range []string{"k1", "k2"} {
				c, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: name, Scopes: []string{"x:read"}, Expiry: keygate.NeverExpire()})
				if err != nil {
					t.Fatal(err)
				}
				tokens = append(tokens, c.Token.Reveal())
			}
			sum := sha256.Sum256([]byte("sk_live_0123456789abcdefghij"))
			if res, err := m.Import(ctx, keygate.System(), []keygate.ImportRequest{{CreateRequest: keygate.CreateRequest{Name: "legacy", Scopes: []string{"x:read"},
				Expiry: keygate.NeverExpire()}, SHA256: hex.EncodeToString(sum[:])}}); err != nil || res[0].Err != nil {
				t.Fatalf("import: %v %v", err, res)
			}

			s := status(onlyA, cmdutil.ExitRefused)
			if got := s.summary(); got != "a:2:current:held sha256:a:1::missing" || s.Current != "a" || len(s.Older) != 0 || s.Missing["sha256:a"] != 1 ||
				s.Source != "$KEYGATE_PEPPER" || !strings.HasPrefix(s.Database, e.Name+" ") {
				t.Errorf("a alone: %s %+v", got, s)
			}
			s = status(map[string]string{"KEYGATE_PEPPER": line(pepperA), "KEYGATE_IMPORT_SHA256": "true"}, 0)
			if got := s.summary(); got != "a:2:current:held sha256:a:1::held" || len(s.Missing) != 0 {
				t.Errorf("--import-sha256: %s", got)
			}

			// Step 2: b as an older pepper. Step 3: b current, a older.
			s = status(map[string]string{"KEYGATE_PEPPER": line(pepperA), "KEYGATE_PEPPER_OLD": line(pepperB)}, 0, "--import-sha256")
			if got := s.summary(); got != "a:2:current:held b:0:older:held sha256:a:1::held" {
				t.Errorf("b older: %s", got)
			}
			rotated := map[string]string{"KEYGATE_PEPPER": line(pepperB), "KEYGATE_PEPPER_OLD": line(pepperA)}
			s = status(rotated, 0, "--import-sha256")
			if got := s.summary(); got != "b:0:current:held a:2:older:held sha256:a:1::held" || s.Current != "b" || s.Older[0] != "a" {
				t.Errorf("b current: %s", got)
			}
			r := cmdtest.Run(t, cmdtest.Invocation{Env: rotated}, append([]string{"pepper", "status", "--import-sha256"}, e.Args()...)...)
			r.Want(t, 0)
			if !strings.Contains(r.Out, "its keys move to b on their next use") {
				t.Errorf("table:\n%s", r.Out)
			}
			// A key used under the rotated service moves to b.
			if _, err := manager(t, e, pepperB, pepperA).Verify(ctx, tokens[0]); err != nil {
				t.Fatal(err)
			}
			s = status(rotated, 0, "--import-sha256")
			if got := s.summary(); got != "b:1:current:held a:1:older:held sha256:a:1::held" {
				t.Errorf("after a use: %s", got)
			}
			// Dropping a too early: k2 cannot verify.
			r = cmdtest.Run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_PEPPER": line(pepperB)}}, append([]string{"pepper", "status", "--import-sha256"}, e.Args()...)...)
			r.Want(t, cmdutil.ExitRefused, `pepper id "a": 1 key(s)`)
			if !strings.Contains(r.Out, "MISSING") {
				t.Errorf("table:\n%s", r.Out)
			}
			if _, err := manager(t, e, pepperB, pepperA).Verify(ctx, tokens[1]); err != nil {
				t.Fatal(err)
			}
			r = cmdtest.Run(t, cmdtest.Invocation{Env: rotated}, append([]string{"pepper", "status", "--import-sha256"}, e.Args()...)...)
			r.Want(t, 0)
			if !strings.Contains(r.Out, "no key needs it: it may be removed") {
				t.Errorf("table:\n%s", r.Out)
			}
		})
	}
}

// TestRotate prints the steps for where the peppers come from.
func TestRotate(t *testing.T) {
	t.Parallel()
	e := cmdtest.Engines(t)[0]
	cmdtest.Run(t, cmdtest.Invocation{}, append([]string{"migrate"}, e.Args()...)...).Want(t, 0)
	m := manager(t, e, pepperA)
	if _, err := m.Create(context.Background(), keygate.System(), keygate.CreateRequest{Name: "k", Scopes: []string{"x:read"}, Expiry: keygate.NeverExpire()}); err != nil {
		t.Fatal(err)
	}
	r := cmdtest.Run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_PEPPER": line(pepperA)}}, append([]string{"pepper", "rotate"}, e.Args()...)...)
	r.Want(t, 0)
	for _, want := range []string{"Peppers from $KEYGATE_PEPPER: current a.", "KEYGATE_PEPPER_OLD=NEW_ID:BASE64", "KEYGATE_PEPPER_OLD=a:BASE64", "remove a from every"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("rotate lacks %q:\n%s", want, r.Out)
		}
	}
	file := filepath.Join(t.TempDir(), "peppers")
	if err := os.WriteFile(file, []byte(line(pepperB)+"\n"+line(pepperA)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = cmdtest.Run(t, cmdtest.Invocation{}, append([]string{"pepper", "rotate", "--pepper-file", file}, e.Args()...)...)
	r.Want(t, 0)
	for _, want := range []string{"current b, older a.", "A rotation is under way: keys still use a (1 keys)", "a line after the first of\n      " + file} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("rotate lacks %q:\n%s", want, r.Out)
		}
	}
	if strings.Contains(r.Out, base64.StdEncoding.EncodeToString(pepperA.Key)) {
		t.Error("a pepper was printed")
	}
	cmdtest.Run(t, cmdtest.Invocation{}, "pepper").Want(t, cmdutil.ExitUsage, "pepper needs a command")
}

package serve

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/config"

	"github.com/keygate/keygate/cmd/keygate/internal/testenv"
)

// pepperEnv returns $KEYGATE_PEPPER for a new random pepper with id.
func pepperEnv(id string) string {
	key := make([]byte, 32)
	rand.Read(key)
	return id + ":" + base64Std(key)
}

// TestMissingPepperRefusesStart: a first start under a throw-away pepper
// makes the bootstrap admin under it; a later start with another pepper
// refuses, naming the missing pepper id and its key count and the ways
// out, instead of starting with every key unusable and no word of it.
// --allow-missing-peppers starts anyway, loudly; giving the old pepper
// as an older one starts normally.
func TestMissingPepperRefusesStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, tokenFile := filepath.Join(dir, "keys.db"), filepath.Join(dir, "admin.token")
	first := pepperEnv("throwaway")
	in := start(t, map[string]string{"KEYGATE_PEPPER": first}, "--db", db, "--admin-token-file", tokenFile)
	admin := readToken(t, tokenFile)
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}

	real := pepperEnv("real")
	var log testenv.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a start that is not refused serves until then
	defer cancel()
	err := run(ctx, []string{"--addr", "127.0.0.1:0", "--db", db}, func(k string) string {
		return map[string]string{"KEYGATE_PEPPER": real}[k]
	}, &log, nil)
	var missing *config.MissingPeppersError
	if !errors.As(err, &missing) || missing.Missing["throwaway"] != 1 {
		t.Fatalf("start with another pepper: %v, want a MissingPeppersError for 1 key under \"throwaway\"", err)
	}
	for _, want := range []string{`pepper id "throwaway": 1 key(s)`, "KEYGATE_PEPPER_OLD", "keygate admin bootstrap", "--allow-missing-peppers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q:\n%v", want, err)
		}
	}
	if cmdutil.ExitCode(err) != cmdutil.ExitRefused {
		t.Errorf("exit code %d, want %d", cmdutil.ExitCode(err), cmdutil.ExitRefused)
	}

	anyway := start(t, map[string]string{"KEYGATE_PEPPER": real}, "--db", db, "--allow-missing-peppers")
	if !strings.Contains(anyway.stderr.String(), "--allow-missing-peppers") || !strings.Contains(anyway.stderr.String(), "throwaway") {
		t.Errorf("--allow-missing-peppers started without saying which keys cannot verify:\n%s", anyway.stderr)
	}
	if status, _ := call(t, "GET", anyway.url+"/v1/keys", admin, ""); status != 401 {
		t.Errorf("the admin key under the missing pepper got %d, want 401", status)
	}
	anyway.stop()

	both := start(t, map[string]string{"KEYGATE_PEPPER": real, "KEYGATE_PEPPER_OLD": first}, "--db", db)
	if status, body := call(t, "GET", both.url+"/v1/keys", admin, ""); status != 200 {
		t.Errorf("with the old pepper given as older, the admin key got %d %s, want 200", status, body)
	}
}

// TestStartupRefusalsWriteNothing: a bad --addr, a busy one, or a --db
// that is a DSN or a URL with a typo is refused before any file or table
// is made (the SQLite file of a silently misread --db, the bootstrap key
// of a service that then cannot listen).
func TestStartupRefusalsWriteNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "keys.db")
	busy := start(t, nil, "--db", filepath.Join(t.TempDir(), "other.db"))
	busyAddr := strings.TrimPrefix(busy.url, "http://")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--addr", "18120", "--db", db}, cmdutil.ExitUsage, "want host:port"},
		{[]string{"--addr", busyAddr, "--db", db}, cmdutil.ExitUnavailable, "address already in use"},
		{[]string{"--addr", "127.0.0.1:0", "--metrics-addr", busyAddr, "--db", db}, cmdutil.ExitUnavailable, "address already in use"},
		{[]string{"--addr", "127.0.0.1:0", "--db", "host=127.0.0.1 user=postgres dbname=kg"}, cmdutil.ExitUsage, "key=value DSN"},
		{[]string{"--addr", "127.0.0.1:0", "--db", "postgres//oops"}, cmdutil.ExitUsage, "typo"},
		{[]string{"--addr", "127.0.0.1:0", "--db", "redis://127.0.0.1:6379"}, cmdutil.ExitUsage, "not supported"},
		{[]string{"--addr", "127.0.0.1:0", "--db", db, "--redis", "127.0.0.1:6379"}, cmdutil.ExitUsage, "want a redis://"},
		{[]string{"--addr", "127.0.0.1:0", "--db", db, "--cache-ttl", "soon"}, cmdutil.ExitUsage, "invalid argument"},
	} {
		var log testenv.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a start that is not refused serves until then
		err := run(ctx, c.args, nil, &log, nil)
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error saying %q", c.args, err, c.want)
		}
		if code := exitCodeOf(err); code != c.code {
			t.Errorf("%q: exit code %d, want %d", c.args, code, c.code)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("refused starts left %d file(s) behind, such as %s", len(entries), entries[0].Name())
	}
	cwd, _ := os.Getwd()
	for _, name := range []string{"host=127.0.0.1 user=postgres dbname=kg", "postgres//oops"} {
		if _, err := os.Stat(filepath.Join(cwd, name)); err == nil {
			t.Errorf("a SQLite file %q was made", name)
		}
	}
}

// TestEnvironment: every flag reads its KEYGATE_* variable; the command
// line wins over it; a bad value names the variable.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{
		"KEYGATE_DB":               filepath.Join(dir, "env.db"),
		"KEYGATE_PREFIX":           "acme_env",
		"KEYGATE_ADMIN_TOKEN_FILE": filepath.Join(dir, "admin.token"),
		"KEYGATE_IMPORT_PREFIX":    "sk_live_,rk_live_",
	}
	in := start(t, env)
	if admin := readToken(t, env["KEYGATE_ADMIN_TOKEN_FILE"]); !strings.HasPrefix(admin, "acme_env_") {
		t.Errorf("KEYGATE_PREFIX was not applied: token %s…", admin[:9])
	}
	if _, err := os.Stat(env["KEYGATE_DB"]); err != nil {
		t.Errorf("KEYGATE_DB was not applied: %v", err)
	}
	in.stop()
	over := start(t, env, "--prefix", "acme_flag", "--db", filepath.Join(dir, "flag.db"), "--admin-token-file", filepath.Join(dir, "flag.token"))
	if admin := readToken(t, filepath.Join(dir, "flag.token")); !strings.HasPrefix(admin, "acme_flag_") {
		t.Errorf("the flag did not win over KEYGATE_PREFIX: token %s…", admin[:10])
	}
	over.stop()
	var log testenv.Buffer
	err := run(context.Background(), []string{"--addr", "127.0.0.1:0"}, func(k string) string {
		return map[string]string{"KEYGATE_FAILURE_LIMIT": "lots", "KEYGATE_DB": filepath.Join(dir, "x.db")}[k]
	}, &log, nil)
	if err == nil || !strings.Contains(err.Error(), "$KEYGATE_FAILURE_LIMIT") || exitCodeOf(err) != cmdutil.ExitUsage {
		t.Errorf("a bad KEYGATE_FAILURE_LIMIT: %v, want a usage error naming it", err)
	}
}

// exitCodeOf is the exit code keygate would end with for err: usage
// errors of cobra's flag parsing included.
func exitCodeOf(err error) int {
	if err != nil && strings.Contains(err.Error(), "invalid argument") {
		return cmdutil.ExitUsage // root's SetFlagErrorFunc makes it so
	}
	return cmdutil.ExitCode(err)
}

// TestTrustedProxy: behind a load balancer given with --trusted-proxy,
// the failure throttle counts each client by its X-Forwarded-For address;
// without it, every client shares the balancer's address, and one
// client's bad keys throttle the others.
func TestTrustedProxy(t *testing.T) {
	t.Parallel()
	bad := "kg_" + strings.Repeat("A", 49) // fails its checksum: a failed verification
	try := func(in *instance, client string) int {
		req, _ := http.NewRequest("GET", in.url+"/v1/keys", nil)
		req.Header.Set("X-API-Key", bad)
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		args      []string
		otherGets int
	}{
		{[]string{"--trusted-proxy", "127.0.0.1"}, 401},
		{nil, 429},
	} {
		in := start(t, nil, append([]string{"--db", filepath.Join(t.TempDir(), "k.db"), "--failure-limit", "2"}, c.args...)...)
		for range 3 {
			try(in, "203.0.113.1")
		}
		if s := try(in, "203.0.113.1"); s != 429 {
			t.Errorf("%q: the abusing client got %d, want 429", c.args, s)
		}
		if s := try(in, "203.0.113.2"); s != c.otherGets {
			t.Errorf("%q: another client behind the same balancer got %d, want %d", c.args, s, c.otherGets)
		}
	}
	var log testenv.Buffer
	if err := run(context.Background(), []string{"--trusted-proxy", "10.0.0/8"}, nil, &log, nil); err == nil || !strings.Contains(err.Error(), "--trusted-proxy") {
		t.Errorf("a bad --trusted-proxy: %v, want a usage error naming it", err)
	}
}

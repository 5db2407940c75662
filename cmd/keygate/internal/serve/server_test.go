package serve

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"

	"github.com/keygate/keygate/cmd/keygate/internal/testenv"
)

// run runs keygate serve with args, as the command line would: getenv is
// its environment, stderr its log, ready called with the API's address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ios := &cmdutil.IOStreams{In: strings.NewReader(""), Out: stderr, ErrOut: stderr, Getenv: getenv}
	cmd := newCmd(ios, ready)
	cmd.SetArgs(args)
	cmd.SetOut(stderr)
	cmd.SetErr(stderr)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.ExecuteContext(ctx)
}

// instance is a server run in process by run().
type instance struct {
	url    string
	stderr *testenv.Buffer
	stop   func() error // cancels and returns run's error
}

// start runs the server with args (and -addr 127.0.0.1:0) until the test
// ends or stop is called.
func start(t *testing.T, env map[string]string, args ...string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{stderr: &testenv.Buffer{}}
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, in.stderr, func(a string) { addr <- a })
	}()
	select {
	case a := <-addr:
		in.url = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v\n%s", err, in.stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	var once sync.Once
	var err error
	in.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { in.stop() })
	return in
}

// call sends a request and returns the status and body.
func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Api-Key "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readToken reads a token file.
func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// mode returns a file's permission bits.
func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestServeAndRestart runs the service on SQLite: the bootstrap key, the
// routes, the request log, a graceful stop, and a restart that keeps the
// keys, their last-used times, and prints no token.
func TestServeAndRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, tokenFile := filepath.Join(dir, "keys.db"), filepath.Join(dir, "admin.token")
	in := start(t, nil, "--db", db, "--admin-token-file", tokenFile, "--prefix", "acme_live", "--demo", "--secret-scanning")
	admin := readToken(t, tokenFile)
	if !strings.HasPrefix(admin, "acme_live_") {
		t.Errorf("bootstrap token %s… lacks the -prefix", admin[:10])
	}
	if m := mode(t, tokenFile); m != 0o600 {
		t.Errorf("-admin-token-file mode %o, want 600", m)
	}
	if m := mode(t, db+".pepper"); m != 0o600 {
		t.Errorf("generated pepper file mode %o, want 600", m)
	}
	if n := strings.Count(in.stderr.String(), admin); n != 1 {
		t.Errorf("the bootstrap token appears %d times on stderr, want once (the banner)", n)
	}

	for _, c := range []struct {
		method, path, token, body string
		status                    int
		has                       string
	}{
		{"GET", "/healthz", "", "", 200, `"ok"`},
		{"GET", "/readyz", "", "", 200, `"ready"`},
		{"GET", "/v1/openapi.json", "", "", 200, `"openapi"`},
		{"GET", "/v1/keys", "", "", 401, `"missing"`},
		{"GET", "/v1/keys", admin, "", 200, `"bootstrap-admin"`},
		{"GET", "/v1/roles", admin, "", 200, `"viewer"`},
		{"POST", "/v1/keys", admin, `{"name":"svc","workspace":"tiger","scopes":["cluster:read","cluster:write"],"expiry":"7d"}`, 201, `"token"`},
		{"GET", "/nothing", "", "", 404, ""},
		{"POST", "/github/secret-scanning", "", `[{"token":"x"}]`, 401, `"invalid_signature"`},
	} {
		status, body := call(t, c.method, in.url+c.path, c.token, c.body)
		if status != c.status || !strings.Contains(body, c.has) {
			t.Errorf("%s %s = %d %s, want %d with %s", c.method, c.path, status, body, c.status, c.has)
		}
	}

	// The demo API, with a key made through the management API.
	_, body := call(t, "POST", in.url+"/v1/keys", admin, `{"name":"ci","workspace":"tiger","scopes":["cluster:read","cluster:write"],"expiry":"30d"}`)
	var created struct {
		Token string `json:"token"`
		Key   struct {
			ID string `json:"id"`
		} `json:"key"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Token == "" {
		t.Fatalf("create: %v %s", err, body)
	}
	tok := created.Token
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/v1/workspaces/tiger/clusters", `{"name":"prod","region":"eu-west-1"}`, 201},
		{"GET", "/api/v1/workspaces/tiger/clusters", "", 200},
		{"GET", "/api/v1/workspaces/lion/clusters", "", 403},
		{"GET", "/api/v1/organizations/acme", "", 403},
		{"POST", "/api/v1/workspaces/tiger/clusters", `{"name":"Bad Name"}`, 400},
		{"POST", "/api/v1/workspaces/tiger/clusters", `{"name":"x","extra":1}`, 400},
	} {
		if status, body := call(t, c.method, in.url+c.path, tok, c.body); status != c.status {
			t.Errorf("%s %s = %d %s, want %d", c.method, c.path, status, body, c.status)
		}
	}
	if _, body := call(t, "GET", in.url+"/api/v1/workspaces/tiger/clusters", tok, ""); !strings.Contains(body, `"created_by":"ci"`) {
		t.Errorf("clusters = %s, want the one created by ci", body)
	}

	if err := in.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	log := in.stderr.String()
	if strings.Contains(log, tok) || strings.Count(log, admin) != 1 {
		t.Errorf("a token reached the log:\n%s", log)
	}
	for _, want := range []string{"msg=request method=POST path=/api/v1/workspaces/tiger/clusters status=201", "key_id=" + created.Key.ID, "msg=stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q", want)
		}
	}

	// Restart: no new bootstrap, the keys work, last-used was written on stop.
	again := start(t, nil, "--db", db, "--admin-token-file", tokenFile, "--prefix", "acme_live", "--demo")
	if strings.Contains(again.stderr.String(), "first start") || readToken(t, tokenFile) != admin {
		t.Error("a second start bootstrapped again")
	}
	status, body := call(t, "GET", again.url+"/v1/keys/"+created.Key.ID, admin, "")
	if status != 200 || !strings.Contains(body, `"last_used_at"`) {
		t.Errorf("after restart: GET key = %d %s, want 200 with last_used_at", status, body)
	}
	if status, _ := call(t, "GET", again.url+"/api/v1/workspaces/tiger/clusters", tok, ""); status != 200 {
		t.Errorf("after restart the key gets %d, want 200", status)
	}
}

// TestReadyz checks that readiness follows the store.
func TestReadyz(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := testOptions(t, "--db", filepath.Join(dir, "k.db"))
	a, err := newApp(context.Background(), o, newLogger(o, io.Discard), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close(context.Background())
	probe := func() int {
		w := httptest.NewRecorder()
		a.handler.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code
	}
	if s := probe(); s != 200 {
		t.Fatalf("readyz = %d, want 200", s)
	}
	a.storage.DB.Close()
	if s := probe(); s != 503 {
		t.Errorf("readyz with the database closed = %d, want 503", s)
	}
}

// TestServerEngines runs the service on PostgreSQL (with its change feed)
// and MySQL/MariaDB, which refuse to start without a pepper.
func TestServerEngines(t *testing.T) {
	t.Parallel()
	pepper := "KEYGATE_PEPPER"
	for _, e := range []struct{ name, env string }{{"postgres", "KEYGATE_TEST_POSTGRES_DSN"}, {"mysql", "KEYGATE_TEST_MYSQL_DSN"}} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			dsn := os.Getenv(e.env)
			if dsn == "" {
				t.Skipf("%s is not set", e.env)
			}
			db := dsn
			if e.name == "mysql" {
				db = testenv.MySQLURL(dsn)
			}
			b := make([]byte, 4)
			rand.Read(b)
			prefix := "srv" + hex.EncodeToString(b) + "_"
			t.Cleanup(func() { testenv.DropTables(t, e.name, dsn, prefix) })
			err := run(context.Background(), []string{"--addr", "127.0.0.1:0", "--db", db, "--table-prefix", prefix}, func(string) string { return "" }, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), "KEYGATE_PEPPER") || strings.Contains(err.Error(), ":secret@") {
				t.Fatalf("start without a pepper: %v, want a refusal naming KEYGATE_PEPPER", err)
			}
			key := make([]byte, 32)
			rand.Read(key)
			env := map[string]string{pepper: "ci:" + base64Std(key)}
			dir := t.TempDir()
			in := start(t, env, "--db", db, "--table-prefix", prefix, "--admin-token-file", filepath.Join(dir, "t"))
			admin := readToken(t, filepath.Join(dir, "t"))
			// Ready once the change feed listens, which follows the start.
			deadline := time.Now().Add(10 * time.Second)
			for {
				status, body := call(t, "GET", in.url+"/readyz", "", "")
				if status == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("readyz = %d %s after 10s", status, body)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if status, _ := call(t, "GET", in.url+"/v1/keys", admin, ""); status != 200 {
				t.Errorf("GET /v1/keys = %d", status)
			}
			if !strings.Contains(in.stderr.String(), "change_feed="+map[string]string{"postgres": "postgres", "mysql": "none"}[e.name]) {
				t.Errorf("log lacks the change feed state:\n%s", in.stderr)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--tls-cert", "c.pem"},
		{"--log-format", "xml"},
		{"--shutdown-grace", "0s"},
		{"--read-header-timeout", "0s"},
		{"--read-timeout", "-1s"},
		{"--write-timeout", "0s"},
		{"--idle-timeout", "0s"},
		{"extra"},
		{"--db", "redis://x"},
		{"--import-prefix", "s"},
		{"--import-prefix", "sk live"},
		{"--max-body-bytes", "10"},
	} {
		err := run(context.Background(), args, func(string) string { return "" }, io.Discard, nil)
		if err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
	var help bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, nil, &help, nil); err != nil {
		t.Errorf("--help: %v", err)
	}
	for _, want := range []string{"Storage flags:", "--db string", "($KEYGATE_DB)", "Multi-instance flags:", "--redis string", "($KEYGATE_REDIS)", "Peppers flags:", "$KEYGATE_PEPPER"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, help.String())
		}
	}
}

// TestTLS serves HTTPS with -tls-cert and -tls-key.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := selfSigned(t, certFile, keyFile)
	in := start(t, nil, "--db", filepath.Join(dir, "k.db"), "--tls-cert", certFile, "--tls-key", keyFile)
	u, _ := url.Parse(in.url)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + u.Host + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("HTTPS healthz = %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := http.Get(in.url + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS server = %d, want 400", resp.StatusCode)
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and returns a
// pool trusting it.
func selfSigned(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keygate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// TestSIGTERM runs the built binary and stops it with SIGTERM, as a
// service manager would, while a request is in flight: it finishes, the
// process exits 0, and the key's last use was written.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	bin := testenv.Binary(t)
	dir := t.TempDir()
	port := testenv.FreePort(t)
	base := "http://127.0.0.1:" + port
	startBin := func() (*exec.Cmd, *testenv.Buffer) {
		var out testenv.Buffer
		cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:"+port, "--db", filepath.Join(dir, "k.db"), "--admin-token-file", filepath.Join(dir, "t"))
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		deadline := time.Now().Add(30 * time.Second)
		for {
			if resp, err := http.Get(base + "/readyz"); err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server did not start:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		return cmd, &out
	}
	cmd, out := startBin()
	admin := readToken(t, filepath.Join(dir, "t"))
	status, body := call(t, "GET", base+"/v1/keys", admin, "")
	if status != 200 {
		t.Fatalf("GET /v1/keys = %d %s", status, body)
	}
	var list struct {
		Keys []struct {
			ID string `json:"id"`
		} `json:"keys"`
	}
	json.Unmarshal([]byte(body), &list)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v, want exit status 0\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "msg=stopped") {
		t.Errorf("no orderly stop in the log:\n%s", out.String())
	}
	startBin()
	if _, body := call(t, "GET", base+"/v1/keys/"+list.Keys[0].ID, admin, ""); !strings.Contains(body, "last_used_at") {
		t.Errorf("the last use before SIGTERM was not written: %s", body)
	}
}

// base64Std encodes b in standard base64.
func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestImportFlags imports a key of another system through the API of a
// server started with -import-prefix and -import-sha256, and uses it on
// the demo API.
func TestImportFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	in := start(t, nil, "--db", filepath.Join(dir, "keys.db"), "--admin-token-file", tokenFile,
		"--import-prefix", "sk_live_", "--import-prefix", "rk_live_", "--import-sha256", "--demo")
	admin := readToken(t, tokenFile)
	legacy, hashed := "sk_live_0123456789abcdefghijKLMN", "rk_live_9876543210abcdefghijKLMN"
	sum := sha256.Sum256([]byte(hashed))
	body := `{"keys":[{"name":"legacy","workspace":"tiger","scopes":["cluster:read"],"expiry":"30d","token":"` + legacy + `"},` +
		`{"name":"hashed","workspace":"tiger","scopes":["cluster:read"],"expiry":"30d","sha256":"` + hex.EncodeToString(sum[:]) + `"},` +
		`{"name":"other","workspace":"tiger","scopes":["cluster:read"],"expiry":"30d","token":"ghp_0123456789abcdefghijKLMN"}]}`
	status, out := call(t, "POST", in.url+"/v1/keys/import", admin, body)
	if status != 200 || !strings.Contains(out, `"imported":2`) || !strings.Contains(out, `"not_importable"`) {
		t.Fatalf("POST /v1/keys/import = %d %s", status, out)
	}
	for _, tok := range []string{legacy, hashed} {
		if status, out := call(t, "GET", in.url+"/api/v1/workspaces/tiger/clusters", tok, ""); status != 200 {
			t.Errorf("demo API with an imported key = %d %s", status, out)
		}
	}
	if status, _ := call(t, "GET", in.url+"/api/v1/workspaces/tiger/clusters", "ghp_0123456789abcdefghijKLMN", ""); status != 401 {
		t.Errorf("a token of no accepted prefix = %d, want 401", status)
	}
	if strings.Contains(in.stderr.String(), legacy) || strings.Contains(in.stderr.String(), hashed) {
		t.Error("an imported token reached the log")
	}
}

// TestRateLimitHeaders: the service tells a rate-limited key's client what
// is left of its limit, on the demo API and on the refusal.
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	in := start(t, nil, "--db", filepath.Join(dir, "keys.db"), "--admin-token-file", tokenFile, "--demo")
	admin := readToken(t, tokenFile)
	status, out := call(t, "POST", in.url+"/v1/keys", admin,
		`{"name":"poller","scopes":["organization:read"],"expiry":"30d","limits":{"rate":{"requests":2,"window":"1h"}}}`)
	if status != 201 {
		t.Fatalf("POST /v1/keys = %d %s", status, out)
	}
	var created struct{ Token string }
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		status                   int
		remaining, reset, policy string
	}{{200, "1", "1800", "2;w=3600"}, {200, "0", "3600", "2;w=3600"}, {429, "0", "3600", "2;w=3600"}} {
		req, err := http.NewRequest("GET", in.url+"/api/v1/organizations/acme", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", created.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != want.status || h.Get("RateLimit-Limit") != "2" || h.Get("RateLimit-Remaining") != want.remaining ||
			h.Get("RateLimit-Reset") != want.reset || h.Get("RateLimit-Policy") != want.policy {
			t.Errorf("request %d: %d, RateLimit fields %v; want %d, remaining %s, reset %s", i+1, resp.StatusCode, h, want.status, want.remaining, want.reset)
		}
	}
}

// testOptions returns the options args set, as keygate serve parses them.
func testOptions(t *testing.T, args ...string) *Options {
	t.Helper()
	o := &Options{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	return o
}

package keys_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/root"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// service is a token service in process: the real server package over a
// Manager on a memory store, mounted at /v1 as keygate serve mounts it.
type service struct {
	url   string
	m     *keygate.Manager
	admin string
	// importDown makes POST /v1/keys/import answer 503 after this many
	// calls succeed (0: never).
	importDown  atomic.Int64
	importCalls atomic.Int64
	// secrets are every token the test made, none of which may reach
	// stderr.
	secrets []string
}

// serviceConfig changes newService's service.
type serviceConfig struct {
	maxBody int64
}

// newService starts a service, closed with the test, with a super
// admin's token.
func newService(t *testing.T, cfgs ...serviceConfig) *service {
	t.Helper()
	var cfg serviceConfig
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	s := &service{}
	s.m, err = keygate.New(keygate.Config{
		Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler),
		ImportedTokens: func(tok string) bool { return strings.HasPrefix(tok, "sk_live_") },
		ImportedSHA256: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.m.Close(context.Background()) })
	mw, err := middleware.New(middleware.Config{Verifier: s.m})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.New(server.Config{Manager: s.m, Middleware: mw, MaxBodyBytes: cfg.maxBody})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.StripPrefix("/v1", api))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/keys/import" {
			n := s.importCalls.Add(1)
			if down := s.importDown.Load(); down > 0 && n > down {
				middleware.WriteProblem(w, r, &middleware.Problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Code: middleware.CodeUnavailable})
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/v1"
	s.admin = s.token(t, keygate.CreateRequest{Name: "admin", Role: "admin", Expiry: keygate.NeverExpire()})
	return s
}

// token creates a key with the Manager and returns its token.
func (s *service) token(t *testing.T, req keygate.CreateRequest) string {
	t.Helper()
	if req.Expiry == (keygate.Expiry{}) {
		req.Expiry = keygate.NeverExpire()
	}
	c, err := s.m.Create(context.Background(), keygate.System(), req)
	if err != nil {
		t.Fatalf("Create(%q): %v", req.Name, err)
	}
	s.secrets = append(s.secrets, c.Token.Reveal())
	return c.Token.Reveal()
}

// keys returns every key of the store.
func (s *service) keys(t *testing.T) []*store.Key {
	t.Helper()
	page, err := s.m.List(context.Background(), keygate.System(), keygate.ListRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return page.Keys
}

// key returns the key named name.
func (s *service) key(t *testing.T, name string) *store.Key {
	t.Helper()
	for _, k := range s.keys(t) {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no key %q", name)
	return nil
}

// result is what a run of keygate did.
type result struct {
	code        int
	out, stderr string
}

// invocation is how keygate is run: its environment (KEYGATE_URL and
// KEYGATE_TOKEN default to the service's), standard input, and which
// streams are terminals.
type invocation struct {
	env           map[string]string
	stdin         string
	inTTY, errTTY bool
}

// run runs keygate with args as the command line would, and checks that
// no token of the test reached stderr.
func (s *service) run(t *testing.T, inv invocation, args ...string) result {
	t.Helper()
	env := map[string]string{"KEYGATE_URL": s.url, "KEYGATE_TOKEN": s.admin}
	maps.Copy(env, inv.env)
	var out, errOut bytes.Buffer
	ios := &cmdutil.IOStreams{In: strings.NewReader(inv.stdin), Out: &out, ErrOut: &errOut,
		Getenv: func(k string) string { return env[k] }, InTTY: inv.inTTY, ErrTTY: inv.errTTY}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := result{code: root.Main(ctx, ios, args), out: out.String(), stderr: errOut.String()}
	for _, secret := range append(s.secrets, s.admin) {
		if strings.Contains(r.stderr, secret) {
			t.Errorf("keygate %q: a token reached stderr:\n%s", args, r.stderr)
		}
	}
	return r
}

// ok runs keygate and fails the test unless it exits 0.
func (s *service) ok(t *testing.T, args ...string) result {
	t.Helper()
	r := s.run(t, invocation{}, args...)
	if r.code != 0 {
		t.Fatalf("keygate %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.out, r.stderr)
	}
	return r
}

// want checks r's exit code and that stderr says each of says.
func (r result) want(t *testing.T, code int, says ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.out, r.stderr)
	}
	for _, s := range says {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
}

// decode decodes r's stdout as JSON into v.
func (r result) decode(t *testing.T, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero() // decoding into a used value would keep what the JSON leaves out
	dec := json.NewDecoder(strings.NewReader(r.out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not the JSON expected: %v\n%s", err, r.out)
	}
}

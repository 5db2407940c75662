package keys_test

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdtest"
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
	store *memory.Store
	admin string
	// importDown makes POST /v1/keys/import answer 503 after this many
	// calls succeed (0: never).
	importDown  atomic.Int64
	importCalls atomic.Int64
	// tooLarge counts the 413 answers.
	tooLarge atomic.Int64
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
	s := &service{store: memory.New()}
	s.m, err = keygate.New(keygate.Config{
		Store: s.store, Hasher: hasher, Logger: slog.New(slog.DiscardHandler),
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
		mux.ServeHTTP(&statusRecorder{ResponseWriter: w, s: s}, r)
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

// run runs keygate with args as the command line would, with
// KEYGATE_URL and KEYGATE_TOKEN the service's unless inv.Env says
// otherwise, and checks that no token of the test reached stderr.
func (s *service) run(t *testing.T, inv cmdtest.Invocation, args ...string) cmdtest.Result {
	t.Helper()
	env := map[string]string{"KEYGATE_URL": s.url, "KEYGATE_TOKEN": s.admin}
	maps.Copy(env, inv.Env)
	inv.Env = env
	r := cmdtest.Run(t, inv, args...)
	for _, secret := range append(s.secrets, s.admin) {
		if strings.Contains(r.Stderr, secret) {
			t.Errorf("keygate %q: a token reached stderr:\n%s", args, r.Stderr)
		}
	}
	return r
}

// ok runs keygate and fails the test unless it exits 0.
func (s *service) ok(t *testing.T, args ...string) cmdtest.Result {
	t.Helper()
	r := s.run(t, cmdtest.Invocation{}, args...)
	if r.Code != 0 {
		t.Fatalf("keygate %q: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Out, r.Stderr)
	}
	return r
}

// statusRecorder counts the service's 413 answers.
type statusRecorder struct {
	http.ResponseWriter
	s *service
}

func (r *statusRecorder) WriteHeader(status int) {
	if status == http.StatusRequestEntityTooLarge {
		r.s.tooLarge.Add(1)
	}
	r.ResponseWriter.WriteHeader(status)
}

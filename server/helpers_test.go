package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store/memory"
)

// prefix is where the API is mounted in these tests.
const prefix = "/api/v1"

// fixture is the API over a Manager with a memory store, served in
// process, and a super admin's token.
type fixture struct {
	m       *keygate.Manager
	handler http.Handler
	admin   string
}

// newFixture returns a fixture whose server is built from cfg, filling in
// its Manager and Middleware.
func newFixture(t testing.TB, cfg server.Config) *fixture {
	t.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	f := &fixture{}
	f.m, err = keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("keygate.New: %v", err)
	}
	t.Cleanup(func() {
		if err := f.m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if cfg.Middleware, err = middleware.New(middleware.Config{Verifier: f.m}); err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	cfg.Manager = f.m
	s, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	f.handler = http.StripPrefix(prefix, s)
	f.admin = f.token(t, keygate.CreateRequest{Name: "admin", Role: "admin"})
	return f
}

// token creates a key with the Manager and returns its token.
func (f *fixture) token(t testing.TB, req keygate.CreateRequest) string {
	t.Helper()
	if req.Expiry == (keygate.Expiry{}) {
		req.Expiry = keygate.NeverExpire()
	}
	c, err := f.m.Create(context.Background(), keygate.System(), req)
	if err != nil {
		t.Fatalf("Manager.Create: %v", err)
	}
	return c.Token.Reveal()
}

// request describes a request to the API.
type request struct {
	method, path string
	token        string // "" sends no Authorization
	contentType  string
	body         string
	header       http.Header
}

// do serves req and returns the recorded response.
func (f *fixture) do(t testing.TB, req request) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(context.Background(), req.method, prefix+req.path, strings.NewReader(req.body))
	for name, vs := range req.header {
		r.Header[name] = vs
	}
	if req.token != "" {
		r.Header.Set("Authorization", "Api-Key "+req.token)
	}
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

// create creates a key through the API as the admin and returns the
// response's key and token.
func (f *fixture) create(t testing.TB, body string) (server.Key, string) {
	t.Helper()
	w := f.do(t, request{method: "POST", path: "/keys", token: f.admin, contentType: "application/json", body: body})
	if w.Code != http.StatusCreated {
		t.Fatalf("POST /keys = %d %s, want 201", w.Code, w.Body)
	}
	var out struct {
		Key   server.Key `json:"key"`
		Token string     `json:"token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode create response: %v", err)
	}
	return out.Key, out.Token
}

// problem decodes a problem response, checking its headers.
func problem(t testing.TB, w *httptest.ResponseRecorder) middleware.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != middleware.ProblemContentType {
		t.Errorf("Content-Type = %q, want %q (body %s)", ct, middleware.ProblemContentType, w.Body)
	}
	var p middleware.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem %q: %v", w.Body, err)
	}
	if p.Status != w.Code {
		t.Errorf("problem status %d, response status %d; want equal", p.Status, w.Code)
	}
	return p
}

// mustPrefix parses a CIDR prefix or fails the test.
func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/servertest"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
)

// prefix is where the API is mounted in these tests.
const prefix = servertest.Prefix

// fixture is the API's test fixture, shared with the OpenAPI conformance
// tests (servertest.Fixture: the API over a Manager whose memory store
// fails on demand, served in process, and a super admin's token), under
// the names these tests use, with their ways of sending requests (do,
// create, send).
type fixture struct {
	shared  *servertest.Fixture
	m       *keygate.Manager         // shared.Manager
	store   *servertest.FailingStore // shared.Store
	handler http.Handler             // shared.Handler, serving the API under prefix
	admin   string                   // shared.Admin
}

// newFixture returns a fixture whose server is built from cfg, filling in
// its Manager and Middleware.
func newFixture(t testing.TB, cfg server.Config) *fixture {
	t.Helper()
	s := servertest.New(t, cfg)
	return &fixture{shared: s, m: s.Manager, store: s.Store, handler: s.Handler, admin: s.Admin}
}

// token creates a key with the Manager and returns its token.
func (f *fixture) token(t testing.TB, req keygate.CreateRequest) string {
	t.Helper()
	return f.shared.Token(t, req)
}

// key creates a key with the Manager, never expiring unless req says
// otherwise.
func (f *fixture) key(t testing.TB, req keygate.CreateRequest) *keygate.Created {
	t.Helper()
	return f.shared.Key(t, req)
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

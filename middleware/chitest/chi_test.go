package chitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store/memory"
)

// TestChi mounts the middleware on a chi router: Verify for every route,
// Require per route with chi's URL parameters.
func TestChi(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	mw, err := middleware.New(middleware.Config{Verifier: m})
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	viewer := create(t, m, keygate.CreateRequest{Name: "viewer", Workspace: "alpha", Role: "viewer"})
	editor := create(t, m, keygate.CreateRequest{Name: "editor", Workspace: "alpha", Role: "editor"})

	chiWorkspace := func(r *http.Request) string { return chi.URLParam(r, "workspace") }
	r := chi.NewRouter()
	r.Use(mw.Verify)
	r.Get("/public", okHandler().ServeHTTP)
	r.With(mw.RequireKey).Get("/me", okHandler().ServeHTTP)
	r.Route("/workspaces/{workspace}", func(r chi.Router) {
		r.With(mw.MustRequire(chiWorkspace, "cluster:read")).Get("/clusters", okHandler().ServeHTTP)
		r.With(mw.MustRequire(middleware.PathValue("workspace"), "cluster:write")).Post("/clusters", okHandler().ServeHTTP)
	})

	tests := []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"public", get("/public"), 200, ""},
		{"me", get("/me", "Authorization", "Bearer "+viewer), 200, ""},
		{"me missing", get("/me"), 401, middleware.CodeMissing},
		{"own workspace", get("/workspaces/alpha/clusters", "X-API-Key", viewer), 200, ""},
		{"other workspace", get("/workspaces/beta/clusters", "X-API-Key", viewer), 403, middleware.CodeInsufficientPermission},
		{"viewer cannot write", post("/workspaces/alpha/clusters", "X-API-Key", viewer), 403, middleware.CodeInsufficientPermission},
		{"editor writes (PathValue under chi)", post("/workspaces/alpha/clusters", "X-API-Key", editor), 200, ""},
		{"editor, other workspace", post("/workspaces/beta/clusters", "X-API-Key", editor), 403, middleware.CodeInsufficientPermission},
		{"invalid", get("/workspaces/alpha/clusters", "X-API-Key", generate(t)), 401, middleware.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(t, r, tt.req)
			if res.status != tt.status || res.problem.Code != tt.code {
				t.Errorf("status %d code %q, want %d %q (body %q)", res.status, res.problem.Code, tt.status, tt.code, res.body)
			}
		})
	}
}

// newManager returns a Manager over a memory store, closed at the end of
// the test.
func newManager(t testing.TB) *keygate.Manager {
	t.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	m, err := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("keygate.New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// create issues a key that never expires and returns its token.
func create(t testing.TB, m *keygate.Manager, req keygate.CreateRequest) string {
	t.Helper()
	req.Expiry = keygate.NeverExpire()
	c, err := m.Create(context.Background(), keygate.System(), req)
	if err != nil {
		t.Fatalf("Create(%q): %v", req.Name, err)
	}
	return c.Token.Reveal()
}

// generate returns a well-formed token of no key.
func generate(t testing.TB) string {
	t.Helper()
	f, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatalf("NewFormat: %v", err)
	}
	tok, err := f.Generate()
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return tok.Reveal()
}

// response is what a test sees of a response.
type response struct {
	status  int
	body    string
	problem middleware.Problem
}

// serve sends req through h and decodes a problem body if there is one.
func serve(t testing.TB, h http.Handler, req *http.Request) response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := response{status: rec.Code, body: rec.Body.String()}
	if rec.Header().Get("Content-Type") == middleware.ProblemContentType {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.problem); err != nil {
			t.Fatalf("problem body %q: %v", res.body, err)
		}
		if res.problem.Status != rec.Code {
			t.Errorf("problem status = %d, response status %d", res.problem.Status, rec.Code)
		}
	}
	return res
}

// get returns a GET request for target with the headers given as
// name/value pairs.
func get(target string, headers ...string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// post is get with the POST method.
func post(target string, headers ...string) *http.Request {
	req := get(target, headers...)
	req.Method = http.MethodPost
	return req
}

// okHandler answers 200 with the verified key's name, or "anonymous".
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "anonymous"
		if k, ok := middleware.FromContext(r.Context()); ok {
			name = k.Name
		}
		_, _ = w.Write([]byte(name))
	})
}

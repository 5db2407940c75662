package middleware_test

import (
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
)

// TestChi mounts the middleware on a chi router: Verify for every route,
// Require per route with chi's URL parameters.
func TestChi(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mw := newMiddleware(t, middleware.Config{Verifier: f.m})
	viewer, _ := f.create(t, keygate.CreateRequest{Name: "viewer", Workspace: "alpha", Role: "viewer"})
	editor, _ := f.create(t, keygate.CreateRequest{Name: "editor", Workspace: "alpha", Role: "editor"})

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

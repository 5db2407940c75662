package chitest_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store/memory"
)

// With chi: Verify for every route, Require per route, the workspace read
// from chi's URL parameter (chi v5 also sets path values, so
// middleware.PathValue works too).
func Example() {
	ctx := context.Background()
	hasher, _ := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte("k"), 32)})
	manager, _ := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	defer manager.Close(ctx)
	viewer, _ := manager.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "viewer", Workspace: "tiger", Role: "viewer", Expiry: keygate.NeverExpire(),
	})
	mw, err := middleware.New(middleware.Config{Verifier: manager})
	if err != nil {
		panic(err)
	}
	workspace := func(r *http.Request) string { return chi.URLParam(r, "workspace") }
	router := chi.NewRouter()
	router.Use(mw.Verify)
	router.Route("/workspaces/{workspace}", func(r chi.Router) {
		r.With(mw.MustRequire(workspace, "cluster:read")).Get("/clusters", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "clusters")
		})
		r.With(mw.MustRequire(workspace, "cluster:write")).Post("/clusters", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusCreated)
		})
	})
	for _, c := range []struct{ method, path string }{
		{"GET", "/workspaces/tiger/clusters"},
		{"POST", "/workspaces/tiger/clusters"},
		{"GET", "/workspaces/lion/clusters"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(c.method, c.path, nil)
		req.Header.Set("Authorization", "Bearer "+viewer.Token.Reveal())
		router.ServeHTTP(rec, req)
		fmt.Println(c.method, c.path, rec.Code)
	}
	// Output:
	// GET /workspaces/tiger/clusters 200
	// POST /workspaces/tiger/clusters 403
	// GET /workspaces/lion/clusters 403
}

package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store/memory"
)

func ExampleMiddleware() {
	ctx := context.Background()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		panic(err)
	}
	manager, err := keygate.New(keygate.Config{
		Store:  memory.New(),
		Hasher: hasher,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer manager.Close(ctx)

	// A viewer key, confined to the workspace "alpha".
	created, err := manager.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "ci", Workspace: "alpha", Role: "viewer", Expiry: keygate.ExpireAfterDays(30),
	})
	if err != nil {
		panic(err)
	}
	token := created.Token.Reveal()

	mw, err := middleware.New(middleware.Config{Verifier: manager})
	if err != nil {
		panic(err)
	}
	readClusters := mw.MustRequire(middleware.PathValue("workspace"), "cluster:read")
	mux := http.NewServeMux()
	mux.Handle("GET /workspaces/{workspace}/clusters", readClusters(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			key, _ := middleware.FromContext(r.Context())
			fmt.Fprintf(w, "clusters of %s, for key %s", r.PathValue("workspace"), key.Name)
		})))
	handler := mw.Verify(mux)

	for _, req := range []struct{ path, auth string }{
		{"/workspaces/alpha/clusters", ""},
		{"/workspaces/alpha/clusters", "Api-Key " + token},
		{"/workspaces/beta/clusters", "Api-Key " + token},
		{"/workspaces/alpha/clusters", "Bearer kg_not_a_key"},
	} {
		r := httptest.NewRequest(http.MethodGet, req.path, nil)
		if req.auth != "" {
			r.Header.Set("Authorization", req.auth)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		var p middleware.Problem
		if w.Header().Get("Content-Type") == middleware.ProblemContentType {
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			fmt.Println(strings.TrimSpace(fmt.Sprint(w.Code, " ", p.Code, " ", w.Header().Get("X-Accepted-Permissions"))))
		} else {
			fmt.Println(w.Code, w.Body.String())
		}
	}
	// Output:
	// 401 missing
	// 200 clusters of alpha, for key ci
	// 403 insufficient_permission cluster:read
	// 401 malformed
}

// A Throttle guards another door where tokens are presented, such as a
// sign-in form, as Config.FailureLimit guards the Middleware: ask Blocked
// before verifying, Record after.
func ExampleThrottle() {
	throttle, err := middleware.NewThrottle(middleware.FailureLimit{Failures: 2, Window: time.Minute}, nil)
	if err != nil {
		panic(err)
	}
	verify := func(token string) error { return keygate.ErrInvalid } // manager.VerifyFrom, say
	signIn := func(addr netip.Addr, token string) string {
		if wait, blocked := throttle.Blocked(addr); blocked {
			return fmt.Sprintf("429, retry after %v", wait.Round(time.Second))
		}
		err := verify(token)
		throttle.Record(addr, err)
		if err != nil {
			return "401"
		}
		return "signed in"
	}
	addr := netip.MustParseAddr("203.0.113.9")
	for range 3 {
		fmt.Println(signIn(addr, "kg_guess"))
	}
	// Output:
	// 401
	// 401
	// 429, retry after 30s
}

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
	"strconv"
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

// Metered mounts a cost per route: here the export endpoint names the
// key's on-demand "exports" limit (two an hour), and the chat endpoint
// charges the tokens the request declares, from the key's uses. The
// other routes are not metered.
func ExampleMiddleware_Metered() {
	ctx := context.Background()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		panic(err)
	}
	manager, err := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer manager.Close(ctx)
	uses := int64(1000)
	created, err := manager.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "customer", Scopes: []string{"billing:read"}, Expiry: keygate.ExpireAfterDays(30),
		Limits: keygate.Limits{Uses: &uses, RateLimits: []keygate.RateLimit{
			{Name: "exports", Requests: 2, Window: time.Hour, OnDemand: true},
		}},
	})
	if err != nil {
		panic(err)
	}

	mw, err := middleware.New(middleware.Config{Verifier: manager, RateLimitHeaders: true})
	if err != nil {
		panic(err)
	}
	exports, err := mw.Metered(func(*http.Request) middleware.Metering {
		return middleware.Metering{Limits: []string{"exports"}}
	})
	if err != nil {
		panic(err)
	}
	chat, err := mw.Metered(func(r *http.Request) middleware.Metering {
		tokens, err := strconv.Atoi(r.Header.Get("X-Max-Tokens"))
		if err != nil {
			tokens = -1 // refused: 400 invalid_request
		}
		return middleware.Metering{Cost: tokens}
	})
	if err != nil {
		panic(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep, _ := middleware.ReportFromContext(r.Context())
		fmt.Fprintf(w, "cost %d", rep.Cost)
	})
	read := mw.MustRequire(nil, "billing:read")
	mux := http.NewServeMux()
	mux.Handle("POST /exports", exports(read(ok)))
	mux.Handle("POST /chat", chat(read(ok)))

	for _, req := range []struct{ path, tokens string }{
		{"/chat", "250"}, {"/chat", "lots"}, {"/exports", ""}, {"/exports", ""}, {"/exports", ""},
	} {
		r := httptest.NewRequest(http.MethodPost, req.path, nil)
		r.Header.Set("Authorization", "Api-Key "+created.Token.Reveal())
		r.Header.Set("X-Max-Tokens", req.tokens)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			var p middleware.Problem
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			fmt.Printf("%s %d %s, limit %q, Retry-After %q\n", req.path, w.Code, p.Code, p.RateLimit, w.Header().Get("Retry-After"))
			continue
		}
		fmt.Printf("%s %d %s, Keygate-Uses-Remaining %s, RateLimit-Remaining %q\n", req.path, w.Code, w.Body.String(),
			w.Header().Get("Keygate-Uses-Remaining"), w.Header().Get("RateLimit-Remaining"))
	}
	// Output:
	// /chat 200 cost 250, Keygate-Uses-Remaining 750, RateLimit-Remaining ""
	// /chat 400 invalid_request, limit "", Retry-After ""
	// /exports 200 cost 1, Keygate-Uses-Remaining 749, RateLimit-Remaining "1"
	// /exports 200 cost 1, Keygate-Uses-Remaining 748, RateLimit-Remaining "0"
	// /exports 429 rate_limited, limit "exports", Retry-After "1800"
}

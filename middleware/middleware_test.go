package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store/memory"
)

// newMux routes a small API the way an application would:
//
//	GET  /public                                  no key needed
//	GET  /me                                      any valid key
//	GET  /workspaces/{workspace}/clusters         cluster:read in the workspace
//	POST /workspaces/{workspace}/clusters         cluster:read and cluster:write
//	GET  /billing                                 billing:read, no workspace
func newMux(t testing.TB, mw *middleware.Middleware) http.Handler {
	t.Helper()
	ws := middleware.PathValue("workspace")
	mux := http.NewServeMux()
	mux.Handle("GET /public", okHandler())
	mux.Handle("GET /me", mw.RequireKey(okHandler()))
	mux.Handle("GET /workspaces/{workspace}/clusters", mw.MustRequire(ws, "cluster:read")(okHandler()))
	mux.Handle("POST /workspaces/{workspace}/clusters", mw.MustRequire(ws, "cluster:read", "cluster:write")(okHandler()))
	mux.Handle("GET /billing", mw.MustRequire(nil, "billing:read")(okHandler()))
	return mw.Verify(mux)
}

func TestServeMux(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := newMux(t, newMiddleware(t, middleware.Config{Verifier: f.m}))

	viewer, _ := f.create(t, keygate.CreateRequest{Name: "viewer", Workspace: "alpha", Role: "viewer"})
	writer, _ := f.create(t, keygate.CreateRequest{Name: "writer", Workspace: "alpha", Scopes: []string{"cluster:read", "cluster:write"}})
	billing, _ := f.create(t, keygate.CreateRequest{Name: "billing", Scopes: []string{"billing:read"}})
	expiring, _ := f.create(t, keygate.CreateRequest{Name: "expiring", Scopes: []string{"billing:read"}, Expiry: keygate.ExpireAfter(time.Hour)})
	revoked, rc := f.create(t, keygate.CreateRequest{Name: "revoked", Scopes: []string{"billing:read"}})
	if _, err := f.m.Revoke(context.Background(), keygate.System(), rc.Key.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	unknown := generate(t)
	f.clock.Advance(2 * time.Hour) // expiring has expired

	tests := []struct {
		name    string
		req     *http.Request
		status  int
		code    string // problem code; "" for a success
		body    string // body of a success
		headers map[string]string
	}{
		{name: "public without key", req: get("/public"), status: 200, body: "anonymous"},
		{name: "public with valid key", req: get("/public", "X-API-Key", billing), status: 200, body: "billing"},
		{name: "public with bad key still passes", req: get("/public", "X-API-Key", unknown), status: 200, body: "anonymous"},
		{name: "me with Api-Key", req: get("/me", "Authorization", "Api-Key "+billing), status: 200, body: "billing"},
		{name: "me with Bearer", req: get("/me", "Authorization", "Bearer "+billing), status: 200, body: "billing"},
		{name: "me with X-API-Key", req: get("/me", "X-API-Key", billing), status: 200, body: "billing"},
		{name: "me same key twice", req: get("/me", "Authorization", "Bearer "+billing, "X-API-Key", billing), status: 200, body: "billing"},
		{
			name: "missing", req: get("/me"), status: 401, code: middleware.CodeMissing,
			headers: map[string]string{"WWW-Authenticate": `Api-Key realm="api"`, "Cache-Control": "no-store"},
		},
		{
			name: "malformed", req: get("/me", "Authorization", "Api-Key kg_notatoken"), status: 401, code: middleware.CodeMalformed,
			headers: map[string]string{"WWW-Authenticate": `Api-Key realm="api", error="invalid_request"`},
		},
		{name: "malformed header", req: get("/me", "Authorization", "Bearer"), status: 401, code: middleware.CodeMalformed},
		{name: "two different keys", req: get("/me", "Authorization", "Bearer "+billing, "X-API-Key", viewer), status: 401, code: middleware.CodeMalformed},
		{
			name: "invalid", req: get("/me", "X-API-Key", unknown), status: 401, code: middleware.CodeInvalid,
			headers: map[string]string{"WWW-Authenticate": `Api-Key realm="api", error="invalid_token"`},
		},
		{name: "expired", req: get("/billing", "X-API-Key", expiring), status: 401, code: middleware.CodeExpired},
		{name: "revoked", req: get("/billing", "X-API-Key", revoked), status: 401, code: middleware.CodeRevoked},
		{name: "viewer reads own workspace", req: get("/workspaces/alpha/clusters", "X-API-Key", viewer), status: 200, body: "viewer"},
		{
			name: "viewer denied other workspace", req: get("/workspaces/beta/clusters", "X-API-Key", viewer),
			status: 403, code: middleware.CodeInsufficientPermission,
			headers: map[string]string{"X-Accepted-Permissions": "cluster:read"},
		},
		{
			name: "viewer cannot write", req: post("/workspaces/alpha/clusters", "X-API-Key", viewer),
			status: 403, code: middleware.CodeInsufficientPermission,
			headers: map[string]string{"X-Accepted-Permissions": "cluster:read, cluster:write"},
		},
		{name: "writer writes", req: post("/workspaces/alpha/clusters", "X-API-Key", writer), status: 200, body: "writer"},
		{name: "workspace key denied outside workspaces", req: get("/billing", "X-API-Key", viewer), status: 403, code: middleware.CodeInsufficientPermission},
		{name: "unbound key reads billing", req: get("/billing", "X-API-Key", billing), status: 200, body: "billing"},
		{name: "unbound key lacks cluster:read", req: get("/workspaces/alpha/clusters", "X-API-Key", billing), status: 403, code: middleware.CodeInsufficientPermission},
		{name: "require without key", req: get("/workspaces/alpha/clusters"), status: 401, code: middleware.CodeMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(t, h, tt.req)
			if res.status != tt.status {
				t.Fatalf("status = %d, want %d (body %q)", res.status, tt.status, res.body)
			}
			if tt.code == "" {
				if res.body != tt.body {
					t.Errorf("body = %q, want %q", res.body, tt.body)
				}
			} else if res.problem.Code != tt.code {
				t.Errorf("problem code = %q, want %q (body %q)", res.problem.Code, tt.code, res.body)
			}
			for name, want := range tt.headers {
				if got := res.header.Get(name); got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
			if tt.status == 401 {
				got := res.header.Values("WWW-Authenticate")
				if len(got) != 2 || !strings.HasPrefix(got[1], "Bearer ") {
					t.Errorf("WWW-Authenticate = %q, want an Api-Key and a Bearer challenge", got)
				}
			}
			if tt.status == 403 && tt.code == middleware.CodeInsufficientPermission {
				want := strings.Split(res.header.Get("X-Accepted-Permissions"), ", ")
				if !slices.Equal(res.problem.Permissions, want) {
					t.Errorf("problem permissions = %q, want %q", res.problem.Permissions, want)
				}
			}
			for _, tok := range []string{viewer, writer, billing, expiring, revoked, unknown} {
				if strings.Contains(res.body, tok) || strings.Contains(strings.Join(res.header.Values("WWW-Authenticate"), " "), tok) {
					t.Errorf("response reveals a token: %q", res.body)
				}
			}
		})
	}
}

// TestProblemBody checks the RFC 9457 body of a refusal field by field.
func TestProblemBody(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := newMux(t, newMiddleware(t, middleware.Config{Verifier: f.m}))
	res := serve(t, h, get("/me"))
	want := middleware.Problem{
		Type:   "about:blank",
		Title:  "Unauthorized",
		Status: 401,
		Detail: "This request needs an API key.",
		Code:   middleware.CodeMissing,
	}
	if got := res.problem; got.Type != want.Type || got.Title != want.Title || got.Status != want.Status ||
		got.Detail != want.Detail || got.Code != want.Code || got.Permissions != nil {
		t.Errorf("problem = %+v, want %+v", got, want)
	}
	if got := res.header.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", got)
	}
	if strings.Contains(res.body, "middleware:") {
		t.Errorf("body %q holds an error message", res.body)
	}
}

func TestRevocationSeenOnNextRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := newMux(t, newMiddleware(t, middleware.Config{Verifier: f.m}))
	tok, c := f.create(t, keygate.CreateRequest{Scopes: []string{"billing:read"}})

	if res := serve(t, h, get("/billing", "X-API-Key", tok)); res.status != 200 {
		t.Fatalf("before revocation: status = %d, want 200", res.status)
	}
	if _, err := f.m.Revoke(context.Background(), keygate.System(), c.Key.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	res := serve(t, h, get("/billing", "X-API-Key", tok))
	if res.status != 401 || res.problem.Code != middleware.CodeRevoked {
		t.Errorf("after revocation: status %d code %q, want 401 %q", res.status, res.problem.Code, middleware.CodeRevoked)
	}
}

func TestStoreFailureIs503(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := newMux(t, newMiddleware(t, middleware.Config{Verifier: f.m}))
	tok, _ := f.create(t, keygate.CreateRequest{Scopes: []string{"billing:read"}})
	f.store.down.Store(true)

	for _, target := range []string{"/me", "/billing"} {
		res := serve(t, h, get(target, "X-API-Key", tok))
		if res.status != http.StatusServiceUnavailable || res.problem.Code != middleware.CodeUnavailable {
			t.Errorf("GET %s with the store down: status %d code %q, want 503 %q", target, res.status, res.problem.Code, middleware.CodeUnavailable)
		}
		if containsAny(res.body, "password", "10.9.8.7", "keygate_internal", "keygate:") {
			t.Errorf("GET %s: body %q reveals the internal error", target, res.body)
		}
		if res.header.Get("WWW-Authenticate") != "" {
			t.Errorf("GET %s: a 503 sent a WWW-Authenticate challenge", target)
		}
	}
	// A public route still works, and the handler can tell why there is no key.
	var seen error
	pub := newMiddleware(t, middleware.Config{Verifier: f.m}).Verify(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = middleware.ErrorFromContext(r.Context())
	}))
	if res := serve(t, pub, get("/public", "X-API-Key", tok)); res.status != 200 {
		t.Errorf("public route with the store down: status %d, want 200", res.status)
	}
	if !errors.Is(seen, keygate.ErrUnavailable) {
		t.Errorf("ErrorFromContext = %v, want keygate.ErrUnavailable", seen)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := newMux(t, newMiddleware(t, middleware.Config{Verifier: f.m}))
	one := int64(1)
	rated, _ := f.create(t, keygate.CreateRequest{Name: "rated", Scopes: []string{"billing:read"},
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 1, Window: 90 * time.Second}}})
	used, _ := f.create(t, keygate.CreateRequest{Name: "used", Scopes: []string{"billing:read"},
		Limits: keygate.Limits{Uses: &one}})
	fenced, _ := f.create(t, keygate.CreateRequest{Name: "fenced", Scopes: []string{"billing:read"},
		Limits: keygate.Limits{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})

	tests := []struct {
		name       string
		tok        string
		remote     string
		status     int
		code       string
		retryAfter string
	}{
		{name: "rate first", tok: rated, status: 200},
		{name: "rate second", tok: rated, status: 429, code: middleware.CodeRateLimited, retryAfter: "90"},
		{name: "uses first", tok: used, status: 200},
		{name: "uses exhausted", tok: used, status: 429, code: middleware.CodeUsageExhausted},
		{name: "address inside", tok: fenced, remote: "10.1.2.3:4567", status: 200},
		{name: "address inside, IPv4-mapped", tok: fenced, remote: "[::ffff:10.1.2.3]:4567", status: 200},
		{name: "address outside", tok: fenced, remote: "192.0.2.1:4567", status: 403, code: middleware.CodeAddressDenied},
		{name: "address unknown", tok: fenced, remote: "pipe", status: 403, code: middleware.CodeAddressDenied},
	}
	for _, tt := range tests { // in order: the limits carry over
		t.Run(tt.name, func(t *testing.T) {
			req := get("/billing", "X-API-Key", tt.tok)
			if tt.remote != "" {
				req.RemoteAddr = tt.remote
			}
			res := serve(t, h, req)
			if res.status != tt.status || res.problem.Code != tt.code {
				t.Fatalf("status %d code %q, want %d %q (body %q)", res.status, res.problem.Code, tt.status, tt.code, res.body)
			}
			if got := res.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

// TestErrorMapping checks the answer to each verifier error, including
// errors no sentinel describes.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err        error
		status     int
		code       string
		retryAfter string
		challenge  string
	}{
		{err: keygate.ErrMalformed, status: 401, code: middleware.CodeMalformed, challenge: "invalid_request"},
		{err: keygate.ErrInvalid, status: 401, code: middleware.CodeInvalid, challenge: "invalid_token"},
		{err: keygate.ErrExpired, status: 401, code: middleware.CodeExpired, challenge: "invalid_token"},
		{err: keygate.ErrRevoked, status: 401, code: middleware.CodeRevoked, challenge: "invalid_token"},
		{err: keygate.ErrDisabled, status: 401, code: middleware.CodeDisabled, challenge: "invalid_token"},
		{err: keygate.ErrAddressDenied, status: 403, code: middleware.CodeAddressDenied},
		{err: keygate.ErrForbidden, status: 403, code: middleware.CodeInsufficientPermission},
		{err: &keygate.RateLimitError{RetryAfter: 1500 * time.Millisecond}, status: 429, code: middleware.CodeRateLimited, retryAfter: "2"},
		{err: &keygate.RateLimitError{RetryAfter: time.Nanosecond}, status: 429, code: middleware.CodeRateLimited, retryAfter: "1"},
		{err: &keygate.RateLimitError{RetryAfter: 3 * time.Second}, status: 429, code: middleware.CodeRateLimited, retryAfter: "3"},
		{err: keygate.ErrRateLimited, status: 429, code: middleware.CodeRateLimited},
		{err: keygate.ErrUsageExhausted, status: 429, code: middleware.CodeUsageExhausted},
		{err: keygate.ErrUnavailable, status: 503, code: middleware.CodeUnavailable},
		{err: errors.Join(keygate.ErrUnavailable, keygate.ErrInvalid), status: 503, code: middleware.CodeUnavailable},
		{err: retryLater{wait: 7500 * time.Millisecond, err: keygate.ErrUnavailable}, status: 503, code: middleware.CodeUnavailable, retryAfter: "8"},
		{err: fmt.Errorf("wrapped: %w", retryLater{wait: time.Minute, err: keygate.ErrUnavailable}), status: 503, code: middleware.CodeUnavailable, retryAfter: "60"},
		{err: retryLater{wait: time.Minute, err: keygate.ErrInvalid}, status: 401, code: middleware.CodeInvalid, challenge: "invalid_token"},
		{err: context.DeadlineExceeded, status: 500, code: middleware.CodeInternal},
		{err: errors.New("secret internal detail"), status: 500, code: middleware.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			t.Parallel()
			v := &fakeVerifier{err: tt.err}
			h := newMiddleware(t, middleware.Config{Verifier: v, Realm: "acme"}).RequireKey(okHandler())
			res := serve(t, h, get("/", "X-API-Key", "kg_anything"))
			if res.status != tt.status || res.problem.Code != tt.code {
				t.Fatalf("status %d code %q, want %d %q", res.status, res.problem.Code, tt.status, tt.code)
			}
			if got := middleware.Code(tt.err); got != tt.code {
				t.Errorf("Code(%v) = %q, want the problem's code %q", tt.err, got, tt.code)
			}
			if got := res.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			wantChallenge := ""
			if tt.challenge != "" {
				wantChallenge = `Api-Key realm="acme", error="` + tt.challenge + `"`
			}
			if got := res.header.Get("WWW-Authenticate"); got != wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, wantChallenge)
			}
			if strings.Contains(res.body, tt.err.Error()) {
				t.Errorf("body %q holds the error text", res.body)
			}
		})
	}
}

// retryLater is a Verifier's error that says when to retry, as package
// client's remote Verifier's outage errors do.
type retryLater struct {
	wait time.Duration
	err  error
}

func (e retryLater) Error() string             { return "retry later: " + e.err.Error() }
func (e retryLater) Unwrap() error             { return e.err }
func (e retryLater) RetryAfter() time.Duration { return e.wait }

func TestVerifierWithoutKeyOrErrorFailsClosed(t *testing.T) {
	t.Parallel()
	h := newMiddleware(t, middleware.Config{Verifier: &fakeVerifier{}}).RequireKey(okHandler())
	if res := serve(t, h, get("/", "X-API-Key", "kg_x")); res.status != 401 {
		t.Errorf("status = %d, want 401", res.status)
	}
}

func TestCustomErrorHandler(t *testing.T) {
	t.Parallel()
	var got *middleware.Problem
	mw := newMiddleware(t, middleware.Config{
		Verifier: &fakeVerifier{err: &keygate.RateLimitError{RetryAfter: time.Minute}},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, p *middleware.Problem) {
			got = p
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(p.Status)
			_, _ = w.Write([]byte("slow down: " + p.Code))
		},
	})
	res := serve(t, mw.RequireKey(okHandler()), get("/", "X-API-Key", "kg_x"))
	if res.status != 429 || res.body != "slow down: rate_limited" {
		t.Errorf("got %d %q, want 429 %q", res.status, res.body, "slow down: rate_limited")
	}
	if res.header.Get("Retry-After") != "60" || res.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v: want Retry-After 60 and Cache-Control no-store set before the handler", res.header)
	}
	if got == nil || got.RetryAfter != time.Minute || !errors.Is(got.Err, keygate.ErrRateLimited) {
		t.Errorf("handler got problem %+v, want RetryAfter 1m and Err matching ErrRateLimited", got)
	}
}

// TestVerifiesOnce checks that stacked middlewares verify a request once,
// and that RequireKey and Require work without Verify in front.
func TestVerifiesOnce(t *testing.T) {
	t.Parallel()
	key := &keygate.Key{}
	key.Name = "k"
	tests := []struct {
		name  string
		chain func(mw *middleware.Middleware) http.Handler
	}{
		{"Verify", func(mw *middleware.Middleware) http.Handler { return mw.Verify(okHandler()) }},
		{"RequireKey alone", func(mw *middleware.Middleware) http.Handler { return mw.RequireKey(okHandler()) }},
		{"Verify Verify RequireKey", func(mw *middleware.Middleware) http.Handler {
			return mw.Verify(mw.Verify(mw.RequireKey(okHandler())))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := &fakeVerifier{key: key}
			res := serve(t, tt.chain(newMiddleware(t, middleware.Config{Verifier: v})), get("/", "X-API-Key", "kg_x"))
			if res.status != 200 || res.body != "k" {
				t.Errorf("got %d %q, want 200 %q", res.status, res.body, "k")
			}
			if tokens, _ := v.calls(); len(tokens) != 1 {
				t.Errorf("verifier called %d times, want 1", len(tokens))
			}
		})
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if k, ok := middleware.FromContext(ctx); ok || k != nil {
		t.Errorf("FromContext(empty) = %v, %v; want nil, false", k, ok)
	}
	if err := middleware.ErrorFromContext(ctx); err != nil {
		t.Errorf("ErrorFromContext(empty) = %v, want nil", err)
	}
	if _, ok := middleware.FromContext(middleware.NewContext(ctx, nil)); ok {
		t.Error("FromContext(NewContext(nil)) reported a key")
	}
	key := &keygate.Key{}
	got, ok := middleware.FromContext(middleware.NewContext(ctx, key))
	if !ok || got != key {
		t.Errorf("FromContext(NewContext(key)) = %p, %v; want %p, true", got, ok, key)
	}

	// A request carrying a key from NewContext is not verified again.
	v := &fakeVerifier{err: keygate.ErrInvalid}
	h := newMiddleware(t, middleware.Config{Verifier: v}).RequireKey(okHandler())
	req := get("/").WithContext(middleware.NewContext(ctx, key))
	if res := serve(t, h, req); res.status != 200 {
		t.Errorf("status = %d, want 200", res.status)
	}
	if tokens, _ := v.calls(); len(tokens) != 0 {
		t.Errorf("verifier called %d times, want 0", len(tokens))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	v := &fakeVerifier{}
	tests := []struct {
		name string
		cfg  middleware.Config
	}{
		{"no verifier", middleware.Config{}},
		{"nil extractor", middleware.Config{Verifier: v, Extractors: []middleware.Extractor{nil}}},
		{"bad proxy prefix", middleware.Config{Verifier: v, TrustedProxies: []netip.Prefix{{}}}},
		{"quote in realm", middleware.Config{Verifier: v, Realm: `a"b`}},
		{"non-ASCII realm", middleware.Config{Verifier: v, Realm: "café"}},
		{"space in scheme", middleware.Config{Verifier: v, Schemes: []string{"Api Key"}}},
		{"slash in scheme", middleware.Config{Verifier: v, Schemes: []string{"Api/Key"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := middleware.New(tt.cfg)
			if !errors.Is(err, middleware.ErrInvalidConfig) || mw != nil {
				t.Errorf("New = %v, %v; want nil, ErrInvalidConfig", mw, err)
			}
		})
	}
}

func TestRequireRejectsBadPermissions(t *testing.T) {
	t.Parallel()
	mw := newMiddleware(t, middleware.Config{Verifier: &fakeVerifier{}})
	for _, perms := range [][]string{nil, {""}, {"cluster"}, {"cluster:read", "clu*:read"}} {
		if _, err := mw.Require(nil, perms...); !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Errorf("Require(%q) error = %v, want ErrInvalidConfig", perms, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustRequire with an invalid permission did not panic")
		}
	}()
	mw.MustRequire(nil, "not a permission")
}

// generate returns a well-formed token of the default format that no store
// holds.
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

func post(target string, headers ...string) *http.Request {
	req := get(target, headers...)
	req.Method = http.MethodPost
	return req
}

// TestImportedTokenInHeader: a token of another system, imported with its
// punctuation, passes through the X-API-Key header (which is not held to
// token68) and is refused in Authorization (which is).
func TestImportedTokenInHeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	m, err := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler),
		ImportedTokens: func(s string) bool { return strings.HasPrefix(s, "legacy:") }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	const legacy = "legacy:Zq8!r#T2$w%9@xY*Lp^3"
	tok, err := apikey.ParseImported(legacy)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Import(ctx, keygate.System(), []keygate.ImportRequest{{Token: tok,
		CreateRequest: keygate.CreateRequest{Name: "old", Scopes: []string{"billing:read"}, Expiry: keygate.NeverExpire()}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Import: %v, %v", err, res[0].Err)
	}
	h := newMiddleware(t, middleware.Config{Verifier: m}).RequireKey(okHandler())
	if r := serve(t, h, get("/", "X-API-Key", legacy)); r.status != http.StatusOK || r.body != "old" {
		t.Errorf("X-API-Key: %d %q, want 200 old", r.status, r.body)
	}
	if r := serve(t, h, get("/", "Authorization", "Api-Key "+legacy)); r.status != http.StatusUnauthorized || r.problem.Code != middleware.CodeMalformed {
		t.Errorf("Authorization: %d %q, want 401 malformed", r.status, r.problem.Code)
	}
}

// TestRateLimitHeaders: with Config.RateLimitHeaders, every response to a
// request with a rate-limited key says what is left of its limit; not
// without the option, nor for a key without a limit, nor from a Verifier
// that cannot tell.
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	limited, _ := f.create(t, keygate.CreateRequest{Name: "limited", Scopes: []string{"billing:read"},
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 3, Window: time.Minute}}})
	free, _ := f.create(t, keygate.CreateRequest{Name: "free", Scopes: []string{"billing:read"}})
	mw := newMiddleware(t, middleware.Config{Verifier: f.m, RateLimitHeaders: true})
	// Verify and Require both in the chain: the request is verified, and
	// its fields set, once.
	h := mw.Verify(mw.MustRequire(nil, "billing:read")(okHandler()))
	for i, want := range []struct{ remaining, reset string }{{"2", "20"}, {"1", "40"}, {"0", "60"}} {
		r := serve(t, h, get("/", "X-API-Key", limited))
		got := []string{r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"), r.header.Get("RateLimit-Reset"), r.header.Get("RateLimit-Policy")}
		if r.status != http.StatusOK || !slices.Equal(got, []string{"3", want.remaining, want.reset, "3;w=60"}) {
			t.Errorf("request %d: %d, RateLimit fields %q; want 200, [3 %s %s 3;w=60]", i+1, r.status, got, want.remaining, want.reset)
		}
	}
	r := serve(t, h, get("/", "X-API-Key", limited))
	got := []string{r.header.Get("Retry-After"), r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"), r.header.Get("RateLimit-Reset"), r.header.Get("RateLimit-Policy")}
	if r.status != http.StatusTooManyRequests || !slices.Equal(got, []string{"20", "3", "0", "60", "3;w=60"}) {
		t.Errorf("request 4: %d, Retry-After and RateLimit fields %q; want 429, [20 3 0 60 3;w=60]", r.status, got)
	}
	// A shared limiter's refusal: the limit, nothing left, no reset known.
	shared := newMiddleware(t, middleware.Config{RateLimitHeaders: true, Verifier: &fakeVerifier{
		err: &keygate.RateLimitError{RetryAfter: 5 * time.Second, Limit: keygate.RateLimit{Requests: 3, Window: time.Minute}}}})
	r = serve(t, shared.RequireKey(okHandler()), get("/", "X-API-Key", limited))
	got = []string{r.header.Get("Retry-After"), r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"), r.header.Get("RateLimit-Reset"), r.header.Get("RateLimit-Policy")}
	if r.status != http.StatusTooManyRequests || !slices.Equal(got, []string{"5", "3", "0", "", "3;w=60"}) {
		t.Errorf("a shared limiter's refusal: %d, Retry-After and RateLimit fields %q; want 429, [5 3 0  3;w=60]", r.status, got)
	}
	f.clock.Advance(30 * time.Second)
	if r := serve(t, h, get("/", "X-API-Key", limited)); r.header.Get("RateLimit-Remaining") != "0" || r.header.Get("RateLimit-Reset") != "50" {
		t.Errorf("30s later: remaining %q, reset %q; want 0 (the request took the one that came back), 50",
			r.header.Get("RateLimit-Remaining"), r.header.Get("RateLimit-Reset"))
	}
	// A Verifier that is no RateStatusReporter, returning the rate-limited key.
	f.clock.Advance(time.Hour)
	limitedKey, err := f.m.Verify(context.Background(), limited)
	if err != nil || limitedKey.RateLimit == 0 {
		t.Fatalf("Verify(limited) = %v, %v", limitedKey, err)
	}
	for _, tt := range []struct {
		name  string
		h     http.Handler
		token string
	}{
		{"a key without a rate limit", h, free},
		{"without the option", newMiddleware(t, middleware.Config{Verifier: f.m}).RequireKey(okHandler()), limited},
		{"a Verifier that cannot tell", newMiddleware(t, middleware.Config{Verifier: &fakeVerifier{key: limitedKey}, RateLimitHeaders: true}).RequireKey(okHandler()), limited},
	} {
		f.clock.Advance(time.Hour)
		if r := serve(t, tt.h, get("/", "X-API-Key", tt.token)); r.status != http.StatusOK || r.header.Get("RateLimit-Limit") != "" {
			t.Errorf("%s: %d, RateLimit-Limit %q; want 200, none", tt.name, r.status, r.header.Get("RateLimit-Limit"))
		}
	}
}

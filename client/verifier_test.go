package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/server"
)

// fakeClock is a settable clock for a Verifier.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// verifierFor returns a Verifier over e's server with a key holding
// apikey:verify, and its clock.
func verifierFor(t *testing.T, e *env, cfg client.VerifierConfig) (*client.Verifier, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Now()}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	svc := e.token(t, keygate.CreateRequest{Name: "verifier-" + uuid.NewString(), Scopes: []string{"apikey:verify"}})
	return e.clientFor(t, svc).NewVerifier(cfg), clock
}

func TestClientVerifyAndRoles(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tok := e.token(t, keygate.CreateRequest{Name: "k", Workspace: "tiger", Role: "viewer"})
	v, _, err := e.client.Verify(ctx(t), client.VerifyRequest{Token: tok, Permission: "cluster:read", Workspace: "tiger"})
	if err != nil || !v.Valid || v.Key.Name != "k" {
		t.Fatalf("Verify = %+v, %v; want valid key k", v, err)
	}
	v, _, err = e.client.Verify(ctx(t), client.VerifyRequest{Token: tok, Permission: "cluster:write", Workspace: "tiger"})
	if err != nil || v.Valid || v.Code != middleware.CodeInsufficientPermission {
		t.Fatalf("Verify without the permission = %+v, %v; want insufficient_permission", v, err)
	}
	roles, _, err := e.client.Roles(ctx(t))
	if err != nil || len(roles) != 4 {
		t.Fatalf("Roles = %v, %v; want the 4 default roles", roles, err)
	}
	_, _, err = e.clientFor(t, tok).Roles(ctx(t))
	wantProblem(t, err, http.StatusForbidden, "forbidden", keygate.ErrForbidden)
	_, _, err = e.clientFor(t, tok).Verify(ctx(t), client.VerifyRequest{Token: tok})
	wantProblem(t, err, http.StatusForbidden, "forbidden", keygate.ErrForbidden)
}

func TestVerifierVerdicts(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rv, _ := verifierFor(t, e, client.VerifierConfig{})
	c := ctx(t)
	valid := e.token(t, keygate.CreateRequest{Name: "valid", Workspace: "tiger", Role: "viewer", Scopes: []string{"billing:write"}})
	revokedC, err := e.m.Create(c, keygate.System(), keygate.CreateRequest{Name: "revoked", Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Revoke(c, keygate.System(), revokedC.Key.ID); err != nil {
		t.Fatal(err)
	}
	fenced := e.token(t, keygate.CreateRequest{Name: "fenced", Scopes: []string{"cluster:read"},
		Limits: keygate.Limits{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})

	k, err := rv.VerifyFrom(c, valid, netip.Addr{})
	if err != nil {
		t.Fatalf("valid token: %v", err)
	}
	if k.Name != "valid" || k.Workspace != "tiger" || k.SuperAdmin() ||
		!k.Allows(permission.MustParse("cluster:read"), "tiger") || !k.Allows(permission.MustParse("billing:write"), "tiger") ||
		k.Allows(permission.MustParse("cluster:write"), "tiger") || k.Allows(permission.MustParse("cluster:read"), "lion") {
		t.Errorf("remote key %q does not allow exactly what its role and scopes say", k.Name)
	}
	for _, tt := range []struct {
		name  string
		token string
		addr  netip.Addr
		want  error
		calls int64 // server calls the check makes
	}{
		{"malformed: no call", "kg_nope", netip.Addr{}, keygate.ErrMalformed, 0},
		{"revoked", revokedC.Token.Reveal(), netip.Addr{}, keygate.ErrRevoked, 1},
		{"revoked again: negative cache", revokedC.Token.Reveal(), netip.Addr{}, keygate.ErrRevoked, 0},
		{"allow-listed, outside", fenced, netip.MustParseAddr("192.0.2.1"), keygate.ErrAddressDenied, 1},
		{"allow-listed, inside", fenced, netip.MustParseAddr("10.1.1.1"), nil, 1},
		{"allow-listed, outside again: checked on the cached key", fenced, netip.MustParseAddr("192.0.2.1"), keygate.ErrAddressDenied, 0},
		{"valid again: cached", valid, netip.Addr{}, nil, 0},
	} {
		before := e.verifyCalls.Load()
		_, err := rv.VerifyFrom(c, tt.token, tt.addr)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
		if got := e.verifyCalls.Load() - before; got != tt.calls {
			t.Errorf("%s: %d server calls, want %d", tt.name, got, tt.calls)
		}
	}
}

// TestVerifierCacheBounds checks what the cache may serve: a revocation is
// seen after CacheTTL, a cached key's own expiry is checked locally, and a
// limited key is never served from the cache.
func TestVerifierCacheBounds(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := ctx(t)
	rv, clock := verifierFor(t, e, client.VerifierConfig{CacheTTL: 10 * time.Second})
	created, err := e.m.Create(c, keygate.System(), keygate.CreateRequest{Name: "k", Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	tok := created.Token.Reveal()
	if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Revoke(c, keygate.System(), created.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); err != nil {
		t.Errorf("within CacheTTL after a revocation: %v (the documented staleness)", err)
	}
	clock.Advance(11 * time.Second)
	if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); !errors.Is(err, keygate.ErrRevoked) {
		t.Errorf("after CacheTTL: got %v, want ErrRevoked", err)
	}

	long, clock2 := verifierFor(t, e, client.VerifierConfig{CacheTTL: 100 * time.Hour})
	soon := e.token(t, keygate.CreateRequest{Name: "soon", Scopes: []string{"cluster:read"}, Expiry: keygate.ExpireAfter(time.Hour)})
	if _, err := long.VerifyFrom(c, soon, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	clock2.Advance(2 * time.Hour)
	before := e.verifyCalls.Load()
	if _, err := long.VerifyFrom(c, soon, netip.Addr{}); !errors.Is(err, keygate.ErrExpired) {
		t.Errorf("cached key past its expiry: got %v, want ErrExpired", err)
	}
	if e.verifyCalls.Load() != before {
		t.Error("a cached key's expiry was not checked locally")
	}

	three := int64(3)
	limited := e.token(t, keygate.CreateRequest{Name: "limited", Scopes: []string{"cluster:read"}, Limits: keygate.Limits{Uses: &three}})
	rated := e.token(t, keygate.CreateRequest{Name: "rated", Scopes: []string{"cluster:read"}, Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 2, Window: time.Hour}}})
	for _, tt := range []struct {
		token string
		want  error
	}{{limited, keygate.ErrUsageExhausted}, {rated, keygate.ErrRateLimited}} {
		before := e.verifyCalls.Load()
		var last error
		for range 4 {
			_, last = long.VerifyFrom(c, tt.token, netip.Addr{})
		}
		if !errors.Is(last, tt.want) {
			t.Errorf("fourth use of a limited key: got %v, want %v", last, tt.want)
		}
		if got := e.verifyCalls.Load() - before; got != 4 {
			t.Errorf("4 uses of a limited key made %d server calls, want 4", got)
		}
	}
	var rl *keygate.RateLimitError
	if _, err := long.VerifyFrom(c, rated, netip.Addr{}); !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Errorf("rate-limited remote verdict: %v, want a *RateLimitError with RetryAfter", err)
	}
}

func TestVerifierCoalescesMisses(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rv, _ := verifierFor(t, e, client.VerifierConfig{})
	c := ctx(t)
	tok := e.token(t, keygate.CreateRequest{Name: "popular", Scopes: []string{"cluster:read"}})
	ten := int64(10)
	limited := e.token(t, keygate.CreateRequest{Name: "limited", Scopes: []string{"cluster:read"}, Limits: keygate.Limits{Uses: &ten}})

	var wg sync.WaitGroup
	var failed, passed atomic.Int64
	for range 50 {
		wg.Go(func() {
			if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || e.verifyCalls.Load() > 2 {
		t.Errorf("50 concurrent misses: %d failed, %d server calls; want 0 and 1 (2 at most, if one came late)", failed.Load(), e.verifyCalls.Load())
	}
	// A limited key's uses are never shared: exactly 10 of 30 pass.
	failed.Store(0)
	for range 30 {
		wg.Go(func() {
			_, err := rv.VerifyFrom(c, limited, netip.Addr{})
			switch {
			case err == nil:
				passed.Add(1)
			case !errors.Is(err, keygate.ErrUsageExhausted):
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if passed.Load() != 10 || failed.Load() != 0 {
		t.Errorf("30 concurrent uses of a 10-use key: %d passed, %d failed otherwise; want 10 and 0", passed.Load(), failed.Load())
	}
}

// TestVerifierFailsClosed checks that nothing but a verdict about the
// token ever passes for one: outages and the verifier's own bad
// credentials are ErrUnavailable.
func TestVerifierFailsClosed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := ctx(t)
	tok := e.token(t, keygate.CreateRequest{Name: "k", Scopes: []string{"cluster:read"}})
	noRight := e.clientFor(t, e.token(t, keygate.CreateRequest{Name: "no-right", Scopes: []string{"apikey:view"}})).NewVerifier(client.VerifierConfig{})
	revokedSvc, err := e.m.Create(c, keygate.System(), keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Revoke(c, keygate.System(), revokedSvc.Key.ID); err != nil {
		t.Fatal(err)
	}
	revoked := e.clientFor(t, revokedSvc.Token.Reveal()).NewVerifier(client.VerifierConfig{})
	for name, rv := range map[string]*client.Verifier{"verifier lacks apikey:verify": noRight, "verifier's key revoked": revoked} {
		_, err := rv.VerifyFrom(c, tok, netip.Addr{})
		if !errors.Is(err, keygate.ErrUnavailable) || errors.Is(err, keygate.ErrRevoked) || errors.Is(err, keygate.ErrForbidden) {
			t.Errorf("%s: got %v, want ErrUnavailable only", name, err)
		}
	}
	for name, h := range map[string]http.HandlerFunc{
		"500": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) },
		"503 problem": func(w http.ResponseWriter, r *http.Request) {
			middleware.WriteProblem(w, r, &middleware.Problem{Status: 503, Code: "unavailable"})
		},
		"garbage 200": func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("{not json")) },
		"valid without a key": func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"valid":true}`))
		},
		"unknown code": func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"valid":false,"code":"maybe"}`))
		},
		"bad permission": func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"valid":true,"key":{"id":"0190e5a8-0000-7000-8000-000000000000","name":"x"},"permissions":["not one"]}`))
		},
		"slow": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		},
	} {
		srv := httptest.NewServer(h)
		cl, err := client.New(srv.URL, client.WithHTTPClient(&http.Client{Timeout: 200 * time.Millisecond}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.NewVerifier(client.VerifierConfig{}).VerifyFrom(c, tok, netip.Addr{})
		if !errors.Is(err, keygate.ErrUnavailable) {
			t.Errorf("%s: got %v, want ErrUnavailable", name, err)
		}
		srv.Close()
	}
	// A server that is down.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cl, _ := client.New(url)
	if _, err := cl.NewVerifier(client.VerifierConfig{}).VerifyFrom(c, tok, netip.Addr{}); !errors.Is(err, keygate.ErrUnavailable) {
		t.Errorf("server down: got %v, want ErrUnavailable", err)
	}
}

// TestVerifierBehindMiddleware checks that the middleware answers a remote
// verdict exactly as a local one.
func TestVerifierBehindMiddleware(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rv, _ := verifierFor(t, e, client.VerifierConfig{})
	mw, err := middleware.New(middleware.Config{Verifier: rv})
	if err != nil {
		t.Fatal(err)
	}
	h := mw.MustRequire(middleware.PathValue("ws"), "cluster:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := middleware.FromContext(r.Context())
		w.Write([]byte(k.Name))
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /w/{ws}/clusters", h)
	viewer := e.token(t, keygate.CreateRequest{Name: "viewer", Workspace: "tiger", Role: "viewer"})
	for _, tt := range []struct {
		path, token string
		status      int
	}{
		{"/w/tiger/clusters", viewer, 200},
		{"/w/lion/clusters", viewer, 403},
		{"/w/tiger/clusters", "kg_bad", 401},
		{"/w/tiger/clusters", "", 401},
	} {
		r := httptest.NewRequest("GET", tt.path, nil)
		if tt.token != "" {
			r.Header.Set("Authorization", "Bearer "+tt.token)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%s with %q: %d %s, want %d", tt.path, tt.token, w.Code, w.Body, tt.status)
		}
	}
}

func TestClientDisableEnableAndExpiring(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := ctx(t)
	soon, err := e.m.Create(c, keygate.System(), keygate.CreateRequest{Name: "soon", Scopes: []string{"cluster:read"}, Expiry: keygate.ExpireAfterDays(2)})
	if err != nil {
		t.Fatal(err)
	}
	e.token(t, keygate.CreateRequest{Name: "later", Scopes: []string{"cluster:read"}, Expiry: keygate.ExpireAfterDays(30)})
	list, _, err := e.client.List(c, client.ListOptions{ExpiringWithin: "7d"})
	if err != nil || len(list.Keys) != 1 || list.Keys[0].ID != soon.Key.ID {
		t.Fatalf("keys expiring within 7 days: %v, %v; want just %q", list, err, "soon")
	}
	k, _, err := e.client.Disable(c, soon.Key.ID)
	if err != nil || k.DisabledAt.IsZero() {
		t.Fatalf("Disable: %+v, %v", k, err)
	}
	if _, err := e.m.Verify(c, soon.Token.Reveal()); !errors.Is(err, keygate.ErrDisabled) {
		t.Errorf("a disabled key: %v, want ErrDisabled", err)
	}
	if k, _, err = e.client.Enable(c, soon.Key.ID); err != nil || !k.DisabledAt.IsZero() {
		t.Fatalf("Enable: %+v, %v", k, err)
	}
	if _, err := e.m.Verify(c, soon.Token.Reveal()); err != nil {
		t.Errorf("an enabled key: %v", err)
	}
	_, _, err = e.client.List(c, client.ListOptions{ExpiringWithin: "soon"})
	wantProblem(t, err, http.StatusBadRequest, "invalid_field", keygate.ErrInvalidRequest)
}

func TestClientPrivileges(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := ctx(t)
	created, err := e.m.Create(c, keygate.System(), keygate.CreateRequest{Name: "p", Workspace: "tiger", Role: "viewer", Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	k, err := e.m.Verify(c, created.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	e.m.Exercised(k, permission.MustParse("cluster:read"), "tiger")
	if err := e.m.Flush(c); err != nil {
		t.Fatal(err)
	}
	rep, _, err := e.client.Privileges(c, created.Key.ID, "7d")
	if err != nil || len(rep.Suggested) != 1 || rep.Suggested[0] != "cluster:read" || len(rep.Unused) != 0 || rep.SuggestedWorkspace != "tiger" {
		t.Fatalf("Privileges = %+v, %v", rep, err)
	}
	_, _, err = e.client.Privileges(c, created.Key.ID, "whenever")
	wantProblem(t, err, http.StatusBadRequest, "invalid_field", keygate.ErrInvalidRequest)
}

// TestVerifierRateLimitHeaders: a service that checks keys against a
// token service sends its clients the token service's RateLimit figures,
// on every answer and on the refusal.
func TestVerifierRateLimitHeaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, api := tokenService(t, keygate.Config{})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	create := func(req keygate.CreateRequest) string {
		req.Expiry = keygate.NeverExpire()
		c, err := m.Create(ctx, keygate.System(), req)
		if err != nil {
			t.Fatal(err)
		}
		return c.Token.Reveal()
	}
	verifierToken := create(keygate.CreateRequest{Name: "verifier", Scopes: []string{"apikey:verify"}})
	limited := create(keygate.CreateRequest{Name: "limited", Scopes: []string{"cluster:read"},
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 3, Window: time.Minute}}})
	free := create(keygate.CreateRequest{Name: "free", Scopes: []string{"cluster:read"}})
	c, err := client.New(srv.URL, client.WithToken(verifierToken))
	if err != nil {
		t.Fatal(err)
	}
	remote, err := middleware.New(middleware.Config{Verifier: c.NewVerifier(client.VerifierConfig{}), RateLimitHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	h := remote.RequireKey(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	fields := func(tok string) (int, []string) {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-API-Key", tok)
		h.ServeHTTP(rec, req)
		hd := rec.Header()
		return rec.Code, []string{hd.Get("Retry-After"), hd.Get("RateLimit-Limit"), hd.Get("RateLimit-Remaining"), hd.Get("RateLimit-Reset"), hd.Get("RateLimit-Policy")}
	}
	for i, want := range [][]string{{"", "3", "2", "20", "3;w=60"}, {"", "3", "1", "40", "3;w=60"}, {"", "3", "0", "60", "3;w=60"}} {
		if code, got := fields(limited); code != http.StatusNoContent || !slices.Equal(got, want) {
			t.Errorf("request %d: %d %q, want 204 %q", i+1, code, got, want)
		}
	}
	if code, got := fields(limited); code != http.StatusTooManyRequests || !slices.Equal(got, []string{"20", "3", "0", "60", "3;w=60"}) {
		t.Errorf("request 4: %d %q, want 429 [20 3 0 60 3;w=60]", code, got)
	}
	if code, got := fields(free); code != http.StatusNoContent || !slices.Equal(got, []string{"", "", "", "", ""}) {
		t.Errorf("a key without a rate limit: %d %q, want 204 and no fields", code, got)
	}
}

// documentedVerdictCodes returns the codes of an invalid verdict as the
// OpenAPI document lists them (VerifyResponse.code's enum).
func documentedVerdictCodes(t testing.TB) []string {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas struct {
				VerifyResponse struct {
					Properties struct {
						Code struct {
							Enum []string `json:"enum"`
						} `json:"code"`
					} `json:"properties"`
				} `json:"VerifyResponse"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(server.OpenAPI(), &doc); err != nil {
		t.Fatalf("the OpenAPI document: %v", err)
	}
	codes := doc.Components.Schemas.VerifyResponse.Properties.Code.Enum
	if len(codes) == 0 {
		t.Fatal("the OpenAPI document lists no verdict code")
	}
	return codes
}

// TestVerifierKnowsEveryVerdictCode answers a Verifier with each verdict
// code the OpenAPI document lists: each must become the error the
// middleware answers with that very code (so a remote refusal is answered
// as a local one), never ErrUnavailable. A code added to the document and
// not to the Verifier fails here.
func TestVerifierKnowsEveryVerdictCode(t *testing.T) {
	t.Parallel()
	vs := &verifyServer{status: http.StatusOK}
	srv := httptest.NewServer(vs)
	t.Cleanup(srv.Close)
	format, err := apikey.NewFormat("kg")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	v := c.NewVerifier(client.VerifierConfig{CacheTTL: -1, NegativeCacheTTL: -1})
	for _, code := range documentedVerdictCodes(t) {
		vs.mu.Lock()
		vs.body = []byte(`{"valid":false,"code":"` + code + `","retry_after":7}`)
		if code != middleware.CodeRateLimited {
			vs.body = []byte(`{"valid":false,"code":"` + code + `"}`)
		}
		vs.mu.Unlock()
		k, err := v.VerifyFrom(ctx(t), tok.Reveal(), netip.Addr{})
		if k != nil || err == nil || errors.Is(err, keygate.ErrUnavailable) {
			t.Errorf("verdict %q: %v, %v; want the refusal it stands for", code, k, err)
			continue
		}
		if got := middleware.Code(err); got != code {
			t.Errorf("verdict %q: the middleware would answer %q (%v)", code, got, err)
		}
		for _, want := range server.ErrorsFor(code) {
			if !errors.Is(err, want) {
				t.Errorf("verdict %q: %v, want it to match %v", code, err, want)
			}
		}
	}
}

// TestVerifierDisabledKey: a disabled key is refused as disabled (401
// disabled behind the middleware, counted by its failure throttle), never
// as an outage, and the refusal is cached like the other refusals.
func TestVerifierDisabledKey(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := ctx(t)
	rv, clock := verifierFor(t, e, client.VerifierConfig{})
	created, err := e.m.Create(c, keygate.System(), keygate.CreateRequest{Name: "off", Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	tok := created.Token.Reveal()
	if _, err := e.m.Disable(c, keygate.System(), created.Key.ID); err != nil {
		t.Fatal(err)
	}
	before := e.verifyCalls.Load()
	for i := range 3 {
		if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); !errors.Is(err, keygate.ErrDisabled) || errors.Is(err, keygate.ErrUnavailable) {
			t.Fatalf("use %d of a disabled key: %v, want ErrDisabled", i+1, err)
		}
	}
	if got := e.verifyCalls.Load() - before; got != 1 {
		t.Errorf("3 uses of a disabled key made %d server calls, want 1 (the refusal cached)", got)
	}
	if _, err := e.m.Enable(c, keygate.System(), created.Key.ID); err != nil {
		t.Fatal(err)
	}
	clock.Advance(client.DefaultVerifierNegativeCacheTTL)
	if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); err != nil {
		t.Errorf("enabled again, after NegativeCacheTTL: %v", err)
	}
	if _, err := e.m.Disable(c, keygate.System(), created.Key.ID); err != nil {
		t.Fatal(err)
	}

	throttled, _ := verifierFor(t, e, client.VerifierConfig{})
	mw, err := middleware.New(middleware.Config{Verifier: throttled, FailureLimit: middleware.FailureLimit{Failures: 2, Window: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	h := mw.RequireKey(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for i, want := range []string{middleware.CodeDisabled, middleware.CodeDisabled, middleware.CodeTooManyFailures} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-API-Key", tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var p middleware.Problem
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		if p.Code != want || w.Code == http.StatusServiceUnavailable {
			t.Errorf("request %d with a disabled key: %d %q, want %q", i+1, w.Code, p.Code, want)
		}
	}
}

// slowTransport is a transport whose answers arrive late: each round trip
// advances clock by delay.
type slowTransport struct {
	clock *fakeClock
	delay time.Duration
}

func (s slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	s.clock.Advance(s.delay)
	return resp, err
}

// TestVerifierCacheTTLFromRequest: a verdict is cached for CacheTTL from
// when it was asked for, not from when the answer arrived, so a slow answer
// does not stretch how long a revoked key is accepted.
func TestVerifierCacheTTLFromRequest(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := ctx(t)
	clock := &fakeClock{now: time.Now()}
	svc := e.token(t, keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}})
	cl, err := client.New(e.baseURL, client.WithToken(svc), client.WithHTTPClient(&http.Client{Transport: slowTransport{clock, 15 * time.Second}}))
	if err != nil {
		t.Fatal(err)
	}
	rv := cl.NewVerifier(client.VerifierConfig{CacheTTL: 10 * time.Second, NegativeCacheTTL: 10 * time.Second, Now: clock.Now})
	created, err := e.m.Create(c, keygate.System(), keygate.CreateRequest{Name: "k", Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	tok := created.Token.Reveal()
	if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	// Asked at t0, answered at t0+15s: the verdict was good until t0+10s.
	if _, err := e.m.Revoke(c, keygate.System(), created.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); !errors.Is(err, keygate.ErrRevoked) {
		t.Errorf("15 s after asking, with CacheTTL 10 s, a key revoked since: %v, want ErrRevoked", err)
	}
	// The refusal was asked for at t0+15s and answered at t0+30s: gone.
	before := e.verifyCalls.Load()
	if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); !errors.Is(err, keygate.ErrRevoked) {
		t.Errorf("again: %v, want ErrRevoked", err)
	}
	if got := e.verifyCalls.Load() - before; got != 1 {
		t.Errorf("a refusal answered after its NegativeCacheTTL was served from the cache (%d server calls, want 1)", got)
	}
}

// TestVerifierOldSecretGrace: a key's previous secret, cached during a
// regeneration's grace period, is refused once the grace ends, however
// long CacheTTL is; the new secret goes on.
func TestVerifierOldSecretGrace(t *testing.T) {
	t.Parallel()
	c := ctx(t)
	clock := &fakeClock{now: time.Now()}
	m, api := tokenService(t, keygate.Config{Now: clock.Now})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	svc, err := m.Create(c, keygate.System(), keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(srv.URL, client.WithToken(svc.Token.Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	rv := cl.NewVerifier(client.VerifierConfig{CacheTTL: 100 * time.Hour, Now: clock.Now})
	old, err := m.Create(c, keygate.System(), keygate.CreateRequest{Name: "k", Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	regen, err := m.Regenerate(c, keygate.System(), old.Key.ID, keygate.RegenerateRequest{Expiry: keygate.NeverExpire(), GracePeriod: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{old.Token.Reveal(), regen.Token.Reveal()} {
		if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); err != nil {
			t.Fatalf("within the grace period: %v", err)
		}
	}
	clock.Advance(2 * time.Minute)
	// The verdict said the old secret expires with its grace: refused
	// from the cache, as expired.
	if _, err := rv.VerifyFrom(c, old.Token.Reveal(), netip.Addr{}); !errors.Is(err, keygate.ErrExpired) {
		t.Errorf("the old secret after its grace period: %v, want ErrExpired", err)
	}
	if _, err := rv.VerifyFrom(c, regen.Token.Reveal(), netip.Addr{}); err != nil {
		t.Errorf("the new secret after the old one's grace period: %v", err)
	}
}

// TestVerifierUnknownTokensEvictNoKey floods a Verifier with made-up
// tokens (well formed, so each reaches the server and is cached as
// unknown): the valid keys it has cached stay cached, as in the Manager,
// which keeps unknown tokens apart.
func TestVerifierUnknownTokensEvictNoKey(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := ctx(t)
	rv, _ := verifierFor(t, e, client.VerifierConfig{CacheSize: 160})
	var valid []string
	for i := range 8 {
		valid = append(valid, e.token(t, keygate.CreateRequest{Name: "k" + strconv.Itoa(i), Scopes: []string{"cluster:read"}}))
	}
	for _, tok := range valid {
		if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	format, err := apikey.NewFormat("kg")
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		made, err := format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rv.VerifyFrom(c, made.Reveal(), netip.Addr{}); !errors.Is(err, keygate.ErrInvalid) {
			t.Fatalf("a made-up token: %v, want ErrInvalid", err)
		}
	}
	before := e.verifyCalls.Load()
	for _, tok := range valid {
		if _, err := rv.VerifyFrom(c, tok, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.verifyCalls.Load() - before; got != 0 {
		t.Errorf("after 500 made-up tokens, %d of 8 cached keys were asked for again, want 0", got)
	}
}

// flakyService serves api unless told to fail: mode 1 drops the
// connection (an unreachable service), mode 2 answers 503 with
// Retry-After: 30.
type flakyService struct {
	api  http.Handler
	mode atomic.Int32
}

func (f *flakyService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch f.mode.Load() {
	case 1:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	case 2:
		w.Header().Set("Retry-After", "30")
		middleware.WriteProblem(w, r, &middleware.Problem{Type: "about:blank", Title: "Service Unavailable", Status: 503, Code: "unavailable"})
	default:
		f.api.ServeHTTP(w, r)
	}
}

// logRecords is a slog handler keeping what it is given.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// take returns the records logged since the last take, each as its level,
// message and attributes.
func (h *logRecords) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		s := r.Level.String() + " " + r.Message
		r.Attrs(func(a slog.Attr) bool {
			s += " " + a.String()
			return true
		})
		out = append(out, s)
	}
	h.recs = nil
	return out
}

// TestVerifierOutage: when the token service cannot be reached, the
// Verifier tells its host through its Logger (one warning per
// OutageLogInterval, with the failures since the last, and one record when
// it is back), and the 503 the middleware answers carries Retry-After: the
// token service's own, or VerifierConfig.RetryAfter.
func TestVerifierOutage(t *testing.T) {
	t.Parallel()
	c := ctx(t)
	m, api := tokenService(t, keygate.Config{})
	svc := &flakyService{api: api}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	create := func(name string, scopes ...string) string {
		k, err := m.Create(c, keygate.System(), keygate.CreateRequest{Name: name, Scopes: scopes, Expiry: keygate.NeverExpire()})
		if err != nil {
			t.Fatal(err)
		}
		return k.Token.Reveal()
	}
	own, caller := create("svc", "apikey:verify"), create("caller", "cluster:read")
	cl, err := client.New(srv.URL, client.WithToken(own))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecords{}
	clock := &fakeClock{now: time.Now()}
	rv := cl.NewVerifier(client.VerifierConfig{CacheTTL: -1, Now: clock.Now, Logger: slog.New(logs), RetryAfter: 4 * time.Second})
	mw, err := middleware.New(middleware.Config{Verifier: rv})
	if err != nil {
		t.Fatal(err)
	}
	h := mw.RequireKey(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	send := func() (int, string) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-API-Key", caller)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Header().Get("Retry-After")
	}
	if code, _ := send(); code != http.StatusNoContent {
		t.Fatalf("token service up: %d, want 204", code)
	}
	svc.mode.Store(1)
	for i := range 5 {
		if code, ra := send(); code != http.StatusServiceUnavailable || ra != "4" {
			t.Errorf("unreachable token service, request %d: %d Retry-After %q, want 503 and 4", i+1, code, ra)
		}
	}
	var all []string
	got := logs.take()
	all = append(all, got...)
	if len(got) != 1 || !strings.HasPrefix(got[0], "WARN client: token service unavailable") || !strings.Contains(got[0], "failures=1") {
		t.Errorf("5 failed calls within a minute logged %q, want one warning with failures=1", got)
	}
	svc.mode.Store(2)
	clock.Advance(client.DefaultVerifierOutageLogInterval)
	if code, ra := send(); code != http.StatusServiceUnavailable || ra != "30" {
		t.Errorf("token service answering 503 Retry-After 30: %d Retry-After %q, want 503 and 30", code, ra)
	}
	got = logs.take()
	all = append(all, got...)
	if len(got) != 1 || !strings.Contains(got[0], "failures=5") || !strings.Contains(got[0], "503") {
		t.Errorf("a minute later, logged %q, want one warning with failures=5 (the 4 not told and this one) naming the 503", got)
	}
	svc.mode.Store(0)
	for range 3 {
		if code, _ := send(); code != http.StatusNoContent {
			t.Fatalf("token service back: %d, want 204", code)
		}
	}
	got = logs.take()
	all = append(all, got...)
	if len(got) != 1 || !strings.HasPrefix(got[0], "INFO client: token service available again") {
		t.Errorf("back up, logged %q, want one info record", got)
	}
	// A flapping service: told of at most once more within the interval.
	for range 3 {
		svc.mode.Store(1)
		send()
		svc.mode.Store(0)
		send()
	}
	got = logs.take()
	all = append(all, got...)
	if len(got) != 0 {
		t.Errorf("flapping within the interval of the last warning, logged %q, want nothing", got)
	}
	for _, line := range all {
		if strings.Contains(line, own) || strings.Contains(line, caller) {
			t.Errorf("a log record shows a token: %q", line)
		}
	}
}

// TestVerifierReusesConnections: uncached verifications, valid or not,
// share kept-alive connections to the token service (a response closed
// before its end would cost a new connection each).
func TestVerifierReusesConnections(t *testing.T) {
	t.Parallel()
	c := ctx(t)
	m, api := tokenService(t, keygate.Config{})
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(api)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	create := func(name, scope string) string {
		k, err := m.Create(c, keygate.System(), keygate.CreateRequest{Name: name, Scopes: []string{scope}, Expiry: keygate.NeverExpire()})
		if err != nil {
			t.Fatal(err)
		}
		return k.Token.Reveal()
	}
	cl, err := client.New(srv.URL, client.WithToken(create("svc", "apikey:verify")))
	if err != nil {
		t.Fatal(err)
	}
	rv := cl.NewVerifier(client.VerifierConfig{CacheTTL: -1, NegativeCacheTTL: -1})
	good := create("good", "cluster:read")
	format, err := apikey.NewFormat("kg")
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := rv.VerifyFrom(c, good, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
		if _, err := rv.VerifyFrom(c, unknown.Reveal(), netip.Addr{}); !errors.Is(err, keygate.ErrInvalid) {
			t.Fatalf("unknown token: %v", err)
		}
	}
	// net/http returns a connection to its pool after the response is
	// read, from another goroutine, so the next request may now and then
	// find none and dial: a few connections, never one per request.
	if n := conns.Load(); n > 3 {
		t.Errorf("20 verifications opened %d connections, want 1 (a few at most)", n)
	}
}

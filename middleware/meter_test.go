package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store"
)

// tokensMeter charges the tokens a request declares in X-Tokens, and -1
// (an invalid cost) when it declares none that parse.
func tokensMeter(r *http.Request) middleware.Metering {
	n, err := strconv.Atoi(r.Header.Get("X-Tokens"))
	if err != nil {
		return middleware.Metering{Cost: -1}
	}
	return middleware.Metering{Cost: n}
}

func int64p(n int64) *int64 { return &n }

// identity creates an identity with limits and returns its id.
func (f *fixture) identity(t *testing.T, limits keygate.IdentityLimits) uuid.UUID {
	t.Helper()
	id, err := f.m.CreateIdentity(context.Background(), keygate.System(),
		keygate.CreateIdentityRequest{ExternalID: t.Name() + "-" + uuid.NewString(), Limits: limits})
	if err != nil {
		t.Fatalf("CreateIdentity: %v", err)
	}
	return id.ID
}

// usesLeft returns the remaining uses of key id.
func (f *fixture) usesLeft(t *testing.T, id uuid.UUID) int64 {
	t.Helper()
	k, err := f.m.Get(context.Background(), keygate.System(), id)
	if err != nil || k.RemainingUses == nil {
		t.Fatalf("Get(%v): %v, %v; want a key with uses", id, k, err)
	}
	return *k.RemainingUses
}

// reportHandler answers 200 and keeps the report of each request.
type reportHandler struct {
	calls  atomic.Int64
	report atomic.Pointer[keygate.Report]
}

func (h *reportHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	if rep, ok := middleware.ReportFromContext(r.Context()); ok {
		h.report.Store(&rep)
	} else {
		h.report.Store(nil)
	}
	if _, ok := middleware.FromContext(r.Context()); !ok {
		http.Error(w, "no key in the context", http.StatusInternalServerError)
	}
}

// TestMeterTakesCostFromUsesAndCredits: the cost a Meter computes from the
// request is taken from the key's uses and its identity's credits, the
// handler sees the report, and the balance fields say what is left; a
// balance that cannot pay is a 429 usage_exhausted, with Retry-After
// until its refill when it refills.
func TestMeterTakesCostFromUsesAndCredits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ident := f.identity(t, keygate.IdentityLimits{Credits: &keygate.Credits{Remaining: 100,
		Refill: &keygate.Refill{Amount: 100, Every: store.PeriodMonth, Day: 1}}})
	withUses, c := f.create(t, keygate.CreateRequest{Name: "uses", Scopes: []string{"billing:read"},
		Limits: keygate.Limits{Uses: int64p(50)}, IdentityID: ident})
	creditsOnly, _ := f.create(t, keygate.CreateRequest{Name: "credits", Scopes: []string{"billing:read"}, IdentityID: ident})
	mw := newMiddleware(t, middleware.Config{Verifier: f.m, Meter: tokensMeter, RateLimitHeaders: true, Now: f.clock.Now})
	var h reportHandler
	srv := mw.MustRequire(nil, "billing:read")(&h)

	res := serve(t, srv, get("/", "X-API-Key", withUses, "X-Tokens", "30"))
	if res.status != http.StatusOK {
		t.Fatalf("cost 30: %d %s, want 200", res.status, res.body)
	}
	fields := func(res response) []string {
		return []string{res.header.Get("Keygate-Uses-Remaining"), res.header.Get("Keygate-Uses-Refill"),
			res.header.Get("Keygate-Credits-Remaining"), res.header.Get("Keygate-Credits-Refill")}
	}
	if got, want := fields(res), []string{"20", "", "70", "2030-02-01T00:00:00Z"}; !slices.Equal(got, want) {
		t.Errorf("cost 30: balance fields %q, want %q", got, want)
	}
	rep := h.report.Load()
	if rep == nil || rep.Cost != 30 || rep.Uses == nil || rep.Uses.Remaining != 20 || rep.Credits == nil || rep.Credits.Remaining != 70 {
		t.Fatalf("ReportFromContext: %+v, want cost 30, 20 uses and 70 credits left", rep)
	}
	if got := f.usesLeft(t, c.Key.ID); got != 20 {
		t.Errorf("uses left in the store: %d, want 20 (the cost taken once)", got)
	}

	// The uses cannot pay 30: refused, the credits untouched, no retry
	// promised (uses that never refill).
	res = serve(t, srv, get("/", "X-API-Key", withUses, "X-Tokens", "30"))
	if res.status != http.StatusTooManyRequests || res.problem.Code != middleware.CodeUsageExhausted || res.header.Get("Retry-After") != "" {
		t.Errorf("cost 30 of 20 uses: %d %q Retry-After %q, want 429 usage_exhausted without Retry-After",
			res.status, res.problem.Code, res.header.Get("Retry-After"))
	}
	if got := res.header.Get("Keygate-Uses-Remaining"); got != "20" {
		t.Errorf("refused by uses: Keygate-Uses-Remaining %q, want 20", got)
	}

	// The identity's credits cannot pay 80: refused until the refill, on
	// the first of the month, 29 days 20:55:55 after the clock.
	res = serve(t, srv, get("/", "X-API-Key", creditsOnly, "X-Tokens", "80"))
	wait := time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC).Sub(f.clock.Now())
	if res.status != http.StatusTooManyRequests || res.problem.Code != middleware.CodeUsageExhausted ||
		res.header.Get("Retry-After") != strconv.Itoa(int(wait.Seconds())) {
		t.Errorf("cost 80 of 70 credits: %d %q Retry-After %q, want 429 usage_exhausted, Retry-After %.0f",
			res.status, res.problem.Code, res.header.Get("Retry-After"), wait.Seconds())
	}
	if got, want := fields(res), []string{"", "", "70", "2030-02-01T00:00:00Z"}; !slices.Equal(got, want) {
		t.Errorf("refused by credits: balance fields %q, want %q", got, want)
	}
	if n := h.calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want once (the refusals never reach it)", n)
	}
}

// TestMeteredRoutes: Metered names an on-demand limit on one route of a
// Middleware whose other routes are not metered; a request is verified
// (and charged) once through Metered and Require; a refusal by the named
// limit says which limit it is.
func TestMeteredRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok, c := f.create(t, keygate.CreateRequest{Scopes: []string{"billing:read"}, Limits: keygate.Limits{
		Uses:       int64p(100),
		RateLimits: []keygate.RateLimit{{Name: "exports", Requests: 2, Window: time.Hour, OnDemand: true}},
	}})
	mw := newMiddleware(t, middleware.Config{Verifier: f.m, RateLimitHeaders: true})
	exports, err := mw.Metered(func(*http.Request) middleware.Metering {
		return middleware.Metering{Limits: []string{"exports"}}
	})
	if err != nil {
		t.Fatalf("Metered: %v", err)
	}
	read := mw.MustRequire(nil, "billing:read")
	var h reportHandler
	mux := http.NewServeMux()
	mux.Handle("POST /exports", exports(read(&h)))
	mux.Handle("GET /items", read(okHandler()))

	for i := range 2 {
		res := serve(t, mux, post("/exports", "X-API-Key", tok))
		if res.status != http.StatusOK {
			t.Fatalf("export %d: %d %s, want 200", i+1, res.status, res.body)
		}
		if got, want := []string{res.header.Get("RateLimit-Limit"), res.header.Get("RateLimit-Remaining"), res.header.Get("RateLimit-Policy")},
			[]string{"2", strconv.Itoa(1 - i), "2;w=3600"}; !slices.Equal(got, want) {
			t.Errorf("export %d: RateLimit fields %q, want %q", i+1, got, want)
		}
	}
	if rep := h.report.Load(); rep == nil || len(rep.Limits) != 1 || rep.Limits[0].Limit.Name != "exports" {
		t.Errorf("report of an export: %+v, want the exports limit", rep)
	}
	res := serve(t, mux, post("/exports", "X-API-Key", tok))
	if res.status != http.StatusTooManyRequests || res.problem.Code != middleware.CodeRateLimited ||
		res.problem.RateLimit != "exports" || res.problem.RateLimitScope != "key" || res.header.Get("Retry-After") != "1800" {
		t.Errorf("a third export: %d %+v Retry-After %q; want 429 rate_limited by the key's limit exports, Retry-After 1800",
			res.status, res.problem, res.header.Get("Retry-After"))
	}
	if res.header.Get("RateLimit-Remaining") != "0" || res.header.Get("RateLimit-Limit") != "2" {
		t.Errorf("a third export: RateLimit-Limit %q, -Remaining %q; want 2, 0",
			res.header.Get("RateLimit-Limit"), res.header.Get("RateLimit-Remaining"))
	}
	// The unmetered route does not name the limit: it still passes.
	if res := serve(t, mux, get("/items", "X-API-Key", tok)); res.status != http.StatusOK {
		t.Errorf("GET /items after the exports ran out: %d, want 200", res.status)
	}
	// Two exports and one item took a use each; the refused export none.
	if got := f.usesLeft(t, c.Key.ID); got != 97 {
		t.Errorf("uses left: %d, want 97 (each request charged once)", got)
	}
}

// TestMeteredRateLimitFields: the RateLimit fields of a metered request are
// those of the limit with the fewest remaining, of the refusing limit on a
// refusal, which the problem names, the identity's included; without
// RateLimitHeaders there are none.
func TestMeteredRateLimitFields(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ident := f.identity(t, keygate.IdentityLimits{RateLimits: []keygate.RateLimit{{Name: "tokens", Requests: 20, Window: time.Minute}}})
	tok, _ := f.create(t, keygate.CreateRequest{Scopes: []string{"billing:read"}, IdentityID: ident, Limits: keygate.Limits{
		Rate:       keygate.RateLimit{Requests: 100, Window: time.Minute},
		RateLimits: []keygate.RateLimit{{Name: "requests", Requests: 10, Window: time.Minute}},
	}})
	mw := newMiddleware(t, middleware.Config{Verifier: f.m, Meter: tokensMeter, RateLimitHeaders: true})
	h := mw.Verify(mw.RequireKey(okHandler()))
	fields := func(res response) []string {
		return []string{res.header.Get("RateLimit-Limit"), res.header.Get("RateLimit-Remaining"),
			res.header.Get("RateLimit-Reset"), res.header.Get("RateLimit-Policy"), res.header.Get("Retry-After")}
	}
	for i, tt := range []struct {
		cost string
		want []string
	}{
		// default 96 of 100, requests 6 of 10, tokens 16 of 20: requests.
		{"4", []string{"10", "6", "24", "10;w=60", ""}},
		// default 91, requests 1, tokens 11: requests.
		{"5", []string{"10", "1", "54", "10;w=60", ""}},
	} {
		if res := serve(t, h, get("/", "X-API-Key", tok, "X-Tokens", tt.cost)); res.status != http.StatusOK || !slices.Equal(fields(res), tt.want) {
			t.Errorf("request %d: %d, fields %q; want 200, %q", i+1, res.status, fields(res), tt.want)
		}
	}
	// A minute later all are whole: cost 9 leaves requests 1, and it
	// refuses cost 2: retry when one more unit comes back (6s).
	f.clock.Advance(time.Minute)
	if res := serve(t, h, get("/", "X-API-Key", tok, "X-Tokens", "9")); res.status != http.StatusOK {
		t.Fatalf("cost 9: %d %s", res.status, res.body)
	}
	res := serve(t, h, get("/", "X-API-Key", tok, "X-Tokens", "2"))
	if want := []string{"10", "0", "54", "10;w=60", "6"}; res.status != http.StatusTooManyRequests || res.problem.RateLimit != "requests" ||
		res.problem.RateLimitScope != "key" || !slices.Equal(fields(res), want) {
		t.Errorf("refused by requests: %d %+v, fields %q; want 429 naming requests, fields %q", res.status, res.problem, fields(res), want)
	}

	// Without RateLimitHeaders, none of the fields.
	f.clock.Advance(time.Minute)
	quiet := newMiddleware(t, middleware.Config{Verifier: f.m, Meter: tokensMeter}).RequireKey(okHandler())
	if res := serve(t, quiet, get("/", "X-API-Key", tok, "X-Tokens", "1")); res.status != http.StatusOK || res.header.Get("RateLimit-Limit") != "" {
		t.Errorf("without RateLimitHeaders: %d, RateLimit-Limit %q; want 200, none", res.status, res.header.Get("RateLimit-Limit"))
	}
}

// TestMeteredIdentityLimit: an identity's limit, tighter than the key's,
// gives the RateLimit fields, and its refusal names it as the identity's.
func TestMeteredIdentityLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ident := f.identity(t, keygate.IdentityLimits{RateLimits: []keygate.RateLimit{{Name: "tokens", Requests: 10, Window: time.Minute}}})
	tok, _ := f.create(t, keygate.CreateRequest{Scopes: []string{"billing:read"}, IdentityID: ident,
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 100, Window: time.Minute}}})
	h := newMiddleware(t, middleware.Config{Verifier: f.m, Meter: tokensMeter, RateLimitHeaders: true}).RequireKey(okHandler())
	res := serve(t, h, get("/", "X-API-Key", tok, "X-Tokens", "6"))
	if got, want := []string{res.header.Get("RateLimit-Limit"), res.header.Get("RateLimit-Remaining")}, []string{"10", "4"}; res.status != http.StatusOK || !slices.Equal(got, want) {
		t.Errorf("cost 6: %d, RateLimit-Limit and -Remaining %q; want 200, %q (the identity's, tighter)", res.status, got, want)
	}
	res = serve(t, h, get("/", "X-API-Key", tok, "X-Tokens", "6"))
	if res.status != http.StatusTooManyRequests || res.problem.RateLimit != "tokens" || res.problem.RateLimitScope != "identity" ||
		!strings.Contains(res.problem.Detail, `"tokens"`) || res.header.Get("Retry-After") != "12" {
		t.Errorf("cost 6 again: %d %+v Retry-After %q; want 429 naming the identity's tokens, Retry-After 12",
			res.status, res.problem, res.header.Get("Retry-After"))
	}
}

// TestMeterInvalidCost: a cost out of bounds is a 400 invalid_request,
// with nothing verified or taken; a request without a key is still a 401.
func TestMeterInvalidCost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok, c := f.create(t, keygate.CreateRequest{Scopes: []string{"billing:read"}, Limits: keygate.Limits{Uses: int64p(10)}})
	var h reportHandler
	srv := newMiddleware(t, middleware.Config{Verifier: f.m, Meter: tokensMeter}).RequireKey(&h)
	for _, tokens := range []string{"-1", "none", strconv.Itoa(keygate.MaxCost + 1)} {
		res := serve(t, srv, get("/", "X-API-Key", tok, "X-Tokens", tokens))
		if res.status != http.StatusBadRequest || res.problem.Code != middleware.CodeInvalidRequest || res.header.Get("WWW-Authenticate") != "" {
			t.Errorf("X-Tokens %q: %d %q, want 400 %q without a challenge", tokens, res.status, res.problem.Code, middleware.CodeInvalidRequest)
		}
	}
	if res := serve(t, srv, get("/", "X-Tokens", "-1")); res.status != http.StatusUnauthorized || res.problem.Code != middleware.CodeMissing {
		t.Errorf("no key, an invalid cost: %d %q, want 401 missing", res.status, res.problem.Code)
	}
	if got := f.usesLeft(t, c.Key.ID); got != 10 || h.calls.Load() != 0 {
		t.Errorf("after invalid costs: %d uses left, handler called %d times; want 10, 0", got, h.calls.Load())
	}
	// The Verifier's own refusal of the options (a name no limit can
	// have) is answered alike.
	bad, err := newMiddleware(t, middleware.Config{Verifier: f.m}).Metered(func(*http.Request) middleware.Metering {
		return middleware.Metering{Limits: []string{"Not A Name"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res := serve(t, bad(&h), get("/", "X-API-Key", tok)); res.status != http.StatusBadRequest || res.problem.Code != middleware.CodeInvalidRequest {
		t.Errorf("an invalid limit name: %d %q, want 400 invalid_request", res.status, res.problem.Code)
	}
}

// TestMeterNeedsMeteredVerifier: a Meter, or Metered, with a Verifier
// without VerifyWith is a configuration error, as is a nil MeterFunc.
func TestMeterNeedsMeteredVerifier(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := middleware.New(middleware.Config{Verifier: &fakeVerifier{}, Meter: tokensMeter}); !errors.Is(err, middleware.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "VerifyWith") {
		t.Errorf("New with a Meter and a Verifier without VerifyWith: %v, want ErrInvalidConfig naming VerifyWith", err)
	}
	plain := newMiddleware(t, middleware.Config{Verifier: &fakeVerifier{}})
	if mw, err := plain.Metered(tokensMeter); mw != nil || !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Metered with a Verifier without VerifyWith: %v, want ErrInvalidConfig", err)
	}
	if mw, err := newMiddleware(t, middleware.Config{Verifier: f.m}).Metered(nil); mw != nil || !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Metered(nil): %v, want ErrInvalidConfig", err)
	}
}

// TestMeterFailsClosed: a metered request is refused 503 when the store
// cannot look the key up or cannot take its cost from the uses or the
// credits, never let through; the error's text stays out of the body.
func TestMeterFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ident := f.identity(t, keygate.IdentityLimits{Credits: &keygate.Credits{Remaining: 100}})
	withUses, _ := f.create(t, keygate.CreateRequest{Name: "uses", Scopes: []string{"billing:read"}, Limits: keygate.Limits{Uses: int64p(10)}})
	withCredits, _ := f.create(t, keygate.CreateRequest{Name: "credits", Scopes: []string{"billing:read"}, IdentityID: ident})
	var h reportHandler
	srv := newMiddleware(t, middleware.Config{Verifier: f.m, Meter: tokensMeter}).RequireKey(&h)
	// Both keys verified once, so that the Manager holds them.
	for _, tok := range []string{withUses, withCredits} {
		if res := serve(t, srv, get("/", "X-API-Key", tok, "X-Tokens", "1")); res.status != http.StatusOK {
			t.Fatalf("store up: %d %s", res.status, res.body)
		}
	}
	fresh, _ := f.create(t, keygate.CreateRequest{Name: "fresh", Scopes: []string{"billing:read"}})
	for _, tt := range []struct {
		name  string
		down  *atomic.Bool
		token string
	}{
		{"lookup down", &f.store.down, fresh},
		{"uses down", &f.store.spendDown, withUses},
		{"credits down", &f.store.spendDown, withCredits},
	} {
		tt.down.Store(true)
		res := serve(t, srv, get("/", "X-API-Key", tt.token, "X-Tokens", "1"))
		tt.down.Store(false)
		if res.status != http.StatusServiceUnavailable || res.problem.Code != middleware.CodeUnavailable {
			t.Errorf("%s: %d %q, want 503 unavailable", tt.name, res.status, res.problem.Code)
		}
		if containsAny(res.body, "password", "10.9.8.7", "keygate_internal", "keygate:") {
			t.Errorf("%s: body %q reveals the internal error", tt.name, res.body)
		}
	}
	if n := h.calls.Load(); n != 2 {
		t.Errorf("handler called %d times, want 2 (none while the store failed)", n)
	}
}

// TestMeteredAfterUnmeteredVerify: a metered route behind an unmetered
// Verify, or given a key by NewContext, is refused 500 with ErrUnmetered,
// never let through uncharged; a refusal by the first verification
// stays that refusal.
func TestMeteredAfterUnmeteredVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok, _ := f.create(t, keygate.CreateRequest{Scopes: []string{"billing:read"}})
	var seen atomic.Pointer[error]
	mw := newMiddleware(t, middleware.Config{Verifier: f.m, ErrorHandler: func(w http.ResponseWriter, r *http.Request, p *middleware.Problem) {
		seen.Store(&p.Err)
		middleware.WriteProblem(w, r, p)
	}})
	metered, err := mw.Metered(tokensMeter)
	if err != nil {
		t.Fatal(err)
	}
	var h reportHandler
	behindVerify := mw.Verify(metered(&h))
	res := serve(t, behindVerify, get("/", "X-API-Key", tok, "X-Tokens", "1"))
	var got error
	if p := seen.Load(); p != nil {
		got = *p
	}
	if res.status != http.StatusInternalServerError || res.problem.Code != middleware.CodeInternal || !errors.Is(got, middleware.ErrUnmetered) {
		t.Errorf("behind an unmetered Verify: %d %q (%v), want 500 internal, ErrUnmetered", res.status, res.problem.Code, got)
	}
	k, err := f.m.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	r := get("/", "X-Tokens", "1")
	r = r.WithContext(middleware.NewContext(r.Context(), k))
	if res := serve(t, metered(&h), r); res.status != http.StatusInternalServerError {
		t.Errorf("a key from NewContext: %d, want 500", res.status)
	}
	if res := serve(t, behindVerify, get("/", "X-Tokens", "1")); res.status != http.StatusUnauthorized || res.problem.Code != middleware.CodeMissing {
		t.Errorf("no key, behind Verify: %d %q, want 401 missing", res.status, res.problem.Code)
	}
	if n := h.calls.Load(); n != 0 {
		t.Errorf("handler called %d times, want never", n)
	}
}

// TestMeteredThrottledClient: a metered request of a throttled client
// passes when its key is cached, metered as any other, and is refused
// unverified otherwise.
func TestMeteredThrottledClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mw := newMiddleware(t, middleware.Config{Verifier: f.m, Now: f.clock.Now, Meter: tokensMeter,
		FailureLimit: middleware.FailureLimit{Failures: 3, Window: time.Hour}})
	h := mw.RequireKey(okHandler())
	good, gc := f.create(t, keygate.CreateRequest{Name: "good", Role: "admin", Limits: keygate.Limits{Uses: int64p(10)}})
	cold, _ := f.create(t, keygate.CreateRequest{Name: "cold", Role: "admin"})
	const shared = "127.0.0.1:4000"
	if res := serve(t, h, from(shared, "X-API-Key", good, "X-Tokens", "2")); res.status != http.StatusOK {
		t.Fatalf("a good key: %d, want 200", res.status)
	}
	for range 3 {
		serve(t, h, from(shared, "X-API-Key", "kg_garbage", "X-Tokens", "1"))
	}
	if res := serve(t, h, from(shared, "X-API-Key", good, "X-Tokens", "3")); res.status != http.StatusOK {
		t.Errorf("a cached key from the throttled address: %d %q, want 200", res.status, res.problem.Code)
	}
	if n := f.usesLeft(t, gc.Key.ID); n != 5 {
		t.Errorf("uses left: %d, want 5 (2 then 3 taken)", n)
	}
	if res := serve(t, h, from(shared, "X-API-Key", good, "X-Tokens", "6")); res.status != http.StatusTooManyRequests || res.problem.Code != middleware.CodeUsageExhausted {
		t.Errorf("a cached key over its uses from the throttled address: %d %q, want 429 usage_exhausted", res.status, res.problem.Code)
	}
	if res := serve(t, h, from(shared, "X-API-Key", cold, "X-Tokens", "1")); res.status != http.StatusTooManyRequests || res.problem.Code != middleware.CodeTooManyFailures {
		t.Errorf("a key not cached from the throttled address: %d %q, want 429 too_many_failures", res.status, res.problem.Code)
	}
}

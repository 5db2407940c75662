package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
)

// from returns a GET of "/" from addr with the given headers.
func from(addr string, headers ...string) *http.Request {
	r := get("/", headers...)
	r.RemoteAddr = addr
	return r
}

// TestFailureLimit: an address that sends too many bad keys is refused,
// unverified, with 429 too_many_failures and Retry-After until its budget
// refills; other addresses, requests without a key, and outages are not
// affected.
func TestFailureLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good, _ := f.create(t, keygate.CreateRequest{Role: "admin"})
	// countingVerifier is no CachedVerifier: every token of a throttled
	// address is refused, known or not (TestFailureLimitPassesKnownKeys
	// has the Manager's exception).
	v := &countingVerifier{Verifier: f.m}
	mw := newMiddleware(t, middleware.Config{Verifier: v, Now: f.clock.Now,
		FailureLimit: middleware.FailureLimit{Failures: 3, Window: time.Minute}})
	h := mw.RequireKey(okHandler())
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, _ := format.Generate()

	attacker, neighbour := "203.0.113.9:4000", "198.51.100.7:5000"
	bad := []struct{ name, value string }{
		{"X-API-Key", unknown.Reveal()},    // well formed, unknown: invalid
		{"X-API-Key", "kg_garbage"},        // malformed: fails its checksum
		{"Authorization", "Api-Key a b c"}, // garbled credential
	}
	for i, b := range bad {
		res := serve(t, h, from(attacker, b.name, b.value))
		if res.status != http.StatusUnauthorized {
			t.Fatalf("bad key %d: %d, want 401", i+1, res.status)
		}
	}
	calls := v.calls.Load()
	res := serve(t, h, from(attacker, "X-API-Key", good))
	if res.status != http.StatusTooManyRequests || res.problem.Code != middleware.CodeTooManyFailures || res.header.Get("Retry-After") == "" {
		t.Fatalf("a good key from the throttled address: %d %q Retry-After %q, want 429 too_many_failures with Retry-After",
			res.status, res.problem.Code, res.header.Get("Retry-After"))
	}
	if v.calls.Load() != calls {
		t.Error("a request from a throttled address was verified")
	}
	if res := serve(t, h, from(attacker)); res.status != http.StatusUnauthorized || res.problem.Code != middleware.CodeMissing {
		t.Errorf("no key from the throttled address: %d %q, want 401 missing (public routes stay open)", res.status, res.problem.Code)
	}
	if res := serve(t, h, from(neighbour, "X-API-Key", good)); res.status != http.StatusOK {
		t.Errorf("another address: %d, want 200", res.status)
	}
	f.clock.Advance(21 * time.Second) // one failure's worth of budget (60 s / 3)
	if res := serve(t, h, from(attacker, "X-API-Key", good)); res.status != http.StatusOK {
		t.Errorf("after the budget refilled: %d, want 200", res.status)
	}
	if res := serve(t, h, from(attacker, "X-API-Key", unknown.Reveal())); res.status != http.StatusUnauthorized {
		t.Errorf("one more bad key: %d, want 401", res.status)
	}
	if res := serve(t, h, from(attacker, "X-API-Key", good)); res.status != http.StatusTooManyRequests {
		t.Errorf("after spending the refill: %d, want 429", res.status)
	}

	// IPv6 clients count per /64.
	for i := range 3 {
		serve(t, h, from(fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1), "X-API-Key", unknown.Reveal()))
	}
	if res := serve(t, h, from("[2001:db8:1:2:ffff::1]:443", "X-API-Key", good)); res.status != http.StatusTooManyRequests {
		t.Errorf("another address of the same /64: %d, want 429", res.status)
	}
	if res := serve(t, h, from("[2001:db8:1:3::1]:443", "X-API-Key", good)); res.status != http.StatusOK {
		t.Errorf("another /64: %d, want 200", res.status)
	}

	// An outage is not the client's failure.
	f.store.down.Store(true)
	other, _ := format.Generate()
	for range 5 {
		if res := serve(t, h, from("192.0.2.50:1", "X-API-Key", other.Reveal())); res.status != http.StatusServiceUnavailable {
			t.Fatalf("store down: %d, want 503", res.status)
		}
	}
	f.store.down.Store(false)
	if res := serve(t, h, from("192.0.2.50:1", "X-API-Key", good)); res.status != http.StatusOK {
		t.Errorf("after an outage: %d, want 200 (outages do not count)", res.status)
	}
}

func TestFailureLimitConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, l := range []middleware.FailureLimit{
		{Failures: 5},
		{Window: time.Minute},
		{Failures: -1, Window: time.Minute},
		{Failures: 10, Window: 5 * time.Nanosecond},
		{Failures: 1, Window: time.Minute, MaxClients: -1},
	} {
		if _, err := middleware.New(middleware.Config{Verifier: f.m, FailureLimit: l}); !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Errorf("FailureLimit %+v: got %v, want ErrInvalidConfig", l, err)
		}
	}
}

// TestGarbageNeverReachesTheStore: tokens that fail their checksum, in any
// number, make no store lookup.
func TestGarbageNeverReachesTheStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mw := newMiddleware(t, middleware.Config{Verifier: f.m})
	h := mw.RequireKey(okHandler())
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	before := f.store.lookups.Load()
	for i := range 2000 {
		tok, _ := format.Generate()
		s := []byte(tok.Reveal())
		s[3+rand.IntN(len(s)-3)] ^= 0x01 // one character off: the checksum fails
		if res := serve(t, h, get("/", "X-API-Key", string(s))); res.status != http.StatusUnauthorized || res.problem.Code != middleware.CodeMalformed {
			t.Fatalf("garbage %d: %d %q, want 401 malformed", i, res.status, res.problem.Code)
		}
	}
	if n := f.store.lookups.Load() - before; n != 0 {
		t.Errorf("2000 tokens failing their checksum made %d store lookups, want 0", n)
	}
}

// countingVerifier counts the verifications it passes on.
type countingVerifier struct {
	middleware.Verifier
	calls atomic.Int64
}

func (v *countingVerifier) VerifyFrom(ctx context.Context, token string, addr netip.Addr) (*keygate.Key, error) {
	v.calls.Add(1)
	return v.Verifier.VerifyFrom(ctx, token, addr)
}

// TestRequireRecordsExercises: what Require lets a key do is recorded
// for its least-privilege report; what it refuses is not.
func TestRequireRecordsExercises(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok, c := f.create(t, keygate.CreateRequest{Workspace: "tiger", Role: "editor"})
	mw := newMiddleware(t, middleware.Config{Verifier: f.m})
	mux := http.NewServeMux()
	mux.Handle("GET /w/{ws}/clusters", mw.MustRequire(middleware.PathValue("ws"), "cluster:read")(okHandler()))
	mux.Handle("DELETE /w/{ws}/clusters", mw.MustRequire(middleware.PathValue("ws"), "cluster:delete")(okHandler()))
	for _, r := range []*http.Request{
		get("/w/tiger/clusters", "X-API-Key", tok),
		httptest.NewRequest("DELETE", "/w/tiger/clusters", nil), // refused: no cluster:delete
	} {
		r.Header.Set("X-API-Key", tok)
		serve(t, mux, r)
	}
	if err := f.m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := f.m.LeastPrivilege(context.Background(), keygate.System(), c.Key.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Suggested) != 1 || rep.Suggested[0] != "cluster:read" || rep.SuggestedWorkspace != "tiger" {
		t.Errorf("suggested %v in %q, want cluster:read in tiger", rep.Suggested, rep.SuggestedWorkspace)
	}
}

// TestThrottle: the Throttle of another door (a sign-in form) counts only
// failed verifications, refuses an address once its budget is spent, says
// how long to wait, and refills; nil throttles nothing.
func TestThrottle(t *testing.T) {
	t.Parallel()
	var nilThrottle *middleware.Throttle
	nilThrottle.Record(netip.MustParseAddr("192.0.2.1"), keygate.ErrInvalid)
	if _, blocked := nilThrottle.Blocked(netip.MustParseAddr("192.0.2.1")); blocked {
		t.Error("a nil Throttle blocked an address")
	}
	if th, err := middleware.NewThrottle(middleware.FailureLimit{}, nil); th != nil || err != nil {
		t.Errorf("the zero FailureLimit: %v, %v; want nil, nil", th, err)
	}
	if _, err := middleware.NewThrottle(middleware.FailureLimit{Failures: 3}, nil); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("no window: %v, want ErrInvalidConfig", err)
	}

	clock := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	th, err := middleware.NewThrottle(middleware.FailureLimit{Failures: 2, Window: time.Minute}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("203.0.113.9")
	// None of these count.
	for _, err := range []error{nil, keygate.ErrUnavailable, fmt.Errorf("%w: %w", keygate.ErrInvalid, keygate.ErrUnavailable),
		&keygate.RateLimitError{RetryAfter: time.Second}, keygate.ErrUsageExhausted, keygate.ErrAddressDenied, middleware.ErrNoCredential} {
		th.Record(addr, err)
		th.Record(addr, err)
		th.Record(addr, err)
	}
	if _, blocked := th.Blocked(addr); blocked {
		t.Fatal("blocked by outcomes that are not failures")
	}
	th.Record(addr, keygate.ErrRevoked)
	if _, blocked := th.Blocked(addr); blocked {
		t.Fatal("blocked after one failure of two")
	}
	th.Record(addr, keygate.ErrInvalid)
	wait, blocked := th.Blocked(addr)
	if !blocked || wait != 30*time.Second {
		t.Fatalf("after two failures: blocked %v for %v, want true for 30s", blocked, wait)
	}
	if _, blocked := th.Blocked(netip.MustParseAddr("203.0.113.10")); blocked {
		t.Error("another address is blocked")
	}
	clock.Advance(wait)
	if _, blocked := th.Blocked(addr); blocked {
		t.Error("still blocked once the budget refilled")
	}
}

// TestThrottleBuckets: the clients a bucket holds. An IPv6 address that
// embeds a client's IPv4 address (IPv4-mapped, NAT64, Teredo, 6to4) counts
// as that IPv4 address, so that the clients behind one translator or
// relay are apart and one 6to4 site is one client; other IPv6 addresses
// count per /64.
func TestThrottleBuckets(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		a, b   string
		shared bool
	}{
		{"IPv4 addresses apart", "192.0.2.1", "192.0.2.2", false},
		{"IPv4-mapped is its IPv4 address", "::ffff:192.0.2.9", "192.0.2.9", true},
		{"IPv4-mapped clients apart", "::ffff:192.0.2.9", "::ffff:192.0.2.10", false},
		{"NAT64 clients apart", "64:ff9b::c000:201", "64:ff9b::c000:202", false},
		{"NAT64 is its IPv4 address", "64:ff9b::c000:201", "192.0.2.1", true},
		{"local-use NAT64 clients apart", "64:ff9b:1::c000:201", "64:ff9b:1::c000:202", false},
		{"local-use NAT64 (/48 layout) clients apart", "64:ff9b:1:c000:2:100::", "64:ff9b:1:c000:2:200::", false},
		{"Teredo clients of one server apart", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136:e378:8000:63bf:3fff:fdd1", false},
		{"Teredo is its client's IPv4 address", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45", true},
		{"Teredo, another server and port, same client", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:5ef5:79fd:0:1234:3fff:fdd2", true},
		{"6to4: one site is one client", "2002:c000:22d:1::1", "2002:c000:22d:ffff::2", true},
		{"6to4 is its IPv4 address", "2002:c000:22d::1", "192.0.2.45", true},
		{"6to4 sites apart", "2002:c000:22d::1", "2002:c000:22e::1", false},
		{"IPv6: one /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff::1", true},
		{"IPv6: /64s apart", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"2001:1::/32 is not Teredo", "2001:1:2:3::c000:201", "2001:1:2:3::c000:202", true},
	} {
		th, err := middleware.NewThrottle(middleware.FailureLimit{Failures: 1, Window: time.Minute}, nil)
		if err != nil {
			t.Fatal(err)
		}
		th.Record(netip.MustParseAddr(c.a), keygate.ErrInvalid)
		if _, blocked := th.Blocked(netip.MustParseAddr(c.a)); !blocked {
			t.Errorf("%s: %s not blocked by its own failure", c.name, c.a)
		}
		if _, blocked := th.Blocked(netip.MustParseAddr(c.b)); blocked != c.shared {
			t.Errorf("%s: a failure from %s blocks %s: %v, want %v", c.name, c.a, c.b, blocked, c.shared)
		}
	}
}

// TestFailureLimitPassesKnownKeys: a key the Manager already holds in its
// cache passes while its address is throttled (a cache hit costs no
// lookup and tells a guesser nothing), with every check of the key still
// applied; anything that would need a store lookup still gets 429
// too_many_failures, unverified: a key not verified recently, an unknown
// token, an expired cache entry, a revoked key.
func TestFailureLimitPassesKnownKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mw := newMiddleware(t, middleware.Config{Verifier: f.m, Now: f.clock.Now,
		FailureLimit: middleware.FailureLimit{Failures: 3, Window: time.Hour}})
	h := mw.RequireKey(okHandler())
	good, gc := f.create(t, keygate.CreateRequest{Name: "good", Role: "admin"})
	cold, _ := f.create(t, keygate.CreateRequest{Name: "cold", Role: "admin"})
	limited, _ := f.create(t, keygate.CreateRequest{Name: "limited", Role: "admin",
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 1, Window: time.Hour}}})
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, _ := format.Generate()

	// The same address, 127.0.0.1 (say, every client of a proxy whose
	// TrustedProxies are not configured): its good keys work, then one
	// client sends three bad ones.
	const shared = "127.0.0.1:4000"
	for _, tok := range []string{good, limited} {
		if res := serve(t, h, from(shared, "X-API-Key", tok)); res.status != http.StatusOK {
			t.Fatalf("a good key: %d, want 200", res.status)
		}
	}
	for range 3 {
		serve(t, h, from(shared, "X-API-Key", unknown.Reveal()))
	}
	lookups := f.store.lookups.Load()
	if res := serve(t, h, from(shared, "X-API-Key", good)); res.status != http.StatusOK {
		t.Errorf("a key verified before, from the throttled address: %d %q, want 200", res.status, res.problem.Code)
	}
	if res := serve(t, h, from(shared, "X-API-Key", limited)); res.status != http.StatusTooManyRequests || res.problem.Code != middleware.CodeRateLimited {
		t.Errorf("a known key over its rate limit, from the throttled address: %d %q, want 429 rate_limited (its checks apply)", res.status, res.problem.Code)
	}
	for name, tok := range map[string]string{"a key not verified recently": cold, "an unknown token": unknown.Reveal(), "garbage": "kg_garbage"} {
		if res := serve(t, h, from(shared, "X-API-Key", tok)); res.status != http.StatusTooManyRequests || res.problem.Code != middleware.CodeTooManyFailures {
			t.Errorf("%s from the throttled address: %d %q, want 429 too_many_failures", name, res.status, res.problem.Code)
		}
	}
	if n := f.store.lookups.Load() - lookups; n != 0 {
		t.Errorf("the throttled address made %d store lookups, want 0", n)
	}
	if res := serve(t, h, from("192.0.2.1:1", "X-API-Key", cold)); res.status != http.StatusOK {
		t.Errorf("another address: %d, want 200", res.status)
	}

	// A revoked key leaves the cache: 429 like any key not known.
	if _, err := f.m.Revoke(context.Background(), keygate.System(), gc.Key.ID); err != nil {
		t.Fatal(err)
	}
	if res := serve(t, h, from(shared, "X-API-Key", good)); res.status != http.StatusTooManyRequests {
		t.Errorf("a revoked key from the throttled address: %d, want 429", res.status)
	}
	// So does a key whose cache entry expired (30 s by default).
	f.clock.Advance(31 * time.Second)
	if res := serve(t, h, from(shared, "X-API-Key", cold)); res.status != http.StatusTooManyRequests {
		t.Errorf("a key whose cache entry expired, from the throttled address: %d, want 429", res.status)
	}
	if n := f.store.lookups.Load() - lookups; n != 1 {
		t.Errorf("%d store lookups, want 1 (from the other address)", n)
	}
}

// TestSharedThrottle: the middleware's throttle, taken with
// Middleware.Throttle, is the very budget the middleware draws on, so
// failures recorded elsewhere (the console's sign-in form) refuse the API
// too, and the other way round.
func TestSharedThrottle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good, _ := f.create(t, keygate.CreateRequest{Role: "admin"})
	mw := newMiddleware(t, middleware.Config{Verifier: f.m, Now: f.clock.Now,
		FailureLimit: middleware.FailureLimit{Failures: 2, Window: time.Minute}})
	h := mw.RequireKey(okHandler())
	th := mw.Throttle()
	if th == nil {
		t.Fatal("Throttle() = nil for a middleware with a FailureLimit")
	}
	addr := netip.MustParseAddr("203.0.113.9")
	th.Record(addr, nil)
	th.Record(addr, keygate.ErrUnavailable)
	th.Record(addr, keygate.ErrUsageExhausted)
	if _, blocked := th.Blocked(addr); blocked {
		t.Fatal("no error, an outage and a limit of a valid key counted as failures")
	}
	th.Record(addr, keygate.ErrInvalid)
	th.Record(addr, fmt.Errorf("a replayed form: %w", keygate.ErrInvalid))
	if _, blocked := th.Blocked(addr); !blocked {
		t.Fatal("two failures of a budget of two: not blocked")
	}
	if res := serve(t, h, from("203.0.113.9:4000", "X-API-Key", good)); res.status != http.StatusTooManyRequests {
		t.Errorf("API request from the address the shared throttle blocked: %d, want 429", res.status)
	}
	// The other way: the API's failures block the shared throttle.
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, _ := format.Generate()
	for range 2 {
		serve(t, h, from("198.51.100.7:5000", "X-API-Key", unknown.Reveal()))
	}
	if wait, blocked := th.Blocked(netip.MustParseAddr("198.51.100.7")); !blocked || wait <= 0 {
		t.Errorf("after two bad keys sent to the API: Blocked = %v, %v, want blocked with a wait", wait, blocked)
	}
	if _, blocked := th.Blocked(netip.MustParseAddr("192.0.2.1")); blocked {
		t.Error("an address that failed nothing is blocked")
	}

	// Without a FailureLimit: no throttle, and a nil one throttles nothing.
	none := newMiddleware(t, middleware.Config{Verifier: f.m}).Throttle()
	if none != nil {
		t.Error("Throttle() of a middleware without a FailureLimit is not nil")
	}
	none.Record(addr, keygate.ErrInvalid)
	if _, blocked := none.Blocked(addr); blocked {
		t.Error("a nil Throttle blocked")
	}
	if th, err := middleware.NewThrottle(middleware.FailureLimit{}, nil); th != nil || err != nil {
		t.Errorf("NewThrottle(zero) = %v, %v; want nil, nil", th, err)
	}
	if _, err := middleware.NewThrottle(middleware.FailureLimit{Failures: -1, Window: time.Minute}, nil); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("NewThrottle(negative): %v, want ErrInvalidConfig", err)
	}
}

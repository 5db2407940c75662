package middleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
)

// BenchmarkMiddleware measures the middleware's overhead over a bare
// handler: subtract bare from the others. Each request goes through
// httptest.NewRecorder, in both. "fake" verifies with a constant Verifier
// (the middleware's own work: extraction, address, context, permission
// check); "manager" with a real *keygate.Manager whose cache holds the key
// (what an application sees). Each runs serially and with b.RunParallel.
func BenchmarkMiddleware(b *testing.B) {
	f := newFixture(b)
	tok, c := f.create(b, keygate.CreateRequest{Name: "bench", Workspace: "alpha", Role: "viewer"})
	fakeKey, err := f.m.Verify(b.Context(), tok) // also fills the manager's cache
	if err != nil {
		b.Fatalf("Verify: %v", err)
	}
	if fakeKey.ID != c.Key.ID {
		b.Fatalf("Verify returned key %v, want %v", fakeKey.ID, c.Key.ID)
	}

	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	wrap := func(v middleware.Verifier) http.Handler {
		mw := newMiddleware(b, middleware.Config{Verifier: v})
		return mw.Verify(mw.MustRequire(middleware.PathValue("workspace"), "cluster:read")(bare))
	}
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"bare", bare},
		{"fake", wrap(&constVerifier{key: fakeKey})},
		{"manager", wrap(f.m)},
	}
	req := httptest.NewRequest(http.MethodGet, "/workspaces/alpha/clusters", nil)
	req.SetPathValue("workspace", "alpha")
	req.Header.Set("Authorization", "Api-Key "+tok)

	for _, h := range handlers {
		// Check once that the request passes, so that no refusal is timed.
		if res := serve(b, h.h, req); res.status != http.StatusNoContent {
			b.Fatalf("%s: status %d, want 204 (body %q)", h.name, res.status, res.body)
		}
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
		b.Run(h.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					h.h.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
		})
	}
}

// BenchmarkRateLimitHeaders measures what Config.RateLimitHeaders adds to a
// request with a rate-limited key (a limit it never reaches), with the
// Manager's in-process limiter.
func BenchmarkRateLimitHeaders(b *testing.B) {
	f := newFixture(b)
	tok, _ := f.create(b, keygate.CreateRequest{Name: "bench", Scopes: []string{"cluster:read"},
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 1_000_000_000, Window: time.Second}}})
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Api-Key "+tok)
	for _, on := range []bool{false, true} {
		h := newMiddleware(b, middleware.Config{Verifier: f.m, RateLimitHeaders: on}).RequireKey(bare)
		res := serve(b, h, req)
		if res.status != http.StatusNoContent || (res.header.Get("RateLimit-Limit") != "") != on {
			b.Fatalf("headers %v: status %d, RateLimit-Limit %q", on, res.status, res.header.Get("RateLimit-Limit"))
		}
		b.Run(fmt.Sprintf("headers=%v", on), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}

// BenchmarkFailureLimit measures the middleware with Config.FailureLimit,
// on a request with a cached key: "clean" from an address that sent no
// bad key, "throttled" from one that has spent its failure budget, where
// the key passes as one the Manager already holds (see CachedVerifier).
func BenchmarkFailureLimit(b *testing.B) {
	f := newFixture(b)
	tok, _ := f.create(b, keygate.CreateRequest{Name: "bench", Scopes: []string{"cluster:read"}})
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mw := newMiddleware(b, middleware.Config{Verifier: f.m,
		FailureLimit: middleware.FailureLimit{Failures: 1, Window: time.Hour}})
	h := mw.RequireKey(bare)
	for _, c := range []struct{ name, addr string }{
		{"clean", "192.0.2.1:1000"},
		{"throttled", "[2001:db8::1]:1000"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = c.addr
		req.Header.Set("Authorization", "Api-Key "+tok)
		if c.name == "throttled" {
			if res := serve(b, h, from(c.addr, "X-API-Key", "kg_garbage")); res.status != http.StatusUnauthorized {
				b.Fatalf("a bad key: %d, want 401", res.status)
			}
		} else if _, err := f.m.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
		if res := serve(b, h, req); res.status != http.StatusNoContent {
			b.Fatalf("%s: status %d, want 204 (body %q)", c.name, res.status, res.body)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}

// BenchmarkMetered measures a request metered by Config.Meter (cost 1, one
// on-demand limit named) with RateLimitHeaders, against the same request
// unmetered, through a real *keygate.Manager whose cache holds the key.
func BenchmarkMetered(b *testing.B) {
	f := newFixture(b)
	tok, _ := f.create(b, keygate.CreateRequest{Name: "bench", Scopes: []string{"cluster:read"},
		Limits: keygate.Limits{RateLimits: []keygate.RateLimit{{Name: "exports", Requests: 1_000_000_000, Window: time.Second, OnDemand: true}}}})
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Api-Key "+tok)
	exports := func(*http.Request) middleware.Metering { return middleware.Metering{Limits: []string{"exports"}} }
	for _, c := range []struct {
		name  string
		meter middleware.MeterFunc
	}{{"unmetered", nil}, {"metered", exports}} {
		h := newMiddleware(b, middleware.Config{Verifier: f.m, Meter: c.meter, RateLimitHeaders: true}).RequireKey(bare)
		res := serve(b, h, req)
		if res.status != http.StatusNoContent || (res.header.Get("RateLimit-Limit") != "") != (c.meter != nil) {
			b.Fatalf("%s: status %d, RateLimit-Limit %q", c.name, res.status, res.header.Get("RateLimit-Limit"))
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}

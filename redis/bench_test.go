package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store/memory"
)

// BenchmarkVerifyRateLimited is a cached verification of a rate-limited
// key with keygate's in-process limiter and with the Redis Limiter: the
// difference is what Redis costs per verification (one script call, one
// round trip). The limit (the largest Create accepts, a billion an
// hour) is never reached.
func BenchmarkVerifyRateLimited(b *testing.B) {
	ctx := context.Background()
	limit := keygate.RateLimit{Requests: 1_000_000_000, Window: time.Hour}
	setup := func(b *testing.B, redis bool) (*keygate.Manager, string) {
		b.Helper()
		var lim keygate.RateLimiter
		if redis {
			lim, _, _ = newLimiter(b)
		}
		m := newManager(b, memory.New(), func(c *keygate.Config) { c.RateLimiter = lim })
		return m, createKey(b, m, limit).Token.Reveal()
	}
	for _, bc := range []struct {
		name  string
		redis bool
	}{{"in-process", false}, {"redis", true}} {
		b.Run(bc.name, func(b *testing.B) {
			m, tok := setup(b, bc.redis)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			m, tok := setup(b, bc.redis)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.Verify(ctx, tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAllowN is the Redis Limiter's AllowN alone, a cost of 3 from a
// named limit that is never reached (a billion an hour): one script call,
// one round trip, per limit checked.
func BenchmarkAllowN(b *testing.B) {
	ctx := context.Background()
	limit := keygate.RateLimit{Requests: 1_000_000_000, Window: time.Hour}
	lim, _, _ := newLimiter(b)
	id := uuid.New()
	check := func(b *testing.B) bool {
		d, err := lim.AllowN(ctx, id, "tokens", limit, 3)
		if err != nil || !d.Allowed {
			b.Errorf("AllowN: %+v, %v; want allowed", d, err)
			return false
		}
		return true
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !check(b) {
				return
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !check(b) {
					return
				}
			}
		})
	})
}

package redis_test

import (
	"context"
	"testing"
	"time"

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

package redis_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	kgredis "github.com/keygate/keygate/redis"
	"github.com/keygate/keygate/store/memory"
)

// TestMeteringAcrossInstances: two Managers, as two instances, each with
// its own Limiter (its own Redis client), meter a key's named on-demand
// limit and its identity's always-on limit with a cost: each pays exactly
// what the limit holds, whichever instance the requests reach, and a key's
// "default" limit is counted once whether Verify or VerifyWith takes it.
func TestMeteringAcrossInstances(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	prefix := uniqueName(t) + ":"
	deleteKeysAtCleanup(t, newClient(t, addr), "rate:"+prefix+"*")
	st := memory.New()
	var ms [2]*keygate.Manager
	for i := range ms {
		lim, err := kgredis.NewLimiter(kgredis.LimiterConfig{Client: newClient(t, addr), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = newManager(t, st, func(c *keygate.Config) { c.RateLimiter = lim })
	}
	ctx := context.Background()
	sys := keygate.System()
	id, err := ms[0].CreateIdentity(ctx, sys, keygate.CreateIdentityRequest{ExternalID: "acme", Limits: keygate.IdentityLimits{
		RateLimits: []keygate.RateLimit{{Name: "requests", Requests: 400, Window: time.Hour}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ms[1].Create(ctx, sys, keygate.CreateRequest{Name: "k", Role: "admin", Expiry: keygate.NeverExpire(), IdentityID: id.ID,
		Limits: keygate.Limits{
			Rate:       keygate.RateLimit{Requests: 1000, Window: time.Hour},
			RateLimits: []keygate.RateLimit{{Name: "tokens", Requests: 100, Window: time.Hour, OnDemand: true}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	tok := c.Token.Reveal()

	// run sends 2 instances × 8 goroutines × 4 requests of cost, naming
	// names, and counts those allowed and those refused by limit want.
	run := func(cost int, names []string, want string, identity bool) (allowed, refused int64) {
		var ok, no atomic.Int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for range 4 {
					_, _, err := ms[g%2].VerifyWith(ctx, tok, keygate.VerifyOptions{Cost: cost, Limits: names})
					var rl *keygate.RateLimitError
					switch {
					case err == nil:
						ok.Add(1)
					case errors.As(err, &rl) && rl.Name == want && rl.Identity == identity:
						no.Add(1)
					default:
						t.Errorf("cost %d: %v, want a pass or a refusal by %s", cost, err, want)
					}
				}
			})
		}
		wg.Wait()
		return ok.Load(), no.Load()
	}
	// tokens: 100 at 7 each is 14 requests (98).
	if ok, no := run(7, []string{"tokens"}, "tokens", false); ok != 14 || no != 18 {
		t.Fatalf("tokens at 7 each over two instances: %d allowed, %d refused; want exactly 14 and 18", ok, no)
	}
	// The identity's 400 took 98 (only the requests tokens let through
	// reached it): 302 left, 30 requests of 10.
	if ok, no := run(10, nil, "requests", true); ok != 30 || no != 2 {
		t.Fatalf("the identity's limit at 10 each over two instances: %d allowed, %d refused; want exactly 30 and 2", ok, no)
	}
	// The default took 7 × 32 and 10 × 32: 456 left, 455 after the next
	// request (Redis's clock gives back one every 3.6 s). Verify takes it
	// through Allow, the same Redis key: VerifyWith on the other instance
	// then sees two fewer.
	left := func(m *keygate.Manager) int {
		t.Helper()
		_, rep, err := m.VerifyWith(ctx, tok, keygate.VerifyOptions{})
		if (err != nil && !errors.Is(err, keygate.ErrRateLimited)) || len(rep.Limits) == 0 || rep.Limits[0].Limit.Name != keygate.DefaultRateLimit {
			t.Fatalf("VerifyWith: %+v, %v; want the default limit reported", rep.Limits, err)
		}
		return rep.Limits[0].Remaining
	}
	before := left(ms[0])
	if before < 455 || before > 457 {
		t.Fatalf("default limit: %d left, want 455 (±1 for Redis's clock)", before)
	}
	if _, err := ms[1].Verify(ctx, tok); err != nil && !errors.Is(err, keygate.ErrRateLimited) {
		t.Fatalf("Verify: %v", err)
	}
	if after := left(ms[1]); after != before-2 && after != before-1 {
		t.Fatalf("default limit: %d left after Verify and VerifyWith, want %d (one limit in Redis, whichever call takes it)", after, before-2)
	}
}

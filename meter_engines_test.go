package keygate_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// TestMeteringOnEveryEngine runs metering through two Managers sharing one
// store, as two instances do, on each storage engine: an identity's
// credits and a key's uses, spent with a cost by concurrent verifications
// on both, pay exactly what they hold, and refill once at their period's
// boundary (a fake clock: January 31st's refill of the 31st falls on
// February 28th).
func TestMeteringOnEveryEngine(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var now atomic.Int64
			now.Store(time.Date(2027, 1, 31, 10, 0, 0, 0, time.UTC).UnixNano())
			clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
			st := open(t)
			h := hasher(t, "p1")
			var ms [2]*keygate.Manager
			for i := range ms {
				m, err := keygate.New(keygate.Config{Store: st, Hasher: h, Auditor: nopAuditor{}, LastUsedInterval: -1, Now: clock})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close(ctx) })
				ms[i] = m
			}
			sys := keygate.System()
			id, err := ms[0].CreateIdentity(ctx, sys, keygate.CreateIdentityRequest{ExternalID: "acme", Limits: keygate.IdentityLimits{
				Credits: &keygate.Credits{Remaining: 20, Refill: &keygate.Refill{Amount: 12, Every: store.PeriodMonth, Day: 31}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			var toks []string
			for i, limits := range []keygate.Limits{{}, {Uses: ptr(int64(9)), Refill: &keygate.Refill{Amount: 4, Every: store.PeriodDay}}} {
				c, err := ms[0].Create(ctx, sys, keygate.CreateRequest{Name: "k" + string(rune('a'+i)), Role: "admin", Expiry: keygate.NeverExpire(),
					IdentityID: id.ID, Limits: limits})
				if err != nil {
					t.Fatal(err)
				}
				toks = append(toks, c.Token.Reveal())
			}
			// spend runs 2 instances × 4 goroutines × 6 verifications of
			// cost, alternating the keys (or only key b, usesOnly), and
			// returns how many were allowed.
			spend := func(cost int, usesOnly bool) int64 {
				var allowed atomic.Int64
				var wg sync.WaitGroup
				for g := range 8 {
					wg.Go(func() {
						m := ms[g%2]
						for i := range 6 {
							tok := toks[(g+i)%2]
							if usesOnly {
								tok = toks[1]
							}
							_, _, err := m.VerifyWith(ctx, tok, keygate.VerifyOptions{Cost: cost})
							switch {
							case err == nil:
								allowed.Add(1)
							case !errors.Is(err, keygate.ErrUsageExhausted):
								t.Error(err)
							}
						}
					})
				}
				wg.Wait()
				return allowed.Load()
			}
			credits := func() int64 {
				t.Helper()
				got, err := ms[1].GetIdentity(ctx, sys, id.ID)
				if err != nil {
					t.Fatal(err)
				}
				return got.Credits.Remaining
			}
			// 20 credits at 2 each: 10 verifications, whichever key (key b's
			// 9 uses run out first for its share: 9 at most of b's).
			if n := spend(2, false); n != 10 || credits() != 0 {
				t.Fatalf("%d verifications allowed, %d credits left; want 10 and 0", n, credits())
			}
			// February 28th, 00:00: the credits refill to 12, once; key b's
			// uses refill to 4 (a day has passed).
			now.Store(time.Date(2027, 2, 28, 0, 0, 0, 0, time.UTC).UnixNano())
			if n := spend(1, true); n != 4 || credits() != 8 {
				t.Fatalf("after the boundary: key b allowed %d times, %d credits left; want 4 (its uses) and 8", n, credits())
			}
			_, rep, err := ms[1].VerifyWith(ctx, toks[0], keygate.VerifyOptions{Cost: 8})
			if err != nil || rep.Credits == nil || rep.Credits.Remaining != 0 || !rep.Credits.NextRefill.Equal(time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("the last 8 credits: %+v, %v; want 0 left, next refill on March 31st", rep.Credits, err)
			}
			if _, _, err := ms[0].VerifyWith(ctx, toks[0], keygate.VerifyOptions{}); !errors.Is(err, keygate.ErrUsageExhausted) {
				t.Fatalf("no credits: %v, want ErrUsageExhausted", err)
			}
		})
	}
}

// TestIdentityChangeReachesOtherInstances: an identity's limits tightened
// through one instance apply on another that has its key cached, within
// a second, through PostgreSQL's change feed (which carries identity
// changes as it carries keys').
func TestIdentityChangeReachesOtherInstances(t *testing.T) {
	dsn := os.Getenv("KEYGATE_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("KEYGATE_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	newInstance, feed := postgresInstances(t, dsn)
	// control has no feed: it shows the key really is cached.
	a, b, control := newInstance(nil), newInstance(feed), newInstance(nil)
	waitListening(t, b)
	sys := keygate.System()
	id, err := a.CreateIdentity(ctx, sys, keygate.CreateIdentityRequest{ExternalID: "acme", Limits: keygate.IdentityLimits{
		RateLimits: []keygate.RateLimit{{Name: "requests", Requests: 1000, Window: time.Hour}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Create(ctx, sys, keygate.CreateRequest{Name: "k", Role: "admin", Expiry: keygate.NeverExpire(), IdentityID: id.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*keygate.Manager{b, control} {
		if _, err := m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	one := []keygate.RateLimit{{Name: "requests", Requests: 1, Window: time.Hour}}
	if _, err := a.UpdateIdentity(ctx, sys, id.ID, keygate.UpdateIdentityRequest{RateLimits: &one}); err != nil {
		t.Fatal(err)
	}
	if _, rep, err := control.VerifyWith(ctx, c.Token.Reveal(), keygate.VerifyOptions{}); err != nil || rep.Limits[0].Limit.Requests != 1000 {
		t.Fatalf("an instance without a feed applied the change at once (%+v, %v): the key was not cached, so this test proves nothing", rep.Limits, err)
	}
	start := time.Now()
	for {
		_, rep, err := b.VerifyWith(ctx, c.Token.Reveal(), keygate.VerifyOptions{})
		if errors.Is(err, keygate.ErrRateLimited) || (err == nil && rep.Limits[0].Limit.Requests == 1) {
			t.Logf("the identity's new limit applied on the other instance after %v", time.Since(start))
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the other instance still applies the old limit a second after the change: %+v", rep.Limits)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

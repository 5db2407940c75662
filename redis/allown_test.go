package redis_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate"
	kgredis "github.com/keygate/keygate/redis"
)

// allowN calls l.AllowN and fails t on an error.
func allowN(t *testing.T, l *kgredis.Limiter, subject uuid.UUID, name string, limit keygate.RateLimit, cost int) keygate.LimitDecision {
	t.Helper()
	d, err := l.AllowN(context.Background(), subject, name, limit, cost)
	if err != nil {
		t.Fatalf("AllowN(%q, cost %d): %v", name, cost, err)
	}
	return d
}

// within reports whether d is in (lo, hi].
func within(d, lo, hi time.Duration) bool { return d > lo && d <= hi }

// TestAllowNTakesCost checks that each request takes exactly its cost, and
// what the limiter reports after each: a limit of 10 per minute (one unit
// back every 6s) allows 4 and 4, refuses 4 with 2 left, then allows 2.
func TestAllowNTakesCost(t *testing.T) {
	t.Parallel()
	lim, _, _ := newLimiter(t)
	limit := keygate.RateLimit{Requests: 10, Window: time.Minute}
	id := uuid.New()
	const name = "search"
	tests := []struct {
		cost             int
		allowed          bool
		remaining        int
		retryLo, retryHi time.Duration // RetryAfter in (retryLo, retryHi]; 0, 0 for none
		resetLo, resetHi time.Duration // Reset in (resetLo, resetHi]
	}{
		{cost: 4, allowed: true, remaining: 6, resetLo: 23 * time.Second, resetHi: 24 * time.Second},
		{cost: 4, allowed: true, remaining: 2, resetLo: 47 * time.Second, resetHi: 48 * time.Second},
		// Two units are left: four are back when two more are, in 12s.
		{cost: 4, allowed: false, remaining: 2, retryLo: 11 * time.Second, retryHi: 12 * time.Second, resetLo: 47 * time.Second, resetHi: 48 * time.Second},
		{cost: 3, allowed: false, remaining: 2, retryLo: 5 * time.Second, retryHi: 6 * time.Second, resetLo: 47 * time.Second, resetHi: 48 * time.Second},
		{cost: 2, allowed: true, remaining: 0, resetLo: 59 * time.Second, resetHi: time.Minute},
		{cost: 1, allowed: false, remaining: 0, retryLo: 5 * time.Second, retryHi: 6 * time.Second, resetLo: 59 * time.Second, resetHi: time.Minute},
	}
	for i, tt := range tests {
		d := allowN(t, lim, id, name, limit, tt.cost)
		if d.Allowed != tt.allowed || d.Remaining != tt.remaining {
			t.Errorf("request %d (cost %d): got allowed %v, %d left; want %v, %d left", i+1, tt.cost, d.Allowed, d.Remaining, tt.allowed, tt.remaining)
		}
		if tt.allowed && d.RetryAfter != 0 {
			t.Errorf("request %d (cost %d): allowed with RetryAfter %v, want 0", i+1, tt.cost, d.RetryAfter)
		}
		if !tt.allowed && !within(d.RetryAfter, tt.retryLo, tt.retryHi) {
			t.Errorf("request %d (cost %d): RetryAfter %v, want in (%v, %v]", i+1, tt.cost, d.RetryAfter, tt.retryLo, tt.retryHi)
		}
		if !within(d.Reset, tt.resetLo, tt.resetHi) {
			t.Errorf("request %d (cost %d): Reset %v, want in (%v, %v]", i+1, tt.cost, d.Reset, tt.resetLo, tt.resetHi)
		}
	}
}

// TestAllowNNamedLimits checks that the limits of one subject are
// independent of each other and of other subjects' limits of the same
// name, and the names of their Redis keys.
func TestAllowNNamedLimits(t *testing.T) {
	t.Parallel()
	lim, c, prefix := newLimiter(t)
	ctx := context.Background()
	limit := keygate.RateLimit{Requests: 3, Window: time.Hour}
	id, other := uuid.New(), uuid.New()
	if d := allowN(t, lim, id, "tokens", limit, 3); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("tokens, cost 3 of 3: %+v, want allowed, 0 left", d)
	}
	if d := allowN(t, lim, id, "tokens", limit, 1); d.Allowed {
		t.Fatalf("tokens, one more: %+v, want refused", d)
	}
	for _, l := range []struct {
		subject uuid.UUID
		name    string
	}{{id, "tokens.v2"}, {id, "search"}, {id, keygate.DefaultRateLimit}, {other, "tokens"}} {
		if d := allowN(t, lim, l.subject, l.name, limit, 2); !d.Allowed || d.Remaining != 1 {
			t.Errorf("%q of %s after tokens of %s was spent: %+v, want allowed, 1 left", l.name, l.subject, id, d)
		}
	}
	for _, name := range []string{
		"rate:" + prefix + id.String() + ":tokens",
		"rate:" + prefix + id.String() + ":tokens.v2",
		"rate:" + prefix + id.String(),
		"rate:" + prefix + other.String() + ":tokens",
	} {
		if n, err := c.Exists(ctx, name).Result(); err != nil || n != 1 {
			t.Errorf("Redis key %s: exists %d, %v; want 1", name, n, err)
		}
	}
	if n, err := c.Exists(ctx, "rate:"+prefix+id.String()+":"+keygate.DefaultRateLimit).Result(); err != nil || n != 0 {
		t.Errorf("a Redis key of its own for the default limit: exists %d, %v; want 0", n, err)
	}
}

// TestAllowNDefaultIsAllow checks that a key's limit named "default" is
// the one Allow and Status count, whichever method takes from it first.
func TestAllowNDefaultIsAllow(t *testing.T) {
	t.Parallel()
	lim, _, _ := newLimiter(t)
	ctx := context.Background()
	limit := keygate.RateLimit{Requests: 3, Window: time.Hour}

	t.Run("AllowN then Allow", func(t *testing.T) {
		id := uuid.New()
		if d := allowN(t, lim, id, keygate.DefaultRateLimit, limit, 2); !d.Allowed || d.Remaining != 1 {
			t.Fatalf("AllowN default, cost 2 of 3: %+v, want allowed, 1 left", d)
		}
		if left, _, err := lim.Status(ctx, id, limit); err != nil || left != 1 {
			t.Errorf("Status: %d left, %v; want 1", left, err)
		}
		if _, ok, err := lim.Allow(ctx, id, limit); !ok || err != nil {
			t.Fatalf("Allow, the third: %v, %v; want allowed", ok, err)
		}
		if retry, ok, err := lim.Allow(ctx, id, limit); ok || err != nil || retry <= 0 {
			t.Errorf("Allow, the fourth: allowed %v, retry %v, %v; want refused with a RetryAfter", ok, retry, err)
		}
	})
	t.Run("Allow then AllowN", func(t *testing.T) {
		id := uuid.New()
		for range 2 {
			if _, ok, err := lim.Allow(ctx, id, limit); !ok || err != nil {
				t.Fatalf("Allow: %v, %v; want allowed", ok, err)
			}
		}
		if d := allowN(t, lim, id, keygate.DefaultRateLimit, limit, 2); d.Allowed || d.Remaining != 1 {
			t.Errorf("AllowN default, cost 2 with 1 left: %+v, want refused, 1 left", d)
		}
		if d := allowN(t, lim, id, keygate.DefaultRateLimit, limit, 1); !d.Allowed || d.Remaining != 0 {
			t.Errorf("AllowN default, cost 1 with 1 left: %+v, want allowed, 0 left", d)
		}
		if _, ok, err := lim.Allow(ctx, id, limit); ok || err != nil {
			t.Errorf("Allow after: %v, %v; want refused", ok, err)
		}
	})
}

// TestAllowNSharedIsExact has two Limiters with a client each, as two
// instances, take costs of 1 to 3 from one limit from 8 goroutines each,
// then single units until refused: exactly the burst is taken in all.
func TestAllowNSharedIsExact(t *testing.T) {
	t.Parallel()
	first, _, prefix := newLimiter(t)
	second, err := kgredis.NewLimiter(kgredis.LimiterConfig{Client: newClient(t, redisAddr(t)), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	const (
		requests      = 60
		goroutinesPer = 8
		attempts      = 10 // 160 attempts of 2 units on average, then single units
	)
	limit := keygate.RateLimit{Requests: requests, Window: time.Hour} // a unit back every minute
	id := uuid.New()
	var taken, allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for _, l := range []*kgredis.Limiter{first, second} {
		for g := range goroutinesPer {
			wg.Go(func() {
				try := func(cost int) bool {
					d, err := l.AllowN(context.Background(), id, "units", limit, cost)
					switch {
					case err != nil:
						t.Errorf("AllowN: %v", err)
						return false
					case d.Allowed:
						taken.Add(int64(cost))
						allowed.Add(1)
					case d.RetryAfter <= 0 || d.Remaining >= cost:
						t.Errorf("refused cost %d: %+v, want a RetryAfter and fewer than %d left", cost, d, cost)
					default:
						refused.Add(1)
					}
					return d.Allowed
				}
				for i := range attempts {
					try(1 + (g+i)%3)
				}
				for try(1) {
				}
			})
		}
	}
	wg.Wait()
	t.Logf("2 limiters × %d goroutines: %d requests allowed, %d refused, %d units taken of %d", goroutinesPer, allowed.Load(), refused.Load(), taken.Load(), requests)
	if got := taken.Load(); got != requests {
		t.Errorf("took %d units in all, want exactly %d", got, requests)
	}
}

// TestAllowNWithoutRedis checks, with a client of a closed port, that a
// cost above the limit is refused and invalid arguments rejected without
// touching Redis.
func TestAllowNWithoutRedis(t *testing.T) {
	t.Parallel()
	hook := &countingHook{}
	c := goredis.NewClient(&goredis.Options{Addr: closedAddr(t), MaxRetries: -1})
	defer c.Close()
	c.AddHook(hook)
	lim, err := kgredis.NewLimiter(kgredis.LimiterConfig{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	limit := keygate.RateLimit{Requests: 10, Window: time.Minute}
	for _, name := range []string{"tokens", keygate.DefaultRateLimit} {
		d, err := lim.AllowN(ctx, uuid.New(), name, limit, 11)
		want := keygate.LimitDecision{RetryAfter: time.Minute, Reset: time.Minute}
		if err != nil || d != want {
			t.Errorf("%q, cost 11 of 10: %+v, %v; want %+v, nil", name, d, err, want)
		}
	}
	for _, tt := range []struct {
		name  string
		limit keygate.RateLimit
		cost  int
	}{
		{"tokens", limit, 0},
		{"tokens", limit, -1},
		{"", limit, 1},
		{"tokens", keygate.RateLimit{}, 1},
		{"tokens", keygate.RateLimit{Requests: 10}, 1},
		{keygate.DefaultRateLimit, keygate.RateLimit{Window: time.Second}, 1},
	} {
		if d, err := lim.AllowN(ctx, uuid.New(), tt.name, tt.limit, tt.cost); d.Allowed || !errors.Is(err, kgredis.ErrInvalidLimit) {
			t.Errorf("%q, %+v, cost %d: %+v, %v; want refused, ErrInvalidLimit", tt.name, tt.limit, tt.cost, d, err)
		}
	}
	if n := hook.dials.Load() + hook.commands.Load(); n != 0 {
		t.Errorf("Redis was touched %d times, want never", n)
	}
}

// TestAllowNRedisDown: with Redis unreachable, AllowN fails by default,
// and with FailOpen allows the request and calls OnFailOpen with the
// subject.
func TestAllowNRedisDown(t *testing.T) {
	t.Parallel()
	for _, failOpen := range []bool{false, true} {
		hook := &countingHook{}
		c := newClient(t, closedAddr(t), func(o *goredis.Options) { o.MaxRetries, o.DialerRetries = -1, 1 })
		c.AddHook(hook)
		id := uuid.New()
		var calls atomic.Int64
		lim, err := kgredis.NewLimiter(kgredis.LimiterConfig{
			Client:   c,
			FailOpen: failOpen,
			OnFailOpen: func(_ context.Context, subject uuid.UUID, err error) {
				if subject != id || err == nil {
					t.Errorf("OnFailOpen(%s, %v), want (%s, an error)", subject, err, id)
				}
				calls.Add(1)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		d, err := lim.AllowN(context.Background(), id, "tokens", keygate.RateLimit{Requests: 10, Window: time.Minute}, 2)
		switch {
		case failOpen && (err != nil || d != keygate.LimitDecision{Allowed: true}):
			t.Errorf("FailOpen: %+v, %v; want allowed, nil", d, err)
		case !failOpen && (err == nil || d.Allowed || errors.Is(err, kgredis.ErrInvalidLimit)):
			t.Errorf("fail closed: %+v, %v; want refused with Redis's error", d, err)
		}
		if hook.dials.Load() == 0 {
			t.Errorf("FailOpen %v: Redis was not tried", failOpen)
		}
		want := int64(0)
		if failOpen {
			want = 1
		}
		if n := calls.Load(); n != want {
			t.Errorf("FailOpen %v: OnFailOpen called %d times, want %d", failOpen, n, want)
		}
	}
}

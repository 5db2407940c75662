package keygate

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// fakeLimiter is a RateLimiter that answers as told and counts calls.
type fakeLimiter struct {
	calls   atomic.Int64
	allowed bool
	wait    time.Duration
	err     error
}

func (l *fakeLimiter) Allow(_ context.Context, _ uuid.UUID, limit RateLimit) (time.Duration, bool, error) {
	l.calls.Add(1)
	if limit.Requests != 3 || limit.Window != time.Minute {
		return 0, false, errors.New("wrong limit passed")
	}
	return l.wait, l.allowed, l.err
}

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		l    *fakeLimiter
		want error
	}{
		{"allowed", &fakeLimiter{allowed: true}, nil},
		{"refused", &fakeLimiter{wait: 7 * time.Second}, ErrRateLimited},
		{"limiter down: fail closed", &fakeLimiter{err: errors.New("redis: connection refused")}, ErrUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.RateLimiter = tt.l })
			limited := f.create(t, CreateRequest{Limits: Limits{Rate: RateLimit{Requests: 3, Window: time.Minute}}})
			free := f.create(t, CreateRequest{})
			_, err := f.m.Verify(ctx, limited.Token.Reveal())
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			var rl *RateLimitError
			if errors.As(err, &rl) && rl.RetryAfter != tt.l.wait {
				t.Errorf("RetryAfter = %v, want the limiter's %v", rl.RetryAfter, tt.l.wait)
			}
			if _, err := f.m.Verify(ctx, free.Token.Reveal()); err != nil {
				t.Fatalf("key without a rate limit: %v", err)
			}
			if n := tt.l.calls.Load(); n != 1 {
				t.Errorf("the limiter was asked %d times, want once (never for keys without a limit)", n)
			}
		})
	}
}

// publishingFeed is a change feed that records what it is told to publish.
type publishingFeed struct {
	chanFeed
	mu        sync.Mutex
	published []uuid.UUID
	fail      bool
}

func (f *publishingFeed) Publish(_ context.Context, id uuid.UUID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("bus down")
	}
	f.published = append(f.published, id)
	return nil
}

func TestChangesArePublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := &publishingFeed{chanFeed: chanFeed{ids: make(chan uuid.UUID)}}
	f := newFixture(t, func(c *Config) { c.ChangeFeed = feed; c.Logger = slog.New(slog.DiscardHandler) })
	a, b := f.create(t, CreateRequest{}), f.create(t, CreateRequest{})
	name := "renamed"
	if _, err := f.m.Update(ctx, System(), a.Key.ID, UpdateRequest{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Regenerate(ctx, System(), a.Key.ID, RegenerateRequest{Expiry: NeverExpire()}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Revoke(ctx, System(), b.Key.ID); err != nil {
		t.Fatal(err)
	}
	feed.fail = true
	// A change stands even when publishing it fails.
	if err := f.m.Delete(ctx, System(), b.Key.ID); err != nil {
		t.Fatalf("Delete with the bus down: %v", err)
	}
	want := []uuid.UUID{a.Key.ID, a.Key.ID, b.Key.ID}
	feed.mu.Lock()
	defer feed.mu.Unlock()
	if !slices.Equal(feed.published, want) {
		t.Errorf("published %v, want %v (update, regenerate, revoke)", feed.published, want)
	}
}

// TestPublishOutlivesTheCaller checks that a change is published even when
// the caller's context ends right after the store has it.
func TestPublishOutlivesTheCaller(t *testing.T) {
	t.Parallel()
	feed := &ctxFeed{chanFeed: chanFeed{ids: make(chan uuid.UUID)}}
	f := newFixture(t, func(c *Config) { c.ChangeFeed = feed })
	k := f.create(t, CreateRequest{})
	ctx, cancel := context.WithCancel(context.Background())
	f.store.onUpdate = cancel // the caller goes away once the change is stored
	if _, err := f.m.Revoke(ctx, System(), k.Key.ID); err != nil {
		t.Fatal(err)
	}
	if err := feed.seen.Load(); err == nil || *err != nil {
		t.Errorf("Publish got a context with error %v, want a live one", err)
	}
}

// ctxFeed records the context error Publish was given.
type ctxFeed struct {
	chanFeed
	seen atomic.Pointer[error]
}

func (f *ctxFeed) Publish(ctx context.Context, _ uuid.UUID) error {
	err := ctx.Err()
	f.seen.Store(&err)
	if _, ok := ctx.Deadline(); !ok {
		e := errors.New("no deadline")
		f.seen.Store(&e)
	}
	return nil
}

// TestMaxLifetime: with a configured ceiling, no key is given a longer
// life: not on create, update or regenerate, and "never" is refused.
func TestMaxLifetime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.MaxLifetime = 90 * 24 * time.Hour })
	for _, e := range []Expiry{NeverExpire(), ExpireAfterDays(91)} {
		_, err := f.m.Create(ctx, System(), CreateRequest{Name: "k-" + e.String(), Role: "admin", Expiry: e})
		if !errors.Is(err, ErrInvalidExpiry) || !strings.Contains(err.Error(), "at most") {
			t.Errorf("create with %v: got %v, want ErrInvalidExpiry naming the ceiling", e, err)
		}
	}
	c := f.create(t, CreateRequest{Expiry: ExpireAfterDays(90)})
	never := NeverExpire()
	if _, err := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Expiry: &never}); !errors.Is(err, ErrInvalidExpiry) {
		t.Errorf("update to never: %v, want ErrInvalidExpiry", err)
	}
	if _, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(120)}); !errors.Is(err, ErrInvalidExpiry) {
		t.Errorf("regenerate for 120 days: %v, want ErrInvalidExpiry", err)
	}
	if _, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(30)}); err != nil {
		t.Errorf("regenerate for 30 days: %v", err)
	}
	if _, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, MaxLifetime: -time.Hour}); err == nil {
		t.Error("a negative MaxLifetime was accepted")
	}
}

// reportingLimiter is a shared rate limiter that reports a status.
type reportingLimiter struct {
	fakeLimiter
	remaining int
	reset     time.Duration
	err       error
}

func (l *reportingLimiter) Status(_ context.Context, _ uuid.UUID, limit RateLimit) (int, time.Duration, error) {
	if limit.Requests != 3 || limit.Window != time.Minute {
		return 0, 0, errors.New("wrong limit passed")
	}
	return l.remaining, l.reset, l.err
}

// TestRateStatus: what is left of a key's rate limit, as the in-process
// limiter counts it, request after request and as time passes; and as a
// shared limiter reports it, when it can.
func TestRateStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	limit := RateLimit{Requests: 3, Window: time.Minute}
	f := newFixture(t)
	c := f.create(t, CreateRequest{Limits: Limits{Rate: limit}})
	status := func(k *Key) (int, time.Duration) {
		t.Helper()
		st, ok := f.m.RateStatus(ctx, k)
		if !ok || st.RateLimit != limit {
			t.Fatalf("RateStatus = %+v, %v; want the key's limit", st, ok)
		}
		return st.Remaining, st.Reset
	}
	var k *Key
	for i, want := range []struct {
		remaining int
		reset     time.Duration
	}{{2, 20 * time.Second}, {1, 40 * time.Second}, {0, time.Minute}} {
		var err error
		if k, err = f.m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if r, reset := status(k); r != want.remaining || reset != want.reset {
			t.Errorf("after request %d: %d left, whole in %v; want %d, %v", i+1, r, reset, want.remaining, want.reset)
		}
	}
	_, err := f.m.Verify(ctx, c.Token.Reveal())
	var rl *RateLimitError
	if !errors.As(err, &rl) || *rl != (RateLimitError{RetryAfter: 20 * time.Second, Limit: limit, Reset: time.Minute, Name: DefaultRateLimit}) {
		t.Fatalf("request 4: %#v, want a RateLimitError to retry after 20s, whole in 1m", err)
	}
	if r, reset := status(k); r != 0 || reset != time.Minute {
		t.Errorf("after a refused request: %d left, whole in %v; want 0, 1m0s (a refusal takes nothing)", r, reset)
	}
	f.clock.Advance(25 * time.Second)
	if r, reset := status(k); r != 1 || reset != 35*time.Second {
		t.Errorf("25s later: %d left, whole in %v; want 1, 35s", r, reset)
	}
	f.clock.Advance(time.Hour)
	if r, reset := status(k); r != 3 || reset != 0 {
		t.Errorf("an hour later: %d left, whole in %v; want 3, 0s", r, reset)
	}

	free, err := f.m.Verify(ctx, f.create(t, CreateRequest{}).Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	remote := NewKey(&k.Key, k.Permissions(), false)
	for name, k := range map[string]*Key{"no rate limit": free, "nil": nil, "from NewKey": remote} {
		if st, ok := f.m.RateStatus(ctx, k); ok {
			t.Errorf("%s: RateStatus = %+v, true; want false", name, st)
		}
	}

	for _, tt := range []struct {
		name    string
		l       RateLimiter
		want    RateStatus
		reports bool
	}{
		{"shared, not a reporter", &fakeLimiter{allowed: true}, RateStatus{}, false},
		{"shared reporter", &reportingLimiter{fakeLimiter: fakeLimiter{allowed: true}, remaining: 2, reset: 7 * time.Second},
			RateStatus{RateLimit: limit, Remaining: 2, Reset: 7 * time.Second}, true},
		{"shared reporter, clamped", &reportingLimiter{fakeLimiter: fakeLimiter{allowed: true}, remaining: 9, reset: -time.Second},
			RateStatus{RateLimit: limit, Remaining: 3}, true},
		{"shared reporter down", &reportingLimiter{fakeLimiter: fakeLimiter{allowed: true}, err: errors.New("redis: connection refused")},
			RateStatus{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.RateLimiter = tt.l })
			k, err := f.m.Verify(ctx, f.create(t, CreateRequest{Limits: Limits{Rate: limit}}).Token.Reveal())
			if err != nil {
				t.Fatal(err)
			}
			if st, ok := f.m.RateStatus(ctx, k); st != tt.want || ok != tt.reports {
				t.Errorf("RateStatus = %+v, %v; want %+v, %v", st, ok, tt.want, tt.reports)
			}
		})
	}
}

// TestRateStatusAllocatesNothing (not parallel: AllocsPerRun needs the
// process to itself).
func TestRateStatusAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	k, err := f.m.Verify(ctx, f.create(t, CreateRequest{Limits: Limits{Rate: RateLimit{Requests: 3, Window: time.Minute}}}).Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { f.m.RateStatus(ctx, k) }); n != 0 {
		t.Errorf("RateStatus allocates %v times, want 0", n)
	}
}

// TestReportedRate: a key carries the status another service reported
// with it, in a copy; the original and a Manager's keys carry none.
func TestReportedRate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k, err := f.m.Verify(context.Background(), f.create(t, CreateRequest{}).Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	st := RateStatus{RateLimit: RateLimit{Requests: 10, Window: time.Minute}, Remaining: 4, Reset: 36 * time.Second}
	c := k.WithReportedRate(st)
	if got, ok := c.ReportedRate(); !ok || got != st {
		t.Errorf("the copy reports %+v, %v; want %+v", got, ok, st)
	}
	if c.ID != k.ID || !slices.Equal(c.Permissions(), k.Permissions()) {
		t.Error("the copy is not the same key")
	}
	for name, k := range map[string]*Key{"the original": k, "nil": nil, "a zero Key": {}} {
		if got, ok := k.ReportedRate(); ok {
			t.Errorf("%s reports %+v", name, got)
		}
	}
}

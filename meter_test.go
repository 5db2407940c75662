package keygate

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// rateErr returns err as a *RateLimitError, failing t otherwise.
func rateErr(t *testing.T, what string, err error) *RateLimitError {
	t.Helper()
	var rl *RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("%s: %v, want a *RateLimitError", what, err)
	}
	return rl
}

// TestNamedLimitsWithCost: a key's named limits apply on every
// verification (always-on) or when named (on demand), each taking the
// verification's cost, and the report says what is left of each.
func TestNamedLimitsWithCost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	requests := RateLimit{Name: "requests", Requests: 3, Window: time.Minute}
	tokens := RateLimit{Name: "tokens", Requests: 10, Window: time.Minute, OnDemand: true}
	c := f.create(t, CreateRequest{Limits: Limits{RateLimits: []RateLimit{requests, tokens}}})
	tok := c.Token.Reveal()

	// An on-demand limit named: cost 4 from both.
	k, rep, err := f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 4, Limits: []string{"tokens", "unknown-elsewhere"}})
	if err == nil {
		t.Fatalf("cost 4 under a limit of 3 requests: %v, want refused", k)
	}
	if rl := rateErr(t, "cost 4", err); rl.Name != "requests" || rl.Identity || rl.RetryAfter != time.Minute {
		t.Fatalf("cost 4 under a limit of 3: %+v, want refused by requests, retry after its window", rl)
	}
	if rep.Cost != 4 || len(rep.Limits) != 1 || rep.Limits[0].Allowed || rep.Limits[0].Limit != requests || rep.Limits[0].Remaining != 3 {
		t.Fatalf("report of a refusal: %+v, want the refusing limit", rep)
	}
	for i, cost := range []int{1, 2} {
		if k, rep, err = f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: cost, Limits: []string{"tokens"}}); err != nil || k == nil {
			t.Fatalf("verification %d: %v", i+1, err)
		}
	}
	// requests: 1 + 2 of 3 taken; tokens: 1 + 2 of 10.
	if len(rep.Limits) != 2 || rep.Limits[0].Limit.Name != "requests" || rep.Limits[0].Remaining != 0 ||
		rep.Limits[1].Limit != tokens || rep.Limits[1].Remaining != 7 || !rep.Limits[1].Allowed || rep.Limits[1].Identity {
		t.Fatalf("report: %+v, want requests 0 left, tokens 7 left", rep.Limits)
	}
	if rep.Limits[1].Reset != 3*tokens.Window/10 {
		t.Errorf("tokens reset in %v, want %v", rep.Limits[1].Reset, 3*tokens.Window/10)
	}
	// requests is spent: the next is refused by it, whatever is named.
	_, _, err = f.m.VerifyWith(ctx, tok, VerifyOptions{})
	if rl := rateErr(t, "a fourth request", err); rl.Name != "requests" || rl.RetryAfter != 20*time.Second {
		t.Fatalf("a fourth request: %+v, want requests to refuse it for 20s", rl)
	}
	if _, err := f.m.Verify(ctx, tok); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("Verify of the spent key: %v, want ErrRateLimited", err)
	}

	// A minute later the limits are whole; tokens refuses what it cannot
	// pay and takes nothing then.
	f.clock.Advance(time.Minute)
	if _, _, err := f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 3, Limits: []string{"tokens"}}); err != nil {
		t.Fatal(err)
	}
	_, rep, err = f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 11, Limits: []string{"tokens"}})
	if err == nil || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("cost 11: %v, want refused", err)
	}
	f.clock.Advance(time.Minute)
	if _, rep, err = f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 3, Limits: []string{"tokens"}}); err != nil || rep.Limits[1].Remaining != 7 {
		t.Fatalf("after a minute: %+v, %v; want tokens whole again, 7 left after 3", rep, err)
	}
}

// TestVerifyOptionsBounds: options out of bounds are a request error,
// with nothing verified or counted.
func TestVerifyOptionsBounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.create(t, CreateRequest{Limits: Limits{Uses: int64p(5)}})
	names := make([]string, MaxVerifyLimits+1)
	for i := range names {
		names[i] = "n"
	}
	for _, o := range []VerifyOptions{{Cost: -1}, {Cost: MaxCost + 1}, {Limits: []string{"Bad Name"}}, {Limits: []string{""}}, {Limits: names}} {
		k, _, err := f.m.VerifyWith(context.Background(), c.Token.Reveal(), o)
		if k != nil || !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("VerifyWith(%+v): %v, %v; want ErrInvalidRequest", o, k, err)
		}
	}
	rec, _ := f.m.Get(context.Background(), System(), c.Key.ID)
	if *rec.RemainingUses != 5 {
		t.Errorf("uses after refused options: %d, want 5", *rec.RemainingUses)
	}
}

// TestUsesWithCostAndRefill: a verification takes its cost from the key's
// uses, none when they cannot pay, and uses refill at their period's
// boundary, once, on the first use after it.
func TestUsesWithCostAndRefill(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	// The clock is 2026-11-22T10:00Z.
	c := f.create(t, CreateRequest{Expiry: NeverExpire(), Limits: Limits{Uses: int64p(10), Refill: &Refill{Amount: 6, Every: store.PeriodDay}}})
	tok := c.Token.Reveal()
	midnight := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	k, rep, err := f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 7})
	if err != nil || rep.Uses == nil || rep.Uses.Remaining != 3 || !rep.Uses.NextRefill.Equal(midnight) || *k.RemainingUses != 3 {
		t.Fatalf("cost 7 of 10: %+v, %v; want 3 left, refilled at %v", rep.Uses, err, midnight)
	}
	_, rep, err = f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 4})
	if !errors.Is(err, ErrUsageExhausted) || rep.Uses == nil || rep.Uses.Remaining != 3 {
		t.Fatalf("cost 4 of 3: %+v, %v; want ErrUsageExhausted with 3 left", rep.Uses, err)
	}
	if _, _, err = f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Verify(ctx, tok); !errors.Is(err, ErrUsageExhausted) {
		t.Fatalf("no use left: %v, want ErrUsageExhausted", err)
	}
	// One nanosecond before midnight: still none. At midnight: 6, once.
	f.clock.Advance(midnight.Sub(f.clock.Now()) - 1)
	if _, err := f.m.Verify(ctx, tok); !errors.Is(err, ErrUsageExhausted) {
		t.Fatalf("before midnight: %v, want ErrUsageExhausted", err)
	}
	f.clock.Advance(1)
	_, rep, err = f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 2})
	if err != nil || rep.Uses.Remaining != 4 || !rep.Uses.NextRefill.Equal(midnight.AddDate(0, 0, 1)) {
		t.Fatalf("at midnight: %+v, %v; want refilled to 6, 4 left after 2", rep.Uses, err)
	}
	// Three idle days: refilled once to 6, not 3 × 6.
	f.clock.Advance(3*24*time.Hour + time.Hour)
	if _, rep, err = f.m.VerifyWith(ctx, tok, VerifyOptions{}); err != nil || rep.Uses.Remaining != 5 {
		t.Fatalf("after idle days: %+v, %v; want 5 left", rep.Uses, err)
	}
	rec, _ := f.m.Get(ctx, System(), c.Key.ID)
	if want := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC); *rec.RemainingUses != 5 || !rec.RefilledAt.Equal(want) {
		t.Fatalf("stored: %d uses refilled at %v, want 5 at %v", *rec.RemainingUses, rec.RefilledAt, want)
	}
}

// TestIdentityLimitsShared: an identity's rate limits and credits bind
// all its keys together, its credits refill monthly (the 31st being the
// last day of shorter months), and a change of its limits applies at once
// to its keys already cached.
func TestIdentityLimitsShared(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	// The clock is 2026-11-22T10:00Z; credits refill on the 31st: next
	// on 2026-11-30 (November's last day).
	monthly := &Refill{Amount: 8, Every: store.PeriodMonth, Day: 31}
	id := f.identity(t, CreateIdentityRequest{Limits: IdentityLimits{
		RateLimits: []RateLimit{{Name: "requests", Requests: 6, Window: time.Minute}},
		Credits:    &Credits{Remaining: 5, Refill: monthly},
	}})
	a := f.create(t, CreateRequest{Expiry: NeverExpire(), IdentityID: id.ID}).Token.Reveal()
	b := f.create(t, CreateRequest{Expiry: NeverExpire(), IdentityID: id.ID}).Token.Reveal()
	for i, tok := range []string{a, b, a} {
		_, rep, err := f.m.VerifyWith(ctx, tok, VerifyOptions{})
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if len(rep.Limits) != 1 || !rep.Limits[0].Identity || rep.Limits[0].Remaining != 5-i || rep.Credits == nil ||
			rep.Credits.Remaining != int64(4-i) || !rep.Credits.NextRefill.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("request %d: %+v, credits %+v; want %d requests and %d credits left", i+1, rep, rep.Credits, 5-i, 4-i)
		}
	}
	// Credits: 2 left; a cost of 3 is refused by them (after the rate
	// limit took it: no refund), with the balance reported.
	_, rep, err := f.m.VerifyWith(ctx, b, VerifyOptions{Cost: 3})
	if !errors.Is(err, ErrUsageExhausted) || rep.Credits == nil || rep.Credits.Remaining != 2 {
		t.Fatalf("cost 3 of 2 credits: %+v, %v; want ErrUsageExhausted with 2 left", rep.Credits, err)
	}
	// The rate limit is spent (3 + 3 of 6) for both keys.
	_, err = f.m.Verify(ctx, a)
	if rl := rateErr(t, "key a over its identity's limit", err); !rl.Identity || rl.Name != "requests" {
		t.Fatalf("refusal: %+v, want the identity's requests limit", rl)
	}

	// Tightening the identity applies to its cached keys at once.
	f.clock.Advance(time.Hour)
	none := []RateLimit{{Name: "requests", Requests: 1, Window: time.Hour}}
	if _, err := f.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{RateLimits: &none}); err != nil {
		t.Fatal(err)
	}
	if _, rep, err = f.m.VerifyWith(ctx, a, VerifyOptions{}); err != nil || rep.Limits[0].Limit.Requests != 1 || rep.Limits[0].Remaining != 0 {
		t.Fatalf("after the update: %+v, %v; want the new limit of 1 an hour applied", rep, err)
	}
	if _, err := f.m.Verify(ctx, b); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("key b after the update: %v, want ErrRateLimited by the new limit", err)
	}
	// November 30th: credits back to 8 (1 left before).
	f.clock.Advance(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).Sub(f.clock.Now()))
	if _, rep, err = f.m.VerifyWith(ctx, b, VerifyOptions{}); err != nil || rep.Credits.Remaining != 7 ||
		!rep.Credits.NextRefill.Equal(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after the refill: %+v, %v; want 7 left, next refill on December 31st", rep.Credits, err)
	}
	// Removing the limits makes the keys cheap again: no report.
	empty := []RateLimit{}
	neg := int64(-1)
	if _, err := f.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{RateLimits: &empty, Credits: &CreditsUpdate{Remaining: &neg}}); err != nil {
		t.Fatal(err)
	}
	if _, rep, err = f.m.VerifyWith(ctx, a, VerifyOptions{}); err != nil || len(rep.Limits) != 0 || rep.Credits != nil {
		t.Fatalf("without limits: %+v, %v", rep, err)
	}
}

// TestIdentityCreditsConcurrent: credits shared by many keys under
// concurrent verifications pay exactly what they hold.
func TestIdentityCreditsConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	id := f.identity(t, CreateIdentityRequest{Limits: IdentityLimits{Credits: &Credits{Remaining: 100}}})
	toks := []string{
		f.create(t, CreateRequest{IdentityID: id.ID}).Token.Reveal(),
		f.create(t, CreateRequest{IdentityID: id.ID}).Token.Reveal(),
		f.create(t, CreateRequest{IdentityID: id.ID}).Token.Reveal(),
	}
	var allowed, exhausted atomic.Int64
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			for range 10 {
				_, _, err := f.m.VerifyWith(ctx, toks[g%len(toks)], VerifyOptions{Cost: 3})
				switch {
				case err == nil:
					allowed.Add(1)
				case errors.Is(err, ErrUsageExhausted):
					exhausted.Add(1)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 33 || exhausted.Load() != 120-33 {
		t.Fatalf("%d allowed, %d exhausted; want 33 (100 credits at 3 each) and 87", allowed.Load(), exhausted.Load())
	}
	got, err := f.store.identities().GetIdentity(ctx, id.ID)
	if err != nil || got.Credits.Remaining != 1 {
		t.Fatalf("credits left: %+v, %v; want 1", got, err)
	}
}

// TestMeteringFailsClosed: a store failing to spend uses or credits is a
// verification refused as unavailable, never a pass.
func TestMeteringFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	id := f.identity(t, CreateIdentityRequest{Limits: IdentityLimits{Credits: &Credits{Remaining: 100}}})
	credits := f.create(t, CreateRequest{IdentityID: id.ID}).Token.Reveal()
	uses := f.create(t, CreateRequest{Limits: Limits{Uses: int64p(10)}}).Token.Reveal()
	for _, tok := range []string{credits, uses} {
		if _, err := f.m.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	f.store.fail.Store(true)
	for _, tok := range []string{credits, uses} {
		if k, _, err := f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 2}); k != nil || !errors.Is(err, ErrUnavailable) {
			t.Errorf("with the store down: %v, %v; want ErrUnavailable", k, err)
		}
	}
}

// plainStore is a memory store that is neither a store.UseSpender nor a
// store.CreditSpender (nor an identity store): a custom backend of an
// earlier version.
type plainStore struct{ store.Store }

// TestMeteringWithAPlainStore: a store that takes no cost still serves
// keys with uses one at a time; a higher cost fails closed.
func TestMeteringWithAPlainStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Store = plainStore{memory.New()} })
	ctx := context.Background()
	tok := f.create(t, CreateRequest{Limits: Limits{Uses: int64p(2)}}).Token.Reveal()
	if _, rep, err := f.m.VerifyWith(ctx, tok, VerifyOptions{}); err != nil || rep.Uses == nil || rep.Uses.Remaining != 1 {
		t.Fatalf("cost 1: %+v, %v; want 1 left", rep.Uses, err)
	}
	if _, _, err := f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 2}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cost 2: %v, want ErrUnavailable", err)
	}
}

// TestOnDemandOnlyKeyStaysFast: a key whose only limits are on demand is
// admitted from its summary unless a verification names one, and that a
// key with an always-on one is not.
func TestOnDemandOnlyKeyStaysFast(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	exports := RateLimit{Name: "exports", Requests: 1, Window: time.Hour, OnDemand: true}
	tok := f.create(t, CreateRequest{Limits: Limits{RateLimits: []RateLimit{exports}}}).Token.Reveal()
	for range 3 {
		if _, err := f.m.Verify(ctx, tok); err != nil {
			t.Fatalf("unnamed: %v", err)
		}
	}
	if _, _, err := f.m.VerifyWith(ctx, tok, VerifyOptions{Limits: []string{"exports"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.m.VerifyWith(ctx, tok, VerifyOptions{Limits: []string{"exports"}}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("a second export: %v, want ErrRateLimited", err)
	}
	summarized := func(tok string) bool {
		t.Helper()
		d := digestOf(tok)
		e, ok := f.m.cache.get(&d, f.clock.Now().UnixNano())
		if !ok {
			t.Fatal("the key is not cached")
		}
		return e.live != math.MinInt64
	}
	if !summarized(tok) {
		t.Error("a key with only on-demand limits is not admitted from its summary")
	}
	always := f.create(t, CreateRequest{Limits: Limits{RateLimits: []RateLimit{{Name: "requests", Requests: 9, Window: time.Hour}}}}).Token.Reveal()
	if _, err := f.m.Verify(ctx, always); err != nil {
		t.Fatal(err)
	}
	if summarized(always) {
		t.Error("a key with an always-on named limit is admitted from its summary, unmetered")
	}
}

// costLimiter is a CostLimiter that records its calls and allows what
// its decide says.
type costLimiter struct {
	mu    sync.Mutex
	calls []string
	// down makes AllowN fail, as a Redis that is gone.
	down atomic.Bool
}

func (l *costLimiter) Allow(ctx context.Context, id uuid.UUID, limit RateLimit) (time.Duration, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, "allow "+id.String())
	return 0, true, nil
}

func (l *costLimiter) AllowN(ctx context.Context, subject uuid.UUID, name string, limit RateLimit, cost int) (LimitDecision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, name+" "+subject.String())
	if l.down.Load() {
		return LimitDecision{}, errors.New("limiter down")
	}
	return LimitDecision{Allowed: cost <= 2, Remaining: 7, RetryAfter: time.Second}, nil
}

// TestCostLimiterCounts: with a CostLimiter, every limit, the key's own
// and its identity's, is counted by it, under the subject and name it
// belongs to.
func TestCostLimiterCounts(t *testing.T) {
	t.Parallel()
	l := &costLimiter{}
	f := newFixture(t, func(c *Config) { c.RateLimiter = l })
	ctx := context.Background()
	id := f.identity(t, CreateIdentityRequest{Limits: IdentityLimits{RateLimits: []RateLimit{{Name: "requests", Requests: 10, Window: time.Second}}}})
	c := f.create(t, CreateRequest{IdentityID: id.ID, Limits: Limits{
		Rate: RateLimit{Requests: 5, Window: time.Second}, RateLimits: []RateLimit{{Name: "tokens", Requests: 9, Window: time.Second}},
	}})
	_, rep, err := f.m.VerifyWith(ctx, c.Token.Reveal(), VerifyOptions{Cost: 2})
	if err != nil || len(rep.Limits) != 3 || rep.Limits[0].Remaining != 7 {
		t.Fatalf("VerifyWith: %+v, %v", rep, err)
	}
	want := []string{"default " + c.Key.ID.String(), "tokens " + c.Key.ID.String(), "requests " + id.ID.String()}
	if len(l.calls) != 3 || l.calls[0] != want[0] || l.calls[1] != want[1] || l.calls[2] != want[2] {
		t.Fatalf("limiter calls %q, want %q", l.calls, want)
	}
	// A plain Verify takes the default limit with Allow, as before.
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil || l.calls[3] != "allow "+c.Key.ID.String() {
		t.Fatalf("Verify: %v, calls %q", err, l.calls)
	}
	_, rep, err = f.m.VerifyWith(ctx, c.Token.Reveal(), VerifyOptions{Cost: 3})
	if rl := rateErr(t, "cost 3", err); rl.Name != DefaultRateLimit || rl.RetryAfter != time.Second || len(rep.Limits) != 1 {
		t.Fatalf("cost 3: %+v, %+v", rl, rep)
	}
	// The limiter gone: refused as unavailable, never let through.
	l.down.Store(true)
	if k, _, err := f.m.VerifyWith(ctx, c.Token.Reveal(), VerifyOptions{}); k != nil || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with the limiter down: %v, %v; want ErrUnavailable", k, err)
	}
}

// TestVerifyCachedWith: a cached key is verified and metered; any other
// token is unknown, with nothing done.
func TestVerifyCachedWith(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tok := f.create(t, CreateRequest{Limits: Limits{Uses: int64p(10)}}).Token.Reveal()
	if _, _, known, err := f.m.VerifyCachedWith(ctx, tok, VerifyOptions{Cost: 2}); known || err != nil {
		t.Fatalf("before any verification: known %v, %v; want unknown", known, err)
	}
	if _, err := f.m.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	k, rep, known, err := f.m.VerifyCachedWith(ctx, tok, VerifyOptions{Cost: 4})
	if !known || err != nil || k == nil || rep.Uses == nil || rep.Uses.Remaining != 5 {
		t.Fatalf("cached: %v, %+v, known %v, %v; want 5 uses left", k, rep.Uses, known, err)
	}
	if _, _, known, err := f.m.VerifyCachedWith(ctx, tok, VerifyOptions{Cost: 6}); !known || !errors.Is(err, ErrUsageExhausted) {
		t.Fatalf("cost 6 of 5: known %v, %v; want ErrUsageExhausted", known, err)
	}
	if _, _, known, err := f.m.VerifyCachedWith(ctx, tok, VerifyOptions{Cost: -1}); known || !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("cost -1: known %v, %v; want ErrInvalidRequest", known, err)
	}
}

// TestIdentityChangeWithoutFeed: an instance that hears of no change
// applies an identity's new limits once its cached entry expires, as it
// applies a key's: within CacheTTL, not never.
func TestIdentityChangeWithoutFeed(t *testing.T) {
	t.Parallel()
	a := newFixture(t, func(c *Config) { c.CacheTTL = time.Minute })
	b := newFixture(t, func(c *Config) { c.Store, c.Now, c.CacheTTL = a.store, a.clock.Now, time.Minute })
	ctx := context.Background()
	id := a.identity(t, CreateIdentityRequest{Limits: IdentityLimits{RateLimits: []RateLimit{{Name: "requests", Requests: 1000, Window: time.Hour}}}})
	tok := a.create(t, CreateRequest{Expiry: NeverExpire(), IdentityID: id.ID}).Token.Reveal()
	requests := func(m *Manager) int {
		t.Helper()
		_, rep, err := m.VerifyWith(ctx, tok, VerifyOptions{})
		if err != nil && !errors.Is(err, ErrRateLimited) {
			t.Fatal(err)
		}
		return rep.Limits[0].Limit.Requests
	}
	if n := requests(b.m); n != 1000 {
		t.Fatalf("limit %d, want 1000", n)
	}
	one := []RateLimit{{Name: "requests", Requests: 1, Window: time.Hour}}
	if _, err := a.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{RateLimits: &one}); err != nil {
		t.Fatal(err)
	}
	if n := requests(b.m); n != 1000 {
		t.Fatalf("at once, without a feed: limit %d, want the cached 1000 (else this test proves nothing)", n)
	}
	for range 3 { // the key's cache entry expires, and the identity's with it
		a.clock.Advance(time.Minute)
		if n := requests(b.m); n != 1 {
			t.Fatalf("a cache TTL later: limit %d, want 1", n)
		}
	}
}

// TestBalancesShownAsDue: a balance whose refill is due is shown refilled
// by Get, List, GetIdentity and ListIdentities, as the next verification
// finds it, without being written.
func TestBalancesShownAsDue(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	// The clock is 2026-11-22T10:00Z.
	id := f.identity(t, CreateIdentityRequest{Limits: IdentityLimits{Credits: &Credits{Remaining: 3, Refill: &Refill{Amount: 50, Every: store.PeriodDay}}}})
	c := f.create(t, CreateRequest{Expiry: NeverExpire(), IdentityID: id.ID, Limits: Limits{Uses: int64p(2), Refill: &Refill{Amount: 9, Every: store.PeriodMonth, Day: 1}}})
	check := func(what string, uses, credits int64) {
		t.Helper()
		k, err := f.m.Get(ctx, System(), c.Key.ID)
		if err != nil || *k.RemainingUses != uses {
			t.Errorf("%s: Get: %v uses, %v; want %d", what, k.RemainingUses, err, uses)
		}
		page, err := f.m.List(ctx, System(), ListRequest{IdentityID: id.ID})
		if err != nil || len(page.Keys) != 1 || *page.Keys[0].RemainingUses != uses {
			t.Errorf("%s: List: %+v, %v; want %d uses", what, page, err, uses)
		}
		got, err := f.m.GetIdentity(ctx, System(), id.ID)
		if err != nil || got.Credits.Remaining != credits {
			t.Errorf("%s: GetIdentity: %+v, %v; want %d credits", what, got, err, credits)
		}
		ids, err := f.m.ListIdentities(ctx, System(), IdentityListRequest{})
		if err != nil || len(ids.Identities) != 1 || ids.Identities[0].Credits.Remaining != credits {
			t.Errorf("%s: ListIdentities: %+v, %v; want %d credits", what, ids, err, credits)
		}
	}
	check("before any boundary", 2, 3)
	f.clock.Advance(14 * time.Hour) // 2026-11-23T00:00Z: the credits' boundary
	check("past the credits' boundary", 2, 50)
	f.clock.Advance(8 * 24 * time.Hour) // December 1st: the uses' too
	check("past both", 9, 50)
	stored, err := f.store.Get(ctx, c.Key.ID)
	if err != nil || *stored.RemainingUses != 2 {
		t.Fatalf("stored uses: %v, %v; want 2 (nothing written)", stored.RemainingUses, err)
	}
	if _, rep, err := f.m.VerifyWith(ctx, c.Token.Reveal(), VerifyOptions{Cost: 4}); err != nil || rep.Uses.Remaining != 5 || rep.Credits.Remaining != 46 {
		t.Fatalf("a verification: %+v, %+v, %v; want 5 uses and 46 credits left", rep.Uses, rep.Credits, err)
	}
	check("after a verification", 5, 46)
}

// plainLimiter is a RateLimiter that is not a CostLimiter, counting its
// calls and allowing all.
type plainLimiter struct{ calls atomic.Int64 }

func (l *plainLimiter) Allow(ctx context.Context, id uuid.UUID, limit RateLimit) (time.Duration, bool, error) {
	l.calls.Add(1)
	if limit.Name != "" {
		return 0, false, errors.New("the default limit is given unnamed, as it always was")
	}
	return 0, true, nil
}

// TestPlainRateLimiterWithCost: a RateLimiter that takes no cost counts a
// key's "default" limit, one request whatever the cost, what is left
// unknown; the named limits count in this process.
func TestPlainRateLimiterWithCost(t *testing.T) {
	t.Parallel()
	l := &plainLimiter{}
	f := newFixture(t, func(c *Config) { c.RateLimiter = l })
	c := f.create(t, CreateRequest{Limits: Limits{
		Rate: RateLimit{Requests: 5, Window: time.Second}, RateLimits: []RateLimit{{Name: "tokens", Requests: 9, Window: time.Hour}},
	}})
	_, rep, err := f.m.VerifyWith(context.Background(), c.Token.Reveal(), VerifyOptions{Cost: 3})
	if err != nil || l.calls.Load() != 1 || len(rep.Limits) != 2 || rep.Limits[0].Remaining != -1 || rep.Limits[1].Remaining != 6 {
		t.Fatalf("VerifyWith: %+v, %v, %d Allow calls; want one Allow, default unknown, tokens 6 left", rep.Limits, err, l.calls.Load())
	}
	// A cost above the whole default is refused without asking.
	if _, _, err := f.m.VerifyWith(context.Background(), c.Token.Reveal(), VerifyOptions{Cost: 6}); !errors.Is(err, ErrRateLimited) || l.calls.Load() != 1 {
		t.Fatalf("cost 6 of 5: %v, %d Allow calls; want ErrRateLimited and none more", err, l.calls.Load())
	}
}

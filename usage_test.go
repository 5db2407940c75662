package keygate

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// usageOf returns key id's usage totals over the last day, as System.
func usageOf(t *testing.T, m *Manager, id uuid.UUID) UsageCounts {
	t.Helper()
	u, err := m.Usage(t.Context(), System(), id, UsageRequest{})
	if err != nil {
		t.Fatalf("Usage(%s): %v", id, err)
	}
	return u.Totals
}

// flush flushes m or ends the test.
func flush(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// sameCounts reports got against want, in which zero counts stand for
// absent ones.
func sameCounts(t *testing.T, what string, got, want UsageCounts) {
	t.Helper()
	want = maps.Clone(want)
	maps.DeleteFunc(want, func(_ string, n int64) bool { return n == 0 })
	if !maps.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// TestUsageCountsOutcomes: each verification of a known key is counted
// against it, by outcome; malformed and unknown tokens are counted
// nowhere.
func TestUsageCountsOutcomes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	zero := int64(0)
	one := int64(1)
	valid := f.create(t, CreateRequest{})
	revoked := f.create(t, CreateRequest{})
	disabled := f.create(t, CreateRequest{})
	expiring := f.create(t, CreateRequest{Expiry: ExpireAfter(time.Hour)})
	rated := f.create(t, CreateRequest{Limits: Limits{Rate: RateLimit{Requests: 2, Window: time.Hour}}})
	exhausted := f.create(t, CreateRequest{Limits: Limits{Uses: &zero}})
	oneUse := f.create(t, CreateRequest{Limits: Limits{Uses: &one}})
	fenced := f.create(t, CreateRequest{Limits: Limits{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	regenerated := f.create(t, CreateRequest{})
	if _, err := f.m.Revoke(ctx, System(), revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Disable(ctx, System(), disabled.Key.ID); err != nil {
		t.Fatal(err)
	}
	old := regenerated.Token.Reveal()
	if _, err := f.m.Regenerate(ctx, System(), regenerated.Key.ID, RegenerateRequest{Expiry: NeverExpire(), GracePeriod: time.Minute}); err != nil {
		t.Fatal(err)
	}
	verify := func(c *Created, n int, addr string) {
		t.Helper()
		var a netip.Addr
		if addr != "" {
			a = netip.MustParseAddr(addr)
		}
		for range n {
			f.m.VerifyFrom(ctx, c.Token.Reveal(), a) //nolint:errcheck // the outcome is what is counted
		}
	}
	verify(valid, 3, "")
	verify(revoked, 2, "")
	verify(disabled, 1, "")
	verify(rated, 5, "")
	verify(exhausted, 2, "")
	verify(oneUse, 3, "")
	verify(fenced, 2, "10.1.2.3")
	verify(fenced, 1, "192.0.2.1")
	verify(fenced, 1, "") // no known address
	f.m.Verify(ctx, old)  //nolint:errcheck // within its grace period: valid
	f.m.Verify(ctx, "kg_malformed")
	unknown, _ := f.m.format.Generate()
	f.m.Verify(ctx, unknown.Reveal())
	f.clock.Advance(time.Hour + time.Minute) // the expiring key and the old secret are over
	verify(expiring, 2, "")
	f.m.Verify(ctx, old) //nolint:errcheck // after its grace period: invalid
	flush(t, f.m)

	for _, tc := range []struct {
		name string
		c    *Created
		want UsageCounts
	}{
		{"valid", valid, UsageCounts{OutcomeValid: 3}},
		{"revoked", revoked, UsageCounts{OutcomeRevoked: 2}},
		{"disabled", disabled, UsageCounts{OutcomeDisabled: 1}},
		{"expired", expiring, UsageCounts{OutcomeExpired: 2}},
		{"rate limited", rated, UsageCounts{OutcomeValid: 2, OutcomeRateLimited: 3}},
		{"exhausted", exhausted, UsageCounts{OutcomeUsageExhausted: 2}},
		{"one use", oneUse, UsageCounts{OutcomeValid: 1, OutcomeUsageExhausted: 2}},
		{"fenced", fenced, UsageCounts{OutcomeValid: 2, OutcomeAddressDenied: 2}},
		{"regenerated, old secret", regenerated, UsageCounts{OutcomeValid: 1, OutcomeInvalid: 1}},
	} {
		u, err := f.m.Usage(ctx, System(), tc.c.Key.ID, UsageRequest{Bucket: 24 * time.Hour})
		if err != nil {
			t.Fatalf("%s: Usage: %v", tc.name, err)
		}
		sameCounts(t, tc.name, u.Totals, tc.want)
	}
	// Nothing else counts: not the malformed and unknown tokens.
	created := map[uuid.UUID]bool{}
	for _, c := range []*Created{valid, revoked, disabled, expiring, rated, exhausted, oneUse, fenced, regenerated} {
		created[c.Key.ID] = true
	}
	f.m.usage.mu.Lock()
	for sub := range f.m.usage.counters {
		if !created[sub.id] || sub.kind != kindKey {
			t.Errorf("a counter of %v, which is none of the keys verified", sub)
		}
	}
	f.m.usage.mu.Unlock()
}

// TestUsageVerifyForVerdicts: VerifyFor counts its verdict: valid, a
// permission the key lacks, and a key the caller may not verify (which it
// is told is unknown).
func TestUsageVerifyForVerdicts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	verifier := f.create(t, CreateRequest{Workspace: "tiger", Scopes: []string{"apikey:verify"}})
	k, err := f.m.Verify(ctx, verifier.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	by := k.Principal()
	tiger := f.create(t, CreateRequest{Workspace: "tiger", Role: "viewer"})
	lion := f.create(t, CreateRequest{Workspace: "lion", Role: "viewer"})
	for _, req := range []VerifyRequest{
		{Token: tiger.Token.Reveal()},
		{Token: tiger.Token.Reveal(), Permission: "cluster:read", Workspace: "tiger"},
		{Token: tiger.Token.Reveal(), Permission: "cluster:write", Workspace: "tiger"},
		{Token: lion.Token.Reveal()},
	} {
		if _, err := f.m.VerifyFor(ctx, by, req); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, f.m)
	sameCounts(t, "tiger", usageOf(t, f.m, tiger.Key.ID), UsageCounts{OutcomeValid: 2, OutcomeInsufficientPermission: 1})
	sameCounts(t, "lion, out of the caller's reach", usageOf(t, f.m, lion.Key.ID), UsageCounts{OutcomeInvalid: 1})
	sameCounts(t, "the verifier's own key", usageOf(t, f.m, verifier.Key.ID), UsageCounts{OutcomeValid: 1})
}

// TestUsageExactUnderConcurrency: many goroutines verifying at once, with
// flushes running meanwhile, lose and double no count.
func TestUsageExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	a, b := f.create(t, CreateRequest{}), f.create(t, CreateRequest{})
	if _, err := f.m.Disable(ctx, System(), b.Key.ID); err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
				if err := f.m.Flush(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				tok := a.Token.Reveal()
				if (g+i)%4 == 0 {
					tok = b.Token.Reveal()
				}
				f.m.Verify(ctx, tok) //nolint:errcheck // counted
			}
		})
	}
	wg.Wait()
	close(stop)
	<-flushed
	flush(t, f.m)
	sameCounts(t, "a", usageOf(t, f.m, a.Key.ID), UsageCounts{OutcomeValid: goroutines * each * 3 / 4})
	sameCounts(t, "b", usageOf(t, f.m, b.Key.ID), UsageCounts{OutcomeDisabled: goroutines * each / 4})
}

// TestUsageHourBuckets: each verification counts in the hour it was made
// in, across hour boundaries, flushed or not in between, and in the day
// of its UTC date.
func TestUsageHourBuckets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	c := f.create(t, CreateRequest{})
	tok := c.Token.Reveal()
	verify := func(n int) {
		t.Helper()
		for range n {
			if _, err := f.m.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := f.clock.Now() // 2026-11-22 10:00 UTC
	f.clock.Advance(59*time.Minute + 59*time.Second + 999*time.Millisecond)
	verify(3) // 10:59:59.999
	f.clock.Advance(time.Millisecond)
	verify(2) // 11:00
	f.clock.Advance(time.Hour + 5*time.Minute)
	verify(1) // 12:05
	f.clock.Advance(time.Hour)
	verify(4) // 13:05, in the slot that still holds 11:00's, unflushed
	flush(t, f.m)
	f.clock.Advance(11 * time.Hour) // 2026-11-23 00:05
	verify(5)
	flush(t, f.m)

	u, err := f.m.Usage(ctx, System(), c.Key.ID, UsageRequest{From: start, To: start.Add(15 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int64{0: 3, 1: 2, 2: 1, 3: 4, 14: 5} // by hour since 10:00
	if len(u.Buckets) != 15 || !u.From.Equal(start) || u.Bucket != time.Hour {
		t.Fatalf("report from %v by %v with %d buckets, want 15 hours from %v", u.From, u.Bucket, len(u.Buckets), start)
	}
	for i, b := range u.Buckets {
		if !b.Start.Equal(start.Add(time.Duration(i) * time.Hour)) {
			t.Errorf("bucket %d starts at %v", i, b.Start)
		}
		if got := b.Counts[OutcomeValid]; got != want[i] {
			t.Errorf("hour %s: %d valid, want %d", b.Start.Format("15:04"), got, want[i])
		}
	}
	days, err := f.m.Usage(ctx, System(), c.Key.ID, UsageRequest{Bucket: 24 * time.Hour, From: start.Add(-time.Hour), To: start.Add(15 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(days.Buckets) != 2 || days.Buckets[0].Counts[OutcomeValid] != 10 || days.Buckets[1].Counts[OutcomeValid] != 5 {
		t.Errorf("days: %+v, want 10 on 22 Nov and 5 on 23 Nov", days.Buckets)
	}
	if !days.From.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) || !days.To.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("days from %v to %v, want whole UTC days", days.From, days.To)
	}
}

// TestUsageSurvivesRestart: what one Manager counted and closed is read
// by the next over the same store.
func TestUsageSurvivesRestart(t *testing.T) {
	t.Parallel()
	st := memory.New()
	first := newFixture(t, func(c *Config) { c.Store = st })
	c := first.create(t, CreateRequest{})
	for range 7 {
		if _, err := first.m.Verify(t.Context(), c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := newFixture(t, func(cfg *Config) { cfg.Store = st })
	sameCounts(t, "after a restart", usageOf(t, second.m, c.Key.ID), UsageCounts{OutcomeValid: 7})
}

// TestUsageFlushedByItself: a Manager that is never flushed nor closed
// (as one that crashes) has written its counts within its interval; so a
// crash loses at most the last interval's.
func TestUsageFlushedByItself(t *testing.T) {
	t.Parallel()
	st := memory.New()
	f := newFixture(t, func(c *Config) { c.Store = st; c.UsageInterval = 20 * time.Millisecond })
	c := f.create(t, CreateRequest{})
	for range 5 {
		if _, err := f.m.Verify(t.Context(), c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, err := st.Usage(t.Context(), store.UsageQuery{Kind: store.UsageKey, Subjects: []uuid.UUID{c.Key.ID}, From: time.Unix(0, 0), To: MaxExpiry})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 1 && cs[0].Count == 5 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store holds %v 10 s on, want the 5 verifications, written by the Manager's own loop", cs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUsageStoreDown: counts that could not be written are written once
// by the next flush that can.
func TestUsageStoreDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	c := f.create(t, CreateRequest{})
	for range 3 {
		if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	f.store.fail.Store(true)
	if err := f.m.Flush(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Flush with the store down: %v, want ErrUnavailable", err)
	}
	f.store.fail.Store(false)
	for range 2 {
		if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, f.m)
	flush(t, f.m)
	sameCounts(t, "after the outage", usageOf(t, f.m, c.Key.ID), UsageCounts{OutcomeValid: 5})
}

// TestUsageRetention: history older than the retention is purged, at most
// once an hour.
func TestUsageRetention(t *testing.T) {
	t.Parallel()
	purges := &purgeCounter{Store: memory.New()}
	f := newFixture(t, func(c *Config) { c.Store = purges; c.UsageRetention = 48 * time.Hour })
	ctx := t.Context()
	c := f.create(t, CreateRequest{})
	verify := func() {
		t.Helper()
		if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	verify()
	flush(t, f.m) // purges (nothing yet): the first flush
	if n := purges.n(); n != 1 {
		t.Fatalf("%d purges after the first flush, want 1", n)
	}
	f.clock.Advance(30 * time.Minute)
	flush(t, f.m)
	if n := purges.n(); n != 1 {
		t.Errorf("%d purges half an hour on, want still 1 (at most one an hour)", n)
	}
	f.clock.Advance(47 * time.Hour)
	verify()
	flush(t, f.m) // 47.5 hours after the first verification: kept
	u, err := f.m.Usage(ctx, System(), c.Key.ID, UsageRequest{Bucket: 24 * time.Hour, From: f.clock.Now().Add(-72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	sameCounts(t, "within the retention", u.Totals, UsageCounts{OutcomeValid: 2})
	f.clock.Advance(2 * time.Hour)
	flush(t, f.m)
	u, err = f.m.Usage(ctx, System(), c.Key.ID, UsageRequest{Bucket: 24 * time.Hour, From: f.clock.Now().Add(-72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	sameCounts(t, "past the retention", u.Totals, UsageCounts{OutcomeValid: 1})
	if n := purges.n(); n != 3 {
		t.Errorf("%d purges, want 3", n)
	}
}

// purgeCounter counts PurgeUsage calls.
type purgeCounter struct {
	*memory.Store
	mu     sync.Mutex
	purges int
}

func (p *purgeCounter) PurgeUsage(ctx context.Context, before time.Time) (int64, error) {
	p.mu.Lock()
	p.purges++
	p.mu.Unlock()
	return p.Store.PurgeUsage(ctx, before)
}

func (p *purgeCounter) n() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.purges
}

// TestUsageDeleted: a deleted key's counts, written or not, go with it.
func TestUsageDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	c := f.create(t, CreateRequest{})
	for range 2 {
		if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, f.m)
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Delete(ctx, System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	flush(t, f.m)
	cs, err := f.store.Usage(ctx, store.UsageQuery{Kind: store.UsageKey, Subjects: []uuid.UUID{c.Key.ID}, From: time.Unix(0, 0), To: MaxExpiry})
	if err != nil || len(cs) != 0 {
		t.Errorf("counts of a deleted key: %v, %v; want none", cs, err)
	}
	if _, err := f.m.Usage(ctx, System(), c.Key.ID, UsageRequest{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Usage of a deleted key: %v, want ErrNotFound", err)
	}
}

// TestUsageOff: with recording off, a verification counts nothing and
// its key carries no counter; what the store holds is still read.
func TestUsageOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.UsageInterval = -1 })
	ctx := t.Context()
	c := f.create(t, CreateRequest{})
	k, err := f.m.Verify(ctx, c.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if k.usage != nil {
		t.Error("a key verified with usage recording off has a counter")
	}
	flush(t, f.m)
	if n := f.store.usageWrites.Load(); n != 0 {
		t.Errorf("%d usage writes with recording off, want 0", n)
	}
	sameCounts(t, "with recording off", usageOf(t, f.m, c.Key.ID), nil)

	// Nor does it purge: the retention is that of the Managers that count.
	purges := &purgeCounter{Store: memory.New()}
	off := newFixture(t, func(c *Config) { c.Store = purges; c.UsageInterval = -1 })
	flush(t, off.m)
	if err := off.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := purges.n(); n != 0 {
		t.Errorf("%d purges by a Manager that counts nothing, want 0", n)
	}
}

// TestUsageCountersForgotten: the counter of a key no longer cached is
// forgotten once it has nothing to write, and a new one counts on.
func TestUsageCountersForgotten(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	c := f.create(t, CreateRequest{})
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	counters := func() int {
		f.m.usage.mu.Lock()
		defer f.m.usage.mu.Unlock()
		return len(f.m.usage.counters)
	}
	flush(t, f.m)
	if n := counters(); n != 1 {
		t.Fatalf("%d counters while the key is cached, want 1", n)
	}
	f.clock.Advance(f.m.cacheTTL + 2*f.m.usage.interval)
	flush(t, f.m)
	if n := counters(); n != 0 {
		t.Errorf("%d counters after the key left the cache, want 0", n)
	}
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	flush(t, f.m)
	sameCounts(t, "across a new counter", usageOf(t, f.m, c.Key.ID), UsageCounts{OutcomeValid: 2})
}

// TestUsageAuthorization: Usage is authorized as Get is, with no
// existence oracle; KeysUsage leaves out the keys by may not view.
func TestUsageAuthorization(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	principal := func(req CreateRequest) Principal {
		t.Helper()
		k, err := f.m.Verify(ctx, f.create(t, req).Token.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		return k.Principal()
	}
	watcher := principal(CreateRequest{Workspace: "tiger", Scopes: []string{"apikey:view"}})
	blind := principal(CreateRequest{Workspace: "tiger", Scopes: []string{"apikey:manage"}})
	lionWatcher := principal(CreateRequest{Workspace: "lion", Scopes: []string{"apikey:view"}})
	tiger := f.create(t, CreateRequest{Workspace: "tiger", Role: "viewer"})
	lion := f.create(t, CreateRequest{Workspace: "lion", Role: "viewer"})

	if _, err := f.m.Usage(ctx, watcher, tiger.Key.ID, UsageRequest{}); err != nil {
		t.Errorf("a watcher of the key's workspace: %v", err)
	}
	if _, err := f.m.Usage(ctx, lionWatcher, tiger.Key.ID, UsageRequest{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a watcher of another workspace: %v, want ErrNotFound (no existence oracle)", err)
	}
	if _, err := f.m.Usage(ctx, lionWatcher, uuid.Must(uuid.NewV7()), UsageRequest{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("no such key: %v, want ErrNotFound", err)
	}
	var d *DeniedError
	if _, err := f.m.Usage(ctx, blind, tiger.Key.ID, UsageRequest{}); !errors.As(err, &d) || d.Permission != PermissionViewKeys {
		t.Errorf("a manager that may not view: %v, want a DeniedError naming %s", err, PermissionViewKeys)
	}
	got, err := f.m.KeysUsage(ctx, watcher, []*store.Key{tiger.Key, lion.Key}, UsageRequest{Bucket: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[lion.Key.ID]; ok || got[tiger.Key.ID] == nil || len(got) != 1 {
		t.Errorf("KeysUsage of a tiger watcher: %v, want the tiger key's only", got)
	}
	if u := got[tiger.Key.ID]; u != nil && (len(u.Buckets) != DefaultUsageDays || u.Bucket != 24*time.Hour) {
		t.Errorf("KeysUsage: %d buckets of %v, want %d days", len(u.Buckets), u.Bucket, DefaultUsageDays)
	}

	plain := newFixture(t, func(c *Config) { c.Store = struct{ store.Store }{memory.New()} })
	pc := plain.create(t, CreateRequest{})
	if _, err := plain.m.Usage(ctx, System(), pc.Key.ID, UsageRequest{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a store without usage history: %v, want ErrUnsupported", err)
	}
	if _, err := plain.m.Usage(ctx, System(), uuid.Must(uuid.NewV7()), UsageRequest{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a store without usage history, no such key: %v, want ErrNotFound first", err)
	}
	if _, err := plain.m.KeysUsage(ctx, System(), []*store.Key{pc.Key}, UsageRequest{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("KeysUsage on a store without usage history: %v, want ErrUnsupported", err)
	}
}

// TestUsageRequest: the request's defaults, rounding and bounds.
func TestUsageRequest(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	day := 24 * time.Hour
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name     string
		req      UsageRequest
		from, to string
		bucket   time.Duration
	}{
		{"defaults", UsageRequest{}, "2026-11-21T11:00:00Z", "2026-11-22T11:00:00Z", time.Hour},
		{"days by default", UsageRequest{Bucket: day}, "2026-10-24T00:00:00Z", "2026-11-23T00:00:00Z", day},
		{"rounded out", UsageRequest{From: at("2026-11-01T10:20:00+02:00"), To: at("2026-11-01T12:00:01Z")}, "2026-11-01T08:00:00Z", "2026-11-01T13:00:00Z", time.Hour},
		{"most hours", UsageRequest{From: now.Add(-MaxUsageHours * time.Hour), To: now}, "2026-08-24T10:00:00Z", "2026-11-22T11:00:00Z", time.Hour},
		{"from only", UsageRequest{From: now.Add(-2 * time.Hour)}, "2026-11-22T08:00:00Z", "2026-11-22T11:00:00Z", time.Hour},
		{"to only", UsageRequest{To: at("2026-11-02T00:00:00Z")}, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", time.Hour},
		{"the last hours of 9999", UsageRequest{From: at("9999-12-31T20:00:00Z"), To: at("9999-12-31T22:59:59Z")}, "9999-12-31T20:00:00Z", "9999-12-31T23:00:00Z", time.Hour},
		{"most days", UsageRequest{Bucket: day, From: at("2025-11-22T00:00:00Z"), To: at("2026-11-23T00:00:00Z")}, "2025-11-22T00:00:00Z", "2026-11-23T00:00:00Z", day},
	} {
		got, err := tc.req.resolve(now)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !got.From.Equal(at(tc.from)) || !got.To.Equal(at(tc.to)) || got.Bucket != tc.bucket {
			t.Errorf("%s: %v to %v by %v, want %s to %s by %v", tc.name, got.From, got.To, got.Bucket, tc.from, tc.to, tc.bucket)
		}
	}
	for _, tc := range []struct {
		name string
		req  UsageRequest
	}{
		{"a bucket of two hours", UsageRequest{Bucket: 2 * time.Hour}},
		{"a bucket of a minute", UsageRequest{Bucket: time.Minute}},
		{"too many hours", UsageRequest{From: now.Add(-MaxUsageHours*time.Hour - time.Second), To: now}},
		{"too many days", UsageRequest{Bucket: day, From: now.Add(-(MaxUsageDays + 1) * day), To: now}},
		{"from after to", UsageRequest{From: now, To: now.Add(-time.Hour)}},
		{"from equal to", UsageRequest{From: at("2026-11-22T10:00:00Z"), To: at("2026-11-22T10:00:00Z")}},
		{"before 1970", UsageRequest{From: at("1969-12-31T00:00:00Z"), To: at("1970-01-02T00:00:00Z")}},
		{"after 9999", UsageRequest{From: at("9999-12-31T00:00:00Z"), To: time.Date(10000, 1, 2, 0, 0, 0, 0, time.UTC)}},
		{"ending in 10000 once rounded", UsageRequest{Bucket: day, From: at("9999-12-31T00:00:00Z"), To: at("9999-12-31T23:59:59Z")}},
	} {
		if _, err := tc.req.resolve(now); !errors.Is(err, ErrInvalidRequest) || !errors.Is(err, ErrInvalidField) {
			t.Errorf("%s: %v, want ErrInvalidRequest and ErrInvalidField", tc.name, err)
		}
	}
	f := newFixture(t)
	c := f.create(t, CreateRequest{})
	if _, err := f.m.Usage(t.Context(), System(), c.Key.ID, UsageRequest{Bucket: time.Minute}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("Usage with a bad bucket: %v, want ErrInvalidRequest", err)
	}
}

// TestUsageCounterSize: a counter is as small as the comment on
// usageCounter says.
func TestUsageCounterSize(t *testing.T) {
	t.Parallel()
	if n := unsafe.Sizeof(usageCounter{}); n != 104 {
		t.Errorf("usageCounter is %d bytes, want 104", n)
	}
}

// TestBenchKeyCounts: the keys of the verification benchmarks count their
// use, so that the benchmarks measure counting.
func TestBenchKeyCounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.create(t, CreateRequest{Workspace: "tiger", Role: "editor"})
	k, err := f.m.Verify(t.Context(), c.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if k.usage == nil {
		t.Error("a key verified by the benchmarks' fixture does not count its use")
	}
}

// TestUsageStripes: a counter whose counts collide with other cores'
// gets stripes, and counts through them exactly, across hours and
// flushes.
func TestUsageStripes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	c := f.create(t, CreateRequest{})
	tok := c.Token.Reveal()
	if _, err := f.m.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.m.usage.mu.Lock()
	counter := f.m.usage.counters[usageSubject{kindKey, c.Key.ID}]
	f.m.usage.mu.Unlock()
	if counter == nil {
		t.Fatal("no counter for a key verified")
	}
	n := f.clock.Now().UnixNano()
	for range stripeAfter - 1 { // collisions, as slowAdd sees them
		counter.slowAdd(&f.m.usage, n, useValid)
	}
	if counter.stripes.Load() != nil {
		t.Fatalf("stripes after %d collisions, want them at the %dth", stripeAfter-1, stripeAfter)
	}
	counter.slowAdd(&f.m.usage, n, useValid)
	if counter.stripes.Load() == nil || counter.cur.Load() != nil {
		t.Fatalf("after %d collisions: stripes %v, usual path %v; want stripes and no usual path", stripeAfter, counter.stripes.Load(), counter.cur.Load())
	}
	const goroutines, each = 8, 500
	verifyAll := func() {
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range each {
					if _, err := f.m.Verify(ctx, tok); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	verifyAll()
	flush(t, f.m)
	verifyAll()
	f.clock.Advance(time.Hour)
	verifyAll()
	f.clock.Advance(2 * time.Hour) // the first hour's slot again, unflushed
	verifyAll()
	flush(t, f.m)
	u, err := f.m.Usage(ctx, System(), c.Key.ID, UsageRequest{From: f.clock.Now().Add(-3 * time.Hour), To: f.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{1 + stripeAfter + 2*goroutines*each, goroutines * each, 0, goroutines * each}
	for i, b := range u.Buckets {
		if got := b.Counts[OutcomeValid]; got != want[i] {
			t.Errorf("hour %d: %d valid, want %d", i, got, want[i])
		}
	}
}

// TestStripeOf: stacks a power of two apart, as adjacent stacks of one
// size are, never share a stripe.
func TestStripeOf(t *testing.T) {
	t.Parallel()
	for _, n := range []int{7, 15, 31, 63} {
		for _, base := range []uintptr{0xc000100000, 0x3726a7f2deff &^ 0x7ff, 0x7f0000123800} {
			seen := map[uint64]bool{}
			for j := range 40 {
				d := uintptr(2048) << j
				a, b := stripeOf(base+100, n), stripeOf(base+d+100, n)
				if a == b || a >= uint64(n) {
					t.Errorf("%d stripes: stacks at %#x and %#x (%d apart) share stripe %d", n, base, base+d, d, a)
				}
				seen[stripeOf(base+uintptr(j)*2048, n)] = true
			}
			if len(seen) != min(n, 40) {
				t.Errorf("%d stripes: 40 adjacent 2 KiB stacks use %d of them", n, len(seen))
			}
		}
	}
	if n := len(newUsageStripes().s); n != 7 && n != 15 && n != 31 && n != 63 {
		t.Errorf("%d stripes, want 7, 15, 31 or 63", n)
	}
}

// TestUsageExactUnderEviction: keys evicted from a cache too small for
// them, and loaded again, keep counting in their counters: nothing is lost
// or doubled.
func TestUsageExactUnderEviction(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.CacheSize = 4 })
	ctx := t.Context()
	var keys []*Created
	for range 40 {
		keys = append(keys, f.create(t, CreateRequest{}))
	}
	const rounds = 25
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for r := range rounds {
				for i, c := range keys {
					if (i+r+g)%2 == 0 {
						if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	if n := f.store.getByHash.Load(); n <= int64(len(keys)) {
		t.Fatalf("%d store lookups for %d keys: nothing was evicted and loaded again", n, len(keys))
	}
	flush(t, f.m)
	// Each goroutine verified each key in half of the rounds, give or take
	// one for the odd number of rounds.
	for i, c := range keys {
		want := int64(0)
		for g := range 4 {
			for r := range rounds {
				if (i+r+g)%2 == 0 {
					want++
				}
			}
		}
		sameCounts(t, c.Key.Name, usageOf(t, f.m, c.Key.ID), UsageCounts{OutcomeValid: want})
	}
}

// TestUsageUnknownTokensCountNothing: a flood of made-up tokens, well
// formed or not, makes no counter and writes no count.
func TestUsageUnknownTokensCountNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	for i := range 500 {
		tok, err := f.m.format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a made-up token: %v, want ErrInvalid", err)
		}
		if _, err := f.m.Verify(ctx, "kg_"+strings.Repeat("x", i%60)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("a malformed token: %v, want ErrMalformed", err)
		}
	}
	flush(t, f.m)
	f.m.usage.mu.Lock()
	counters, pending := len(f.m.usage.counters), len(f.m.usage.pending)
	f.m.usage.mu.Unlock()
	if counters != 0 || pending != 0 || f.store.usageWrites.Load() != 0 {
		t.Errorf("after 1,000 unknown tokens: %d counters, %d pending counts, %d usage writes; want none", counters, pending, f.store.usageWrites.Load())
	}
}

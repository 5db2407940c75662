package keygate_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// testClock is a settable clock.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestUsageOnEveryEngine: usage history through the Manager on each
// storage engine: two instances counting the same keys at once add up
// exactly, in the hours they counted in; a new instance reads it all back
// (a restart); old hours are purged; a deleted key's history goes with
// it.
func TestUsageOnEveryEngine(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t)
			clock := newTestClock(time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC))
			h := hasher(t, "p1")
			newManager := func(retention time.Duration) *keygate.Manager {
				m, err := keygate.New(keygate.Config{Store: st, Hasher: h, Auditor: nopAuditor{}, Now: clock.Now,
					LastUsedInterval: -1, UsageInterval: time.Hour, UsageRetention: retention})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close(ctx) })
				return m
			}
			a, b := newManager(-1), newManager(-1)
			create := func(name string) *keygate.Created {
				c, err := a.Create(ctx, keygate.System(), keygate.CreateRequest{Name: name, Workspace: "tiger", Role: "viewer", Expiry: keygate.NeverExpire()})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			busy, quiet := create("busy"), create("quiet")
			if _, err := a.Disable(ctx, keygate.System(), quiet.Key.ID); err != nil {
				t.Fatal(err)
			}
			// Both instances, four goroutines each, in two hours.
			const goroutines, each = 4, 50
			verifyAll := func() {
				var wg sync.WaitGroup
				for _, m := range []*keygate.Manager{a, b} {
					for range goroutines {
						wg.Go(func() {
							for i := range each {
								tok := busy.Token.Reveal()
								if i%5 == 0 {
									tok = quiet.Token.Reveal()
								}
								m.Verify(ctx, tok) //nolint:errcheck // counted
							}
						})
					}
				}
				wg.Wait()
			}
			verifyAll()
			for _, m := range []*keygate.Manager{a, b} { // both write the 10:00 cells
				if err := m.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(time.Hour)
			verifyAll()
			for _, m := range []*keygate.Manager{a, b} {
				if err := m.Close(ctx); err != nil {
					t.Fatal(err)
				}
			}

			c := newManager(48 * time.Hour) // restarted
			perHour := int64(2 * goroutines * each)
			u, err := c.Usage(ctx, keygate.System(), busy.Key.ID, keygate.UsageRequest{From: clock.Now().Add(-2 * time.Hour), To: clock.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if len(u.Buckets) != 3 {
				t.Fatalf("%d buckets from %v to %v, want 3 hours", len(u.Buckets), u.From, u.To)
			}
			for i, want := range []int64{0, perHour * 4 / 5, perHour * 4 / 5} {
				if got := u.Buckets[i].Counts.Total(); got != want || u.Buckets[i].Counts[keygate.OutcomeValid] != want {
					t.Errorf("busy, hour %s: %v, want %d valid", u.Buckets[i].Start.Format("15:04"), u.Buckets[i].Counts, want)
				}
			}
			all, err := c.KeysUsage(ctx, keygate.System(), []*store.Key{busy.Key, quiet.Key}, keygate.UsageRequest{Bucket: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if got := all[quiet.Key.ID].Totals; len(got) != 1 || got[keygate.OutcomeDisabled] != 2*perHour/5 {
				t.Errorf("quiet: %v, want %d disabled", got, 2*perHour/5)
			}
			if got := all[busy.Key.ID].Totals; got.Total() != 2*perHour*4/5 || got.Refused() != 0 {
				t.Errorf("busy over the days: %v, want %d valid", got, 2*perHour*4/5)
			}

			// Purged past the retention.
			clock.Advance(48 * time.Hour) // all of the first hour is over 48 hours ago, not all of the second
			if err := c.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			u, err = c.Usage(ctx, keygate.System(), busy.Key.ID, keygate.UsageRequest{Bucket: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Totals[keygate.OutcomeValid]; got != perHour*4/5 {
				t.Errorf("after the purge: %d valid, want %d (the second hour's)", got, perHour*4/5)
			}

			// Deleted with its key.
			if err := c.Delete(ctx, keygate.System(), busy.Key.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Usage(ctx, keygate.System(), busy.Key.ID, keygate.UsageRequest{}); !errors.Is(err, keygate.ErrNotFound) {
				t.Errorf("usage of a deleted key: %v, want ErrNotFound", err)
			}
			rows, err := st.(store.UsageRecorder).Usage(ctx, store.UsageQuery{Kind: store.UsageKey, Subjects: []uuid.UUID{busy.Key.ID, quiet.Key.ID},
				From: time.Unix(0, 0), To: keygate.MaxExpiry})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Subject == busy.Key.ID {
					t.Errorf("a count of the deleted key is left: %+v", r)
				}
			}
			if len(rows) == 0 {
				t.Error("the other key's counts went too")
			}
		})
	}
}

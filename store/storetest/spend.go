package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// spendTests check the optional store.UseSpender and store.CreditSpender
// capabilities; a store without one skips its tests. Every spend passes
// an explicit now (a fake clock), so refills happen at known boundaries.
var spendTests = []namedTest{
	{"UsesCost", testSpendUsesCost},
	{"UsesExhausted", testSpendUsesExhausted},
	{"UsesNoLimit", testSpendUsesNoLimit},
	{"UsesNotFound", testSpendUsesNotFound},
	{"UsesRefillDaily", testSpendUsesRefillDaily},
	{"UsesRefillMonthly", testSpendUsesRefillMonthly},
	{"UsesRefillAfterIdle", testSpendUsesRefillAfterIdle},
	{"UsesRefillTooDear", testSpendUsesRefillTooDear},
	{"UsesScheduleUpdated", testSpendUsesScheduleUpdated},
	{"CreditsCost", testSpendCreditsCost},
	{"CreditsNoLimit", testSpendCreditsNoLimit},
	{"CreditsNotFound", testSpendCreditsNotFound},
	{"CreditsRefillMonthly", testSpendCreditsRefillMonthly},
	{"CreditsRefillAfterIdle", testSpendCreditsRefillAfterIdle},
	{"CreditsScheduleUpdated", testSpendCreditsScheduleUpdated},
}

// useSpender returns s as a store.UseSpender, or skips the test.
func useSpender(t *testing.T, s store.Store) store.UseSpender {
	t.Helper()
	us, ok := s.(store.UseSpender)
	if !ok {
		t.Skip("the store does not implement store.UseSpender (optional)")
	}
	return us
}

// creditSpender returns s as a store.IdentityStore and a
// store.CreditSpender, or skips the test.
func creditSpender(t *testing.T, s store.Store) (store.IdentityStore, store.CreditSpender) {
	t.Helper()
	is := identityStore(t, s)
	cs, ok := s.(store.CreditSpender)
	if !ok {
		t.Skip("the store does not implement store.CreditSpender (optional)")
	}
	return is, cs
}

// utc parses an RFC 3339 time of the suite's fake clock.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v.UTC()
}

// spendFunc is SpendUses or SpendCredits of one store.
type spendFunc func(id uuid.UUID, cost int64, now time.Time) (int64, error)

// spendStep is one spend at now and what it must return: want left, or
// the balance that could not pay with ErrUsageExhausted when exhausted.
type spendStep struct {
	now       string
	cost      int64
	want      int64
	exhausted bool
}

// runSpends runs steps against id in order, then returns.
func runSpends(t *testing.T, what string, spend spendFunc, id uuid.UUID, steps []spendStep) {
	t.Helper()
	for _, st := range steps {
		got, err := spend(id, st.cost, utc(t, st.now))
		switch {
		case st.exhausted && !errors.Is(err, store.ErrUsageExhausted):
			t.Errorf("%s(cost %d) at %s: got (%d, %v), want (%d, %v)", what, st.cost, st.now, got, err, st.want, store.ErrUsageExhausted)
		case !st.exhausted && err != nil:
			t.Errorf("%s(cost %d) at %s: got error %v, want %d left", what, st.cost, st.now, err, st.want)
		case got != st.want:
			t.Errorf("%s(cost %d) at %s: got %d, want %d (error %v)", what, st.cost, st.now, got, st.want, err)
		}
	}
}

// spenderOfUses returns the spendFunc of us.
func spenderOfUses(t *testing.T, us store.UseSpender) spendFunc {
	return func(id uuid.UUID, cost int64, now time.Time) (int64, error) {
		return us.SpendUses(t.Context(), id, cost, now)
	}
}

// spenderOfCredits returns the spendFunc of cs.
func spenderOfCredits(t *testing.T, cs store.CreditSpender) spendFunc {
	return func(id uuid.UUID, cost int64, now time.Time) (int64, error) {
		return cs.SpendCredits(t.Context(), id, cost, now)
	}
}

// limitedKey returns a key with remaining uses, the refill r (nil for
// none) and refilledAt.
func limitedKey(t *testing.T, name string, remaining int64, r *store.Refill, refilledAt string) *store.Key {
	t.Helper()
	k := newKey(t, "w1", name)
	k.RemainingUses, k.Refill, k.RefilledAt = int64p(remaining), r, utc(t, refilledAt)
	return k
}

// assertUses checks the stored balance, RefilledAt and Version of key id.
func assertUses(t *testing.T, s store.Store, id uuid.UUID, uses int64, refilledAt string, version int64) {
	t.Helper()
	got := mustGet(t, s, id)
	if g := usesString(got.RemainingUses); g != fmt.Sprint(uses) {
		t.Errorf("stored RemainingUses: got %s, want %d", g, uses)
	}
	if want := utc(t, refilledAt); !got.RefilledAt.Equal(want) {
		t.Errorf("stored RefilledAt: got %s, want %s", got.RefilledAt, want)
	}
	if got.Version != version {
		t.Errorf("stored Version: got %d, want %d", got.Version, version)
	}
}

// creditedIdentity returns an identity with credits of remaining, the
// refill r (nil for none) and refilledAt.
func creditedIdentity(t *testing.T, ext string, remaining int64, r *store.Refill, refilledAt string) *store.Identity {
	t.Helper()
	id := newIdentity("w1", ext)
	id.Credits = &store.Credits{Remaining: remaining, Refill: r, RefilledAt: utc(t, refilledAt)}
	return id
}

// assertCredits checks the stored balance, RefilledAt and Version (which
// spending never changes) of identity id.
func assertCredits(t *testing.T, is store.IdentityStore, id uuid.UUID, remaining int64, refilledAt string, version int64) {
	t.Helper()
	got := mustGetIdentity(t, is, id)
	switch {
	case got.Credits == nil:
		t.Errorf("stored Credits: got none, want %d left", remaining)
	case got.Credits.Remaining != remaining || !got.Credits.RefilledAt.Equal(utc(t, refilledAt)):
		t.Errorf("stored Credits: got %s, want %d left, refilled %s", creditsString(got.Credits), remaining, refilledAt)
	}
	if got.Version != version {
		t.Errorf("stored Version: got %d, want %d (spending credits does not change it)", got.Version, version)
	}
}

const clock0 = "2027-03-10T08:00:00Z" // the fake clock's first reading

func testSpendUsesCost(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	k := limitedKey(t, "k", 10, nil, clock0)
	mustCreate(t, s, k)
	runSpends(t, "SpendUses", spenderOfUses(t, us), k.ID, []spendStep{
		{now: clock0, cost: 3, want: 7},
		{now: clock0, cost: 1, want: 6},
		{now: "2030-01-01T00:00:00Z", cost: 6, want: 0},
	})
	assertUses(t, s, k.ID, 0, clock0, 4)
}

func testSpendUsesExhausted(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	k := limitedKey(t, "k", 5, nil, clock0)
	mustCreate(t, s, k)
	runSpends(t, "SpendUses", spenderOfUses(t, us), k.ID, []spendStep{
		{now: clock0, cost: 6, want: 5, exhausted: true},
		{now: clock0, cost: 5, want: 0},
		{now: clock0, cost: 1, want: 0, exhausted: true},
	})
	assertUses(t, s, k.ID, 0, clock0, 2)
}

func testSpendUsesNoLimit(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	k := newKey(t, "w1", "unlimited")
	k.RemainingUses, k.Refill = nil, nil
	mustCreate(t, s, k)
	if got, err := us.SpendUses(t.Context(), k.ID, 5, now()); got != -1 || err != nil {
		t.Errorf("SpendUses of a key without a limit: got (%d, %v), want (-1, nil)", got, err)
	}
	got := mustGet(t, s, k.ID)
	if got.RemainingUses != nil || got.Version != 1 {
		t.Errorf("key without a limit after SpendUses: RemainingUses %s, Version %d; want unlimited, 1", usesString(got.RemainingUses), got.Version)
	}
}

func testSpendUsesNotFound(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	got, err := us.SpendUses(t.Context(), newID(), 1, now())
	assertErrorIs(t, "SpendUses(missing key)", err, store.ErrNotFound)
	if got != 0 {
		t.Errorf("SpendUses(missing key): got %d, want 0", got)
	}
}

func testSpendUsesRefillDaily(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	k := limitedKey(t, "k", 1, &store.Refill{Amount: 10, Every: store.PeriodDay}, clock0)
	mustCreate(t, s, k)
	runSpends(t, "SpendUses", spenderOfUses(t, us), k.ID, []spendStep{
		{now: "2027-03-10T23:59:59.999999Z", cost: 1, want: 0},
		{now: "2027-03-10T23:59:59.999999Z", cost: 1, want: 0, exhausted: true},
		{now: "2027-03-11T00:00:00Z", cost: 1, want: 9},
		{now: "2027-03-11T23:00:00Z", cost: 9, want: 0},
		{now: "2027-03-12T00:00:00.000001Z", cost: 2, want: 8},
	})
	assertUses(t, s, k.ID, 8, "2027-03-12T00:00:00Z", 5)
}

func testSpendUsesRefillMonthly(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	k := limitedKey(t, "k", 2, &store.Refill{Amount: 100, Every: store.PeriodMonth, Day: 31}, "2027-01-31T10:00:00Z")
	mustCreate(t, s, k)
	spend := spenderOfUses(t, us)
	runSpends(t, "SpendUses", spend, k.ID, []spendStep{
		{now: "2027-02-27T23:59:59Z", cost: 1, want: 1},
		{now: "2027-02-27T23:59:59Z", cost: 5, want: 1, exhausted: true},
	})
	assertUses(t, s, k.ID, 1, "2027-01-31T10:00:00Z", 2)
	runSpends(t, "SpendUses", spend, k.ID, []spendStep{
		{now: "2027-02-28T00:00:00Z", cost: 5, want: 95},
	})
	assertUses(t, s, k.ID, 95, "2027-02-28T00:00:00Z", 3)
	runSpends(t, "SpendUses", spend, k.ID, []spendStep{
		{now: "2027-03-30T23:59:59Z", cost: 5, want: 90},
		{now: "2027-03-31T00:00:00Z", cost: 1, want: 99},
		{now: "2027-04-29T12:00:00Z", cost: 1, want: 98},
		{now: "2027-04-30T00:00:00Z", cost: 1, want: 99},
	})
	assertUses(t, s, k.ID, 99, "2027-04-30T00:00:00Z", 7)
}

func testSpendUsesRefillAfterIdle(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	k := limitedKey(t, "k", 0, &store.Refill{Amount: 50, Every: store.PeriodMonth, Day: 15}, "2027-01-15T00:00:00Z")
	mustCreate(t, s, k)
	// Six periods went by: one refill to Amount, not six.
	runSpends(t, "SpendUses", spenderOfUses(t, us), k.ID, []spendStep{
		{now: "2027-07-20T09:00:00Z", cost: 1, want: 49},
		{now: "2027-07-20T09:00:01Z", cost: 1, want: 48},
	})
	assertUses(t, s, k.ID, 48, "2027-07-15T00:00:00Z", 3)
}

// testSpendUsesRefillTooDear checks that a due refill that still cannot
// pay is not written: the balance after it is returned, and stored is
// what was there.
func testSpendUsesRefillTooDear(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	k := limitedKey(t, "k", 3, &store.Refill{Amount: 10, Every: store.PeriodDay}, clock0)
	mustCreate(t, s, k)
	runSpends(t, "SpendUses", spenderOfUses(t, us), k.ID, []spendStep{
		{now: "2027-03-11T10:00:00Z", cost: 11, want: 10, exhausted: true},
	})
	assertUses(t, s, k.ID, 3, clock0, 1)
	runSpends(t, "SpendUses", spenderOfUses(t, us), k.ID, []spendStep{
		{now: "2027-03-11T10:00:00Z", cost: 10, want: 0},
	})
	assertUses(t, s, k.ID, 0, "2027-03-11T00:00:00Z", 2)
}

// testSpendUsesScheduleUpdated checks that a key updated with a new
// schedule refills on the new one, from the RefilledAt it keeps.
func testSpendUsesScheduleUpdated(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	k := limitedKey(t, "k", 5, &store.Refill{Amount: 100, Every: store.PeriodMonth, Day: 31}, "2027-01-31T10:00:00Z")
	mustCreate(t, s, k)
	spend := spenderOfUses(t, us)
	runSpends(t, "SpendUses", spend, k.ID, []spendStep{{now: "2027-01-31T11:00:00Z", cost: 1, want: 4}})
	cur := mustGet(t, s, k.ID)
	cur.Refill = &store.Refill{Amount: 20, Every: store.PeriodMonth, Day: 1}
	mustUpdate(t, s, cur)
	runSpends(t, "SpendUses after a new schedule", spend, k.ID, []spendStep{
		{now: "2027-01-31T23:59:59Z", cost: 1, want: 3},
		{now: "2027-02-01T00:00:00Z", cost: 1, want: 19},
	})
	// The refill removed: never again.
	cur = mustGet(t, s, k.ID)
	cur.Refill = nil
	mustUpdate(t, s, cur)
	runSpends(t, "SpendUses without a refill", spend, k.ID, []spendStep{
		{now: "2027-06-01T00:00:00Z", cost: 19, want: 0},
		{now: "2027-07-01T00:00:00Z", cost: 1, want: 0, exhausted: true},
	})
}

func testSpendCreditsCost(t *testing.T, s store.Store) {
	is, cs := creditSpender(t, s)
	id := creditedIdentity(t, "acme", 10, nil, clock0)
	mustCreateIdentity(t, is, id)
	runSpends(t, "SpendCredits", spenderOfCredits(t, cs), id.ID, []spendStep{
		{now: clock0, cost: 4, want: 6},
		{now: clock0, cost: 7, want: 6, exhausted: true},
		{now: clock0, cost: 6, want: 0},
		{now: clock0, cost: 1, want: 0, exhausted: true},
	})
	assertCredits(t, is, id.ID, 0, clock0, 1)
}

func testSpendCreditsNoLimit(t *testing.T, s store.Store) {
	is, cs := creditSpender(t, s)
	id := newIdentity("w1", "acme")
	id.Credits = nil
	mustCreateIdentity(t, is, id)
	if got, err := cs.SpendCredits(t.Context(), id.ID, 5, now()); got != -1 || err != nil {
		t.Errorf("SpendCredits of an identity without credits: got (%d, %v), want (-1, nil)", got, err)
	}
	if got := mustGetIdentity(t, is, id.ID); got.Credits != nil || got.Version != 1 {
		t.Errorf("identity without credits after SpendCredits: credits %s, Version %d; want none, 1", creditsString(got.Credits), got.Version)
	}
}

func testSpendCreditsNotFound(t *testing.T, s store.Store) {
	_, cs := creditSpender(t, s)
	got, err := cs.SpendCredits(t.Context(), newID(), 1, now())
	assertErrorIs(t, "SpendCredits(missing identity)", err, store.ErrNotFound)
	if got != 0 {
		t.Errorf("SpendCredits(missing identity): got %d, want 0", got)
	}
}

func testSpendCreditsRefillMonthly(t *testing.T, s store.Store) {
	is, cs := creditSpender(t, s)
	id := creditedIdentity(t, "acme", 2, &store.Refill{Amount: 100, Every: store.PeriodMonth, Day: 31}, "2027-01-31T10:00:00Z")
	mustCreateIdentity(t, is, id)
	spend := spenderOfCredits(t, cs)
	runSpends(t, "SpendCredits", spend, id.ID, []spendStep{
		{now: "2027-02-27T23:59:59Z", cost: 2, want: 0},
		{now: "2027-02-27T23:59:59Z", cost: 1, want: 0, exhausted: true},
	})
	assertCredits(t, is, id.ID, 0, "2027-01-31T10:00:00Z", 1)
	runSpends(t, "SpendCredits", spend, id.ID, []spendStep{
		{now: "2027-02-28T00:00:00Z", cost: 30, want: 70},
		{now: "2027-03-30T23:59:59Z", cost: 70, want: 0},
		{now: "2027-03-31T00:00:00Z", cost: 1, want: 99},
	})
	assertCredits(t, is, id.ID, 99, "2027-03-31T00:00:00Z", 1)
}

func testSpendCreditsRefillAfterIdle(t *testing.T, s store.Store) {
	is, cs := creditSpender(t, s)
	id := creditedIdentity(t, "acme", 7, &store.Refill{Amount: 40, Every: store.PeriodDay}, clock0)
	mustCreateIdentity(t, is, id)
	runSpends(t, "SpendCredits", spenderOfCredits(t, cs), id.ID, []spendStep{
		{now: "2027-04-02T13:00:00Z", cost: 41, want: 40, exhausted: true},
		{now: "2027-04-02T13:00:00Z", cost: 40, want: 0},
		{now: "2027-04-02T23:00:00Z", cost: 1, want: 0, exhausted: true},
	})
	assertCredits(t, is, id.ID, 0, "2027-04-02T00:00:00Z", 1)
}

// testSpendCreditsScheduleUpdated checks that UpdateIdentity without the
// balance keeps it and its RefilledAt, and that the new schedule applies
// from that RefilledAt; and that a refill removed so never comes.
func testSpendCreditsScheduleUpdated(t *testing.T, s store.Store) {
	is, cs := creditSpender(t, s)
	id := creditedIdentity(t, "acme", 5, &store.Refill{Amount: 100, Every: store.PeriodMonth, Day: 31}, "2027-01-31T10:00:00Z")
	mustCreateIdentity(t, is, id)
	spend := spenderOfCredits(t, cs)
	runSpends(t, "SpendCredits", spend, id.ID, []spendStep{{now: "2027-01-31T11:00:00Z", cost: 1, want: 4}})

	// A stale balance and RefilledAt, not written: only the refill is.
	id.Credits = &store.Credits{Remaining: 1000, Refill: &store.Refill{Amount: 20, Every: store.PeriodMonth, Day: 1}, RefilledAt: utc(t, "2026-01-01T00:00:00Z")}
	if err := is.UpdateIdentity(t.Context(), id, false); err != nil {
		t.Fatalf("UpdateIdentity(balance false): %v", err)
	}
	runSpends(t, "SpendCredits after a new schedule", spend, id.ID, []spendStep{
		{now: "2027-01-31T23:59:59Z", cost: 1, want: 3},
		{now: "2027-02-01T00:00:00Z", cost: 1, want: 19},
	})
	assertCredits(t, is, id.ID, 19, "2027-02-01T00:00:00Z", 2)

	id.Credits = &store.Credits{Remaining: 1000, RefilledAt: utc(t, "2026-01-01T00:00:00Z")}
	if err := is.UpdateIdentity(t.Context(), id, false); err != nil {
		t.Fatalf("UpdateIdentity(no refill, balance false): %v", err)
	}
	runSpends(t, "SpendCredits without a refill", spend, id.ID, []spendStep{
		{now: "2027-06-01T00:00:00Z", cost: 19, want: 0},
		{now: "2027-07-01T00:00:00Z", cost: 1, want: 0, exhausted: true},
	})

	// A balance set with the update, refilled on its schedule from then.
	id.Credits = &store.Credits{Remaining: 2, Refill: &store.Refill{Amount: 8, Every: store.PeriodDay}, RefilledAt: utc(t, "2027-07-01T12:00:00Z")}
	if err := is.UpdateIdentity(t.Context(), id, true); err != nil {
		t.Fatalf("UpdateIdentity(balance true): %v", err)
	}
	runSpends(t, "SpendCredits after a balance set", spend, id.ID, []spendStep{
		{now: "2027-07-01T23:00:00Z", cost: 3, want: 2, exhausted: true},
		{now: "2027-07-02T00:00:00Z", cost: 3, want: 5},
	})
	assertCredits(t, is, id.ID, 5, "2027-07-02T00:00:00Z", 4)
}

// The counts of the concurrent spends: spenders goroutines each try
// spendTries spends before the boundary and as many after, more than the
// balance before it (spendInitial) and the refill (spendAmount) can pay.
const (
	spenders     = 8
	spendTries   = 4
	spendInitial = 10
	spendAmount  = 20
)

// testConcurrentSpendUses checks that goroutines racing across a refill
// boundary refill once: before it they spend exactly the initial balance,
// after it exactly one Amount, each balance left returned once.
func testConcurrentSpendUses(t *testing.T, s store.Store) {
	us := useSpender(t, s)
	k := limitedKey(t, "k", spendInitial, &store.Refill{Amount: spendAmount, Every: store.PeriodDay}, clock0)
	mustCreate(t, s, k)
	RaceSpends(t, spenderOfUses(t, us), k.ID)
	assertUses(t, s, k.ID, 0, "2027-03-11T00:00:00Z", 1+spendInitial+spendAmount)
}

// testConcurrentSpendCredits is testConcurrentSpendUses for credits.
func testConcurrentSpendCredits(t *testing.T, s store.Store) {
	is, cs := creditSpender(t, s)
	id := creditedIdentity(t, "acme", spendInitial, &store.Refill{Amount: spendAmount, Every: store.PeriodDay}, clock0)
	mustCreateIdentity(t, is, id)
	RaceSpends(t, spenderOfCredits(t, cs), id.ID)
	assertCredits(t, is, id.ID, 0, "2027-03-11T00:00:00Z", 1)
}

// RaceSpends is the concurrent part of the checks of SpendUses and
// SpendCredits, for a backend's own tests that spend through several
// instances (database handles) at once: spend is called by 8 goroutines
// together, 4 times each at 2027-03-10T23:59:59Z and then, after all
// those, 4 times each at 2027-03-11T00:00:00Z, on a balance id of 10
// with a daily refill of 20 last refilled on 2027-03-10. It checks that
// the spends before midnight returned each of 9 down to 0 once, and the
// spends after it each of 19 down to 0 once (one refill, never two), the
// others ErrUsageExhausted. The caller checks what is stored.
func RaceSpends(t *testing.T, spend func(id uuid.UUID, cost int64, now time.Time) (int64, error), id uuid.UUID) {
	t.Helper()
	for _, phase := range []struct {
		now     string
		balance int
	}{
		{"2027-03-10T23:59:59Z", spendInitial},
		{"2027-03-11T00:00:00Z", spendAmount},
	} {
		at := utc(t, phase.now)
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			left      []int64
			exhausted int
		)
		start := make(chan struct{})
		for range spenders {
			wg.Go(func() {
				<-start
				for range spendTries {
					n, err := spend(id, 1, at)
					mu.Lock()
					switch {
					case err == nil:
						left = append(left, n)
					case errors.Is(err, store.ErrUsageExhausted):
						exhausted++
					default:
						t.Errorf("spend at %s: got error %v, want nil or %v", phase.now, err, store.ErrUsageExhausted)
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		slices.Sort(left)
		want := make([]int64, phase.balance)
		for i := range want {
			want[i] = int64(i)
		}
		if !slices.Equal(left, want) {
			t.Errorf("balances left returned by spends at %s: got %v, want each of %v once", phase.now, left, want)
		}
		if want := spenders*spendTries - phase.balance; exhausted != want {
			t.Errorf("spends at %s: got %d ErrUsageExhausted, want %d", phase.now, exhausted, want)
		}
	}
}

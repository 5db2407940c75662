package keygate

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// TestKeyNamedLimitsAndRefill: a key holds named rate limits besides its
// own "default" one, and uses that refill, set on creation and changed by
// updates as the request says, validated as an identity's are.
func TestKeyNamedLimitsAndRefill(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tokens := RateLimit{Name: "tokens", Requests: 100000, Window: time.Hour}
	exports := RateLimit{Name: "exports", Requests: 5, Window: 24 * time.Hour, OnDemand: true}
	monthly := &Refill{Amount: 500, Every: store.PeriodMonth, Day: 31}
	created := f.clock.Now()
	c := f.create(t, CreateRequest{Limits: Limits{
		Rate:       RateLimit{Requests: 10, Window: time.Second},
		RateLimits: []RateLimit{tokens, exports},
		Uses:       int64p(500),
		Refill:     monthly,
	}})
	rec, err := f.m.Get(ctx, System(), c.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.RateLimit != 10 || rec.RateWindow != time.Second || !slices.Equal(rec.RateLimits, []RateLimit{tokens, exports}) ||
		rec.RemainingUses == nil || *rec.RemainingUses != 500 || rec.Refill == nil || *rec.Refill != *monthly ||
		!rec.RefilledAt.Equal(canonicalTime(created)) {
		t.Fatalf("the created key: %+v, want its limits as asked, refilled at %v", rec, created)
	}

	// Updates replace what they name.
	f.clock.Advance(time.Hour)
	only := []RateLimit{exports}
	rec, err = f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{RateLimits: &only})
	if err != nil || !slices.Equal(rec.RateLimits, only) || *rec.RemainingUses != 500 || *rec.Refill != *monthly || !rec.RefilledAt.Equal(canonicalTime(created)) {
		t.Fatalf("replacing the named limits: %+v, %v, want the rest kept", rec, err)
	}
	daily := &Refill{Amount: 20, Every: store.PeriodDay}
	rec, err = f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Refill: daily})
	if err != nil || *rec.Refill != *daily || *rec.RemainingUses != 500 || !rec.RefilledAt.Equal(canonicalTime(created)) {
		t.Fatalf("replacing the refill: %+v, %v, want the balance and its time kept", rec, err)
	}
	rec, err = f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Uses: int64p(20)})
	if err != nil || *rec.RemainingUses != 20 || !rec.RefilledAt.Equal(canonicalTime(f.clock.Now())) {
		t.Fatalf("setting the balance: %+v, %v, want it counted from now", rec, err)
	}
	rec, err = f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Refill: &Refill{}})
	if err != nil || rec.Refill != nil || *rec.RemainingUses != 20 {
		t.Fatalf("removing the refill: %+v, %v", rec, err)
	}
	if _, err := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Refill: daily}); err != nil {
		t.Fatal(err)
	}
	none := []RateLimit{}
	rec, err = f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{RateLimits: &none, Uses: int64p(-1)})
	if err != nil || rec.RateLimits != nil || rec.RemainingUses != nil || rec.Refill != nil || !rec.RefilledAt.IsZero() || rec.RateLimit != 10 {
		t.Fatalf("removing the named limits and the uses: %+v, %v, want the refill gone with the uses, the default limit kept", rec, err)
	}

	// A key whose uses were set before refills existed (no refill time)
	// counts its first period from when it gets one, not from the zero
	// time.
	old := f.create(t, CreateRequest{Limits: Limits{Uses: int64p(3)}})
	stored, err := f.store.Get(ctx, old.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored.RefilledAt = time.Time{}
	if err := f.store.Update(ctx, stored); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	rec, err = f.m.Update(ctx, System(), old.Key.ID, UpdateRequest{Refill: daily})
	if err != nil || !rec.RefilledAt.Equal(canonicalTime(f.clock.Now())) || *rec.RemainingUses != 3 {
		t.Fatalf("a refill for an old key: %+v, %v, want its period counted from now and its balance kept", rec, err)
	}

	many := make([]RateLimit, MaxRateLimits+1)
	for i := range many {
		many[i] = RateLimit{Name: "r" + strings.Repeat("x", i), Requests: 1, Window: time.Second}
	}
	for _, tc := range []struct {
		name string
		l    Limits
	}{
		{"a named limit called default", Limits{RateLimits: []RateLimit{{Name: DefaultRateLimit, Requests: 1, Window: time.Second}}}},
		{"two limits of one name", Limits{RateLimits: []RateLimit{tokens, tokens}}},
		{"a bad name", Limits{RateLimits: []RateLimit{{Name: "Tokens", Requests: 1, Window: time.Second}}}},
		{"a limit without requests", Limits{RateLimits: []RateLimit{{Name: "tokens", Window: time.Second}}}},
		{"too many limits", Limits{RateLimits: many}},
		{"a refill without uses", Limits{Refill: daily}},
		{"a refill of no period", Limits{Uses: int64p(1), Refill: &Refill{Amount: 1, Every: "week"}}},
		{"a refill of nothing", Limits{Uses: int64p(1), Refill: &Refill{Every: store.PeriodDay}}},
		{"a monthly refill on day 32", Limits{Uses: int64p(1), Refill: &Refill{Amount: 1, Every: store.PeriodMonth, Day: 32}}},
		{"a named default limit", Limits{Rate: RateLimit{Name: "tokens", Requests: 1, Window: time.Second}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.m.Create(ctx, System(), CreateRequest{Name: "bad", Role: "admin", Expiry: NeverExpire(), Limits: tc.l})
			if !errors.Is(err, ErrInvalidRequest) || !errors.Is(err, ErrInvalidField) {
				t.Errorf("Create: %v, want ErrInvalidField", err)
			}
		})
	}
	plain := f.create(t, CreateRequest{})
	for what, req := range map[string]UpdateRequest{
		"a refill of a key without uses":   {Refill: daily},
		"uses removed with a refill":       {Uses: int64p(-1), Refill: daily},
		"a named limit called default":     {RateLimits: &[]RateLimit{{Name: DefaultRateLimit, Requests: 1, Window: time.Second}}},
		"a refill of a month's 32nd day":   {Uses: int64p(1), Refill: &Refill{Amount: 1, Every: store.PeriodMonth, Day: 32}},
		"two named limits of one name now": {RateLimits: &[]RateLimit{exports, exports}},
	} {
		if _, err := f.m.Update(ctx, System(), plain.Key.ID, req); !errors.Is(err, ErrInvalidField) {
			t.Errorf("Update with %s: %v, want ErrInvalidField", what, err)
		}
	}
	if rec, err := f.m.Get(ctx, System(), plain.Key.ID); err != nil || rec.Version != 1 {
		t.Errorf("the refused updates wrote: %+v, %v", rec, err)
	}
}

// TestKeyLimitsPrivilegeBounds: a principal bound by named limits of its
// key's own, and uses that refill, gives no key looser ones (a refill
// worth more, a named limit missing or faster), and never raises a key's
// uses.
func TestKeyLimitsPrivilegeBounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tokens := RateLimit{Name: "tokens", Requests: 1000, Window: time.Hour}
	exports := RateLimit{Name: "exports", Requests: 5, Window: 24 * time.Hour, OnDemand: true}
	daily := func(n int64) *Refill { return &Refill{Amount: n, Every: store.PeriodDay} }
	p := f.principal(t, CreateRequest{Workspace: "tiger", Role: "owner", Limits: Limits{
		RateLimits: []RateLimit{tokens, exports}, Uses: int64p(100), Refill: daily(100),
	}})
	strict := Limits{RateLimits: []RateLimit{{Name: "tokens", Requests: 10, Window: time.Hour}, {Name: "exports", Requests: 1, Window: 24 * time.Hour, OnDemand: true}},
		Uses: int64p(10), Refill: daily(10)}
	with := func(edit func(*Limits)) Limits {
		l := strict
		l.RateLimits = slices.Clone(strict.RateLimits)
		edit(&l)
		return l
	}
	for _, tc := range []struct {
		name  string
		l     Limits
		limit string
	}{
		{"stricter in everything", strict, ""},
		{"its own (as its verification left it)", p.Limits, ""},
		{"no refill", with(func(l *Limits) { l.Refill = nil }), ""},
		{"no named limit", with(func(l *Limits) { l.RateLimits = nil }), LimitRate},
		{"a faster named limit", with(func(l *Limits) { l.RateLimits[0].Requests = 1001 }), LimitRate},
		{"the on-demand limit under another name", with(func(l *Limits) { l.RateLimits[1].Name = "other" }), LimitRate},
		{"the always-on limit made on-demand", with(func(l *Limits) { l.RateLimits[0].OnDemand = true }), LimitRate},
		{"no uses", with(func(l *Limits) { l.Uses, l.Refill = nil, nil }), LimitUses},
		{"a larger refill", with(func(l *Limits) { l.Refill = daily(101) }), LimitUses},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.m.Create(ctx, p, CreateRequest{Name: "k-" + tc.name, Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), Limits: tc.l})
			if tc.limit == "" {
				if err != nil {
					t.Fatalf("Create: %v, want success", err)
				}
				return
			}
			if d := refusal(t, "Create", err); d.Reason != DeniedLimit || d.Limit != tc.limit {
				t.Fatalf("Create: %v, want a looser %s", d, tc.limit)
			}
		})
	}
	// P draws on uses: it raises no key's balance, and gives it a refill
	// only within its own, as on creation.
	k := f.create(t, CreateRequest{Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), Limits: with(func(l *Limits) { l.Refill = nil })})
	if d := refusal(t, "P adds a larger refill", second(f.m.Update(ctx, p, k.Key.ID, UpdateRequest{Refill: daily(101)}))); d.Limit != LimitUses {
		t.Errorf("P adds a larger refill: %v", d)
	}
	if _, err := f.m.Update(ctx, p, k.Key.ID, UpdateRequest{Refill: daily(5)}); err != nil {
		t.Errorf("P adds a refill within its own: %v", err)
	}
	if d := refusal(t, "P raises the uses", second(f.m.Update(ctx, p, k.Key.ID, UpdateRequest{Uses: int64p(11)}))); d.Limit != LimitUses {
		t.Errorf("P raises the uses: %v", d)
	}
	if d := refusal(t, "P drops a named limit", second(f.m.Update(ctx, p, k.Key.ID, UpdateRequest{RateLimits: &[]RateLimit{}}))); d.Limit != LimitRate {
		t.Errorf("P drops a named limit: %v", d)
	}
	if _, err := f.m.Update(ctx, p, k.Key.ID, UpdateRequest{Uses: int64p(3)}); err != nil {
		t.Errorf("P lowers the uses: %v", err)
	}
}

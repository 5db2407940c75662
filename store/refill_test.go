package store_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// at parses an RFC 3339 time or ends the test.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

func daily(amount int64) store.Refill { return store.Refill{Amount: amount, Every: store.PeriodDay} }

func monthly(amount int64, day int) store.Refill {
	return store.Refill{Amount: amount, Every: store.PeriodMonth, Day: day}
}

// TestRefillNextLast checks the boundaries around t: Last(t) the latest at
// or before it, Next(t) the first strictly after.
func TestRefillNextLast(t *testing.T) {
	t.Parallel()
	plus14 := time.FixedZone("UTC+14", 14*3600)
	minus12 := time.FixedZone("UTC-12", -12*3600)
	tests := []struct {
		name       string
		r          store.Refill
		t          string
		last, next string
	}{
		{"daily mid-day", daily(1), "2027-03-10T13:45:00Z", "2027-03-10T00:00:00Z", "2027-03-11T00:00:00Z"},
		{"daily on boundary", daily(1), "2027-03-10T00:00:00Z", "2027-03-10T00:00:00Z", "2027-03-11T00:00:00Z"},
		{"daily a nanosecond before midnight", daily(1), "2027-03-10T23:59:59.999999999Z", "2027-03-10T00:00:00Z", "2027-03-11T00:00:00Z"},
		{"daily end of February, non-leap", daily(1), "2027-02-28T12:00:00Z", "2027-02-28T00:00:00Z", "2027-03-01T00:00:00Z"},
		{"daily end of February, leap", daily(1), "2028-02-28T12:00:00Z", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"daily year end", daily(1), "2027-12-31T23:00:00Z", "2027-12-31T00:00:00Z", "2028-01-01T00:00:00Z"},
		{"daily, UTC+14 input is the UTC day before", daily(1), "2027-03-11T05:00:00+14:00", "2027-03-10T00:00:00Z", "2027-03-11T00:00:00Z"},
		{"daily, UTC-12 input is the UTC day after", daily(1), "2027-03-10T13:00:00-12:00", "2027-03-11T00:00:00Z", "2027-03-12T00:00:00Z"},

		{"day 1 mid-month", monthly(1, 1), "2027-03-10T13:45:00Z", "2027-03-01T00:00:00Z", "2027-04-01T00:00:00Z"},
		{"day 1 on boundary", monthly(1, 1), "2027-03-01T00:00:00Z", "2027-03-01T00:00:00Z", "2027-04-01T00:00:00Z"},
		{"day 1 year end", monthly(1, 1), "2027-12-31T23:59:59Z", "2027-12-01T00:00:00Z", "2028-01-01T00:00:00Z"},
		{"day 1 new year", monthly(1, 1), "2028-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2028-02-01T00:00:00Z"},
		{"day 15 before", monthly(1, 15), "2027-03-14T23:59:59Z", "2027-02-15T00:00:00Z", "2027-03-15T00:00:00Z"},
		{"day 15 on boundary", monthly(1, 15), "2027-03-15T00:00:00Z", "2027-03-15T00:00:00Z", "2027-04-15T00:00:00Z"},
		{"day 15 January, Last in December", monthly(1, 15), "2027-01-10T00:00:00Z", "2026-12-15T00:00:00Z", "2027-01-15T00:00:00Z"},
		{"day 15 December, Next in January", monthly(1, 15), "2027-12-20T00:00:00Z", "2027-12-15T00:00:00Z", "2028-01-15T00:00:00Z"},
		{"day 28 February non-leap", monthly(1, 28), "2027-02-28T10:00:00Z", "2027-02-28T00:00:00Z", "2027-03-28T00:00:00Z"},
		{"day 29 February non-leap is the 28th", monthly(1, 29), "2027-02-28T10:00:00Z", "2027-02-28T00:00:00Z", "2027-03-29T00:00:00Z"},
		{"day 29 February non-leap before the 28th", monthly(1, 29), "2027-02-27T10:00:00Z", "2027-01-29T00:00:00Z", "2027-02-28T00:00:00Z"},
		{"day 29 February leap", monthly(1, 29), "2028-02-28T10:00:00Z", "2028-01-29T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"day 29 February leap on boundary", monthly(1, 29), "2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-29T00:00:00Z"},
		{"day 30 February non-leap", monthly(1, 30), "2027-02-15T00:00:00Z", "2027-01-30T00:00:00Z", "2027-02-28T00:00:00Z"},
		{"day 30 after February", monthly(1, 30), "2027-03-01T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-30T00:00:00Z"},
		{"day 30 in a 30-day month", monthly(1, 30), "2027-04-30T00:00:00Z", "2027-04-30T00:00:00Z", "2027-05-30T00:00:00Z"},
		{"day 31 January to February non-leap", monthly(1, 31), "2027-01-31T10:00:00Z", "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z"},
		{"day 31 January to February leap", monthly(1, 31), "2028-01-31T10:00:00Z", "2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"day 31 end of February to March", monthly(1, 31), "2027-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z"},
		{"day 31 in a 30-day month is the 30th", monthly(1, 31), "2027-04-15T00:00:00Z", "2027-03-31T00:00:00Z", "2027-04-30T00:00:00Z"},
		{"day 31 on the 30th of a 30-day month", monthly(1, 31), "2027-04-30T00:00:00Z", "2027-04-30T00:00:00Z", "2027-05-31T00:00:00Z"},
		{"day 31 a nanosecond before", monthly(1, 31), "2027-05-30T23:59:59.999999999Z", "2027-04-30T00:00:00Z", "2027-05-31T00:00:00Z"},
		{"day 31 year end", monthly(1, 31), "2027-12-31T00:00:00Z", "2027-12-31T00:00:00Z", "2028-01-31T00:00:00Z"},
		{"day 31 before year end", monthly(1, 31), "2027-12-30T23:00:00Z", "2027-11-30T00:00:00Z", "2027-12-31T00:00:00Z"},
		{"day 1, UTC+14 input in the previous UTC month", monthly(1, 1), "2027-03-01T05:00:00+14:00", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"},
		{"day 31, UTC-12 input in the next UTC day", monthly(1, 31), "2027-01-30T18:00:00-12:00", "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := at(t, tc.t)
			last, next := tc.r.Last(in), tc.r.Next(in)
			if want := at(t, tc.last); !last.Equal(want) || last.Location() != time.UTC {
				t.Errorf("Last(%s): got %s, want %s in UTC", tc.t, last, want)
			}
			if want := at(t, tc.next); !next.Equal(want) || next.Location() != time.UTC {
				t.Errorf("Next(%s): got %s, want %s in UTC", tc.t, next, want)
			}
		})
	}
	// The same instant in any zone has the same boundaries.
	in := at(t, "2027-01-31T10:00:00Z")
	for _, loc := range []*time.Location{plus14, minus12, time.Local} {
		for _, r := range []store.Refill{daily(1), monthly(1, 31), monthly(1, 1)} {
			if got, want := r.Next(in.In(loc)), r.Next(in); !got.Equal(want) {
				t.Errorf("%v Next(%s in %s): got %s, want %s as in UTC", r, in, loc, got, want)
			}
			if got, want := r.Last(in.In(loc)), r.Last(in); !got.Equal(want) {
				t.Errorf("%v Last(%s in %s): got %s, want %s as in UTC", r, in, loc, got, want)
			}
		}
	}
}

// TestRefillUnknownPeriod checks that an unknown period has no boundary
// and is never due.
func TestRefillUnknownPeriod(t *testing.T) {
	t.Parallel()
	r := store.Refill{Amount: 5, Every: "week"}
	in := at(t, "2027-01-31T10:00:00Z")
	if got := r.Next(in); !got.IsZero() {
		t.Errorf("Next with period %q: got %s, want the zero Time", r.Every, got)
	}
	if got := r.Last(in); !got.IsZero() {
		t.Errorf("Last with period %q: got %s, want the zero Time", r.Every, got)
	}
	if r.Due(in, in.AddDate(10, 0, 0)) {
		t.Errorf("Due with period %q: got true, want false", r.Every)
	}
}

func TestRefillDue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		r               store.Refill
		refilledAt, now string
		want            bool
	}{
		{"daily same day", daily(1), "2027-03-10T00:00:00Z", "2027-03-10T23:59:59.999999Z", false},
		{"daily at midnight", daily(1), "2027-03-10T13:00:00Z", "2027-03-11T00:00:00Z", true},
		{"daily days later", daily(1), "2027-03-10T13:00:00Z", "2027-03-20T07:00:00Z", true},
		{"daily now before refilledAt", daily(1), "2027-03-10T13:00:00Z", "2027-03-09T07:00:00Z", false},
		{"month 31 not yet at the end of February", monthly(1, 31), "2027-01-31T10:00:00Z", "2027-02-27T23:59:59Z", false},
		{"month 31 at the end of February", monthly(1, 31), "2027-01-31T10:00:00Z", "2027-02-28T00:00:00Z", true},
		{"month 31 after a refill at the end of February", monthly(1, 31), "2027-02-28T00:00:00Z", "2027-03-30T23:59:59Z", false},
		{"month 31 on March 31", monthly(1, 31), "2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z", true},
		{"month 15 a year idle", monthly(1, 15), "2026-03-20T00:00:00Z", "2027-03-01T00:00:00Z", true},
		{"month 1 across the year", monthly(1, 1), "2027-12-01T00:00:00Z", "2028-01-01T00:00:00Z", true},
		{"month 1 set exactly on its boundary", monthly(1, 1), "2027-12-01T00:00:00Z", "2027-12-01T00:00:00Z", false},
		{"non-UTC now at the boundary", monthly(1, 1), "2027-02-10T00:00:00Z", "2027-03-01T14:00:00+14:00", true},
		{"non-UTC now before the boundary", monthly(1, 1), "2027-02-10T00:00:00Z", "2027-03-01T13:59:59+14:00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.r.Due(at(t, tc.refilledAt), at(t, tc.now)); got != tc.want {
				t.Errorf("Due(%s, %s) every %s day %d: got %v, want %v", tc.refilledAt, tc.now, tc.r.Every, tc.r.Day, got, tc.want)
			}
		})
	}
}

func TestSpend(t *testing.T) {
	t.Parallel()
	r := monthly(100, 31)
	d := daily(10)
	set := "2027-01-31T10:00:00Z"
	tests := []struct {
		name       string
		remaining  int64
		r          *store.Refill
		refilledAt string
		cost       int64
		now        string
		left       int64
		setAt      string
		ok         bool
	}{
		{"no refill, covered", 5, nil, set, 2, "2030-01-01T00:00:00Z", 3, set, true},
		{"no refill, exactly covered", 5, nil, set, 5, "2030-01-01T00:00:00Z", 0, set, true},
		{"no refill, not covered", 5, nil, set, 6, "2030-01-01T00:00:00Z", 5, set, false},
		{"no refill, empty", 0, nil, set, 1, "2030-01-01T00:00:00Z", 0, set, false},
		{"not due, covered", 5, &r, set, 2, "2027-02-27T23:59:59Z", 3, set, true},
		{"not due, not covered", 1, &r, set, 2, "2027-02-27T23:59:59Z", 1, set, false},
		{"due, refilled then spent", 0, &r, set, 30, "2027-02-28T00:00:00Z", 70, "2027-02-28T00:00:00Z", true},
		{"due, refill is not carried over", 90, &r, set, 1, "2027-02-28T12:00:00Z", 99, "2027-02-28T00:00:00Z", true},
		{"due after idle months, refilled once", 0, &r, set, 1, "2027-07-04T12:00:00Z", 99, "2027-06-30T00:00:00Z", true},
		{"due, cost above the balance after refill", 0, &r, set, 101, "2027-03-01T00:00:00Z", 100, set, false},
		{"due daily, cost above the amount", 0, &d, set, 11, "2027-02-01T08:00:00Z", 10, set, false},
		{"due daily, exactly the amount", 3, &d, set, 10, "2027-02-01T08:00:00Z", 0, "2027-02-01T00:00:00Z", true},
		{"not due daily, cost above balance but within amount", 3, &d, set, 5, "2027-01-31T23:00:00Z", 3, set, false},
		{"not due, non-UTC now on the next local day", 0, &d, set, 1, "2027-02-01T10:00:00+14:00", 0, set, false},
		{"due, non-UTC now", 0, &d, set, 1, "2027-02-01T15:00:00+14:00", 9, "2027-02-01T00:00:00Z", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			left, setAt, ok := store.Spend(tc.remaining, tc.r, at(t, tc.refilledAt), tc.cost, at(t, tc.now))
			if left != tc.left || ok != tc.ok || !setAt.Equal(at(t, tc.setAt)) {
				t.Errorf("Spend(%d, %v, %s, %d, %s): got (%d, %s, %v), want (%d, %s, %v)",
					tc.remaining, tc.r, tc.refilledAt, tc.cost, tc.now, left, setAt.UTC().Format(time.RFC3339), ok, tc.left, tc.setAt, tc.ok)
			}
		})
	}
}

// FuzzRefill checks the laws of Next and Last for any time and schedule:
// Last(t) <= t < Next(t), no boundary between them (Next(Last(t)) ==
// Next(t)), a boundary is its own Last (Last(Next(t)) == Next(t)), and a
// period lasts a day, or 28 to 31 days.
func FuzzRefill(f *testing.F) {
	seed := func(s string, monthly bool, day int) {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v.Unix(), int64(v.Nanosecond()), monthly, day, int32(0))
	}
	seed("2027-01-31T10:00:00Z", true, 31)
	seed("2027-02-28T00:00:00Z", true, 31)
	seed("2028-02-29T00:00:00Z", true, 29)
	seed("2027-12-31T23:59:59.999999999Z", true, 1)
	seed("2027-04-30T00:00:00Z", true, 30)
	seed("2027-03-10T00:00:00Z", false, 0)
	seed("1999-12-31T23:59:59Z", true, 15)
	f.Add(int64(0), int64(0), true, 0, int32(-3600))
	f.Add(int64(0), int64(0), true, 40, int32(50400))

	f.Fuzz(func(t *testing.T, sec, nsec int64, monthly bool, day int, offset int32) {
		// Keep t within years 1 to 9999, and zones within a day.
		const lo, hi = -62135596800, 253402300799 - 40*24*3600
		sec = lo + (sec%(hi-lo)+(hi-lo))%(hi-lo)
		nsec = (nsec%1e9 + 1e9) % 1e9
		in := time.Unix(sec, nsec).In(time.FixedZone("fuzz", int(offset%86400)))
		r := store.Refill{Amount: 1, Every: store.PeriodDay}
		if monthly {
			r = store.Refill{Amount: 1, Every: store.PeriodMonth, Day: day}
		}
		last, next := r.Last(in), r.Next(in)
		if last.After(in) || !next.After(in) {
			t.Fatalf("%+v at %s: got Last %s, Next %s, want Last <= t < Next", r, in, last, next)
		}
		if got := r.Next(last); !got.Equal(next) {
			t.Errorf("%+v at %s: Next(Last(t)) = Next(%s) = %s, want Next(t) = %s", r, in, last, got, next)
		}
		if got := r.Last(next); !got.Equal(next) {
			t.Errorf("%+v at %s: Last(Next(t)) = Last(%s) = %s, want %s", r, in, next, got, next)
		}
		if !r.Due(last, next) || r.Due(last, next.Add(-time.Nanosecond)) {
			t.Errorf("%+v: Due(%s, now) must turn true exactly at %s", r, last, next)
		}
		period := next.Sub(last)
		switch {
		case !monthly && period != 24*time.Hour:
			t.Errorf("%+v at %s: period %s, want a day", r, in, period)
		case monthly && (period < 28*24*time.Hour || period > 31*24*time.Hour):
			t.Errorf("%+v at %s: period %s, want 28 to 31 days", r, in, period)
		}
		for _, b := range []time.Time{last, next} {
			if b.Location() != time.UTC || b.Hour() != 0 || b.Minute() != 0 || b.Second() != 0 || b.Nanosecond() != 0 {
				t.Errorf("%+v at %s: boundary %s, want midnight UTC", r, in, b)
			}
		}
	})
}

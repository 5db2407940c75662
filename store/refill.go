package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Next returns the first boundary of r's period strictly after t: the
// next midnight UTC for PeriodDay; for PeriodMonth, midnight UTC starting
// day r.Day of t's month or of a later one, or the month's last day when
// it has fewer days. A refill of balance set at t is due at Next(t). It
// returns the zero Time for an unknown period.
func (r Refill) Next(t time.Time) time.Time {
	t = t.UTC()
	switch r.Every {
	case PeriodDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	case PeriodMonth:
		if b := monthBoundary(t.Year(), t.Month(), r.Day); b.After(t) {
			return b
		}
		return monthBoundary(t.Year(), t.Month()+1, r.Day)
	}
	return time.Time{}
}

// Last returns the latest boundary of r's period at or before t (see
// [Refill.Next]): a balance refilled at t is recorded as refilled then. It
// returns the zero Time for an unknown period.
func (r Refill) Last(t time.Time) time.Time {
	t = t.UTC()
	switch r.Every {
	case PeriodDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case PeriodMonth:
		if b := monthBoundary(t.Year(), t.Month(), r.Day); !b.After(t) {
			return b
		}
		return monthBoundary(t.Year(), t.Month()-1, r.Day)
	}
	return time.Time{}
}

// Due reports whether a balance last set at refilledAt is due a refill at
// now: whether a boundary of r's period has passed since.
func (r Refill) Due(refilledAt, now time.Time) bool {
	next := r.Next(refilledAt)
	return !next.IsZero() && !now.Before(next)
}

// monthBoundary is midnight UTC starting day of month (normalized as
// time.Date does: month 13 is January of the next year), clamped to the
// month's last day.
func monthBoundary(year int, month time.Month, day int) time.Time {
	first := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(max(day, 1), last)-1)
}

// UseSpender is an optional interface of a [Store] that takes a cost
// other than 1 from a key's uses, and refills them on their schedule
// ([Key.Refill]). The keygate Manager spends a key's uses through it when
// the store has it (the stores of this module do; storetest checks it
// when a store does); with a store that lacks it, a key's uses are taken
// one at a time with ConsumeUse and never refill.
type UseSpender interface {
	// SpendUses takes cost (1 or more) from the uses of key id at now.
	// First, when the key has a Refill that is due (Refill.Due of its
	// RefilledAt and now), its uses are set to Refill.Amount and its
	// RefilledAt to Refill.Last(now): exactly once per period, however
	// many calls race. Then, if the uses cover cost, they go down by it,
	// the version goes up by one, the refill (if any) is written, and
	// SpendUses returns what is left. If they do not, nothing is written
	// and it returns the uses that could not pay (after a refill that
	// would be due) with ErrUsageExhausted. A key without a usage limit is
	// left unchanged, with (-1, nil); a missing key is (0, ErrNotFound).
	SpendUses(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error)
}

// Spend is the arithmetic of [UseSpender.SpendUses] and
// [IdentityStore.SpendCredits] for a backend that computes it in Go: it
// takes cost from a balance of remaining, last set at refilledAt, with
// refill r (nil for none), at now. It returns the balance after the
// spend and when it was last set (Last(now) if a refill was due, else
// refilledAt), with ok true; or, when the balance (refilled if due) does
// not cover cost, that balance, refilledAt unchanged and ok false: the
// caller then writes nothing.
func Spend(remaining int64, r *Refill, refilledAt time.Time, cost int64, now time.Time) (left int64, setAt time.Time, ok bool) {
	setAt = refilledAt
	if r != nil && r.Due(refilledAt, now) {
		remaining, setAt = r.Amount, r.Last(now)
	}
	if remaining < cost {
		return remaining, refilledAt, false
	}
	return remaining - cost, setAt, true
}

// CreditSpender is an optional interface of an [IdentityStore] that
// spends identities' credits. The keygate Manager draws a verification's
// cost from its key's identity's credits through it; with an identity
// store that lacks it, a key of an identity with credits fails its
// verifications with keygate.ErrUnavailable (credits are never skipped).
// The stores of this module implement it, and storetest checks it when a
// store does.
type CreditSpender interface {
	// SpendCredits takes cost (1 or more) from the credits of identity id
	// at now, as [UseSpender.SpendUses] takes a key's uses: a refill that
	// is due first (once per period, however many calls race), then the
	// cost if the balance covers it, returning what is left; else nothing
	// is written and it returns the balance that could not pay with
	// ErrUsageExhausted. It does not change the identity's version. An
	// identity without credits is left unchanged, with (-1, nil); a
	// missing one is (0, ErrNotFound).
	SpendCredits(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error)
}

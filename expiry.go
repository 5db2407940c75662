package keygate

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/redact"
)

// Expiry says when a new or regenerated key stops working. The zero Expiry
// is invalid: every key states its expiry explicitly, "never" included.
// Build one with [ExpireAfterDays], [ExpireAfter], [ExpireAt], [NeverExpire]
// or [ParseExpiry].
type Expiry struct {
	kind  expiryKind
	after time.Duration
	at    time.Time
	// tooFar marks an ExpireAfterDays beyond what a Duration holds
	// (about 292 years), refused when resolved rather than wrapped.
	tooFar bool
}

// maxDays is the most days a time.Duration holds.
const maxDays = int64(math.MaxInt64 / int64(24*time.Hour))

type expiryKind uint8

const (
	expiryUnset expiryKind = iota
	expiryAfter
	expiryAt
	expiryNever
)

// ExpireAfterDays returns an expiry days days after creation: the presets
// offered by the platforms keygate is modelled on are 7, 30, 60 and 90.
func ExpireAfterDays(days int) Expiry {
	if int64(days) > maxDays || int64(days) < -maxDays {
		// time.Duration(days) * 24h would wrap around, to any duration.
		return Expiry{kind: expiryAfter, tooFar: true}
	}
	return ExpireAfter(time.Duration(days) * 24 * time.Hour)
}

// ExpireAfter returns an expiry d after creation; d must be positive.
func ExpireAfter(d time.Duration) Expiry {
	return Expiry{kind: expiryAfter, after: d}
}

// ExpireAt returns an expiry at a custom time, which must be in the future
// when the key is created.
func ExpireAt(t time.Time) Expiry {
	return Expiry{kind: expiryAt, at: t}
}

// NeverExpire returns the expiry of a key that does not expire.
func NeverExpire() Expiry {
	return Expiry{kind: expiryNever}
}

// ParseExpiry parses the textual forms used by the REST API and command
// lines: "never"; a number of days such as "7d", "30d", "60d", "90d"; an
// RFC 3339 time; or a date "2006-01-02", meaning the end of that day in UTC
// (the key works through that whole day). A time after [MaxExpiry] (such
// as the date "9999-12-31") or before the year 0 in UTC is refused, as
// creating a key would refuse it; so every Expiry it returns prints with
// [Expiry.String] in a form it reads back.
func ParseExpiry(s string) (Expiry, error) {
	switch {
	case s == "never" || s == "none":
		return NeverExpire(), nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n <= 0 || n > 36500 {
			return Expiry{}, errorf("%w: %w: %s is not a number of days", ErrInvalidRequest, ErrInvalidExpiry, redact.Quote(s))
		}
		return ExpireAfterDays(n), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return parsedAt(s, t.AddDate(0, 0, 1))
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return parsedAt(s, t)
	}
	return Expiry{}, errorf("%w: %w: %s is not \"never\", \"<n>d\", a date or an RFC 3339 time", ErrInvalidRequest, ErrInvalidExpiry, redact.Quote(s))
}

// parsedAt returns ExpireAt(t) for the time ParseExpiry read in s, or an
// error when t is after MaxExpiry or before the year 0 in UTC: no key may
// have it, and String would print a year RFC 3339 cannot hold.
func parsedAt(s string, t time.Time) (Expiry, error) {
	if t.After(MaxExpiry) || t.UTC().Year() < 0 {
		return Expiry{}, errorf("%w: %w: %q is after %s or before the year 0000 in UTC",
			ErrInvalidRequest, ErrInvalidExpiry, s, MaxExpiry.Format(time.RFC3339))
	}
	return ExpireAt(t), nil
}

// String returns the expiry in the form ParseExpiry reads: every Expiry
// ParseExpiry returns prints as one that resolves to the same instant. An
// ExpireAfter duration that is not a whole number of days, more days than
// ParseExpiry accepts, or a time outside the years 0000 to 9999 prints in
// a form ParseExpiry refuses, never in one it reads differently.
func (e Expiry) String() string {
	switch e.kind {
	case expiryNever:
		return "never"
	case expiryAfter:
		if e.tooFar {
			return "beyond " + strconv.FormatInt(maxDays, 10) + "d"
		}
		if e.after%(24*time.Hour) == 0 {
			return strconv.FormatInt(int64(e.after/(24*time.Hour)), 10) + "d"
		}
		return e.after.String()
	case expiryAt:
		return e.at.UTC().Format(time.RFC3339Nano)
	}
	return "unset"
}

// resolve returns the expiry time for a key created at now; the zero time
// means never.
func (e Expiry) resolve(now time.Time) (time.Time, error) {
	switch e.kind {
	case expiryNever:
		return time.Time{}, nil
	case expiryAfter:
		if e.tooFar {
			return time.Time{}, errorf("%w: %w: more than %d days either way; use ExpireAt", ErrInvalidRequest, ErrInvalidExpiry, maxDays)
		}
		if e.after <= 0 {
			return time.Time{}, errorf("%w: %w: duration %v is not positive", ErrInvalidRequest, ErrInvalidExpiry, e.after)
		}
		return bounded(canonicalTime(now.Add(e.after)))
	case expiryAt:
		at := canonicalTime(e.at)
		if !at.After(now) {
			return time.Time{}, errorf("%w: %w: %s is not in the future", ErrInvalidRequest, ErrInvalidExpiry, at.Format(time.RFC3339))
		}
		return bounded(at)
	}
	return time.Time{}, errorf("%w: %w: an expiry is required (use NeverExpire for none)", ErrInvalidRequest, ErrInvalidExpiry)
}

// bounded returns at, or an error when it is after MaxExpiry.
func bounded(at time.Time) (time.Time, error) {
	if at.After(MaxExpiry) {
		return time.Time{}, errorf("%w: %w: expiries end at %s", ErrInvalidRequest, ErrInvalidExpiry, MaxExpiry.Format(time.RFC3339))
	}
	return at, nil
}

// canonicalTime is the form every stored time takes: UTC, to the
// microsecond, as SQL engines keep it.
func canonicalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

package keygate

import (
	"errors"
	"testing"
	"time"
)

// FuzzParseExpiry checks that ParseExpiry never panics, that every error is
// ErrInvalidExpiry, and that an accepted expiry prints in a form that
// parses back to the same instant.
func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{"never", "none", "7d", "30d", "60d", "90d", "0d", "-1d", "99999999999d",
		"2026-12-31", "2026-02-30", "2026-12-31T23:59:59Z", "2026-12-31T23:59:59.123456789+02:00", "", "d", "7", "soon",
		"36500d", "36501d", "+7d", "007d", "9999-12-30", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000001Z"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpiry(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidExpiry) || !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("ParseExpiry(%q) = %v, want ErrInvalidExpiry", s, err)
			}
			return
		}
		back, err := ParseExpiry(e.String())
		if err != nil {
			t.Fatalf("ParseExpiry(%q).String() = %q does not parse: %v", s, e.String(), err)
		}
		got, err1 := e.resolve(now)
		again, err2 := back.resolve(now)
		if (err1 == nil) != (err2 == nil) || !got.Equal(again) {
			t.Fatalf("ParseExpiry(%q) resolves to %v (%v), its String %q to %v (%v)", s, got, err1, e.String(), again, err2)
		}
	})
}

// FuzzExpiryString builds expiries with the constructors and checks that
// String never prints a form ParseExpiry reads differently: whatever it
// parses back to resolves to the same instant (or fails alike), and every
// expiry ParseExpiry's forms can express (never; 1 to 36500 whole days; a
// time from the year 0000 to MaxExpiry) parses back.
func FuzzExpiryString(f *testing.F) {
	f.Add(uint8(0), int64(30), int64(0), int32(0))
	f.Add(uint8(0), int64(36501), int64(0), int32(0))
	f.Add(uint8(0), int64(213504), int64(0), int32(0))  // wraps to +2 days as a Duration
	f.Add(uint8(0), int64(-213502), int64(0), int32(0)) // wraps to a positive Duration
	f.Add(uint8(1), int64(36*time.Hour), int64(0), int32(0))
	f.Add(uint8(1), int64(-48*time.Hour), int64(0), int32(0))
	f.Add(uint8(2), MaxExpiry.Unix(), int64(0), int32(-3600))
	f.Add(uint8(2), MaxExpiry.Unix()+1, int64(0), int32(3600))
	f.Add(uint8(2), int64(1798675200), int64(123456789), int32(19800))
	f.Add(uint8(2), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()-1, int64(999999999), int32(0))
	f.Add(uint8(3), int64(0), int64(0), int32(0))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	yearZero := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, kind uint8, n, nsec int64, offset int32) {
		var e Expiry
		expressible := false
		switch kind % 4 {
		case 0:
			e = ExpireAfterDays(int(n))
			expressible = n >= 1 && n <= 36500
		case 1:
			e = ExpireAfter(time.Duration(n))
			expressible = n > 0 && n%int64(24*time.Hour) == 0 && n/int64(24*time.Hour) <= 36500
		case 2:
			at := time.Unix(n, nsec).In(time.FixedZone("", int(offset%86400)))
			e = ExpireAt(at)
			expressible = !at.After(MaxExpiry) && !at.Before(yearZero)
		default:
			e = NeverExpire()
			expressible = true
		}
		if at, err := e.resolve(now); kind%4 == 0 && err == nil && !at.Equal(now.AddDate(0, 0, int(n))) {
			t.Fatalf("ExpireAfterDays(%d) resolves to %v, not %d days later", n, at, n)
		}
		s := e.String()
		back, err := ParseExpiry(s)
		if err != nil {
			if expressible {
				t.Fatalf("%#v prints as %q, which ParseExpiry refuses: %v", e, s, err)
			}
			return
		}
		want, err1 := e.resolve(now)
		got, err2 := back.resolve(now)
		if (err1 == nil) != (err2 == nil) || !got.Equal(want) {
			t.Fatalf("%#v resolves to %v (%v); its String %q parses to one resolving to %v (%v)", e, want, err1, s, got, err2)
		}
	})
}

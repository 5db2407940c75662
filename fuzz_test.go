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
		"2026-12-31", "2026-02-30", "2026-12-31T23:59:59Z", "2026-12-31T23:59:59.123456789+02:00", "", "d", "7", "soon"} {
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

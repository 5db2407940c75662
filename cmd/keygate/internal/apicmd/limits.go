package apicmd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/importfile"
)

// The limits keys and identities share: named rate limits and the refill
// of a balance (a key's uses, an identity's credits).

// ParseRateLimits parses the flags of named rate limits, NAME=REQUESTS/WINDOW
// each (see ParseNamedRate): the always-on ones given with flag alwaysFlag,
// the on-demand ones with --on-demand-rate. None is nil.
func ParseRateLimits(alwaysFlag string, always, onDemand []string) ([]client.NamedRateLimit, error) {
	var out []client.NamedRateLimit
	for _, set := range []struct {
		flag     string
		values   []string
		onDemand bool
	}{{alwaysFlag, always, false}, {"--on-demand-rate", onDemand, true}} {
		for _, v := range set.values {
			r, err := ParseNamedRate(v)
			if err != nil {
				return nil, cmdutil.Usagef("%s %q: %v", set.flag, v, err)
			}
			r.OnDemand = set.onDemand
			out = append(out, r)
		}
	}
	return out, nil
}

// ParseNamedRate parses a named rate limit, NAME=REQUESTS/WINDOW, such as
// "requests=100/1s": a name as keygate takes them (lowercase letters,
// digits, '_', '-' and '.', starting with a letter, at most
// keygate.MaxRateLimitName bytes), then a rate as importfile.ParseRate
// reads it.
func ParseNamedRate(s string) (client.NamedRateLimit, error) {
	name, rate, ok := strings.Cut(s, "=")
	if !ok {
		return client.NamedRateLimit{}, errors.New(`want NAME=REQUESTS/WINDOW such as "requests=100/1s"`)
	}
	if !validName(name) {
		return client.NamedRateLimit{}, fmt.Errorf("a name is 1 to %d lowercase letters, digits, '_', '-' or '.', starting with a letter", keygate.MaxRateLimitName)
	}
	r, err := importfile.ParseRate(rate)
	if err != nil {
		return client.NamedRateLimit{}, err
	}
	return client.NamedRateLimit{Name: name, Requests: r.Requests, Window: r.Window}, nil
}

// validName reports whether s may name a rate limit.
func validName(s string) bool {
	if s == "" || len(s) > keygate.MaxRateLimitName || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// ParseRefill parses --refill: AMOUNT/day, AMOUNT/month (on the 1st) or
// AMOUNT/month:DAY, AMOUNT from 1 to keygate.MaxCredits and DAY from 1 to
// 31.
func ParseRefill(s string) (client.Refill, error) {
	bad := fmt.Errorf("want AMOUNT/day, AMOUNT/month or AMOUNT/month:DAY, AMOUNT 1 to %d and DAY 1 to 31", int64(keygate.MaxCredits))
	amount, period, ok := strings.Cut(s, "/")
	n, err := strconv.ParseInt(amount, 10, 64)
	if !ok || err != nil || n < 1 || n > keygate.MaxCredits {
		return client.Refill{}, bad
	}
	if period == "day" {
		return client.Refill{Amount: n, Every: "day"}, nil
	}
	month, day, hasDay := strings.Cut(period, ":")
	d := 1
	if hasDay {
		if d, err = strconv.Atoi(day); err != nil || d < 1 || d > 31 || day != strconv.Itoa(d) {
			return client.Refill{}, bad
		}
	}
	if month != "month" {
		return client.Refill{}, bad
	}
	return client.Refill{Amount: n, Every: "month", Day: d}, nil
}

// FormatRates sums up named rate limits for a table, cleaned:
// "requests=100/1s, tokens=9/1h (on demand)", or "-" for none.
func FormatRates(rls []client.NamedRateLimit) string {
	if len(rls) == 0 {
		return "-"
	}
	parts := make([]string, len(rls))
	for i, r := range rls {
		parts[i] = fmt.Sprintf("%s=%d/%v", r.Name, r.Requests, time.Duration(r.Window))
		if r.OnDemand {
			parts[i] += " (on demand)"
		}
	}
	return cmdutil.Clean(strings.Join(parts, ", "))
}

// FormatRefill sums up the refill of a balance for a table, to follow the
// balance: ", refilled to 1000 every month on day 1"; "" for none.
func FormatRefill(r *client.Refill) string {
	if r == nil {
		return ""
	}
	s := fmt.Sprintf(", refilled to %d every %s", r.Amount, cmdutil.Clean(r.Every))
	if r.Day != 0 {
		s += fmt.Sprintf(" on day %d", r.Day)
	}
	return s
}

package keys

import (
	"net/netip"
	"strconv"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/importfile"
)

// expiryHelp lists the forms of --expiry.
const expiryHelp = `"7d", "30d", "90d" (any number of days), a date such as 2026-12-31 (through that day, UTC), an RFC 3339 time, or "never"`

// checkExpiry refuses an --expiry the API would refuse, before anything
// is sent.
func checkExpiry(flag, s string) error {
	if s == "" {
		return cmdutil.Usagef("%s is required: %s", flag, expiryHelp)
	}
	if _, err := keygate.ParseExpiry(s); err != nil {
		return cmdutil.Usagef("%s %q: want %s", flag, s, expiryHelp)
	}
	return nil
}

// parseRate parses --rate: "REQUESTS/WINDOW" such as "100/1m", or with
// none, "none" (no rate limit).
func parseRate(s string, none bool) (client.RateLimit, error) {
	if none && s == "none" {
		return client.RateLimit{}, nil
	}
	r, err := importfile.ParseRate(s)
	if err != nil {
		return r, cmdutil.Usagef("--rate %q: %v", s, err)
	}
	return r, nil
}

// parseUses parses --uses: a number of uses, or with unlimited,
// "unlimited" (-1, no usage limit).
func parseUses(s string, unlimited bool) (int64, error) {
	if unlimited && s == "unlimited" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		if unlimited {
			return 0, cmdutil.Usagef("--uses %q: want a number of uses, 0 or more, or unlimited", s)
		}
		return 0, cmdutil.Usagef("--uses %q: want a number of uses, 0 or more", s)
	}
	return n, nil
}

// checkCIDRs refuses an --allow-cidr that is not a prefix.
func checkCIDRs(cidrs []string) error {
	for _, c := range cidrs {
		if _, err := netip.ParsePrefix(c); err != nil {
			return cmdutil.Usagef("--allow-cidr %q: want a CIDR prefix such as 10.0.0.0/8 or 2001:db8::/32", c)
		}
	}
	return nil
}

// parseMetadata parses --metadata key=value pairs.
func parseMetadata(pairs []string) (map[string]string, error) {
	md, err := importfile.ParseMetadata(pairs)
	if err != nil {
		return nil, cmdutil.Usagef("--metadata: %v", err)
	}
	return md, nil
}

// limitsHelp documents the limit flags.
var limitsHelp = map[string]string{
	"rate":           `rate limit, REQUESTS/WINDOW such as "100/1m" or "5000/h"`,
	"named-rate":     `a named rate limit of the key's besides --rate, NAME=REQUESTS/WINDOW such as "tokens=100000/1h" (repeatable)`,
	"on-demand-rate": `a named rate limit applied only to the requests that name it, NAME=REQUESTS/WINDOW such as "exports=5/24h" (repeatable)`,
	"uses":           "number of verifications (or units, with a cost) the key allows",
	"refill":         `how the uses refill: AMOUNT/day, AMOUNT/month (on the 1st) or AMOUNT/month:DAY (1 to 31, the month's last day when shorter), in UTC`,
	"allow-cidr":     "client address prefix the key is accepted from, such as 10.0.0.0/8 (repeatable)",
}

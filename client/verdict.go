package client

import (
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/keygate/keygate/server"
)

// A verdict of POST /keys/verify is read without reflection when it is
// plain (see parseVerdict): what every uncached remote verification
// reads. Any other body is decoded by encoding/json, as every response
// is; FuzzParseVerdict holds parseVerdict to encoding/json's result.

// maxPlainVerdict bounds the bodies read whole for parseVerdict; a larger
// verdict (a key with much metadata) is decoded as it streams in.
const maxPlainVerdict = 64 << 10

// parseVerdict decodes body into v as json.Unmarshal would, and reports
// true, when body is one plain verdict amid JSON whitespace: objects whose
// members are those of VerifyResponse, Key, Limits, RateLimit,
// NamedRateLimit, Refill, RateStatus, VerifyReport, LimitReport and
// Balance, spelled as their tags are and each at most once; strings of
// valid UTF-8 without escapes or control characters; integers without
// fraction or exponent that fit their field; true and false. It reports
// false, leaving v unchanged, for any other body (null, escapes, unknown
// or differently spelled members, duplicates, anything json.Unmarshal
// would refuse), which the caller then decodes with encoding/json.
//
// The strings of v are substrings of body, which must never change
// afterwards.
func parseVerdict(body []byte, v *VerifyResponse) bool {
	p := scanner{b: body}
	var out VerifyResponse
	ok := p.object(func(name string) bool {
		switch name {
		case "valid":
			return p.bool(&out.Valid)
		case "key":
			out.Key = new(Key)
			return p.key(out.Key)
		case "permissions":
			return p.strings(&out.Permissions)
		case "super_admin":
			return p.bool(&out.SuperAdmin)
		case "code":
			return p.string(&out.Code)
		case "retry_after":
			return p.int(&out.RetryAfter, 64)
		case "rate_limit":
			out.RateLimit = new(server.RateStatus)
			return p.rateStatus(out.RateLimit)
		case "report":
			out.Report = new(server.VerifyReport)
			return p.report(out.Report)
		}
		return false
	})
	if !ok || p.space() != len(p.b) {
		return false
	}
	*v = out
	return true
}

// scanner reads a plain JSON value from b at i.
type scanner struct {
	b []byte
	i int
}

// space skips JSON whitespace and returns the index of the next byte.
func (p *scanner) space() int {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
	return p.i
}

// next skips whitespace and reports whether c comes next, consuming it.
func (p *scanner) next(c byte) bool {
	if p.space() < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object, calling member for each member's name with the
// scanner before its value, which member must read. Each name may come
// once: a second time is refused (encoding/json would take the last, or
// merge two objects).
func (p *scanner) object(member func(name string) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	var seen []string
	var buf [20]string
	seen = buf[:0]
	for {
		name, ok := p.raw()
		if !ok || !p.next(':') {
			return false
		}
		for _, s := range seen {
			if s == name {
				return false
			}
		}
		seen = append(seen, name)
		if !member(name) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// raw reads a plain string: valid UTF-8 without escapes or control
// characters, as a substring of b.
func (p *scanner) raw() (string, bool) {
	if !p.next('"') {
		return "", false
	}
	start := p.i
	ascii := true
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return "", false // encoding/json would replace the bad bytes
			}
			if len(s) == 0 {
				return "", true
			}
			return unsafe.String(&s[0], len(s)), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// string reads a plain string into s.
func (p *scanner) string(s *string) bool {
	v, ok := p.raw()
	if ok {
		*s = v
	}
	return ok
}

// strings reads an array of plain strings into ss: a new slice, empty and
// not nil for [], as encoding/json makes it.
func (p *scanner) strings(ss *[]string) bool {
	if !p.next('[') {
		return false
	}
	var buf [8]string
	out := buf[:0]
	if !p.next(']') {
		for {
			s, ok := p.raw()
			if !ok {
				return false
			}
			out = append(out, s)
			if p.next(']') {
				break
			}
			if !p.next(',') {
				return false
			}
		}
	}
	*ss = append(make([]string, 0, len(out)), out...)
	return true
}

// bool reads true or false into b.
func (p *scanner) bool(b *bool) bool {
	p.space()
	for _, lit := range [...]string{"true", "false"} {
		if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
			p.i += len(lit)
			*b = lit == "true"
			return p.delimited()
		}
	}
	return false
}

// delimited reports whether what follows a literal or number may end it
// (else encoding/json would refuse it, or read more of it).
func (p *scanner) delimited() bool {
	if p.i == len(p.b) {
		return true
	}
	switch p.b[p.i] {
	case ' ', '\t', '\n', '\r', ',', '}', ']':
		return true
	}
	return false
}

// int reads an integer of JSON's grammar without fraction or exponent
// that fits in bits into n.
func (p *scanner) int(n *int64, bits int) bool {
	start := p.space()
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == digits || p.b[digits] == '0' && p.i > digits+1 || !p.delimited() {
		return false
	}
	v, err := strconv.ParseInt(unsafe.String(&p.b[start], p.i-start), 10, bits)
	if err != nil {
		return false
	}
	*n = v
	return true
}

// intField reads an integer into an int.
func (p *scanner) intField(n *int) bool {
	var v int64
	if !p.int(&v, strconv.IntSize) {
		return false
	}
	*n = int(v)
	return true
}

// time reads a time as time.Time's UnmarshalJSON does (RFC 3339).
func (p *scanner) time(t *time.Time) bool {
	s, ok := p.raw()
	return ok && t.UnmarshalText(unsafe.Slice(unsafe.StringData(s), len(s))) == nil
}

// duration reads a server.Duration as its UnmarshalJSON does.
func (p *scanner) duration(d *server.Duration) bool {
	s, ok := p.raw()
	if !ok {
		return false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return false
	}
	*d = server.Duration(v)
	return true
}

// key reads a Key into k.
func (p *scanner) key(k *Key) bool {
	return p.object(func(name string) bool {
		switch name {
		case "id":
			s, ok := p.raw()
			return ok && k.ID.UnmarshalText(unsafe.Slice(unsafe.StringData(s), len(s))) == nil
		case "name":
			return p.string(&k.Name)
		case "description":
			return p.string(&k.Description)
		case "owner":
			return p.string(&k.Owner)
		case "workspace":
			return p.string(&k.Workspace)
		case "role":
			return p.string(&k.Role)
		case "scopes":
			return p.strings(&k.Scopes)
		case "metadata":
			m := map[string]string{}
			k.Metadata = m
			return p.object(func(name string) bool {
				var v string
				if !p.string(&v) {
					return false
				}
				m[name] = v
				return true
			})
		case "identity_id":
			s, ok := p.raw()
			return ok && k.IdentityID.UnmarshalText(unsafe.Slice(unsafe.StringData(s), len(s))) == nil
		case "hint":
			return p.string(&k.Hint)
		case "created_at":
			return p.time(&k.CreatedAt)
		case "updated_at":
			return p.time(&k.UpdatedAt)
		case "expires_at":
			return p.time(&k.ExpiresAt)
		case "last_used_at":
			return p.time(&k.LastUsedAt)
		case "revoked_at":
			return p.time(&k.RevokedAt)
		case "disabled_at":
			return p.time(&k.DisabledAt)
		case "version":
			return p.int(&k.Version, 64)
		case "limits":
			return p.limits(&k.Limits)
		}
		return false
	})
}

// limits reads a Limits into l.
func (p *scanner) limits(l *server.Limits) bool {
	return p.object(func(name string) bool {
		switch name {
		case "rate":
			return p.object(func(name string) bool {
				switch name {
				case "requests":
					return p.intField(&l.Rate.Requests)
				case "window":
					return p.duration(&l.Rate.Window)
				}
				return false
			})
		case "rate_limits":
			return p.rateLimits(&l.RateLimits)
		case "uses_remaining":
			var n int64
			if !p.int(&n, 64) {
				return false
			}
			l.UsesRemaining = &n
			return true
		case "uses_refill":
			r := new(server.Refill)
			l.UsesRefill = r
			return p.object(func(name string) bool {
				switch name {
				case "amount":
					return p.int(&r.Amount, 64)
				case "every":
					return p.string(&r.Every)
				case "day":
					return p.intField(&r.Day)
				}
				return false
			})
		case "uses_refilled_at":
			return p.time(&l.UsesRefilledAt)
		case "allowed_cidrs":
			return p.strings(&l.AllowedCIDRs)
		}
		return false
	})
}

// rateLimits reads an array of named rate limits into rls: a new slice,
// empty and not nil for [], as encoding/json makes it.
func (p *scanner) rateLimits(rls *[]server.NamedRateLimit) bool {
	if !p.next('[') {
		return false
	}
	out := []server.NamedRateLimit{}
	if !p.next(']') {
		for {
			var r server.NamedRateLimit
			ok := p.object(func(name string) bool {
				switch name {
				case "name":
					return p.string(&r.Name)
				case "requests":
					return p.intField(&r.Requests)
				case "window":
					return p.duration(&r.Window)
				case "on_demand":
					return p.bool(&r.OnDemand)
				}
				return false
			})
			if !ok {
				return false
			}
			out = append(out, r)
			if p.next(']') {
				break
			}
			if !p.next(',') {
				return false
			}
		}
	}
	*rls = out
	return true
}

// rateStatus reads a RateStatus into st.
func (p *scanner) rateStatus(st *server.RateStatus) bool {
	return p.object(func(name string) bool {
		switch name {
		case "requests":
			return p.intField(&st.Requests)
		case "window":
			return p.duration(&st.Window)
		case "remaining":
			return p.intField(&st.Remaining)
		case "reset":
			var d server.Duration
			if !p.duration(&d) {
				return false
			}
			st.Reset = &d
			return true
		case "name":
			return p.string(&st.Name)
		case "identity":
			return p.bool(&st.Identity)
		}
		return false
	})
}

// report reads a VerifyReport into r.
func (p *scanner) report(r *server.VerifyReport) bool {
	return p.object(func(name string) bool {
		switch name {
		case "cost":
			return p.intField(&r.Cost)
		case "limits":
			return p.limitReports(&r.Limits)
		case "uses":
			r.Uses = new(server.Balance)
			return p.balance(r.Uses)
		case "credits":
			r.Credits = new(server.Balance)
			return p.balance(r.Credits)
		}
		return false
	})
}

// limitReports reads an array of limit reports into lrs: a new slice,
// empty and not nil for [], as encoding/json makes it.
func (p *scanner) limitReports(lrs *[]server.LimitReport) bool {
	if !p.next('[') {
		return false
	}
	out := []server.LimitReport{}
	if !p.next(']') {
		for {
			var l server.LimitReport
			ok := p.object(func(name string) bool {
				switch name {
				case "name":
					return p.string(&l.Name)
				case "identity":
					return p.bool(&l.Identity)
				case "requests":
					return p.intField(&l.Requests)
				case "window":
					return p.duration(&l.Window)
				case "on_demand":
					return p.bool(&l.OnDemand)
				case "allowed":
					return p.bool(&l.Allowed)
				case "remaining":
					return p.intField(&l.Remaining)
				case "reset":
					return p.duration(&l.Reset)
				case "retry_after":
					return p.duration(&l.RetryAfter)
				}
				return false
			})
			if !ok {
				return false
			}
			out = append(out, l)
			if p.next(']') {
				break
			}
			if !p.next(',') {
				return false
			}
		}
	}
	*lrs = out
	return true
}

// balance reads a Balance into b.
func (p *scanner) balance(b *server.Balance) bool {
	return p.object(func(name string) bool {
		switch name {
		case "remaining":
			return p.int(&b.Remaining, 64)
		case "next_refill":
			return p.time(&b.NextRefill)
		}
		return false
	})
}

package server

import (
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keygate/keygate/permission"
)

// POST /keys/verify is the route every remote verification takes, so its
// bodies are read and written without reflection: appendVerdict writes a
// VerifyResponse byte for byte as encoding/json does, and parseVerify
// reads the usual VerifyRequest (an object of plain ASCII strings), leaving
// anything else to encoding/json. FuzzVerdictEncoding and
// FuzzVerifyRequestDecoding hold them to encoding/json's output and
// answers.

// appendVerdict appends v as json.Marshal encodes it, except that the
// "permissions" member, when perms is not nil, is perms' canonical strings
// (perms.Strings()), written without a string each. It fails only as
// json.Marshal would: on a time outside what RFC 3339 can write.
func appendVerdict(b []byte, v *VerifyResponse, perms permission.Set) ([]byte, error) {
	b = append(b, `{"valid":`...)
	b = strconv.AppendBool(b, v.Valid)
	if v.Key != nil {
		b = append(b, `,"key":`...)
		var err error
		if b, err = v.Key.appendJSON(b); err != nil {
			return nil, err
		}
	}
	switch {
	case len(perms) > 0:
		b = append(b, `,"permissions":[`...)
		for i, p := range perms {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPermission(b, p)
		}
		b = append(b, ']')
	case perms == nil && len(v.Permissions) > 0:
		b = append(b, `,"permissions":`...)
		b = appendStrings(b, v.Permissions)
	}
	if v.SuperAdmin {
		b = append(b, `,"super_admin":true`...)
	}
	if v.Code != "" {
		b = append(b, `,"code":`...)
		b = appendString(b, v.Code)
	}
	if v.RetryAfter != 0 {
		b = append(b, `,"retry_after":`...)
		b = strconv.AppendInt(b, v.RetryAfter, 10)
	}
	if st := v.RateLimit; st != nil {
		b = append(b, `,"rate_limit":{"requests":`...)
		b = strconv.AppendInt(b, int64(st.Requests), 10)
		b = append(b, `,"window":`...)
		b = st.Window.appendJSON(b)
		b = append(b, `,"remaining":`...)
		b = strconv.AppendInt(b, int64(st.Remaining), 10)
		if st.Reset != nil {
			b = append(b, `,"reset":`...)
			b = st.Reset.appendJSON(b)
		}
		if st.Name != "" {
			b = append(b, `,"name":`...)
			b = appendString(b, st.Name)
		}
		if st.Identity {
			b = append(b, `,"identity":true`...)
		}
		b = append(b, '}')
	}
	if r := v.Report; r != nil {
		b = append(b, `,"report":`...)
		var err error
		if b, err = r.appendJSON(b); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendJSON appends r as json.Marshal encodes it.
func (r *VerifyReport) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"cost":`...)
	b = strconv.AppendInt(b, int64(r.Cost), 10)
	if len(r.Limits) > 0 {
		b = append(b, `,"limits":[`...)
		for i := range r.Limits {
			l := &r.Limits[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, l.Name)
			if l.Identity {
				b = append(b, `,"identity":true`...)
			}
			b = append(b, `,"requests":`...)
			b = strconv.AppendInt(b, int64(l.Requests), 10)
			b = append(b, `,"window":`...)
			b = l.Window.appendJSON(b)
			if l.OnDemand {
				b = append(b, `,"on_demand":true`...)
			}
			b = append(b, `,"allowed":`...)
			b = strconv.AppendBool(b, l.Allowed)
			b = append(b, `,"remaining":`...)
			b = strconv.AppendInt(b, int64(l.Remaining), 10)
			if l.Reset != 0 {
				b = append(b, `,"reset":`...)
				b = l.Reset.appendJSON(b)
			}
			if l.RetryAfter != 0 {
				b = append(b, `,"retry_after":`...)
				b = l.RetryAfter.appendJSON(b)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	for _, f := range [...]struct {
		name string
		bal  *Balance
	}{{`,"uses":`, r.Uses}, {`,"credits":`, r.Credits}} {
		if f.bal == nil {
			continue
		}
		b = append(b, f.name...)
		b = append(b, `{"remaining":`...)
		b = strconv.AppendInt(b, f.bal.Remaining, 10)
		if !f.bal.NextRefill.IsZero() {
			b = append(b, `,"next_refill":`...)
			var err error
			if b, err = appendTime(b, f.bal.NextRefill); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendJSON appends k as json.Marshal encodes it.
func (k *Key) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"id":"`...)
	b = appendUUID(b, k.ID)
	b = append(b, `","name":`...)
	b = appendString(b, k.Name)
	for _, f := range [...]struct{ name, value string }{
		{`,"description":`, k.Description}, {`,"owner":`, k.Owner}, {`,"workspace":`, k.Workspace}, {`,"role":`, k.Role},
	} {
		if f.value != "" {
			b = append(b, f.name...)
			b = appendString(b, f.value)
		}
	}
	if len(k.Scopes) > 0 {
		b = append(b, `,"scopes":`...)
		b = appendStrings(b, k.Scopes)
	}
	if len(k.Metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		for i, name := range slices.Sorted(maps.Keys(k.Metadata)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, name)
			b = append(b, ':')
			b = appendString(b, k.Metadata[name])
		}
		b = append(b, '}')
	}
	if k.IdentityID != uuid.Nil {
		b = append(b, `,"identity_id":"`...)
		b = appendUUID(b, k.IdentityID)
		b = append(b, '"')
	}
	b = append(b, `,"hint":`...)
	b = appendString(b, k.Hint)
	b = append(b, `,"created_at":`...)
	if b, err = appendTime(b, k.CreatedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"updated_at":`...)
	if b, err = appendTime(b, k.UpdatedAt); err != nil {
		return nil, err
	}
	for _, f := range [...]struct {
		name string
		t    time.Time
	}{
		{`,"expires_at":`, k.ExpiresAt}, {`,"last_used_at":`, k.LastUsedAt}, {`,"revoked_at":`, k.RevokedAt}, {`,"disabled_at":`, k.DisabledAt},
	} {
		if !f.t.IsZero() {
			b = append(b, f.name...)
			if b, err = appendTime(b, f.t); err != nil {
				return nil, err
			}
		}
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, k.Version, 10)
	if l := &k.Limits; l.Rate != (RateLimit{}) || len(l.RateLimits) > 0 || l.UsesRemaining != nil || l.UsesRefill != nil ||
		!l.UsesRefilledAt.IsZero() || l.AllowedCIDRs != nil {
		b = append(b, `,"limits":{`...)
		first := true
		sep := func() {
			if !first {
				b = append(b, ',')
			}
			first = false
		}
		if l.Rate != (RateLimit{}) {
			sep()
			b = append(b, `"rate":{"requests":`...)
			b = strconv.AppendInt(b, int64(l.Rate.Requests), 10)
			b = append(b, `,"window":`...)
			b = l.Rate.Window.appendJSON(b)
			b = append(b, '}')
		}
		if len(l.RateLimits) > 0 {
			sep()
			b = append(b, `"rate_limits":[`...)
			for i, r := range l.RateLimits {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"name":`...)
				b = appendString(b, r.Name)
				b = append(b, `,"requests":`...)
				b = strconv.AppendInt(b, int64(r.Requests), 10)
				b = append(b, `,"window":`...)
				b = r.Window.appendJSON(b)
				if r.OnDemand {
					b = append(b, `,"on_demand":true`...)
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		if l.UsesRemaining != nil {
			sep()
			b = append(b, `"uses_remaining":`...)
			b = strconv.AppendInt(b, *l.UsesRemaining, 10)
		}
		if r := l.UsesRefill; r != nil {
			sep()
			b = append(b, `"uses_refill":{"amount":`...)
			b = strconv.AppendInt(b, r.Amount, 10)
			b = append(b, `,"every":`...)
			b = appendString(b, r.Every)
			if r.Day != 0 {
				b = append(b, `,"day":`...)
				b = strconv.AppendInt(b, int64(r.Day), 10)
			}
			b = append(b, '}')
		}
		if !l.UsesRefilledAt.IsZero() {
			sep()
			b = append(b, `"uses_refilled_at":`...)
			if b, err = appendTime(b, l.UsesRefilledAt); err != nil {
				return nil, err
			}
		}
		if len(l.AllowedCIDRs) > 0 {
			sep()
			b = append(b, `"allowed_cidrs":`...)
			b = appendStrings(b, l.AllowedCIDRs)
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendJSON appends d as its MarshalJSON writes it.
func (d Duration) appendJSON(b []byte) []byte {
	return strconv.AppendQuote(b, time.Duration(d).String())
}

// appendTime appends t as time.Time's MarshalJSON writes it, failing as it
// does (a year outside 0-9999, an offset of 24 hours or more).
func appendTime(b []byte, t time.Time) ([]byte, error) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, err
	}
	return append(out, '"'), nil
}

// appendUUID appends id's canonical form, as uuid.UUID.String writes it,
// without quotes.
func appendUUID(b []byte, id uuid.UUID) []byte {
	const digits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, digits[c>>4], digits[c&0xf])
	}
	return b
}

// appendPermission appends p's canonical string (p.String()) as a JSON
// string, without building it.
func appendPermission(b []byte, p permission.Permission) []byte {
	b = append(b, '"')
	if !p.IsZero() {
		b = appendEscaped(b, p.Resource)
		if p.Instance != "" && p.Instance != permission.Wildcard {
			b = append(b, '/')
			b = appendEscaped(b, p.Instance)
		}
		b = append(b, ':')
		b = appendEscaped(b, p.Action)
	}
	return append(b, '"')
}

// appendStrings appends ss as a JSON array of strings.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string exactly as encoding/json writes
// it: '"', '\\' and control characters escaped (\b, \f, \n, \r, \t or
// \u00XX), '<', '>' and '&' as \u003c, \u003e and \u0026, invalid UTF-8
// as \ufffd, and U+2028 and U+2029 as \u2028 and \u2029.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

// appendEscaped appends s escaped as inside a JSON string (appendString
// without the quotes). Escaping is rune by rune, so escaping the pieces of
// a string cut between runes is escaping the string.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// parseVerify parses body as a VerifyRequest when it is the plain kind a
// Verifier sends: one object, amid JSON whitespace, whose members are
// token, permission, workspace and address, spelled so and each at most
// once, with string values of printable ASCII without escapes. It reports
// false for any other body, which encoding/json then decodes (and refuses
// as it does), and leaves in unchanged then. The strings of in are
// substrings of body.
func parseVerify(body string, in *VerifyRequest) bool {
	var out VerifyRequest
	var seen uint8
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			name, j, ok := plainString(body, i)
			if !ok {
				return false
			}
			j = skipSpace(body, j)
			if j == len(body) || body[j] != ':' {
				return false
			}
			value, j, ok := plainString(body, skipSpace(body, j+1))
			if !ok {
				return false
			}
			var bit uint8
			var dst *string
			switch name {
			case "token":
				bit, dst = 1, &out.Token
			case "permission":
				bit, dst = 2, &out.Permission
			case "workspace":
				bit, dst = 4, &out.Workspace
			case "address":
				bit, dst = 8, &out.Address
			default:
				return false
			}
			if seen&bit != 0 {
				return false
			}
			seen |= bit
			*dst = value
			i = skipSpace(body, j)
			if i == len(body) {
				return false
			}
			if body[i] == '}' {
				i++
				break
			}
			if body[i] != ',' {
				return false
			}
			i = skipSpace(body, i+1)
		}
	}
	if skipSpace(body, i) != len(body) {
		return false
	}
	*in = out
	return true
}

// plainString returns the JSON string at s[i:], and the index after it,
// when it holds only printable ASCII and no escape.
func plainString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[i+1 : j], j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", j, false
		}
	}
	return "", len(s), false
}

// skipSpace returns the index of the first byte of s[i:] that is not JSON
// whitespace, or len(s).
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

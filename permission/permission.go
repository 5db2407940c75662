package permission

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keygate/keygate/internal/redact"
)

const (
	// Wildcard, as the whole resource or action, matches every resource or
	// action. As an instance it means every instance, which is also what an
	// omitted instance means.
	Wildcard = "*"

	// MaxNameLen is the maximum length in bytes of a resource, an action and
	// a role name.
	MaxNameLen = 64

	// MaxInstanceLen is the maximum length in bytes of an instance.
	MaxInstanceLen = 128

	// maxLen is the longest valid permission string.
	maxLen = MaxNameLen + 1 + MaxInstanceLen + 1 + MaxNameLen
)

// Permission is one grant, written resource[/instance]:action, such as
// "cluster:read", "app/payments:deploy" or "*:*". Build it with [Parse];
// a value built by hand must follow the same rules to behave as documented
// ([NewRegistry] checks the permissions of the roles it is given).
//
// An empty Instance means every instance of the resource: "app/*:deploy"
// and "app:deploy" are the same permission. The zero Permission is invalid:
// it allows nothing and nothing allows it.
//
// Permission is a small comparable value, safe to copy and to use
// concurrently; == compares two parsed permissions exactly.
type Permission struct {
	// Resource is "*" (every resource) or a lowercase name matching
	// [a-z][a-z0-9_.-]*, at most [MaxNameLen] bytes.
	Resource string
	// Instance is "" (every instance) or a case-sensitive identifier
	// matching [A-Za-z0-9][A-Za-z0-9_.-]*, at most [MaxInstanceLen] bytes.
	// It is never "*" after [Parse].
	Instance string
	// Action is "*" (every action) or a lowercase name matching
	// [a-z][a-z0-9_.-]*, at most [MaxNameLen] bytes.
	Action string
}

// Parse parses s as resource[/instance]:action. Resource and action are
// ASCII case-insensitive and returned lowercased; the instance is
// case-sensitive; "*" is allowed as the whole of each part, and an instance
// of "*" is returned as "" (every instance). No whitespace is allowed
// anywhere.
//
// On failure Parse returns the zero Permission and an error wrapping
// [ErrInvalid] that quotes s and states the reason. Parse is safe for
// concurrent use; it allocates only to lowercase or to report an error.
func Parse(s string) (Permission, error) {
	if s == "" {
		return Permission{}, invalid(s, "empty")
	}
	if len(s) > maxLen {
		return Permission{}, invalid(s, fmt.Sprintf("longer than %d bytes", maxLen))
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return Permission{}, invalid(s, "contains whitespace")
	}
	head, action, ok := strings.Cut(s, ":")
	if !ok {
		return Permission{}, invalid(s, "missing ':' between resource and action")
	}
	if strings.Contains(action, ":") {
		return Permission{}, invalid(s, "more than one ':'")
	}
	resource, instance, slash := strings.Cut(head, "/")
	if slash && instance == "" {
		return Permission{}, invalid(s, "empty instance after '/'")
	}
	p, reason := Permission{Resource: resource, Instance: instance, Action: action}.canonical()
	if reason != "" {
		return Permission{}, invalid(s, reason)
	}
	return p, nil
}

// MustParse is like [Parse] but panics if s is not a valid permission,
// like regexp.MustCompile: for permissions written as constants in a
// program, such as package-level variables, where the panic shows at
// start-up. Use Parse for input.
func MustParse(s string) Permission {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

// canonical checks each part of p against the grammar and returns p with
// resource and action lowercased and an instance of "*" replaced by "".
// Parse and the validation of hand-built values share it, so both accept
// exactly the same permissions. reason is "" when p is valid.
func (p Permission) canonical() (_ Permission, reason string) {
	if p.Resource, reason = parsePart("resource", p.Resource); reason != "" {
		return Permission{}, reason
	}
	if p.Instance, reason = parseInstance(p.Instance); reason != "" {
		return Permission{}, reason
	}
	if p.Action, reason = parsePart("action", p.Action); reason != "" {
		return Permission{}, reason
	}
	return p, ""
}

// String returns p in canonical form: "cluster:read",
// "app/payments:deploy", "*:read", "*:*". The instance is omitted when it
// means every instance. The zero Permission prints as "".
func (p Permission) String() string {
	switch {
	case p.IsZero():
		return ""
	case allInstances(p.Instance):
		return p.Resource + ":" + p.Action
	default:
		return p.Resource + "/" + p.Instance + ":" + p.Action
	}
}

// MarshalText implements [encoding.TextMarshaler] with the canonical form
// of p, so that JSON and similar encodings carry "cluster:read" rather than
// a struct. It fails with [ErrInvalid] when p does not follow the grammar,
// so that nothing is written that could not be read back.
func (p Permission) MarshalText() ([]byte, error) {
	c, reason := p.canonical()
	if reason != "" {
		return nil, invalid(p.String(), reason)
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] with [Parse]. On
// failure p is left unchanged.
func (p *Permission) UnmarshalText(text []byte) error {
	q, err := Parse(string(text))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Allows reports whether p grants q: p's resource is "*" or equal to q's,
// p's instance is "" (every instance) or equal to q's, and p's action is
// "*" or equal to q's. Wildcards in q are requests for everything, so p
// allows them only when p is at least as wide: "cluster:read" does not
// allow "*:read", and "app/payments:deploy" does not allow "app:deploy".
//
// A permission with an empty resource or action (such as the zero
// Permission) allows nothing and is allowed by nothing. Comparison is
// exact, so hand-built values must be canonical (lowercase resource and
// action). Allows allocates nothing.
func (p Permission) Allows(q Permission) bool {
	if p.Resource == "" || p.Action == "" || q.Resource == "" || q.Action == "" {
		return false
	}
	return (p.Resource == Wildcard || p.Resource == q.Resource) &&
		(allInstances(p.Instance) || (!allInstances(q.Instance) && p.Instance == q.Instance)) &&
		(p.Action == Wildcard || p.Action == q.Action)
}

// IsZero reports whether p is the zero Permission.
func (p Permission) IsZero() bool {
	return p == Permission{}
}

// allInstances reports whether instance means every instance. Parse never
// returns "*", but a hand-built value may hold it.
func allInstances(instance string) bool {
	return instance == "" || instance == Wildcard
}

// parsePart checks a resource or an action: "*" or a name.
func parsePart(kind, s string) (string, string) {
	if s == Wildcard {
		return s, ""
	}
	if s != "" && strings.Contains(s, Wildcard) {
		return "", "'*' must be the whole " + kind
	}
	return parseName(kind, s)
}

// parseName checks s against [a-zA-Z][a-zA-Z0-9_.-]* of at most
// MaxNameLen bytes and returns it lowercased. kind names the part in the
// reason, which is "" when s is valid.
func parseName(kind, s string) (string, string) {
	if s == "" {
		return "", "empty " + kind
	}
	if len(s) > MaxNameLen {
		return "", fmt.Sprintf("%s longer than %d bytes", kind, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLetter(c):
		case isDigit(c) || isPunct(c):
			if i == 0 {
				return "", kind + " must start with a letter"
			}
		default:
			return "", badChar(kind, s, i)
		}
	}
	return lowerASCII(s), ""
}

// parseInstance checks an instance: "" or "*" (every instance, returned
// as "") or [A-Za-z0-9][A-Za-z0-9_.-]* of at most MaxInstanceLen bytes.
func parseInstance(s string) (string, string) {
	if allInstances(s) {
		return "", ""
	}
	if len(s) > MaxInstanceLen {
		return "", fmt.Sprintf("instance longer than %d bytes", MaxInstanceLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLetter(c) || isDigit(c):
		case isPunct(c):
			if i == 0 {
				return "", "instance must start with a letter or a digit"
			}
		case c == '*':
			return "", "'*' must be the whole instance"
		default:
			return "", badChar("instance", s, i)
		}
	}
	return s, ""
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isPunct(c byte) bool  { return c == '_' || c == '.' || c == '-' }

// badChar describes the invalid character at s[i].
func badChar(kind, s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("invalid byte 0x%02x in %s", s[i], kind)
	}
	return fmt.Sprintf("invalid character %q in %s", r, kind)
}

// lowerASCII lowercases the ASCII letters of s and leaves every other byte
// alone; unlike strings.ToLower it never maps a non-ASCII rune (such as the
// Kelvin sign) to an ASCII letter. It returns s itself when nothing changes.
func lowerASCII(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// quote quotes s for an error message, unless it is long or holds a long
// run of letters and digits (a token, pasted where a permission belongs,
// must not reach a log through an error): then it says only its length.
func quote(s string) string {
	return redact.Quote(s)
}

// invalid wraps ErrInvalid with the quoted input and the reason.
func invalid(s, reason string) error {
	return fmt.Errorf("%w %s: %s", ErrInvalid, quote(s), reason)
}

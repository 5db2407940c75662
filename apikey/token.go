package apikey

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// redacted replaces secret material in every printed form of a [Token] or a [Pepper].
const redacted = "[REDACTED]"

// hintLength is the number of secret characters [Token.Hint] shows.
const hintLength = 4

// Token is a plaintext API key, as produced by [Format.Generate] or accepted by [Parse].
//
// A Token never prints its secret: String, GoString, Format (so every fmt verb, %v %+v %#v %s %q
// %x included), LogValue ([log/slog]), MarshalJSON and MarshalText all give the redacted form
// Hint()+"[REDACTED]", for example "kg_VB2K…[REDACTED]"; a zero Token gives "". Only
// [Token.Reveal] returns the secret, to show it to its owner once and to hash it.
//
// fmt cannot call methods on unexported struct fields, so a Token kept in an unexported field of
// a struct that is itself printed with %v is printed raw; keep Tokens in exported fields or in
// variables. Compare Tokens through their hashes with [Equal], not with ==, which is not
// constant-time.
//
// The zero Token is empty ([Token.IsZero]). A Token is an immutable value, safe for concurrent use.
type Token struct {
	s   string // the whole token text
	sep int    // index of the '_' between prefix and body
}

// Reveal returns the token text, secret included: "<prefix>_<secret><checksum>". Call it only to
// hand the token to its owner or to a [Hasher]; never log the result.
func (t Token) Reveal() string { return t.s }

// Prefix returns the token's prefix, without the separator; "" for the zero Token and for an
// imported token without one.
func (t Token) Prefix() string {
	if t.sep < 0 {
		return ""
	}
	return t.s[:t.sep]
}

// Hint returns a non-secret display hint: the prefix, '_', the first 4 secret characters and an
// ellipsis, for example "kg_VB2K…", so a user can tell their keys apart. It reveals about 24 of the
// secret's 256 bits. It returns "" for the zero Token.
func (t Token) Hint() string {
	if t.IsZero() {
		return ""
	}
	return t.s[:t.sep+1+hintLength] + "…"
}

// IsZero reports whether t is the zero Token. It also makes `json:",omitzero"` omit zero Tokens.
func (t Token) IsZero() bool { return t.s == "" }

// String returns the redacted form of t, never the secret.
func (t Token) String() string {
	if t.IsZero() {
		return ""
	}
	return t.Hint() + redacted
}

// GoString returns the redacted form of t for %#v, never the secret.
func (t Token) GoString() string {
	return "apikey.Token(" + strconv.Quote(t.String()) + ")"
}

// Format implements [fmt.Formatter] so that every verb prints the redacted form of t.
func (t Token) Format(st fmt.State, verb rune) {
	formatRedacted(st, verb, t.String(), t.GoString)
}

// LogValue implements [slog.LogValuer]: t is logged in its redacted form.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON encodes the redacted form of t as a JSON string. There is deliberately no
// UnmarshalJSON: a token read from input goes through [Parse].
func (t Token) MarshalJSON() ([]byte, error) { return strconv.AppendQuote(nil, t.String()), nil }

// MarshalText returns the redacted form of t.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// formatRedacted writes the redacted text s for fmt's verb: %v, %+v, %s, %q, %x and %X format s
// as they would a string (flags and width included), %#v writes goString(), and any other verb
// gets fmt's bad-verb notation around s.
func formatRedacted(st fmt.State, verb rune, s string, goString func() string) {
	switch verb {
	case 'v':
		if st.Flag('#') {
			_, _ = io.WriteString(st, goString())
			return
		}
		fallthrough
	case 's', 'q', 'x', 'X':
		_, _ = fmt.Fprintf(st, fmt.FormatString(st, verb), s)
	default:
		_, _ = fmt.Fprintf(st, "%%!%c(%s)", verb, s)
	}
}

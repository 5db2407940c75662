package middleware

import (
	"fmt"
	"net/http"
	"strings"
)

// maxCredentialLength bounds the length of a credential an [Extractor]
// accepts; keygate tokens are far shorter.
const maxCredentialLength = 1024

// Extractor finds the credential of a request in one place, such as one
// header. It returns ("", nil) when that place holds no credential, the
// credential when it finds one, and an error wrapping
// [ErrMalformedCredential] when the place is used but its value cannot be a
// credential. An error never contains the credential.
//
// Extractors are called concurrently by every request and must be safe for
// concurrent use; those of this package are.
type Extractor func(r *http.Request) (string, error)

// DefaultExtractors returns the extractors [Config] uses when it names
// none, in the order they are tried:
//
//  1. AuthorizationScheme("Api-Key"): "Authorization: Api-Key <token>"
//  2. AuthorizationScheme("Bearer"): "Authorization: Bearer <token>"
//  3. Header("X-API-Key"): "X-API-Key: <token>"
//
// Query strings are not among them: a token in a URL ends up in access
// logs, proxies and browser history. Add [Query] explicitly to accept one.
// The slice is new on each call; the caller may change it.
func DefaultExtractors() []Extractor {
	return []Extractor{
		AuthorizationScheme("Api-Key"),
		AuthorizationScheme("Bearer"),
		Header("X-API-Key"),
	}
}

// AuthorizationScheme returns an [Extractor] for "Authorization: <scheme>
// <credential>". The scheme is matched case-insensitively (RFC 9110,
// section 11.1); spaces and tabs around the value and between scheme and
// credential are skipped. It returns:
//
//   - ("", nil) with no Authorization field, or one of another scheme;
//   - an error wrapping [ErrMalformedCredential] when there is more than one
//     Authorization field (RFC 9110 allows one), or when the scheme matches
//     but the credential is empty or not token68 (letters, digits and
//     "-._~+/", then optional "=" padding), such as "Bearer a b";
//   - the credential otherwise.
func AuthorizationScheme(scheme string) Extractor {
	where := "Authorization " + scheme
	chars := token68()
	return func(r *http.Request) (string, error) {
		values := r.Header["Authorization"]
		switch len(values) {
		case 0:
			return "", nil
		case 1:
		default:
			return "", fmt.Errorf("%w: more than one Authorization field", ErrMalformedCredential)
		}
		v := trimOWS(values[0])
		i := 0
		for i < len(v) && v[i] != ' ' && v[i] != '\t' {
			i++
		}
		if !equalFoldASCII(v[:i], scheme) {
			return "", nil
		}
		if i == len(v) {
			return "", fmt.Errorf("%w: %s without a credential", ErrMalformedCredential, where)
		}
		return checkCredential(chars, where, trimOWS(v[i:]))
	}
}

// Header returns an [Extractor] for a header field whose whole value is the
// credential, such as "X-API-Key: <token>". The name is matched
// case-insensitively and spaces and tabs around the value are skipped. It
// returns ("", nil) when the field is absent, an error wrapping
// [ErrMalformedCredential] when the field is repeated or its value is empty
// or holds a character that is not visible ASCII or is a comma (the
// separator of a field repeated by a proxy), and the credential otherwise.
//
// A header, unlike Authorization, is not held to token68, so that tokens of
// another system imported with [keygate.Manager.Import] (any visible ASCII,
// as apikey.ParseImported accepts, but commas) pass too.
func Header(name string) Extractor {
	key := http.CanonicalHeaderKey(name)
	where := key + " header"
	chars := fieldChars()
	return func(r *http.Request) (string, error) {
		return single(chars, where, r.Header[key])
	}
}

// Query returns an [Extractor] for the URL query parameter name, such as
// "?api_key=<token>", with the rules of [Header]. Tokens in URLs leak into
// access logs, proxies, Referer headers and browser history; offer this
// only where a client cannot set a header, and only by adding it to
// [Config.Extractors] explicitly.
func Query(name string) Extractor {
	where := "query parameter " + name
	chars := fieldChars()
	return func(r *http.Request) (string, error) {
		if r.URL == nil || r.URL.RawQuery == "" {
			return "", nil
		}
		return single(chars, where, r.URL.Query()[name])
	}
}

// single returns the credential in values, which hold every occurrence of
// one field or parameter, named where for error messages.
func single(chars *charset, where string, values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return checkCredential(chars, where, trimOWS(values[0]))
	}
	return "", fmt.Errorf("%w: %s repeated", ErrMalformedCredential, where)
}

// checkCredential returns cred if it is 1*( chars ) *"=": token68 (RFC
// 9110, section 11.2) when chars is token68(), any visible ASCII but ','
// when it is fieldChars(). The error names where, never cred.
func checkCredential(chars *charset, where, cred string) (string, error) {
	if cred == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrMalformedCredential, where)
	}
	if len(cred) > maxCredentialLength {
		return "", fmt.Errorf("%w: %s longer than %d bytes", ErrMalformedCredential, where, maxCredentialLength)
	}
	end := len(cred)
	for end > 0 && cred[end-1] == '=' {
		end--
	}
	if end == 0 {
		return "", fmt.Errorf("%w: %s is only padding", ErrMalformedCredential, where)
	}
	for i := 0; i < end; i++ {
		if !chars[cred[i]] {
			return "", fmt.Errorf("%w: %s has an invalid character", ErrMalformedCredential, where)
		}
	}
	return cred, nil
}

// charset is a set of bytes, for validating credentials with one load per
// byte. Each extractor builds its own at construction, so that there is no
// package state.
type charset [256]bool

// token68 returns the token68 characters other than '=':
// ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/".
func token68() *charset {
	var set charset
	for c := range set {
		set[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return &set
}

// fieldChars returns the characters of a credential that is a whole header
// field value or query parameter: visible ASCII (RFC 9110 VCHAR) but ','.
func fieldChars() *charset {
	var set charset
	for c := range set {
		set[c] = '!' <= c && c <= '~' && c != ','
	}
	return &set
}

// equalFoldASCII reports whether a and b are equal ignoring the case of
// ASCII letters only (RFC 9110 schemes are ASCII; strings.EqualFold would
// also match, say, the Kelvin sign to 'k').
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// trimOWS removes the optional whitespace of RFC 9110 (spaces and tabs)
// around s.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

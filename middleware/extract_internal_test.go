package middleware

import (
	"strings"
	"testing"
)

// TestToken68 compares the character set with the RFC 9110 definition,
// byte by byte.
func TestToken68(t *testing.T) {
	t.Parallel()
	const want = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
	set := token68()
	for c := range 256 {
		if got := set[c]; got != (c < 128 && strings.IndexByte(want, byte(c)) >= 0) {
			t.Errorf("token68()[%q] = %v, want %v", rune(c), got, !got)
		}
	}
}

// TestFieldChars checks the set of a header credential against its
// definition, visible ASCII but ',', byte by byte.
func TestFieldChars(t *testing.T) {
	t.Parallel()
	set := fieldChars()
	for c := range 256 {
		want := c >= 0x21 && c <= 0x7e && c != ','
		if got := set[c]; got != want {
			t.Errorf("fieldChars()[%q] = %v, want %v", rune(c), got, want)
		}
	}
}

func TestValidScheme(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"Api-Key", true}, {"Bearer", true}, {"x!#$%&'*+-.^_`|~9", true},
		{"", false}, {"Api Key", false}, {"a/b", false}, {"a=b", false}, {`a"b`, false}, {"é", false},
	} {
		if got := validScheme(tt.s); got != tt.want {
			t.Errorf("validScheme(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

package apikey

import (
	"strings"
)

// The bounds of an imported token's text; see [ParseImported].
const (
	MinImportedLength = 16
	MaxImportedLength = 256
)

// minHidden is the fewest characters of an imported token its hint
// leaves out.
const minHidden = 12

// ParseImported accepts the token of another system, imported into
// keygate without reissuing it (keygate.Manager.Import): 16 to 256
// printable ASCII characters without spaces. It has no checksum, so
// nothing but a lookup tells a real one from garbage: a Manager looks up
// such tokens only when configured to (keygate.Config.ImportedTokens). It
// returns [ErrMalformed] for anything else.
//
// The Token prints and logs redacted like any other; its Prefix is the
// text up to its last '_' or '-' among the first 32 characters (such as
// "sk_live"), or "" when there is none, and its Hint that prefix and the 4
// characters after it; a hint always leaves at least 12 characters out.
func ParseImported(s string) (Token, error) {
	if len(s) < MinImportedLength || len(s) > MaxImportedLength {
		return Token{}, ErrMalformed
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return Token{}, ErrMalformed
		}
	}
	// The hint leaves at least 12 characters hidden: with no prefix, or
	// too long a one, it is the first 4 characters.
	sep := strings.LastIndexAny(s[:min(len(s), 32)], "_-")
	if sep < 0 || sep+1+hintLength > len(s)-minHidden {
		sep = -1
	}
	return Token{s: s, sep: sep}, nil
}

package apikey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unsafe"
)

// DefaultPrefix is the prefix keygate uses when the application does not choose one.
const DefaultPrefix = "kg"

// SecretLength is the number of random base62 characters in a token's secret.
// 62^43 > 2^256, so a secret carries at least 256 bits of entropy.
const SecretLength = 43

// ChecksumLength is the number of base62 characters of the checksum that ends every token: the
// CRC-32 (IEEE) of everything before it, left-padded with '0'.
const ChecksumLength = 6

// Pattern is a regular expression in RE2 syntax (usable with [regexp], GitHub secret scanning,
// gitleaks and similar scanners) that matches every token produced by any valid prefix: the
// prefix, an underscore, then exactly [SecretLength]+[ChecksumLength] base62 characters, delimited
// by word boundaries. It is unanchored so that it finds tokens inside larger text; anchor it as
// `^(?:` + Pattern + `)$` to test a whole string. A match is only a candidate: [Parse] also
// verifies the checksum. For one specific prefix, use [Format.Pattern].
const Pattern = `\b[a-z](?:[a-z0-9_]{0,30}[a-z0-9])?_[0-9A-Za-z]{49}\b`

const (
	// maxPrefixLength is the longest prefix a Format accepts.
	maxPrefixLength = 32
	// bodyLength is the length of everything after the separator: secret and checksum.
	bodyLength = SecretLength + ChecksumLength
	// minTokenLength and maxTokenLength bound the length of a token's text.
	minTokenLength = 1 + 1 + bodyLength
	maxTokenLength = maxPrefixLength + 1 + bodyLength
	// alphabet is the base62 alphabet in digit order: a character's index is its value.
	alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// rejectFrom is the smallest random byte that GenerateFrom discards: 248 = 4*62, so the
	// accepted bytes 0..247 map onto the alphabet with exactly four bytes per character.
	rejectFrom = 4 * len(alphabet)
	// randomBlock is how many bytes GenerateFrom reads from its source at a time.
	randomBlock = 64
	// maxRandomBlocks bounds the blocks GenerateFrom reads, so a broken source that yields only
	// rejected bytes fails instead of looping forever. A uniform source needs more than one
	// block with probability below 1e-15.
	maxRandomBlocks = 8
)

// Errors returned by this package. Parse errors are returned unwrapped (so that parsing never
// allocates); the others may be wrapped with detail that never includes secret material. Check
// them with [errors.Is].
var (
	// ErrMalformed means the text cannot be a token: wrong length, a character outside the
	// alphabet, a missing separator, or a prefix that breaks the prefix rules.
	ErrMalformed = errors.New("apikey: malformed token")
	// ErrChecksum means the text is shaped like a token but its checksum does not match, as
	// happens with a typo or a made-up string.
	ErrChecksum = errors.New("apikey: bad checksum")
	// ErrPrefix means the text is a well-formed token with a valid checksum but a prefix other
	// than the one of the [Format] that parsed it.
	ErrPrefix = errors.New("apikey: unexpected prefix")
	// ErrInvalidPrefix means [NewFormat] was given a prefix that breaks the prefix rules, or a
	// zero [Format] was asked to generate a token.
	ErrInvalidPrefix = errors.New("apikey: invalid prefix")
	// ErrInvalidPepper means [NewHasher] was given a pepper with a malformed or reserved ID, a
	// key shorter than 32 bytes, or an ID used twice.
	ErrInvalidPepper = errors.New("apikey: invalid pepper")
	// ErrUnknownPepper means [Hasher.HashWith] was asked for a pepper ID the Hasher does not hold.
	ErrUnknownPepper = errors.New("apikey: unknown pepper")
)

// Format is a token format with a fixed prefix. The zero Format is not valid: it parses no token
// (every well-formed one yields [ErrPrefix]) and generates none; use [NewFormat].
// A Format is immutable and safe for concurrent use.
type Format struct {
	prefix string
}

// NewFormat returns the Format whose tokens start with prefix and an underscore. The prefix must
// be 1 to 32 characters of lowercase ASCII letters, digits and '_', start with a letter and not
// end with '_' (for example "kg" or "acme_live"); otherwise NewFormat returns an error wrapping
// [ErrInvalidPrefix].
func NewFormat(prefix string) (Format, error) {
	if !validPrefix(prefix) {
		return Format{}, fmt.Errorf("%w %q: want 1..%d of [a-z0-9_], starting with a letter, not ending with '_'",
			ErrInvalidPrefix, prefix, maxPrefixLength)
	}
	return Format{prefix: prefix}, nil
}

// Prefix returns the prefix of f's tokens, without the separator; "" for the zero Format.
func (f Format) Prefix() string { return f.prefix }

// Pattern returns a regular expression in RE2 syntax that matches f's tokens only, for secret
// scanners configured per prefix. Like [Pattern] it is unanchored and checks no checksum. The
// zero Format has no meaningful pattern.
func (f Format) Pattern() string {
	return `\b` + f.prefix + `_[0-9A-Za-z]{49}\b`
}

// Generate returns a new token of format f whose secret is drawn from [crypto/rand].
// It fails only for the zero Format ([ErrInvalidPrefix]).
func (f Format) Generate() (Token, error) {
	return f.GenerateFrom(rand.Reader)
}

// GenerateFrom returns a new token of format f whose secret is drawn from r with the algorithm
// of [Format.Generate]; a nil r means [crypto/rand.Reader]. It exists for deterministic tests:
// anything but a cryptographically secure r yields guessable tokens.
//
// GenerateFrom reads r in blocks of 64 bytes. Each byte b below 248 yields the base62 character
// of value b%62 and each byte from 248 up is discarded (rejection sampling, so that every
// character is equally likely), until the secret has [SecretLength] characters. The same stream
// therefore always yields the same token. An error reading r is returned wrapped, and so is a
// source that yields too few usable bytes in 512.
func (f Format) GenerateFrom(r io.Reader) (Token, error) {
	if f.prefix == "" {
		return Token{}, fmt.Errorf("%w: zero Format, use NewFormat", ErrInvalidPrefix)
	}
	if r == nil {
		r = rand.Reader
	}
	var b strings.Builder
	b.Grow(len(f.prefix) + 1 + bodyLength)
	b.WriteString(f.prefix)
	b.WriteByte('_')

	var block [randomBlock]byte
	defer clear(block[:])
	need := SecretLength
	for blocks := 0; need > 0; blocks++ {
		if blocks == maxRandomBlocks {
			return Token{}, fmt.Errorf("apikey: random source yielded %d usable bytes in %d, want %d",
				SecretLength-need, maxRandomBlocks*randomBlock, SecretLength)
		}
		if _, err := io.ReadFull(r, block[:]); err != nil {
			return Token{}, fmt.Errorf("apikey: reading random source: %w", err)
		}
		for _, c := range block {
			if int(c) >= rejectFrom {
				continue
			}
			b.WriteByte(alphabet[int(c)%len(alphabet)])
			if need--; need == 0 {
				break
			}
		}
	}

	// b.String does not copy: the checksum is computed over the bytes written so far and then
	// appended to the same buffer, which Grow sized for the whole token.
	sum := encodeChecksum(checksum(b.String()))
	b.Write(sum[:])
	return Token{s: b.String(), sep: len(f.prefix)}, nil
}

// Len returns the length of every token of format f: the prefix, the
// separator, the secret and the checksum.
func (f Format) Len() int {
	return len(f.prefix) + 1 + bodyLength
}

// Parse parses s as a token of format f. It returns [ErrMalformed] or [ErrChecksum] as [Parse]
// does, and [ErrPrefix] for a valid token of another prefix. Like Parse it does not allocate.
func (f Format) Parse(s string) (Token, error) {
	t, err := Parse(s)
	if err != nil {
		return Token{}, err
	}
	if t.Prefix() != f.prefix {
		return Token{}, ErrPrefix
	}
	return t, nil
}

// Parse parses s as a token of any valid prefix. It returns [ErrMalformed] if s is not shaped like
// a token and [ErrChecksum] if its checksum does not match, so a typo or a random string is
// rejected without a storage lookup. Parse never panics, does not allocate (the Token refers to
// s), and returns its errors unwrapped; they never contain s.
func Parse(s string) (Token, error) {
	n := len(s)
	if n < minTokenLength || n > maxTokenLength {
		return Token{}, ErrMalformed
	}
	// The body contains no '_', so the last '_' is at a fixed distance from the end.
	sep := n - bodyLength - 1
	if s[sep] != '_' || !validPrefix(s[:sep]) {
		return Token{}, ErrMalformed
	}
	valid := true
	for i := sep + 1; i < n-ChecksumLength; i++ {
		valid = valid && isBase62(s[i])
	}
	if !valid {
		return Token{}, ErrMalformed
	}
	crc := checksum(s[:n-ChecksumLength])
	var want uint64
	for i := n - ChecksumLength; i < n; i++ {
		d, ok := base62Digit(s[i])
		if !ok {
			return Token{}, ErrMalformed
		}
		want = want*uint64(len(alphabet)) + uint64(d)
	}
	if want != uint64(crc) {
		return Token{}, ErrChecksum
	}
	return Token{s: s, sep: sep}, nil
}

// validPrefix reports whether p obeys the prefix rules of [NewFormat].
func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > maxPrefixLength || p[0] < 'a' || p[0] > 'z' || p[len(p)-1] == '_' {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// isBase62 reports whether c is a base62 character. Setting bit 0x20 maps 'A'..'Z' onto 'a'..'z'
// and no other byte into that range.
func isBase62(c byte) bool {
	return c-'0' < 10 || (c|0x20)-'a' < 26
}

// base62Digit returns the value of the base62 character c and whether c is one.
func base62Digit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'Z':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'z':
		return c - 'a' + 36, true
	}
	return 0, false
}

// checksum returns the CRC-32 (IEEE) of s. It hands crc32 a read-only view
// of the string's bytes instead of a copy, so that Parse does not allocate
// and gets the standard library's word-at-a-time CRC; crc32 neither keeps
// nor modifies its argument.
func checksum(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// encodeChecksum returns sum in base62, most significant digit first, left-padded with '0'.
func encodeChecksum(sum uint32) [ChecksumLength]byte {
	var out [ChecksumLength]byte
	v := uint64(sum)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = alphabet[v%uint64(len(alphabet))]
		v /= uint64(len(alphabet))
	}
	return out
}

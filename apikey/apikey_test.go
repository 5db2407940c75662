package apikey_test

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
)

// testAlphabet is base62 in digit order, written out independently of the package.
const testAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// anchoredPattern matches a whole string against apikey.Pattern.
var anchoredPattern = regexp.MustCompile(`^(?:` + apikey.Pattern + `)$`)

// withChecksum appends to text (prefix, '_', secret) its checksum, computed independently of the
// package with hash/crc32 and a plain base62 encoder.
func withChecksum(text string) string {
	v := crc32.ChecksumIEEE([]byte(text))
	var enc [6]byte
	for i := 5; i >= 0; i-- {
		enc[i] = testAlphabet[v%62]
		v /= 62
	}
	return text + string(enc[:])
}

// flip returns s with its byte at i replaced by another base62 character.
func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// leadingZeroChecksum returns a valid token whose checksum starts with the padding '0'.
func leadingZeroChecksum(t testing.TB) string {
	t.Helper()
	for i := range 1000 {
		s := withChecksum("kg_" + strings.Repeat("1", 40) + string(testAlphabet[i/62%62]) + string(testAlphabet[i%62]) + "2")
		if s[len(s)-6] == '0' {
			return s
		}
	}
	t.Fatal("no checksum with a leading zero in 1000 tries")
	return ""
}

// newFormat returns the Format for prefix or fails the test.
func newFormat(t testing.TB, prefix string) apikey.Format {
	t.Helper()
	f, err := apikey.NewFormat(prefix)
	if err != nil {
		t.Fatalf("NewFormat(%q): got error %v, want nil", prefix, err)
	}
	return f
}

// seeded returns a deterministic random source.
func seeded(seed byte) io.Reader {
	return rand.NewChaCha8([32]byte{seed})
}

// generate returns a token of prefix drawn from seeded(seed) or fails the test.
func generate(t testing.TB, prefix string, seed byte) apikey.Token {
	t.Helper()
	tok, err := newFormat(t, prefix).GenerateFrom(seeded(seed))
	if err != nil {
		t.Fatalf("GenerateFrom: got error %v, want nil", err)
	}
	return tok
}

// cycle is an endless reader repeating its bytes.
type cycle struct {
	b []byte
	i int
}

func (c *cycle) Read(p []byte) (int, error) {
	for k := range p {
		p[k] = c.b[c.i%len(c.b)]
		c.i++
	}
	return len(p), nil
}

func TestNewFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"kg", true},
		{"a", true},
		{"acme_live", true},
		{"a1", true},
		{"a__b", true},
		{"z0123456789abcdefghijklmnopqrstu", true}, // 32 characters
		{"", false},
		{"Kg", false},
		{"kG", false},
		{"1kg", false},
		{"_kg", false},
		{"kg_", false},
		{"k-g", false},
		{"k.g", false},
		{"kg ", false},
		{"ké", false},
		{"z0123456789abcdefghijklmnopqrstuv", false}, // 33 characters
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			t.Parallel()
			f, err := apikey.NewFormat(tt.prefix)
			if !tt.ok {
				if !errors.Is(err, apikey.ErrInvalidPrefix) {
					t.Fatalf("NewFormat(%q): got error %v, want ErrInvalidPrefix", tt.prefix, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewFormat(%q): got error %v, want nil", tt.prefix, err)
			}
			if got := f.Prefix(); got != tt.prefix {
				t.Errorf("Prefix(): got %q, want %q", got, tt.prefix)
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	kg := generate(t, "kg", 1).Reveal()
	secret := kg[3 : 3+apikey.SecretLength]
	long := generate(t, "z0123456789abcdefghijklmnopqrstu", 2).Reveal()
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"valid kg", kg, nil},
		{"valid acme_live", generate(t, "acme_live", 3).Reveal(), nil},
		{"valid one-letter prefix", generate(t, "a", 4).Reveal(), nil},
		{"valid 32-character prefix", long, nil},
		{"valid prefix with digits and double underscore", withChecksum("a1__2_" + secret), nil},
		{"valid checksum with a leading zero", leadingZeroChecksum(t), nil},
		{"empty", "", apikey.ErrMalformed},
		{"prefix only", "kg_", apikey.ErrMalformed},
		{"one character short", kg[:len(kg)-1], apikey.ErrMalformed},
		{"one character long", kg + "0", apikey.ErrMalformed},
		{"secret one character long", withChecksum("kg_" + secret + "0"), apikey.ErrMalformed},
		{"secret one character short", withChecksum("kg_" + secret[1:]), apikey.ErrMalformed},
		{"too long overall", "a" + long, apikey.ErrMalformed},
		{"missing separator", withChecksum("kgx" + secret), apikey.ErrMalformed},
		{"no prefix", withChecksum("_" + secret), apikey.ErrMalformed},
		{"leading space", " " + kg, apikey.ErrMalformed},
		{"trailing newline", kg + "\n", apikey.ErrMalformed},
		{"uppercase prefix", withChecksum("KG_" + secret), apikey.ErrMalformed},
		{"prefix starts with digit", withChecksum("1kg_" + secret), apikey.ErrMalformed},
		{"prefix starts with underscore", withChecksum("_kg_" + secret), apikey.ErrMalformed},
		{"prefix ends with underscore", withChecksum("kg__" + secret), apikey.ErrMalformed},
		{"prefix with hyphen", withChecksum("k-g_" + secret), apikey.ErrMalformed},
		{"33-character prefix", withChecksum("z0123456789abcdefghijklmnopqrstuv_" + secret), apikey.ErrMalformed},
		{"hyphen in secret", withChecksum("kg_-" + secret[1:]), apikey.ErrMalformed},
		{"underscore in secret", withChecksum("kg_" + secret[:20] + "_" + secret[21:]), apikey.ErrMalformed},
		{"base64 character in secret", withChecksum("kg_" + secret[:42] + "+"), apikey.ErrMalformed},
		{"non-ASCII in secret", withChecksum("kg_é" + secret[2:]), apikey.ErrMalformed},
		{"NUL in secret", withChecksum("kg_\x00" + secret[1:]), apikey.ErrMalformed},
		{"bad character in checksum", kg[:len(kg)-1] + "=", apikey.ErrMalformed},
		{"flipped first secret character", flip(kg, 3), apikey.ErrChecksum},
		{"flipped last secret character", flip(kg, 3+apikey.SecretLength-1), apikey.ErrChecksum},
		{"flipped checksum character", flip(kg, len(kg)-1), apikey.ErrChecksum},
		{"flipped prefix character", "kh" + kg[2:], apikey.ErrChecksum},
		{"case changed", kg[:3] + strings.ToUpper(kg[3:4]) + strings.ToLower(kg[4:]), apikey.ErrChecksum},
		{"adjacent characters swapped", kg[:10] + kg[11:12] + kg[10:11] + kg[12:], apikey.ErrChecksum},
		{"checksum above 32 bits", "kg_" + secret + "zzzzzz", apikey.ErrChecksum},
		{"random base62 body", "kg_" + strings.Repeat("x", 49), apikey.ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := apikey.Parse(tt.in)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Parse(%q): got error %v, want %v", tt.in, err, tt.want)
			}
			if err != nil {
				if !tok.IsZero() {
					t.Errorf("Parse(%q) failed but returned non-zero token", tt.in)
				}
				if strings.Contains(err.Error(), tt.in) && tt.in != "" {
					t.Errorf("Parse(%q): error %q contains the input", tt.in, err)
				}
				return
			}
			if got := tok.Reveal(); got != tt.in {
				t.Errorf("Reveal(): got %q, want %q", got, tt.in)
			}
			if got, want := tok.Prefix(), tt.in[:strings.LastIndexByte(tt.in, '_')]; got != want {
				t.Errorf("Prefix(): got %q, want %q", got, want)
			}
			if !anchoredPattern.MatchString(tt.in) {
				t.Errorf("Pattern does not match valid token %q", tt.in)
			}
		})
	}
}

func TestFormatParse(t *testing.T) {
	t.Parallel()
	kg := generate(t, "kg", 5).Reveal()
	acme := generate(t, "acme_live", 6).Reveal()
	tests := []struct {
		name   string
		prefix string
		in     string
		want   error
	}{
		{"own prefix", "kg", kg, nil},
		{"own longer prefix", "acme_live", acme, nil},
		{"other prefix", "kg", acme, apikey.ErrPrefix},
		{"prefix of the prefix", "acme", acme, apikey.ErrPrefix},
		{"longer prefix", "kgx", kg, apikey.ErrPrefix},
		{"malformed", "kg", kg[:len(kg)-1], apikey.ErrMalformed},
		{"bad checksum wins over other prefix", "kg", flip(acme, len(acme)-1), apikey.ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := newFormat(t, tt.prefix).Parse(tt.in)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Format(%q).Parse(%q): got error %v, want %v", tt.prefix, tt.in, err, tt.want)
			}
			if err == nil && tok.Reveal() != tt.in {
				t.Errorf("Reveal(): got %q, want %q", tok.Reveal(), tt.in)
			}
			if err != nil && !tok.IsZero() {
				t.Errorf("Format.Parse failed but returned a non-zero token")
			}
		})
	}

	var zero apikey.Format
	if _, err := zero.Parse(kg); !errors.Is(err, apikey.ErrPrefix) {
		t.Errorf("zero Format Parse: got error %v, want ErrPrefix", err)
	}
}

// TestParseDetectsEverySubstitution replaces each character of valid tokens by every other byte
// value: Parse must reject all of them.
func TestParseDetectsEverySubstitution(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"kg", "acme_live", "z0123456789abcdefghijklmnopqrstu"} {
		t.Run(prefix, func(t *testing.T) {
			t.Parallel()
			valid := generate(t, prefix, 7).Reveal()
			b := []byte(valid)
			for i := range b {
				orig := b[i]
				for c := range 256 {
					if byte(c) == orig {
						continue
					}
					b[i] = byte(c)
					if _, err := apikey.Parse(string(b)); err == nil {
						t.Fatalf("Parse accepted %q, a substitution at %d of %q", b, i, valid)
					}
				}
				b[i] = orig
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{apikey.DefaultPrefix, "acme_live", "a"} {
		t.Run(prefix, func(t *testing.T) {
			t.Parallel()
			f := newFormat(t, prefix)
			own := regexp.MustCompile(`^(?:` + f.Pattern() + `)$`)
			seen := make(map[string]bool)
			for range 200 {
				tok, err := f.Generate()
				if err != nil {
					t.Fatalf("Generate: got error %v, want nil", err)
				}
				s := tok.Reveal()
				if seen[s] {
					t.Fatalf("Generate returned %q twice", s)
				}
				seen[s] = true
				if got, want := len(s), len(prefix)+1+apikey.SecretLength+apikey.ChecksumLength; got != want {
					t.Fatalf("len(%q): got %d, want %d", s, got, want)
				}
				if !anchoredPattern.MatchString(s) || !own.MatchString(s) {
					t.Fatalf("%q does not match Pattern or Format.Pattern", s)
				}
				if got := withChecksum(s[:len(s)-apikey.ChecksumLength]); got != s {
					t.Fatalf("checksum: got %q, want %q", s, got)
				}
				back, err := f.Parse(s)
				if err != nil || back != tok {
					t.Fatalf("Parse(Generate()): got %q, %v, want the same token", back.Reveal(), err)
				}
				if got := tok.Prefix(); got != prefix {
					t.Fatalf("Prefix(): got %q, want %q", got, prefix)
				}
			}
		})
	}
}

func TestPatternFindsTokensInText(t *testing.T) {
	t.Parallel()
	tok := generate(t, "acme_live", 8).Reveal()
	kg := generate(t, "kg", 8).Reveal()
	re := regexp.MustCompile(apikey.Pattern)
	tests := []struct {
		text string
		want string
	}{
		{"Authorization: Bearer " + tok + "\r\n", tok},
		{`{"key":"` + tok + `"}`, tok},
		{"API_KEY=" + tok, tok},
		{"-" + tok + ".", tok},
		{tok + "_x", ""},     // glued to a longer word
		{tok + "0", ""},      // body too long
		{tok[:50], ""},       // body too short
		{"KG_" + kg[3:], ""}, // uppercase prefix
	}
	for _, tt := range tests {
		if got := re.FindString(tt.text); got != tt.want {
			t.Errorf("FindString(%q): got %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestGenerateFromIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := generate(t, "kg", 9), generate(t, "kg", 9)
	if a.Reveal() != b.Reveal() {
		t.Errorf("same seed: got %q and %q, want equal tokens", a.Reveal(), b.Reveal())
	}
	if c := generate(t, "kg", 10); c.Reveal() == a.Reveal() {
		t.Errorf("different seeds: got %q twice, want different tokens", c.Reveal())
	}
}

// TestGenerateFromAlgorithm pins the mapping from random bytes to secret characters.
func TestGenerateFromAlgorithm(t *testing.T) {
	t.Parallel()
	counting := make([]byte, 256)
	for i := range counting {
		counting[i] = byte(i)
	}
	tests := []struct {
		name   string
		stream []byte
		secret string
	}{
		{"identity on the first 43 values", counting, testAlphabet[:43]},
		{"values wrap modulo 62", []byte{62, 124, 186, 61, 123, 185, 247}, strings.Repeat("000zzzz", 7)[:43]},
		{"bytes from 248 are skipped", []byte{248, 255, 5, 250, 251, 252, 253, 254, 249}, strings.Repeat("5", 43)},
		{"spans several blocks", append(bytes.Repeat([]byte{255}, 100), bytes.Repeat([]byte{1}, 100)...), strings.Repeat("1", 43)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := newFormat(t, "kg").GenerateFrom(&cycle{b: tt.stream})
			if err != nil {
				t.Fatalf("GenerateFrom: got error %v, want nil", err)
			}
			if want := withChecksum("kg_" + tt.secret); tok.Reveal() != want {
				t.Errorf("GenerateFrom: got %q, want %q", tok.Reveal(), want)
			}
		})
	}
}

// TestGenerateFromGolden pins one complete token so that a change of format is noticed.
func TestGenerateFromGolden(t *testing.T) {
	t.Parallel()
	tok, err := newFormat(t, "kg").GenerateFrom(seeded(0))
	if err != nil {
		t.Fatalf("GenerateFrom: got error %v, want nil", err)
	}
	const want = "kg_VB2KlsEmQn3YCdDjRVd03bUeiZiAUOsFkOnHZwvEwMY0qz0kN"
	if got := tok.Reveal(); got != want {
		t.Errorf("GenerateFrom(ChaCha8 seed 0): got %q, want %q", got, want)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestGenerateFromErrors(t *testing.T) {
	t.Parallel()
	errBroken := errors.New("broken source")
	kg := newFormat(t, "kg")
	tests := []struct {
		name   string
		format apikey.Format
		r      io.Reader
		want   error // nil: any error
	}{
		{"zero Format", apikey.Format{}, seeded(1), apikey.ErrInvalidPrefix},
		{"reader error", kg, failingReader{errBroken}, errBroken},
		{"short reader", kg, bytes.NewReader(make([]byte, 10)), io.ErrUnexpectedEOF},
		{"only rejected bytes", kg, &cycle{b: []byte{248, 255}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := tt.format.GenerateFrom(tt.r)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("GenerateFrom: got error %v, want %v", err, tt.want)
			}
			if !tok.IsZero() {
				t.Errorf("GenerateFrom failed but returned a non-zero token")
			}
		})
	}

	if _, err := (apikey.Format{}).Generate(); !errors.Is(err, apikey.ErrInvalidPrefix) {
		t.Errorf("zero Format Generate: got error %v, want ErrInvalidPrefix", err)
	}
	if tok, err := kg.GenerateFrom(nil); err != nil || tok.IsZero() {
		t.Errorf("GenerateFrom(nil): got %v, %v, want a token from crypto/rand", tok, err)
	}
}

// TestSecretDistribution is a chi-square check that secret characters are uniform. The source is
// seeded, so the result is reproducible; a modulo-biased mapping scores over 600.
func TestSecretDistribution(t *testing.T) {
	t.Parallel()
	f := newFormat(t, "kg")
	r := seeded(11)
	var counts [62]int
	const tokens = 2000
	for range tokens {
		tok, err := f.GenerateFrom(r)
		if err != nil {
			t.Fatalf("GenerateFrom: got error %v, want nil", err)
		}
		for _, c := range []byte(tok.Reveal()[3 : 3+apikey.SecretLength]) {
			counts[strings.IndexByte(testAlphabet, c)]++
		}
	}
	expected := float64(tokens*apikey.SecretLength) / 62
	var chi2 float64
	for _, n := range counts {
		d := float64(n) - expected
		chi2 += d * d / expected
	}
	// 61 degrees of freedom: mean 61, and P(chi2 > 110) is about 1e-4.
	if chi2 > 110 {
		t.Errorf("chi-square of secret characters: got %.1f, want <= 110 (counts %v)", chi2, counts)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	// Not parallel: AllocsPerRun counts every allocation in the process.
	kg := newFormat(t, "kg")
	valid := generate(t, "kg", 12).Reveal()
	flipped := flip(valid, 10)
	tests := []struct {
		name string
		fn   func()
	}{
		{"Parse valid", func() { _, _ = apikey.Parse(valid) }},
		{"Parse bad checksum", func() { _, _ = apikey.Parse(flipped) }},
		{"Parse malformed", func() { _, _ = apikey.Parse(valid[1:]) }},
		{"Format.Parse valid", func() { _, _ = kg.Parse(valid) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.fn); got != 0 {
				t.Errorf("allocations: got %v, want 0", got)
			}
		})
	}
}

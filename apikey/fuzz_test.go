package apikey_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
)

// addSeeds adds valid tokens and near misses to the corpus of f.
func addSeeds(f *testing.F, add func(s string)) {
	f.Helper()
	for i, prefix := range []string{"kg", "acme_live", "a", "z0123456789abcdefghijklmnopqrstu"} {
		valid := generate(f, prefix, byte(100+i)).Reveal()
		add(valid)
		add(flip(valid, len(valid)-1))
		add(flip(valid, len(prefix)+1))
		add(valid[1:])
		add(valid[:len(valid)-1])
		add(valid + "0")
		add(strings.ToUpper(valid))
		add(strings.Replace(valid, "_", "-", 1))
	}
	for _, s := range []string{"", "_", "kg_", "kg__" + strings.Repeat("0", 49), "kg_" + strings.Repeat("z", 49), "\xff\xfe", "é_" + strings.Repeat("a", 49)} {
		add(s)
	}
}

// FuzzParse checks that Parse never panics, agrees with Pattern on what is well-formed, and that
// every accepted token round-trips.
func FuzzParse(f *testing.F) {
	addSeeds(f, func(s string) { f.Add(s) })
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := apikey.Parse(s)
		shaped := anchoredPattern.MatchString(s)
		if err != nil {
			switch {
			case !tok.IsZero():
				t.Fatalf("Parse(%q) failed with %v but returned a non-zero token", s, err)
			case errors.Is(err, apikey.ErrChecksum) && !shaped:
				t.Fatalf("Parse(%q): got ErrChecksum for text Pattern rejects, want ErrMalformed", s)
			case errors.Is(err, apikey.ErrMalformed) && shaped:
				t.Fatalf("Parse(%q): got ErrMalformed for text Pattern matches", s)
			case !errors.Is(err, apikey.ErrChecksum) && !errors.Is(err, apikey.ErrMalformed):
				t.Fatalf("Parse(%q): got unexpected error %v", s, err)
			}
			return
		}
		if !shaped {
			t.Fatalf("Parse accepted %q, which Pattern does not match", s)
		}
		if tok.Reveal() != s {
			t.Fatalf("Reveal(): got %q, want %q", tok.Reveal(), s)
		}
		if got := withChecksum(s[:len(s)-apikey.ChecksumLength]); got != s {
			t.Fatalf("re-encoding %q: got %q", s, got)
		}
		if got, want := tok.Prefix(), s[:strings.LastIndexByte(s, '_')]; got != want {
			t.Fatalf("Prefix(): got %q, want %q", got, want)
		}
		if again, err := newFormat(t, tok.Prefix()).Parse(s); err != nil || again != tok {
			t.Fatalf("Format(%q).Parse(%q): got %v, want the token", tok.Prefix(), s, err)
		}
	})
}

// FuzzFormatParse checks that Format.Parse agrees with Parse plus a prefix comparison.
func FuzzFormatParse(f *testing.F) {
	addSeeds(f, func(s string) {
		f.Add("kg", s)
		f.Add("acme_live", s)
	})
	f.Fuzz(func(t *testing.T, prefix, s string) {
		format, err := apikey.NewFormat(prefix)
		if err != nil {
			return
		}
		got, gotErr := format.Parse(s)
		want, wantErr := apikey.Parse(s)
		switch {
		case wantErr != nil:
			if !errors.Is(gotErr, wantErr) {
				t.Fatalf("Format(%q).Parse(%q): got error %v, want %v", prefix, s, gotErr, wantErr)
			}
		case want.Prefix() != prefix:
			if !errors.Is(gotErr, apikey.ErrPrefix) {
				t.Fatalf("Format(%q).Parse(%q): got error %v, want ErrPrefix", prefix, s, gotErr)
			}
		case gotErr != nil || got != want:
			t.Fatalf("Format(%q).Parse(%q): got %v, want the token", prefix, s, gotErr)
		}
	})
}

// FuzzGenerateFrom checks that GenerateFrom succeeds exactly when the first 512 bytes of the
// stream hold enough usable bytes, and that what it generates parses back.
func FuzzGenerateFrom(f *testing.F) {
	f.Add("kg", []byte{0, 1, 2, 255})
	f.Add("acme_live", []byte("random"))
	f.Add("kg", append(make([]byte, 5), bytes.Repeat([]byte{250}, 60)...))
	f.Fuzz(func(t *testing.T, prefix string, stream []byte) {
		format, err := apikey.NewFormat(prefix)
		if err != nil || len(stream) == 0 {
			return
		}
		usable := 0
		for i := range 512 {
			if stream[i%len(stream)] < 248 {
				usable++
			}
		}
		tok, err := format.GenerateFrom(&cycle{b: stream})
		if (err == nil) != (usable >= apikey.SecretLength) {
			t.Fatalf("GenerateFrom with %d usable bytes in 512: got error %v", usable, err)
		}
		if err != nil {
			return
		}
		if back, err := format.Parse(tok.Reveal()); err != nil || back != tok {
			t.Fatalf("Parse(GenerateFrom()): got error %v, want the token %q", err, tok.Reveal())
		}
	})
}

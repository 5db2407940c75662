package apikey_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
)

// FuzzParseImported: an imported token is the text given, prints
// redacted, and its hint leaves at least 12 characters out.
func FuzzParseImported(f *testing.F) {
	for _, s := range []string{"sk_live_4eC39HqLyjWDarjtT1zdp7dc", "0123456789abcdef", strings.Repeat("a", 32) + "_abcdefghijklmnop", "x y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := apikey.ParseImported(s)
		if err != nil {
			if !errors.Is(err, apikey.ErrMalformed) {
				t.Fatalf("ParseImported(%q): %v, want ErrMalformed", s, err)
			}
			return
		}
		if tok.Reveal() != s {
			t.Fatalf("Reveal = %q, want %q", tok.Reveal(), s)
		}
		hint := strings.TrimSuffix(tok.Hint(), "…")
		if !strings.HasPrefix(s, hint) || len(s)-len(hint) < 12 {
			t.Fatalf("hint %q of %q leaves fewer than 12 characters out", tok.Hint(), s)
		}
		if printed := fmt.Sprintf("%v %s %+v %#v", tok, tok, tok, tok); strings.Contains(printed, s) {
			t.Fatalf("the token prints whole: %s", printed)
		}
		if p := tok.Prefix(); p != "" && !strings.HasPrefix(s, p) {
			t.Fatalf("prefix %q is not the start of %q", p, s)
		}
	})
}

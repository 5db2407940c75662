package redact_test

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/redact"
)

func TestQuote(t *testing.T) {
	t.Parallel()
	format, _ := apikey.NewFormat("kg")
	tok, _ := format.Generate()
	secret := tok.Reveal()[3:]
	for _, s := range []string{tok.Reveal(), secret, secret[:20], "x" + secret[10:30] + "y", strings.Repeat("a", redact.MaxQuoted+1)} {
		if redact.Safe(s) || strings.Contains(redact.Quote(s), s) {
			t.Errorf("%q may be quoted", s)
		}
	}
	for _, s := range []string{"", "viewer", "billing:write", "app/payments-service:deploy", "2026-12-31", "30d", "unknown role x"} {
		if !redact.Safe(s) || redact.Quote(s) != `"`+s+`"` && s != "" {
			t.Errorf("%q: Quote = %s, want it quoted", s, redact.Quote(s))
		}
	}
}

func FuzzQuote(f *testing.F) {
	f.Add("kg_" + strings.Repeat("A", 49))
	f.Add("billing:write")
	f.Fuzz(func(t *testing.T, s string) {
		q := redact.Quote(s)
		if !redact.Safe(s) && strings.Contains(q, s) && s != "" {
			t.Fatalf("Quote(%q) = %s repeats an unsafe value", s, q)
		}
		run := 0
		for _, r := range q {
			if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
				run++
			} else {
				run = 0
			}
			if run > 15 {
				t.Fatalf("Quote(%q) = %s holds a run of %d letters and digits", s, q, run)
			}
		}
	})
}

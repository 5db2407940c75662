package apikey_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
)

// assertNoSecret fails the test if out contains any 6-character run of the part of tok's secret
// that Hint does not show, in plain text or in hex.
func assertNoSecret(t *testing.T, out string, tok apikey.Token) {
	t.Helper()
	s := tok.Reveal()
	hidden := s[len(tok.Prefix())+1+4:]
	for i := 0; i+6 <= len(hidden); i++ {
		w := hidden[i : i+6]
		for _, enc := range []string{w, hex.EncodeToString([]byte(w)), strings.ToUpper(hex.EncodeToString([]byte(w)))} {
			if strings.Contains(out, enc) {
				t.Fatalf("output %q leaks secret fragment %q", out, enc)
			}
		}
	}
	if !strings.Contains(out, "REDACTED") && !strings.Contains(out, hex.EncodeToString([]byte("REDACTED"))) &&
		!strings.Contains(out, strings.ToUpper(hex.EncodeToString([]byte("REDACTED")))) {
		t.Fatalf("output %q: want a REDACTED marker", out)
	}
}

func TestTokenRedactsInFmt(t *testing.T) {
	t.Parallel()
	tok := generate(t, "kg", 20)
	type holder struct {
		Name  string
		Token apikey.Token
		Ptr   *apikey.Token
	}
	h := holder{Name: "n", Token: tok, Ptr: &tok}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10v", "%-60s", "%T %v"}
	values := map[string]any{
		"value":   tok,
		"pointer": &tok,
		"struct":  h,
		"slice":   []apikey.Token{tok},
		"map":     map[string]apikey.Token{"k": tok},
	}
	for name, v := range values {
		for _, verb := range verbs {
			t.Run(name+" "+verb, func(t *testing.T) {
				t.Parallel()
				var out string
				if strings.HasPrefix(verb, "%T") {
					out = fmt.Sprintf(verb, v, v)
				} else {
					out = fmt.Sprintf(verb, v)
				}
				assertNoSecret(t, out, tok)
			})
		}
	}
	for name, got := range map[string]string{
		"String":   tok.String(),
		"GoString": tok.GoString(),
		"Sprint":   fmt.Sprint(tok),
		"Sprintln": fmt.Sprintln(tok),
		"Errorf":   fmt.Errorf("bad key %v", tok).Error(),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assertNoSecret(t, got, tok)
		})
	}
}

func TestTokenRedactedForms(t *testing.T) {
	t.Parallel()
	tok := generate(t, "acme_live", 21)
	s := tok.Reveal()
	hint := "acme_live_" + s[10:14] + "…"
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"Hint", tok.Hint(), hint},
		{"String", tok.String(), hint + "[REDACTED]"},
		{"%v", fmt.Sprintf("%v", tok), hint + "[REDACTED]"},
		{"%q", fmt.Sprintf("%q", tok), `"` + hint + `[REDACTED]"`},
		{"%#v", fmt.Sprintf("%#v", tok), `apikey.Token("` + hint + `[REDACTED]")`},
		{"%d", fmt.Sprintf("%d", tok), "%!d(" + hint + "[REDACTED])"},
		{"zero String", apikey.Token{}.String(), ""},
		{"zero Hint", apikey.Token{}.Hint(), ""},
		{"zero Prefix", apikey.Token{}.Prefix(), ""},
		{"zero Reveal", apikey.Token{}.Reveal(), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if !(apikey.Token{}).IsZero() || tok.IsZero() {
		t.Errorf("IsZero: got zero %v, generated %v; want true, false", apikey.Token{}.IsZero(), tok.IsZero())
	}
}

func TestTokenRedactsInSlog(t *testing.T) {
	t.Parallel()
	tok := generate(t, "kg", 22)
	type request struct {
		Path  string
		Token apikey.Token
	}
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	}
	for name, newHandler := range handlers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger := slog.New(newHandler(&buf))
			logger.Info("request", "token", tok, "ptr", &tok, slog.Any("req", request{"/x", tok}),
				slog.Group("g", "token", tok))
			assertNoSecret(t, buf.String(), tok)
			if want := tok.Hint() + "[REDACTED]"; strings.Count(buf.String(), want) < 4 {
				t.Errorf("log %q: want %q at least 4 times", buf.String(), want)
			}
		})
	}
}

func TestTokenRedactsInJSON(t *testing.T) {
	t.Parallel()
	tok := generate(t, "kg", 23)
	type record struct {
		Token   apikey.Token  `json:"token"`
		Ptr     *apikey.Token `json:"ptr"`
		Missing apikey.Token  `json:"missing,omitzero"`
	}
	got, err := json.Marshal(record{Token: tok, Ptr: &tok})
	if err != nil {
		t.Fatalf("json.Marshal: got error %v, want nil", err)
	}
	want := `{"token":"` + tok.Hint() + `[REDACTED]","ptr":"` + tok.Hint() + `[REDACTED]"}`
	if string(got) != want {
		t.Errorf("json.Marshal: got %s, want %s", got, want)
	}

	keys, err := json.Marshal(map[apikey.Token]int{tok: 1})
	if err != nil {
		t.Fatalf("json.Marshal map: got error %v, want nil", err)
	}
	assertNoSecret(t, string(keys), tok)

	text, err := tok.MarshalText()
	if err != nil || string(text) != tok.String() {
		t.Errorf("MarshalText: got %q, %v, want %q, nil", text, err, tok.String())
	}
}

func TestPepperRedacts(t *testing.T) {
	t.Parallel()
	key := []byte("pepper-key-0123456789abcdefghijk")
	p := apikey.Pepper{ID: "2025-01", Key: key}
	type config struct {
		Name   string
		Pepper apikey.Pepper
	}
	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs["value "+verb] = fmt.Sprintf(verb, p)
		outs["pointer "+verb] = fmt.Sprintf(verb, &p)
		outs["struct "+verb] = fmt.Sprintf(verb, config{"c", p})
	}
	outs["String"] = p.String()
	outs["GoString"] = p.GoString()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "pepper", p, "ptr", &p)
	outs["slog"] = logged.String()
	js, err := json.Marshal(config{"c", p})
	if err != nil {
		t.Fatalf("json.Marshal: got error %v, want nil", err)
	}
	outs["json"] = string(js)

	leaks := []string{
		string(key[:8]),
		hex.EncodeToString(key[:8]), strings.ToUpper(hex.EncodeToString(key[:8])),
		base64.StdEncoding.EncodeToString(key)[:8],
		strings.Trim(fmt.Sprint([]byte(key[:4])), "[]"),
	}
	for name, out := range outs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, leak := range leaks {
				if strings.Contains(out, leak) {
					t.Fatalf("output %q leaks key fragment %q", out, leak)
				}
			}
			if !strings.Contains(out, "2025-01") && !strings.Contains(out, hex.EncodeToString([]byte("2025-01"))) &&
				!strings.Contains(out, strings.ToUpper(hex.EncodeToString([]byte("2025-01")))) {
				t.Errorf("output %q: want the pepper ID", out)
			}
		})
	}
	if got, want := string(js), `{"Name":"c","Pepper":{"id":"2025-01","key":"[REDACTED]"}}`; got != want {
		t.Errorf("json.Marshal: got %s, want %s", got, want)
	}
	if got, want := fmt.Sprintf("%#v", p), `apikey.Pepper{ID:"2025-01", Key:[REDACTED]}`; got != want {
		t.Errorf("%%#v: got %s, want %s", got, want)
	}
}

func TestParseImported(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]struct{ prefix, hint string }{
		"sk_live_4eC39HqLyjWDarjtT1zdp7dc": {"sk_live", "sk_live_4eC3…"},
		"ghp-0123456789abcdefghij":         {"ghp", "ghp-0123…"},
		"0123456789abcdefABCDEF":           {"", "0123…"},
	} {
		tok, err := apikey.ParseImported(in)
		if err != nil {
			t.Fatalf("ParseImported(%q): %v", in, err)
		}
		if tok.Reveal() != in || tok.Prefix() != want.prefix || tok.Hint() != want.hint {
			t.Errorf("ParseImported(%q): prefix %q hint %q, want %q %q", in, tok.Prefix(), tok.Hint(), want.prefix, want.hint)
		}
		if s := fmt.Sprint(tok); strings.Contains(s, in) || !strings.HasSuffix(s, "[REDACTED]") {
			t.Errorf("an imported token prints as %q", s)
		}
	}
	for _, bad := range []string{"", "short", "has a space in it here", "tab\tinside_the_token_text", strings.Repeat("x", 257), "ünïcode-not-ascii-at-all"} {
		if _, err := apikey.ParseImported(bad); !errors.Is(err, apikey.ErrMalformed) {
			t.Errorf("ParseImported(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

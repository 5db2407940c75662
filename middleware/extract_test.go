package middleware_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/middleware"
)

func TestExtractors(t *testing.T) {
	t.Parallel()
	const tok = "kg_abcDEF123"
	apiKey := middleware.AuthorizationScheme("Api-Key")
	bearer := middleware.AuthorizationScheme("Bearer")
	header := middleware.Header("X-API-Key")
	query := middleware.Query("api_key")
	tests := []struct {
		name    string
		ex      middleware.Extractor
		req     *http.Request
		want    string
		wantErr bool
	}{
		{"api-key", apiKey, get("/", "Authorization", "Api-Key "+tok), tok, false},
		{"api-key lower case scheme", apiKey, get("/", "Authorization", "api-key "+tok), tok, false},
		{"api-key upper case scheme", apiKey, get("/", "Authorization", "API-KEY "+tok), tok, false},
		{"extra spaces and tabs", apiKey, get("/", "Authorization", " \tApi-Key  \t "+tok+"  "), tok, false},
		{"token68 padding", bearer, get("/", "Authorization", "Bearer abc+/~-._=="), "abc+/~-._==", false},
		{"other scheme", apiKey, get("/", "Authorization", "Bearer "+tok), "", false},
		{"Kelvin sign is not k", apiKey, get("/", "Authorization", "Api-\u212Aey "+tok), "", false},
		{"scheme prefix only", apiKey, get("/", "Authorization", "Api-Keyx "+tok), "", false},
		{"no header", apiKey, get("/"), "", false},
		{"empty header", bearer, get("/", "Authorization", ""), "", false},
		{"scheme without credential", bearer, get("/", "Authorization", "Bearer"), "", true},
		{"scheme with spaces only", bearer, get("/", "Authorization", "Bearer   "), "", true},
		{"two credentials", bearer, get("/", "Authorization", "Bearer a b"), "", true},
		{"comma list", bearer, get("/", "Authorization", "Bearer a, Api-Key b"), "", true},
		{"only padding", bearer, get("/", "Authorization", "Bearer =="), "", true},
		{"padding inside", bearer, get("/", "Authorization", "Bearer a=b"), "", true},
		{"non-ASCII", bearer, get("/", "Authorization", "Bearer kg_é"), "", true},
		{"too long", bearer, get("/", "Authorization", "Bearer "+strings.Repeat("a", 1025)), "", true},
		{"two Authorization fields", bearer, get("/", "Authorization", "Bearer "+tok, "Authorization", "Bearer "+tok), "", true},
		{"two Authorization fields, other scheme", apiKey, get("/", "Authorization", "Basic eA==", "Authorization", "Bearer "+tok), "", true},
		{"header", header, get("/", "X-API-Key", tok), tok, false},
		{"header name case", header, get("/", "x-api-key", tok), tok, false},
		{"header trimmed", header, get("/", "X-API-Key", "  "+tok+"\t"), tok, false},
		{"header absent", header, get("/"), "", false},
		{"header empty", header, get("/", "X-API-Key", ""), "", true},
		{"header repeated", header, get("/", "X-API-Key", tok, "X-API-Key", tok), "", true},
		{"header with space", header, get("/", "X-API-Key", "a b"), "", true},
		{"header of another system's token", header, get("/", "X-API-Key", `legacy:Ab!#$%&'()*+./;<=>?@[\]^{|}~"x`), `legacy:Ab!#$%&'()*+./;<=>?@[\]^{|}~"x`, false},
		{"header with comma", header, get("/", "X-API-Key", "a,b"), "", true},
		{"header with control character", header, get("/", "X-API-Key", "a\x01b"), "", true},
		{"header non-ASCII", header, get("/", "X-API-Key", "kg_é"), "", true},
		{"header only padding", header, get("/", "X-API-Key", "=="), "", true},
		{"Authorization still token68", bearer, get("/", "Authorization", "Bearer legacy:abc"), "", true},
		{"query of another system's token", query, get("/?api_key=legacy%3Aab%21"), "legacy:ab!", false},
		{"query", query, get("/?api_key=" + tok), tok, false},
		{"query absent", query, get("/?other=1"), "", false},
		{"query none", query, get("/"), "", false},
		{"query empty", query, get("/?api_key="), "", true},
		{"query repeated", query, get("/?api_key=a&api_key=b"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.ex(tt.req)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, middleware.ErrMalformedCredential) {
				t.Errorf("error %v does not match ErrMalformedCredential", err)
			}
			if err != nil && strings.Contains(err.Error(), tok) {
				t.Errorf("error %q holds the credential", err)
			}
		})
	}
}

// TestExtractorOrder checks how the extractors of a Middleware combine.
func TestExtractorOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		extractors []middleware.Extractor
		req        *http.Request
		want       string // token the verifier sees; "" for none
		code       string // problem code when refused
	}{
		{name: "defaults ignore the query", req: get("/?api_key=q"), code: middleware.CodeMissing},
		{name: "defaults ignore Basic", req: get("/", "Authorization", "Basic eDp5"), code: middleware.CodeMissing},
		{name: "query when configured", extractors: []middleware.Extractor{middleware.Query("api_key")}, req: get("/?api_key=q"), want: "q"},
		{name: "same token twice", req: get("/", "Authorization", "Api-Key t", "X-API-Key", "t"), want: "t"},
		{name: "different tokens", req: get("/", "Authorization", "Api-Key t", "X-API-Key", "u"), code: middleware.CodeMalformed},
		{name: "malformed beside valid", req: get("/", "Authorization", "Api-Key t", "X-API-Key", ""), code: middleware.CodeMalformed},
		{
			name: "custom header only", extractors: []middleware.Extractor{middleware.Header("X-Token")},
			req: get("/", "X-Token", "c", "X-API-Key", "ignored"), want: "c",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := &fakeVerifier{err: errors.New("stop")}
			mw := newMiddleware(t, middleware.Config{Verifier: v, Extractors: tt.extractors})
			res := serve(t, mw.RequireKey(okHandler()), tt.req)
			tokens, _ := v.calls()
			switch {
			case tt.want != "":
				if len(tokens) != 1 || tokens[0] != tt.want {
					t.Errorf("verifier saw %q, want [%q]", tokens, tt.want)
				}
			default:
				if len(tokens) != 0 || res.problem.Code != tt.code {
					t.Errorf("verifier saw %q and code %q; want no call and code %q", tokens, res.problem.Code, tt.code)
				}
			}
		})
	}
}

// FuzzExtract feeds arbitrary header values to the default extractors
// through a Middleware: it must not panic, and a token it finds must be
// part of one of the headers, without whitespace.
func FuzzExtract(f *testing.F) {
	f.Add("Api-Key kg_abc", "")
	f.Add("Bearer  kg_abc ", "kg_abc")
	f.Add("bEaReR\tkg_abc==", "")
	f.Add("Bearer", " ")
	f.Add("Basic eDp5", "x,y")
	f.Add("", "\x00")
	f.Add("Api-Key a b", "kg_é")
	f.Fuzz(func(t *testing.T, authorization, apiKey string) {
		v := &fakeVerifier{}
		mw, err := middleware.New(middleware.Config{Verifier: v})
		if err != nil {
			t.Fatal(err)
		}
		req := get("/")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		if apiKey != "" {
			req.Header.Set("X-API-Key", apiKey)
		}
		_ = serve(t, mw.RequireKey(okHandler()), req)
		tokens, _ := v.calls()
		for _, tok := range tokens {
			if tok == "" || strings.ContainsAny(tok, " \t,") {
				t.Errorf("token %q is empty or holds whitespace or a comma", tok)
			}
			if !strings.Contains(authorization, tok) && !strings.Contains(apiKey, tok) {
				t.Errorf("token %q is in neither %q nor %q", tok, authorization, apiKey)
			}
		}
	})
}

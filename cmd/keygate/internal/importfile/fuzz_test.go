package importfile

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
)

// errorWords are the words of six letters or more that an error may hold:
// those of this package's fixed texts. Any other would come from the file.
var errorWords = func() map[string]bool {
	texts := []string{ColumnNames, `importfile bad header row the file is empty; the first line must name the columns
		column is not a column name names twice must name the columns and token or sha256 the row has more or fewer cells than the header
		a cell has a misplaced quote: quote a whole cell with for a quote inside it the row is longer than bytes the row is not CSV
		metadata item is not key=value repeats a key rate want REQUESTS/WINDOW such as "100/1m" with at least request positive window
		uses want a whole number of uses or more the line is longer than bytes a line is longer than bytes is it a CSV file
		a JSON array give one object per line jq turns an array into JSON lines not a JSON object field has the wrong type
		a field is not an import field limits not a JSON object of import fields more than one JSON value on the line
		limits.rate.window is not a duration such as uses_remaining limits.rate.requests limits.uses_remaining limits.allowed_cidrs limits.rate`}
	words := map[string]bool{}
	for _, t := range texts {
		for _, w := range wordRE.FindAllString(t, -1) {
			words[strings.Trim(w, ".:/+=-")] = true
		}
	}
	return words
}()

// wordRE matches the words of an error text.
var wordRE = regexp.MustCompile(`[A-Za-z0-9_.:/+=-]{6,}`)

// FuzzReader reads arbitrary files in both formats: it never panics nor
// loops, row numbers only grow, and no error quotes the file.
func FuzzReader(f *testing.F) {
	for _, seed := range []string{
		"name,token\ngrafana,sk_live_4eC39HqLyjWDarjtT1zdp7dc\n",
		"\xef\xbb\xbfname,workspace,scopes,expiry,token,metadata,rate,uses,allowed_cidrs,hint,sha256\n" +
			"a,acme,billing:read cluster:read,90d,sk_live_4eC39HqLyjWDarjtT1zdp7dc,team=pay;tier=gold,100/1m,5,\"10.0.0.0/8, ::1/128\",,\n" +
			"\"multi\nline\",acme,,never,,,,,,sk_live_ab,0123abcd\nshort,acme\nb\"x,1,2,3,4,5,6,7,8,9,10\n",
		"name,token\n\"unterminated,sk_live_xxxxxxxxxxxxxxxx\n",
		"grafana,sk_live_4eC39HqLyjWDarjtT1zdp7dc\n",
		`{"name":"billing","workspace":"acme","scopes":["billing:read"],"expiry":"90d","token":"sk_live_4eC39HqLyjWDarjtT1zdp7dc","limits":{"rate":{"requests":100,"window":"1m"},"uses_remaining":5,"allowed_cidrs":["10.0.0.0/8"]}}` + "\n\n" +
			`{"name":"reports","sha256":"00ff","hint":"sk_live_re","expiry":"never","metadata":{"team":"bi"}}` + "\r\n" +
			`{"name":"x","tokn":"sk_live_SECRETSECRETSECRET"}` + "\n" + `[{"name":"x"}]` + "\n" +
			`{"name":"x","metadata":{"sk_live_SECRETSECRETSECRET":1}}` + "\n" + `{"a":1} {"b":2}`,
		`{"limits":{"rate":{"window":"sk_live_SECRETSECRET"}}}`,
		`{"limits":{"rate":{"requests":"sk_live_SECRETSECRET"}}}`,
		"name,token\n" + strings.Repeat("x", 300) + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []Format{CSV, JSONLines} {
			r, err := NewReader(bytes.NewReader(data), format)
			if err != nil {
				checkQuotesNothing(t, err)
				continue
			}
			last := 0
			for i := 0; ; i++ {
				if i > len(data)+2 {
					t.Fatalf("%s: more rows than bytes: Next loops", format)
				}
				row, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				var re *RowError
				if err != nil && !errors.As(err, &re) {
					checkQuotesNothing(t, err)
					if _, err := r.Next(); !errors.Is(err, io.EOF) {
						t.Fatalf("%s: after a fatal error, Next = %v, want io.EOF", format, err)
					}
					break
				}
				if err != nil {
					checkQuotesNothing(t, err)
					if re.Line != row.Line {
						t.Fatalf("%s: RowError line %d, row line %d", format, re.Line, row.Line)
					}
				}
				if row.Line <= last {
					t.Fatalf("%s: row at line %d after line %d", format, row.Line, last)
				}
				last = row.Line
				if off := r.Offset(); off < 0 || off > int64(len(data)) {
					t.Fatalf("%s: Offset %d of %d bytes", format, off, len(data))
				}
			}
		}
	})
}

// checkQuotesNothing fails if err holds a word that is not in one of the
// package's fixed texts: it would come from the file.
func checkQuotesNothing(t *testing.T, err error) {
	t.Helper()
	for _, w := range wordRE.FindAllString(err.Error(), -1) {
		if w = strings.Trim(w, ".:/+=-"); len(w) >= 6 && !errorWords[w] {
			t.Fatalf("the error %q holds %q, which is not of the package's texts", err, w)
		}
	}
}

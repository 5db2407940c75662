package importfile

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/client"
)

// readAll reads every row of data, returning the rows and the row errors
// in file order as "line N: reason" strings.
func readAll(t *testing.T, data string, f Format) ([]Row, []string) {
	t.Helper()
	r, err := NewReader(strings.NewReader(data), f)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var rows []Row
	var bad []string
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return rows, bad
		}
		var re *RowError
		switch {
		case errors.As(err, &re):
			if re.Line != row.Line {
				t.Errorf("RowError line %d, row line %d", re.Line, row.Line)
			}
			bad = append(bad, re.Error())
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			rows = append(rows, row)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestCSV(t *testing.T) {
	t.Parallel()
	data := "\xef\xbb\xbfName, Workspace ,scopes,expiry,token,metadata,rate,uses,allowed_cidrs,hint,sha256\n" +
		"billing,acme,billing:read cluster:read,90d,sk_live_4eC39HqLyjWDarjtT1zdp7dc,team=pay;tier=gold,100/1m,5,\"10.0.0.0/8, 192.168.0.0/16\",,\n" +
		"\n" +
		"\"multi\nline\",acme,,never,,,,,,sk_live_ab,0123abcd\n" +
		"short,acme\n" +
		"badrate,acme,,30d,sk_live_xxxxxxxxxxxxxxxx,,fast,,,,\n" +
		"baduses,acme,,30d,sk_live_xxxxxxxxxxxxxxxx,,,-1,,,\n" +
		"badmeta,acme,,30d,sk_live_xxxxxxxxxxxxxxxx,novalue,,,,,\n" +
		"last,,,,sk_live_yyyyyyyyyyyyyyyy,,10/h,,,,\n"
	rows, bad := readAll(t, data, CSV)
	want := []Row{
		{Line: 2, Key: client.ImportRow{
			CreateRequest: client.CreateRequest{Name: "billing", Workspace: "acme", Scopes: []string{"billing:read", "cluster:read"}, Expiry: "90d",
				Metadata: map[string]string{"team": "pay", "tier": "gold"},
				Limits: &client.Limits{Rate: client.RateLimit{Requests: 100, Window: client.Duration(time.Minute)}, UsesRemaining: ptr[int64](5),
					AllowedCIDRs: []string{"10.0.0.0/8", "192.168.0.0/16"}}},
			Token: "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}},
		{Line: 4, Key: client.ImportRow{CreateRequest: client.CreateRequest{Name: "multi\nline", Workspace: "acme", Expiry: "never"}, Hint: "sk_live_ab", SHA256: "0123abcd"}},
		{Line: 10, Key: client.ImportRow{CreateRequest: client.CreateRequest{Name: "last",
			Limits: &client.Limits{Rate: client.RateLimit{Requests: 10, Window: client.Duration(time.Hour)}}}, Token: "sk_live_yyyyyyyyyyyyyyyy"}},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows:\n got %#v\nwant %#v", rows, want)
	}
	wantBad := []string{
		"line 6: the row has more or fewer cells than the header",
		`line 7: rate: want REQUESTS/WINDOW such as "100/1m", with at least 1 request`,
		"line 8: uses: want a whole number of uses, 0 or more",
		"line 9: metadata: item 1 is not key=value",
	}
	if !reflect.DeepEqual(bad, wantBad) {
		t.Errorf("row errors:\n got %q\nwant %q", bad, wantBad)
	}
}

func TestCSVHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "the file is empty"},
		{"no header", "grafana,sk_live_4eC39HqLyjWDarjtT1zdp7dc\n", "line 1, column 1 is not a column name"},
		{"no token column", "name,expiry\nx,30d\n", "must name the columns name, and token or sha256"},
		{"twice", "name,token,Token\n", "names column token twice"},
		{"bad quote", "name,to\"ken\n", "misplaced quote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tc.data), CSV)
			if !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewReader = %v, want ErrHeader saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sk_live") {
				t.Errorf("the error quotes the file: %v", err)
			}
		})
	}
}

func TestCSVBadQuoteGoesOn(t *testing.T) {
	t.Parallel()
	rows, bad := readAll(t, "name,token\na,sk_live_aaaaaaaaaaaaaaaa\nb\"x,sk_live_bbbbbbbbbbbbbbbb\nc,sk_live_cccccccccccccccc\n", CSV)
	if len(rows) != 2 || rows[0].Line != 2 || rows[1].Line != 4 || rows[1].Key.Name != "c" {
		t.Errorf("rows %v", rows)
	}
	if len(bad) != 1 || !strings.HasPrefix(bad[0], "line 3: a cell has a misplaced quote") {
		t.Errorf("row errors %q", bad)
	}
}

func TestJSONLines(t *testing.T) {
	t.Parallel()
	data := `{"name":"billing","workspace":"acme","scopes":["billing:read"],"expiry":"90d","token":"sk_live_4eC39HqLyjWDarjtT1zdp7dc","limits":{"rate":{"requests":100,"window":"1m"},"uses_remaining":5}}` + "\n" +
		"\n   \n" +
		`{"name":"reports","sha256":"00ff","hint":"sk_live_re","expiry":"never","metadata":{"team":"bi"}}` + "\r\n" +
		`{"name":"x","tokn":"sk_live_SECRETSECRETSECRET"}` + "\n" +
		`not json sk_live_SECRETSECRETSECRET` + "\n" +
		`[{"name":"x"}]` + "\n" +
		`{"name":"x","scopes":"billing:read"}` + "\n" +
		`{"name":"x","limits":{"rate":{"requests":1,"window":"soon"}}}` + "\n" +
		`{"name":"x"} {"name":"y"}` + "\n" +
		`{"name":"x","metadata":{"sk_live_SECRETSECRETSECRET":1}}` + "\n" +
		`{"name":"last","token":"sk_live_zzzzzzzzzzzzzzzz"}` // no final newline
	rows, bad := readAll(t, data, JSONLines)
	want := []Row{
		{Line: 1, Key: client.ImportRow{CreateRequest: client.CreateRequest{Name: "billing", Workspace: "acme", Scopes: []string{"billing:read"}, Expiry: "90d",
			Limits: &client.Limits{Rate: client.RateLimit{Requests: 100, Window: client.Duration(time.Minute)}, UsesRemaining: ptr[int64](5)}},
			Token: "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}},
		{Line: 4, Key: client.ImportRow{CreateRequest: client.CreateRequest{Name: "reports", Expiry: "never", Metadata: map[string]string{"team": "bi"}},
			SHA256: "00ff", Hint: "sk_live_re"}},
		{Line: 12, Key: client.ImportRow{CreateRequest: client.CreateRequest{Name: "last"}, Token: "sk_live_zzzzzzzzzzzzzzzz"}},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows:\n got %#v\nwant %#v", rows, want)
	}
	wantBad := []string{
		"line 5: a field is not an import field (" + ColumnNames + ", limits)",
		"line 6: not a JSON object",
		"line 7: a JSON array: give one object per line (jq -c '.[]' turns an array into JSON lines)",
		"line 8: field scopes has the wrong type",
		`line 9: field limits.rate.window is not a duration such as "1m"`,
		"line 10: more than one JSON value on the line",
		"line 11: field metadata has the wrong type",
	}
	if !reflect.DeepEqual(bad, wantBad) {
		t.Errorf("row errors:\n got %q\nwant %q", bad, wantBad)
	}
}

func TestLongLines(t *testing.T) {
	t.Parallel()
	long := `{"name":"` + strings.Repeat("a", MaxLine) + `"}`
	rows, bad := readAll(t, long+"\n"+`{"name":"after","token":"sk_live_zzzzzzzzzzzzzzzz"}`+"\n", JSONLines)
	if len(rows) != 1 || rows[0].Line != 2 || len(bad) != 1 || !strings.HasPrefix(bad[0], "line 1: the line is longer than") {
		t.Errorf("rows %v, errors %q", rows, bad)
	}
	r, err := NewReader(strings.NewReader("name,token\n"+strings.Repeat("a", 2*MaxLine)), CSV)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "aaaa") {
		t.Errorf("a CSV line without end: %v", err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after a fatal error, Next = %v, want io.EOF", err)
	}
}

func TestDetect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, head string
		want       Format
	}{
		{"keys.csv", `{"x":1}`, CSV},
		{"keys.JSONL", "name,token", JSONLines},
		{"keys.ndjson", "", JSONLines},
		{"keys.json", "", JSONLines},
		{"-", "\xef\xbb\xbf \n {\"name\":1}", JSONLines},
		{"-", "name,token", CSV},
		{"keys.txt", "", CSV},
	} {
		if got := Detect(tc.name, []byte(tc.head)); got != tc.want {
			t.Errorf("Detect(%q, %q) = %s, want %s", tc.name, tc.head, got, tc.want)
		}
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]client.RateLimit{
		"100/1m":   {Requests: 100, Window: client.Duration(time.Minute)},
		"5/s":      {Requests: 5, Window: client.Duration(time.Second)},
		"10/m":     {Requests: 10, Window: client.Duration(time.Minute)},
		"1000/h":   {Requests: 1000, Window: client.Duration(time.Hour)},
		"7/d":      {Requests: 7, Window: client.Duration(24 * time.Hour)},
		"70/7d":    {Requests: 70, Window: client.Duration(7 * 24 * time.Hour)},
		" 3 / 90s": {Requests: 3, Window: client.Duration(90 * time.Second)},
	} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "100", "0/1m", "-1/1m", "x/1m", "100/", "100/0s", "100/-1m", "100/soon", "100/0d"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	t.Parallel()
	md, err := ParseMetadata([]string{"team=pay", " tier = gold ", "", "url=https://x?a=b"})
	if want := map[string]string{"team": "pay", "tier": "gold", "url": "https://x?a=b"}; err != nil || !reflect.DeepEqual(md, want) {
		t.Errorf("ParseMetadata = %v, %v; want %v", md, err, want)
	}
	for _, in := range [][]string{{"novalue"}, {"=v"}, {"a=1", "a=2"}} {
		if _, err := ParseMetadata(in); err == nil || strings.Contains(err.Error(), "novalue") {
			t.Errorf("ParseMetadata(%q) = %v, want an error that quotes nothing", in, err)
		}
	}
	if md, err := ParseMetadata(nil); md != nil || err != nil {
		t.Errorf("ParseMetadata(nil) = %v, %v", md, err)
	}
}

// TestRowsPrintRedacted: a row printed by mistake shows no token.
func TestRowsPrintRedacted(t *testing.T) {
	t.Parallel()
	rows, _ := readAll(t, "name,token,sha256\na,sk_live_SECRETSECRETSECRET,\nb,,deadbeefdeadbeefdeadbeef\n", CSV)
	for _, s := range []string{fmt.Sprint(rows), fmt.Sprintf("%+v", rows), fmt.Sprintf("%#v", rows[0].Key)} {
		if strings.Contains(s, "SECRET") || strings.Contains(s, "deadbeef") {
			t.Errorf("printed: %s", s)
		}
	}
}

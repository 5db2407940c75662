package console

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

func TestRelative(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{-30 * time.Second, "just now"},
		{5 * time.Minute, "in 5 minutes"},
		{-1 * time.Hour, "1 hour ago"},
		{30 * time.Hour, "in 30 hours"},
		{-3 * 24 * time.Hour, "3 days ago"},
		{29 * 24 * time.Hour, "in 29 days"},
		{90 * 24 * time.Hour, "in 3 months"},
		{-800 * 24 * time.Hour, "2 years ago"},
	} {
		if got := relative(now.Add(tt.d), now); got != tt.want {
			t.Errorf("relative(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := relative(time.Time{}, now); got != "" {
		t.Errorf("relative(zero) = %q", got)
	}
}

func TestBasePath(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		uri, path, want string
	}{
		{"/console/", "/", "/console"},
		{"/console/keys/new?x=1", "/keys/new", "/console"},
		{"/a/b/c/keys/new", "/keys/new", "/a/b/c"},
		{"/", "/", ""},
		{"//evil.example/keys/new", "/keys/new", "/evil.example"},
		{"/other", "/keys/new", ""},
	} {
		r := httptest.NewRequest("GET", tt.uri, nil)
		r.URL.Path = tt.path
		if got := basePath(r); got != tt.want {
			t.Errorf("basePath(%q, %q) = %q, want %q", tt.uri, tt.path, got, tt.want)
		}
	}
}

func TestLatest(t *testing.T) {
	t.Parallel()
	if got := latest(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)); got != "2026-12-07" {
		t.Errorf("latest(midnight) = %q", got)
	}
	if got := latest(time.Date(2026, 12, 7, 14, 3, 0, 0, time.UTC)); got != "2026-12-07 14:03 UTC" {
		t.Errorf("latest(14:03) = %q", got)
	}
}

func TestFormatMidnight(t *testing.T) {
	t.Parallel()
	end := time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC) // a custom date of 2027-01-14
	if got := formatDate(end); got != "14 Jan 2027" {
		t.Errorf("formatDate = %q", got)
	}
	if got := formatDateTime(end); got != "14 Jan 2027, end of day UTC" {
		t.Errorf("formatDateTime = %q", got)
	}
	if got := formatDateTime(end.Add(90 * time.Minute)); got != "15 Jan 2027 01:30 UTC" {
		t.Errorf("formatDateTime = %q", got)
	}
}

// FuzzReadKeyForm feeds the add form's parsing anything: it never
// panics, never lets through a switch the console does not offer, and
// reads only valid limits.
func FuzzReadKeyForm(f *testing.F) {
	for _, s := range []string{
		"name=grafana&expiry=30d&scope=billing:read",
		"name=x&expiry=custom&expiry_date=2027-01-15&scope=cluster:write&scope=organization:read",
		"name=x&expiry=custom&expiry_date=15/01/2027",
		"name=x&expiry=never&rate_requests=100&rate_window=minute&uses=5&cidrs=10.0.0.0/8%0A::1",
		"name=x&scope=rockets:launch&rate_requests=-1&uses=abc&cidrs=300.1.1.1",
		"expiry=7d&expiry_date=2027-01-01&rate_requests=5&rate_window=fortnight",
		"%zz",
		"name=x&expiry=7d&scope=",
	} {
		f.Add(s)
	}
	known := map[string]bool{"billing:read": true, "cluster:write": true, "organization:read": true}
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		form, err := readKeyForm(v, func(s string) bool { return known[s] })
		if err != nil {
			return
		}
		for s := range form.Scopes {
			if !known[s] {
				t.Fatalf("scope %q let through", s)
			}
		}
		req, err := form.createRequest()
		if err != nil {
			return
		}
		if r := req.Limits.Rate; r.Requests < 0 || (r.Requests > 0 && r.Window <= 0) {
			t.Fatalf("rate limit %+v", r)
		}
		if u := req.Limits.Uses; u != nil && *u < 0 {
			t.Fatalf("uses %d", *u)
		}
		for _, p := range req.Limits.AllowedCIDRs {
			if !p.IsValid() {
				t.Fatalf("CIDR %v", p)
			}
		}
	})
}

func TestSessionsBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	ss := newSessions(time.Hour, 12*time.Hour, 3)
	var ids []string
	for i := range 4 {
		ids = append(ids, ss.add(&session{who: string(rune('a' + i))}, now.Add(time.Duration(i)*time.Minute)))
	}
	if ss.get(ids[0], now.Add(5*time.Minute)) != nil {
		t.Error("the session used least recently was kept past MaxSessions")
	}
	for _, id := range ids[1:] {
		if ss.get(id, now.Add(5*time.Minute)) == nil {
			t.Error("a recent session was dropped")
		}
	}
	if ss.get(ids[1], now.Add(2*time.Hour)) != nil {
		t.Error("an idle session lived past its TTL")
	}
	s := ss.get(ids[2], now.Add(6*time.Minute))
	var nonces []string
	for range maxNonces + 2 {
		nonces = append(nonces, ss.newNonce(s))
	}
	if ss.useNonce(s, nonces[0]) || !ss.useNonce(s, nonces[len(nonces)-1]) || ss.useNonce(s, nonces[len(nonces)-1]) {
		t.Error("nonces: the oldest must be forgotten, the newest used once")
	}
	ss.restoreNonce(s, nonces[len(nonces)-1])
	if !ss.useNonce(s, nonces[len(nonces)-1]) {
		t.Error("a restored nonce cannot be used")
	}
}

func TestNiceCeil(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]int64{0: 2, 1: 2, 2: 2, 3: 4, 7: 8, 10: 10, 11: 20, 20: 20, 21: 50, 99: 100, 101: 200, 4999: 5000, 5001: 10000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4321: "-4,321"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}

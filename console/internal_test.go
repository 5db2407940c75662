package console

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
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
		"name=x&expiry=never&uses=5&refill_amount=5&refill_every=month&refill_day=31&named_rate_name=tokens&named_rate_requests=9&named_rate_window=hour&named_rate_on_demand=0",
		"name=x&expiry=never&refill_amount=-5&refill_every=week&named_rate_name=&named_rate_requests=x",
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

// TestMemoryStoreBounded: past its maximum, a MemoryStore ends the oldest
// session of the owner holding the most, so that one key signing in over
// and over ends only its own sessions.
func TestMemoryStoreBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	m := NewMemoryStore(4)
	add := func(id, owner string) {
		t.Helper()
		if err := m.CreateSession(ctx, []byte(id), owner, []byte(id), now, now.Add(time.Hour), 100); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	live := func(id string) bool {
		t.Helper()
		data, _, _, err := m.Session(ctx, []byte(id), now)
		if err != nil {
			t.Fatal(err)
		}
		return data != nil
	}
	add("admin", "key:admin")
	for i := range 10 {
		add(fmt.Sprint("spam", i), "key:spammer")
	}
	add("alice", "host:alice")
	if !live("admin") || !live("alice") {
		t.Error("a full store ended another owner's session")
	}
	for i, want := range []bool{false, false, false, false, false, false, false, false, true, true} {
		if got := live(fmt.Sprint("spam", i)); got != want {
			t.Errorf("spam%d live = %v, want %v (the spammer keeps its newest)", i, got, want)
		}
	}
	// Expired sessions make room first.
	now = now.Add(2 * time.Hour)
	add("bob", "host:bob")
	if !live("bob") || live("admin") {
		t.Error("after the others expired: want bob live, admin expired")
	}
}

// TestFormNonces: a form nonce is good once, in the session that issued
// it only.
func TestFormNonces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	ss := &sessions{store: NewMemoryStore(10), ttl: time.Hour, maxAge: 12 * time.Hour, perKey: 10, logger: slog.Default()}
	_, s, err := ss.add(ctx, sessionData{Principal: "user:alice", Who: "alice"}, now)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ss.add(ctx, sessionData{Principal: "user:bob", Who: "bob"}, now)
	if err != nil {
		t.Fatal(err)
	}
	n := ss.newNonce(s)
	r, _, _ := strings.Cut(n, ".")
	for _, tt := range []struct {
		name  string
		s     *session
		nonce string
		want  bool
	}{
		{"another session's", other, n, false},
		{"made up", s, r + ".AAAAAAAAAAAAAAAAAAAAAA", false},
		{"no MAC", s, r, false},
		{"empty", s, "", false},
		{"first use", s, n, true},
		{"second use", s, n, false},
		{"a new one", s, ss.newNonce(s), true},
	} {
		ok, err := ss.useNonce(ctx, tt.s, tt.nonce, now)
		if err != nil || ok != tt.want {
			t.Errorf("%s: useNonce = %v, %v; want %v", tt.name, ok, err, tt.want)
		}
	}
}

func TestWaitWords(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{time.Millisecond, "1 second"},
		{time.Second, "1 second"},
		{1500 * time.Millisecond, "2 seconds"},
		{90 * time.Second, "90 seconds"},
		{91 * time.Second, "2 minutes"},
		{time.Hour, "60 minutes"},
	} {
		if got := waitWords(tt.d); got != tt.want {
			t.Errorf("waitWords(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestSessionOwner(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("u", 1000)
	for _, tt := range []struct {
		d    sessionData
		want string
	}{
		{sessionData{Key: uuid.MustParse("01a24ac0-a594-712f-be4c-d346669b038f")}, "key:01a24ac0-a594-712f-be4c-d346669b038f"},
		{sessionData{Principal: "user:alice"}, "host:user:alice"},
		{sessionData{Principal: long}, "host-sha256:" + hex.EncodeToString(digest(long))},
	} {
		if got := tt.d.owner(); got != tt.want || len(got) > 255 {
			t.Errorf("owner() = %q, want %q (at most 255 bytes)", got, tt.want)
		}
	}
}

// TestMemoryStoreNoncesBounded: a MemoryStore remembers at most eight
// nonces per session it holds, forgetting the one used first, in
// constant time (a store full of used nonces took a scan of all of them
// per nonce used).
func TestMemoryStoreNoncesBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	m := NewMemoryStore(2) // 16 nonces
	use := func(n int) bool {
		t.Helper()
		ok, err := m.UseNonce(ctx, []byte(fmt.Sprint(n)), now, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for n := range 40 {
		if !use(n) {
			t.Fatalf("nonce %d refused at its first use", n)
		}
	}
	if len(m.nonces) != 16 || len(m.used)-m.usedHead != 16 {
		t.Errorf("%d nonces remembered (%d queued), want 16", len(m.nonces), len(m.used)-m.usedHead)
	}
	if use(39) || use(24) {
		t.Error("one of the 16 nonces used last was taken again")
	}
	if !use(0) {
		t.Error("the nonce used first is still remembered")
	}
	// Expired ones go first.
	now = now.Add(2 * time.Hour)
	if !use(39) || len(m.nonces) != 1 {
		t.Errorf("after they expired: %d nonces remembered, want 1", len(m.nonces))
	}
}

// FuzzSessionInput feeds what a client or a store controls to the
// session code: the sign-in cookie, a form nonce, and a session's stored
// data. Nothing panics; a sign-in nonce is taken only within its hour; a
// nonce the session did not issue is refused; data that does not decode
// to a session is no session.
func FuzzSessionInput(f *testing.F) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	f.Add(newSigninNonce(now), "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", []byte(`{"csrf":"c","who":"w","created":"2026-11-30T09:00:00Z"}`))
	f.Add(newSigninNonce(now.Add(-2*time.Hour)), "", []byte(nil))
	f.Add("x.1764496800", ".", []byte("{"))
	f.Add(strings.Repeat("A", 43)+".-1", "a.b.c", []byte(`{"csrf":"","key":"not a uuid"}`))
	f.Add(strings.Repeat("A", 43)+".99999999999999999999", strings.Repeat("x", 100), []byte(`{"csrf":"c","created":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, signin, nonce string, data []byte) {
		ctx := context.Background()
		if issued, ok := signinIssued(signin, now); ok && (issued.After(now.Add(clockSkew)) || !now.Before(issued.Add(signinFormTTL))) {
			t.Errorf("signinIssued(%q) = %v, accepted outside its hour", signin, issued)
		}
		store := NewMemoryStore(10)
		ss := &sessions{store: store, ttl: time.Hour, maxAge: 12 * time.Hour, perKey: 10, logger: slog.New(slog.DiscardHandler)}
		_, s, err := ss.add(ctx, sessionData{Principal: "user:alice", Who: "alice"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := ss.useNonce(ctx, s, nonce, now); ok || err != nil {
			t.Errorf("useNonce(%q) = %v, %v: a nonce the session did not issue", nonce, ok, err)
		}
		if err := store.CreateSession(ctx, digest("session", "sid"), "o", data, now, now.Add(time.Hour), 10); err != nil {
			t.Fatal(err)
		}
		got, err := ss.get(ctx, "sid", now)
		if err != nil {
			t.Fatalf("get of stored data %q: %v", data, err)
		}
		if got != nil && (got.CSRF == "" || !now.Before(got.Created.Add(ss.maxAge))) {
			t.Errorf("stored data %q made a session without a token, or past its age: %+v", data, got.sessionData)
		}
	})
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

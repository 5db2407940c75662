package console_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/middleware"
)

// TestSignInThrottled: made-up tokens sent to the sign-in form count
// against the sender's address like bad keys sent to the API; past the
// budget, sign-in is refused without a lookup (issue 16, Low 8: 100
// made-up tokens made 100 store lookups, an unthrottled oracle for
// imported tokens, which have no checksum).
func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	before := e.store.lookups.Load()
	refused := 0
	for range 100 {
		tok, err := format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		switch p := b.signIn(tok.Reveal()); p.status {
		case http.StatusUnauthorized:
			p.want(http.StatusUnauthorized, "This is not a valid API token.")
		case http.StatusTooManyRequests:
			p.want(http.StatusTooManyRequests, "Too many failed sign-ins from your address")
			if p.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			refused++
		default:
			t.Fatalf("a made-up token: %d\n%s", p.status, p.text())
		}
	}
	if lookups := e.store.lookups.Load() - before; lookups > 20 {
		t.Errorf("100 made-up tokens made %d store lookups, want at most the failure budget", lookups)
	}
	if refused < 80 {
		t.Errorf("%d of 100 made-up tokens refused unverified, want all past the budget", refused)
	}
	// A good token from the throttled address waits too, without being
	// verified; once the budget refills, it signs in.
	b.signIn(e.admin).want(http.StatusTooManyRequests)
	e.clock.Add(time.Minute)
	if p := b.signIn(e.admin); p.status != http.StatusSeeOther {
		t.Errorf("after the window, a good token: %d, want 303\n%s", p.status, p.text())
	}
}

// TestSignInSharesTheAPIThrottle: given the API middleware's throttle,
// the sign-in form draws on the same budget per address.
func TestSignInSharesTheAPIThrottle(t *testing.T) {
	t.Parallel()
	var th *middleware.Throttle
	e := newEnv(t, func(c *console.Config) {
		mw, err := middleware.New(middleware.Config{Verifier: c.Manager, Now: c.Now,
			FailureLimit: middleware.FailureLimit{Failures: 2, Window: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		th = mw.Throttle()
		c.Throttle = th
	})
	// Two bad keys sent to the API from the browser's address...
	th.Record(netip.MustParseAddr("127.0.0.1"), keygate.ErrInvalid)
	th.Record(netip.MustParseAddr("127.0.0.1"), keygate.ErrInvalid)
	// ...refuse its sign-in.
	e.browser(t).signIn(e.admin).want(http.StatusTooManyRequests, "Too many failed sign-ins", "Try again in 30 minutes.")
}

// TestSignInFormSingleUse: a sign-in form signs in once; sent again, as a
// script replaying it would, it is refused (issue 16, Medium 4).
func TestSignInFormSingleUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	viewer := e.key(t, keygate.CreateRequest{Name: "viewer", Scopes: []string{"apikey:view"}}).Token.Reveal()
	b := e.browser(t)
	page := b.get("/signin")
	var nonce string
	for _, c := range b.client.Jar.Cookies(mustURL(t, e.srv.URL+mount+"/")) {
		if c.Name == "keygate_console_signin" {
			nonce = c.Value
		}
	}
	if nonce == "" {
		t.Fatal("no sign-in cookie")
	}
	form := url.Values{"csrf": {page.input("csrf")}, "token": {viewer}}
	if p := b.post("/signin", form); p.status != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d\n%s", p.status, p.text())
	}
	replay := e.browser(t)
	replay.client.Jar.SetCookies(mustURL(t, e.srv.URL+mount+"/"), []*http.Cookie{{Name: "keygate_console_signin", Value: nonce}})
	p := replay.post("/signin", form)
	p.want(http.StatusForbidden, "This form was already used")
	for _, raw := range p.header.Values("Set-Cookie") {
		if c, _ := http.ParseSetCookie(raw); c != nil && c.Name == "keygate_console" && c.Value != "" {
			t.Error("the replayed form started a session")
		}
	}
}

// TestSignInsCannotEndOthersSessions: however often one key signs in, it
// ends only its own oldest sessions, never another key's (issue 16,
// Medium 4: 10,000 sign-ins with any apikey:view key ended every other
// session, least recently used first).
func TestSignInsCannotEndOthersSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.MaxSessions = 30 })
	admin := e.signedIn(t, e.admin)
	viewer := e.key(t, keygate.CreateRequest{Name: "viewer", Scopes: []string{"apikey:view"}}).Token.Reveal()
	first := e.signedIn(t, viewer)
	for range 100 {
		e.signedIn(t, viewer)
	}
	admin.get("/").want(http.StatusOK, "Signed in as admin")
	if p := first.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("the key's first of 101 sessions: %d, want ended (its key holds at most %d sessions)", p.status, 10)
	}
}

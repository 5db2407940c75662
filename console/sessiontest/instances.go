package sessiontest

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/store/memory"
)

// RunInstances runs the console end to end on two instances sharing the
// store newStore returns (called once), as behind a load balancer
// without sticky sessions: two Managers over one key store, two
// Consoles, two servers, one browser whose requests go to either. It
// signs in through one instance with the other's form, acts through the
// other, and checks that everything a session carries holds across
// them: its anti-forgery token, its one-time form nonces (a form used
// through one is refused through the other), its flash message, sign-out,
// the bound per key, idle expiry, and the end of a revoked key's
// sessions.
func RunInstances(t *testing.T, newStore func(t *testing.T) console.SessionStore) {
	cl := &clock{t: time.Now().UTC().Truncate(time.Second)}
	keys := memory.New()
	shared := newStore(t)
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	var instances [2]*instance
	for i := range instances {
		quiet := slog.New(slog.DiscardHandler)
		m, err := keygate.New(keygate.Config{Store: keys, Hasher: hasher, Now: cl.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(context.Background()) })
		c, err := console.New(console.Config{Manager: m, Sessions: shared, SessionsPerKey: 3, Now: cl.Now,
			SessionTTL: 30 * time.Minute, Categories: console.Categories("Cluster"), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/console/", http.StripPrefix("/console", c))
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		instances[i] = &instance{m: m, url: srv.URL + "/console"}
	}
	a, b := instances[0], instances[1]
	ctx := context.Background()
	create := func(name string, scopes ...string) *keygate.Created {
		t.Helper()
		c, err := a.m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: name, Scopes: scopes, Expiry: keygate.ExpireAfterDays(30)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	admin := create("admin", "apikey:view", "apikey:manage", "cluster:read").Token.Reveal()
	br := newBrowser(t)

	// Sign in with A's form through B; the page shows through A.
	form := br.get(a, "/signin")
	signinCSRF := form.input(t, "csrf")
	signinCookie := br.cookie("keygate_console_signin")
	br.post(b, "/signin", url.Values{"csrf": {signinCSRF}, "token": {admin}}).want(t, http.StatusSeeOther)
	br.get(a, "/").want(t, http.StatusOK, "Signed in as admin")

	// The same sign-in form, replayed through A: refused.
	replay := newBrowser(t)
	replay.setCookie("keygate_console_signin", signinCookie)
	replay.post(a, "/signin", url.Values{"csrf": {signinCSRF}, "token": {admin}}).want(t, http.StatusForbidden, "already used")

	// The add form from B, sent through A, creates a key; sent again
	// through B, or through A, it is refused, and no second key is made.
	add := br.get(b, "/keys/new").want(t, http.StatusOK)
	v := url.Values{"csrf": {add.input(t, "csrf")}, "nonce": {add.input(t, "nonce")}, "name": {"grafana"},
		"expiry": {"7d"}, "scope": {"cluster:read"}, "rate_window": {"minute"}}
	created := br.post(a, "/keys/new", v).want(t, http.StatusOK, "Token created")
	if !regexp.MustCompile(apikey.Pattern).MatchString(created.body) {
		t.Error("no token on the page that created the key")
	}
	br.post(b, "/keys/new", v).want(t, http.StatusConflict, "already sent")
	br.post(a, "/keys/new", v).want(t, http.StatusConflict, "already sent")
	page, err := a.m.List(ctx, keygate.System(), keygate.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Keys) != 2 {
		t.Errorf("%d keys after the form was sent three times, want 2 (admin and grafana)", len(page.Keys))
	}
	var grafana string
	for _, k := range page.Keys {
		if k.Name == "grafana" {
			grafana = k.ID.String()
		}
	}

	// A flash message set through A is shown once, through B.
	confirm := br.get(a, "/keys/"+grafana+"/disable").want(t, http.StatusOK)
	br.post(a, "/keys/"+grafana+"/disable", url.Values{"csrf": {confirm.input(t, "csrf")}}).want(t, http.StatusSeeOther)
	br.get(b, "/keys/"+grafana).want(t, http.StatusOK, `Token "grafana" disabled`)
	if p := br.get(a, "/keys/"+grafana); strings.Contains(p.text(), `Token "grafana" disabled`) {
		t.Error("the flash message was shown twice")
	}

	// A forged anti-forgery token is refused through either.
	for _, in := range instances {
		br.post(in, "/keys/"+grafana+"/enable", url.Values{"csrf": {"forged"}}).want(t, http.StatusForbidden)
	}

	// A key signing in more often than its bound ends its own oldest
	// sessions on every instance, not the admin's.
	viewer := create("viewer", "apikey:view").Token.Reveal()
	var viewers []*browser
	for i := range 4 {
		cl.Add(time.Second) // sessions created at one time end in any order
		v := newBrowser(t)
		in := instances[i%2]
		f := v.get(in, "/signin")
		v.post(instances[(i+1)%2], "/signin", url.Values{"csrf": {f.input(t, "csrf")}, "token": {viewer}}).want(t, http.StatusSeeOther)
		viewers = append(viewers, v)
	}
	first := viewers[0].cookie("keygate_console")
	for _, in := range instances {
		// A browser of its own per instance: the first refusal deletes
		// the cookie.
		ended := newBrowser(t)
		ended.setCookie("keygate_console", first)
		ended.get(in, "/").wantRedirect(t, "/signin?ended=expired")
		viewers[3].get(in, "/").want(t, http.StatusOK, "Signed in as viewer")
		br.get(in, "/").want(t, http.StatusOK, "Signed in as admin")
	}

	// Revoking a key ends its sessions on every instance.
	ops := create("ops", "apikey:view")
	opsBrowser := newBrowser(t)
	f := opsBrowser.get(b, "/signin")
	opsBrowser.post(a, "/signin", url.Values{"csrf": {f.input(t, "csrf")}, "token": {ops.Token.Reveal()}}).want(t, http.StatusSeeOther)
	if _, err := b.m.Revoke(ctx, keygate.System(), ops.Key.ID); err != nil {
		t.Fatal(err)
	}
	opsBrowser.get(a, "/").wantRedirect(t, "/signin?ended=revoked")

	// Signing out through B ends the session on A.
	list := br.get(a, "/").want(t, http.StatusOK)
	sid := br.cookie("keygate_console")
	br.post(b, "/signout", url.Values{"csrf": {list.input(t, "csrf")}}).wantRedirect(t, "/signin?ended=signed-out")
	stolen := newBrowser(t)
	stolen.setCookie("keygate_console", sid)
	stolen.get(a, "/").wantRedirect(t, "/signin?ended=expired")

	// A session idle past its TTL ends on every instance; activity on
	// one keeps it on the other.
	idle := newBrowser(t)
	f = idle.get(a, "/signin")
	idle.post(a, "/signin", url.Values{"csrf": {f.input(t, "csrf")}, "token": {viewer}}).want(t, http.StatusSeeOther)
	for i := range 4 {
		cl.Add(20 * time.Minute)
		if p := idle.get(instances[i%2], "/"); p.status != http.StatusOK {
			t.Fatalf("request %d, %v after sign-in, every 20 minutes, alternating instances: %d %q, want 200", i+1, time.Duration(i+1)*20*time.Minute, p.status, p.location)
		}
	}
	cl.Add(31 * time.Minute)
	idle.get(b, "/").wantRedirect(t, "/signin?ended=expired")
}

// instance is one instance of the service.
type instance struct {
	m   *keygate.Manager
	url string // where its console is mounted
}

// clock is a settable clock shared by the instances.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// browser is a client with its own cookies, which it sends to every
// instance (cookies do not tell ports apart), and which does not follow
// redirects.
type browser struct {
	t      *testing.T
	jar    *cookiejar.Jar
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, jar: jar, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// root is the URL the browser's cookies are for.
var root = &url.URL{Scheme: "http", Host: "127.0.0.1", Path: "/console/"}

// cookie returns the value of the browser's cookie name, or "".
func (b *browser) cookie(name string) string {
	for _, c := range b.jar.Cookies(root) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setCookie gives the browser a cookie, as a script replaying one would.
func (b *browser) setCookie(name, value string) {
	b.jar.SetCookies(root, []*http.Cookie{{Name: name, Value: value, Path: "/console"}})
}

// page is a response as received.
type page struct {
	status   int
	body     string
	location string
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return &page{status: res.StatusCode, body: string(body), location: res.Header.Get("Location")}
}

func (b *browser) get(in *instance, path string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, in.url+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(in *instance, path string, form url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, in.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// text returns the page's text, roughly.
func (p *page) text() string {
	s := regexp.MustCompile(`(?s)<head>.*?</head>|<[^>]+>`).ReplaceAllString(p.body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

// want fails t unless p has status and holds every one of texts.
func (p *page) want(t *testing.T, status int, texts ...string) *page {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d\n%s", p.status, status, p.text())
	}
	for _, s := range texts {
		if !strings.Contains(p.text(), s) {
			t.Errorf("page lacks %q:\n%s", s, p.text())
		}
	}
	return p
}

// wantRedirect fails t unless p redirects to the console's path.
func (p *page) wantRedirect(t *testing.T, path string) {
	t.Helper()
	if p.status != http.StatusSeeOther || p.location != "/console"+path {
		t.Fatalf("got %d to %q, want 303 to /console%s\n%s", p.status, p.location, path, p.text())
	}
}

// input returns the value of the page's first input named name.
func (p *page) input(t *testing.T, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no input %q in the page:\n%s", name, p.text())
	}
	return html.UnescapeString(m[1])
}

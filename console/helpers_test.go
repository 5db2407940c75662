package console_test

import (
	"bytes"
	"context"
	"errors"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// mount is where the tests mount the console.
const mount = "/console"

// replex are the fourteen access categories of the Replex docs.
var replex = console.Categories("Agent", "Api Key", "Billing", "Budget", "Cluster", "Custom Pricing", "Invitation",
	"Organization", "Recommendations", "Role", "Saml Integration", "Scopes", "Teams", "User")

// tokenPattern finds keygate tokens in a page.
var tokenPattern = regexp.MustCompile(apikey.Pattern)

// clock is a settable clock shared by the Manager and the console.
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

// errStoreDown is a failingStore's failure.
var errStoreDown = errors.New("dial tcp 10.9.8.7:5432: connection refused")

// failingStore is a memory store whose every call fails while down is
// set.
type failingStore struct {
	*memory.Store
	down atomic.Bool
	// lookups counts the calls of GetByHash: the lookups of tokens.
	lookups atomic.Int64
	// usageReads counts Usage calls; usageDown makes them fail.
	usageReads atomic.Int64
	usageDown  atomic.Bool
}

func (s *failingStore) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageCount, error) {
	s.usageReads.Add(1)
	if err := s.err(); err != nil {
		return nil, err
	}
	if s.usageDown.Load() {
		return nil, errStoreDown
	}
	return s.Store.Usage(ctx, q)
}

func (s *failingStore) err() error {
	if s.down.Load() {
		return errStoreDown
	}
	return nil
}

func (s *failingStore) Create(ctx context.Context, k *store.Key) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Create(ctx, k)
}

func (s *failingStore) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, id)
}

func (s *failingStore) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	s.lookups.Add(1)
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Store.GetByHash(ctx, hash)
}

func (s *failingStore) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Store.List(ctx, opts)
}

func (s *failingStore) Update(ctx context.Context, k *store.Key) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Update(ctx, k)
}

func (s *failingStore) Delete(ctx context.Context, id uuid.UUID) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Delete(ctx, id)
}

// syncBuffer collects the logs of the Manager and the console.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// env is a console over a Manager with a memory store, served under
// mount, with a super admin's token.
type env struct {
	clock *clock
	store *failingStore
	m     *keygate.Manager
	c     *console.Console
	srv   *httptest.Server
	logs  *syncBuffer
	admin string
}

// newEnv builds an env; mod, when not nil, adjusts the console's config.
func newEnv(t testing.TB, mod func(*console.Config)) *env {
	t.Helper()
	return newEnvOver(t, nil, mod)
}

// newEnvOver is newEnv with the Manager's store wrap(e.store) when wrap
// is not nil.
func newEnvOver(t testing.TB, wrap func(*failingStore) store.Store, mod func(*console.Config)) *env {
	t.Helper()
	e := &env{clock: &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}, store: &failingStore{Store: memory.New()}, logs: &syncBuffer{}}
	var st store.Store = e.store
	if wrap != nil {
		st = wrap(e.store)
	}
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.m, err = keygate.New(keygate.Config{Store: st, Hasher: hasher, Logger: logger, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Close(context.Background()) })
	cfg := console.Config{Manager: e.m, Categories: replex, Logger: logger, Now: e.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	if e.c, err = console.New(cfg); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(mount+"/", http.StripPrefix(mount, e.c))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.admin = e.key(t, keygate.CreateRequest{Name: "admin", Role: "admin", Expiry: keygate.NeverExpire()}).Token.Reveal()
	return e
}

// key creates a key as the system.
func (e *env) key(t testing.TB, req keygate.CreateRequest) *keygate.Created {
	t.Helper()
	if req.Expiry == (keygate.Expiry{}) {
		req.Expiry = keygate.ExpireAfterDays(30)
	}
	c, err := e.m.Create(context.Background(), keygate.System(), req)
	if err != nil {
		t.Fatalf("Create %q: %v", req.Name, err)
	}
	return c
}

// find returns the stored key named name (in no workspace), or nil.
func (e *env) find(t testing.TB, name string) *store.Key {
	t.Helper()
	page, err := e.store.Store.List(context.Background(), store.ListOptions{Limit: store.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range page.Keys {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// browser is a client with its own cookies that does not follow
// redirects by itself.
type browser struct {
	t      testing.TB
	e      *env
	client *http.Client
}

func (e *env) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// signedIn returns a browser signed in with token.
func (e *env) signedIn(t testing.TB, token string) *browser {
	t.Helper()
	b := e.browser(t)
	p := b.signIn(token)
	if p.status != http.StatusSeeOther || p.location != mount+"/" {
		t.Fatalf("sign in: %d %q, want 303 to %s/\n%s", p.status, p.location, mount, p.text())
	}
	return b
}

// response is a page as received.
type response struct {
	t        testing.TB
	status   int
	header   http.Header
	body     string
	location string
}

// do sends req and reads the response.
func (b *browser) do(req *http.Request) *response {
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
	return &response{t: b.t, status: res.StatusCode, header: res.Header, body: string(body), location: res.Header.Get("Location")}
}

// get requests the console's path.
func (b *browser) get(path string) *response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+mount+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends form to the console's path, with headers given as
// name, value pairs.
func (b *browser) post(path string, form url.Values, headers ...string) *response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+mount+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

// follow gets where a redirect points.
func (b *browser) follow(r *response) *response {
	b.t.Helper()
	if r.status/100 != 3 {
		b.t.Fatalf("not a redirect: %d\n%s", r.status, r.text())
	}
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+r.location, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// signIn posts token to the sign-in form.
func (b *browser) signIn(token string) *response {
	b.t.Helper()
	form := b.get("/signin")
	return b.post("/signin", url.Values{"csrf": {form.input("csrf")}, "token": {token}})
}

// form gets the page at path and returns the values of its form with
// the given action (every hidden input and pre-filled field, checked
// boxes, selected options), to be changed and posted.
func (b *browser) form(path string) url.Values {
	b.t.Helper()
	p := b.get(path)
	if p.status != http.StatusOK {
		b.t.Fatalf("GET %s: %d\n%s", path, p.status, p.text())
	}
	return p.formValues()
}

var (
	inputTag    = regexp.MustCompile(`<input[^>]*>`)
	attr        = regexp.MustCompile(`\s([a-z_-]+)(?:="([^"]*)")?`)
	selectTag   = regexp.MustCompile(`(?s)<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>`)
	selected    = regexp.MustCompile(`<option value="([^"]*)" selected>`)
	textareaTag = regexp.MustCompile(`(?s)<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>`)
)

// formValues returns what a browser would send of the page's last form.
func (r *response) formValues() url.Values {
	body := r.body
	if i := strings.LastIndex(body, "<form"); i >= 0 {
		body = body[i:]
	}
	v := url.Values{}
	for _, tag := range inputTag.FindAllString(body, -1) {
		a := map[string]string{}
		for _, m := range attr.FindAllStringSubmatch(tag, -1) {
			a[m[1]] = html.UnescapeString(m[2])
		}
		if a["name"] == "" {
			continue
		}
		if a["type"] == "checkbox" {
			if _, on := a["checked"]; !on {
				continue
			}
		}
		v.Add(a["name"], a["value"])
	}
	for _, m := range selectTag.FindAllStringSubmatch(body, -1) {
		if s := selected.FindStringSubmatch(m[2]); s != nil {
			v.Add(m[1], html.UnescapeString(s[1])) // several selects may share a name
		}
	}
	for _, m := range textareaTag.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// input returns the value of the page's first input named name.
func (r *response) input(name string) string {
	r.t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(r.body)
	if m == nil {
		r.t.Fatalf("no input %q in the page:\n%s", name, r.text())
	}
	return html.UnescapeString(m[1])
}

// text returns the page's text, roughly, for messages and checks.
func (r *response) text() string {
	s := regexp.MustCompile(`(?s)<head>.*?</head>|<[^>]+>`).ReplaceAllString(r.body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

// contains reports whether the page's text contains s.
func (r *response) contains(s string) bool {
	return strings.Contains(r.text(), s)
}

// want fails the test unless the response has status and its text holds
// every one of texts.
func (r *response) want(status int, texts ...string) *response {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("status %d, want %d\n%s", r.status, status, r.text())
	}
	for _, s := range texts {
		if !r.contains(s) {
			r.t.Errorf("page lacks %q:\n%s", s, r.text())
		}
	}
	return r
}

// token returns the token shown in the page, or "".
func (r *response) token() string {
	return tokenPattern.FindString(r.body)
}

// re compiles a regular expression of a test.
func re(s string) *regexp.Regexp {
	return regexp.MustCompile(s)
}

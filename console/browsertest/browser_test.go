package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium.
const chromiumPath = "/usr/bin/chromium"

// tokenPattern matches keygate tokens (apikey.Pattern).
var tokenPattern = regexp.MustCompile(`\b[a-z](?:[a-z0-9_]{0,30}[a-z0-9])?_[0-9A-Za-z]{49}\b`)

// lockedBuffer collects the server's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// server is keygate serve, run as a subprocess.
type server struct {
	url   string
	admin string
	logs  *lockedBuffer
}

// startServer builds the keygate command (keygate serve) and runs it on a free port with a
// fresh SQLite database, until the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	build := exec.Command("go", "build", "-o", bin, "./cmd/keygate")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/keygate: %v\n%s", err, out)
	}
	tokenFile := filepath.Join(dir, "admin.token")
	// Usage history written every 200ms, so that the key page charts a
	// key's uses at once.
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "keys.db"), "--admin-token-file", tokenFile, "--demo",
		"--usage-interval", "200ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{logs: &lockedBuffer{}}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	listening := regexp.MustCompile(`msg=listening url=(http://127\.0\.0\.1:\d+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.logs, line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case s.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not start:\n%s", s.logs)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	s.admin = strings.TrimSpace(string(b))
	return s
}

// call sends a request to the demo API, or the key API, with token and
// returns the status.
func (s *server) call(t *testing.T, method, path, token, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Api-Key "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// wantCalls checks the demo API's answers to token: organization:read,
// cluster:read and cluster:write in workspace tiger.
func (s *server) wantCalls(t *testing.T, token string, org, list, create int) {
	t.Helper()
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/v1/organizations/acme", "", org},
		{"GET", "/api/v1/workspaces/tiger/clusters", "", list},
		{"POST", "/api/v1/workspaces/tiger/clusters", `{"name":"prod","region":"eu-west-1"}`, create},
	} {
		if got := s.call(t, c.method, c.path, token, c.body); got != c.want {
			t.Errorf("%s %s = %d, want %d", c.method, c.path, got, c.want)
		}
	}
}

// session is the browser, with where its screenshots go.
type session struct {
	t     *testing.T
	ctx   context.Context
	shots string
	n     int
	taken []string
}

// newSession starts headless Chromium with a fresh profile.
func newSession(t *testing.T) *session {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("KEYGATE_REQUIRE_BROWSER") != "" {
			t.Fatalf("KEYGATE_REQUIRE_BROWSER is set but %s is missing: apt-get install chromium", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install chromium); set KEYGATE_REQUIRE_BROWSER to make this a failure", chromiumPath)
	}
	shots := os.Getenv("KEYGATE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first call starts the browser, which lives as long as its
	// context: no timeout on that one.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	ctx, cancel := context.WithTimeout(browserCtx, 3*time.Minute)
	t.Cleanup(cancel)
	return &session{t: t, ctx: ctx, shots: shots}
}

// do runs steps, failing the test on error.
func (s *session) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(s.ctx, steps...); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

// nav runs steps that navigate (a click on a link or a button, a
// Navigate) and waits until the next page has loaded; it returns its
// HTTP status.
func (s *session) nav(what string, steps ...chromedp.Action[chromedp.Void]) int64 {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
	if resp == nil {
		return 0
	}
	return resp.Status
}

// get runs an action that returns a value, failing the test on error.
func get[T any](s *session, what string, a chromedp.Action[T]) T {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, a)
	if err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// css is a CSS selector.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// shot saves a screenshot of the whole page as NN-name.png, after
// checking that every control of the page has a label and running
// axe-core's WCAG 2.0/2.1 A and AA rules on it.
func (s *session) shot(name string) {
	s.t.Helper()
	unlabelled := get(s, "check the labels", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(
		'input:not([type=hidden]), select, textarea, button')).filter(e =>
		!(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim()).map(e => e.outerHTML)`))
	for _, u := range unlabelled {
		s.t.Errorf("%s: a control without a label: %s", name, u)
	}
	s.axe(name)
	png := get(s, "screenshot "+name, chromedp.FullScreenshot(100))
	s.n++
	path := filepath.Join(s.shots, fmt.Sprintf("%02d-%s.png", s.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.taken = append(s.taken, path)
}

// text returns the page's visible text.
func (s *session) text() string {
	s.t.Helper()
	return get(s, "read the text", chromedp.Evaluate[string](`document.body.innerText`))
}

// wantText fails unless the page's text holds each of texts, ignoring
// case (styles capitalize some).
func (s *session) wantText(texts ...string) {
	s.t.Helper()
	txt := s.text()
	for _, want := range texts {
		if !strings.Contains(strings.ToLower(txt), strings.ToLower(want)) {
			s.t.Errorf("the page lacks %q:\n%s", want, txt)
		}
	}
}

// noToken fails if the page holds a token anywhere: markup, attributes,
// inputs' values.
func (s *session) noToken(where string, tokens ...string) {
	s.t.Helper()
	page := get(s, "read the page", chromedp.Evaluate[string](
		`document.documentElement.outerHTML + " " + Array.from(document.querySelectorAll("input,textarea")).map(e => e.value).join(" ")`))
	for _, tok := range tokens {
		if strings.Contains(page, tok) {
			s.t.Errorf("%s: the token is in the page", where)
		}
	}
	if tokenPattern.MatchString(page) {
		s.t.Errorf("%s: a token is in the page", where)
	}
}

// signIn signs in with token on the sign-in page.
func (s *session) signIn(base, token string) {
	s.t.Helper()
	s.nav("open the sign-in page", chromedp.Navigate(base+"/console/signin"))
	s.do("enter the token", chromedp.SendKeys(css("#token"), token))
	s.nav("sign in", chromedp.Click(css(`form.stack button[type="submit"]`)))
}

// location returns the page's path and query.
func (s *session) location() string {
	return get(s, "read the location", chromedp.Evaluate[string](`location.pathname + location.search`))
}

// setSwitch turns the permission switch of scope on or off, as a person
// would: with a click, checking the result.
func (s *session) setSwitch(scope string, on bool) {
	s.t.Helper()
	sel := fmt.Sprintf(`input[name="scope"][value=%q]`, scope)
	checked := func() bool {
		return get(s, "read switch "+scope, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).checked`, sel)))
	}
	if checked() != on {
		s.do("click switch "+scope, chromedp.Click(css(sel), chromedp.NodeReady))
		if checked() != on {
			s.t.Fatalf("switch %s did not turn %v", scope, on)
		}
	}
}

// toggleByKeyboard turns the switch of scope with the keyboard alone:
// focus, then the space bar.
func (s *session) toggleByKeyboard(scope string) {
	s.t.Helper()
	sel := fmt.Sprintf(`input[name="scope"][value=%q]`, scope)
	before := get(s, "read switch "+scope, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).checked`, sel)))
	s.do("press space on "+scope, chromedp.Focus(css(sel)), chromedp.KeyEvent(" "))
	after := get(s, "read switch "+scope, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).checked`, sel)))
	if after == before {
		s.t.Fatalf("the space bar did not toggle %s", scope)
	}
}

// choose selects an option of a select and tells the page, as a
// person's choice does.
func (s *session) choose(sel, value string) {
	s.t.Helper()
	s.do("choose "+value, chromedp.SetValue(css(sel), value))
	get(s, "tell the page", chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).dispatchEvent(new Event("change"))`, sel)))
}

// submit clicks a form's button and waits for the next page.
func (s *session) submit(button string) {
	s.t.Helper()
	s.nav("submit", chromedp.Click(css(button)))
}

// panelToken reads the token from the one-time panel's DOM, checks the
// panel has the focus and its warning, and copies it with the button.
func (s *session) panelToken() (token, keyPath string) {
	s.t.Helper()
	s.do("wait for the panel", chromedp.WaitVisible(css("#token-panel")))
	token = get(s, "read the token", chromedp.Value(css("#token-value")))
	focused := get(s, "read the focus", chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`))
	keyPath = get(s, "read the key link", chromedp.AttributeValue(css("#token-panel a.btn-ghost"), "href")).Value
	if !tokenPattern.MatchString(token) {
		s.t.Fatalf("the panel's token %q is not a token", token)
	}
	if focused != "token-panel" {
		s.t.Errorf("focus is on %q, want the token panel", focused)
	}
	s.wantText("This is the only time the token can be copied.")
	s.do("copy", chromedp.Click(css("button[data-copy]")))
	copied := get(s, "read the copy status", chromedp.Poll[string](
		`document.getElementById("copy-status").textContent || null`, chromedp.WithPollingTimeout(5*time.Second)))
	if !strings.Contains(copied, "copied") {
		s.t.Errorf("after the copy button: %q", copied)
	}
	clip, err := chromedp.Run(s.ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil {
		s.t.Logf("read the clipboard: %v", err)
	} else if clip != token {
		s.t.Errorf("the clipboard holds %q, want the token", clip)
	}
	return token, keyPath
}

// tryNav is nav for a navigation that may not load a page (a reload or
// a back to a page that was the answer to a form): it waits at most 10s
// and logs what went wrong.
func (s *session) tryNav(what string, step chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if resp, err := chromedp.RunResponse(ctx, step); err != nil {
		s.t.Logf("%s: %v", what, err)
	} else if resp != nil {
		s.t.Logf("%s: %d", what, resp.Status)
	}
}

// waitForUsage loads the key page at url until its chart's description
// starts with want, for at most 15 s.
func (s *session) waitForUsage(url, want string) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		desc := get(s, "read the chart", chromedp.Evaluate[string](`(document.getElementById("traffic-svg-desc") || {}).textContent || ""`))
		if strings.HasPrefix(desc, want) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the key page's chart says %q, want %q", desc, want)
		}
		time.Sleep(300 * time.Millisecond)
		s.nav("reload the key page", chromedp.Navigate(url))
	}
}

// keyID returns the id of the key in the key page's path.
func keyID(t *testing.T, path string) string {
	m := regexp.MustCompile(`/keys/([0-9a-f-]{36})$`).FindStringSubmatch(path)
	if m == nil {
		t.Fatalf("no key id in %q", path)
	}
	return m[1]
}

// TestConsoleFlows goes through the seeds' flows in the browser, against
// keygate serve and its demo API.
func TestConsoleFlows(t *testing.T) {
	s := newSession(t)
	srv := startServer(t)
	base := srv.url
	t.Cleanup(func() {
		t.Logf("screenshots (%d):\n%s", len(s.taken), strings.Join(s.taken, "\n"))
	})
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(s.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: base}); err != nil {
			t.Logf("grant %s: %v", name, err)
		}
	}

	// Sign in with the bootstrap admin key.
	s.nav("open the console", chromedp.Navigate(base+"/console/"))
	if loc := s.location(); loc != "/console/signin" {
		t.Fatalf("signed out, the console is at %q", loc)
	}
	s.shot("signin")
	s.signIn(base, srv.admin)
	s.wantText("API tokens", "bootstrap-admin", "Add API token")
	s.shot("list")
	s.rowActionsInside("list", 1)

	// Without JavaScript the custom date is there to fill in.
	s.do("switch scripts off", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	s.nav("open the add page without scripts", chromedp.Navigate(base+"/console/keys/new"))
	if !s.shown("#expiry-custom") {
		t.Error("without scripts, the custom date does not show")
	}
	// On again before the screenshot, whose checks run scripts; the page
	// stays as it loaded.
	s.do("switch scripts on", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
		return err
	}))
	s.shot("add-no-script")
	s.nav("open the list", chromedp.Navigate(base+"/console/"))

	// Add a token: two category switches and a custom date.
	date := time.Now().UTC().AddDate(0, 0, 45).Format(time.DateOnly)
	s.nav("open the add page", chromedp.Click(css(`a[href="/console/keys/new"]`)))
	if s.shown("#expiry-custom") {
		t.Error("the custom date shows before Custom date is chosen")
	}
	s.shot("add-empty")
	s.do("fill the add form",
		chromedp.SendKeys(css("#name"), "grafana"),
		chromedp.SendKeys(css("#description"), "Dashboards: reads the organization and the clusters"),
		chromedp.SendKeys(css("#owner"), "alice"),
	)
	s.choose("#expiry", "custom")
	if !s.shown("#expiry-custom") {
		t.Error("choosing Custom date does not show the date field")
	}
	s.do("pick the date", chromedp.SetValue(css("#expiry_date"), date))
	s.setSwitch("organization:read", true)
	s.setSwitch("cluster:read", true)
	s.shot("add-filled")
	s.submit(`form.form button[type="submit"]`)
	token, keyPath := s.panelToken()
	s.shot("token-panel")
	id := keyID(t, keyPath)

	// The token does what its switches say.
	srv.wantCalls(t, token, 200, 200, 403)

	// Reload, go back, reopen: the token is never shown again.
	s.tryNav("reload the panel", chromedp.Reload())
	s.noToken("the reloaded panel", token)
	s.shot("panel-reloaded")
	s.nav("back to the list", chromedp.Navigate(base+"/console/"))
	s.noToken("the list", token)
	s.tryNav("go back", chromedp.NavigateBack())
	s.noToken("the page gone back to", token)
	s.nav("open the key", chromedp.Navigate(base+keyPath))
	s.noToken("the key page", token)
	s.wantText("grafana", "alice", "Organization", "Cluster")
	// Its three calls, charted once the server has written them (the
	// demo's 403 is the demo's own permission check: the key was valid).
	s.waitForUsage(base+keyPath, "3 verifications in the last 30 days: 3 valid, 0 refused.")
	s.wantText("Usage, last 30 days", "Valid (solid)", "Refused (hatched, stacked on top)", "Daily figures")
	s.shot("key")

	// Edit its permissions: cluster:write, effective on the next request.
	s.nav("open the edit page", chromedp.Click(css(`a[href="/console/keys/`+id+`/edit"]`)))
	s.toggleByKeyboard("cluster:write")
	s.shot("edit")
	s.submit(`form.form button[type="submit"]`)
	s.wantText("Saved. The changes apply from the token's next request.")
	s.shot("key-saved")
	srv.wantCalls(t, token, 200, 200, 201)

	// Regenerate with a new expiry: the old token 401, the new one works.
	s.nav("open the regenerate page", chromedp.Click(css(`a[href="/console/keys/`+id+`/regenerate"]`)))
	if s.shown("#expiry-custom") {
		t.Error("regenerate: the custom date shows before Custom date is chosen")
	}
	s.choose("#expiry", "custom")
	if !s.shown("#expiry-custom") {
		t.Error("regenerate: choosing Custom date does not show the date field")
	}
	s.choose("#expiry", "90d")
	if s.shown("#expiry-custom") {
		t.Error("regenerate: the custom date still shows after 90 days is chosen")
	}
	s.shot("regenerate")
	s.submit(`form.form button[type="submit"]`)
	newToken, _ := s.panelToken()
	s.wantText("Token regenerated", "The old token has stopped working")
	s.shot("regenerated-panel")
	if newToken == token {
		t.Fatal("the regenerated token is the old one")
	}
	srv.wantCalls(t, token, 401, 401, 401)
	srv.wantCalls(t, newToken, 200, 200, 201)

	// Two more keys: one that may only view, one that may not sign in.
	addKey := func(name string, scopes ...string) string {
		s.nav("open the add page", chromedp.Navigate(base+"/console/keys/new"))
		s.do("name it", chromedp.SendKeys(css("#name"), name))
		s.choose("#expiry", "7d")
		for _, sc := range scopes {
			s.setSwitch(sc, true)
		}
		s.submit(`form.form button[type="submit"]`)
		tok, _ := s.panelToken()
		return tok
	}
	viewer := addKey("auditor", "apikey:view", "organization:read")
	outsider := addKey("reporting", "organization:read")

	// Revoke, then delete.
	s.nav("open the revoke page", chromedp.Navigate(base+"/console/keys/"+id+"/revoke"))
	s.shot("revoke")
	s.submit(`form[action$="/revoke"] button[type="submit"]`)
	s.wantText(`Token "grafana" revoked`)
	s.shot("list-revoked")
	s.rowActionsInside("list-revoked", 4)
	if n := get(s, "count the revoked key's edit links", chromedp.Evaluate[int](
		`document.querySelectorAll('a[href$="/keys/`+id+`/edit"]').length`)); n != 0 {
		t.Errorf("the list offers %d edit links for the revoked key", n)
	}
	s.nav("open the revoked key", chromedp.Navigate(base+keyPath))
	if n := get(s, "count the revoked key's edit links", chromedp.Evaluate[int](
		`document.querySelectorAll('a[href$="/edit"]').length`)); n != 0 {
		t.Errorf("the revoked key's page offers %d edit links", n)
	}
	srv.wantCalls(t, newToken, 401, 401, 401)
	// Refused since: its uses (3, 3 more after the edit, 3 with the new
	// token) and the 3 refusals, hatched on today's bar.
	s.waitForUsage(base+keyPath, "12 verifications in the last 30 days: 9 valid, 3 refused (3 revoked).")
	s.wantText("Refused\n3 (3 revoked)")
	s.shot("key-revoked")
	s.nav("open the delete page", chromedp.Navigate(base+"/console/keys/"+id+"/delete"))
	s.wantText("This cannot be undone.")
	s.shot("delete")
	s.submit(`form[action$="/delete"] button[type="submit"]`)
	s.wantText(`Token "grafana" deleted.`)
	if get(s, "find the deleted key", chromedp.Evaluate[bool](
		`Array.from(document.querySelectorAll("a.key-name")).some(a => a.textContent === "grafana")`)) {
		t.Error("the deleted key is still listed")
	}
	s.shot("list-deleted")
	if got := srv.call(t, "GET", "/v1/keys/"+id, srv.admin, ""); got != http.StatusNotFound {
		t.Errorf("the deleted key: GET /v1/keys/{id} = %d, want 404", got)
	}

	// A form whose anti-forgery token is wrong is refused, on a page that
	// still knows who is signed in, and with what rights.
	s.nav("open the list", chromedp.Navigate(base+"/console/"))
	if status := s.nav("post a forged form", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`(() => {
		const f = document.createElement("form");
		f.method = "post"; f.action = "/console/keys/new";
		const c = document.createElement("input");
		c.type = "hidden"; c.name = "csrf"; c.value = "forged";
		f.appendChild(c); document.body.appendChild(f); f.submit();
		return true;
	})()`)(ctx, t)
		return err
	})); status != http.StatusForbidden {
		t.Errorf("a forged form: %d, want 403", status)
	}
	s.wantText("Request refused", "Signed in as bootstrap-admin")
	if strings.Contains(s.text(), "View only") {
		t.Error("the refusal page shows the signed-in admin as View only")
	}
	s.shot("refused-forged")

	// Sign out; a key without apikey:view cannot sign in.
	s.submit(`form[action="/console/signout"] button`)
	s.wantText("You are signed out.")
	s.signIn(base, outsider)
	s.wantText("This key lacks apikey:view, so it cannot sign in to the console.")
	s.noToken("the refused sign-in", outsider)
	s.shot("signin-refused")

	// A key with apikey:view only sees, with no change controls, and its
	// changes are refused anyway.
	s.signIn(base, viewer)
	s.wantText("Signed in as auditor", "View only", "bootstrap-admin")
	controls := get(s, "count the controls", chromedp.Evaluate[int](
		`document.querySelectorAll('a[href$="/edit"],a[href$="/regenerate"],a[href$="/revoke"],a[href$="/delete"],a[href$="/keys/new"]').length`))
	if controls != 0 {
		t.Errorf("a view-only key sees %d change controls", controls)
	}
	s.shot("list-view-only")
	if status := s.nav("open the add page", chromedp.Navigate(base+"/console/keys/new")); status != http.StatusForbidden {
		t.Errorf("a view-only key opening the add page: %d, want 403", status)
	}
	s.wantText("Your key lacks apikey:manage: you can see tokens here but not change them.")
	s.shot("view-only-refused")
	// A hand-made form with the session's own anti-forgery token.
	s.nav("open the list", chromedp.Navigate(base+"/console/"))
	adminPath := get(s, "find the admin key", chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll("a.key-name")).find(a => a.textContent === "bootstrap-admin").getAttribute("href")`))
	status := s.nav("post a revoke", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		const f = document.createElement("form");
		f.method = "post"; f.action = %q;
		const c = document.createElement("input");
		c.type = "hidden"; c.name = "csrf"; c.value = document.querySelector('input[name="csrf"]').value;
		f.appendChild(c); document.body.appendChild(f); f.submit();
		return true;
	})()`, adminPath+"/revoke"))(ctx, t)
		return err
	}))
	if status != http.StatusForbidden {
		t.Errorf("a view-only key's revoke: %d, want 403", status)
	}
	s.wantText("Your key lacks apikey:manage")
	if got := srv.call(t, "GET", "/api/v1/organizations/acme", srv.admin, ""); got != http.StatusOK {
		t.Errorf("the admin key after the refused revoke: %d", got)
	}

	// Revoking the viewer's key ends its session at the next request.
	s.nav("open the list", chromedp.Navigate(base+"/console/"))
	viewerPath := get(s, "find the viewer key", chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll("a.key-name")).find(a => a.textContent === "auditor").getAttribute("href")`))
	if got := srv.call(t, "POST", "/v1/keys/"+keyID(t, viewerPath)+"/revoke", srv.admin, ""); got != http.StatusOK {
		t.Fatalf("revoke the viewer's key: %d", got)
	}
	s.nav("reload", chromedp.Reload())
	s.wantText("Your session ended: the key you signed in with was revoked.")
	s.shot("session-ended")

	// No token ever reached the server's log.
	if _, after, _ := strings.Cut(srv.logs.String(), "msg=listening"); tokenPattern.MatchString(after) {
		t.Error("a token reached the server's log")
	}
}

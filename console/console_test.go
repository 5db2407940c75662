package console_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name string
		cfg  console.Config
	}{
		{"no manager", console.Config{}},
		{"bad resource", console.Config{Manager: e.m, Categories: []console.Category{{Name: "Bad", Resource: "Not Ok"}}}},
		{"no name", console.Config{Manager: e.m, Categories: []console.Category{{Resource: "ok"}}}},
		{"repeated", console.Config{Manager: e.m, Categories: console.Categories("Agent", "agent")}},
		{"key management", console.Config{Manager: e.m, Categories: console.Categories("Apikey")}},
		{"wildcard", console.Config{Manager: e.m, Categories: []console.Category{{Name: "All", Resource: "*"}}}},
		{"negative", console.Config{Manager: e.m, SessionTTL: -1}},
		{"negative sessions per key", console.Config{Manager: e.m, SessionsPerKey: -1}},
		{"page size", console.Config{Manager: e.m, PageSize: 1001}},
	} {
		if _, err := console.New(tt.cfg); !errors.Is(err, console.ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", tt.name, err)
		}
	}
}

func TestCategories(t *testing.T) {
	t.Parallel()
	got := console.Categories("Custom Pricing", "Api Key", "Saml Integration")
	want := []string{"custom_pricing", "api_key", "saml_integration"}
	for i, c := range got {
		if c.Resource != want[i] {
			t.Errorf("Categories()[%d].Resource = %q, want %q", i, c.Resource, want[i])
		}
	}
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.browser(t)
	// Signed out, every page leads to the sign-in page.
	for _, path := range []string{"/", "/keys/new", "/keys/" + e.find(t, "admin").ID.String()} {
		if p := b.get(path); p.status != http.StatusSeeOther || p.location != mount+"/signin" {
			t.Errorf("GET %s signed out = %d %q, want 303 to the sign-in page", path, p.status, p.location)
		}
	}
	b.get("/signin").want(http.StatusOK, "Sign in", "API token")
	p := b.signIn(e.admin)
	if p.status != http.StatusSeeOther || p.location != mount+"/" {
		t.Fatalf("sign in = %d %q, want 303 to %s/", p.status, p.location, mount)
	}
	var session *http.Cookie
	for _, raw := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(raw, "keygate_console=") {
			session, _ = http.ParseSetCookie(raw)
		}
	}
	switch {
	case session == nil:
		t.Fatal("no session cookie")
	case !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != mount:
		t.Errorf("session cookie %q: want HttpOnly, SameSite=Strict, Path=%s", session.String(), mount)
	case session.Secure:
		t.Errorf("session cookie over plain HTTP is Secure: %q", session.String())
	case strings.Contains(session.Value, e.admin) || len(session.Value) < 40:
		t.Errorf("session cookie value %q: want a random id", session.Value)
	}
	b.get("/").want(http.StatusOK, "API tokens", "Signed in as admin", "Add API token", "Sign out")

	// Signing out ends the session: its cookie no longer signs in.
	list := b.get("/")
	out := b.post("/signout", url.Values{"csrf": {list.input("csrf")}})
	if out.status != http.StatusSeeOther || out.location != mount+"/signin?ended=signed-out" {
		t.Fatalf("sign out = %d %q", out.status, out.location)
	}
	b.follow(out).want(http.StatusOK, "You are signed out.")
	again := e.browser(t)
	again.client.Jar.SetCookies(mustURL(t, e.srv.URL+mount+"/"), []*http.Cookie{{Name: "keygate_console", Value: session.Value}})
	if p := again.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("old session cookie after sign-out: %d, want 303 to sign in", p.status)
	}
}

func TestSecureCookies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.SecureCookies = true })
	p := e.browser(t).signIn(e.admin)
	for _, raw := range p.header.Values("Set-Cookie") {
		if c, _ := http.ParseSetCookie(raw); c != nil && c.Name == "keygate_console" && !c.Secure {
			t.Errorf("cookie %q, want Secure", raw)
		}
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSignInRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	noView := e.key(t, keygate.CreateRequest{Name: "grafana", Scopes: []string{"organization:read"}}).Token.Reveal()
	revoked := e.key(t, keygate.CreateRequest{Name: "old", Scopes: []string{"apikey:view"}})
	if _, err := e.m.Revoke(context.Background(), keygate.System(), revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	expiring := e.key(t, keygate.CreateRequest{Name: "short", Scopes: []string{"apikey:view"}, Expiry: keygate.ExpireAfter(time.Hour)})
	e.clock.Add(2 * time.Hour)
	for _, tt := range []struct {
		name, token string
		status      int
		says        string
	}{
		{"lacks apikey:view", noView, http.StatusForbidden, "This key lacks apikey:view, so it cannot sign in"},
		{"garbage", "not a token", http.StatusUnauthorized, "This is not a valid API token."},
		{"unknown", "kg_" + strings.Repeat("A", 49), http.StatusUnauthorized, "This is not a valid API token."},
		{"revoked", revoked.Token.Reveal(), http.StatusUnauthorized, "This token has been revoked."},
		{"expired", expiring.Token.Reveal(), http.StatusUnauthorized, "This token has expired."},
		{"empty", "", http.StatusBadRequest, "Enter an API token."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := e.browser(t).signIn(tt.token).want(tt.status, tt.says)
			if tt.token != "" && strings.Contains(p.body, tt.token) {
				t.Error("the refused token is in the page")
			}
		})
	}
	t.Run("no anti-forgery token", func(t *testing.T) {
		b := e.browser(t)
		b.get("/signin")
		b.post("/signin", url.Values{"token": {e.admin}}).want(http.StatusForbidden, "This form has expired")
		e.browser(t).post("/signin", url.Values{"token": {e.admin}, "csrf": {"forged"}}).want(http.StatusForbidden)
	})
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	id := e.find(t, "admin").ID.String()
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	for _, path := range []string{"/", "/signin", "/keys/new", "/keys/" + id, "/keys/" + id + "/edit", "/keys/" + id + "/regenerate",
		"/keys/" + id + "/revoke", "/keys/" + id + "/delete", "/nowhere", "/static/console.css"} {
		p := b.get(path)
		if got := p.header.Get("Content-Security-Policy"); got != csp {
			t.Errorf("GET %s: CSP %q, want %q", path, got, csp)
		}
		if got := p.header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("GET %s: X-Frame-Options %q", path, got)
		}
		if got := p.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", path, got)
		}
		if !strings.HasPrefix(path, "/static/") {
			if got := p.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("GET %s: Cache-Control %q, want no-store", path, got)
			}
			if strings.Contains(p.body, "style=") || strings.Contains(p.body, "<style") || strings.Contains(p.body, "onclick") ||
				strings.Contains(p.body, "<script>") {
				t.Errorf("GET %s: inline style or script in the page", path)
			}
		}
	}
	// Assets with their version may be kept; they are referenced so.
	list := b.get("/")
	asset := re(`href="(/console/static/console\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(list.body)
	if asset == nil {
		t.Fatalf("no versioned stylesheet in the page")
	}
	res, err := http.Get(e.srv.URL + asset[1])
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || res.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("stylesheet: Cache-Control %q, Content-Type %q", cc, res.Header.Get("Content-Type"))
	}
	b.get("/nowhere").want(http.StatusNotFound, "Page not found")
	b.get("/keys/not-a-uuid").want(http.StatusNotFound, "No token has this id")
	b.post("/keys/new/x", nil).want(http.StatusNotFound)
	if p := b.do(mustRequest(t, http.MethodDelete, e.srv.URL+mount+"/keys/"+id)); p.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE a key page = %d, want 405", p.status)
	}
}

func mustRequest(t testing.TB, method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// addForm returns the add form's values, as shown, with fields set.
func addForm(b *browser, set map[string]string, scopes ...string) url.Values {
	v := b.form("/keys/new")
	for k, s := range set {
		v.Set(k, s)
	}
	v["scope"] = scopes
	return v
}

func TestCreateShowsTokenOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	form := addForm(b, map[string]string{"name": "grafana", "description": "dashboards", "owner": "alice",
		"expiry": "custom", "expiry_date": "2027-01-15"}, "organization:read", "cluster:read")
	p := b.post("/keys/new", form).want(http.StatusOK, "Token created",
		"This is the only time the token can be copied. In case of loss you will need to create a new token.")
	token := p.token()
	if token == "" {
		t.Fatalf("no token in the panel:\n%s", p.text())
	}
	if !strings.Contains(p.body, `id="token-panel" tabindex="-1"`) || !strings.Contains(p.body, "data-focus autofocus") {
		t.Error("the token panel does not take the focus")
	}
	key, err := e.m.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("the token shown does not verify: %v", err)
	}
	if got, want := key.Scopes, []string{"cluster:read", "organization:read"}; !equal(got, want) {
		t.Errorf("scopes %v, want %v", got, want)
	}
	if want := time.Date(2027, 1, 16, 0, 0, 0, 0, time.UTC); !key.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want the end of 2027-01-15 UTC", key.ExpiresAt)
	}
	if key.Owner != "alice" || key.Description != "dashboards" {
		t.Errorf("owner %q, description %q", key.Owner, key.Description)
	}
	if err := e.m.Authorize(key, permission.MustParse("cluster:write"), ""); err == nil {
		t.Error("cluster:write allowed without its switch")
	}
	// After the panel, no page shows the token again.
	id := key.ID.String()
	for _, path := range []string{"/", "/keys/" + id, "/keys/" + id + "/edit", "/keys/" + id + "/regenerate", "/keys/" + id + "/revoke",
		"/keys/" + id + "/delete", "/?status=active"} {
		if p := b.get(path); strings.Contains(p.body, token) || p.token() != "" {
			t.Errorf("GET %s shows a token", path)
		}
	}
	// Sending the form again (a reload of the panel) makes no second key
	// and shows no token.
	again := b.post("/keys/new", form).want(http.StatusConflict, "This form was already sent")
	if again.token() != "" {
		t.Error("the form sent again shows a token")
	}
	page, _ := e.m.List(context.Background(), keygate.System(), store.ListOptions{})
	if len(page.Keys) != 2 {
		t.Errorf("%d keys stored, want 2 (admin, grafana)", len(page.Keys))
	}
	if strings.Contains(e.logs.String(), token) || strings.Contains(e.logs.String(), e.admin) {
		t.Error("a token reached the log")
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestCreatePresetsAndLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	for _, tt := range []struct {
		expiry string
		want   time.Time
	}{
		{"7d", e.clock.Now().Add(7 * 24 * time.Hour)},
		{"30d", e.clock.Now().Add(30 * 24 * time.Hour)},
		{"60d", e.clock.Now().Add(60 * 24 * time.Hour)},
		{"90d", e.clock.Now().Add(90 * 24 * time.Hour)},
		{"never", time.Time{}},
	} {
		name := "k-" + tt.expiry
		b.post("/keys/new", addForm(b, map[string]string{"name": name, "expiry": tt.expiry}, "billing:read")).want(http.StatusOK)
		if k := e.find(t, name); k == nil || !k.ExpiresAt.Equal(tt.want) {
			t.Errorf("expiry %s: key %v, want expiry %v", tt.expiry, k, tt.want)
		}
	}
	b.post("/keys/new", addForm(b, map[string]string{"name": "limited", "workspace": "tiger", "role": "viewer",
		"rate_requests": "100", "rate_window": "minute", "uses": "5", "cidrs": "10.0.0.0/8\n192.168.1.7"})).want(http.StatusOK)
	k := e.find(t, "limited")
	switch {
	case k == nil:
		t.Fatal("no key made")
	case k.Role != "viewer" || k.Workspace != "tiger":
		t.Errorf("role %q, workspace %q", k.Role, k.Workspace)
	case k.RateLimit != 100 || k.RateWindow != time.Minute || k.RemainingUses == nil || *k.RemainingUses != 5:
		t.Errorf("limits %d/%v uses %v", k.RateLimit, k.RateWindow, k.RemainingUses)
	case len(k.AllowedCIDRs) != 2 || k.AllowedCIDRs[1].String() != "192.168.1.7/32":
		t.Errorf("allowed CIDRs %v", k.AllowedCIDRs)
	}

	// Named rate limits and a refill of the uses.
	v := addForm(b, map[string]string{"name": "metered", "uses": "500", "refill_amount": "500", "refill_every": "month", "refill_day": "31"}, "billing:read")
	v["named_rate_name"] = []string{"tokens", "exports", ""}
	v["named_rate_requests"] = []string{"100000", "5", ""}
	v["named_rate_window"] = []string{"hour", "day", "second"}
	v["named_rate_on_demand"] = []string{"1"}
	b.post("/keys/new", v).want(http.StatusOK, "Token created")
	k = e.find(t, "metered")
	want := []keygate.RateLimit{{Name: "tokens", Requests: 100000, Window: time.Hour}, {Name: "exports", Requests: 5, Window: 24 * time.Hour, OnDemand: true}}
	if k == nil || !slices.Equal(k.RateLimits, want) || k.Refill == nil || *k.Refill != (keygate.Refill{Amount: 500, Every: "month", Day: 31}) {
		t.Fatalf("named limits and refill: %+v", k)
	}
	b.get("/keys/"+k.ID.String()).want(http.StatusOK, "tokens : 100000 per hour", "exports : 5 per day", "only for the requests that name it",
		"back to 500 every month on day 31 (or the month’s last), UTC")
}

func TestCreateBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	e.key(t, keygate.CreateRequest{Name: "taken", Scopes: []string{"billing:read"}})
	for _, tt := range []struct {
		name   string
		set    map[string]string
		scopes []string
		status int
		says   string
	}{
		{"unknown category", map[string]string{"name": "x"}, []string{"rockets:launch"}, 400, `"rockets:launch" is not a permission this console offers.`},
		{"refill without uses", map[string]string{"name": "x", "refill_amount": "5", "refill_every": "day"}, []string{"billing:read"}, 400, "A refill needs uses to start from"},
		{"refill without day", map[string]string{"name": "x", "uses": "5", "refill_amount": "5", "refill_every": "month"}, []string{"billing:read"}, 400, "A monthly refill needs its day"},
		{"named limit without name", map[string]string{"name": "x", "named_rate_requests": "5"}, []string{"billing:read"}, 400, "Each rate limit needs a name"},
		{"named limit called default", map[string]string{"name": "x", "named_rate_name": "default", "named_rate_requests": "5", "named_rate_window": "second"}, []string{"billing:read"}, 400, "default"},
		{"bad date", map[string]string{"name": "x", "expiry": "custom", "expiry_date": "15/01/2027"}, []string{"billing:read"}, 400, "Enter the custom date as year-month-day"},
		{"custom without date", map[string]string{"name": "x", "expiry": "custom"}, []string{"billing:read"}, 400, "Pick the custom date"},
		{"date without custom", map[string]string{"name": "x", "expiry": "7d", "expiry_date": "2027-01-15"}, []string{"billing:read"}, 400, "A custom date was entered"},
		{"past date", map[string]string{"name": "x", "expiry": "custom", "expiry_date": "2020-01-01"}, []string{"billing:read"}, 400, "Choose an expiry in the future."},
		{"unknown expiry", map[string]string{"name": "x", "expiry": "3d"}, []string{"billing:read"}, 400, "Choose an expiry."},
		{"no name", map[string]string{"name": ""}, []string{"billing:read"}, 400, "Give the token a name."},
		{"no permissions", map[string]string{"name": "x"}, nil, 400, "Give the token a role, or switch on at least one permission."},
		{"duplicate", map[string]string{"name": "taken"}, []string{"billing:read"}, 409, "A token with this name already exists"},
		{"role needs workspace", map[string]string{"name": "x", "role": "viewer"}, nil, 400, "This role works inside one workspace"},
		{"unknown role", map[string]string{"name": "x", "role": "pilot"}, nil, 400, "There is no such role."},
		{"bad rate", map[string]string{"name": "x", "rate_requests": "lots"}, []string{"billing:read"}, 400, "The rate limit must be a whole number"},
		{"bad cidr", map[string]string{"name": "x", "cidrs": "10.0.0.0/99"}, []string{"billing:read"}, 400, `"10.0.0.0/99" is not an IP address`},
		{"long name", map[string]string{"name": strings.Repeat("n", 200)}, []string{"billing:read"}, 400, "name longer than 128 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := b.post("/keys/new", addForm(b, tt.set, tt.scopes...)).want(tt.status, tt.says)
			if p.token() != "" {
				t.Error("a token is shown")
			}
			// The form comes back as typed, marked.
			if tt.set["name"] == "x" && p.input("name") != "x" {
				t.Errorf("name field %q, want it kept", p.input("name"))
			}
			if !strings.Contains(p.body, `role="alert"`) {
				t.Error("no error summary")
			}
		})
	}
	t.Run("oversized form", func(t *testing.T) {
		v := addForm(b, map[string]string{"name": "big", "description": strings.Repeat("d", 70<<10)}, "billing:read")
		b.post("/keys/new", v).want(http.StatusRequestEntityTooLarge, "larger than the console accepts")
		if e.find(t, "big") != nil {
			t.Error("the oversized form made a key")
		}
	})
}

func TestEditPermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	c := e.key(t, keygate.CreateRequest{Name: "ci", Scopes: []string{"cluster:read", "app/payments:deploy"}})
	id := c.Key.ID.String()
	ctx := context.Background()
	key, _ := e.m.Verify(ctx, c.Token.Reveal())
	if e.m.Authorize(key, permission.MustParse("cluster:write"), "") == nil {
		t.Fatal("cluster:write allowed before the edit")
	}
	v := b.form("/keys/" + id + "/edit")
	if got := v["scope"]; !equal(got, []string{"cluster:read", "app/payments:deploy"}) {
		t.Errorf("edit form's switches on: %v", got)
	}
	v.Set("description", "the CI")
	v.Add("scope", "cluster:write")
	p := b.post("/keys/"+id+"/edit", v)
	if p.status != http.StatusSeeOther {
		t.Fatalf("edit = %d\n%s", p.status, p.text())
	}
	b.follow(p).want(http.StatusOK, "Saved. The changes apply from the token's next request.", "the CI")
	key, err := e.m.Verify(ctx, c.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Authorize(key, permission.MustParse("cluster:write"), ""); err != nil {
		t.Errorf("cluster:write not effective on the next request: %v", err)
	}
	if !equal(key.Scopes, []string{"app/payments:deploy", "cluster:read", "cluster:write"}) {
		t.Errorf("scopes %v: the scope of no category must be kept", key.Scopes)
	}
	// A scope the key does not hold and no switch offers is refused.
	v = b.form("/keys/" + id + "/edit")
	v.Add("scope", "rockets:launch")
	b.post("/keys/"+id+"/edit", v).want(http.StatusBadRequest, `"rockets:launch" is not a permission`)
	// Nothing changed.
	p = b.post("/keys/"+id+"/edit", b.form("/keys/"+id+"/edit"))
	b.follow(p).want(http.StatusOK, "Nothing was changed.")
	// Limits: uses, rate.
	v = b.form("/keys/" + id + "/edit")
	v.Set("uses", "3")
	v.Set("rate_requests", "10")
	v.Set("rate_window", "second")
	b.follow(b.post("/keys/"+id+"/edit", v)).want(http.StatusOK, "10 per second", "3 left")
	// Named limits and a refill, then none.
	v = b.form("/keys/" + id + "/edit")
	v["named_rate_name"] = []string{"searches", "", ""}
	v["named_rate_requests"] = []string{"3", "", ""}
	v["named_rate_window"] = []string{"second", "second", "second"}
	v.Set("refill_amount", "30")
	v.Set("refill_every", "day")
	b.follow(b.post("/keys/"+id+"/edit", v)).want(http.StatusOK, "searches : 3 per second", "back to 30 every day at midnight UTC", "3 left")
	v = b.form("/keys/" + id + "/edit")
	if v.Get("refill_amount") != "30" || v["named_rate_name"][0] != "searches" {
		t.Errorf("the edit form shows refill %q and limits %q", v.Get("refill_amount"), v["named_rate_name"])
	}
	v["named_rate_name"][0], v["named_rate_requests"][0] = "", ""
	v.Set("refill_amount", "")
	v.Set("uses", "")
	b.follow(b.post("/keys/"+id+"/edit", v)).want(http.StatusOK, "Saved.")
	if k := e.find(t, key.Name); k.RateLimits != nil || k.Refill != nil || k.RemainingUses != nil {
		t.Errorf("after removing them: %+v", k)
	}
}

func TestEditConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	c := e.key(t, keygate.CreateRequest{Name: "ci", Scopes: []string{"cluster:read"}})
	id := c.Key.ID.String()
	v := b.form("/keys/" + id + "/edit")
	name := "renamed elsewhere"
	if _, err := e.m.Update(context.Background(), keygate.System(), c.Key.ID, keygate.UpdateRequest{Name: &name}); err != nil {
		t.Fatal(err)
	}
	v.Set("description", "mine")
	p := b.post("/keys/"+id+"/edit", v).want(http.StatusConflict, "Someone changed this token since you opened the page")
	if p.input("name") != "ci" || !strings.Contains(p.body, ">mine</textarea>") {
		t.Error("the conflict page lost what was typed")
	}
	// Sent again, the person's version wins.
	b.follow(b.post("/keys/"+id+"/edit", p.formValues())).want(http.StatusOK, "Saved.")
	if k := e.find(t, "ci"); k == nil || k.Description != "mine" {
		t.Errorf("key after the second save: %+v", k)
	}
}

func TestRegenerate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	ctx := context.Background()
	c := e.key(t, keygate.CreateRequest{Name: "ci", Scopes: []string{"cluster:read"}})
	id := c.Key.ID.String()
	v := b.form("/keys/" + id + "/regenerate")
	v.Set("expiry", "90d")
	p := b.post("/keys/"+id+"/regenerate", v).want(http.StatusOK, "Token regenerated", "This is the only time the token can be copied",
		"The old token has stopped working")
	token := p.token()
	if token == "" || token == c.Token.Reveal() {
		t.Fatalf("new token %q", token)
	}
	if _, err := e.m.Verify(ctx, c.Token.Reveal()); !errors.Is(err, keygate.ErrInvalid) {
		t.Errorf("old token: %v, want ErrInvalid", err)
	}
	k, err := e.m.Verify(ctx, token)
	if err != nil {
		t.Fatalf("new token: %v", err)
	}
	if want := e.clock.Now().Add(90 * 24 * time.Hour); !k.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want %v", k.ExpiresAt, want)
	}
	b.post("/keys/"+id+"/regenerate", v).want(http.StatusConflict, "This form was already sent")
	if page := b.get("/keys/" + id); page.token() != "" || page.contains("Previous token") {
		t.Error("the key page shows a token, or a grace period there is none of")
	}
	// With a grace period, the old token works until it ends.
	v = b.form("/keys/" + id + "/regenerate")
	v.Set("grace", "24h")
	b.post("/keys/"+id+"/regenerate", v).want(http.StatusOK, "The old token keeps working until")
	if _, err := e.m.Verify(ctx, token); err != nil {
		t.Errorf("old token in its grace period: %v", err)
	}
	b.get("/keys/"+id).want(http.StatusOK, "Previous token works until 1 Dec 2026 10:00 UTC")
	// A revoked key cannot be regenerated.
	if _, err := e.m.Revoke(ctx, keygate.System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	v = b.form("/keys/" + id + "/regenerate")
	b.post("/keys/"+id+"/regenerate", v).want(http.StatusConflict, "a revoked token cannot be regenerated")
}

func TestRevokeAndDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	ctx := context.Background()
	c := e.key(t, keygate.CreateRequest{Name: "ci", Scopes: []string{"cluster:read"}})
	id := c.Key.ID.String()
	b.get("/keys/"+id+"/revoke").want(http.StatusOK, "Revoke this token?", "Revoke token")
	p := b.post("/keys/"+id+"/revoke", b.form("/keys/"+id+"/revoke"))
	b.follow(p).want(http.StatusOK, `Token "ci" revoked`, "revoked")
	if _, err := e.m.Verify(ctx, c.Token.Reveal()); !errors.Is(err, keygate.ErrRevoked) {
		t.Errorf("after revoke: %v, want ErrRevoked", err)
	}
	b.get("/?status=revoked").want(http.StatusOK, "ci")
	b.get("/keys/"+id+"/delete").want(http.StatusOK, "Delete this token?", "This cannot be undone.")
	p = b.post("/keys/"+id+"/delete", b.form("/keys/"+id+"/delete"))
	b.follow(p).want(http.StatusOK, `Token "ci" deleted.`)
	if e.find(t, "ci") != nil {
		t.Error("the key is still stored")
	}
	b.get("/keys/"+id).want(http.StatusNotFound, "No token has this id")
	b.post("/keys/"+id+"/delete", url.Values{"csrf": {b.get("/").input("csrf")}}).want(http.StatusNotFound)
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	c := e.key(t, keygate.CreateRequest{Name: "ci", Scopes: []string{"cluster:read"}})
	id := c.Key.ID.String()
	good := b.form("/keys/" + id + "/revoke")
	for _, tt := range []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"no token", url.Values{}, nil},
		{"wrong token", url.Values{"csrf": {"forged"}}, nil},
		{"cross-site", good, []string{"Sec-Fetch-Site", "cross-site"}},
		{"other origin", good, []string{"Origin", "https://evil.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b.post("/keys/"+id+"/revoke", tt.form, tt.headers...).want(http.StatusForbidden)
			if k := e.find(t, "ci"); !k.RevokedAt.IsZero() {
				t.Fatal("the forged request revoked the key")
			}
		})
	}
	// Another session's token does not do either.
	other := e.signedIn(t, e.admin)
	b.post("/keys/"+id+"/revoke", other.form("/keys/"+id+"/revoke")).want(http.StatusForbidden)
	// The same-origin request with the session's token does.
	if p := b.post("/keys/"+id+"/revoke", good, "Sec-Fetch-Site", "same-origin"); p.status != http.StatusSeeOther {
		t.Errorf("good request = %d", p.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.SessionTTL = 10 * time.Minute; c.SessionMaxAge = time.Hour })
	b := e.signedIn(t, e.admin)
	// Activity keeps the session until its maximum age.
	for range 6 {
		e.clock.Add(9 * time.Minute)
		b.get("/").want(http.StatusOK)
	}
	e.clock.Add(7 * time.Minute)
	p := b.get("/")
	if p.status != http.StatusSeeOther || p.location != mount+"/signin?ended=expired" {
		t.Fatalf("after the maximum age: %d %q", p.status, p.location)
	}
	b.follow(p).want(http.StatusOK, "Your session has expired.")
	// Idle past the TTL.
	b = e.signedIn(t, e.admin)
	e.clock.Add(11 * time.Minute)
	if p := b.get("/"); p.location != mount+"/signin?ended=expired" {
		t.Errorf("idle: %d %q", p.status, p.location)
	}
}

func TestKeyChangesEndSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		change func(e *env, k *keygate.Created)
		ended  string
	}{
		{"revoked", func(e *env, k *keygate.Created) { e.m.Revoke(ctx, keygate.System(), k.Key.ID) }, "revoked"},
		{"deleted", func(e *env, k *keygate.Created) { e.m.Delete(ctx, keygate.System(), k.Key.ID) }, "deleted"},
		{"regenerated", func(e *env, k *keygate.Created) {
			e.m.Regenerate(ctx, keygate.System(), k.Key.ID, keygate.RegenerateRequest{Expiry: keygate.ExpireAfterDays(7)})
		}, "regenerated"},
		{"expired", func(e *env, k *keygate.Created) { e.clock.Add(31 * 24 * time.Hour) }, "key-expired"},
		{"lost apikey:view", func(e *env, k *keygate.Created) {
			e.m.Update(ctx, keygate.System(), k.Key.ID, keygate.UpdateRequest{Scopes: &[]string{"cluster:read"}})
		}, "no-view"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *console.Config) { c.SessionTTL = 60 * 24 * time.Hour; c.SessionMaxAge = 60 * 24 * time.Hour })
			k := e.key(t, keygate.CreateRequest{Name: "ops", Scopes: []string{"apikey:view", "apikey:manage", "cluster:read"}})
			b := e.signedIn(t, k.Token.Reveal())
			b.get("/").want(http.StatusOK, "Signed in as ops")
			tt.change(e, k)
			p := b.get("/")
			if p.status != http.StatusSeeOther || p.location != mount+"/signin?ended="+tt.ended {
				t.Fatalf("next request: %d %q, want 303 to sign in (%s)", p.status, p.location, tt.ended)
			}
			b.follow(p).want(http.StatusOK, "Your session")
			if p := b.get("/"); p.status != http.StatusSeeOther {
				t.Errorf("the session came back: %d", p.status)
			}
		})
	}
	t.Run("grace period", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *console.Config) { c.SessionTTL = 2 * time.Hour })
		k := e.key(t, keygate.CreateRequest{Name: "ops", Scopes: []string{"apikey:view"}})
		b := e.signedIn(t, k.Token.Reveal())
		if _, err := e.m.Regenerate(ctx, keygate.System(), k.Key.ID, keygate.RegenerateRequest{Expiry: keygate.ExpireAfterDays(7), GracePeriod: time.Hour}); err != nil {
			t.Fatal(err)
		}
		b.get("/").want(http.StatusOK)
		e.clock.Add(time.Hour)
		if p := b.get("/"); p.location != mount+"/signin?ended=regenerated" {
			t.Errorf("after the grace period: %d %q", p.status, p.location)
		}
	})
	t.Run("an old secret changes nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		k := e.key(t, keygate.CreateRequest{Name: "ops", Scopes: []string{"apikey:view", "apikey:manage", "cluster:read"}})
		other := e.key(t, keygate.CreateRequest{Name: "other", Scopes: []string{"cluster:read"}})
		if _, err := e.m.Regenerate(ctx, keygate.System(), k.Key.ID, keygate.RegenerateRequest{Expiry: keygate.ExpireAfterDays(7), GracePeriod: time.Hour}); err != nil {
			t.Fatal(err)
		}
		b := e.signedIn(t, k.Token.Reveal()) // the old token, in its grace period
		b.get("/").want(http.StatusOK, "Signed in as ops")
		path := "/keys/" + other.Key.ID.String() + "/revoke"
		page := b.get(path)
		page.want(http.StatusOK)
		b.post(path, url.Values{"csrf": {page.input("csrf")}}).want(http.StatusForbidden, "previous")
		if got, _ := e.m.Get(ctx, keygate.System(), other.Key.ID); !got.RevokedAt.IsZero() {
			t.Error("a key was revoked through a session signed in with an old secret")
		}
	})
	t.Run("revoking one's own key", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		k := e.key(t, keygate.CreateRequest{Name: "ops", Scopes: []string{"apikey:view", "apikey:manage", "cluster:read"}})
		b := e.signedIn(t, k.Token.Reveal())
		path := "/keys/" + k.Key.ID.String() + "/revoke"
		b.get(path).want(http.StatusOK, "It is the key you signed in with")
		p := b.post(path, b.form(path))
		if p := b.follow(p); p.status != http.StatusSeeOther || p.location != mount+"/signin?ended=revoked" {
			t.Errorf("after revoking one's own key: %d %q", p.status, p.location)
		}
	})
}

func TestViewOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	viewer := e.key(t, keygate.CreateRequest{Name: "auditor", Scopes: []string{"apikey:view"}})
	c := e.key(t, keygate.CreateRequest{Name: "ci", Scopes: []string{"cluster:read"}})
	id := c.Key.ID.String()
	b := e.signedIn(t, viewer.Token.Reveal())
	list := b.get("/").want(http.StatusOK, "ci", "admin", "View only")
	for _, control := range []string{"Add API token", "/edit", "/regenerate", "/revoke", "/delete"} {
		if strings.Contains(list.body, control) {
			t.Errorf("the list offers %q to a view-only key", control)
		}
	}
	key := b.get("/keys/"+id).want(http.StatusOK, "Cluster")
	if strings.Contains(key.body, "/revoke") || strings.Contains(key.body, "/edit") {
		t.Error("the key page offers changes to a view-only key")
	}
	for _, path := range []string{"/keys/new", "/keys/" + id + "/edit", "/keys/" + id + "/regenerate", "/keys/" + id + "/revoke", "/keys/" + id + "/delete"} {
		b.get(path).want(http.StatusForbidden, "Your key lacks apikey:manage: you can see tokens here but not change them.")
	}
	csrf := list.input("csrf")
	for _, path := range []string{"/keys/" + id + "/revoke", "/keys/" + id + "/delete"} {
		b.post(path, url.Values{"csrf": {csrf}}).want(http.StatusForbidden, "Your key lacks apikey:manage")
	}
	b.post("/keys/new", url.Values{"csrf": {csrf}, "name": {"x"}, "expiry": {"7d"}, "scope": {"cluster:read"}, "nonce": {"n"}}).
		want(http.StatusForbidden, "Your key lacks apikey:manage")
	b.post("/keys/"+id+"/edit", url.Values{"csrf": {csrf}, "name": {"hacked"}}).want(http.StatusForbidden, "Your key lacks apikey:manage")
	b.post("/keys/"+id+"/regenerate", url.Values{"csrf": {csrf}, "expiry": {"7d"}, "grace": {"0"}}).want(http.StatusForbidden, "Your key lacks apikey:manage")
	if k := e.find(t, "ci"); k == nil || !k.RevokedAt.IsZero() {
		t.Error("the view-only key changed a key")
	}
}

func TestRefusalsInPlainWords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ops := e.key(t, keygate.CreateRequest{Name: "ops", Scopes: []string{"apikey:view", "apikey:manage", "cluster:read", "cluster:write"},
		Expiry: keygate.ExpireAt(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))})
	b := e.signedIn(t, ops.Token.Reveal())
	b.get("/keys/new").want(http.StatusOK, "Your key expires on 2026-12-07")
	b.post("/keys/new", addForm(b, map[string]string{"name": "a", "expiry": "7d"}, "billing:write")).
		want(http.StatusForbidden, "Your key lacks billing:write, so it cannot give that permission to a token.")
	b.post("/keys/new", addForm(b, map[string]string{"name": "b", "expiry": "never"}, "cluster:read")).
		want(http.StatusForbidden, "The token would outlive yours: latest expiry 2026-12-07.")
	b.post("/keys/new", addForm(b, map[string]string{"name": "c", "expiry": "7d", "role": "admin"})).
		want(http.StatusForbidden, "Only a super admin can create or change a super-admin token.")
	b.post("/keys/new", addForm(b, map[string]string{"name": "d", "expiry": "custom", "expiry_date": "2026-12-06"}, "cluster:write")).
		want(http.StatusOK, "Token created")
	// The admin's key holds more than ops: ops may not change it.
	admin := e.find(t, "admin").ID.String()
	v := b.form("/keys/" + admin + "/edit")
	if p := b.post("/keys/"+admin+"/edit", v); p.status != http.StatusSeeOther {
		t.Errorf("saving nothing = %d, want 303", p.status) // no change, no refusal
	}
	v.Set("name", "renamed")
	b.post("/keys/"+admin+"/edit", v).want(http.StatusForbidden, "Only a super admin")
}

func TestWorkspaceBoundPrincipal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.key(t, keygate.CreateRequest{Name: "lion-key", Workspace: "lion", Scopes: []string{"cluster:read"}})
	e.key(t, keygate.CreateRequest{Name: "tiger-key", Workspace: "tiger", Scopes: []string{"cluster:read"}})
	tiger := e.key(t, keygate.CreateRequest{Name: "tiger-admin", Workspace: "tiger", Role: "owner"})
	b := e.signedIn(t, tiger.Token.Reveal())
	list := b.get("/").want(http.StatusOK, "tiger-key")
	if list.contains("lion-key") {
		t.Error("a tiger key sees lion's keys")
	}
	b.get("/?workspace=lion").want(http.StatusOK, "tiger-key") // the filter is fixed to its workspace
	lion := e.find(t, "lion-key")
	b.get("/keys/" + lion.ID.String()).want(http.StatusNotFound)
	form := b.form("/keys/new")
	if form.Get("workspace") != "tiger" {
		t.Errorf("add form's workspace %q, want tiger", form.Get("workspace"))
	}
	b.post("/keys/new", addForm(b, map[string]string{"name": "x", "workspace": "lion"}, "cluster:read")).
		want(http.StatusForbidden, `Your key cannot act in workspace "lion".`)
}

func TestStoreFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	form := addForm(b, map[string]string{"name": "grafana", "description": "dashboards"}, "organization:read")
	e.store.down.Store(true)
	p := b.post("/keys/new", form).want(http.StatusServiceUnavailable, "The key store is unavailable, so nothing was changed.", "Try again")
	if strings.Contains(e.logs.String(), e.admin) {
		t.Error("a token reached the log")
	}
	if strings.Contains(p.body, errStoreDown.Error()) {
		t.Error("the store's error reached the page")
	}
	// The page keeps what was typed, to send again.
	retry := p.formValues()
	if retry.Get("name") != "grafana" || retry.Get("description") != "dashboards" || retry.Get("scope") != "organization:read" {
		t.Errorf("retry form %v", retry)
	}
	b.get("/").want(http.StatusServiceUnavailable, "The key store is unavailable")
	e.store.down.Store(false)
	if e.find(t, "grafana") != nil {
		t.Fatal("a key was made while the store was down")
	}
	// The session survived the outage, and the form goes through.
	b.post("/keys/new", retry).want(http.StatusOK, "Token created")
	if e.find(t, "grafana") == nil {
		t.Error("no key after the retry")
	}
	// Sign-in while the store is down, with a key not verified before
	// (a cached one would not need the store).
	ops := e.key(t, keygate.CreateRequest{Name: "ops", Scopes: []string{"apikey:view"}}).Token.Reveal()
	e.store.down.Store(true)
	e.browser(t).signIn(ops).want(http.StatusServiceUnavailable, "The key store is unavailable")
}

func TestHostPrincipal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) {
		c.Principal = func(r *http.Request) (keygate.Principal, bool) {
			if r.Header.Get("X-User") != "alice" {
				return keygate.Principal{}, false
			}
			return keygate.Principal{ID: "user:alice", SuperAdmin: true}, true
		}
	})
	b := e.browser(t)
	get := func(path string) *response {
		req := mustRequest(t, http.MethodGet, e.srv.URL+mount+path)
		req.Header.Set("X-User", "alice")
		return b.do(req)
	}
	list := get("/").want(http.StatusOK, "Signed in as user:alice", "Add API token")
	if strings.Contains(list.body, "Sign out") {
		t.Error("a host session offers to sign out")
	}
	form := get("/keys/new").formValues()
	form.Set("name", "from-alice")
	form["scope"] = []string{"billing:read"}
	// The change needs the session's anti-forgery token too.
	post := func(v url.Values) *response {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+mount+"/keys/new", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-User", "alice")
		return b.do(req)
	}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("csrf", "forged")
	post(bad).want(http.StatusForbidden)
	post(form).want(http.StatusOK, "Token created")
	// Without the host's session, the key sign-in is offered.
	if p := b.get("/"); p.status != http.StatusSeeOther || p.location != mount+"/signin" {
		t.Errorf("no host session: %d %q", p.status, p.location)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.PageSize = 10; c.SessionTTL = 3 * time.Hour })
	b := e.signedIn(t, e.admin)
	ctx := context.Background()
	for i := range 35 {
		req := keygate.CreateRequest{Name: "k" + string(rune('a'+i%26)) + string(rune('0'+i/26)), Scopes: []string{"cluster:read"},
			Owner: []string{"alice", "bob"}[i%2], Workspace: []string{"tiger", "lion", ""}[i%3]}
		if i%5 == 0 {
			req.Expiry = keygate.ExpireAfter(time.Hour)
		}
		c := e.key(t, req)
		if i%7 == 0 {
			e.m.Revoke(ctx, keygate.System(), c.Key.ID)
		}
		if i%4 == 1 {
			if _, err := e.m.Disable(ctx, keygate.System(), c.Key.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.clock.Add(2 * time.Hour)
	b.get("/?status=unknown").want(http.StatusBadRequest)
	b.get("/?after=nope").want(http.StatusBadRequest)
	for _, tt := range []struct {
		query string
		want  func(*store.Key) bool
	}{
		{"", func(*store.Key) bool { return true }},
		{"workspace=tiger", func(k *store.Key) bool { return k.Workspace == "tiger" }},
		{"owner=bob", func(k *store.Key) bool { return k.Owner == "bob" }},
		{"status=revoked", func(k *store.Key) bool { return !k.RevokedAt.IsZero() }},
		{"status=expired", func(k *store.Key) bool {
			return k.RevokedAt.IsZero() && k.DisabledAt.IsZero() && !k.ExpiresAt.IsZero() && !e.clock.Now().Before(k.ExpiresAt)
		}},
		{"status=disabled", func(k *store.Key) bool { return k.RevokedAt.IsZero() && !k.DisabledAt.IsZero() }},
		{"status=disabled&workspace=lion", func(k *store.Key) bool {
			return k.Workspace == "lion" && k.RevokedAt.IsZero() && !k.DisabledAt.IsZero()
		}},
		{"status=active&owner=alice", func(k *store.Key) bool {
			return k.Owner == "alice" && k.RevokedAt.IsZero() && k.DisabledAt.IsZero() && (k.ExpiresAt.IsZero() || e.clock.Now().Before(k.ExpiresAt))
		}},
	} {
		t.Run(tt.query, func(t *testing.T) {
			var want []string
			all, _ := e.m.List(ctx, keygate.System(), store.ListOptions{Limit: 1000})
			for _, k := range all.Keys {
				if tt.want(k) {
					want = append(want, k.ID.String())
				}
			}
			var got []string
			path := "/?" + tt.query
			for pages := 0; path != ""; pages++ {
				if pages > 10 {
					t.Fatal("too many pages")
				}
				p := b.get(path).want(http.StatusOK)
				for _, m := range re(`href="/console/keys/([0-9a-f-]{36})" *>`).FindAllStringSubmatch(p.body, -1) {
					got = append(got, m[1])
				}
				path = ""
				if m := re(`href="/console/(\?[^"]*after=[^"]*)"`).FindStringSubmatch(p.body); m != nil {
					path = "/" + strings.ReplaceAll(m[1], "&amp;", "&")
				}
			}
			if !equal(got, want) {
				t.Errorf("listed %d keys, want %d\ngot  %v\nwant %v", len(got), len(want), got, want)
			}
		})
	}
}

// TestDisableEnableAndUsage: a manager disables and enables a token from
// its page, which shows what the token used.
func TestDisableEnableAndUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	admin := e.key(t, keygate.CreateRequest{Name: "ops", Role: "admin"})
	k := e.key(t, keygate.CreateRequest{Name: "grafana", Workspace: "tiger", Role: "viewer", Scopes: []string{"billing:write"}})
	vk, err := e.m.Verify(ctx, k.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	e.m.Exercised(vk, permission.MustParse("cluster:read"), "tiger")
	if err := e.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b := e.signedIn(t, admin.Token.Reveal())
	id := k.Key.ID.String()
	b.get("/keys/"+id).want(http.StatusOK, "Least privilege", "Held but not used", "billing:write", "needs only", "cluster:read", "tiger")
	page := b.get("/keys/"+id+"/disable").want(http.StatusOK, "Disable this token?")
	b.follow(b.post("/keys/"+id+"/disable", url.Values{"csrf": {page.input("csrf")}})).want(http.StatusOK, "disabled", "Enable")
	if _, err := e.m.Verify(ctx, k.Token.Reveal()); !errors.Is(err, keygate.ErrDisabled) {
		t.Errorf("after Disable in the console: %v, want ErrDisabled", err)
	}
	page = b.get("/keys/"+id+"/enable").want(http.StatusOK, "Enable this token?")
	b.follow(b.post("/keys/"+id+"/enable", url.Values{"csrf": {page.input("csrf")}})).want(http.StatusOK, "enabled")
	if _, err := e.m.Verify(ctx, k.Token.Reveal()); err != nil {
		t.Errorf("after Enable in the console: %v", err)
	}
}

package console_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// identityByExternalID returns the stored identity with the external id,
// or nil.
func (e *env) identityByExternalID(t testing.TB, ext string) *store.Identity {
	t.Helper()
	page, err := e.store.ListIdentities(context.Background(), store.IdentityListOptions{ExternalID: ext})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Identities) == 0 {
		return nil
	}
	return page.Identities[0]
}

func TestIdentityPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)

	// The navigation offers identities; the list is empty.
	list := b.get("/identities").want(http.StatusOK, "Identities", "No identities yet.")
	if !strings.Contains(list.body, `href="/console/identities" aria-current="page"`) {
		t.Error("the navigation does not mark Identities as the current section")
	}

	// Create one with limits.
	v := b.form("/identities/new")
	v.Set("external_id", "cus_4Fz9")
	v.Set("workspace", "tiger")
	v.Set("metadata", "plan=pro\nregion=eu")
	v["rate_name"] = []string{"requests", "tokens", ""}
	v["rate_requests"] = []string{"100", "50000", ""}
	v["rate_window"] = []string{"second", "hour", "second"}
	v["rate_on_demand"] = []string{"1"}
	v.Set("credits", "500")
	v.Set("refill_amount", "1000")
	v.Set("refill_every", "month")
	v.Set("refill_day", "31")
	p := b.post("/identities/new", v)
	if p.status != http.StatusSeeOther {
		t.Fatalf("create = %d\n%s", p.status, p.text())
	}
	page := b.follow(p).want(http.StatusOK, `Identity "cus_4Fz9" created`, "requests", "100 per second", "tokens", "50000 per hour",
		"only for the requests that name it", "500 left", "back to 1000 every month on day 31", "plan", "pro", "No token belongs to it")
	id := e.identityByExternalID(t, "cus_4Fz9")
	if id == nil || id.Workspace != "tiger" || len(id.RateLimits) != 2 || !id.RateLimits[1].OnDemand || id.Credits.Refill.Day != 31 {
		t.Fatalf("stored %+v", id)
	}
	if !strings.Contains(page.body, id.ID.String()) {
		t.Error("the identity's page does not show its id")
	}
	b.get("/identities").want(http.StatusOK, "cus_4Fz9", "requests 100 per second", "500 left")
	b.get("/identities?external_id=nobody").want(http.StatusOK, "No identities match these filters.")

	// A token put in it from its edit form shows it, and is listed on
	// the identity's page.
	k := e.key(t, keygate.CreateRequest{Name: "ci", Workspace: "tiger", Scopes: []string{"cluster:read"}})
	kv := b.form("/keys/" + k.Key.ID.String() + "/edit")
	if !strings.Contains(b.get("/keys/"+k.Key.ID.String()+"/edit").body, `<option value="`+id.ID.String()+`">cus_4Fz9 (workspace tiger)</option>`) {
		t.Error("the key form does not offer the identity")
	}
	kv.Set("identity", id.ID.String())
	b.follow(b.post("/keys/"+k.Key.ID.String()+"/edit", kv)).want(http.StatusOK, "Saved.", "Identity", "cus_4Fz9", "its limits apply too")
	b.get("/identities/"+id.ID.String()).want(http.StatusOK, "ci", "active")

	// Edit: only what changed is sent; the balance as the tokens left it
	// stays unless typed.
	if _, err := e.m.UpdateIdentity(context.Background(), keygate.System(), id.ID, keygate.UpdateIdentityRequest{}); err != nil {
		t.Fatal(err)
	}
	v = b.form("/identities/" + id.ID.String() + "/edit")
	if v.Get("credits") != "500" || v.Get("version") != "1" {
		t.Fatalf("edit form: credits %q version %q", v.Get("credits"), v.Get("version"))
	}
	b.follow(b.post("/identities/"+id.ID.String()+"/edit", v)).want(http.StatusOK, "Nothing was changed.")
	v.Set("external_id", "cus_4Fz9-renamed")
	b.follow(b.post("/identities/"+id.ID.String()+"/edit", v)).want(http.StatusOK, "Saved.", "cus_4Fz9-renamed", "500 left")
	// A stale form conflicts, keeping what was typed.
	v.Set("metadata", "plan=enterprise")
	p = b.post("/identities/"+id.ID.String()+"/edit", v).want(http.StatusConflict, "Someone changed this identity since you opened the page")
	if !strings.Contains(p.body, ">plan=enterprise</textarea>") {
		t.Error("the conflict page lost what was typed")
	}
	b.follow(b.post("/identities/"+id.ID.String()+"/edit", p.formValues())).want(http.StatusOK, "Saved.", "enterprise")
	// Setting the balance, and removing the refill.
	v = b.form("/identities/" + id.ID.String() + "/edit")
	v.Set("credits", "7")
	v.Set("refill_amount", "")
	b.follow(b.post("/identities/"+id.ID.String()+"/edit", v)).want(http.StatusOK, "7 left")
	if got := e.identityByExternalID(t, "cus_4Fz9-renamed"); got.Credits.Remaining != 7 || got.Credits.Refill != nil {
		t.Errorf("credits after the edit: %+v", got.Credits)
	}

	// Mistakes are shown against their field.
	v = b.form("/identities/new")
	v.Set("external_id", "cus_4Fz9-renamed")
	v.Set("workspace", "tiger")
	b.post("/identities/new", v).want(http.StatusConflict, "An identity with this external id already exists in this workspace")
	v.Set("external_id", "x")
	v["rate_name"] = []string{"requests"}
	v["rate_requests"] = []string{"zero"}
	b.post("/identities/new", v).want(http.StatusBadRequest, "Each rate limit needs a name and a whole number of requests")
	v["rate_requests"] = []string{"1"}
	v.Set("refill_amount", "5")
	v.Set("refill_every", "day")
	b.post("/identities/new", v).want(http.StatusBadRequest, "A refill needs credits to start from")

	// Delete: refused while the token is in it, then done.
	b.get("/identities/"+id.ID.String()+"/delete").want(http.StatusOK, "Delete this identity?")
	csrf := list.input("csrf")
	b.post("/identities/"+id.ID.String()+"/delete", url.Values{"csrf": {csrf}}).want(http.StatusConflict, "Tokens still belong to this identity")
	none := uuid.Nil
	if _, err := e.m.Update(context.Background(), keygate.System(), k.Key.ID, keygate.UpdateRequest{IdentityID: &none}); err != nil {
		t.Fatal(err)
	}
	b.follow(b.post("/identities/"+id.ID.String()+"/delete", url.Values{"csrf": {csrf}})).want(http.StatusOK, `Identity "cus_4Fz9-renamed" deleted.`)
	b.get("/identities/"+id.ID.String()).want(http.StatusNotFound, "Identity not found", "No identity has this id")
	b.get("/identities/not-a-uuid").want(http.StatusNotFound, "No identity has this id")
}

// TestIdentityPagesAuthorization: a view-only key sees identities but is
// offered no change and refused every one; one bound to a workspace sees
// only its own; an identity out of reach is answered as a missing one.
func TestIdentityPagesAuthorization(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	tiger, err := e.m.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{ExternalID: "t", Workspace: "tiger"})
	if err != nil {
		t.Fatal(err)
	}
	lion, err := e.m.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{ExternalID: "l", Workspace: "lion"})
	if err != nil {
		t.Fatal(err)
	}
	viewer := e.key(t, keygate.CreateRequest{Name: "auditor", Workspace: "tiger", Scopes: []string{"apikey:view"}})
	b := e.signedIn(t, viewer.Token.Reveal())
	list := b.get("/identities").want(http.StatusOK, "t")
	if strings.Contains(list.text(), " l ") || strings.Contains(list.body, lion.ID.String()) || strings.Contains(list.body, "Add identity") {
		t.Errorf("a view-only key of tiger sees lion's identity or an add button:\n%s", list.text())
	}
	page := b.get("/identities/"+tiger.ID.String()).want(http.StatusOK, "t")
	if strings.Contains(page.body, "/edit") || strings.Contains(page.body, "/delete") {
		t.Error("the identity page offers changes to a view-only key")
	}
	for _, path := range []string{"/identities/new", "/identities/" + tiger.ID.String() + "/edit", "/identities/" + tiger.ID.String() + "/delete"} {
		b.get(path).want(http.StatusForbidden, "Your key lacks apikey:manage", "you can see identities here but not change them")
	}
	csrf := list.input("csrf")
	b.post("/identities/"+tiger.ID.String()+"/delete", url.Values{"csrf": {csrf}}).want(http.StatusForbidden, "Your key lacks apikey:manage")
	b.post("/identities/new", url.Values{"csrf": {csrf}, "external_id": {"x"}}).want(http.StatusForbidden, "Your key lacks apikey:manage")
	// lion's identity is answered as a missing one.
	missing := b.get("/identities/" + uuid.NewString()).want(http.StatusNotFound)
	out := b.get("/identities/" + lion.ID.String()).want(http.StatusNotFound)
	if out.text() != missing.text() {
		t.Errorf("an identity out of reach: %q; a missing one: %q", out.text(), missing.text())
	}
	if _, err := e.m.GetIdentity(ctx, keygate.System(), tiger.ID); err != nil {
		t.Fatal(err)
	}

	// A manager limited to 10 requests a second may not create an
	// identity without limits.
	limited := e.key(t, keygate.CreateRequest{Name: "limited", Workspace: "tiger", Scopes: []string{"apikey:view", "apikey:manage"},
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 10, Window: time.Second}}})
	lb := e.signedIn(t, limited.Token.Reveal())
	v := lb.form("/identities/new")
	v.Set("external_id", "free")
	lb.post("/identities/new", v).want(http.StatusForbidden, "The identity would have a looser rate limit than yours")
	v["rate_name"] = []string{"requests"}
	v["rate_requests"] = []string{"5"}
	v["rate_window"] = []string{"second"}
	if p := lb.post("/identities/new", v); p.status != http.StatusSeeOther {
		t.Errorf("a stricter identity: %d\n%s", p.status, p.text())
	}
}

// TestIdentityPagesWithoutStore: a console over a store without
// identities offers none, and answers their pages as unsupported.
func TestIdentityPagesWithoutStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	plain := newPlainEnv(t)
	b := plain.signedIn(t, plain.admin)
	list := b.get("/").want(http.StatusOK, "API tokens")
	if strings.Contains(list.body, "/identities") {
		t.Error("a console without identities links to them")
	}
	b.get("/identities").want(http.StatusNotImplemented, "The key store keeps no identities")
	if form := b.get("/keys/new"); strings.Contains(form.body, `name="identity"`) {
		t.Error("the add form offers identities without a store of them")
	}
	// The usual console offers them.
	if !strings.Contains(e.signedIn(t, e.admin).get("/").body, `href="/console/identities"`) {
		t.Error("the console does not link to identities")
	}
}

// newPlainEnv is newEnv over a store that keeps no identities.
func newPlainEnv(t *testing.T) *env {
	t.Helper()
	e := &env{clock: &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}, logs: &syncBuffer{}}
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if e.m, err = keygate.New(keygate.Config{Store: struct{ store.Store }{memory.New()}, Hasher: hasher, Now: e.clock.Now,
		Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Close(context.Background()) })
	if e.c, err = console.New(console.Config{Manager: e.m, Categories: replex, Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(mount+"/", http.StripPrefix(mount, e.c))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.admin = e.key(t, keygate.CreateRequest{Name: "admin", Role: "admin", Expiry: keygate.NeverExpire()}).Token.Reveal()
	return e
}

// TestIdentityPagesHeaders: the identity pages carry the console's
// headers, strict CSP included, and no inline script or style.
func TestIdentityPagesHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, err := e.m.CreateIdentity(context.Background(), keygate.System(), keygate.CreateIdentityRequest{ExternalID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	b := e.signedIn(t, e.admin)
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	for _, path := range []string{"/identities", "/identities/new", "/identities/" + id.ID.String(), "/identities/" + id.ID.String() + "/edit",
		"/identities/" + id.ID.String() + "/delete", "/identities/" + uuid.NewString()} {
		p := b.get(path)
		if p.header.Get("Content-Security-Policy") != csp || p.header.Get("Cache-Control") != "no-store" || p.header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", path, p.header)
		}
		if strings.Contains(p.body, "style=") || strings.Contains(p.body, "<style") || strings.Contains(p.body, "onclick") || strings.Contains(p.body, "<script>") {
			t.Errorf("GET %s: inline style or script in the page", path)
		}
	}
	if p := b.do(mustRequest(t, http.MethodDelete, e.srv.URL+mount+"/identities/"+id.ID.String())); p.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE an identity page = %d, want 405", p.status)
	}
}

// TestBalancesShowTheirRefill: a key's uses and an identity's credits are
// shown as the next verification sees them (refilled once their
// boundary has passed, before any use applies it), with the next refill.
func TestBalancesShowTheirRefill(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	// The clock is 2026-11-30T10:00Z.
	id, err := e.m.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{ExternalID: "acme", Limits: keygate.IdentityLimits{
		Credits: &keygate.Credits{Remaining: 3, Refill: &keygate.Refill{Amount: 700, Every: store.PeriodMonth, Day: 1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	two := int64(2)
	e.key(t, keygate.CreateRequest{Name: "metered", Role: "viewer", Workspace: "tiger", Limits: keygate.Limits{
		Uses: &two, Refill: &keygate.Refill{Amount: 40, Every: store.PeriodDay}}})
	key := "/keys/" + e.find(t, "metered").ID.String()
	ident := "/identities/" + id.ID.String()
	b := e.signedIn(t, e.admin)
	b.get(key).want(200, "2 left", "back to 40 every day at midnight UTC; next 1 Dec 2026")
	b.get(ident).want(200, "3 left", "next 1 Dec 2026")
	// A day later, nothing used: the balances show refilled, as the next
	// verification finds them.
	e.clock.Add(24 * time.Hour)
	b = e.signedIn(t, e.admin) // the session has ended meanwhile
	b.get(key).want(200, "40 left", "next 2 Dec 2026")
	b.get(ident).want(200, "700 left", "next 1 Jan 2027")
}

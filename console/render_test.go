package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/console"
)

// TestRevokedKeyIsFinal: a revoked key is offered no edit, its expiry is
// not counted down, no previous token is said to work, and its edit page
// refuses, in plain words, without changing it.
func TestRevokedKeyIsFinal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	c := e.key(t, keygate.CreateRequest{Name: "ci", Scopes: []string{"cluster:read"}})
	live := e.key(t, keygate.CreateRequest{Name: "live", Scopes: []string{"cluster:read"}})
	id := c.Key.ID.String()
	// Regenerated with a grace period, then revoked: the previous token
	// stops with the key.
	if _, err := e.m.Regenerate(ctx, keygate.System(), c.Key.ID, keygate.RegenerateRequest{
		Expiry: keygate.ExpireAfterDays(30), GracePeriod: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Revoke(ctx, keygate.System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Hour)
	b := e.signedIn(t, e.admin)

	list := b.get("/").want(http.StatusOK, "ci", "live")
	row := list.row(t, "ci")
	if strings.Contains(row, "/edit") {
		t.Errorf("the revoked key's row offers Edit:\n%s", row)
	}
	if !strings.Contains(row, "/delete") {
		t.Errorf("the revoked key's row does not offer Delete:\n%s", row)
	}
	// (Its usage cell speaks of days too, of the past ones.)
	if dates := withoutCell(row, "cell-usage"); strings.Contains(dates, " in ") || strings.Contains(dates, "days") {
		t.Errorf("the revoked key's row counts down to its expiry:\n%s", row)
	}
	if other := list.row(t, "live"); !strings.Contains(other, "/keys/"+live.Key.ID.String()+"/edit") || !strings.Contains(other, "in 29 days") {
		t.Errorf("a live key's row lacks Edit or its expiry in 29 days:\n%s", other)
	}

	key := b.get("/keys/"+id).want(http.StatusOK, "Revoked")
	for _, wrong := range []string{"/edit", "(in ", "Previous token", "regenerate it"} {
		if strings.Contains(key.body, wrong) {
			t.Errorf("the revoked key's page holds %q:\n%s", wrong, key.text())
		}
	}

	const refused = "This token is revoked: its record stays as it was, for audit. Delete it, or add a new token."
	b.get("/keys/"+id+"/edit").want(http.StatusConflict, refused)
	b.post("/keys/"+id+"/edit", url.Values{"csrf": {list.input("csrf")}, "name": {"renamed"}, "scope": {"cluster:write"}}).
		want(http.StatusConflict, refused)
	if k := e.find(t, "ci"); k == nil || len(k.Scopes) != 1 || k.Scopes[0] != "cluster:read" {
		t.Errorf("the revoked key changed: %+v", k)
	}
}

// withoutCell returns row without its cell of class class, if any.
func withoutCell(row, class string) string {
	start := strings.Index(row, `<td class="`+class+`">`)
	if start < 0 {
		return row
	}
	end := strings.Index(row[start:], "</td>")
	if end < 0 {
		return row[:start]
	}
	return row[:start] + row[start+end+len("</td>"):]
}

// row returns the markup of the list's row of the key named name.
func (r *response) row(t *testing.T, name string) string {
	t.Helper()
	for _, tr := range strings.Split(r.body, "<tr>")[1:] {
		if strings.Contains(tr, `class="key-name"`) && strings.Contains(tr, ">"+name+"</a>") {
			return tr[:strings.Index(tr, "</tr>")]
		}
	}
	t.Fatalf("no row for %q in the list:\n%s", name, r.text())
	return ""
}

// TestGridMarks: the key page's permission grid says allowed or not
// allowed in text that screen readers read (a hidden span, not an
// aria-label on a span, which has no role to carry it), and hides the
// marks from them.
func TestGridMarks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.signedIn(t, e.admin)
	c := e.key(t, keygate.CreateRequest{Name: "ci", Scopes: []string{"cluster:read"}})
	page := b.get("/keys/"+c.Key.ID.String()).want(http.StatusOK, "Cluster")
	grid := page.body[strings.Index(page.body, `<table class="perm-grid">`):]
	grid = grid[:strings.Index(grid, "</table>")]
	if strings.Contains(grid, "aria-label") {
		t.Error("the grid labels its marks with aria-label")
	}
	yes := strings.Count(grid, `<span class="yes" aria-hidden="true">✓</span><span class="visually-hidden">allowed</span>`)
	no := strings.Count(grid, `<span class="no" aria-hidden="true">–</span><span class="visually-hidden">not allowed</span>`)
	if yes != 1 || no != 2*len(replex)-1 {
		t.Errorf("the grid has %d marks allowed and %d not, want 1 and %d:\n%s", yes, no, 2*len(replex)-1, grid)
	}
}

// TestRefusalPageShowsRole: a form refused before the principal is read
// again (a wrong anti-forgery token, a form too large, the key store down)
// still shows who is signed in, with their rights when they can be read:
// never "View only" for an admin.
func TestRefusalPageShowsRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.MaxFormBytes = 1 << 10 })
	viewer := e.key(t, keygate.CreateRequest{Name: "auditor", Scopes: []string{"apikey:view"}})
	admin, auditor := e.signedIn(t, e.admin), e.signedIn(t, viewer.Token.Reveal())
	for _, tt := range []struct {
		name   string
		form   url.Values
		status int
	}{
		{"wrong token", url.Values{"csrf": {"forged"}, "name": {"x"}}, http.StatusForbidden},
		{"too large", url.Values{"name": {strings.Repeat("x", 2<<10)}}, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := admin.post("/keys/new", tt.form).want(tt.status, "Signed in as admin")
			if p.contains("View only") {
				t.Errorf("the refusal shows the admin as View only:\n%s", p.text())
			}
			auditor.post("/keys/new", tt.form).want(tt.status, "Signed in as auditor", "View only")
		})
	}
	// With the key store down, the rights cannot be read: none are shown.
	form := admin.form("/keys/new")
	e.store.down.Store(true)
	p := admin.post("/keys/new", form).want(http.StatusServiceUnavailable, "Signed in as admin", "Try again")
	if p.contains("View only") {
		t.Errorf("with the store down, the admin is shown as View only:\n%s", p.text())
	}
}

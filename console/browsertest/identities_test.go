package browsertest

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleIdentities goes through the identity pages in the browser,
// against keygate serve: the list, adding an identity with rate limits
// and credits, putting a token in it from the token's edit page, the
// identity's and the token's pages showing each other, editing it, and
// its deletion refused while the token is in it. Every page is checked by
// axe-core and screenshot (shot).
func TestConsoleIdentities(t *testing.T) {
	s := newSession(t)
	srv := startServer(t)
	base := srv.url
	t.Cleanup(func() {
		t.Logf("screenshots (%d):\n%s", len(s.taken), strings.Join(s.taken, "\n"))
	})
	s.signIn(base, srv.admin)

	// The navigation leads to the identities: none yet.
	s.nav("open the identities", chromedp.Click(css(`nav.topnav a[href="/console/identities"]`)))
	s.wantText("Identities", "No identities yet.")
	s.shot("identities-empty")

	// Add one: two rate limits (one on demand), credits refilled monthly.
	s.nav("open the add page", chromedp.Click(css(`a[href="/console/identities/new"]`)))
	s.shot("identity-add-empty")
	s.do("fill the add form",
		chromedp.SendKeys(css("#external_id"), "cus_4Fz9"),
		chromedp.SendKeys(css("#workspace"), "tiger"),
		chromedp.SendKeys(css("#metadata"), "plan=pro"),
		chromedp.SendKeys(css(`input[name="rate_name"]`), "requests"),
		chromedp.SendKeys(css(`input[name="rate_requests"]`), "100"),
		chromedp.SendKeys(css(`tbody tr:nth-child(2) input[name="rate_name"]`), "tokens"),
		chromedp.SendKeys(css(`tbody tr:nth-child(2) input[name="rate_requests"]`), "50000"),
		chromedp.SendKeys(css("#credits"), "500"),
		chromedp.SendKeys(css("#refill_amount"), "1000"),
		chromedp.SendKeys(css("#refill_day"), "1"),
	)
	s.choose(`tbody tr:nth-child(2) select[name="rate_window"]`, "hour")
	s.do("make tokens on demand", chromedp.Click(css(`input[name="rate_on_demand"][value="1"]`), chromedp.NodeReady))
	s.choose("#refill_every", "month")
	s.shot("identity-add-filled")
	s.submit(`form.form button[type="submit"]`)
	s.wantText(`Identity "cus_4Fz9" created`, "100 per second", "50000 per hour", "only for the requests that name it", "500 left",
		"back to 1000 every month on day 1", "No token belongs to it")
	s.shot("identity")
	identityPath := s.location()
	if !regexp.MustCompile(`^/console/identities/[0-9a-f-]{36}$`).MatchString(identityPath) {
		t.Fatalf("the new identity's page is at %q", identityPath)
	}
	identityID := strings.TrimPrefix(identityPath, "/console/identities/")

	// A token of tiger, put in the identity from its edit page.
	if got := srv.call(t, "POST", "/v1/keys", srv.admin, `{"name":"billing-sync","workspace":"tiger","scopes":["organization:read"],"expiry":"30d"}`); got != http.StatusCreated {
		t.Fatalf("create a key: %d", got)
	}
	s.nav("open the tokens", chromedp.Click(css(`nav.topnav a[href="/console/"]`)))
	keyPath := get(s, "find the key", chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll("a.key-name")).find(a => a.textContent === "billing-sync").getAttribute("href")`))
	s.nav("open its edit page", chromedp.Navigate(base+keyPath+"/edit"))
	s.choose("#identity", identityID)
	s.shot("key-edit-identity")
	s.submit(`form.form button[type="submit"]`)
	s.wantText("Saved.", "Identity", "cus_4Fz9", "its limits apply too")
	s.shot("key-in-identity")
	s.nav("open the identity from the key", chromedp.Click(css(`a[href="`+identityPath+`"]`)))
	s.wantText("billing-sync")
	s.shot("identity-with-token")

	// Edit: the balance, and a third limit.
	s.nav("open the edit page", chromedp.Click(css(`a[href="`+identityPath+`/edit"]`)))
	s.do("set the balance", chromedp.SetValue(css("#credits"), "42"))
	s.shot("identity-edit")
	s.submit(`form.form button[type="submit"]`)
	s.wantText("Saved.", "42 left")

	// Deletion is refused while the token is in it.
	s.nav("open the delete page", chromedp.Click(css(`a[href="`+identityPath+`/delete"]`)))
	s.wantText("Delete this identity?")
	s.shot("identity-delete")
	if status := s.nav("delete", chromedp.Click(css(`form[action$="/delete"] button[type="submit"]`))); status != http.StatusConflict {
		t.Errorf("deleting an identity in use: %d, want 409", status)
	}
	s.wantText("Tokens still belong to this identity")
	s.shot("identity-in-use")
	if got := srv.call(t, "GET", "/v1/identities/"+identityID, srv.admin, ""); got != http.StatusOK {
		t.Errorf("the identity after the refused delete: %d", got)
	}
	s.noToken("the identity pages", srv.admin)
}

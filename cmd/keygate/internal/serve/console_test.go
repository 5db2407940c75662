package serve

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestConsole signs in to the console mounted at /console with the
// bootstrap admin key and sees the keys; the token reaches no log.
func TestConsole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	in := start(t, nil, "--db", filepath.Join(dir, "keys.db"), "--admin-token-file", tokenFile)
	admin := readToken(t, tokenFile)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(in.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		return resp.StatusCode, string(b)
	}
	status, page := get("/console/")
	if status != http.StatusOK || !strings.Contains(page, "Sign in") {
		t.Fatalf("GET /console/ signed out = %d, want the sign-in page", status)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no anti-forgery token in the sign-in form")
	}
	resp, err := client.PostForm(in.url+"/console/signin", url.Values{"csrf": {csrf[1]}, "token": {admin}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "bootstrap-admin") {
		t.Fatalf("after sign-in: %d\n%s", resp.StatusCode, b)
	}
	status, page = get("/console/keys/new")
	for _, category := range []string{"Agent", "Custom Pricing", "Saml Integration", "User"} {
		if status != http.StatusOK || !strings.Contains(page, "<th scope=\"row\">"+category+"</th>") {
			t.Errorf("add page (%d) lacks the category %q", status, category)
		}
	}
	// Keys are managed with the Key management switches (apikey:*): a
	// category of the demo API named after them would grant api_key:read
	// and api_key:write, which nothing checks, to whoever mistook it for
	// them.
	if strings.Contains(page, "<th scope=\"row\">Api Key</th>") || strings.Contains(page, "api_key:") {
		t.Error("the add page has an Api Key row beside Key management")
	}
	if !strings.Contains(page, `value="apikey:manage"`) {
		t.Error("the add page lacks the Key management switches")
	}
	// The first start's banner shows the token once; the request log
	// after it never does.
	logs := in.stderr.String()
	if _, after, _ := strings.Cut(logs, "listening"); strings.Contains(after, admin) {
		t.Error("the token reached the request log")
	}
}

package server_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
)

// verify posts body to /keys/verify as token and decodes the verdict.
func verify(t *testing.T, f *fixture, token, body string) (int, server.VerifyResponse) {
	t.Helper()
	w := f.do(t, request{method: "POST", path: "/keys/verify", token: token, contentType: "application/json", body: body})
	var v server.VerifyResponse
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("decode verdict %s: %v", w.Body, err)
		}
	}
	return w.Code, v
}

func TestVerifyRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	verifier := f.token(t, keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}})
	tigerVerifier := f.token(t, keygate.CreateRequest{Name: "svc-tiger", Workspace: "tiger", Scopes: []string{"apikey:verify"}})
	manager := f.token(t, keygate.CreateRequest{Name: "mgr", Scopes: []string{"apikey:manage", "apikey:view"}})

	viewer := f.token(t, keygate.CreateRequest{Name: "viewer", Workspace: "tiger", Role: "viewer", Scopes: []string{"billing:write"}})
	lion := f.token(t, keygate.CreateRequest{Name: "lion", Workspace: "lion", Role: "viewer"})
	one := int64(1)
	once := f.token(t, keygate.CreateRequest{Name: "once", Scopes: []string{"cluster:read"}, Limits: keygate.Limits{Uses: &one}})
	rated := f.token(t, keygate.CreateRequest{Name: "rated", Scopes: []string{"cluster:read"}, Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 1, Window: time.Hour}}})
	fenced := f.token(t, keygate.CreateRequest{Name: "fenced", Scopes: []string{"cluster:read"}, Limits: keygate.Limits{AllowedCIDRs: []netip.Prefix{mustPrefix(t, "10.0.0.0/8")}}})
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, _ := format.Generate()

	tests := []struct {
		name  string
		by    string
		body  string
		code  string // "" for a valid verdict
		retry bool
	}{
		{"valid", verifier, `{"token":"` + viewer + `"}`, "", false},
		{"permission held", verifier, `{"token":"` + viewer + `","permission":"cluster:read","workspace":"tiger"}`, "", false},
		{"permission not held", verifier, `{"token":"` + viewer + `","permission":"cluster:write","workspace":"tiger"}`, middleware.CodeInsufficientPermission, false},
		{"permission in another workspace", verifier, `{"token":"` + viewer + `","permission":"cluster:read","workspace":"lion"}`, middleware.CodeInsufficientPermission, false},
		{"malformed", verifier, `{"token":"kg_short"}`, middleware.CodeMalformed, false},
		{"empty token", verifier, `{"token":""}`, middleware.CodeMalformed, false},
		{"unknown", verifier, `{"token":"` + unknown.Reveal() + `"}`, middleware.CodeInvalid, false},
		{"other workspace answers as unknown", tigerVerifier, `{"token":"` + lion + `"}`, middleware.CodeInvalid, false},
		{"own workspace", tigerVerifier, `{"token":"` + viewer + `"}`, "", false},
		{"first use", verifier, `{"token":"` + once + `"}`, "", false},
		{"used up", verifier, `{"token":"` + once + `"}`, middleware.CodeUsageExhausted, false},
		{"first request", verifier, `{"token":"` + rated + `"}`, "", false},
		{"rate limited", verifier, `{"token":"` + rated + `"}`, middleware.CodeRateLimited, true},
		{"allow-listed, no address", verifier, `{"token":"` + fenced + `"}`, middleware.CodeAddressDenied, false},
		{"allow-listed, outside", verifier, `{"token":"` + fenced + `","address":"192.0.2.1"}`, middleware.CodeAddressDenied, false},
		{"allow-listed, inside", verifier, `{"token":"` + fenced + `","address":"10.1.2.3"}`, "", false},
	}
	for _, tt := range tests { // in order: uses and rates carry over
		status, v := verify(t, f, tt.by, tt.body)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 with a verdict", tt.name, status)
		}
		if v.Valid != (tt.code == "") || v.Code != tt.code {
			t.Errorf("%s: verdict valid=%v code=%q, want code %q", tt.name, v.Valid, v.Code, tt.code)
		}
		if (v.RetryAfter > 0) != tt.retry {
			t.Errorf("%s: retry_after %d, want one: %v", tt.name, v.RetryAfter, tt.retry)
		}
		if v.Valid != (v.Key != nil) {
			t.Errorf("%s: valid=%v with key %v", tt.name, v.Valid, v.Key)
		}
	}
	_, v := verify(t, f, verifier, `{"token":"`+viewer+`"}`)
	if v.Key.Name != "viewer" || v.SuperAdmin || !slices.Equal(v.Permissions, []string{"*:read", "billing:write"}) {
		t.Errorf("verdict key %q, permissions %v, super admin %v; want viewer's *:read billing:write", v.Key.Name, v.Permissions, v.SuperAdmin)
	}
	if _, v := verify(t, f, f.admin, `{"token":"`+f.admin+`"}`); !v.SuperAdmin {
		t.Error("the admin key's verdict does not say super_admin")
	}

	// Errors about the caller or the body, never about the token.
	for _, tt := range []struct {
		name   string
		by     string
		body   string
		status int
		code   string
	}{
		{"caller without apikey:verify", manager, `{"token":"` + viewer + `"}`, 403, server.CodeForbidden},
		{"caller's own key unknown", unknown.Reveal(), `{"token":"` + viewer + `"}`, 401, middleware.CodeInvalid},
		{"bad permission", verifier, `{"token":"` + viewer + `","permission":"nope"}`, 400, server.CodeInvalidScope},
		{"bad address", verifier, `{"token":"` + viewer + `","address":"10.0.0.0/8"}`, 400, server.CodeInvalidField},
		{"bad workspace", verifier, `{"token":"` + viewer + `","workspace":" tiger"}`, 400, server.CodeInvalidField},
		{"unknown field", verifier, `{"token":"` + viewer + `","tokens":[]}`, 400, server.CodeInvalidJSON},
	} {
		w := f.do(t, request{method: "POST", path: "/keys/verify", token: tt.by, contentType: "application/json", body: tt.body})
		p := problem(t, w)
		if w.Code != tt.status || p.Code != tt.code {
			t.Errorf("%s: %d %q (%s), want %d %q", tt.name, w.Code, p.Code, p.Detail, tt.status, tt.code)
		}
		if strings.Contains(w.Body.String(), viewer) {
			t.Errorf("%s: the answer holds the token", tt.name)
		}
		if tt.code == server.CodeForbidden && (p.Reason != "permission" || !slices.Equal(p.Permissions, []string{"apikey:verify"})) {
			t.Errorf("%s: reason %q permissions %v, want permission apikey:verify", tt.name, p.Reason, p.Permissions)
		}
	}
}

func TestRolesRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	w := f.do(t, request{method: "GET", path: "/roles", token: f.admin})
	if w.Code != http.StatusOK {
		t.Fatalf("GET /roles = %d %s", w.Code, w.Body)
	}
	var list server.RoleList
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]server.Role{}
	for _, r := range list.Roles {
		got[r.Name] = r
	}
	if admin := got["admin"]; !admin.SuperAdmin || admin.RequiresWorkspace || !slices.Equal(admin.Permissions, []string{"*:*"}) {
		t.Errorf("admin role %+v", admin)
	}
	if viewer := got["viewer"]; viewer.SuperAdmin || !viewer.RequiresWorkspace || !slices.Equal(viewer.Permissions, []string{"*:read"}) {
		t.Errorf("viewer role %+v", viewer)
	}
	if len(got) != 4 {
		t.Errorf("GET /roles = %d roles, want the 4 defaults", len(got))
	}
	reader := f.token(t, keygate.CreateRequest{Name: "reader", Workspace: "tiger", Role: "viewer"})
	w = f.do(t, request{method: "GET", path: "/roles", token: reader})
	if p := problem(t, w); w.Code != 403 || p.Code != server.CodeForbidden || !slices.Equal(p.Permissions, []string{"apikey:view"}) {
		t.Errorf("GET /roles without apikey:view = %d %q %v, want 403 forbidden naming apikey:view", w.Code, p.Code, p.Permissions)
	}
}

// TestRefusalsSayWhy checks that a 403 names the bound that failed.
func TestRefusalsSayWhy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	ten := int64(10)
	week := f.token(t, keygate.CreateRequest{Name: "week", Workspace: "tiger", Role: "owner", Expiry: keygate.ExpireAfterDays(7), Limits: keygate.Limits{Uses: &ten}})
	post := func(body string) middleware.Problem {
		t.Helper()
		w := f.do(t, request{method: "POST", path: "/keys", token: week, contentType: "application/json", body: body})
		if w.Code != http.StatusForbidden {
			t.Fatalf("POST /keys %s = %d %s, want 403", body, w.Code, w.Body)
		}
		return problem(t, w)
	}
	// A 7-day key cannot create a 7-day key: the child would outlive it by
	// a moment. The answer says so and gives the latest expiry allowed.
	p := post(`{"name":"child","workspace":"tiger","role":"viewer","expiry":"7d","limits":{"uses_remaining":1}}`)
	if p.Reason != "lifetime" || p.LatestExpiry.IsZero() || !strings.Contains(p.Detail, p.LatestExpiry.UTC().Format(time.RFC3339)) {
		t.Errorf("lifetime refusal: %+v", p)
	}
	p = post(`{"name":"child","workspace":"tiger","role":"viewer","expiry":"1d"}`)
	if p.Reason != "limit" || p.Limit != "uses" {
		t.Errorf("limit refusal: %+v", p)
	}
	p = post(`{"name":"child","workspace":"lion","role":"viewer","expiry":"1d","limits":{"uses_remaining":1}}`)
	if p.Reason != "workspace" || p.Workspace != "lion" {
		t.Errorf("workspace refusal: %+v", p)
	}
	p = post(`{"name":"child","role":"admin","expiry":"1d","limits":{"uses_remaining":1}}`)
	if p.Reason != "workspace" || p.Workspace != "" {
		t.Errorf("unbound refusal: %+v", p)
	}
	scoped := f.token(t, keygate.CreateRequest{Name: "scoped", Scopes: []string{"apikey:manage", "cluster:read"}})
	w := f.do(t, request{method: "POST", path: "/keys", token: scoped, contentType: "application/json", body: `{"name":"c","scopes":["cluster:read","billing:write"],"expiry":"never"}`})
	if p := problem(t, w); w.Code != 403 || p.Reason != "permission" || !slices.Equal(p.Permissions, []string{"billing:write"}) || !strings.Contains(p.Detail, "billing:write") {
		t.Errorf("permission refusal: %d %+v", w.Code, p)
	}
}

// TestVerifyOldSecretExpiry: the verdict about a key's previous secret,
// during a regeneration's grace period, carries the end of that period as
// the key's expires_at (or the key's own expiry, when sooner), so that a
// remote service caching it stops accepting the replaced secret in time.
func TestVerifyOldSecretExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	verifier := f.token(t, keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}})
	for _, tt := range []struct {
		name   string
		expiry keygate.Expiry
		grace  time.Duration
	}{
		{"never-expiring key, 1 h grace", keygate.NeverExpire(), time.Hour},
		{"30-day key, 1 h grace", keygate.ExpireAfterDays(30), time.Hour},
		{"key expiring within the grace", keygate.ExpireAfter(time.Hour), 2 * time.Hour},
	} {
		old := f.key(t, keygate.CreateRequest{Name: tt.name, Scopes: []string{"cluster:read"}, Expiry: tt.expiry})
		regen, err := f.m.Regenerate(t.Context(), keygate.System(), old.Key.ID, keygate.RegenerateRequest{Expiry: tt.expiry, GracePeriod: tt.grace})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := f.m.Get(t.Context(), keygate.System(), old.Key.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := rec.PrevExpiresAt
		if !rec.ExpiresAt.IsZero() && rec.ExpiresAt.Before(want) {
			want = rec.ExpiresAt
		}
		_, v := verify(t, f, verifier, `{"token":"`+old.Token.Reveal()+`"}`)
		if !v.Valid || !v.Key.ExpiresAt.Equal(want) {
			t.Errorf("%s: old secret's verdict valid=%v expires_at %v, want valid until %v", tt.name, v.Valid, v.Key.ExpiresAt, want)
		}
		_, v = verify(t, f, verifier, `{"token":"`+regen.Token.Reveal()+`"}`)
		if !v.Valid || !v.Key.ExpiresAt.Equal(rec.ExpiresAt) {
			t.Errorf("%s: new secret's verdict valid=%v expires_at %v, want the key's %v", tt.name, v.Valid, v.Key.ExpiresAt, rec.ExpiresAt)
		}
	}
}

// TestVerifyRoutePattern: POST /keys/verify, served without matching the
// mux's patterns, reaches Config.Principal as the mux would send it, with
// its pattern; other methods on the path still get 405.
func TestVerifyRoutePattern(t *testing.T) {
	t.Parallel()
	var pattern string
	f := newFixture(t, server.Config{Principal: func(r *http.Request) (keygate.Principal, bool) {
		pattern = r.Pattern
		k, ok := middleware.FromContext(r.Context())
		if !ok {
			return keygate.Principal{}, false
		}
		return k.Principal(), true
	}})
	verifier := f.token(t, keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}})
	if status, v := verify(t, f, verifier, `{"token":"`+verifier+`"}`); status != http.StatusOK || !v.Valid {
		t.Fatalf("POST /keys/verify = %d %+v", status, v)
	}
	if pattern != "POST /keys/verify" {
		t.Errorf("the route's request has pattern %q, want %q", pattern, "POST /keys/verify")
	}
	w := f.do(t, request{method: "GET", path: "/keys/verify", token: verifier})
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET /keys/verify = %d Allow %q, want 405 POST", w.Code, w.Header().Get("Allow"))
	}
	// An escaped slash makes one segment of "keys/verify" for the mux: no
	// route, however the path decodes.
	w = f.do(t, request{method: "POST", path: "/keys%2Fverify", token: verifier, contentType: "application/json", body: `{"token":"` + verifier + `"}`})
	if p := problem(t, w); w.Code != http.StatusNotFound || p.Code != server.CodeNoRoute {
		t.Errorf("POST /keys%%2Fverify = %d %q, want 404 no_route", w.Code, p.Code)
	}
}

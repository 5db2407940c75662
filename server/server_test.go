package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	mw, err := middleware.New(middleware.Config{Verifier: f.m})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  server.Config
	}{
		{"no manager", server.Config{Middleware: mw}},
		{"no middleware", server.Config{Manager: f.m}},
		{"negative body limit", server.Config{Manager: f.m, Middleware: mw, MaxBodyBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := server.New(tt.cfg)
			if s != nil || !errors.Is(err, server.ErrInvalidConfig) {
				t.Errorf("New = %v, %v; want nil, ErrInvalidConfig", s, err)
			}
		})
	}
}

func TestBodies(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{MaxBodyBytes: 1024})
	tok := f.token(t, keygate.CreateRequest{Name: "victim", Workspace: "w", Role: "viewer"})
	const json = "application/json"
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
		detail      string // a substring of the detail
	}{
		{"no content type", "", `{}`, 415, server.CodeUnsupportedMediaType, "application/json"},
		{"text/plain", "text/plain", `{}`, 415, server.CodeUnsupportedMediaType, "application/json"},
		{"bad media type", "application/", `{}`, 415, server.CodeUnsupportedMediaType, "application/json"},
		{"empty body", json, ``, 400, server.CodeInvalidJSON, "empty"},
		{"truncated", json, `{"name": "a`, 400, server.CodeInvalidJSON, "ends in the middle"},
		{"syntax error", json, `{"name" "a"}`, 400, server.CodeInvalidJSON, "syntax error at byte 9"},
		{"syntax error quoting a token", json, `{"name": ` + tok + `}`, 400, server.CodeInvalidJSON, "syntax error at byte"},
		{"array", json, `[1]`, 400, server.CodeInvalidJSON, "must be a JSON object"},
		{"wrong type", json, `{"name": 5}`, 400, server.CodeInvalidJSON, "The field name must be a string."},
		{"wrong nested type", json, `{"limits": {"rate": {"requests": "x"}}}`, 400, server.CodeInvalidJSON, "The field limits.rate.requests must be a number."},
		{"wrong type under a token", json, `{"metadata": {"` + tok + `": 1}}`, 400, server.CodeInvalidJSON, "The field metadata"},
		{"unknown field", json, `{"name": "a", "colour": "red"}`, 400, server.CodeInvalidJSON, `unknown field "colour"`},
		{"unknown field named by a token", json, `{"` + tok + `": 1}`, 400, server.CodeInvalidJSON, "unknown field."},
		{"trailing object", json, `{"name": "a"} {"name": "b"}`, 400, server.CodeInvalidJSON, "nothing after it"},
		{"trailing garbage", json, `{"name": "a"}x`, 400, server.CodeInvalidJSON, "nothing after it"},
		{"too large", json, `{"name": "` + strings.Repeat("a", 2000) + `"}`, 413, server.CodeBodyTooLarge, "1024 bytes"},
		{"too large after the value", json, `{"name": "a"}` + strings.Repeat(" ", 2000) + "x", 413, server.CodeBodyTooLarge, "1024 bytes"},
		{"bad duration", json, `{"name":"a","limits":{"rate":{"requests":1,"window":"` + tok + `"}}}`, 400, server.CodeInvalidField, "duration"},
		{"bad CIDR", json, `{"name":"a","role":"admin","expiry":"never","limits":{"allowed_cidrs":["10.0.0.0/8","` + tok + `"]}}`, 400, server.CodeInvalidField, "limits.allowed_cidrs[1]"},
		{"token as expiry", json, `{"name":"a","role":"admin","expiry":"` + tok + `"}`, 400, server.CodeInvalidExpiry, "expiry"},
		{"token as role", json, `{"name":"a","role":"` + tok + `","expiry":"never"}`, 400, server.CodeUnknownRole, "role"},
		{"token as scope", json, `{"name":"a","scopes":["` + tok + `"],"expiry":"never"}`, 400, server.CodeInvalidScope, "scope"},
		{"name too long", json, `{"name":"` + strings.Repeat("n", 129) + `","role":"admin","expiry":"never"}`, 400, server.CodeInvalidField, "Name longer than 128 bytes."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := f.do(t, request{method: "POST", path: "/keys", token: f.admin, contentType: tt.contentType, body: tt.body})
			p := problem(t, w)
			if w.Code != tt.status || p.Code != tt.code || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("POST /keys = %d %q %q, want %d %q with a detail containing %q", w.Code, p.Code, p.Detail, tt.status, tt.code, tt.detail)
			}
			if strings.Contains(w.Body.String(), tok) || strings.Contains(w.Body.String(), tok[3:20]) {
				t.Errorf("the response quotes the token: %s", w.Body)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	k, _ := f.create(t, `{"name":"k","workspace":"w","role":"viewer","expiry":"never"}`)
	id := k.ID.String()
	tests := []struct {
		name   string
		req    request
		status int
		code   string
		allow  string
	}{
		{"unknown path", request{method: "GET", path: "/nothing", token: f.admin}, 404, server.CodeNoRoute, ""},
		{"unknown path without a key", request{method: "GET", path: "/nothing"}, 401, middleware.CodeMissing, ""},
		{"not a UUID", request{method: "GET", path: "/keys/123", token: f.admin}, 404, server.CodeNotFound, ""},
		{"no such key", request{method: "GET", path: "/keys/" + uuid.NewString(), token: f.admin}, 404, server.CodeNotFound, ""},
		{"PUT /keys", request{method: "PUT", path: "/keys", token: f.admin}, 405, server.CodeMethodNotAllowed, "GET, HEAD, POST"},
		{"POST /keys/{id}", request{method: "POST", path: "/keys/" + id, token: f.admin}, 405, server.CodeMethodNotAllowed, "GET, HEAD, PATCH, DELETE"},
		{"GET /keys/{id}/revoke", request{method: "GET", path: "/keys/" + id + "/revoke", token: f.admin}, 405, server.CodeMethodNotAllowed, "POST"},
		{"GET /keys/{id}/regenerate", request{method: "GET", path: "/keys/" + id + "/regenerate", token: f.admin}, 405, server.CodeMethodNotAllowed, "POST"},
		{"405 without a key", request{method: "PUT", path: "/keys"}, 401, middleware.CodeMissing, ""},
		{"GET /keys/verify", request{method: "GET", path: "/keys/verify", token: f.admin}, 405, server.CodeMethodNotAllowed, "POST"},
		{"PATCH /keys/verify", request{method: "PATCH", path: "/keys/verify", token: f.admin}, 405, server.CodeMethodNotAllowed, "POST"},
		{"PUT /keys/verify", request{method: "PUT", path: "/keys/verify", token: f.admin}, 405, server.CodeMethodNotAllowed, "POST"},
		{"POST /roles", request{method: "POST", path: "/roles", token: f.admin}, 405, server.CodeMethodNotAllowed, "GET, HEAD"},
		{"bad limit", request{method: "GET", path: "/keys?limit=0", token: f.admin}, 400, server.CodeInvalidField, ""},
		{"bad cursor", request{method: "GET", path: "/keys?after=x", token: f.admin}, 400, server.CodeInvalidField, ""},
		{"bad revoked", request{method: "GET", path: "/keys?revoked=maybe", token: f.admin}, 400, server.CodeInvalidField, ""},
		{"If-Match unquoted", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{}`,
			header: http.Header{"If-Match": {"1"}}}, 400, server.CodeInvalidField, ""},
		{"If-Match weak", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{}`,
			header: http.Header{"If-Match": {`W/"1"`}}}, 400, server.CodeInvalidField, ""},
		{"If-Match with a sign", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"name":"x"}`,
			header: http.Header{"If-Match": {`"+1"`}}}, 400, server.CodeInvalidField, ""},
		{"If-Match with a leading zero", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"name":"x"}`,
			header: http.Header{"If-Match": {`"01"`}}}, 400, server.CodeInvalidField, ""},
		{"If-Match doubly quoted", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"name":"x"}`,
			header: http.Header{"If-Match": {`""1""`}}}, 400, server.CodeInvalidField, ""},
		{"If-Match after a no-break space", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"name":"x"}`,
			header: http.Header{"If-Match": {"\u00a0\"1\""}}}, 400, server.CodeInvalidField, ""},
		{"If-Match twice, the first empty", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"name":"x"}`,
			header: http.Header{"If-Match": {"", `"7"`}}}, 400, server.CodeInvalidField, ""},
		{"If-Match twice", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"name":"x"}`,
			header: http.Header{"If-Match": {`"1"`, `"1"`}}}, 400, server.CodeInvalidField, ""},
		{"If-Match stale", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"name":"x"}`,
			header: http.Header{"If-Match": {`"7"`}}}, 409, server.CodeConflict, ""},
		{"If-Match and version disagree", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"version":1}`,
			header: http.Header{"If-Match": {`"2"`}}}, 400, server.CodeInvalidField, ""},
		{"version stale", request{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"version":9,"name":"x"}`}, 409, server.CodeConflict, ""},
		{"regenerate without expiry", request{method: "POST", path: "/keys/" + id + "/regenerate", token: f.admin, contentType: "application/json", body: `{}`}, 400, server.CodeInvalidExpiry, ""},
		{"negative grace period", request{method: "POST", path: "/keys/" + id + "/regenerate", token: f.admin, contentType: "application/json", body: `{"expiry":"7d","grace_period":"-1h"}`}, 400, server.CodeInvalidField, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := f.do(t, tt.req)
			p := problem(t, w)
			if w.Code != tt.status || p.Code != tt.code {
				t.Errorf("%s %s = %d %q (%s), want %d %q", tt.req.method, tt.req.path, w.Code, p.Code, p.Detail, tt.status, tt.code)
			}
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
		})
	}
	// The key was never changed by the refused requests.
	w := f.do(t, request{method: "GET", path: "/keys/" + id, token: f.admin})
	if w.Code != 200 || w.Header().Get("ETag") != `"1"` {
		t.Errorf("GET after refusals = %d, ETag %q; want 200, \"1\"", w.Code, w.Header().Get("ETag"))
	}
}

func TestIfMatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	k, _ := f.create(t, `{"name":"k","workspace":"w","role":"viewer","expiry":"never"}`)
	for i, ifMatch := range []string{`"1"`, `*`, ` "3" `} {
		w := f.do(t, request{method: "PATCH", path: "/keys/" + k.ID.String(), token: f.admin, contentType: "application/json",
			body: `{"description":"d` + strconv.Itoa(i) + `"}`, header: http.Header{"If-Match": {ifMatch}}})
		if want := `"` + strconv.Itoa(i+2) + `"`; w.Code != 200 || w.Header().Get("ETag") != want {
			t.Errorf("PATCH with If-Match %s = %d %s, ETag %q; want 200, ETag %s", ifMatch, w.Code, w.Body, w.Header().Get("ETag"), want)
		}
	}
}

func TestResponsesHoldNoSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	k, tok := f.create(t, `{"name":"k","workspace":"w","role":"viewer","expiry":"30d","limits":{"uses_remaining":3}}`)
	if len(tok) < 50 {
		t.Fatalf("create returned token of length %d", len(tok))
	}
	id := k.ID.String()
	responses := []request{
		{method: "GET", path: "/keys/" + id, token: f.admin},
		{method: "GET", path: "/keys", token: f.admin},
		{method: "GET", path: "/keys?workspace=w&revoked=active&limit=1", token: f.admin},
		{method: "PATCH", path: "/keys/" + id, token: f.admin, contentType: "application/json", body: `{"name":"k2"}`},
		{method: "POST", path: "/keys/" + id + "/revoke", token: f.admin},
		{method: "GET", path: "/keys/" + id, token: tok}, // the revoked key itself
	}
	for _, req := range responses {
		w := f.do(t, req)
		body := w.Body.String()
		if strings.Contains(body, tok) || strings.Contains(body, tok[3:15]) {
			t.Errorf("%s %s = %d shows the token: %s", req.method, req.path, w.Code, body)
		}
		for _, field := range []string{`"hash"`, `"pepper`, `"prev_`, `"token"`} {
			if strings.Contains(body, field) {
				t.Errorf("%s %s shows %s: %s", req.method, req.path, field, body)
			}
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control = %q, want no-store", req.method, req.path, w.Header().Get("Cache-Control"))
		}
	}
}

func TestCreateResponse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	w := f.do(t, request{method: "POST", path: "/keys", token: f.admin, contentType: "application/json",
		body: `{"name":"k","owner":"bob","workspace":"w","role":"viewer","expiry":"never","limits":{"rate":{"requests":10,"window":"1m"},"allowed_cidrs":["10.0.0.0/8"]}}`})
	if w.Code != http.StatusCreated || w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("ETag") != `"1"` {
		t.Fatalf("POST /keys = %d, headers %v; want 201, no-store, application/json, ETag \"1\"", w.Code, w.Header())
	}
	var raw struct {
		Key   map[string]any `json:"key"`
		Token string         `json:"token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil || raw.Token == "" {
		t.Fatalf("decode: %v; token %t", err, raw.Token != "")
	}
	key := raw.Key
	for _, name := range []string{"id", "name", "owner", "workspace", "role", "hint", "created_at", "updated_at", "version", "limits"} {
		if _, ok := key[name]; !ok {
			t.Errorf("key JSON lacks %q: %v", name, key)
		}
	}
	for _, name := range []string{"expires_at", "last_used_at", "revoked_at", "description", "scopes"} {
		if _, ok := key[name]; ok {
			t.Errorf("key JSON has %q, want it omitted when empty: %v", name, key)
		}
	}
	limits, _ := key["limits"].(map[string]any)
	if rate, _ := limits["rate"].(map[string]any); rate["window"] != "1m0s" || rate["requests"] != float64(10) {
		t.Errorf("limits = %v, want rate 10 per 1m0s", limits)
	}
	// Location is relative to the request URL: it resolves under the prefix.
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	abs := (&url.URL{Path: prefix + "/keys"}).ResolveReference(loc)
	if want := prefix + "/keys/" + key["id"].(string); abs.Path != want {
		t.Errorf("Location %q resolves to %q, want %q", loc, abs.Path, want)
	}
	if w := f.do(t, request{method: "GET", path: strings.TrimPrefix(abs.Path, prefix), token: f.admin}); w.Code != 200 {
		t.Errorf("GET Location = %d, want 200", w.Code)
	}
}

func TestDeleteAnswersNoContent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	k, _ := f.create(t, `{"name":"k","workspace":"w","role":"viewer","expiry":"never"}`)
	w := f.do(t, request{method: "DELETE", path: "/keys/" + k.ID.String(), token: f.admin})
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("DELETE = %d %q, Cache-Control %q; want 204, no body, no-store", w.Code, w.Body, w.Header().Get("Cache-Control"))
	}
}

func TestPrincipal(t *testing.T) {
	t.Parallel()
	// Sessions: the header X-User names a user allowed to manage keys of
	// workspace w; a key whose name is "blocked" is refused.
	principal := func(r *http.Request) (keygate.Principal, bool) {
		if key, ok := middleware.FromContext(r.Context()); ok {
			return key.Principal(), key.Name != "blocked"
		}
		if r.Header.Get("X-User") == "alice" {
			return keygate.Principal{ID: "user:alice", SuperAdmin: true}, true
		}
		return keygate.Principal{}, false
	}
	var handled []string
	f := newFixture(t, server.Config{Principal: principal, ErrorHandler: func(w http.ResponseWriter, r *http.Request, p *middleware.Problem) {
		handled = append(handled, p.Code)
		middleware.WriteProblem(w, r, p)
	}})
	blocked := f.token(t, keygate.CreateRequest{Name: "blocked", Role: "admin"})
	tests := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"session", request{method: "GET", path: "/keys", header: http.Header{"X-User": {"alice"}}}, 200, ""},
		{"nobody", request{method: "GET", path: "/keys"}, 401, middleware.CodeMissing},
		{"a bad key and a session", request{method: "GET", path: "/keys", token: "kg_x", header: http.Header{"X-User": {"alice"}}}, 200, ""},
		{"a key the application refuses", request{method: "GET", path: "/keys", token: blocked}, 401, server.CodeUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, tt.req)
			if w.Code != tt.status {
				t.Fatalf("GET /keys = %d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.code != "" {
				if p := problem(t, w); p.Code != tt.code {
					t.Errorf("code = %q, want %q", p.Code, tt.code)
				}
			}
		})
	}
	if len(handled) != 1 || handled[0] != server.CodeUnauthenticated {
		t.Errorf("ErrorHandler saw %v, want [unauthenticated] (the middleware answers missing keys itself)", handled)
	}
}

func TestUncleanPaths(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	k, _ := f.create(t, `{"name":"k","workspace":"w","role":"viewer","expiry":"never"}`)
	id := k.ID.String()
	tests := []struct {
		method, path string
	}{
		{"GET", "//keys"},
		{"GET", "/keys/../keys"},
		{"GET", "/keys/"},
		{"GET", "/./keys"},
		{"GET", ""}, // the mount point itself, without its final "/"
		{"GET", "/keys//" + id},
		{"POST", "/keys//" + id + "/revoke"},
		{"POST", "/keys/" + id + "/revoke/"},
		{"DELETE", "/keys/" + id + "/."},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			for _, auth := range []struct {
				token  string
				status int
				code   string
			}{
				{"", http.StatusUnauthorized, middleware.CodeMissing},
				{f.admin, http.StatusNotFound, server.CodeNoRoute},
			} {
				w := f.do(t, request{method: tt.method, path: tt.path, token: auth.token})
				p := problem(t, w)
				if w.Code != auth.status || p.Code != auth.code {
					t.Errorf("%s %q (key sent: %t) = %d %q, want %d %q", tt.method, tt.path, auth.token != "", w.Code, p.Code, auth.status, auth.code)
				}
				if loc := w.Header().Get("Location"); loc != "" {
					t.Errorf("%s %q: Location = %q, want none", tt.method, tt.path, loc)
				}
			}
		})
	}
	// None of them reached the key.
	w := f.do(t, request{method: "GET", path: "/keys/" + id, token: f.admin})
	var got server.Key
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || !got.RevokedAt.IsZero() {
		t.Errorf("GET after unclean requests = %d %s (%v), want 200 and not revoked", w.Code, w.Body, err)
	}
}

func TestTrustedOrigins(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{TrustedOrigins: []string{"https://admin.example.com"}})
	k, _ := f.create(t, `{"name":"k","workspace":"w","role":"viewer","expiry":"never"}`)
	revoke := "/keys/" + k.ID.String() + "/revoke"
	if w := f.do(t, request{method: "POST", path: revoke, token: f.admin, header: http.Header{"Origin": {"https://evil.example.com"}}}); w.Code != http.StatusForbidden {
		t.Errorf("untrusted origin: %d, want 403", w.Code)
	}
	if w := f.do(t, request{method: "POST", path: revoke, token: f.admin, header: http.Header{"Origin": {"https://admin.example.com"}}}); w.Code != http.StatusOK {
		t.Errorf("trusted origin: %d %s, want 200", w.Code, w.Body)
	}
	mw, err := middleware.New(middleware.Config{Verifier: f.m})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(server.Config{Manager: f.m, Middleware: mw, TrustedOrigins: []string{"not an origin"}}); !errors.Is(err, server.ErrInvalidConfig) {
		t.Errorf("invalid trusted origin: got %v, want ErrInvalidConfig", err)
	}
}

func TestCrossOrigin(t *testing.T) {
	t.Parallel()
	// A cookie session, which browsers send with cross-site forms too.
	principal := func(r *http.Request) (keygate.Principal, bool) {
		if key, ok := middleware.FromContext(r.Context()); ok {
			return key.Principal(), true
		}
		if c, err := r.Cookie("session"); err == nil && c.Value == "alice" {
			return keygate.Principal{ID: "user:alice", SuperAdmin: true}, true
		}
		return keygate.Principal{}, false
	}
	var mu sync.Mutex
	var handled []string
	f := newFixture(t, server.Config{Principal: principal, ErrorHandler: func(w http.ResponseWriter, r *http.Request, p *middleware.Problem) {
		mu.Lock()
		handled = append(handled, p.Code)
		mu.Unlock()
		middleware.WriteProblem(w, r, p)
	}})
	k, _ := f.create(t, `{"name":"k","workspace":"w","role":"viewer","expiry":"never"}`)
	other, _ := f.create(t, `{"name":"other","workspace":"w","role":"viewer","expiry":"never"}`)
	revoke := "/keys/" + k.ID.String() + "/revoke"
	session := http.Header{"Cookie": {"session=alice"}}
	with := func(name, value string) http.Header {
		h := session.Clone()
		h.Set(name, value)
		return h
	}
	// Refused: cross-origin unsafe requests, before anything is done.
	refused := []struct {
		name string
		req  request
	}{
		{"revoke, Sec-Fetch-Site cross-site", request{method: "POST", path: revoke, header: with("Sec-Fetch-Site", "cross-site")}},
		{"revoke, Sec-Fetch-Site same-site", request{method: "POST", path: revoke, header: with("Sec-Fetch-Site", "same-site")}},
		{"revoke, foreign Origin", request{method: "POST", path: revoke, header: with("Origin", "https://evil.example")}},
		{"revoke with a key", request{method: "POST", path: revoke, token: f.admin, header: http.Header{"Sec-Fetch-Site": {"cross-site"}}}},
		{"delete", request{method: "DELETE", path: "/keys/" + k.ID.String(), header: with("Sec-Fetch-Site", "cross-site")}},
		{"unclean path", request{method: "POST", path: "/keys//x", header: with("Sec-Fetch-Site", "cross-site")}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, tt.req)
			if p := problem(t, w); w.Code != http.StatusForbidden || p.Code != server.CodeCrossOrigin {
				t.Errorf("%s %s = %d %q, want 403 %q", tt.req.method, tt.req.path, w.Code, p.Code, server.CodeCrossOrigin)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
		})
	}
	if want := slices.Repeat([]string{server.CodeCrossOrigin}, len(refused)); !slices.Equal(handled, want) {
		t.Errorf("ErrorHandler saw %v, want %v", handled, want)
	}
	revoked := func(id string) bool {
		t.Helper()
		w := f.do(t, request{method: "GET", path: "/keys/" + id, header: with("Sec-Fetch-Site", "cross-site")})
		var got server.Key
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
			t.Fatalf("cross-site GET = %d %s, want 200: safe methods pass", w.Code, w.Body)
		}
		return !got.RevokedAt.IsZero()
	}
	if revoked(k.ID.String()) {
		t.Fatal("a cross-origin request revoked the key")
	}
	// Allowed: same-origin browser requests, and requests without
	// Sec-Fetch-Site or Origin (non-browser clients).
	allowed := []struct {
		name string
		req  request
		id   string
	}{
		{"same-origin", request{method: "POST", path: revoke, header: with("Sec-Fetch-Site", "same-origin")}, k.ID.String()},
		{"no browser headers", request{method: "POST", path: "/keys/" + other.ID.String() + "/revoke", token: f.admin}, other.ID.String()},
	}
	for _, tt := range allowed {
		if w := f.do(t, tt.req); w.Code != http.StatusOK {
			t.Errorf("%s: POST %s = %d %s, want 200", tt.name, tt.req.path, w.Code, w.Body)
		}
		if !revoked(tt.id) {
			t.Errorf("%s: the key was not revoked", tt.name)
		}
	}
	w := f.do(t, request{method: "POST", path: "/keys", contentType: "application/json",
		body: `{"name":"n","workspace":"w","role":"viewer","expiry":"never"}`, header: with("Origin", "http://example.com")})
	if w.Code != http.StatusCreated {
		t.Errorf("POST /keys with a same-host Origin = %d %s, want 201", w.Code, w.Body)
	}
}

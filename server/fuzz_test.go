package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
)

// The fuzz targets of this file drive the real handler (Manager, memory
// store, Middleware, Server) with arbitrary requests, one route each, and
// check what every answer must keep:
//
//   - no 5xx but a 503 while the store is made to fail, and no redirect;
//   - every refusal a problem (application/problem+json, about:blank, its
//     status, the status text, a known code, a detail); every success JSON;
//   - Cache-Control: no-store;
//   - no token, stored hash or pepper in the body or a header, but the one
//     token that create and regenerate issue, once, in "token";
//
// and then what the route itself promises. Every key an iteration makes is
// deleted at its end, so that iterations do not pile up keys.

// pepperKey is the pepper of newFixture's hasher.
var pepperKey = bytes.Repeat([]byte{9}, 32)

// knownCodes are the problem codes the API may answer.
var knownCodes = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range []string{
		server.CodeInvalidJSON, server.CodeUnsupportedMediaType, server.CodeBodyTooLarge, server.CodeRequestTimeout, server.CodeInvalidRequest,
		server.CodeNameRequired, server.CodeDuplicateName, server.CodeInvalidExpiry, server.CodeWorkspaceRequired,
		server.CodeUnknownRole, server.CodeInvalidScope, server.CodeNoPermissions, server.CodeInvalidField,
		server.CodeForbidden, server.CodeNotFound, server.CodeNoRoute, server.CodeMethodNotAllowed, server.CodeNotImportable, server.CodeRetired,
		server.CodeCrossOrigin, server.CodeConflict, server.CodeRevoked, server.CodeUnauthenticated,
		server.CodeIdentityNotFound, server.CodeUnknownIdentity, server.CodeIdentityInUse, server.CodeDuplicateExternalID,
		server.CodeUnavailable,
		middleware.CodeMissing, middleware.CodeMalformed, middleware.CodeInvalid, middleware.CodeExpired,
		middleware.CodeInsufficientPermission, middleware.CodeAddressDenied, middleware.CodeRateLimited,
		middleware.CodeUsageExhausted,
	} {
		m[c] = true
	}
	return m
}()

// verdictCodes are the codes of a verify response's verdict.
var verdictCodes = map[string]bool{
	middleware.CodeMalformed: true, middleware.CodeInvalid: true, middleware.CodeExpired: true,
	middleware.CodeRevoked: true, middleware.CodeDisabled: true, middleware.CodeUsageExhausted: true, middleware.CodeRateLimited: true,
	middleware.CodeAddressDenied: true, middleware.CodeInsufficientPermission: true,
}

// secrets returns what no response may show: tokens, the hashes of every
// stored key (current and previous, hex and base64) and the pepper.
func (f *fixture) secrets(t testing.TB, tokens ...string) []string {
	t.Helper()
	out := append([]string{f.admin, base64.StdEncoding.EncodeToString(pepperKey), hex.EncodeToString(pepperKey)}, tokens...)
	page, err := f.store.Store.List(context.Background(), store.ListOptions{Limit: store.MaxListLimit})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, k := range page.Keys {
		for _, h := range [][]byte{k.Hash, k.PrevHash} {
			if len(h) > 0 {
				out = append(out, hex.EncodeToString(h), base64.StdEncoding.EncodeToString(h), base64.RawURLEncoding.EncodeToString(h))
			}
		}
	}
	return out
}

// check checks what every answer must keep (see the top of the file).
// down says the store was failing. issued is the token a create or
// regenerate answered, "" for other routes: it may appear once, in the
// body's "token", and nowhere else.
func (f *fixture) check(t *testing.T, what string, w *httptest.ResponseRecorder, down bool, issued string, tokens ...string) {
	t.Helper()
	switch {
	case w.Code >= 500 && !(down && w.Code == http.StatusServiceUnavailable):
		t.Fatalf("%s = %d %s", what, w.Code, w.Body)
	case w.Code < 200 || w.Code >= 300 && w.Code < 400:
		t.Fatalf("%s = %d, want no redirect nor informational status", what, w.Code)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, cc)
	}
	body := w.Body.String()
	switch {
	case w.Code >= 400:
		if ct := w.Header().Get("Content-Type"); ct != middleware.ProblemContentType {
			t.Fatalf("%s = %d with Content-Type %q, want a problem", what, w.Code, ct)
		}
		var p middleware.Problem
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("%s = %d: problem %q does not decode: %v", what, w.Code, body, err)
		}
		if p.Type != "about:blank" || p.Status != w.Code || p.Title != http.StatusText(w.Code) || !knownCodes[p.Code] || p.Detail == "" {
			t.Fatalf("%s = %d: bad problem %s", what, w.Code, body)
		}
	case w.Code == http.StatusNoContent:
		if body != "" {
			t.Fatalf("%s = 204 with a body %q", what, body)
		}
	default:
		if ct := w.Header().Get("Content-Type"); ct != "application/json" || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s = %d: Content-Type %q, body %q; want JSON", what, w.Code, ct, body)
		}
	}
	if issued != "" {
		if strings.Count(body, issued) != 1 || !strings.Contains(body, `"token":"`+issued+`"`) {
			t.Fatalf("%s: the issued token is not in the body once, as \"token\"", what)
		}
		body = strings.Replace(body, issued, "", 1)
	}
	var headers strings.Builder
	for name, vs := range w.Header() {
		headers.WriteString(name + ": " + strings.Join(vs, ", ") + "\n")
	}
	for _, s := range append(f.secrets(t, tokens...), issued) {
		if s == "" {
			continue
		}
		if strings.Contains(body, s) || strings.Contains(headers.String(), s) {
			t.Fatalf("%s = %d shows a token, hash or pepper: %s\n%s", what, w.Code, headers.String(), w.Body)
		}
	}
}

// send serves a request built by hand, so that its method, path, query and
// headers may hold anything: httptest.NewRequest panics on some.
func (f *fixture) send(method, path, rawQuery string, header http.Header, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/", strings.NewReader(body))
	r.Method = method
	r.URL.Path, r.URL.RawPath, r.URL.RawQuery = prefix+path, "", rawQuery
	r.RequestURI = r.URL.RequestURI()
	r.Header = header
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

// jsonHeader returns the headers of a JSON request with token.
func jsonHeader(token string) http.Header {
	return http.Header{"Authorization": {"Api-Key " + token}, "Content-Type": {"application/json"}}
}

// strict decodes body into v, refusing unknown fields and trailing data.
func strict(t *testing.T, what string, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: body %q does not decode into %T: %v", what, body, v, err)
	}
	if dec.More() {
		t.Fatalf("%s: body %q has data after the JSON value", what, body)
	}
}

// issuedKey is the body of a create or regenerate response.
type issuedKey struct {
	Key   *server.Key `json:"key"`
	Token string      `json:"token"`
}

// hasher is newFixture's.
var hasher = func() *apikey.Hasher {
	h, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: pepperKey})
	if err != nil {
		panic(err)
	}
	return h
}()

// checkIssued checks a create or regenerate success: a key, and a token
// that is that key's: the stored record of the key has its hash.
func (f *fixture) checkIssued(t *testing.T, what string, w *httptest.ResponseRecorder) issuedKey {
	t.Helper()
	var out issuedKey
	strict(t, what, w.Body.Bytes(), &out)
	if out.Key == nil || out.Key.ID == uuid.Nil {
		t.Fatalf("%s: no key in %s", what, w.Body)
	}
	tok, err := apikey.Parse(out.Token)
	if err != nil {
		t.Fatalf("%s: the issued token does not parse: %v", what, err)
	}
	rec, err := f.store.Store.Get(context.Background(), out.Key.ID)
	if err != nil {
		t.Fatalf("%s: the key answered is not stored: %v", what, err)
	}
	if sum, _ := hasher.Hash(tok); !bytes.Equal(rec.Hash, sum) || !strings.HasPrefix(out.Token, strings.TrimSuffix(out.Key.Hint, "…")) || len(out.Key.Hint) < 4 {
		t.Fatalf("%s: the issued token is not the key's (hash or hint differ)", what)
	}
	return out
}

// remove deletes key id, whatever the test did to the store.
func (f *fixture) remove(t testing.TB, id uuid.UUID) {
	t.Helper()
	f.store.Down.Store(false)
	if err := f.m.Delete(context.Background(), keygate.System(), id); err != nil && !errors.Is(err, keygate.ErrNotFound) {
		t.Fatalf("Delete: %v", err)
	}
}

// targetRequest is the key that the update and regenerate targets change.
func targetRequest() keygate.CreateRequest {
	uses := int64(100)
	return keygate.CreateRequest{
		Name: "target", Description: "fuzzed", Owner: "alice", Workspace: "w1", Role: "viewer",
		Scopes: []string{"billing:read"}, Metadata: map[string]string{"team": "a"},
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 100, Window: time.Minute}, Uses: &uses},
		Expiry: keygate.ExpireAfterDays(30),
	}
}

// FuzzCreateRequest sends arbitrary bodies and Content-Types to POST
// /keys as a super admin, with the store up or down. Beyond the answer's
// invariants: a 201 holds a token that verifies as the key it describes,
// at the Location it names, and never while the store is down.
func FuzzCreateRequest(f *testing.F) {
	for _, seed := range []string{
		`{"name":"k","workspace":"w","role":"viewer","expiry":"30d"}`,
		`{"name":"k","role":"admin","expiry":"never","limits":{"rate":{"requests":5,"window":"1s"},"uses_remaining":3,"allowed_cidrs":["10.0.0.0/8"]}}`,
		`{"name":"k","scopes":["billing:read","app/x:deploy"],"expiry":"2099-01-01","metadata":{"a":"b"}}`,
		`{"name":"k","expiry":"2099-01-01T00:00:00Z","owner":"o","description":"d","scopes":["a:b"]}`,
		`{"name":"k","limits":{"rate":{"window":"-5s","requests":-1}},"expiry":"1d"}`,
		`{"name":"k","role":"owner","expiry":"9999-12-31"}`,
		`{"name":"k","role":"owner","expiry":"36500d","limits":{"uses_remaining":9223372036854775807}}`,
		`{"name":"k\u0000","role":"owner","expiry":"1d"}`,
		`{"name":"admin","role":"owner","expiry":"1d"}`,
		`{"name":` + "\x00" + `}`,
		`{}`, `[]`, `null`, `""`, `{"name":"a"}{}`, `{"name":"\ud800"}`, `{"limits":{"uses_remaining":-1}}`,
		`{"name":"k","role":"owner","expiry":"1d","identity_id":"01936f4e-8a1c-7b2d-9e3f-0a1b2c3d4e60"}`,
		`{"name":"k","role":"owner","expiry":"1d","identity_id":"{01936f4e-8a1c-7b2d-9e3f-0a1b2c3d4e60}"}`,
		`{"name":"k","role":"owner","expiry":"1d","identity_id":""}`, `{"name":"k","role":"owner","expiry":"1d","identity_id":5}`,
	} {
		f.Add("application/json", seed, false)
	}
	f.Add("application/json; charset=utf-8", `{"name":"k","role":"owner","expiry":"1d"}`, true)
	f.Add("Application/JSON", `{"name":"k","role":"owner","expiry":"1d"}`, false)
	f.Add("text/plain", `{"name":"k","role":"owner","expiry":"1d"}`, false)
	f.Add("application/json;;", `{}`, false)
	f.Add("", `{}`, false)
	fx := newFixture(f, server.Config{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, contentType, body string, down bool) {
		fx.store.Down.Store(down)
		h := jsonHeader(fx.admin)
		h.Set("Content-Type", contentType)
		w := fx.send(http.MethodPost, "/keys", "", h, body)
		fx.store.Down.Store(false)
		if w.Code != http.StatusCreated {
			fx.check(t, "POST /keys", w, down, "")
			return
		}
		if down {
			t.Fatalf("POST /keys = 201 while the store is down")
		}
		out := fx.checkIssued(t, "POST /keys", w)
		defer fx.remove(t, out.Key.ID)
		fx.check(t, "POST /keys", w, down, out.Token)
		if loc := w.Header().Get("Location"); loc != "keys/"+out.Key.ID.String() {
			t.Errorf("POST /keys: Location %q, want keys/%s", loc, out.Key.ID)
		}
	})
}

// ifMatchSeeds are If-Match values for the update target; the lines of one
// value are sent as separate header lines.
var ifMatchSeeds = []string{"", "*", `"1"`, `"2"`, `"0"`, `"-1"`, `"+1"`, `"01"`, `""1""`, `"1`, `1`,
	`W/"1"`, `"1", "2"`, "\"2\"\n\"1\"", " \t\"1\"\t ", "\u00a0\"1\"", `"9223372036854775808"`}

// acceptsVersion reports whether an If-Match of these lines lets an update
// of a key at version through, as RFC 9110 compares entity tags: none (or
// only blank lines, which the API takes for none), "*", or a list holding
// the key's ETag exactly. (The API refuses some of them; it must never
// accept more.)
func acceptsVersion(lines []string, version int64) bool {
	etag := `"` + strconv.FormatInt(version, 10) + `"`
	if strings.Trim(strings.Join(lines, ""), " \t") == "" {
		return true
	}
	for _, line := range lines {
		for _, tag := range strings.Split(line, ",") {
			if tag = strings.Trim(tag, " \t"); tag == "*" || tag == etag {
				return true
			}
		}
	}
	return false
}

// FuzzUpdateRequest sends arbitrary If-Match headers and bodies to PATCH
// /keys/{id}, on a fresh key each time, with the store up or down. Beyond
// the answer's invariants: an update goes through only when If-Match (and
// the body's version) allows the key's version, never while the store is
// down, and answers the key as GET then shows it, with its version as ETag.
func FuzzUpdateRequest(f *testing.F) {
	bodies := []string{
		`{}`, `{"name":"renamed"}`, `{"version":1,"description":"d"}`, `{"version":2,"description":"d"}`,
		`{"role":"owner"}`, `{"role":"admin"}`, `{"scopes":[]}`, `{"scopes":["a:b","*:*"]}`, `{"metadata":{"k":"v"}}`,
		`{"expiry":"7d"}`, `{"expiry":"9999-12-31"}`, `{"expiry":null,"name":null}`,
		`{"limits":{"rate":{"requests":0}}}`, `{"limits":{"uses_remaining":-1}}`, `{"limits":{"allowed_cidrs":["10.0.0.0/8","::/0"]}}`,
		`{"limits":{"rate":{"requests":5,"window":"90s"},"allowed_cidrs":[]}}`, `{"limits":{"rate":{"window":"soon"}}}`,
		`{"name":""}`, `{"name":"a\u0000b"}`, `{"workspace":"w2"}`, `{"version":"1"}`, `[]`, ``,
		`{"identity_id":""}`, `{"identity_id":"01936f4e-8a1c-7b2d-9e3f-0a1b2c3d4e60"}`, `{"identity_id":null}`,
	}
	for i, b := range bodies {
		f.Add(ifMatchSeeds[i%len(ifMatchSeeds)], b, false)
	}
	for _, im := range ifMatchSeeds {
		f.Add(im, `{"description":"x"}`, false)
	}
	f.Add(`"1"`, `{"description":"x"}`, true)
	fx := newFixture(f, server.Config{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, ifMatch, body string, down bool) {
		c := fx.key(t, targetRequest())
		defer fx.remove(t, c.Key.ID)
		path := "/keys/" + c.Key.ID.String()
		h := jsonHeader(fx.admin)
		var lines []string
		if ifMatch != "" {
			lines = strings.Split(ifMatch, "\n")
			h["If-Match"] = lines
		}
		fx.store.Down.Store(down)
		w := fx.send(http.MethodPatch, path, "", h, body)
		fx.store.Down.Store(false)
		fx.check(t, "PATCH "+path, w, down, "", c.Token.Reveal())
		if w.Code != http.StatusOK {
			return
		}
		if down {
			t.Fatalf("PATCH = 200 while the store is down")
		}
		if !acceptsVersion(lines, c.Key.Version) {
			t.Fatalf("PATCH with If-Match %q of a key at version %d = 200", lines, c.Key.Version)
		}
		var sent server.UpdateRequest
		if json.Unmarshal([]byte(body), &sent) == nil && sent.Version != 0 && sent.Version != c.Key.Version {
			t.Fatalf("PATCH with version %d of a key at version %d = 200", sent.Version, c.Key.Version)
		}
		// A body that changes no field leaves the key at its version.
		empty := sent.Name == nil && sent.Description == nil && sent.Role == nil && sent.Scopes == nil && sent.Metadata == nil &&
			sent.Expiry == nil && (sent.Limits == nil || *sent.Limits == server.LimitsUpdate{}) && sent.IdentityID == nil
		var got server.Key
		strict(t, "PATCH", w.Body.Bytes(), &got)
		if got.ID != c.Key.ID || (empty != (got.Version == c.Key.Version)) || got.Version < c.Key.Version ||
			w.Header().Get("ETag") != `"`+strconv.FormatInt(got.Version, 10)+`"` {
			t.Fatalf("PATCH = 200 with key %v version %d, ETag %q; want key %v after version %d (the same for a body changing nothing: %v)",
				got.ID, got.Version, w.Header().Get("ETag"), c.Key.ID, c.Key.Version, empty)
		}
		again := fx.send(http.MethodGet, path, "", jsonHeader(fx.admin), "")
		if again.Code != http.StatusOK || again.Body.String() != w.Body.String() {
			t.Fatalf("PATCH answered %s, GET then answers %d %s", w.Body, again.Code, again.Body)
		}
	})
}

// FuzzRegenerateRequest sends arbitrary bodies to POST
// /keys/{id}/regenerate, on a fresh key, revoked or not, with the store up
// or down. Beyond the answer's invariants: a regenerate succeeds only on a
// key not revoked while the store is up; its token verifies as the key;
// the old token stops at once without a grace period and keeps working
// with one.
func FuzzRegenerateRequest(f *testing.F) {
	for _, b := range []string{
		`{"expiry":"30d"}`, `{"expiry":"never"}`, `{"expiry":"7d","grace_period":"1h"}`, `{"expiry":"7d","grace_period":"0s"}`,
		`{"expiry":"7d","grace_period":"-1h"}`, `{"expiry":"7d","grace_period":"2400h"}`, `{"expiry":"7d","grace_period":"9999999h"}`,
		`{"expiry":"7d","grace_period":90}`, `{"expiry":"7d","grace_period":null}`, `{"expiry":"9999-12-31"}`,
		`{"expiry":"2000-01-01"}`, `{"expiry":""}`, `{"expiry":"7d","token":"x"}`, `{}`, `[]`, `null`, ``,
	} {
		f.Add(b, false, false)
	}
	f.Add(`{"expiry":"7d"}`, true, false)
	f.Add(`{"expiry":"7d"}`, false, true)
	fx := newFixture(f, server.Config{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, body string, revoked, down bool) {
		req := targetRequest()
		req.Limits = keygate.Limits{}
		c := fx.key(t, req)
		defer fx.remove(t, c.Key.ID)
		old := c.Token.Reveal()
		if revoked {
			if _, err := fx.m.Revoke(context.Background(), keygate.System(), c.Key.ID); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
		}
		path := "/keys/" + c.Key.ID.String() + "/regenerate"
		fx.store.Down.Store(down)
		w := fx.send(http.MethodPost, path, "", jsonHeader(fx.admin), body)
		fx.store.Down.Store(false)
		if w.Code != http.StatusOK {
			fx.check(t, "POST "+path, w, down, "", old)
			return
		}
		if down || revoked {
			t.Fatalf("POST %s = 200 while the store is down (%v) or the key revoked (%v)", path, down, revoked)
		}
		out := fx.checkIssued(t, "POST "+path, w)
		fx.check(t, "POST "+path, w, down, out.Token, old)
		if out.Key.ID != c.Key.ID || out.Token == old {
			t.Fatalf("regenerate answered key %v with the old token %v; want key %v, a new token", out.Key.ID, out.Token == old, c.Key.ID)
		}
		var sent server.RegenerateRequest
		if err := json.Unmarshal([]byte(body), &sent); err != nil {
			t.Fatalf("regenerate accepted a body that does not decode: %v", err)
		}
		k, err := fx.m.Verify(context.Background(), old)
		switch {
		case sent.GracePeriod <= 0 && err == nil:
			t.Fatalf("the old token still verifies after a regenerate without a grace period")
		case sent.GracePeriod > 0 && (err != nil || k.ID != c.Key.ID):
			t.Fatalf("the old token fails (%v) during a grace period of %v", err, time.Duration(sent.GracePeriod))
		}
	})
}

// FuzzVerifyRequest sends arbitrary bodies to POST /keys/verify, as a super
// admin or as a verifier bound to another workspace, with the store up or
// down. In the body, $PLAIN, $CIDR and $REVOKED stand for the tokens of
// three keys of workspace w1: one without limits, one accepted from
// 10.0.0.0/8 only, one revoked. Beyond the answer's invariants: a verdict
// is valid exactly when it has no code, and a valid one is about the key of
// the token sent, never a revoked one, one outside the caller's
// workspaces, nor one with an allow-list without an address inside it.
func FuzzVerifyRequest(f *testing.F) {
	for _, b := range []string{
		`{"token":"$PLAIN"}`, `{"token":"$CIDR"}`, `{"token":"$CIDR","address":"10.1.2.3"}`, `{"token":"$CIDR","address":"::ffff:10.1.2.3"}`,
		`{"token":"$CIDR","address":"192.0.2.1"}`, `{"token":"$CIDR","address":"10.1.2.3%eth0"}`, `{"token":"$REVOKED"}`,
		`{"token":"$PLAIN","permission":"billing:read","workspace":"w1"}`, `{"token":"$PLAIN","permission":"billing:write","workspace":"w1"}`,
		`{"token":"$PLAIN","permission":"bad"}`, `{"token":"$PLAIN","workspace":"w2","permission":"billing:read"}`,
		`{"token":"kg_garbage"}`, `{"token":""}`, `{"token":"$PLAIN$PLAIN"}`, `{"token":"$PLAIN","token":"$REVOKED"}`,
		`{"TOKEN":"$PLAIN"}`, `{"token":"$PLAIN","extra":1}`, `{}`, `[]`, ``,
	} {
		f.Add(b, false, false)
	}
	f.Add(`{"token":"$PLAIN"}`, true, false)
	f.Add(`{"token":"$PLAIN"}`, false, true)
	fx := newFixture(f, server.Config{MaxBodyBytes: 4096})
	base := keygate.CreateRequest{Name: "plain", Workspace: "w1", Role: "viewer", Scopes: []string{"billing:read"}}
	plain := fx.key(f, base)
	base.Name, base.Limits.AllowedCIDRs = "cidr", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cidr := fx.key(f, base)
	base.Name, base.Limits.AllowedCIDRs = "revoked", nil
	revoked := fx.key(f, base)
	if _, err := fx.m.Revoke(context.Background(), keygate.System(), revoked.Key.ID); err != nil {
		f.Fatal(err)
	}
	verifier := fx.token(f, keygate.CreateRequest{Name: "verifier", Workspace: "w2", Scopes: []string{"apikey:verify"}})
	tokens := []string{plain.Token.Reveal(), cidr.Token.Reveal(), revoked.Token.Reveal(), verifier}
	keys := map[string]*keygate.Created{tokens[0]: plain, tokens[1]: cidr, tokens[2]: revoked}
	placeholders := strings.NewReplacer("$PLAIN", tokens[0], "$CIDR", tokens[1], "$REVOKED", tokens[2])
	f.Fuzz(func(t *testing.T, body string, bound, down bool) {
		body = placeholders.Replace(body)
		caller := fx.admin
		if bound {
			caller = verifier
		}
		fx.store.Down.Store(down)
		w := fx.send(http.MethodPost, "/keys/verify", "", jsonHeader(caller), body)
		fx.store.Down.Store(false)
		fx.check(t, "POST /keys/verify", w, down, "", tokens...)
		if w.Code != http.StatusOK {
			return
		}
		var v server.VerifyResponse
		strict(t, "POST /keys/verify", w.Body.Bytes(), &v)
		if v.Valid != (v.Code == "") || (v.Code != "" && !verdictCodes[v.Code]) || (v.RetryAfter > 0) != (v.Code == middleware.CodeRateLimited) {
			t.Fatalf("verdict %s: valid must go with no code, a code must be known, retry_after only with rate_limited", w.Body)
		}
		if !v.Valid {
			if v.Key != nil || v.Permissions != nil || v.SuperAdmin {
				t.Fatalf("invalid verdict with a key: %s", w.Body)
			}
			return
		}
		var sent server.VerifyRequest
		if err := json.Unmarshal([]byte(body), &sent); err != nil {
			t.Fatalf("verify accepted a body that does not decode: %v", err)
		}
		c, ok := keys[sent.Token]
		switch {
		case !ok || v.Key == nil || v.Key.ID != c.Key.ID:
			t.Fatalf("valid verdict %s for token %q, which is not the key's", w.Body, sent.Token)
		case c == revoked:
			t.Fatalf("the revoked key verifies: %s", w.Body)
		case bound:
			t.Fatalf("a verifier bound to w2 verifies a key of w1: %s", w.Body)
		case c == cidr:
			addr, err := netip.ParseAddr(sent.Address)
			if err != nil || !netip.MustParsePrefix("10.0.0.0/8").Contains(addr.Unmap()) {
				t.Fatalf("the key with an allow-list verifies from address %q: %s", sent.Address, w.Body)
			}
		}
		if sent.Permission == "" {
			return
		}
		want, err := permission.Parse(sent.Permission)
		held, err2 := permission.ParseSet(v.Permissions...)
		switch {
		case err != nil || err2 != nil:
			t.Fatalf("valid verdict %s for permission %q: %v %v", w.Body, sent.Permission, err, err2)
		case !held.Allows(want):
			t.Fatalf("valid verdict %s for permission %q the key lacks", w.Body, sent.Permission)
		case sent.Workspace != "" && sent.Workspace != c.Key.Workspace:
			t.Fatalf("valid verdict %s for permission %q in workspace %q, not the key's", w.Body, sent.Permission, sent.Workspace)
		}
	})
}

// FuzzListQuery sends arbitrary query strings to GET /keys (page cursors
// and filters: after, limit, revoked, workspace, owner), as a super admin
// or as an owner bound to workspace w1, with the store up or down. Beyond
// the answer's invariants: a bad parameter is a 400 invalid_field; a page
// holds at most limit keys, in id order, after the cursor, matching every
// filter, only of w1 for the bound caller, and, for a super admin without
// a cursor or limit, every key that matches.
func FuzzListQuery(f *testing.F) {
	for _, q := range []string{
		"", "limit=2", "limit=0", "limit=-1", "limit=1001", "limit=99999999999999999999", "limit=+3", "limit=1.5", "limit=",
		"revoked=any", "revoked=active", "revoked=revoked", "revoked=yes", "revoked=ACTIVE",
		"workspace=w1", "workspace=w2", "workspace=", "owner=alice", "owner=nobody", "workspace=w1&owner=bob&revoked=active",
		"after=00000000-0000-0000-0000-000000000000", "after=ffffffff-ffff-ffff-ffff-ffffffffffff", "after=not-a-uuid",
		"after=urn:uuid:00000000-0000-0000-0000-000000000000", "after={00000000-0000-0000-0000-000000000000}",
		"limit=1&limit=x", "limit=x&limit=1", "workspace=w1;owner=alice", "%zz=1&limit=2", "workspace=%00",
	} {
		f.Add(q, false, false)
	}
	f.Add("workspace=w2", true, false)
	f.Add("", true, false)
	f.Add("limit=2", false, true)
	fx := newFixture(f, server.Config{})
	for _, k := range []struct {
		name, workspace, owner string
		revoke                 bool
	}{
		{"k1", "w1", "alice", false}, {"k2", "w1", "bob", false}, {"k3", "w2", "alice", false},
		{"k4", "", "carol", false}, {"k5", "w1", "alice", true}, {"k6", "w2", "bob", true},
	} {
		c := fx.key(f, keygate.CreateRequest{Name: k.name, Workspace: k.workspace, Owner: k.owner, Scopes: []string{"billing:read"}})
		if k.revoke {
			if _, err := fx.m.Revoke(context.Background(), keygate.System(), c.Key.ID); err != nil {
				f.Fatal(err)
			}
		}
	}
	owner := fx.token(f, keygate.CreateRequest{Name: "w1-owner", Workspace: "w1", Owner: "alice", Role: "owner"})
	all, err := fx.store.Store.List(context.Background(), store.ListOptions{Limit: store.MaxListLimit})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string, bound, down bool) {
		caller := fx.admin
		if bound {
			caller = owner
		}
		fx.store.Down.Store(down)
		w := fx.send(http.MethodGet, "/keys", query, http.Header{"Authorization": {"Api-Key " + caller}}, "")
		fx.store.Down.Store(false)
		fx.check(t, "GET /keys?"+query, w, down, "", owner)
		q, _ := url.ParseQuery(query)
		limit, revoked, after := q.Get("limit"), q.Get("revoked"), q.Get("after")
		n, err := strconv.Atoi(limit)
		afterID, afterErr := uuid.Parse(after)
		// The server checks these parameters before anything else, the
		// Manager the filters after the caller's record, which a failing
		// store cannot give.
		badParam := limit != "" && (err != nil || n < 1) ||
			!slices.Contains([]string{"", server.RevokedAny, server.RevokedActive, server.RevokedOnly}, revoked) ||
			after != "" && afterErr != nil
		badFilter := !identifier(q.Get("workspace")) || !identifier(q.Get("owner"))
		if badParam || badFilter {
			if !(badFilter && !badParam && down && w.Code == http.StatusServiceUnavailable) &&
				(w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"code":"invalid_field"`)) {
				t.Fatalf("GET /keys?%s = %d %s, want 400 invalid_field", query, w.Code, w.Body)
			}
			return
		}
		if w.Code != http.StatusOK {
			if !down && !bound {
				t.Fatalf("GET /keys?%s = %d %s as a super admin with the store up", query, w.Code, w.Body)
			}
			return
		}
		if limit == "" {
			n = store.DefaultListLimit
		}
		var page server.KeyList
		strict(t, "GET /keys", w.Body.Bytes(), &page)
		if len(page.Keys) > n {
			t.Fatalf("GET /keys?%s: %d keys, over the limit %d", query, len(page.Keys), n)
		}
		for i, k := range page.Keys {
			switch {
			case i > 0 && bytes.Compare(page.Keys[i-1].ID[:], k.ID[:]) >= 0:
				t.Fatalf("GET /keys?%s: keys out of id order", query)
			case after != "" && bytes.Compare(afterID[:], k.ID[:]) >= 0:
				t.Fatalf("GET /keys?%s: key %v is not after the cursor", query, k.ID)
			case q.Get("workspace") != "" && k.Workspace != q.Get("workspace"),
				q.Get("owner") != "" && k.Owner != q.Get("owner"),
				revoked == server.RevokedActive && !k.RevokedAt.IsZero(),
				revoked == server.RevokedOnly && k.RevokedAt.IsZero():
				t.Fatalf("GET /keys?%s: key %s does not match the filters", query, k.Name)
			case bound && k.Workspace != "w1":
				t.Fatalf("GET /keys?%s: the owner bound to w1 sees key %s of workspace %q", query, k.Name, k.Workspace)
			}
		}
		if page.Next != "" && (len(page.Keys) == 0 || page.Next != page.Keys[len(page.Keys)-1].ID.String()) {
			t.Fatalf("GET /keys?%s: next %q is not the last key's id", query, page.Next)
		}
		if bound || after != "" || limit != "" {
			return
		}
		want := 0
		for _, k := range all.Keys {
			if (q.Get("workspace") == "" || k.Workspace == q.Get("workspace")) && (q.Get("owner") == "" || k.Owner == q.Get("owner")) &&
				(revoked != server.RevokedActive || k.RevokedAt.IsZero()) && (revoked != server.RevokedOnly || !k.RevokedAt.IsZero()) {
				want++
			}
		}
		if len(page.Keys) != want || page.Next != "" {
			t.Fatalf("GET /keys?%s: %d keys (next %q), want all %d that match", query, len(page.Keys), page.Next, want)
		}
	})
}

// identifier reports whether a workspace or owner filter is one a key may
// hold: at most MaxIdentLength bytes of UTF-8, without control characters
// or surrounding white space.
func identifier(s string) bool {
	return len(s) <= keygate.MaxIdentLength && utf8.ValidString(s) && strings.TrimSpace(s) == s && !strings.ContainsFunc(s, unicode.IsControl)
}

// FuzzRoute sends requests of any method to any path, without a body, as a
// super admin: no path is redirected or fails, and every path that is not
// a route, or not for that method, is refused with a problem.
func FuzzRoute(f *testing.F) {
	for _, s := range []struct{ method, path string }{
		{"GET", "/keys"}, {"GET", "/roles"}, {"HEAD", "/roles"}, {"GET", "/keys/verify"}, {"PUT", "/keys"},
		{"GET", "/keys/00000000-0000-0000-0000-000000000000"}, {"DELETE", "/keys/not-a-uuid"}, {"PATCH", "/keys/verify"},
		{"POST", "/keys/00000000-0000-0000-0000-000000000000/revoke"}, {"GET", "/keys/x/regenerate"}, {"GET", "//keys"},
		{"GET", "/keys/"}, {"GET", "/keys/../roles"}, {"GET", "/./roles"}, {"GET", ""}, {"GET", "roles"}, {"GET", "/"},
		{"OPTIONS", "*"}, {"CONNECT", "/keys"}, {"get", "/keys"}, {"G E T", "/keys"}, {"", "/keys"}, {"TRACE", "/keys/%2e%2e"},
	} {
		f.Add(s.method, s.path)
	}
	fx := newFixture(f, server.Config{})
	f.Fuzz(func(t *testing.T, method, path string) {
		w := fx.send(method, path, "", http.Header{"Authorization": {"Api-Key " + fx.admin}}, "")
		fx.check(t, method+" "+path, w, false, "")
		if w.Code < 300 && !(method == http.MethodGet || method == http.MethodHead) {
			t.Fatalf("%s %s = %d without a body", method, path, w.Code)
		}
	})
}

// FuzzImportRequest sends arbitrary bodies to POST /keys/import, with the
// store up or down. Beyond the answer's invariants: a 200 has one result
// per row, counts that add up, a key for each imported or visible
// duplicate row, a valid problem for each failed one, nothing imported
// while the store is down, and no token of the request in the answer;
// each imported token then verifies.
func FuzzImportRequest(f *testing.F) {
	row := `{"name":"k","workspace":"w","role":"viewer","expiry":"30d","token":"kg_MGIbh7tm3BzEIhKEzakC1kI4iKDlgkc7RmDyXIlQFcV0u9RQd"}` // a valid token issued elsewhere
	for _, seed := range []string{
		`{"keys":[` + row + `]}`,
		`{"keys":[` + row + `,` + row + `]}`,
		`{"keys":[{"name":"k","scopes":["a:b"],"expiry":"never","sha256":"` + strings.Repeat("0f", 32) + `","hint":"sk_x"}]}`,
		`{"keys":[{"name":"k","scopes":["a:b"],"expiry":"never","token":"sk_live_0123456789abcdef","sha256":"00"}]}`,
		`{"keys":[{"name":"k","role":"owner","expiry":"1d","token":"short"}]}`,
		`{"keys":[{"name":"k","role":"owner","expiry":"1d","token":"with space in it 0123"}]}`,
		`{"keys":[{"name":"k","role":"owner","expiry":"soon","token":"sk_live_0123456789abcdef"}]}`,
		`{"keys":[{}]}`, `{"keys":[]}`, `{"keys":null}`, `{"keys":{}}`, `{}`, `[]`, `null`, ``, `{"keys":[` + row + `]}{}`,
	} {
		f.Add(seed, false)
	}
	f.Add(`{"keys":[`+row+`]}`, true)
	fx := newFixture(f, server.Config{MaxBodyBytes: 8192})
	f.Fuzz(func(t *testing.T, body string, down bool) {
		var in server.ImportRequest
		_ = json.Unmarshal([]byte(body), &in)
		var tokens []string
		for _, r := range in.Keys {
			if len(r.Token) >= 8 {
				tokens = append(tokens, r.Token)
			}
		}
		fx.store.Down.Store(down)
		w := fx.send(http.MethodPost, "/keys/import", "", jsonHeader(fx.admin), body)
		fx.store.Down.Store(false)
		fx.check(t, "POST /keys/import", w, down, "", tokens...)
		if w.Code != http.StatusOK {
			return
		}
		var out server.ImportResponse
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("200 with %s: %v", w.Body, err)
		}
		if len(out.Results) != len(in.Keys) || out.Imported+out.Duplicates+out.Failed != len(out.Results) {
			t.Fatalf("%d rows: %d results, counts %d+%d+%d", len(in.Keys), len(out.Results), out.Imported, out.Duplicates, out.Failed)
		}
		for i, r := range out.Results {
			switch r.Status {
			case "imported":
				if down || r.Key == nil || r.Error != nil {
					t.Fatalf("row %d imported with the store down %v: %+v", i, down, r)
				}
				defer fx.remove(t, r.Key.ID)
				if in.Keys[i].Token != "" {
					if k, err := fx.m.Verify(context.Background(), in.Keys[i].Token); err != nil || k.ID != r.Key.ID {
						t.Fatalf("row %d imported but does not verify: %v", i, err)
					}
				}
			case "duplicate":
				if r.Error != nil {
					t.Fatalf("row %d: %+v", i, r)
				}
			case "failed":
				if r.Key != nil || r.Error == nil || !knownCodes[r.Error.Code] || r.Error.Status < 400 || r.Error.Detail == "" ||
					(r.Error.Status >= 500 && !(down && r.Error.Status == http.StatusServiceUnavailable)) {
					t.Fatalf("row %d: bad failure %+v", i, r)
				}
			default:
				t.Fatalf("row %d: status %q", i, r.Status)
			}
		}
	})
}

// FuzzUsageQuery sends GET /keys/{id}/usage with any query: it is
// answered 200 with a well-formed report of whole, contiguous buckets
// within the bounds, or 400 invalid_field, or 503 while the store is
// down; never another answer.
func FuzzUsageQuery(f *testing.F) {
	for _, q := range []string{
		"", "bucket=1h", "bucket=1d", "bucket=1m", "bucket=", "bucket=1D", "bucket=24h", "bucket=1h&bucket=1d",
		"from=2026-11-01", "to=2026-11-01", "from=2026-11-01&to=2026-11-08&bucket=1d", "from=2026-11-08&to=2026-11-01",
		"from=2026-11-01T10:30:00Z", "from=2026-11-01T10:30:00.123456789%2B05:30&to=2026-11-02T00:00:00-08:00",
		"from=2026-11-01t10:30:00z", "from=1969-12-31", "to=1970-01-01", "from=1970-01-01&to=1970-01-02",
		"from=9999-12-31&to=9999-12-31T23:59:59Z&bucket=1d", "from=2025-01-01&to=2026-01-02&bucket=1d",
		"from=2026-01-01&to=2026-04-01", "from=2026-02-30", "from=2026-11-01T25:00:00Z", "from=%00", "to=now",
		"from=2026-11-01&from=bad", "%zz=1&bucket=1d", "bucket=1d;from=2026-11-01",
	} {
		f.Add(q, false)
	}
	f.Add("bucket=1d", true)
	fx := newFixture(f, server.Config{})
	c := fx.key(f, keygate.CreateRequest{Name: "metered", Workspace: "w", Role: "viewer"})
	if _, err := fx.m.Verify(context.Background(), c.Token.Reveal()); err != nil {
		f.Fatal(err)
	}
	path := "/keys/" + c.Key.ID.String() + "/usage"
	f.Fuzz(func(t *testing.T, query string, down bool) {
		fx.store.Down.Store(down)
		w := fx.send(http.MethodGet, path, query, http.Header{"Authorization": {"Api-Key " + fx.admin}}, "")
		fx.store.Down.Store(false)
		fx.check(t, "GET "+path+"?"+query, w, down, "")
		switch {
		case w.Code == http.StatusBadRequest:
			if !strings.Contains(w.Body.String(), `"code":"invalid_field"`) {
				t.Fatalf("GET %s?%s = 400 %s, want invalid_field", path, query, w.Body)
			}
			return
		case down && w.Code == http.StatusServiceUnavailable:
			return
		case w.Code != http.StatusOK:
			t.Fatalf("GET %s?%s = %d %s, want 200 or 400", path, query, w.Code, w.Body)
		}
		q, _ := url.ParseQuery(query)
		var u server.Usage
		strict(t, "GET "+path, w.Body.Bytes(), &u)
		bucket, limit := time.Hour, keygate.MaxUsageHours
		switch b := q.Get("bucket"); b {
		case "", server.BucketHour:
		case server.BucketDay:
			bucket, limit = 24*time.Hour, keygate.MaxUsageDays
		default:
			t.Fatalf("GET %s?%s = 200 for a bucket of %q", path, query, b)
		}
		n := len(u.Buckets)
		switch {
		case u.KeyID != c.Key.ID:
			t.Fatalf("GET %s?%s: the report of key %s", path, query, u.KeyID)
		case u.Bucket != q.Get("bucket") && !(u.Bucket == server.BucketHour && q.Get("bucket") == ""):
			t.Fatalf("GET %s?%s: buckets of %s", path, query, u.Bucket)
		case n == 0 || n > limit+1 || !u.To.Equal(u.From.Add(time.Duration(n)*bucket)):
			t.Fatalf("GET %s?%s: %d buckets from %v to %v", path, query, n, u.From, u.To)
		case !u.From.Equal(u.From.Truncate(bucket)) || u.From.Location() != time.UTC:
			t.Fatalf("GET %s?%s: from %v is not a whole bucket in UTC", path, query, u.From)
		}
		var total int64
		for i, b := range u.Buckets {
			if !b.Start.Equal(u.From.Add(time.Duration(i) * bucket)) {
				t.Fatalf("GET %s?%s: bucket %d starts at %v", path, query, i, b.Start)
			}
			total += b.Counts["valid"]
		}
		if total != u.Totals["valid"] {
			t.Fatalf("GET %s?%s: buckets add up to %d, totals say %d", path, query, total, u.Totals["valid"])
		}
	})
}

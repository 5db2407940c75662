package openapitest_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/servertest"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// The tests of this file keep the OpenAPI document (server.OpenAPI) and the
// handler from drifting apart:
//
//   - TestOpenAPIDocument: the document is valid OpenAPI 3.1, its examples
//     match their schemas, and its problem codes are exactly the Code
//     constants of packages server and middleware.
//   - TestOpenAPIRoutes: the routes package server registers on its mux
//     (read from its source) are exactly the operations of the document, and
//     every documented path answers other methods 405 with an Allow header
//     listing the documented ones.
//   - TestOpenAPIConformance: every route is driven through a real HTTP
//     server, to every answer the document gives it; each request is
//     validated against the document (conforming or, for requests that
//     break a rule the document states, not) and each response must
//     conform. Every documented (route, status, code) must be exercised,
//     but for the few listed in untested.
//
// To add a route: register it in server.New, describe it in
// server/openapi.json, add a line to samples (in TestOpenAPIConformance)
// and its own cases to calls.

// docOptions are the checks run on the document itself.
var docOptions = []openapi3.ValidationOption{
	openapi3.EnableExamplesValidation(),
	openapi3.EnableSchemaDefaultsValidation(),
	openapi3.EnableSchemaPatternValidation(),
	openapi3.EnableSchemaFormatValidation(),
}

// loadOpenAPI returns the document server.OpenAPI returns, validated.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(server.OpenAPI())
	if err != nil {
		t.Fatalf("load the OpenAPI document: %v", err)
	}
	if err := doc.Validate(loader.Context, docOptions...); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	return doc
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)

	// Every problem code the packages define, and no other (both packages
	// define some, such as invalid_request).
	codes := codeConstants(t, serverDir, middlewareDir)
	enum := stringsOf(doc.Components.Schemas["ProblemCode"].Value.Enum)
	if got, want := sorted(enum), slices.Compact(sorted(codes)); !slices.Equal(got, want) {
		t.Errorf("ProblemCode enum = %v,\nCode constants = %v", got, want)
	}
	// The codes each response allows are problem codes.
	for name, ref := range doc.Components.Responses {
		for _, code := range problemCodes(ref.Value) {
			if !slices.Contains(enum, code) {
				t.Errorf("response %s allows code %q, which is not in ProblemCode", name, code)
			}
		}
	}

	// OpenAPI returns a copy.
	b := server.OpenAPI()
	b[0] = 'x'
	if server.OpenAPI()[0] != '{' {
		t.Error("OpenAPI returned the embedded document itself, not a copy")
	}
}

func TestOpenAPIHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(server.OpenAPIHandler())
	t.Cleanup(srv.Close)
	res, body := fetch(t, srv.Client(), "GET", srv.URL, nil, nil)
	if res.StatusCode != 200 || !bytes.Equal(body, server.OpenAPI()) {
		t.Fatalf("GET = %d with %d bytes, want 200 and the document", res.StatusCode, len(body))
	}
	for name, want := range map[string]string{
		"Content-Type":           "application/json",
		"Cache-Control":          "public, max-age=300",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	etag := res.Header.Get("ETag")
	if len(etag) < 3 || etag[0] != '"' {
		t.Fatalf("ETag = %q, want a strong entity tag", etag)
	}
	if res, _ := fetch(t, srv.Client(), "GET", srv.URL, http.Header{"If-None-Match": {etag}}, nil); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match = %d, want 304", res.StatusCode)
	}
	if res, body := fetch(t, srv.Client(), "HEAD", srv.URL, nil, nil); res.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD = %d with %d bytes, want 200 and no body", res.StatusCode, len(body))
	}
	res, body = fetch(t, srv.Client(), "POST", srv.URL, nil, nil)
	if res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" || !bytes.Contains(body, []byte(`"code":"method_not_allowed"`)) {
		t.Errorf("POST = %d, Allow %q, %s; want 405, GET, HEAD, method_not_allowed", res.StatusCode, res.Header.Get("Allow"), body)
	}
}

func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	routes, fallbacks := muxPatterns(t)
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	if got, want := sorted(routes), sorted(ops); !slices.Equal(got, want) {
		t.Errorf("the mux serves %v,\nthe document describes %v", got, want)
	}
	// Each path has a fallback answering its other methods (405) as a
	// problem, after authentication, rather than ServeMux's plain text.
	// /keys/verify has none of its own: /keys/{id}'s answers for it.
	for path := range doc.Paths.Map() {
		if !slices.ContainsFunc(fallbacks, func(fb string) bool { return patternMatches(fb, path) }) {
			t.Errorf("no fallback of the mux (%v) covers the document's path %s", fallbacks, path)
		}
	}
	for _, fb := range fallbacks {
		if doc.Paths.Value(fb) == nil {
			t.Errorf("the mux has a fallback for %s, which the document does not describe", fb)
		}
	}

	// Every path answers the methods it does not document 405, with an
	// Allow header listing those it documents.
	f := servertest.New(t, server.Config{})
	live := serve(t, f.Handler)
	c := newContract(t, doc)
	id := uuid.NewString()
	for path, item := range doc.Paths.Map() {
		documented := slices.Collect(maps.Keys(item.Operations()))
		allow := slices.Clone(documented)
		if slices.Contains(allow, "GET") {
			allow = append(allow, "HEAD") // ServeMux answers HEAD with GET's handler
		}
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(documented, method) {
				continue
			}
			ex := live.send(t, call{method: method, path: strings.ReplaceAll(path, "{id}", id), token: f.Admin})
			if ex.status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", method, path, ex.status)
				continue
			}
			c.checkResponse(t, ex, "MethodNotAllowed")
			got := strings.Split(ex.respHeader.Get("Allow"), ", ")
			if !slices.Equal(sorted(got), sorted(allow)) {
				t.Errorf("%s %s: Allow = %q, want %v", method, path, ex.respHeader.Get("Allow"), allow)
			}
		}
	}
	// Paths the document does not list, with and without a key.
	for _, path := range []string{"/nothing", "/keys/", "//keys", "/keys/" + id + "/rotate", ""} {
		ex := live.send(t, call{method: "GET", path: path, token: f.Admin})
		if ex.status != http.StatusNotFound || ex.problem.Code != server.CodeNoRoute {
			t.Errorf("GET %q = %d %q, want 404 no_route", path, ex.status, ex.problem.Code)
		}
		c.checkResponse(t, ex, "NoRoute")
		ex = live.send(t, call{method: "GET", path: path})
		if ex.status != http.StatusUnauthorized || ex.problem.Code != middleware.CodeMissing {
			t.Errorf("GET %q without a key = %d %q, want 401 missing", path, ex.status, ex.problem.Code)
		}
		c.checkResponse(t, ex, "Unauthorized")
	}
}

// conformance says whether a request must conform to the document.
type conformance int

const (
	// conforms: the request follows the document; the server may still
	// refuse it for a reason the document states in prose, such as an
	// expiry in the past.
	conforms conformance = iota
	// violates: the request breaks a rule the document states (a missing
	// credential, member, an unknown member, a length, a pattern), and
	// validation must say so.
	violates
	// unchecked: the body is deliberately not JSON, so the request cannot
	// be validated; only its response is.
	unchecked
)

// outage is what fails in the store during a call.
type outage int

const (
	noOutage    outage = iota
	storeDown          // management calls fail
	lookupsDown        // verifying an uncached key fails
)

// call is one request to the API and the answer it must get.
type call struct {
	name         string
	api          *liveAPI // nil: the main one
	method, path string
	// token is sent as "Authorization: Api-Key <token>", or in the form
	// scheme names ("Bearer" or "X-API-Key"); "" sends none.
	token, scheme string
	header        http.Header
	contentType   string // default application/json for a body
	body          string
	outage        outage
	request       conformance
	status        int
	code          string // the problem code; "" for a success
}

// liveAPI is the API served by a real HTTP server, mounted under servertest.Prefix.
type liveAPI struct {
	url    string
	client *http.Client
}

// serve serves h, which serves the API under servertest.Prefix.
func serve(t *testing.T, h http.Handler) *liveAPI {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &liveAPI{url: srv.URL + servertest.Prefix, client: srv.Client()}
}

// exchange is a request sent and the response it got.
type exchange struct {
	method, path string
	header       http.Header
	body         []byte
	status       int
	respHeader   http.Header
	respBody     []byte
	problem      middleware.Problem // decoded when the response is a problem
}

// send sends c and returns what it got.
func (a *liveAPI) send(t *testing.T, c call) *exchange {
	t.Helper()
	ex := &exchange{method: c.method, path: c.path, header: http.Header{}, body: []byte(c.body)}
	for name, vs := range c.header {
		ex.header[name] = slices.Clone(vs)
	}
	if c.token != "" {
		switch c.scheme {
		case "", "Api-Key", "Bearer":
			ex.header.Set("Authorization", cmp.Or(c.scheme, "Api-Key")+" "+c.token)
		default:
			ex.header.Set(c.scheme, c.token)
		}
	}
	switch {
	case c.contentType != "":
		ex.header.Set("Content-Type", c.contentType)
	case c.body != "":
		ex.header.Set("Content-Type", "application/json")
	}
	var res *http.Response
	res, ex.respBody = fetch(t, a.client, c.method, a.url+c.path, ex.header, ex.body)
	ex.status, ex.respHeader = res.StatusCode, res.Header
	if res.Header.Get("Content-Type") == middleware.ProblemContentType {
		if err := json.Unmarshal(ex.respBody, &ex.problem); err != nil {
			t.Errorf("%s %s: problem %q: %v", c.method, c.path, ex.respBody, err)
		}
	}
	return ex
}

// fetch sends a request and returns the response with its body read.
func fetch(t *testing.T, client *http.Client, method, url string, header http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return res, b
}

// contract validates requests and responses against the document.
type contract struct {
	doc    *openapi3.T
	router routers.Router
	base   string // the document's server URL, "/v1"
	opts   *openapi3filter.Options
}

func newContract(t *testing.T, doc *openapi3.T) *contract {
	t.Helper()
	router, err := legacy.NewRouter(doc, docOptions...)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return &contract{
		doc:    doc,
		router: router,
		base:   doc.Servers[0].URL,
		opts: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			AuthenticationFunc:    authenticate,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{
				// Key ids are UUIDv7, which the RFC 4122 format of
				// kin-openapi does not know.
				openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562)),
			},
		},
	}
}

// authenticate reports whether a request carries a credential in the form
// of a security scheme of the document. Whether the credential is any good
// is the server's to say.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header
	switch s := in.SecurityScheme; s.Type {
	case "http":
		scheme, _, ok := strings.Cut(h.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, s.Scheme) {
			return fmt.Errorf("no Authorization: %s credential", s.Scheme)
		}
	case "apiKey":
		if s.In != "header" || h.Get(s.Name) == "" {
			return fmt.Errorf("no %s header", s.Name)
		}
	default:
		return fmt.Errorf("unexpected security scheme type %q", s.Type)
	}
	return nil
}

// request returns the request of ex as the document sees it: sent to its
// server URL.
func (c *contract) request(t *testing.T, ex *exchange) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), ex.method, c.base+ex.path, bytes.NewReader(ex.body))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	r.Header = ex.header.Clone()
	return r
}

// check validates ex against the operation its request matches: the
// request as want says, the response always. It returns the operation, as
// "METHOD /path".
func (c *contract) check(t *testing.T, ex *exchange, want conformance) string {
	t.Helper()
	r := c.request(t, ex)
	route, params, err := c.router.FindRoute(r)
	if err != nil {
		t.Fatalf("%s %s: no operation of the document: %v", ex.method, ex.path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: c.opts}
	if want != unchecked {
		err := openapi3filter.ValidateRequest(t.Context(), in)
		switch {
		case want == conforms && err != nil:
			t.Errorf("the request does not conform to the document: %v", err)
		case want == violates && err == nil:
			t.Errorf("the request conforms to the document, want it to break a rule the document states")
		case want == violates:
			t.Logf("the request breaks the document, as it should: %s", firstLine(err))
		}
	}
	c.validateResponse(t, ex, in)
	return route.Method + " " + route.Path
}

// checkResponse validates the response of ex, which matches no operation,
// against the response component name of the document.
func (c *contract) checkResponse(t *testing.T, ex *exchange, name string) {
	t.Helper()
	ref := c.doc.Components.Responses[name]
	if ref == nil {
		t.Fatalf("the document has no response %s", name)
	}
	route := &routers.Route{
		Spec:      c.doc,
		Path:      ex.path,
		PathItem:  &openapi3.PathItem{},
		Method:    ex.method,
		Operation: &openapi3.Operation{Responses: openapi3.NewResponses(openapi3.WithStatus(ex.status, ref))},
	}
	c.validateResponse(t, ex, &openapi3filter.RequestValidationInput{Request: c.request(t, ex), Route: route, Options: c.opts})
}

// validateResponse validates the response of ex to the request in.
func (c *contract) validateResponse(t *testing.T, ex *exchange, in *openapi3filter.RequestValidationInput) {
	t.Helper()
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 ex.status,
		Header:                 ex.respHeader,
		Options:                c.opts,
	}
	out.SetBodyBytes(ex.respBody)
	if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
		t.Errorf("the response %d %s does not conform to the document: %v", ex.status, ex.respBody, err)
	}
	// The validator checks the headers the document names; it must name
	// every header the server sends, but those of HTTP itself.
	if ref := in.Route.Operation.Responses.Status(ex.status); ref != nil {
		named := []string{"Content-Type", "Content-Length", "Date"}
		for name := range ref.Value.Headers {
			named = append(named, http.CanonicalHeaderKey(name))
		}
		for name := range ex.respHeader {
			if !slices.Contains(named, name) {
				t.Errorf("the response %d has a header %s the document does not name", ex.status, name)
			}
		}
	}
}

// untested are the answers the document gives, as "METHOD /path status
// code" ("*" for every route), that no request of this test can draw, and
// why.
var untested = map[string]string{
	"* 400 invalid_request":                   "every validation error of keygate has a more precise code; invalid_request is the fallback",
	"* 403 insufficient_permission":           "sent by a permission check a host puts in front of the API (middleware.Require), not by the server",
	"POST /keys/{id}/regenerate 409 conflict": "only after eight lost races with concurrent updates",
	"POST /keys/{id}/revoke 409 conflict":     "only after eight lost races with concurrent updates",
	"* 408 request_timeout":                   "needs the read deadline of a real http.Server to pass mid-body: TestBodyReadTimeout draws it",
}

// TestBodyReadTimeout: a body that stops arriving is answered 408
// request_timeout, as the document says, once the host's http.Server
// ReadTimeout passes, and nothing is created.
func TestBodyReadTimeout(t *testing.T) {
	t.Parallel()
	f := servertest.New(t, server.Config{})
	srv := httptest.NewUnstartedServer(f.Handler)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	partial := `{"name":"slow","role":"viewer","expiry":"7d"`
	header := http.Header{"Authorization": {"Api-Key " + f.Admin}, "Content-Type": {"application/json"}}
	// The body announces 100 bytes more than it sends.
	fmt.Fprintf(conn, "POST %s/keys HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
		servertest.Prefix, srv.Listener.Addr(), header.Get("Authorization"), header.Get("Content-Type"), len(partial)+100, partial)
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	ex := &exchange{method: http.MethodPost, path: "/keys", header: header, body: []byte(partial),
		status: res.StatusCode, respHeader: res.Header, respBody: body}
	if err := json.Unmarshal(body, &ex.problem); err != nil {
		t.Fatalf("answer %d %q: %v", res.StatusCode, body, err)
	}
	if ex.status != http.StatusRequestTimeout || ex.problem.Code != server.CodeRequestTimeout {
		t.Errorf("answer %d %q (%s), want 408 %s", ex.status, ex.problem.Code, ex.problem.Detail, server.CodeRequestTimeout)
	}
	newContract(t, loadOpenAPI(t)).check(t, ex, unchecked)
	page, err := f.Manager.List(t.Context(), keygate.System(), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range page.Keys {
		if k.Name == "slow" {
			t.Error("a key was created from a body that never arrived")
		}
	}
}

func TestOpenAPIConformance(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	c := newContract(t, doc)
	ctx := t.Context()

	f := servertest.New(t, server.Config{})
	keysAPI := serve(t, f.Handler)
	admin := f.Admin

	// Callers whose own key fails.
	uses := int64(0)
	expiring := f.Key(t, keygate.CreateRequest{Name: "expired", Role: "admin", Expiry: keygate.ExpireAfter(time.Millisecond)})
	expired := expiring.Token.Reveal()
	revokedKey := f.Key(t, keygate.CreateRequest{Name: "revoked", Workspace: "w", Role: "viewer"})
	if _, err := f.Manager.Revoke(ctx, keygate.System(), revokedKey.Key.ID); err != nil {
		t.Fatal(err)
	}
	disabledKey := f.Key(t, keygate.CreateRequest{Name: "disabled", Role: "admin"})
	if _, err := f.Manager.Disable(ctx, keygate.System(), disabledKey.Key.ID); err != nil {
		t.Fatal(err)
	}
	deletedKey := f.Key(t, keygate.CreateRequest{Name: "deleted", Role: "admin"})
	if err := f.Manager.Delete(ctx, keygate.System(), deletedKey.Key.ID); err != nil {
		t.Fatal(err)
	}
	denied := f.Token(t, keygate.CreateRequest{Name: "denied", Role: "admin",
		Limits: keygate.Limits{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	limited := f.Token(t, keygate.CreateRequest{Name: "limited", Role: "admin",
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 1, Window: time.Hour}}})
	if _, err := f.Manager.Verify(ctx, limited); err != nil { // its one request of the hour
		t.Fatal(err)
	}
	exhausted := f.Token(t, keygate.CreateRequest{Name: "exhausted", Role: "admin", Limits: keygate.Limits{Uses: &uses}})
	uncached := f.Token(t, keygate.CreateRequest{Name: "uncached", Role: "admin"}) // never verified before its call
	// Sent only from a throttled address, so never verified: a key the
	// Manager holds in its cache would pass (middleware.CachedVerifier).
	unverified := f.Token(t, keygate.CreateRequest{Name: "unverified", Role: "admin"})
	for time.Now().Before(expiring.Key.ExpiresAt) {
		time.Sleep(time.Millisecond)
	}
	// A host refusing some valid keys (Config.Principal), and one whose
	// key verification fails unexpectedly.
	refusing := servertest.New(t, server.Config{Principal: func(r *http.Request) (keygate.Principal, bool) {
		key, ok := middleware.FromContext(r.Context())
		return key.Principal(), ok && key.Name != "blocked"
	}})
	blocked := refusing.Token(t, keygate.CreateRequest{Name: "blocked", Role: "admin"})
	// A host that throttles addresses sending bad keys, whose one failure
	// of the hour is spent below, before any call.
	throttledMW, err := middleware.New(middleware.Config{Verifier: f.Manager, FailureLimit: middleware.FailureLimit{Failures: 1, Window: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	throttledAPI, err := server.New(server.Config{Manager: f.Manager, Middleware: throttledMW})
	if err != nil {
		t.Fatal(err)
	}
	throttled := serve(t, http.StripPrefix(servertest.Prefix, throttledAPI))
	if ex := throttled.send(t, call{method: "GET", path: "/keys", token: "kg_notakey"}); ex.status != http.StatusUnauthorized {
		t.Fatalf("spending the throttled host's one failure: %d, want 401", ex.status)
	}
	// A service whose store records no exercised permissions, nor
	// tombstones of retired secrets.
	plainHasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{8}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	plainM, err := keygate.New(keygate.Config{Store: struct{ store.Store }{memory.New()}, Hasher: plainHasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plainM.Close(ctx) })
	plainAdmin, err := plainM.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "admin", Role: "admin", Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	plainMW, err := middleware.New(middleware.Config{Verifier: plainM})
	if err != nil {
		t.Fatal(err)
	}
	plainServer, err := server.New(server.Config{Manager: plainM, Middleware: plainMW})
	if err != nil {
		t.Fatal(err)
	}
	plainAPI := serve(t, http.StripPrefix(servertest.Prefix, plainServer))
	brokenMW, err := middleware.New(middleware.Config{Verifier: brokenVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	brokenAPI, err := server.New(server.Config{Manager: f.Manager, Middleware: brokenMW})
	if err != nil {
		t.Fatal(err)
	}

	// Callers with too few rights, and the keys the calls are about.
	viewer := f.Token(t, keygate.CreateRequest{Name: "viewer", Workspace: "w", Role: "viewer"})                    // *:read, not apikey:view
	watcher := f.Token(t, keygate.CreateRequest{Name: "watcher", Workspace: "w", Scopes: []string{"apikey:view"}}) // sees, cannot change
	manager := f.Token(t, keygate.CreateRequest{Name: "manager", Workspace: "w", Scopes: []string{"apikey:view", "apikey:manage", "*:read"}})
	blind := f.Token(t, keygate.CreateRequest{Name: "blind", Workspace: "w", Scopes: []string{"apikey:manage", "*:read"}}) // changes, cannot view
	verifier := f.Token(t, keygate.CreateRequest{Name: "verifier", Scopes: []string{"apikey:verify"}})
	otherVerifier := f.Token(t, keygate.CreateRequest{Name: "other-verifier", Workspace: "other", Scopes: []string{"apikey:verify"}})
	one := int64(1)
	oneUse := f.Token(t, keygate.CreateRequest{Name: "one-use", Workspace: "w", Role: "viewer", Limits: keygate.Limits{Uses: &one}})
	oneRate := f.Token(t, keygate.CreateRequest{Name: "one-rate", Workspace: "w", Role: "viewer", Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 1, Window: time.Hour}}})
	fenced := f.Token(t, keygate.CreateRequest{Name: "fenced", Workspace: "w", Role: "viewer", Limits: keygate.Limits{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	// Keys metered with a cost: uses, a default and an on-demand limit;
	// an identity's credits and limits.
	ten := int64(10)
	metered := f.Token(t, keygate.CreateRequest{Name: "metered", Workspace: "w", Role: "viewer", Limits: keygate.Limits{Uses: &ten,
		Rate:       keygate.RateLimit{Requests: 100, Window: time.Minute},
		RateLimits: []keygate.RateLimit{{Name: "exports", Requests: 2, Window: time.Hour, OnDemand: true}}}})
	payer, err := f.Manager.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{ExternalID: "payer", Workspace: "w",
		Limits: keygate.IdentityLimits{RateLimits: []keygate.RateLimit{{Name: "tokens", Requests: 100, Window: time.Hour, OnDemand: true}},
			Credits: &keygate.Credits{Remaining: 50, Refill: &keygate.Refill{Amount: 50, Every: store.PeriodDay}}}})
	if err != nil {
		t.Fatal(err)
	}
	paying := f.Token(t, keygate.CreateRequest{Name: "paying", Workspace: "w", Role: "viewer", IdentityID: payer.ID})
	neverSeen := f.Token(t, keygate.CreateRequest{Name: "never-seen", Workspace: "w", Role: "viewer"}) // verified only while lookups fail
	verifyBody := func(token string, more string) string { return `{"token":"` + token + `"` + more + `}` }
	target := f.Key(t, keygate.CreateRequest{Name: "target", Workspace: "w", Role: "viewer"}).Key.ID.String()
	f.Key(t, keygate.CreateRequest{Name: "taken", Workspace: "w", Role: "viewer"})
	unbound := f.Key(t, keygate.CreateRequest{Name: "unbound", Role: "owner"}).Key.ID.String()
	revokeMe := f.Key(t, keygate.CreateRequest{Name: "revoke-me", Workspace: "w", Role: "viewer"}).Key.ID.String()
	deleteMe := f.Key(t, keygate.CreateRequest{Name: "delete-me", Workspace: "w", Role: "viewer"}).Key.ID.String()
	revoked := revokedKey.Key.ID.String()

	// Identities: the target of the identity routes, one whose external id
	// is taken, one of another workspace, one a key is in, one to delete.
	newIdentity := func(ext, ws string) string {
		t.Helper()
		id, err := f.Manager.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{ExternalID: ext, Workspace: ws})
		if err != nil {
			t.Fatal(err)
		}
		return id.ID.String()
	}
	identity := newIdentity("target", "w")
	newIdentity("taken", "w")
	otherIdentity := newIdentity("elsewhere", "other")
	inUse := newIdentity("in-use", "w")
	f.Key(t, keygate.CreateRequest{Name: "in-use", Workspace: "w", Role: "viewer", IdentityID: uuid.MustParse(inUse)})
	deleteIdentity := newIdentity("delete-me", "w")
	mover := f.Key(t, keygate.CreateRequest{Name: "mover", Workspace: "w", Role: "viewer"}).Key.ID.String()
	identityBody := `{"external_id":"acme","workspace":"w","metadata":{"plan":"pro"},"limits":{"rate_limits":[` +
		`{"name":"requests","requests":100,"window":"1s"},{"name":"tokens","requests":100000,"window":"1h","on_demand":true}],` +
		`"credits":{"remaining":5000,"refill":{"amount":10000,"every":"month","day":31}}}}`

	importRow := func(name, more string) string {
		return `{"name":"` + name + `","workspace":"w","role":"viewer","expiry":"30d"` + more + `}`
	}
	importBody := func(rows ...string) string { return `{"keys":[` + strings.Join(rows, ",") + `]}` }
	kgFormat, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	freshTok, err := kgFormat.Generate() // of the server's format, issued elsewhere
	if err != nil {
		t.Fatal(err)
	}
	fresh := freshTok.Reveal()

	spaces := strings.Repeat(" ", server.DefaultMaxBodyBytes) // bodies of valid JSON, too large
	long := func(n int) string { return strings.Repeat("n", n) }

	// calls are the requests of each route and their answers, in order:
	// some change keys later ones read.
	calls := []call{
		// POST /keys
		{name: "create", method: "POST", path: "/keys", token: admin, status: 201,
			body: `{"name":"grafana","description":"Dashboards","owner":"alice","workspace":"w","role":"Viewer",` +
				`"scopes":["billing:read","App/Payments:Deploy"],"metadata":{"ticket":"OPS-1"},"expiry":"30d",` +
				`"limits":{"rate":{"requests":100,"window":"1m"},"uses_remaining":1000,"allowed_cidrs":["10.1.2.3/8","2001:db8::/32"]}}`},
		{name: "create with named limits and a refill", method: "POST", path: "/keys", token: admin, status: 201,
			body: `{"name":"metered","role":"owner","expiry":"never","limits":{"rate":{"requests":100,"window":"1m"},` +
				`"rate_limits":[{"name":"tokens","requests":100000,"window":"1h"},{"name":"exports","requests":5,"window":"24h","on_demand":true}],` +
				`"uses_remaining":1000,"uses_refill":{"amount":1000,"every":"month","day":31}}}`},
		{name: "create with a named limit called default", method: "POST", path: "/keys", token: admin, status: 400, code: "invalid_field",
			body: `{"name":"x","role":"owner","expiry":"never","limits":{"rate_limits":[{"name":"default","requests":5,"window":"1m"}]}}`},
		{name: "create with a refill and no uses", method: "POST", path: "/keys", token: admin, status: 400, code: "invalid_field",
			body: `{"name":"x","role":"owner","expiry":"never","limits":{"uses_refill":{"amount":5,"every":"day"}}}`},
		{name: "create with a bad refill", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_field",
			body: `{"name":"x","role":"owner","expiry":"never","limits":{"uses_remaining":5,"uses_refill":{"amount":5,"every":"week"}}}`},
		{name: "create with Bearer", method: "POST", path: "/keys", token: admin, scheme: "Bearer", status: 201,
			body: `{"name":"ci","scopes":["billing:read"],"expiry":"never"}`},
		{name: "create with X-API-Key", method: "POST", path: "/keys", token: admin, scheme: "X-API-Key", status: 201,
			body: `{"name":"ci","workspace":"w","role":"editor","expiry":"2099-12-31","limits":{}}`},
		{name: "create expiring at a time", method: "POST", path: "/keys", token: admin, status: 201,
			body: `{"name":"until","scopes":["billing:read"],"expiry":"2099-12-31T18:00:00.5+02:00","metadata":{}}`},
		{name: "create not JSON", method: "POST", path: "/keys", token: admin, body: `{"name":`, request: unchecked, status: 400, code: "invalid_json"},
		{name: "create with an unknown member", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_json",
			body: `{"name":"x","colour":"red","role":"owner","expiry":"never"}`},
		{name: "create with a wrong type", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_json",
			body: `{"name":5,"role":"owner","expiry":"never"}`},
		{name: "create with an array", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_json", body: `[]`},
		{name: "create without name", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "name_required",
			body: `{"role":"owner","expiry":"never"}`},
		{name: "create with an empty name", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "name_required",
			body: `{"name":"","role":"owner","expiry":"never"}`},
		{name: "create without expiry", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_expiry",
			body: `{"name":"x","role":"owner"}`},
		{name: "create with a bad expiry", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_expiry",
			body: `{"name":"x","role":"owner","expiry":"soon"}`},
		{name: "create expired", method: "POST", path: "/keys", token: admin, status: 400, code: "invalid_expiry",
			body: `{"name":"x","role":"owner","expiry":"2001-01-01"}`},
		{name: "create a viewer without workspace", method: "POST", path: "/keys", token: admin, status: 400, code: "workspace_required",
			body: `{"name":"x","role":"viewer","expiry":"never"}`},
		{name: "create with an unknown role", method: "POST", path: "/keys", token: admin, status: 400, code: "unknown_role",
			body: `{"name":"x","role":"auditor","expiry":"never"}`},
		{name: "create with a bad scope", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_scope",
			body: `{"name":"x","scopes":["billing"],"expiry":"never"}`},
		{name: "create without permissions", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "no_permissions",
			body: `{"name":"x","expiry":"never"}`},
		{name: "create with empty scopes", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "no_permissions",
			body: `{"name":"x","scopes":[],"expiry":"never"}`},
		{name: "create with a long name", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_field",
			body: `{"name":"` + long(129) + `","role":"owner","expiry":"never"}`},
		{name: "create with a spaced name", method: "POST", path: "/keys", token: admin, status: 400, code: "invalid_field",
			body: `{"name":" x","role":"owner","expiry":"never"}`},
		{name: "create a bound super admin", method: "POST", path: "/keys", token: admin, status: 400, code: "invalid_field",
			body: `{"name":"x","workspace":"w","role":"admin","expiry":"never"}`},
		{name: "create with a bad prefix", method: "POST", path: "/keys", token: admin, status: 400, code: "invalid_field",
			body: `{"name":"x","role":"owner","expiry":"never","limits":{"allowed_cidrs":["10.0.0.0/99"]}}`},
		{name: "create with a bad window", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_field",
			body: `{"name":"x","role":"owner","expiry":"never","limits":{"rate":{"requests":5,"window":"soon"}}}`},
		{name: "create with a rate and no window", method: "POST", path: "/keys", token: admin, status: 400, code: "invalid_field",
			body: `{"name":"x","role":"owner","expiry":"never","limits":{"rate":{"requests":5}}}`},
		{name: "create with negative uses", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_field",
			body: `{"name":"x","role":"owner","expiry":"never","limits":{"uses_remaining":-1}}`},
		{name: "create without apikey:manage", method: "POST", path: "/keys", token: watcher, status: 403, code: "forbidden",
			body: `{"name":"x","workspace":"w","role":"viewer","expiry":"never"}`},
		{name: "create a key wider than the caller", method: "POST", path: "/keys", token: manager, status: 403, code: "forbidden",
			body: `{"name":"x","workspace":"w","role":"editor","expiry":"never"}`},
		{name: "create a taken name", method: "POST", path: "/keys", token: admin, status: 409, code: "duplicate_name",
			body: `{"name":"taken","workspace":"w","role":"viewer","expiry":"never"}`},
		{name: "create too large", method: "POST", path: "/keys", token: admin,
			body: `{"name":"big",` + spaces + `"role":"owner","expiry":"never"}`, status: 413, code: "body_too_large"},
		{name: "create as text", method: "POST", path: "/keys", token: admin, contentType: "text/plain", request: violates,
			body: `{"name":"x","role":"owner","expiry":"never"}`, status: 415, code: "unsupported_media_type"},
		{name: "create without body", method: "POST", path: "/keys", token: admin, contentType: "application/json", request: violates,
			status: 400, code: "invalid_json"},

		// GET /keys
		{name: "list", method: "GET", path: "/keys", token: admin, scheme: "X-API-Key", status: 200},
		{name: "list a page", method: "GET", path: "/keys?limit=1", token: admin, status: 200},
		{name: "list filtered", method: "GET", path: "/keys?workspace=w&owner=alice&revoked=active&limit=1000", token: admin, status: 200},
		{name: "list after a cursor", method: "GET", path: "/keys?revoked=any&limit=2&after=" + target, token: admin, status: 200},
		{name: "list revoked", method: "GET", path: "/keys?revoked=revoked", token: admin, status: 200},
		{name: "list as a watcher", method: "GET", path: "/keys", token: watcher, status: 200},
		{name: "list a page of 0", method: "GET", path: "/keys?limit=0", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "list a page of x", method: "GET", path: "/keys?limit=x", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "list maybe revoked", method: "GET", path: "/keys?revoked=maybe", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "list after a bad cursor", method: "GET", path: "/keys?after=x", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "list without apikey:view", method: "GET", path: "/keys", token: viewer, status: 403, code: "forbidden"},
		{name: "list another workspace", method: "GET", path: "/keys?workspace=other", token: watcher, status: 403, code: "forbidden"},

		// POST /keys/verify
		{name: "verify", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(manager, ""), status: 200},
		{name: "verify with a permission", method: "POST", path: "/keys/verify", token: admin, scheme: "Bearer",
			body: verifyBody(manager, `,"permission":"cluster:read","workspace":"w","address":"203.0.113.7"`), status: 200},
		{name: "verify without the permission", method: "POST", path: "/keys/verify", token: verifier,
			body: verifyBody(manager, `,"permission":"cluster:write","workspace":"w"`), status: 200},
		{name: "verify a malformed token", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody("kg_nope", ""), status: 200},
		{name: "verify an unknown token", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(deletedKey.Token.Reveal(), ""), status: 200},
		{name: "verify a key of another workspace", method: "POST", path: "/keys/verify", token: otherVerifier, body: verifyBody(manager, ""), status: 200},
		{name: "verify an expired token", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(expired, ""), status: 200},
		{name: "verify a revoked token", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(revokedKey.Token.Reveal(), ""), status: 200},
		{name: "verify a one-use token", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(oneUse, ""), status: 200},
		{name: "verify a used-up token", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(oneUse, ""), status: 200},
		{name: "verify a one-request token", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(oneRate, ""), status: 200},
		{name: "verify a rate-limited token", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(oneRate, ""), status: 200},
		{name: "verify from outside an allow-list", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(fenced, `,"address":"192.0.2.1"`), status: 200},
		{name: "verify while lookups fail", method: "POST", path: "/keys/verify", token: admin, body: verifyBody(neverSeen, ""),
			outage: lookupsDown, status: 503, code: "unavailable"},
		{name: "verify with a cost", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(metered, `,"cost":3`), status: 200},
		{name: "verify naming an on-demand limit", method: "POST", path: "/keys/verify", token: verifier,
			body: verifyBody(metered, `,"cost":2,"limits":["exports","elsewhere"]`), status: 200},
		{name: "verify over a named limit", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(metered, `,"limits":["exports"]`), status: 200},
		{name: "verify over the uses with a cost", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(metered, `,"cost":9`), status: 200},
		{name: "verify drawing credits", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(paying, `,"cost":40,"limits":["tokens"]`), status: 200},
		{name: "verify over the credits", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(paying, `,"cost":40`), status: 200},
		{name: "verify over an identity's limit", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(paying, `,"cost":70,"limits":["tokens"]`), status: 200},
		{name: "verify with a cost of 0", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(metered, `,"cost":0`),
			request: violates, status: 200},
		{name: "verify with a negative cost", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(metered, `,"cost":-1`),
			request: violates, status: 400, code: "invalid_field"},
		{name: "verify with too high a cost", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(metered, `,"cost":1000000001`),
			request: violates, status: 400, code: "invalid_field"},
		{name: "verify naming a bad limit", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(metered, `,"limits":["Exports"]`),
			request: violates, status: 400, code: "invalid_field"},
		{name: "verify naming too many limits", method: "POST", path: "/keys/verify", token: verifier,
			body:    verifyBody(metered, `,"limits":[`+strings.TrimSuffix(strings.Repeat(`"a",`, server.MaxVerifyLimits+1), ",")+`]`),
			request: violates, status: 400, code: "invalid_field"},
		{name: "verify without apikey:verify", method: "POST", path: "/keys/verify", token: manager, body: verifyBody(manager, ""), status: 403, code: "forbidden"},
		{name: "verify without a token", method: "POST", path: "/keys/verify", token: verifier, body: `{}`, request: violates, status: 200},
		{name: "verify with a bad permission", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(manager, `,"permission":"cluster"`),
			request: violates, status: 400, code: "invalid_scope"},
		{name: "verify from a bad address", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(manager, `,"address":"10.0.0.0/8"`),
			status: 400, code: "invalid_field"},
		{name: "verify with an unknown member", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(manager, `,"scope":"x"`),
			request: violates, status: 400, code: "invalid_json"},
		{name: "verify not JSON", method: "POST", path: "/keys/verify", token: verifier, body: `{`, request: unchecked, status: 400, code: "invalid_json"},
		{name: "verify too large", method: "POST", path: "/keys/verify", token: verifier, body: `{"token":"x",` + spaces + `"address":"10.0.0.1"}`,
			status: 413, code: "body_too_large"},
		{name: "verify as text", method: "POST", path: "/keys/verify", token: verifier, contentType: "text/plain", body: verifyBody(manager, ""),
			request: violates, status: 415, code: "unsupported_media_type"},

		// POST /keys/import
		{name: "import", method: "POST", path: "/keys/import", token: admin, status: 200, body: importBody(
			importRow("imported", `,"token":"`+fresh+`"`), importRow("imported-again", `,"token":"`+fresh+`"`),
			importRow("foreign", `,"token":"sk_live_0123456789abcdefghij"`), importRow("hashed", `,"sha256":"`+strings.Repeat("ab", 32)+`"`))},
		{name: "import a bad row", method: "POST", path: "/keys/import", token: admin, body: importBody(importRow("bad", `,"sha256":"xyz"`)),
			request: violates, status: 200},
		{name: "import no rows", method: "POST", path: "/keys/import", token: admin, body: `{"keys":[]}`, request: violates, status: 400, code: "invalid_field"},
		{name: "import not JSON", method: "POST", path: "/keys/import", token: admin, body: `{`, request: unchecked, status: 400, code: "invalid_json"},
		{name: "import without apikey:manage", method: "POST", path: "/keys/import", token: watcher,
			body: importBody(importRow("watched", `,"token":"`+fresh+`"`)), status: 403, code: "forbidden"},
		{name: "import too large", method: "POST", path: "/keys/import", token: admin, body: `{"keys":[` + spaces + importRow("large", `,"token":"`+fresh+`"`) + `]}`, status: 413, code: "body_too_large"},
		{name: "import without tombstones in the store", api: plainAPI, method: "POST", path: "/keys/import", token: plainAdmin.Token.Reveal(),
			body: importBody(importRow("plain", `,"token":"`+fresh+`"`)), status: 501, code: "unsupported"},
		{name: "import as text", method: "POST", path: "/keys/import", token: admin, contentType: "text/plain",
			body: importBody(importRow("text", `,"token":"`+fresh+`"`)), request: violates, status: 415, code: "unsupported_media_type"},

		// GET /roles
		{name: "roles", method: "GET", path: "/roles", token: watcher, status: 200},
		{name: "roles without apikey:view", method: "GET", path: "/roles", token: viewer, status: 403, code: "forbidden"},

		// GET /keys/{id}
		{name: "get", method: "GET", path: "/keys/" + target, token: admin, scheme: "Bearer", status: 200},
		{name: "get as a watcher", method: "GET", path: "/keys/" + target, token: watcher, status: 200},
		{name: "get without apikey:view", method: "GET", path: "/keys/" + target, token: viewer, status: 404, code: "not_found"},
		{name: "get with apikey:manage only", method: "GET", path: "/keys/" + target, token: blind, status: 403, code: "forbidden"},
		{name: "get a key of no UUID", method: "GET", path: "/keys/123", token: admin, request: violates, status: 404, code: "not_found"},

		// PATCH /keys/{id}
		{name: "update everything", method: "PATCH", path: "/keys/" + target, token: admin, header: http.Header{"If-Match": {`"1"`}}, status: 200,
			body: `{"name":"target","description":"d","role":"viewer","scopes":["billing:read"],"metadata":{"a":"b"},"expiry":"90d",` +
				`"limits":{"rate":{"requests":10,"window":"1h"},"rate_limits":[{"name":"searches","requests":3,"window":"1s","on_demand":true}],` +
				`"uses_remaining":5,"uses_refill":{"amount":5,"every":"day"},"allowed_cidrs":["10.0.0.0/8"]}}`},
		{name: "update with nulls", method: "PATCH", path: "/keys/" + target, token: admin, status: 200,
			body: `{"version":2,"name":null,"description":null,"role":null,"scopes":null,"metadata":null,"expiry":null,` +
				`"limits":{"rate":{"requests":0},"rate_limits":[],"uses_remaining":-1,"uses_refill":{},"allowed_cidrs":[]}}`},
		{name: "update any version", method: "PATCH", path: "/keys/" + target, token: admin, header: http.Header{"If-Match": {"*"}}, status: 200,
			body: `{"description":"any","limits":null}`},
		{name: "update as a manager", method: "PATCH", path: "/keys/" + target, token: manager, status: 200, body: `{"description":"managed"}`},
		{name: "update not JSON", method: "PATCH", path: "/keys/" + target, token: admin, body: `{`, request: unchecked, status: 400, code: "invalid_json"},
		{name: "update the owner", method: "PATCH", path: "/keys/" + target, token: admin, body: `{"owner":"bob"}`, request: violates, status: 400, code: "invalid_json"},
		{name: "update with an unquoted If-Match", method: "PATCH", path: "/keys/" + target, token: admin, header: http.Header{"If-Match": {"1"}},
			body: `{}`, request: violates, status: 400, code: "invalid_field"},
		{name: "update with a weak If-Match", method: "PATCH", path: "/keys/" + target, token: admin, header: http.Header{"If-Match": {`W/"1"`}},
			body: `{}`, request: violates, status: 400, code: "invalid_field"},
		{name: "update with two versions", method: "PATCH", path: "/keys/" + target, token: admin, header: http.Header{"If-Match": {`"1"`}},
			body: `{"version":2}`, status: 400, code: "invalid_field"},
		{name: "update with an empty name", method: "PATCH", path: "/keys/" + target, token: admin, body: `{"name":""}`, request: violates, status: 400, code: "name_required"},
		{name: "update expired", method: "PATCH", path: "/keys/" + target, token: admin, body: `{"expiry":"2001-01-01T00:00:00Z"}`, status: 400, code: "invalid_expiry"},
		{name: "update to a viewer without workspace", method: "PATCH", path: "/keys/" + unbound, token: admin, body: `{"role":"viewer"}`, status: 400, code: "workspace_required"},
		{name: "update to an unknown role", method: "PATCH", path: "/keys/" + target, token: admin, body: `{"role":"auditor"}`, status: 400, code: "unknown_role"},
		{name: "update to a bad scope", method: "PATCH", path: "/keys/" + target, token: admin, body: `{"scopes":["a b"]}`, request: violates, status: 400, code: "invalid_scope"},
		{name: "update to no permissions", method: "PATCH", path: "/keys/" + target, token: admin, body: `{"role":"","scopes":[]}`, status: 400, code: "no_permissions"},
		{name: "update to a long description", method: "PATCH", path: "/keys/" + target, token: admin, body: `{"description":"` + long(1025) + `"}`,
			request: violates, status: 400, code: "invalid_field"},
		{name: "update without apikey:manage", method: "PATCH", path: "/keys/" + target, token: watcher, body: `{"description":"x"}`, status: 403, code: "forbidden"},
		{name: "update wider than the caller", method: "PATCH", path: "/keys/" + target, token: manager, body: `{"scopes":["billing:write"]}`, status: 403, code: "forbidden"},
		{name: "update a stale If-Match", method: "PATCH", path: "/keys/" + target, token: admin, header: http.Header{"If-Match": {`"99"`}},
			body: `{"description":"x"}`, status: 409, code: "conflict"},
		{name: "update a stale version", method: "PATCH", path: "/keys/" + target, token: admin, body: `{"version":99,"description":"x"}`, status: 409, code: "conflict"},
		{name: "update to a taken name", method: "PATCH", path: "/keys/" + target, token: admin, body: `{"name":"taken"}`, status: 409, code: "duplicate_name"},
		{name: "update too large", method: "PATCH", path: "/keys/" + target, token: admin,
			body: `{"description":"x",` + spaces + `"name":"big"}`, status: 413, code: "body_too_large"},
		{name: "update as text", method: "PATCH", path: "/keys/" + target, token: admin, contentType: "text/plain", body: `{}`, request: violates,
			status: 415, code: "unsupported_media_type"},

		// POST /keys/{id}/regenerate
		{name: "regenerate", method: "POST", path: "/keys/" + target + "/regenerate", token: admin, body: `{"expiry":"90d","grace_period":"1h"}`, status: 200},
		{name: "regenerate at once", method: "POST", path: "/keys/" + target + "/regenerate", token: admin, scheme: "Bearer", body: `{"expiry":"never"}`, status: 200},
		{name: "regenerate not JSON", method: "POST", path: "/keys/" + target + "/regenerate", token: admin, body: `nope`, request: unchecked, status: 400, code: "invalid_json"},
		{name: "regenerate with an unknown member", method: "POST", path: "/keys/" + target + "/regenerate", token: admin,
			body: `{"expiry":"7d","name":"x"}`, request: violates, status: 400, code: "invalid_json"},
		{name: "regenerate without expiry", method: "POST", path: "/keys/" + target + "/regenerate", token: admin, body: `{}`, request: violates, status: 400, code: "invalid_expiry"},
		{name: "regenerate expired", method: "POST", path: "/keys/" + target + "/regenerate", token: admin, body: `{"expiry":"2001-01-01"}`, status: 400, code: "invalid_expiry"},
		{name: "regenerate with a negative grace period", method: "POST", path: "/keys/" + target + "/regenerate", token: admin,
			body: `{"expiry":"7d","grace_period":"-1h"}`, request: violates, status: 400, code: "invalid_field"},
		{name: "regenerate with a bad grace period", method: "POST", path: "/keys/" + target + "/regenerate", token: admin,
			body: `{"expiry":"7d","grace_period":"soon"}`, request: violates, status: 400, code: "invalid_field"},
		{name: "regenerate without apikey:manage", method: "POST", path: "/keys/" + target + "/regenerate", token: watcher, body: `{"expiry":"7d"}`, status: 403, code: "forbidden"},
		{name: "regenerate a revoked key", method: "POST", path: "/keys/" + revoked + "/regenerate", token: admin, body: `{"expiry":"7d"}`, status: 409, code: "revoked"},
		{name: "regenerate too large", method: "POST", path: "/keys/" + target + "/regenerate", token: admin,
			body: `{"expiry":"7d",` + spaces + `"grace_period":"1h"}`, status: 413, code: "body_too_large"},
		{name: "regenerate as text", method: "POST", path: "/keys/" + target + "/regenerate", token: admin, contentType: "text/plain",
			body: `{"expiry":"7d"}`, request: violates, status: 415, code: "unsupported_media_type"},

		// POST /keys/{id}/revoke
		{name: "revoke", method: "POST", path: "/keys/" + revokeMe + "/revoke", token: admin, status: 200},
		{name: "revoke again", method: "POST", path: "/keys/" + revokeMe + "/revoke", token: admin, scheme: "X-API-Key", status: 200},
		{name: "revoke without apikey:manage", method: "POST", path: "/keys/" + target + "/revoke", token: watcher, status: 403, code: "forbidden"},

		// GET /keys/{id}/privileges
		{name: "privileges", method: "GET", path: "/keys/" + target + "/privileges", token: admin, status: 200},
		{name: "privileges over a week", method: "GET", path: "/keys/" + target + "/privileges?unused_for=7d", token: watcher, scheme: "Bearer", status: 200},
		{name: "privileges over a bad window", method: "GET", path: "/keys/" + target + "/privileges?unused_for=soon", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "privileges without apikey:view", method: "GET", path: "/keys/" + target + "/privileges", token: blind, status: 403, code: "forbidden"},
		{name: "privileges of a key of no UUID", method: "GET", path: "/keys/123/privileges", token: admin, request: violates, status: 404, code: "not_found"},
		{name: "privileges without exercises in the store", api: plainAPI, method: "GET", path: "/keys/" + plainAdmin.Key.ID.String() + "/privileges",
			token: plainAdmin.Token.Reveal(), status: 501, code: "unsupported"},

		// GET /keys/{id}/usage
		{name: "usage", method: "GET", path: "/keys/" + target + "/usage", token: admin, status: 200},
		{name: "usage by day", method: "GET", path: "/keys/" + target + "/usage?bucket=1d&from=2026-11-01&to=2026-11-08T00:00:00Z", token: watcher, scheme: "Bearer", status: 200},
		{name: "usage by hour from a time", method: "GET", path: "/keys/" + target + "/usage?bucket=1h&from=2026-11-01T10:30:00.5%2B02:00", token: admin, status: 200},
		{name: "usage by the minute", method: "GET", path: "/keys/" + target + "/usage?bucket=1m", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "usage from a bad time", method: "GET", path: "/keys/" + target + "/usage?from=yesterday", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "usage over too long a range", method: "GET", path: "/keys/" + target + "/usage?from=2026-01-01&to=2026-12-31", token: admin, status: 400, code: "invalid_field"},
		{name: "usage over an empty range", method: "GET", path: "/keys/" + target + "/usage?from=2026-11-02&to=2026-11-01", token: admin, status: 400, code: "invalid_field"},
		{name: "usage without apikey:view", method: "GET", path: "/keys/" + target + "/usage", token: blind, status: 403, code: "forbidden"},
		{name: "usage of a key of no UUID", method: "GET", path: "/keys/123/usage", token: admin, request: violates, status: 404, code: "not_found"},
		{name: "usage without usage history in the store", api: plainAPI, method: "GET", path: "/keys/" + plainAdmin.Key.ID.String() + "/usage",
			token: plainAdmin.Token.Reveal(), status: 501, code: "unsupported"},

		// POST /keys/{id}/disable and /enable
		{name: "disable", method: "POST", path: "/keys/" + target + "/disable", token: admin, status: 200},
		{name: "disable again", method: "POST", path: "/keys/" + target + "/disable", token: admin, status: 200},
		{name: "enable", method: "POST", path: "/keys/" + target + "/enable", token: admin, status: 200},
		{name: "enable again", method: "POST", path: "/keys/" + target + "/enable", token: admin, scheme: "Bearer", status: 200},
		{name: "disable without apikey:manage", method: "POST", path: "/keys/" + target + "/disable", token: watcher, status: 403, code: "forbidden"},
		{name: "enable without apikey:manage", method: "POST", path: "/keys/" + target + "/enable", token: watcher, status: 403, code: "forbidden"},
		{name: "verify a disabled token", method: "POST", path: "/keys/verify", token: verifier, body: verifyBody(disabledKey.Token.Reveal(), ""), status: 200},
		{name: "list expiring within a week", method: "GET", path: "/keys?expiring_within=7d", token: admin, status: 200},
		{name: "list expiring within 12 hours", method: "GET", path: "/keys?expiring_within=12h&revoked=active", token: admin, status: 200},
		{name: "list expiring within nothing", method: "GET", path: "/keys?expiring_within=0d", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "list expiring within a week ago", method: "GET", path: "/keys?expiring_within=-1h", token: admin, request: violates, status: 400, code: "invalid_field"},

		// DELETE /keys/{id}
		{name: "delete", method: "DELETE", path: "/keys/" + deleteMe, token: admin, status: 204},
		{name: "delete again", method: "DELETE", path: "/keys/" + deleteMe, token: admin, status: 404, code: "not_found"},
		{name: "delete without apikey:manage", method: "DELETE", path: "/keys/" + target, token: watcher, status: 403, code: "forbidden"},

		// Keys in identities.
		{name: "create in an identity", method: "POST", path: "/keys", token: admin, status: 201,
			body: `{"name":"in-identity","workspace":"w","role":"viewer","expiry":"30d","identity_id":"` + identity + `"}`},
		{name: "create in an unknown identity", method: "POST", path: "/keys", token: admin, status: 400, code: "unknown_identity",
			body: `{"name":"x","workspace":"w","role":"viewer","expiry":"30d","identity_id":"` + uuid.NewString() + `"}`},
		{name: "create in an identity out of reach", method: "POST", path: "/keys", token: manager, status: 400, code: "unknown_identity",
			body: `{"name":"x","workspace":"w","role":"viewer","expiry":"30d","identity_id":"` + otherIdentity + `"}`},
		{name: "create in an identity of no UUID", method: "POST", path: "/keys", token: admin, request: violates, status: 400, code: "invalid_field",
			body: `{"name":"x","workspace":"w","role":"viewer","expiry":"30d","identity_id":"acme"}`},
		{name: "create in an identity without identities in the store", api: plainAPI, method: "POST", path: "/keys", token: plainAdmin.Token.Reveal(),
			body: `{"name":"x","role":"owner","expiry":"30d","identity_id":"` + uuid.NewString() + `"}`, status: 501, code: "unsupported"},
		{name: "update into an identity", method: "PATCH", path: "/keys/" + mover, token: admin, body: `{"identity_id":"` + identity + `"}`, status: 200},
		{name: "update out of its identity", method: "PATCH", path: "/keys/" + mover, token: manager, body: `{"identity_id":""}`, status: 200},
		{name: "update into an unknown identity", method: "PATCH", path: "/keys/" + mover, token: admin, body: `{"identity_id":"` + uuid.NewString() + `"}`,
			status: 400, code: "unknown_identity"},
		{name: "update into an identity without identities in the store", api: plainAPI, method: "PATCH", path: "/keys/" + plainAdmin.Key.ID.String(),
			token: plainAdmin.Token.Reveal(), body: `{"identity_id":"` + uuid.NewString() + `"}`, status: 501, code: "unsupported"},
		{name: "list an identity's keys", method: "GET", path: "/keys?identity_id=" + inUse, token: watcher, status: 200},
		{name: "list the keys of no identity", method: "GET", path: "/keys?identity_id=acme", token: admin, request: violates, status: 400, code: "invalid_field"},

		// POST /identities
		{name: "create an identity", method: "POST", path: "/identities", token: admin, body: identityBody, status: 201},
		{name: "create a bare identity", method: "POST", path: "/identities", token: manager, scheme: "Bearer", body: `{"external_id":"bare","workspace":"w","limits":{}}`, status: 201},
		{name: "create an identity not JSON", method: "POST", path: "/identities", token: admin, body: `{"external_id":`, request: unchecked, status: 400, code: "invalid_json"},
		{name: "create an identity with an unknown member", method: "POST", path: "/identities", token: admin, body: `{"external_id":"x","name":"x"}`,
			request: violates, status: 400, code: "invalid_json"},
		{name: "create an identity without external id", method: "POST", path: "/identities", token: admin, body: `{"workspace":"w"}`,
			request: violates, status: 400, code: "invalid_field"},
		{name: "create an identity with a bad limit name", method: "POST", path: "/identities", token: admin, request: violates, status: 400, code: "invalid_field",
			body: `{"external_id":"x","limits":{"rate_limits":[{"name":"Requests","requests":1,"window":"1s"}]}}`},
		{name: "create an identity with two limits of one name", method: "POST", path: "/identities", token: admin, status: 400, code: "invalid_field",
			body: `{"external_id":"x","limits":{"rate_limits":[{"name":"r","requests":1,"window":"1s"},{"name":"r","requests":2,"window":"1s"}]}}`},
		{name: "create an identity refilled monthly on no day", method: "POST", path: "/identities", token: admin, status: 400, code: "invalid_field",
			body: `{"external_id":"x","limits":{"credits":{"remaining":1,"refill":{"amount":1,"every":"month"}}}}`},
		{name: "create an identity with too many credits", method: "POST", path: "/identities", token: admin, request: violates, status: 400, code: "invalid_field",
			body: `{"external_id":"x","limits":{"credits":{"remaining":1000000000000001}}}`},
		{name: "create an identity with a bad window", method: "POST", path: "/identities", token: admin, request: violates, status: 400, code: "invalid_field",
			body: `{"external_id":"x","limits":{"rate_limits":[{"name":"r","requests":1,"window":"soon"}]}}`},
		{name: "create an identity without apikey:manage", method: "POST", path: "/identities", token: watcher, body: `{"external_id":"x","workspace":"w"}`,
			status: 403, code: "forbidden"},
		{name: "create an identity elsewhere", method: "POST", path: "/identities", token: manager, body: `{"external_id":"x","workspace":"other"}`,
			status: 403, code: "forbidden"},
		{name: "create a taken identity", method: "POST", path: "/identities", token: admin, body: `{"external_id":"taken","workspace":"w"}`,
			status: 409, code: "duplicate_external_id"},
		{name: "create an identity too large", method: "POST", path: "/identities", token: admin, body: `{"external_id":"x",` + spaces + `"workspace":"w"}`,
			status: 413, code: "body_too_large"},
		{name: "create an identity as text", method: "POST", path: "/identities", token: admin, contentType: "text/plain", body: `{"external_id":"x"}`,
			request: violates, status: 415, code: "unsupported_media_type"},
		{name: "create an identity without identities in the store", api: plainAPI, method: "POST", path: "/identities", token: plainAdmin.Token.Reveal(),
			body: `{"external_id":"x"}`, status: 501, code: "unsupported"},

		// GET /identities
		{name: "list identities", method: "GET", path: "/identities", token: admin, status: 200},
		{name: "list identities filtered", method: "GET", path: "/identities?workspace=w&external_id=acme&limit=1000", token: watcher, status: 200},
		{name: "list identities after a cursor", method: "GET", path: "/identities?limit=2&after=" + identity, token: admin, scheme: "X-API-Key", status: 200},
		{name: "list identities a page of 0", method: "GET", path: "/identities?limit=0", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "list identities after a bad cursor", method: "GET", path: "/identities?after=x", token: admin, request: violates, status: 400, code: "invalid_field"},
		{name: "list identities of a bad workspace", method: "GET", path: "/identities?workspace=%20w", token: admin, status: 400, code: "invalid_field"},
		{name: "list identities without apikey:view", method: "GET", path: "/identities", token: viewer, status: 403, code: "forbidden"},
		{name: "list identities of another workspace", method: "GET", path: "/identities?workspace=other", token: watcher, status: 403, code: "forbidden"},
		{name: "list identities without identities in the store", api: plainAPI, method: "GET", path: "/identities", token: plainAdmin.Token.Reveal(),
			status: 501, code: "unsupported"},

		// GET /identities/{id}
		{name: "get an identity", method: "GET", path: "/identities/" + identity, token: watcher, status: 200},
		{name: "get an identity of no UUID", method: "GET", path: "/identities/acme", token: admin, request: violates, status: 404, code: "identity_not_found"},
		{name: "get an identity out of reach", method: "GET", path: "/identities/" + otherIdentity, token: watcher, status: 404, code: "identity_not_found"},
		{name: "get an identity without apikey:view", method: "GET", path: "/identities/" + identity, token: blind, status: 403, code: "forbidden"},
		{name: "get an identity without identities in the store", api: plainAPI, method: "GET", path: "/identities/" + identity,
			token: plainAdmin.Token.Reveal(), status: 501, code: "unsupported"},

		// PATCH /identities/{id}
		{name: "update an identity", method: "PATCH", path: "/identities/" + identity, token: admin, header: http.Header{"If-Match": {`"1"`}}, status: 200,
			body: `{"external_id":"target","metadata":{"plan":"pro"},"limits":{"rate_limits":[{"name":"requests","requests":10,"window":"1s"}],` +
				`"credits":{"remaining":100,"refill":{"amount":100,"every":"day"}}}}`},
		{name: "update an identity's refill only", method: "PATCH", path: "/identities/" + identity, token: manager, status: 200,
			body: `{"version":2,"limits":{"credits":{"refill":{}}}}`},
		{name: "update an identity with nulls", method: "PATCH", path: "/identities/" + identity, token: admin, status: 200,
			body: `{"external_id":null,"metadata":null,"limits":{"rate_limits":null,"credits":null}}`},
		{name: "update an identity's credits away", method: "PATCH", path: "/identities/" + identity, token: admin, status: 200,
			body: `{"limits":{"rate_limits":[],"credits":{"remaining":-1}}}`},
		{name: "update an identity not JSON", method: "PATCH", path: "/identities/" + identity, token: admin, body: `[`, request: unchecked, status: 400, code: "invalid_json"},
		{name: "update an identity's workspace", method: "PATCH", path: "/identities/" + identity, token: admin, body: `{"workspace":"other"}`,
			request: violates, status: 400, code: "invalid_json"},
		{name: "update an identity to no requests", method: "PATCH", path: "/identities/" + identity, token: admin, request: violates, status: 400, code: "invalid_field",
			body: `{"limits":{"rate_limits":[{"name":"r","requests":0,"window":"1s"}]}}`},
		{name: "update an identity to a refill without credits", method: "PATCH", path: "/identities/" + identity, token: admin, status: 400, code: "invalid_field",
			body: `{"limits":{"credits":{"refill":{"amount":1,"every":"day"}}}}`},
		{name: "update an identity with a weak If-Match", method: "PATCH", path: "/identities/" + identity, token: admin, header: http.Header{"If-Match": {`W/"1"`}},
			body: `{}`, request: violates, status: 400, code: "invalid_field"},
		{name: "update an identity without apikey:manage", method: "PATCH", path: "/identities/" + identity, token: watcher, body: `{"external_id":"x"}`,
			status: 403, code: "forbidden"},
		{name: "update an identity out of reach", method: "PATCH", path: "/identities/" + otherIdentity, token: manager, body: `{"external_id":"x"}`,
			status: 404, code: "identity_not_found"},
		{name: "update an identity at a stale version", method: "PATCH", path: "/identities/" + identity, token: admin, header: http.Header{"If-Match": {`"99"`}},
			body: `{"external_id":"x"}`, status: 409, code: "conflict"},
		{name: "update an identity to a taken external id", method: "PATCH", path: "/identities/" + identity, token: admin, body: `{"external_id":"taken"}`,
			status: 409, code: "duplicate_external_id"},
		{name: "update an identity too large", method: "PATCH", path: "/identities/" + identity, token: admin, body: `{"external_id":"x",` + spaces + `"metadata":{}}`,
			status: 413, code: "body_too_large"},
		{name: "update an identity as text", method: "PATCH", path: "/identities/" + identity, token: admin, contentType: "text/plain", body: `{}`,
			request: violates, status: 415, code: "unsupported_media_type"},
		{name: "update an identity without identities in the store", api: plainAPI, method: "PATCH", path: "/identities/" + identity,
			token: plainAdmin.Token.Reveal(), body: `{"external_id":"x"}`, status: 501, code: "unsupported"},

		// DELETE /identities/{id}
		{name: "delete an identity", method: "DELETE", path: "/identities/" + deleteIdentity, token: manager, status: 204},
		{name: "delete an identity again", method: "DELETE", path: "/identities/" + deleteIdentity, token: admin, status: 404, code: "identity_not_found"},
		{name: "delete an identity in use", method: "DELETE", path: "/identities/" + inUse, token: admin, status: 409, code: "identity_in_use"},
		{name: "delete an identity without apikey:manage", method: "DELETE", path: "/identities/" + identity, token: watcher, status: 403, code: "forbidden"},
		{name: "delete an identity without identities in the store", api: plainAPI, method: "DELETE", path: "/identities/" + identity,
			token: plainAdmin.Token.Reveal(), status: 501, code: "unsupported"},
	}

	// samples are a request of each route that the server would carry
	// out, "{id}" standing for a key's id (an identity's on the paths of
	// identities). Each is sent by every caller
	// below, and to a key that does not exist.
	samples := []call{
		{method: "POST", path: "/keys", body: `{"name":"sample","workspace":"w","role":"viewer","expiry":"30d"}`},
		{method: "GET", path: "/keys"},
		{method: "POST", path: "/keys/verify", body: `{"token":"kg_sample"}`},
		{method: "POST", path: "/keys/import", body: `{"keys":[{"name":"sample","workspace":"w","role":"viewer","expiry":"30d","token":"sk_live_0123456789abcdefghij"}]}`},
		{method: "GET", path: "/roles"},
		{method: "GET", path: "/keys/{id}"},
		{method: "GET", path: "/keys/{id}/privileges"},
		{method: "GET", path: "/keys/{id}/usage"},
		{method: "PATCH", path: "/keys/{id}", body: `{"description":"sample"}`},
		{method: "POST", path: "/keys/{id}/regenerate", body: `{"expiry":"30d"}`},
		{method: "POST", path: "/keys/{id}/revoke"},
		{method: "POST", path: "/keys/{id}/disable"},
		{method: "POST", path: "/keys/{id}/enable"},
		{method: "DELETE", path: "/keys/{id}"},
		{method: "POST", path: "/identities", body: `{"external_id":"sample","workspace":"w"}`},
		{method: "GET", path: "/identities"},
		{method: "GET", path: "/identities/{id}"},
		{method: "PATCH", path: "/identities/{id}", body: `{"metadata":{"sample":"yes"}}`},
		{method: "DELETE", path: "/identities/{id}"},
	}
	broken := serve(t, http.StripPrefix(servertest.Prefix, brokenAPI))
	callers := []call{
		{name: "without a key", request: violates, status: 401, code: "missing"},
		{name: "with a malformed key", token: "kg_notakey", status: 401, code: "malformed"},
		{name: "with two keys", token: admin, header: http.Header{"X-Api-Key": {viewer}}, status: 401, code: "malformed"},
		{name: "with an unknown key", token: deletedKey.Token.Reveal(), status: 401, code: "invalid"},
		{name: "with an expired key", token: expired, status: 401, code: "expired"},
		{name: "with a revoked key", token: revokedKey.Token.Reveal(), scheme: "Bearer", status: 401, code: "revoked"},
		{name: "with a disabled key", token: disabledKey.Token.Reveal(), status: 401, code: "disabled"},
		{name: "with a key the host refuses", api: serve(t, refusing.Handler), token: blocked, status: 401, code: "unauthenticated"},
		{name: "from a denied address", token: denied, status: 403, code: "address_denied"},
		{name: "over the rate limit", token: limited, status: 429, code: "rate_limited"},
		{name: "out of uses", token: exhausted, status: 429, code: "usage_exhausted"},
		{name: "from an address that sent bad keys", api: throttled, token: unverified, status: 429, code: "too_many_failures"},
		{name: "with key checks failing", api: broken, token: admin, status: 500, code: "internal"},
		{name: "with key lookups down", token: uncached, outage: lookupsDown, status: 503, code: "unavailable"},
		{name: "with the store down", token: admin, outage: storeDown, status: 503, code: "unavailable"},
	}
	for _, s := range samples {
		op := s.method + " " + s.path
		id, missing := target, "not_found"
		if strings.HasPrefix(s.path, "/identities") {
			id, missing = identity, "identity_not_found"
		}
		s.path = strings.ReplaceAll(s.path, "{id}", id)
		for _, by := range callers {
			cl := by
			cl.name, cl.method, cl.path, cl.body = op+" "+by.name, s.method, s.path, s.body
			if by.outage == storeDown && (s.path == "/keys/verify" || s.path == "/roles") {
				// These read no key record: only key lookups failing (the
				// caller's own, or the verified token's) makes them 503.
				cl.status, cl.code = http.StatusOK, ""
			}
			calls = append(calls, cl)
		}
		if s.method != "GET" {
			calls = append(calls, call{name: op + " from another site", method: s.method, path: s.path, body: s.body, token: admin,
				header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, status: 403, code: "cross_origin"})
		}
		if strings.Contains(op, "{id}") {
			calls = append(calls, call{name: op + " of no key", method: s.method, path: strings.ReplaceAll(s.path, id, uuid.NewString()),
				body: s.body, token: admin, status: 404, code: missing})
		}
	}

	exercised := map[string]bool{} // "METHOD /path status code"
	for _, cl := range calls {
		t.Run(cl.name, func(t *testing.T) {
			a := cmp.Or(cl.api, keysAPI)
			switch cl.outage {
			case storeDown:
				f.Store.Down.Store(true)
				defer f.Store.Down.Store(false)
			case lookupsDown:
				f.Store.LookupsDown.Store(true)
				defer f.Store.LookupsDown.Store(false)
			}
			ex := a.send(t, cl)
			if ex.status != cl.status || ex.problem.Code != cl.code {
				t.Errorf("%s %s = %d %q (%s), want %d %q", cl.method, cl.path, ex.status, ex.problem.Code, ex.problem.Detail, cl.status, cl.code)
			}
			op := c.check(t, ex, cl.request)
			exercised[strings.TrimSpace(op+" "+strconv.Itoa(ex.status)+" "+ex.problem.Code)] = true
		})
	}

	// Every answer the document gives each route was drawn, but for those
	// of untested.
	var missing, seen []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, ref := range op.Responses.Map() {
				codes := problemCodes(ref.Value)
				if len(codes) == 0 {
					codes = []string{""}
				}
				for _, code := range codes {
					answer := strings.TrimSpace(method + " " + path + " " + status + " " + code)
					_, all := untested["* "+status+" "+code]
					switch {
					case exercised[answer]:
						seen = append(seen, answer)
					case untested[answer] == "" && !all:
						missing = append(missing, answer)
					}
				}
			}
		}
	}
	slices.Sort(missing)
	slices.Sort(seen)
	for _, answer := range missing {
		t.Errorf("no call draws the documented answer %s", answer)
	}
	for answer := range untested {
		if exercised[answer] {
			t.Errorf("untested lists %s, which a call draws: remove it", answer)
		}
	}
	t.Logf("answers drawn and validated (%d):\n%s", len(seen), strings.Join(seen, "\n"))
}

// brokenVerifier fails every verification with an error of no known kind.
type brokenVerifier struct{}

func (brokenVerifier) VerifyFrom(context.Context, string, netip.Addr) (*keygate.Key, error) {
	return nil, errors.New("openapitest: verifier out of order")
}

// problemCodes returns the problem codes resp allows: those that every
// part of its schema (Problem, and the schema narrowing its code) allows;
// nil when resp is not a problem.
func problemCodes(resp *openapi3.Response) []string {
	mt := resp.Content.Get(middleware.ProblemContentType)
	if mt == nil || mt.Schema == nil {
		return nil
	}
	var codes []string
	for _, part := range append(openapi3.SchemaRefs{mt.Schema}, mt.Schema.Value.AllOf...) {
		code := part.Value.Properties["code"]
		if code == nil {
			continue
		}
		allowed := stringsOf(code.Value.Enum)
		if code.Value.Const != nil {
			allowed = []string{fmt.Sprint(code.Value.Const)}
		}
		if codes == nil {
			codes = allowed
			continue
		}
		codes = slices.DeleteFunc(codes, func(c string) bool { return !slices.Contains(allowed, c) })
	}
	return codes
}

// The directories of the source of packages server and middleware, which
// these tests read, from this module's (go test runs a test in its
// package's directory).
var (
	serverDir     = ".."
	middlewareDir = filepath.Join("..", "..", "middleware")
)

// muxPatterns returns the patterns package server registers on a mux
// (calls of a Handle or HandleFunc method in its non-test files), read
// from its source: those with a method ("POST /keys") are its routes, the
// others ("/keys", "/") its fallbacks, "/" excluded. A pattern that is not a
// string literal fails the test, as it could not be checked.
func muxPatterns(t *testing.T) (routes, fallbacks []string) {
	t.Helper()
	for _, file := range sourceFiles(t, serverDir) {
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") || len(call.Args) != 2 {
				return true
			}
			pattern, ok := stringLit(call.Args[0])
			switch {
			case !ok:
				t.Errorf("a route pattern is not a string literal, so the document cannot be checked against it: %#v", call.Args[0])
			case strings.Contains(pattern, " "):
				routes = append(routes, pattern)
			case pattern != "/":
				fallbacks = append(fallbacks, pattern)
			}
			return true
		})
	}
	if len(routes) == 0 {
		t.Fatal("found no routes in the package source")
	}
	return routes, fallbacks
}

// patternMatches reports whether the ServeMux path pattern matches path,
// a {wildcard} of the pattern matching any one segment.
func patternMatches(pattern, path string) bool {
	ps, qs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(qs) {
		return false
	}
	for i := range ps {
		if ps[i] != qs[i] && !strings.HasPrefix(ps[i], "{") {
			return false
		}
	}
	return true
}

// codeConstants returns the values of the string constants named Code...
// of the packages in dirs (those defined as another package's constant are
// counted there).
func codeConstants(t *testing.T, dirs ...string) []string {
	t.Helper()
	var codes []string
	for _, dir := range dirs {
		for _, file := range sourceFiles(t, dir) {
			for _, decl := range file.Decls {
				gen, ok := decl.(*ast.GenDecl)
				if !ok || gen.Tok != token.CONST {
					continue
				}
				for _, spec := range gen.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
							continue
						}
						if v, ok := stringLit(vs.Values[i]); ok {
							codes = append(codes, v)
						}
					}
				}
			}
		}
	}
	if len(codes) == 0 {
		t.Fatal("found no Code constants")
	}
	return codes
}

// sourceFiles parses the non-test Go files of dir.
func sourceFiles(t *testing.T, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		files = append(files, file)
	}
	if len(files) == 0 {
		t.Fatalf("no Go source in %s", dir)
	}
	return files
}

// stringLit returns the value of e if it is a string literal.
func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// stringsOf returns the strings among vs.
func stringsOf(vs []any) []string {
	var out []string
	for _, v := range vs {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// sorted returns a sorted copy of s.
func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// firstLine returns the first line of err's text.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

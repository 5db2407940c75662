package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
)

// Errors of this package, checked with [errors.Is]. Failures answered by
// the server are [*ErrorResponse]s instead.
var (
	// ErrInvalidConfig means [New] was given an unusable base URL or
	// option.
	ErrInvalidConfig = errors.New("client: invalid configuration")
	// ErrInvalidResponse means a successful response could not be decoded
	// as one JSON value, was larger than 32 MiB, lacked what it should hold
	// (a key, a well-formed token), or, for [Client.All], repeated a page
	// cursor.
	ErrInvalidResponse = errors.New("client: invalid response")
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 1 << 20

// maxResponseBody bounds how much of a successful response is decoded: 32
// MiB, far above the largest page of keys. A larger body is refused with
// ErrInvalidResponse.
const maxResponseBody = 32 << 20

// defaultUserAgent is sent when no WithUserAgent option is given.
const defaultUserAgent = "keygate-client"

// Client calls the key management API served by package server. Build it
// with [New]; it is immutable and safe for concurrent use.
//
// Methods are shaped (ctx, params) (*T, *Response, error), like
// go-github's. The *Response is non-nil whenever the server answered, even
// with an error, so callers can read its headers.
type Client struct {
	client    *http.Client
	baseURL   *url.URL
	userAgent string
	// verifyURL is the URL of POST /keys/verify, resolved once: every
	// remote verification that misses the cache sends it.
	verifyURL string
}

// Option configures a [Client] in [New]. Options are checked there: an
// invalid one makes New fail with [ErrInvalidConfig].
type Option func(*settings) error

// settings collects the options of New.
type settings struct {
	httpClient *http.Client
	token      apikey.Token
	// header is where the token goes: "" for "Authorization: Api-Key",
	// or a header field whose whole value it is.
	header    string
	userAgent string
}

// WithHTTPClient makes the client send its requests with hc (its
// Transport, Timeout, cookie jar and redirect policy). hc is not modified:
// the Client uses a copy. Default: a new http.Client with no timeout (set
// deadlines through the context).
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error {
		if hc == nil {
			return fmt.Errorf("%w: WithHTTPClient(nil)", ErrInvalidConfig)
		}
		s.httpClient = hc
		return nil
	}
}

// WithToken makes the client authenticate every request to the base URL's
// host with "Authorization: Api-Key <token>", added to a clone of each
// request (as golang.org/x/oauth2's Transport does), never to requests to
// another host, such as a redirect. The token must be a well-formed keygate
// token of any prefix; it never appears in an error or a printed value.
func WithToken(token string) Option {
	return func(s *settings) error {
		t, err := apikey.Parse(token)
		if err != nil {
			// apikey's errors never quote the token.
			return fmt.Errorf("%w: WithToken: %w", ErrInvalidConfig, err)
		}
		s.token, s.header = t, ""
		return nil
	}
}

// WithImportedToken is [WithToken] for a token of another system that was
// imported into the server with [Client.Import] (or Manager.Import), such
// as an old admin key kept by scripts. It must be what
// [apikey.ParseImported] accepts (16 to 256 visible ASCII characters);
// the server must accept its form (keygate.Config.ImportedTokens). It goes
// in "Authorization: Api-Key <token>" when it is token68 (letters, digits
// and "-._~+/", then optional "=" padding), which Authorization is held to,
// and in "X-API-Key: <token>" otherwise, which the server's default
// middleware also reads. Like WithToken's, it never appears in an error or
// a printed value.
func WithImportedToken(token string) Option {
	return func(s *settings) error {
		t, err := apikey.ParseImported(token)
		if err != nil {
			return fmt.Errorf("%w: WithImportedToken: %w", ErrInvalidConfig, err)
		}
		s.token, s.header = t, ""
		if !isToken68(token) {
			s.header = "X-API-Key"
		}
		return nil
	}
}

// isToken68 reports whether s is token68 (RFC 9110, section 11.2).
func isToken68(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// WithUserAgent sets the User-Agent header of every request. It must be
// non-empty printable ASCII. Default "keygate-client".
func WithUserAgent(ua string) Option {
	return func(s *settings) error {
		if ua == "" || strings.ContainsFunc(ua, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			return fmt.Errorf("%w: WithUserAgent: empty or not printable ASCII", ErrInvalidConfig)
		}
		s.userAgent = ua
		return nil
	}
}

// New returns a Client of the API served at baseURL, such as
// "https://keys.example.com/v1/" (where keygate serve mounts it); a missing final "/" is added, and
// paths are resolved relative to it. baseURL must be an absolute http or
// https URL without credentials, query or fragment. New returns an error
// wrapping [ErrInvalidConfig] for a bad baseURL or option.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// The parse error would quote baseURL, which may hold anything.
		return nil, fmt.Errorf("%w: base URL must be an absolute http(s) URL without credentials, query or fragment", ErrInvalidConfig)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	s := settings{userAgent: defaultUserAgent}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrInvalidConfig)
		}
		if err := opt(&s); err != nil {
			return nil, err
		}
	}
	hc := &http.Client{}
	if s.httpClient != nil {
		c := *s.httpClient
		hc = &c
	}
	if !s.token.IsZero() {
		t := &tokenTransport{scheme: u.Scheme, host: u.Host, base: hc.Transport, header: "Authorization",
			value: []string{"Api-Key " + s.token.Reveal()}}
		if s.header != "" {
			t.header, t.value = http.CanonicalHeaderKey(s.header), []string{s.token.Reveal()}
		}
		hc.Transport = t
	}
	c := &Client{client: hc, baseURL: u, userAgent: s.userAgent}
	c.verifyURL = u.ResolveReference(&url.URL{Path: "keys/verify"}).String()
	return c, nil
}

// BaseURL returns the base URL requests are resolved against, ending in
// "/".
func (c *Client) BaseURL() string {
	return c.baseURL.String()
}

// tokenTransport adds the API key to requests to one scheme and host.
type tokenTransport struct {
	// header is the canonical name of the field the token goes in, and
	// value its value ("Api-Key <token>" in Authorization, or the token):
	// one slice for every request, which nothing writes to.
	header string
	value  []string
	scheme string
	host   string
	base   http.RoundTripper
}

// Format prints the transport without its token, for every verb of
// package fmt.
func (t *tokenTransport) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "client.tokenTransport{header: %q, value: [REDACTED], host: %q}", t.header, t.host)
}

// RoundTrip implements http.RoundTripper. It never modifies req: the
// header goes on a copy of the request with a new header map (the copy
// shares req's URL, body and context, which a RoundTripper only reads, as
// golang.org/x/oauth2's Transport does), as the RoundTripper contract
// requires, and the response's Request is req, without the header.
func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.URL.Scheme != t.scheme || req.URL.Host != t.host {
		return base.RoundTrip(req)
	}
	r := new(http.Request)
	*r = *req
	// One array for every value, as Header.Clone makes, and the token's.
	n := 0
	for _, vs := range req.Header {
		n += len(vs)
	}
	vals := make([]string, 0, n)
	r.Header = make(http.Header, len(req.Header)+1)
	for name, vs := range req.Header {
		if vs == nil {
			r.Header[name] = nil
			continue
		}
		vals = append(vals, vs...)
		r.Header[name] = vals[len(vals)-len(vs) : len(vals) : len(vals)]
	}
	r.Header[t.header] = t.value
	resp, err := base.RoundTrip(r)
	if resp != nil {
		// Callers reach the request through the response (and through
		// an ErrorResponse): give them the one without the token.
		resp.Request = req
	}
	return resp, err
}

// newRequest returns a request of method for path, relative to the base
// URL, with body encoded as JSON when it is not nil.
func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	if strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("client: path %q must be relative to the base URL", path)
	}
	u, err := c.baseURL.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return c.newRequestURL(ctx, method, u.String(), body)
}

// newRequestURL is newRequest for an absolute URL.
func (c *Client) newRequestURL(ctx context.Context, method, u string, body any) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: encode request: %w", err)
		}
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	// The values share one array (each capped, so that an append to one
	// cannot overwrite the next); the names are canonical, as Header.Set
	// stores them.
	vals := []string{"application/json", c.userAgent, "application/json"}
	if body != nil {
		req.Header["Content-Type"] = vals[2:3:3]
	}
	req.Header["Accept"] = vals[0:1:1]
	req.Header["User-Agent"] = vals[1:2:2]
	return req, nil
}

// do sends req and decodes a successful response's JSON body into v,
// unless v is nil. A non-2xx response is returned as an [*ErrorResponse]
// (see [CheckResponse]); the *Response is returned whenever there is one.
func (c *Client) do(req *http.Request, v any) (*Response, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		// err is a *url.Error naming the URL, which holds no credentials:
		// New refuses them and the token travels in a header.
		return nil, fmt.Errorf("client: %w", err)
	}
	read := false // the body was read to its end
	defer func() {
		if !read {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		}
		_ = resp.Body.Close()
	}()
	response := newResponse(resp)
	if err := CheckResponse(resp); err != nil {
		return response, err
	}
	if v == nil {
		return response, nil
	}
	if vr, ok := v.(*VerifyResponse); ok && resp.ContentLength > 0 && resp.ContentLength <= maxPlainVerdict {
		read, err = decodeVerdict(req, resp.Body, resp.ContentLength, vr)
		return response, err
	}
	return response, decode(req, resp.Body, v)
}

// decodeVerdict is decode for a verdict of length bytes (the response's
// Content-Length): the body is read whole, to io.EOF (so that the
// connection is reused), and parsed without reflection when plain (see
// parseVerdict). Else what was read, followed by the rest or by what
// stopped the reading, is decoded as decode would have decoded the body.
// It reports whether r was read to its end.
func decodeVerdict(req *http.Request, r io.Reader, length int64, v *VerifyResponse) (bool, error) {
	buf := make([]byte, length+1)
	n, err := readBody(r, buf)
	switch {
	case err == nil:
		if parseVerdict(buf[:n], v) {
			return true, nil
		}
		return true, decode(req, bytes.NewReader(buf[:n]), v)
	case err == io.ErrShortBuffer:
		return false, decode(req, io.MultiReader(bytes.NewReader(buf[:n]), r), v)
	}
	return false, decode(req, io.MultiReader(bytes.NewReader(buf[:n]), errorReader{err}), v)
}

// readBody reads r to its end into buf: it returns the number of bytes
// read and nil at io.EOF, io.ErrShortBuffer when buf fills first, or the
// error that stopped r.
func readBody(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		if n == len(buf) {
			return n, io.ErrShortBuffer
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// errorReader is a reader failing with err.
type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) { return 0, r.err }

// decode decodes body, a successful response to req, which must hold one
// JSON value and nothing after it, of at most 32 MiB, into v.
func decode(req *http.Request, r io.Reader, v any) error {
	body := &io.LimitedReader{R: r, N: maxResponseBody}
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil {
		// One JSON value and nothing after it, as the server sends.
		if _, end := dec.Token(); end != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	if err != nil {
		if body.N == 0 {
			return fmt.Errorf("%w: %s %s: body larger than %d bytes", ErrInvalidResponse, req.Method, redact(req.URL), maxResponseBody)
		}
		return fmt.Errorf("%w: %s %s: %w", ErrInvalidResponse, req.Method, redact(req.URL), err)
	}
	return nil
}

// Response is the server's answer to a call. It embeds the *http.Response
// (whose body has been read and closed) and adds what the API sends beside
// the body.
type Response struct {
	*http.Response
	// Next is the cursor of the following page, for [Client.List]; "" on
	// the last page and for other calls.
	Next string
	// RetryAfter is when the server asks to retry (429, 503), from the
	// Retry-After header; zero when it sent none.
	RetryAfter time.Duration
}

func newResponse(r *http.Response) *Response {
	return &Response{Response: r, RetryAfter: retryAfter(r.Header.Get("Retry-After"))}
}

// retryAfter parses a Retry-After value: seconds or an HTTP date. It is
// never negative: more seconds than a time.Duration holds are its maximum.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return seconds(s)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// seconds returns s seconds (s >= 0) as a Duration, at most the largest.
func seconds(s int64) time.Duration {
	if s > int64(math.MaxInt64/time.Second) {
		return math.MaxInt64
	}
	return time.Duration(s) * time.Second
}

// ErrorResponse is a non-2xx answer of the server, as an error. Problem is
// the RFC 9457 body decoded (its Status and Title are filled from the
// response when the body is not a problem). Test it with errors.As, or with
// errors.Is against keygate's errors, as for a local Manager: see
// [ErrorResponse.Is].
type ErrorResponse struct {
	// Response is the server's response; its body has been read and
	// closed.
	Response *http.Response
	// Problem is the decoded error body. Problem.RetryAfter holds the
	// Retry-After header; Problem.Err is nil.
	Problem middleware.Problem
}

// Error returns the method, the URL without query or credentials, the
// status, the code and the detail.
func (e *ErrorResponse) Error() string {
	var b strings.Builder
	b.WriteString("client: ")
	if e.Response != nil && e.Response.Request != nil {
		b.WriteString(e.Response.Request.Method + " " + redact(e.Response.Request.URL) + ": ")
	}
	b.WriteString(strconv.Itoa(e.Problem.Status))
	if e.Problem.Code != "" {
		b.WriteString(" " + e.Problem.Code)
	}
	if e.Problem.Detail != "" {
		b.WriteString(": " + e.Problem.Detail)
	} else if e.Problem.Title != "" {
		b.WriteString(": " + e.Problem.Title)
	}
	return b.String()
}

// Is reports whether the problem's code stands for target, as
// server.ErrorsFor maps it: for example keygate.ErrForbidden for
// "forbidden", keygate.ErrInvalidRequest and keygate.ErrDuplicateName for
// "duplicate_name". A 503 without a code is keygate.ErrUnavailable too,
// whatever status its body claims.
func (e *ErrorResponse) Is(target error) bool {
	for _, err := range server.ErrorsFor(e.Problem.Code) {
		if err == target {
			return true
		}
	}
	unavailable := e.Problem.Status == http.StatusServiceUnavailable ||
		e.Response != nil && e.Response.StatusCode == http.StatusServiceUnavailable
	return e.Problem.Code == "" && unavailable && target == keygate.ErrUnavailable
}

// CheckResponse returns nil for a 2xx response and an [*ErrorResponse]
// otherwise, reading at most 1 MiB of its body as an RFC 9457 problem (any
// other body is ignored). It does not close the body.
func CheckResponse(r *http.Response) error {
	if r.StatusCode >= 200 && r.StatusCode <= 299 {
		return nil
	}
	e := &ErrorResponse{Response: r}
	if data, err := io.ReadAll(io.LimitReader(r.Body, maxErrorBody)); err == nil && len(data) > 0 {
		if json.Unmarshal(data, &e.Problem) != nil {
			e.Problem = middleware.Problem{}
		}
	}
	if e.Problem.Status == 0 {
		e.Problem.Status = r.StatusCode
	}
	if e.Problem.Title == "" {
		e.Problem.Title = http.StatusText(r.StatusCode)
	}
	e.Problem.RetryAfter = retryAfter(r.Header.Get("Retry-After"))
	return e
}

// redact returns u without credentials, query or fragment, for errors.
func redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/server"
)

// newToken returns a well-formed token of no key.
func newToken(t testing.TB) string {
	t.Helper()
	f, err := apikey.NewFormat("acme_test")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return tok.Reveal()
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tok := newToken(t)
	// tok with another last character: its checksum fails.
	badTok := tok[:len(tok)-1] + "x"
	if strings.HasSuffix(tok, "x") {
		badTok = tok[:len(tok)-1] + "y"
	}
	tests := []struct {
		name    string
		baseURL string
		opts    []client.Option
		secret  string // must not appear in the error
	}{
		{"empty URL", "", nil, ""},
		{"relative URL", "/api/v1/", nil, ""},
		{"other scheme", "ftp://example.com/", nil, ""},
		{"credentials in URL", "https://user:s3cr3t-pw@example.com/", nil, "s3cr3t-pw"},
		{"query", "https://example.com/api?x=1", nil, ""},
		{"fragment", "https://example.com/api#x", nil, ""},
		{"nil http client", "https://example.com/", []client.Option{client.WithHTTPClient(nil)}, ""},
		{"empty token", "https://example.com/", []client.Option{client.WithToken("")}, ""},
		{"malformed token", "https://example.com/", []client.Option{client.WithToken(badTok)}, tok[4:20]},
		{"empty user agent", "https://example.com/", []client.Option{client.WithUserAgent("")}, ""},
		{"user agent with newline", "https://example.com/", []client.Option{client.WithUserAgent("a\r\nX-Evil: 1")}, ""},
		{"nil option", "https://example.com/", []client.Option{nil}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := client.New(tt.baseURL, tt.opts...)
			if !errors.Is(err, client.ErrInvalidConfig) || c != nil {
				t.Fatalf("New = %v, %v; want nil, ErrInvalidConfig", c, err)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestBaseURLNormalised(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://example.com":         "https://example.com/",
		"https://example.com/api/v1":  "https://example.com/api/v1/",
		"https://example.com/api/v1/": "https://example.com/api/v1/",
	} {
		c, err := client.New(in)
		if err != nil {
			t.Fatalf("New(%q): %v", in, err)
		}
		if got := c.BaseURL(); got != want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", in, got, want)
		}
	}
}

// recorder is a server that records the headers of its requests and answers
// with answer.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
	srv     *httptest.Server
}

func newRecorder(t *testing.T, answer http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		answer(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) authorizations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, h := range r.headers {
		out = append(out, h.Get("Authorization"))
	}
	return out
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTokenTransport(t *testing.T) {
	t.Parallel()
	tok := newToken(t)
	elsewhere := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"keys":[],"next":""}`)
	})
	home := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.srv.URL+"/keys", http.StatusFound)
	})
	// The caller's transport is wrapped, not replaced, and sees the header.
	var built []*http.Request
	var mu sync.Mutex
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		built = append(built, r)
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := client.New(home.srv.URL, client.WithToken(tok), client.WithHTTPClient(hc), client.WithUserAgent("test/1"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, _, err := c.List(ctx(t), client.ListOptions{}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if got := home.authorizations(); len(got) != 1 || got[0] != "Api-Key "+tok {
		t.Errorf("home got Authorization %d times (right value: %v), want once", len(got), len(got) == 1 && got[0] == "Api-Key "+tok)
	}
	if got := elsewhere.authorizations(); len(got) != 1 || got[0] != "" {
		t.Errorf("the redirect to another host got %d requests, Authorization set: %v; want 1, false", len(got), len(got) > 0 && got[0] != "")
	}
	if home.headers[0].Get("User-Agent") != "test/1" {
		t.Errorf("User-Agent = %q, want test/1", home.headers[0].Get("User-Agent"))
	}
	if hc.Transport == nil || fmt.Sprintf("%T", hc.Transport) != "client_test.roundTripFunc" {
		t.Errorf("WithHTTPClient's client was modified: Transport %T", hc.Transport)
	}
	if len(built) != 2 {
		t.Fatalf("transport saw %d requests, want 2", len(built))
	}
	if h := built[0].Header.Get("Authorization"); h != "Api-Key "+tok {
		t.Errorf("the base transport did not get the token on its clone")
	}
}

// testRequestFailures checks how a call fails when the server answers
// garbage, fails, is gone, or the context ends. decodes says whether a 2xx
// answer's body is decoded (false for Delete). Every client method must
// pass it.
func testRequestFailures(t *testing.T, decodes bool, call func(ctx context.Context, c *client.Client) (*client.Response, error)) {
	t.Helper()
	tok := newToken(t)
	errorsShowNoToken := func(t *testing.T, err error) {
		t.Helper()
		if strings.Contains(err.Error(), tok) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), tok) {
			t.Errorf("error shows the token: %v", err)
		}
	}
	serve := func(t *testing.T, h http.HandlerFunc) *client.Client {
		t.Helper()
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		c, err := client.New(srv.URL+basePath, client.WithToken(tok))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return c
	}

	t.Run("garbage JSON", func(t *testing.T) {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"key": [`+tok)
		})
		resp, err := call(ctx(t), c)
		if !decodes {
			if err != nil {
				t.Errorf("err = %v, want nil: the body is not read", err)
			}
			return
		}
		if !errors.Is(err, client.ErrInvalidResponse) || resp == nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("call = %v, %v; want a 200 response and ErrInvalidResponse", resp, err)
		}
		errorsShowNoToken(t, err)
	})

	t.Run("500", func(t *testing.T) {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			http.Error(w, "boom "+tok, http.StatusInternalServerError)
		})
		resp, err := call(ctx(t), c)
		wantProblem(t, err, http.StatusInternalServerError, "")
		for _, sentinel := range []error{keygate.ErrUnavailable, keygate.ErrInvalidRequest, keygate.ErrNotFound} {
			if errors.Is(err, sentinel) {
				t.Errorf("errors.Is(%v, %v) = true, want false", err, sentinel)
			}
		}
		if resp == nil || resp.RetryAfter != 7*time.Second {
			t.Errorf("Response = %v, want RetryAfter 7s", resp)
		}
		errorsShowNoToken(t, err)
	})

	t.Run("503 without a body", func(t *testing.T) {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		_, err := call(ctx(t), c)
		wantProblem(t, err, http.StatusServiceUnavailable, "", keygate.ErrUnavailable)
	})

	t.Run("closed server", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c, err := client.New(srv.URL, client.WithToken(tok))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		resp, err := call(ctx(t), c)
		var er *client.ErrorResponse
		if err == nil || resp != nil || errors.As(err, &er) {
			t.Fatalf("call = %v, %v; want no response and a transport error", resp, err)
		}
		errorsShowNoToken(t, err)
	})

	t.Run("canceled context", func(t *testing.T) {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) { t.Error("the request was sent") })
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := call(cctx, c); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

func TestRequestFailures(t *testing.T) {
	t.Parallel()
	id := uuid.Must(uuid.NewV7())
	methods := []struct {
		name    string
		decodes bool
		call    func(ctx context.Context, c *client.Client) (*client.Response, error)
	}{
		{"Create", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Create(ctx, client.CreateRequest{Name: "x", Role: "admin", Expiry: "never"})
			return r, err
		}},
		{"Get", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Get(ctx, id)
			return r, err
		}},
		{"List", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.List(ctx, client.ListOptions{Workspace: "w"})
			return r, err
		}},
		{"Update", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Update(ctx, id, client.UpdateRequest{Version: 3, Name: new("y")})
			return r, err
		}},
		{"Regenerate", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Regenerate(ctx, id, client.RegenerateRequest{Expiry: "7d"})
			return r, err
		}},
		{"Revoke", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Revoke(ctx, id)
			return r, err
		}},
		{"Delete", false, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			return c.Delete(ctx, id)
		}},
		{"Usage", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Usage(ctx, id, client.UsageOptions{Bucket: client.BucketDay})
			return r, err
		}},
		{"Identities.Create", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Identities().Create(ctx, client.CreateIdentityRequest{ExternalID: "x"})
			return r, err
		}},
		{"Identities.Get", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Identities().Get(ctx, id)
			return r, err
		}},
		{"Identities.List", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Identities().List(ctx, client.IdentityListOptions{Workspace: "w"})
			return r, err
		}},
		{"Identities.Update", true, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			_, r, err := c.Identities().Update(ctx, id, client.UpdateIdentityRequest{Version: 3, ExternalID: new("y")})
			return r, err
		}},
		{"Identities.Delete", false, func(ctx context.Context, c *client.Client) (*client.Response, error) {
			return c.Identities().Delete(ctx, id)
		}},
	}
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			testRequestFailures(t, m.decodes, m.call)
		})
	}
}

func TestMalformedTokenInResponse(t *testing.T) {
	t.Parallel()
	tok := newToken(t)
	bad := tok[:len(tok)-1] + "!"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"key":{"id":"`+uuid.NewString()+`","name":"x"},"token":"`+bad+`"}`)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	created, resp, err := c.Create(ctx(t), client.CreateRequest{Name: "x"})
	if created != nil || resp == nil || !errors.Is(err, client.ErrInvalidResponse) {
		t.Fatalf("Create = %v, %v, %v; want nil, a response, ErrInvalidResponse", created, resp, err)
	}
	if strings.Contains(err.Error(), bad[5:30]) {
		t.Errorf("error %q shows the token", err)
	}
}

// rawRequest sends a hand-made request to the API as the admin and returns
// client.CheckResponse's verdict on the answer.
func rawRequest(t *testing.T, e *env, method, path, contentType, body string) error {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, e.baseURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Api-Key "+e.admin)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return client.CheckResponse(resp)
}

func TestCheckResponseOfBadBodies(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const ok = `{"name":"n","role":"admin","expiry":"never"}`
	tests := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"bad JSON", "application/json", `{"name":`, 400, server.CodeInvalidJSON},
		{"syntax error", "application/json", `{"name" "n"}`, 400, server.CodeInvalidJSON},
		{"unknown field", "application/json", `{"name":"n","colour":"red"}`, 400, server.CodeInvalidJSON},
		{"trailing data", "application/json", ok + `{}`, 400, server.CodeInvalidJSON},
		{"wrong content type", "text/plain", ok, 415, server.CodeUnsupportedMediaType},
		{"no content type", "", ok, 415, server.CodeUnsupportedMediaType},
		{"bad duration", "application/json", `{"name":"n","role":"admin","expiry":"never","limits":{"rate":{"requests":1,"window":"soon"}}}`, 400, server.CodeInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := rawRequest(t, e, http.MethodPost, "keys", tt.contentType, tt.body)
			wantProblem(t, err, tt.status, tt.code, keygate.ErrInvalidRequest)
		})
	}
	if err := rawRequest(t, e, http.MethodPost, "keys", "application/json; charset=utf-8", ok); err != nil {
		t.Errorf("a valid body with a charset: %v", err)
	}
}

func TestHugeResponseBody(t *testing.T) {
	t.Parallel()
	// A valid key whose description streams 40 MiB, beyond the client's
	// 32 MiB limit: the client must stop reading and refuse it.
	const size = 40 << 20
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		n, _ := io.WriteString(w, `{"id":"`+uuid.NewString()+`","name":"k","description":"`)
		chunk := strings.Repeat("a", 64<<10)
		for i := 0; i < size/len(chunk); i++ {
			m, err := io.WriteString(w, chunk)
			n += m
			if err != nil {
				break
			}
		}
		m, _ := io.WriteString(w, `"}`)
		written.Store(int64(n + m))
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL + basePath)
	if err != nil {
		t.Fatal(err)
	}
	k, resp, err := c.Get(ctx(t), uuid.New())
	if k != nil || resp == nil || resp.StatusCode != http.StatusOK || !errors.Is(err, client.ErrInvalidResponse) {
		t.Fatalf("Get = key %t, %v, %v; want no key, a 200 response and ErrInvalidResponse", k != nil, resp, err)
	}
	if !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v, want it to say the body is too large", err)
	}
}

func TestWrongBasePathIsNotNotFound(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c, _, err := e.client.Create(ctx(t), client.CreateRequest{Name: "k", Workspace: "w", Role: "viewer", Expiry: "never"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	tests := []struct {
		name, base string
		code       string
	}{
		// Under the API's mount point: the server answers no_route.
		{"extra segment", e.baseURL + "v2/", server.CodeNoRoute},
		// Outside it: a plain 404 of another handler, without a code.
		{"missing segment", strings.TrimSuffix(e.baseURL, "v1/"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wrong, err := client.New(tt.base, client.WithToken(e.admin))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			_, _, err = wrong.Get(ctx(t), c.Key.ID)
			wantProblem(t, err, http.StatusNotFound, tt.code)
			if errors.Is(err, keygate.ErrNotFound) {
				t.Errorf("errors.Is(%v, keygate.ErrNotFound) = true, want false: the key exists, the path is wrong", err)
			}
		})
	}
}

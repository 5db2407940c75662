package client_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// basePath is where the API is mounted, so that a client resolving paths
// against the host root instead of its base URL fails.
const basePath = "/api/v1/"

// errStoreDown is the failure of a failingStore: an internal detail that
// must never reach a client.
var errStoreDown = errors.New("dial tcp 10.9.8.7:5432: password authentication failed for user keygate_internal")

// failingStore is a memory store whose management calls fail while down is
// set. GetByHash keeps working, so callers still authenticate and the
// failure is the management call's.
type failingStore struct {
	*memory.Store
	down atomic.Bool
}

func (s *failingStore) fail() error {
	if s.down.Load() {
		return errStoreDown
	}
	return nil
}

func (s *failingStore) Create(ctx context.Context, k *store.Key) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.Create(ctx, k)
}

func (s *failingStore) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, id)
}

func (s *failingStore) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.List(ctx, opts)
}

// env is a real server over a real Manager, and a client of it.
type env struct {
	client *client.Client
	m      *keygate.Manager
	store  *failingStore
	// baseURL is the API's base URL, ending in basePath.
	baseURL string
	// admin is the client's token: a super admin's.
	admin string
	// verifyCalls counts the requests to POST /keys/verify.
	verifyCalls atomic.Int64
	// srv is the test server.
	srv *httptest.Server
}

// setup returns a client of an httptest server serving the API under
// basePath, authenticated as a super admin. Everything is closed by
// t.Cleanup.
func setup(t testing.TB) *env {
	t.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	e := &env{store: &failingStore{Store: memory.New()}}
	e.m, err = keygate.New(keygate.Config{Store: e.store, Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("keygate.New: %v", err)
	}
	t.Cleanup(func() {
		if err := e.m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	mw, err := middleware.New(middleware.Config{Verifier: e.m})
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	s, err := server.New(server.Config{Manager: e.m, Middleware: mw})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(basePath, http.StripPrefix(strings.TrimSuffix(basePath, "/"), s))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == basePath+"keys/verify" {
			e.verifyCalls.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.srv = srv
	e.baseURL = srv.URL + basePath
	e.admin = e.token(t, keygate.CreateRequest{Name: "admin", Role: "admin"})
	e.client = e.clientFor(t, e.admin)
	return e
}

// token creates a key directly with the Manager (never expiring unless req
// says otherwise) and returns its token.
func (e *env) token(t testing.TB, req keygate.CreateRequest) string {
	t.Helper()
	if req.Expiry == (keygate.Expiry{}) {
		req.Expiry = keygate.NeverExpire()
	}
	c, err := e.m.Create(context.Background(), keygate.System(), req)
	if err != nil {
		t.Fatalf("Manager.Create(%q): %v", req.Name, err)
	}
	return c.Token.Reveal()
}

// clientFor returns a client of e's server using token ("" for none).
func (e *env) clientFor(t testing.TB, token string) *client.Client {
	t.Helper()
	var opts []client.Option
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	c, err := client.New(e.baseURL, opts...)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// ctx returns a context ended with the test.
func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantProblem checks that err is an *ErrorResponse with status and code
// that matches each of is with errors.Is.
func wantProblem(t *testing.T, err error, status int, code string, is ...error) {
	t.Helper()
	var er *client.ErrorResponse
	if !errors.As(err, &er) {
		t.Fatalf("err = %v (%T), want an *ErrorResponse", err, err)
	}
	if er.Problem.Status != status || er.Problem.Code != code {
		t.Errorf("problem = %d %q, want %d %q (detail %q)", er.Problem.Status, er.Problem.Code, status, code, er.Problem.Detail)
	}
	if er.Response == nil || er.Response.StatusCode != status {
		t.Errorf("ErrorResponse.Response = %v, want one with status %d", er.Response, status)
	}
	for _, target := range is {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false, want true", err, target)
		}
	}
}

package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// prefix is where the API is mounted in these tests.
const prefix = "/api/v1"

// errStoreDown is the failure of a failingStore: an internal detail that
// must never reach a client.
var errStoreDown = errors.New("dial tcp 10.9.8.7:5432: password authentication failed for user keygate_internal")

// failingStore is a memory store that fails on demand: the calls managing
// keys (Create, Get, List, Update, Delete) while down is set, and key
// lookups by hash, which verify a caller's key on a cache miss, while
// lookupsDown is set. With only down set, callers still authenticate and
// the failure is the management call's.
type failingStore struct {
	*memory.Store
	down, lookupsDown atomic.Bool
}

func (s *failingStore) fail(down *atomic.Bool) error {
	if down.Load() {
		return errStoreDown
	}
	return nil
}

func (s *failingStore) Create(ctx context.Context, k *store.Key) error {
	if err := s.fail(&s.down); err != nil {
		return err
	}
	return s.Store.Create(ctx, k)
}

func (s *failingStore) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	if err := s.fail(&s.down); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, id)
}

func (s *failingStore) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	if err := s.fail(&s.down); err != nil {
		return nil, err
	}
	return s.Store.List(ctx, opts)
}

func (s *failingStore) Update(ctx context.Context, k *store.Key) error {
	if err := s.fail(&s.down); err != nil {
		return err
	}
	return s.Store.Update(ctx, k)
}

func (s *failingStore) Delete(ctx context.Context, id uuid.UUID) error {
	if err := s.fail(&s.down); err != nil {
		return err
	}
	return s.Store.Delete(ctx, id)
}

func (s *failingStore) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageCount, error) {
	if err := s.fail(&s.down); err != nil {
		return nil, err
	}
	return s.Store.Usage(ctx, q)
}

func (s *failingStore) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	if err := s.fail(&s.lookupsDown); err != nil {
		return nil, err
	}
	return s.Store.GetByHash(ctx, hash)
}

// fixture is the API over a Manager with a memory store that can be made
// to fail, served in process, and a super admin's token.
type fixture struct {
	m       *keygate.Manager
	store   *failingStore
	handler http.Handler
	admin   string
}

// newFixture returns a fixture whose server is built from cfg, filling in
// its Manager and Middleware.
func newFixture(t testing.TB, cfg server.Config) *fixture {
	t.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	f := &fixture{store: &failingStore{Store: memory.New()}}
	f.m, err = keygate.New(keygate.Config{Store: f.store, Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("keygate.New: %v", err)
	}
	t.Cleanup(func() {
		if err := f.m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if cfg.Middleware, err = middleware.New(middleware.Config{Verifier: f.m}); err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	cfg.Manager = f.m
	s, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	f.handler = http.StripPrefix(prefix, s)
	f.admin = f.token(t, keygate.CreateRequest{Name: "admin", Role: "admin"})
	return f
}

// token creates a key with the Manager and returns its token.
func (f *fixture) token(t testing.TB, req keygate.CreateRequest) string {
	t.Helper()
	return f.key(t, req).Token.Reveal()
}

// key creates a key with the Manager, never expiring unless req says
// otherwise.
func (f *fixture) key(t testing.TB, req keygate.CreateRequest) *keygate.Created {
	t.Helper()
	if req.Expiry == (keygate.Expiry{}) {
		req.Expiry = keygate.NeverExpire()
	}
	c, err := f.m.Create(context.Background(), keygate.System(), req)
	if err != nil {
		t.Fatalf("Manager.Create(%q): %v", req.Name, err)
	}
	return c
}

// request describes a request to the API.
type request struct {
	method, path string
	token        string // "" sends no Authorization
	contentType  string
	body         string
	header       http.Header
}

// do serves req and returns the recorded response.
func (f *fixture) do(t testing.TB, req request) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(context.Background(), req.method, prefix+req.path, strings.NewReader(req.body))
	for name, vs := range req.header {
		r.Header[name] = vs
	}
	if req.token != "" {
		r.Header.Set("Authorization", "Api-Key "+req.token)
	}
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

// create creates a key through the API as the admin and returns the
// response's key and token.
func (f *fixture) create(t testing.TB, body string) (server.Key, string) {
	t.Helper()
	w := f.do(t, request{method: "POST", path: "/keys", token: f.admin, contentType: "application/json", body: body})
	if w.Code != http.StatusCreated {
		t.Fatalf("POST /keys = %d %s, want 201", w.Code, w.Body)
	}
	var out struct {
		Key   server.Key `json:"key"`
		Token string     `json:"token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode create response: %v", err)
	}
	return out.Key, out.Token
}

// problem decodes a problem response, checking its headers.
func problem(t testing.TB, w *httptest.ResponseRecorder) middleware.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != middleware.ProblemContentType {
		t.Errorf("Content-Type = %q, want %q (body %s)", ct, middleware.ProblemContentType, w.Body)
	}
	var p middleware.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem %q: %v", w.Body, err)
	}
	if p.Status != w.Code {
		t.Errorf("problem status %d, response status %d; want equal", p.Status, w.Code)
	}
	return p
}

// mustPrefix parses a CIDR prefix or fails the test.
func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

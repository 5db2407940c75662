package middleware_test

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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// errStoreDown is the failure of a failingStore. Its text stands for an
// internal detail that must never reach a client.
var errStoreDown = errors.New("dial tcp 10.9.8.7:5432: password authentication failed for user keygate_internal")

// failingStore is a memory store whose key lookups fail while down is set,
// and whose spending of uses and credits fails while spendDown is.
type failingStore struct {
	*memory.Store
	down      atomic.Bool
	spendDown atomic.Bool
	lookups   atomic.Int64 // GetByHash calls
}

func (s *failingStore) SpendUses(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	if s.spendDown.Load() {
		return 0, errStoreDown
	}
	return s.Store.SpendUses(ctx, id, cost, now)
}

func (s *failingStore) SpendCredits(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	if s.spendDown.Load() {
		return 0, errStoreDown
	}
	return s.Store.SpendCredits(ctx, id, cost, now)
}

func (s *failingStore) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	s.lookups.Add(1)
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.Store.GetByHash(ctx, hash)
}

// clock is a settable clock for the Manager.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fixture is a Manager over a memory store that can be made to fail.
type fixture struct {
	m     *keygate.Manager
	store *failingStore
	clock *clock
}

// newFixture returns a Manager closed at the end of the test.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	f := &fixture{
		store: &failingStore{Store: memory.New()},
		clock: &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
	f.m, err = keygate.New(keygate.Config{
		Store:  f.store,
		Hasher: hasher,
		Logger: slog.New(slog.DiscardHandler),
		Now:    f.clock.Now,
	})
	if err != nil {
		t.Fatalf("keygate.New: %v", err)
	}
	t.Cleanup(func() {
		if err := f.m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// create issues a key and returns its token and id.
func (f *fixture) create(t testing.TB, req keygate.CreateRequest) (string, *keygate.Created) {
	t.Helper()
	if req.Name == "" {
		req.Name = t.Name()
	}
	if req.Expiry == (keygate.Expiry{}) {
		req.Expiry = keygate.NeverExpire()
	}
	c, err := f.m.Create(context.Background(), keygate.System(), req)
	if err != nil {
		t.Fatalf("Create(%q): %v", req.Name, err)
	}
	return c.Token.Reveal(), c
}

// newMiddleware builds a Middleware or fails the test.
func newMiddleware(t testing.TB, cfg middleware.Config) *middleware.Middleware {
	t.Helper()
	mw, err := middleware.New(cfg)
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	return mw
}

// response is what a test sees of a response.
type response struct {
	status  int
	header  http.Header
	body    string
	problem middleware.Problem
}

// serve sends req through h and decodes a problem body if there is one.
func serve(t testing.TB, h http.Handler, req *http.Request) response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
	if rec.Header().Get("Content-Type") == middleware.ProblemContentType {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.problem); err != nil {
			t.Fatalf("problem body %q: %v", res.body, err)
		}
		if res.problem.Status != rec.Code {
			t.Errorf("problem status = %d, response status %d", res.problem.Status, rec.Code)
		}
	}
	return res
}

// get returns a GET request for target with the headers given as
// name/value pairs.
func get(target string, headers ...string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// okHandler answers 200 with the verified key's name, or "anonymous".
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "anonymous"
		if k, ok := middleware.FromContext(r.Context()); ok {
			name = k.Name
		}
		_, _ = w.Write([]byte(name))
	})
}

// fakeVerifier returns a fixed result and records what it was asked.
type fakeVerifier struct {
	key *keygate.Key
	err error

	mu     sync.Mutex
	tokens []string
	addrs  []netip.Addr
}

func (v *fakeVerifier) VerifyFrom(_ context.Context, token string, addr netip.Addr) (*keygate.Key, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tokens = append(v.tokens, token)
	v.addrs = append(v.addrs, addr)
	return v.key, v.err
}

func (v *fakeVerifier) calls() ([]string, []netip.Addr) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.tokens...), append([]netip.Addr(nil), v.addrs...)
}

// containsAny reports whether s contains any of subs.
func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// constVerifier accepts every token as key, without recording anything.
type constVerifier struct{ key *keygate.Key }

func (v *constVerifier) VerifyFrom(context.Context, string, netip.Addr) (*keygate.Key, error) {
	return v.key, nil
}

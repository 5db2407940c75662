package servertest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
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

// Prefix is where a [Fixture] mounts the API: a request for /api/v1/keys
// is the API's /keys.
const Prefix = "/api/v1"

// errStoreDown is the failure of a FailingStore: an internal detail that
// must never reach a client.
var errStoreDown = errors.New("dial tcp 10.9.8.7:5432: password authentication failed for user keygate_internal")

// FailingStore is a memory store that fails on demand: the calls managing
// keys (Create, Get, List, Update, Delete) and identities while Down is set, and key
// lookups by hash, which verify a caller's key on a cache miss, while
// LookupsDown is set. With only Down set, callers still authenticate and
// the failure is the management call's. Its failure's text names a
// database host and user, which no answer of the API may show.
type FailingStore struct {
	*memory.Store
	Down, LookupsDown atomic.Bool
}

func (s *FailingStore) fail(down *atomic.Bool) error {
	if down.Load() {
		return errStoreDown
	}
	return nil
}

// Create fails while Down is set.
func (s *FailingStore) Create(ctx context.Context, k *store.Key) error {
	if err := s.fail(&s.Down); err != nil {
		return err
	}
	return s.Store.Create(ctx, k)
}

// Get fails while Down is set.
func (s *FailingStore) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	if err := s.fail(&s.Down); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, id)
}

// List fails while Down is set.
func (s *FailingStore) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	if err := s.fail(&s.Down); err != nil {
		return nil, err
	}
	return s.Store.List(ctx, opts)
}

// Update fails while Down is set.
func (s *FailingStore) Update(ctx context.Context, k *store.Key) error {
	if err := s.fail(&s.Down); err != nil {
		return err
	}
	return s.Store.Update(ctx, k)
}

// Delete fails while Down is set.
func (s *FailingStore) Delete(ctx context.Context, id uuid.UUID) error {
	if err := s.fail(&s.Down); err != nil {
		return err
	}
	return s.Store.Delete(ctx, id)
}

// Usage fails while Down is set.
func (s *FailingStore) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageCount, error) {
	if err := s.fail(&s.Down); err != nil {
		return nil, err
	}
	return s.Store.Usage(ctx, q)
}

// CreateIdentity fails while Down is set.
func (s *FailingStore) CreateIdentity(ctx context.Context, id *store.Identity) error {
	if err := s.fail(&s.Down); err != nil {
		return err
	}
	return s.Store.CreateIdentity(ctx, id)
}

// GetIdentity fails while Down is set.
func (s *FailingStore) GetIdentity(ctx context.Context, id uuid.UUID) (*store.Identity, error) {
	if err := s.fail(&s.Down); err != nil {
		return nil, err
	}
	return s.Store.GetIdentity(ctx, id)
}

// ListIdentities fails while Down is set.
func (s *FailingStore) ListIdentities(ctx context.Context, opts store.IdentityListOptions) (*store.IdentityPage, error) {
	if err := s.fail(&s.Down); err != nil {
		return nil, err
	}
	return s.Store.ListIdentities(ctx, opts)
}

// UpdateIdentity fails while Down is set.
func (s *FailingStore) UpdateIdentity(ctx context.Context, id *store.Identity, balance bool) error {
	if err := s.fail(&s.Down); err != nil {
		return err
	}
	return s.Store.UpdateIdentity(ctx, id, balance)
}

// DeleteIdentity fails while Down is set.
func (s *FailingStore) DeleteIdentity(ctx context.Context, id uuid.UUID) error {
	if err := s.fail(&s.Down); err != nil {
		return err
	}
	return s.Store.DeleteIdentity(ctx, id)
}

// GetByHash fails while LookupsDown is set.
func (s *FailingStore) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	if err := s.fail(&s.LookupsDown); err != nil {
		return nil, err
	}
	return s.Store.GetByHash(ctx, hash)
}

// Fixture is the API over a Manager with a memory store that can be made
// to fail, served in process, and a super admin's token.
type Fixture struct {
	// Manager is the Manager the API serves, over Store.
	Manager *keygate.Manager
	// Store is the Manager's store.
	Store *FailingStore
	// Handler serves the API under Prefix.
	Handler http.Handler
	// Admin is the token of a key with the role admin, in no workspace.
	Admin string
}

// New returns a Fixture whose server is built from cfg, filling in its
// Manager and Middleware (verifying keys with the Manager). The Manager is
// closed when t ends.
func New(t testing.TB, cfg server.Config) *Fixture {
	t.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	f := &Fixture{Store: &FailingStore{Store: memory.New()}}
	f.Manager, err = keygate.New(keygate.Config{Store: f.Store, Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("keygate.New: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Manager.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if cfg.Middleware, err = middleware.New(middleware.Config{Verifier: f.Manager}); err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	cfg.Manager = f.Manager
	s, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	f.Handler = http.StripPrefix(Prefix, s)
	f.Admin = f.Token(t, keygate.CreateRequest{Name: "admin", Role: "admin"})
	return f
}

// Token creates a key with the Manager, as Key does, and returns its
// token.
func (f *Fixture) Token(t testing.TB, req keygate.CreateRequest) string {
	t.Helper()
	return f.Key(t, req).Token.Reveal()
}

// Key creates a key with the Manager, never expiring unless req says
// otherwise, or fails the test.
func (f *Fixture) Key(t testing.TB, req keygate.CreateRequest) *keygate.Created {
	t.Helper()
	if req.Expiry == (keygate.Expiry{}) {
		req.Expiry = keygate.NeverExpire()
	}
	c, err := f.Manager.Create(context.Background(), keygate.System(), req)
	if err != nil {
		t.Fatalf("Manager.Create(%q): %v", req.Name, err)
	}
	return c
}

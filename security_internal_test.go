package keygate

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// TestGraceNeverRevivesAnExpiredSecret (issue 8, finding 4): a
// regeneration's grace period keeps the old secret only as long as it
// would have lived anyway.
func TestGraceNeverRevivesAnExpiredSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	expired := f.create(t, CreateRequest{Expiry: ExpireAfter(time.Hour)})
	soon := f.create(t, CreateRequest{Expiry: ExpireAfter(3 * time.Hour)})
	f.clock.Advance(2 * time.Hour)
	if _, err := f.m.Verify(ctx, expired.Token.Reveal()); !errors.Is(err, ErrExpired) {
		t.Fatalf("before: %v, want ErrExpired", err)
	}
	for _, c := range []*Created{expired, soon} {
		if _, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(7), GracePeriod: 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.Verify(ctx, expired.Token.Reveal()); err == nil {
		t.Error("a secret that had expired works again after a regeneration with a grace period")
	}
	if _, err := f.m.Verify(ctx, soon.Token.Reveal()); err != nil {
		t.Errorf("within its own life and the grace period: %v", err)
	}
	f.clock.Advance(90 * time.Minute) // past the old secret's own expiry, within the 24 h grace
	if _, err := f.m.Verify(ctx, soon.Token.Reveal()); err == nil {
		t.Error("an old secret outlived its own expiry through a grace period")
	}
}

// rehashingStore re-hashes key id under the current pepper, as another
// instance would, just before the first lookup under the older pepper.
type rehashingStore struct {
	*countingStore
	once    sync.Once
	oldHash []byte
	rehash  func()
}

func (s *rehashingStore) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	if bytes.Equal(hash, s.oldHash) {
		s.once.Do(s.rehash)
	}
	return s.countingStore.GetByHash(ctx, hash)
}

// TestPepperRotationRace (finding 7): a key re-hashed by another instance
// between this one's lookups under the current and the older pepper is
// still found, and never remembered as unknown.
func TestPepperRotationRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// race returns a Manager on the current pepper p2 whose store holds
	// c's key under p1, and re-hashes it to p2 (as another instance
	// would) just as the Manager looks under p1.
	race := func(t *testing.T) (*Manager, *Created) {
		old := newFixture(t) // hashes under p1
		c := old.create(t, CreateRequest{})
		tok, err := old.m.format.Parse(c.Token.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		rotated := testHasher(t, "p2", "p1")
		oldHash, _ := old.cfg.Hasher.Hash(tok)
		rs := &rehashingStore{countingStore: old.store, oldHash: oldHash, rehash: func() {
			rec, err := old.store.Get(ctx, c.Key.ID)
			if err != nil {
				t.Error(err)
				return
			}
			rec.Hash, rec.PepperID = rotated.Hash(tok)
			if err := old.store.Update(ctx, rec); err != nil {
				t.Error(err)
			}
		}}
		b, err := New(Config{Store: rs, Hasher: rotated, Auditor: &recorder{}, Now: old.clock.Now, LastUsedInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close(ctx) })
		return b, c
	}
	t.Run("verify", func(t *testing.T) {
		b, c := race(t)
		if _, err := b.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatalf("a key re-hashed during the lookup: %v", err)
		}
		if _, err := b.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatalf("again (from the cache): %v", err)
		}
	})
	t.Run("leak", func(t *testing.T) {
		b, c := race(t)
		o, err := b.HandleLeak(ctx, Leak{Token: c.Token.Reveal(), Reporter: "github"}, true)
		if err != nil || o != LeakRevoked {
			t.Fatalf("a leaked key re-hashed during the lookup: %v, %v; want revoked", o, err)
		}
		if _, err := b.Verify(ctx, c.Token.Reveal()); !errors.Is(err, ErrRevoked) {
			t.Fatalf("the leaked key after the report: %v, want ErrRevoked", err)
		}
	})
}

// TestKeptPrincipalLosesPowerWithItsKey (finding 5): a principal taken
// from a key is refused once the key is revoked, deleted, expired or
// regenerated, and acts with the key's current permissions.
func TestKeptPrincipalLosesPowerWithItsKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	kept := func(req CreateRequest) (*Created, Principal) {
		t.Helper()
		req.Scopes = []string{"apikey:manage", "apikey:view", "cluster:read"}
		c := f.create(t, req)
		k, err := f.m.Verify(ctx, c.Token.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		return c, k.Principal()
	}
	create := func(by Principal) error {
		_, err := f.m.Create(ctx, by, CreateRequest{Name: "child-" + uuid.NewString(), Scopes: []string{"cluster:read"}, Expiry: ExpireAfterDays(1)})
		return err
	}
	inactive := func(what string, err error) {
		t.Helper()
		var d *DeniedError
		if !errors.As(err, &d) || d.Reason != DeniedInactive {
			t.Errorf("%s: got %v, want a DeniedError %q", what, err, DeniedInactive)
		}
	}

	revoked, p := kept(CreateRequest{})
	if err := create(p); err != nil {
		t.Fatalf("before: %v", err)
	}
	if _, err := f.m.Revoke(ctx, System(), revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	inactive("create after the key's revocation", create(p))
	_, err := f.m.List(ctx, p, ListRequest{})
	inactive("list after the key's revocation", err)

	deleted, p := kept(CreateRequest{})
	if err := f.m.Delete(ctx, System(), deleted.Key.ID); err != nil {
		t.Fatal(err)
	}
	inactive("create after the key's deletion", create(p))

	_, p = kept(CreateRequest{Expiry: ExpireAfter(time.Hour)})
	f.clock.Advance(2 * time.Hour)
	inactive("create after the key expired", create(p))

	regenerated, p := kept(CreateRequest{})
	if _, err := f.m.Regenerate(ctx, System(), regenerated.Key.ID, RegenerateRequest{Expiry: NeverExpire()}); err != nil {
		t.Fatal(err)
	}
	inactive("create with a secret replaced by a regeneration", create(p))

	// A change of permissions applies to a kept principal at once.
	narrowed, p := kept(CreateRequest{})
	less := []string{"cluster:read"}
	if _, err := f.m.Update(ctx, System(), narrowed.Key.ID, UpdateRequest{Scopes: &less}); err != nil {
		t.Fatal(err)
	}
	var d *DeniedError
	if err := create(p); !errors.As(err, &d) || d.Permission != PermissionManageKeys {
		t.Errorf("create after losing apikey:manage: got %v, want a refusal naming it", err)
	}
}

// TestOldSecretChangesNothing (finding 6): during a grace period the old
// secret may view keys but not regenerate, change, revoke or delete its
// own key or any other, nor create keys.
func TestOldSecretChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	c := f.create(t, CreateRequest{Role: "admin"})
	other := f.create(t, CreateRequest{Scopes: []string{"cluster:read"}})
	r, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: NeverExpire(), GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	old, err := f.m.Verify(ctx, c.Token.Reveal())
	if err != nil {
		t.Fatalf("old secret in its grace period: %v", err)
	}
	p := old.Principal()
	name := "taken-over"
	for what, err := range map[string]error{
		"regenerate its own key": func() error {
			_, err := f.m.Regenerate(ctx, p, c.Key.ID, RegenerateRequest{Expiry: NeverExpire()})
			return err
		}(),
		"update its own key": func() error { _, err := f.m.Update(ctx, p, c.Key.ID, UpdateRequest{Name: &name}); return err }(),
		"revoke another key": func() error { _, err := f.m.Revoke(ctx, p, other.Key.ID); return err }(),
		"delete its own key": f.m.Delete(ctx, p, c.Key.ID),
		"create a key": func() error {
			_, err := f.m.Create(ctx, p, CreateRequest{Name: "x", Role: "admin", Expiry: ExpireAfter(time.Minute)})
			return err
		}(),
	} {
		var d *DeniedError
		if !errors.As(err, &d) || d.Reason != DeniedOldSecret {
			t.Errorf("old secret may not %s: got %v, want a DeniedError %q", what, err, DeniedOldSecret)
		}
	}
	if _, err := f.m.Get(ctx, p, c.Key.ID); err != nil {
		t.Errorf("old secret viewing its key: %v", err)
	}
	if _, err := f.m.Verify(ctx, r.Token.Reveal()); err != nil {
		t.Errorf("the new secret after the old one's attempts: %v", err)
	}
}

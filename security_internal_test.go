package keygate

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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
	if _, err := b.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatalf("a key re-hashed during the lookup: %v", err)
	}
	if _, err := b.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatalf("again (from the cache): %v", err)
	}
}

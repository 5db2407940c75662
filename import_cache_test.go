package keygate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestImportClearsNegativeCache (issue 16, Low 6): a token tried before
// its import, and so remembered as unknown, verifies as soon as the
// import returns, by plaintext and by SHA-256 alike.
func TestImportClearsNegativeCache(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) {
		c.ImportedTokens = stripeLike
		c.ImportedSHA256 = true
		c.NegativeCacheTTL = time.Hour
	})
	for i, row := range []ImportRequest{importRow("plain", foreignToken(t, 61)), shaRow("sha", foreignToken(t, 62))} {
		tok := foreignToken(t, 61+i)
		for range 2 {
			if _, err := f.m.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrInvalid) {
				t.Fatalf("before the import: %v", err)
			}
		}
		before := f.store.getByHash.Load()
		if _, err := f.m.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrInvalid) || f.store.getByHash.Load() != before {
			t.Fatalf("the unknown token was looked up again (%v): it is not remembered, so this test proves nothing", err)
		}
		res := mustImport(t, f.m, []ImportRequest{row}, ImportCreated)
		if k, err := f.m.Verify(ctx, tok.Reveal()); err != nil || k.ID != res[0].Key.ID {
			t.Fatalf("row %s right after its import: %v, %v; want its key", row.Name, k, err)
		}
	}
}

// busFeed is an in-process message bus: what one instance publishes,
// every instance watching hears.
type busFeed struct {
	mu       sync.Mutex
	watchers []func(uuid.UUID)
	ready    chan struct{}
}

func newBusFeed() *busFeed { return &busFeed{ready: make(chan struct{}, 16)} }

func (b *busFeed) Watch(ctx context.Context, fn func(uuid.UUID)) error {
	b.mu.Lock()
	b.watchers = append(b.watchers, fn)
	b.mu.Unlock()
	b.ready <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

func (b *busFeed) Publish(_ context.Context, id uuid.UUID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, fn := range b.watchers {
		fn(id)
	}
	return nil
}

// TestImportReachesOtherInstances (issue 16, Low 6): an instance that
// remembers a token as unknown forgets it when another instance imports
// it, through a change feed that takes publications.
func TestImportReachesOtherInstances(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike; c.ImportedSHA256 = true })
	bus := newBusFeed()
	newInstance := func(feed *busFeed) *Manager {
		cfg := Config{Store: f.store, Hasher: f.cfg.Hasher, Auditor: &recorder{}, Now: f.clock.Now, ImportedTokens: stripeLike,
			ImportedSHA256: true, LastUsedInterval: -1, NegativeCacheTTL: time.Hour, CacheTTL: time.Hour}
		if feed != nil {
			cfg.ChangeFeed = feed
		}
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(ctx) })
		if feed != nil {
			<-feed.ready
		}
		return m
	}
	a, b, control := newInstance(bus), newInstance(bus), newInstance(nil)
	for i, row := range []ImportRequest{importRow("plain", foreignToken(t, 71)), shaRow("sha", foreignToken(t, 72))} {
		tok := foreignToken(t, 71+i)
		for _, m := range []*Manager{b, control} {
			if _, err := m.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrInvalid) {
				t.Fatalf("before the import: %v", err)
			}
		}
		res := mustImport(t, a, []ImportRequest{row}, ImportCreated)
		if _, err := control.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrInvalid) {
			t.Fatalf("an instance without the feed took the import at once (%v): it did not remember the token, so this test proves nothing", err)
		}
		if k, err := b.Verify(ctx, tok.Reveal()); err != nil || k.ID != res[0].Key.ID {
			t.Fatalf("row %s on the other instance right after its import: %v, %v; want its key", row.Name, k, err)
		}
	}
}

package keygate

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// healthFeed is a change feed that delivers nothing and whose Health says
// what down holds.
type healthFeed struct {
	chanFeed
	down atomic.Bool
}

func (f *healthFeed) Health(context.Context) error {
	if f.down.Load() {
		return errors.New("feed: not subscribed")
	}
	return nil
}

// TestFeedOutageBoundsStaleness: while the change feed is down, a key
// changed by another instance (whose notification cannot arrive) is
// accepted for at most FeedOutageTTL, not the whole CacheTTL; the keys
// cached before the outage are dropped when it is noticed; and once the
// feed is back, keys are cached for CacheTTL again.
func TestFeedOutageBoundsStaleness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	feed := &healthFeed{chanFeed: chanFeed{ids: make(chan uuid.UUID)}}
	m, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, Now: f.clock.Now, LastUsedInterval: -1, Auditor: &recorder{},
		ChangeFeed: feed, CacheTTL: time.Hour, FeedOutageTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(ctx) })
	waitDown := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for m.feedDown.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("the Manager did not notice the feed's state %v within 5s", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	verify := func(tok string) error { _, err := m.Verify(ctx, tok); return err }

	// Healthy feed: a change whose notification is lost is not seen for
	// the whole CacheTTL (the documented trust in the feed).
	healthy := f.create(t, CreateRequest{Name: "healthy"})
	if err := verify(healthy.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Revoke(ctx, System(), healthy.Key.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Second)
	if err := verify(healthy.Token.Reveal()); err != nil {
		t.Fatalf("with a healthy feed the cached key is served until CacheTTL: %v", err)
	}

	// Cached before the outage, revoked during it: dropped when the
	// outage is noticed.
	before := f.create(t, CreateRequest{Name: "before"})
	if err := verify(before.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	feed.down.Store(true)
	waitDown(true)
	if _, err := f.m.Revoke(ctx, System(), before.Key.ID); err != nil {
		t.Fatal(err)
	}
	if err := verify(before.Token.Reveal()); !errors.Is(err, ErrRevoked) {
		t.Errorf("a key cached before the outage, revoked during it: %v, want ErrRevoked", err)
	}

	// Cached during the outage: served for FeedOutageTTL, then looked up.
	during := f.create(t, CreateRequest{Name: "during"})
	if err := verify(during.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Revoke(ctx, System(), during.Key.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if err := verify(during.Token.Reveal()); err != nil {
		t.Errorf("within FeedOutageTTL the cached key is served: %v", err)
	}
	f.clock.Advance(time.Second)
	if err := verify(during.Token.Reveal()); !errors.Is(err, ErrRevoked) {
		t.Errorf("FeedOutageTTL after its caching, a key revoked elsewhere: %v, want ErrRevoked", err)
	}

	// Back: the full CacheTTL again.
	feed.down.Store(false)
	waitDown(false)
	after := f.create(t, CreateRequest{Name: "after"})
	if err := verify(after.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Revoke(ctx, System(), after.Key.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Second)
	if err := verify(after.Token.Reveal()); err != nil {
		t.Errorf("after the feed is back, keys are cached for CacheTTL: %v", err)
	}
}

package keygate

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// errFeedNotStarted is the change feed's state before it is first watched.
var errFeedNotStarted = errors.New("keygate: change feed not started")

// feedState is the Manager's view of its change feed: nil while it is
// being watched, or the error that stopped it until it is watched again.
type feedState struct {
	mu  sync.Mutex
	err error
}

func (s *feedState) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *feedState) get() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Health reports whether the Manager can do its work, for readiness probes:
// nil when its store answers and its change feed, if it has one, is
// listening; otherwise an error wrapping [ErrUnavailable] and the cause,
// saying which failed.
//
// The store is asked with its own Health method when it implements
// [store.HealthChecker], else with a Get of an id no key has (so a
// missing table fails too). The change feed is unhealthy while the
// Manager waits to watch it again after a failure, and whenever its own
// Health method, if it has one (package pgnotify's does), reports a
// failure, such as a lost connection it is re-establishing.
func (m *Manager) Health(ctx context.Context) error {
	if err := storeHealth(ctx, m.store); err != nil {
		return errorf("keygate: store: %w: %w", ErrUnavailable, err)
	}
	if m.feed == nil {
		return nil
	}
	if err := m.feedHealth(ctx); err != nil {
		return errorf("keygate: change feed: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// feedHealth reports whether the change feed works: nil while it is
// watched and, if it is a store.HealthChecker, healthy by its own word.
func (m *Manager) feedHealth(ctx context.Context) error {
	err := m.feedState.get()
	if hc, ok := m.feed.(store.HealthChecker); ok && err == nil {
		err = hc.Health(ctx)
	}
	return err
}

// feedPollInterval is how often monitorFeed asks the feed whether it
// works (an atomic read for the feeds of this module).
const feedPollInterval = 100 * time.Millisecond

// monitorFeed follows the change feed's health until ctx ends: when the
// feed goes down, keys are cached for Config.FeedOutageTTL only, and the
// keys cached before are dropped (they were cached for the whole
// CacheTTL, trusting a feed that can no longer tell of their changes);
// when it is back, the full CacheTTL applies again (the feed itself then
// reports that changes may have been missed, which drops every key).
func (m *Manager) monitorFeed(ctx context.Context) {
	t := time.NewTicker(min(feedPollInterval, max(m.outageTTL/4, time.Millisecond)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := m.feedHealth(ctx)
		down := err != nil && !errors.Is(err, errFeedNotStarted)
		if down == m.feedDown.Load() {
			continue
		}
		// Shorten the TTL first, then drop what was cached under the long
		// one: a key loaded in between gets the short TTL or is dropped.
		m.feedDown.Store(down)
		if down {
			m.cache.clear()
			m.logger.WarnContext(ctx, "keygate: change feed down; keys are cached briefly until it is back",
				"feed_outage_ttl", m.outageTTL, "error", err)
		} else {
			m.logger.InfoContext(ctx, "keygate: change feed back; keys are cached for the cache TTL again", "cache_ttl", m.cacheTTL)
		}
	}
}

// storeHealth asks s whether it works.
func storeHealth(ctx context.Context, s store.Store) error {
	if hc, ok := s.(store.HealthChecker); ok {
		return hc.Health(ctx)
	}
	if _, err := s.Get(ctx, uuid.Nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

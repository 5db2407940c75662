package keygate

import (
	"context"
	"errors"
	"fmt"
	"sync"

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
		return fmt.Errorf("keygate: store: %w: %w", ErrUnavailable, err)
	}
	if m.feed == nil {
		return nil
	}
	err := m.feedState.get()
	if hc, ok := m.feed.(store.HealthChecker); ok && err == nil {
		err = hc.Health(ctx)
	}
	if err != nil {
		return fmt.Errorf("keygate: change feed: %w: %w", ErrUnavailable, err)
	}
	return nil
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

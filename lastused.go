package keygate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// lastUsed batches last-used times for the store.
type lastUsed struct {
	interval time.Duration
	mu       sync.Mutex
	pending  map[uuid.UUID]time.Time
}

// touch queues k's use at now, at most once per interval per cached copy
// of the key (a copy lives CacheTTL), on the copy itself so that the hot
// path reads no other memory: after the first use in an interval it is one
// atomic load. The queue holds one time per key, written in one batch per
// interval.
func (m *Manager) touch(k *Key, now time.Time) {
	interval := int64(m.lastUsed.interval)
	if interval <= 0 {
		return
	}
	n := now.UnixNano()
	last := atomic.LoadInt64(&k.touched)
	if last != 0 && n-last < interval || !atomic.CompareAndSwapInt64(&k.touched, last, n) {
		return
	}
	m.lastUsed.mu.Lock()
	if m.lastUsed.pending == nil {
		m.lastUsed.pending = make(map[uuid.UUID]time.Time)
	}
	m.lastUsed.pending[k.ID] = canonicalTime(now)
	m.lastUsed.mu.Unlock()
}

// Flush writes the queued last-used times, the exercised permissions
// (see [Manager.Exercised]) and the usage counts (see [Manager.Usage]) to
// the store, each in one batch, and purges usage history older than
// Config.UsageRetention if that was last done an hour ago or more. On a
// store error they stay queued for the next flush. The Manager flushes by
// itself every LastUsedInterval (usage every UsageInterval) and on Close.
func (m *Manager) Flush(ctx context.Context) error {
	exErr := m.flushExercises(ctx)
	usageErr := m.flushUsage(ctx)
	return errors.Join(m.flushLastUsed(ctx), exErr, usageErr)
}

// flushLastUsed writes the queued last-used times.
func (m *Manager) flushLastUsed(ctx context.Context) error {
	m.lastUsed.mu.Lock()
	batch := m.lastUsed.pending
	m.lastUsed.pending = nil
	m.lastUsed.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := m.store.TouchLastUsed(ctx, batch); err != nil {
		m.lastUsed.mu.Lock()
		if m.lastUsed.pending == nil {
			m.lastUsed.pending = batch
		} else {
			for id, t := range batch {
				if cur, ok := m.lastUsed.pending[id]; !ok || cur.Before(t) {
					m.lastUsed.pending[id] = t
				}
			}
		}
		m.lastUsed.mu.Unlock()
		return m.storeError("record last use", err)
	}
	return nil
}

// flushLoop flushes every interval until ctx ends.
func (m *Manager) flushLoop(ctx context.Context) {
	t := time.NewTicker(m.lastUsed.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := m.Flush(fctx); err != nil {
				m.logger.WarnContext(ctx, "keygate: recording last-used times failed; will retry", "error", err)
			}
			cancel()
		}
	}
}

// watch follows a change feed until ctx ends, reconnecting with backoff.
// After a feed failure the whole cache is dropped, since changes may have
// been missed.
func (m *Manager) watch(ctx context.Context, feed store.ChangeFeed) {
	const minBackoff = 100 * time.Millisecond
	backoff := minBackoff
	for {
		start := time.Now()
		m.feedState.set(nil)
		err := feed.Watch(ctx, m.changed)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("keygate: change feed stopped")
		}
		m.feedState.set(err)
		if time.Since(start) > time.Minute {
			backoff = minBackoff // it had been healthy: retry soon
		}
		m.cache.clear()
		m.unknown.clear()
		m.logger.WarnContext(ctx, "keygate: change feed failed; cache cleared, reconnecting", "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// changed receives a change feed's ids: uuid.Nil means changes may have
// been missed, so every cached key is dropped. Any change also empties the
// negative cache: it may be a key just created (imported) for a token
// remembered as unknown, and the id alone does not tell.
func (m *Manager) changed(id uuid.UUID) {
	if id == uuid.Nil {
		m.cache.clear()
	} else {
		m.cache.invalidate(id)
	}
	m.identChanged(id)
	m.unknown.clear()
}

// publishTimeout bounds how long a change waits for its publication.
const publishTimeout = 2 * time.Second

// invalidate drops a changed key from this process's cache, so the change
// applies from the next request, and publishes the change to the other
// instances when the change feed takes publications.
func (m *Manager) invalidate(ctx context.Context, rec *store.Key) {
	m.cache.invalidate(rec.ID)
	m.publish(ctx, rec.ID)
}

// publish tells the other instances that key id changed, when the change
// feed takes publications.
func (m *Manager) publish(ctx context.Context, id uuid.UUID) {
	if m.publisher == nil {
		return
	}
	// The change is stored: tell the others even if the caller has gone,
	// but never hold the caller for long.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := m.publisher.Publish(pctx, id); err != nil {
		m.logger.WarnContext(ctx, "keygate: publishing a change failed; other instances see it within their cache TTL",
			"key_id", id, "error", err)
	}
}

// Close stops the Manager's background work and writes the queued last-used
// times and usage counts, within ctx. It is safe to call more than once; the Manager must not
// be used for verification after Close.
func (m *Manager) Close(ctx context.Context) error {
	var err error
	m.closeOnce.Do(func() {
		m.stop()
		m.done.Wait()
		err = m.Flush(ctx)
		m.closeTelemetry()
	})
	return err
}

package keygate

import (
	"context"
	"errors"
	"time"

	"github.com/keygate/keygate/store"
)

// NotifyExpiring sends an [EventExpiringSoon] audit event for every key,
// neither revoked nor disabled, that expires within lead of now and was
// not yet notified for its current expiry, and returns how many it sent.
// Each notice is recorded in the key (store.Key.ExpiryNotified) by a write
// guarded by the key's version: of several instances running it at once,
// exactly one sends each notice, and a key given a new expiry is notified
// again before that one. A key changed while it runs is left for the next
// run. The Manager runs it by itself every Config.ExpiryNoticeInterval
// when Config.ExpiryNotice is set.
func (m *Manager) NotifyExpiring(ctx context.Context, lead time.Duration) (int, error) {
	if lead <= 0 {
		return 0, errorf("%w: %w: the lead time must be positive", ErrInvalidRequest, ErrInvalidField)
	}
	now := m.clock()
	opts := store.ListOptions{Revoked: store.OnlyActive, ExpiresAfter: now, ExpiresBefore: now.Add(lead), Limit: store.MaxListLimit}
	sent := 0
	for {
		page, err := m.store.List(ctx, opts)
		if err != nil {
			return sent, m.storeError("list keys expiring soon", err)
		}
		for _, rec := range page.Keys {
			if rec.ExpiryNotified.Equal(rec.ExpiresAt) || !rec.DisabledAt.IsZero() {
				continue
			}
			rec.ExpiryNotified = rec.ExpiresAt
			switch err := m.store.Update(ctx, rec); {
			case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
				continue // another instance sent it, or the key changed: next run
			case err != nil:
				return sent, m.storeError("record an expiry notice", err)
			}
			sent++
			m.auditor.Audit(ctx, Event{Type: EventExpiringSoon, Time: m.now(), KeyID: rec.ID, Hint: rec.Hint,
				Workspace: rec.Workspace, Actor: "system", ExpiresAt: rec.ExpiresAt})
		}
		if page.Next == [16]byte{} {
			return sent, nil
		}
		opts.After = page.Next
	}
}

// noticeLoop runs NotifyExpiring every interval until ctx ends.
func (m *Manager) noticeLoop(ctx context.Context, lead, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			nctx, cancel := context.WithTimeout(ctx, interval)
			if _, err := m.NotifyExpiring(nctx, lead); err != nil {
				m.logger.WarnContext(ctx, "keygate: expiry notices failed; will retry", "error", err)
			}
			cancel()
		}
	}
}

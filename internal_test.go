package keygate

import (
	"maps"
	"time"

	"github.com/google/uuid"
)

// Helpers that let tests look inside a Manager.

// pendingLastUsed returns a copy of the queued last-used times.
func (m *Manager) pendingLastUsed() map[uuid.UUID]time.Time {
	m.lastUsed.mu.Lock()
	defer m.lastUsed.mu.Unlock()
	return maps.Clone(m.lastUsed.pending)
}

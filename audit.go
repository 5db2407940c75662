package keygate

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
)

// EventType names what happened in an audit [Event].
type EventType string

// The audit event types.
const (
	EventCreated     EventType = "key.created"
	EventUpdated     EventType = "key.updated"
	EventRegenerated EventType = "key.regenerated"
	EventRevoked     EventType = "key.revoked"
	EventDeleted     EventType = "key.deleted"
	EventDisabled    EventType = "key.disabled"
	EventEnabled     EventType = "key.enabled"
	// EventImported: a key was brought from another system by
	// Manager.Import.
	EventImported EventType = "key.imported"
	// EventExpiringSoon: the key expires within Config.ExpiryNotice;
	// sent once per key and expiry, across every instance.
	EventExpiringSoon       EventType = "key.expiring_soon"
	EventVerificationFailed EventType = "key.verification_failed"
	// The events of identities are in identity.go: EventIdentityCreated,
	// EventIdentityUpdated, EventIdentityDeleted.
)

// Event is one audit record. It never holds a secret: keys appear by id and
// by their non-secret hint.
type Event struct {
	// Type says what happened.
	Type EventType
	// Time is when it happened, by the Manager's clock.
	Time time.Time
	// KeyID is the key acted on; the zero UUID when unknown (a failed
	// verification of a token that matches no key), or for an event of an
	// identity.
	KeyID uuid.UUID
	// IdentityID, for the events of an identity (identity.created,
	// identity.updated, identity.deleted), is the identity acted on.
	IdentityID uuid.UUID
	// Hint is the key's non-secret display hint, e.g. "kg_7Gq2…".
	Hint string
	// Workspace is the key's workspace.
	Workspace string
	// Actor is the ID of the [Principal] who acted; empty for verification.
	Actor string
	// Reason is why a verification failed: "malformed", "invalid",
	// "expired", "revoked", "usage_exhausted", "unavailable", "rate_limited",
	// "address_denied"; for EventLeaked, what was done; for the
	// EventRevoked of a key imported by SHA-256 that was the shadow of a
	// retired secret (actor "keygate"), "shadow_of_retired_secret".
	Reason string
	// Location, for EventLeaked, is where the token was found.
	Location string
	// ExpiresAt, for EventExpiringSoon, is when the key expires.
	ExpiresAt time.Time
}

// LogValue renders the event for log/slog.
func (e Event) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("type", string(e.Type)), slog.Time("time", e.Time))
	if e.KeyID != uuid.Nil {
		attrs = append(attrs, slog.String("key_id", e.KeyID.String()))
	}
	if e.IdentityID != uuid.Nil {
		attrs = append(attrs, slog.String("identity_id", e.IdentityID.String()))
	}
	if !e.ExpiresAt.IsZero() {
		attrs = append(attrs, slog.Time("expires_at", e.ExpiresAt))
	}
	for _, a := range []slog.Attr{slog.String("hint", e.Hint), slog.String("workspace", e.Workspace), slog.String("actor", e.Actor),
		slog.String("reason", e.Reason), slog.String("location", e.Location)} {
		if a.Value.String() != "" {
			attrs = append(attrs, a)
		}
	}
	return slog.GroupValue(attrs...)
}

// Auditor receives audit events. Audit is called synchronously on the path
// that caused the event, from many goroutines at once: implementations must
// be safe for concurrent use and quick (hand slow work to a queue).
type Auditor interface {
	Audit(ctx context.Context, e Event)
}

// SlogAuditor writes audit events to a [slog.Logger]: failed verifications
// at Warn, everything else at Info. It is the [Manager]'s default, and safe
// for concurrent use.
//
// Failed verifications come at whatever rate clients send bad tokens, so an
// attacker could otherwise fill the logs. At most a set number of them is
// written per second (by the events' time); the next one written carries,
// as "suppressed", how many were left out before it. Management events
// (created, updated, regenerated, revoked, deleted) are always written.
type SlogAuditor struct {
	logger    *slog.Logger
	perSecond int64

	mu         sync.Mutex
	second     int64 // the Unix second being counted
	written    int64 // failures written in that second
	suppressed int64 // failures left out since the last one written
}

// NewSlogAuditor returns a SlogAuditor writing to logger at most
// failuresPerSecond failed-verification events per second; zero or less
// writes them all.
func NewSlogAuditor(logger *slog.Logger, failuresPerSecond int) *SlogAuditor {
	return &SlogAuditor{logger: logger, perSecond: int64(failuresPerSecond)}
}

// Audit logs e, unless it is a failed verification over the per-second
// budget.
func (a *SlogAuditor) Audit(ctx context.Context, e Event) {
	if e.Type != EventVerificationFailed {
		a.logger.LogAttrs(ctx, slog.LevelInfo, "keygate audit", slog.Any("event", e))
		return
	}
	suppressed, ok := a.admit(e.Time.Unix())
	if !ok {
		return
	}
	attrs := []slog.Attr{slog.Any("event", e)}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	a.logger.LogAttrs(ctx, slog.LevelWarn, "keygate audit", attrs...)
}

// admit counts a failure in second and reports whether to write it, with
// the number left out before it.
func (a *SlogAuditor) admit(second int64) (suppressed int64, ok bool) {
	if a.perSecond <= 0 {
		return 0, true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if second != a.second {
		a.second, a.written = second, 0
	}
	if a.written >= a.perSecond {
		a.suppressed++
		return 0, false
	}
	a.written++
	suppressed, a.suppressed = a.suppressed, 0
	return suppressed, true
}

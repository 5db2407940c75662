package keygate

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// EventType names what happened in an audit [Event].
type EventType string

// The audit event types.
const (
	EventCreated            EventType = "key.created"
	EventUpdated            EventType = "key.updated"
	EventRegenerated        EventType = "key.regenerated"
	EventRevoked            EventType = "key.revoked"
	EventDeleted            EventType = "key.deleted"
	EventVerificationFailed EventType = "key.verification_failed"
)

// Event is one audit record. It never holds a secret: keys appear by id and
// by their non-secret hint.
type Event struct {
	// Type says what happened.
	Type EventType
	// Time is when it happened, by the Manager's clock.
	Time time.Time
	// KeyID is the key acted on; the zero UUID when unknown (a failed
	// verification of a token that matches no key).
	KeyID uuid.UUID
	// Hint is the key's non-secret display hint, e.g. "kg_7Gq2…".
	Hint string
	// Workspace is the key's workspace.
	Workspace string
	// Actor is the ID of the [Principal] who acted; empty for verification.
	Actor string
	// Reason is why a verification failed: "malformed", "invalid",
	// "expired", "revoked", "usage_exhausted", "unavailable", "rate_limited",
	// "address_denied".
	Reason string
}

// LogValue renders the event for log/slog.
func (e Event) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String("type", string(e.Type)), slog.Time("time", e.Time))
	if e.KeyID != uuid.Nil {
		attrs = append(attrs, slog.String("key_id", e.KeyID.String()))
	}
	for _, a := range []slog.Attr{slog.String("hint", e.Hint), slog.String("workspace", e.Workspace), slog.String("actor", e.Actor), slog.String("reason", e.Reason)} {
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
// at Warn, everything else at Info. It is the [Manager]'s default.
type SlogAuditor struct {
	Logger *slog.Logger
}

// Audit logs e.
func (a SlogAuditor) Audit(ctx context.Context, e Event) {
	level := slog.LevelInfo
	if e.Type == EventVerificationFailed {
		level = slog.LevelWarn
	}
	a.Logger.LogAttrs(ctx, level, "keygate audit", slog.Any("event", e))
}

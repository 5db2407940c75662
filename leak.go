package keygate

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store"
)

// EventLeaked is the audit event of a key's token reported exposed, by a
// secret scanner for example; its Reason says what was done ("revoked",
// "grace_ended", "reported", "inactive") and its Location where the token
// was found.
const EventLeaked EventType = "key.leaked"

// Leak is a token found exposed, as a secret scanner reports it (GitHub's
// secret scanning partner program, for one).
type Leak struct {
	// Token is the token found.
	Token string
	// Reporter names who found it, such as "github".
	Reporter string
	// URL is where it was found, and Source what kind of place that is
	// (GitHub: "content", "commit", "pull_request", ...).
	URL, Source string
}

// LeakOutcome is what [Manager.HandleLeak] found and did.
type LeakOutcome int

// The outcomes of [Manager.HandleLeak].
const (
	// LeakNotOurs: not a well-formed token of this Manager (wrong shape,
	// prefix or checksum). No lookup was made.
	LeakNotOurs LeakOutcome = iota
	// LeakUnknown: well formed, but no key has it.
	LeakUnknown
	// LeakInactive: the token is a key's, but no longer works (revoked,
	// expired, or an old secret past its grace period): nothing to do.
	LeakInactive
	// LeakRevoked: a working key's token; the key is now revoked (or, for
	// the old secret of a grace period, the grace period ended at once,
	// so the key's current secret keeps working).
	LeakRevoked
	// LeakReported: a working key's token, left working because the
	// caller asked only to report it.
	LeakReported
)

// Real reports whether the token is, or was, one of this Manager's keys:
// a true positive for the scanner.
func (o LeakOutcome) Real() bool { return o >= LeakInactive }

// String names the outcome.
func (o LeakOutcome) String() string {
	switch o {
	case LeakNotOurs:
		return "not_ours"
	case LeakUnknown:
		return "unknown"
	case LeakInactive:
		return "inactive"
	case LeakRevoked:
		return "revoked"
	case LeakReported:
		return "reported"
	}
	return fmt.Sprintf("LeakOutcome(%d)", int(o))
}

// HandleLeak acts on a token reported exposed. A token that is not well
// formed for this Manager is [LeakNotOurs] without any lookup, so garbage
// costs nothing. Otherwise the key is looked up by the token's hash, as a
// verification would, but without counting a use, recording a last use
// or filling the cache. A working key is revoked at once when revoke is
// true ([LeakRevoked]; when the token is the previous secret of a
// regeneration's grace period, only that grace period ends), or left
// working ([LeakReported]). Either way an [EventLeaked] audit event
// records where the token was found; the actor is "scanner:" and the
// reporter. The error is only ever a store failure ([ErrUnavailable]).
func (m *Manager) HandleLeak(ctx context.Context, l Leak, revoke bool) (LeakOutcome, error) {
	tok, err := m.format.Parse(l.Token)
	if err != nil {
		return LeakNotOurs, nil
	}
	rec, _, viaPrev, err := m.findToken(ctx, tok)
	switch {
	case err != nil:
		return LeakUnknown, errorf("keygate: handle leak: %w", err)
	case rec == nil:
		return LeakUnknown, nil
	}
	now := m.clock()
	actor := Principal{ID: "scanner:" + l.Reporter, SuperAdmin: true}
	outcome := LeakReported
	switch {
	case !rec.RevokedAt.IsZero(), !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt),
		viaPrev && !now.Before(rec.PrevExpiresAt):
		outcome = LeakInactive
	case !revoke:
	case viaPrev:
		// The old secret of a grace period leaked: end the grace period;
		// the holder of the new secret is not affected.
		if _, err := m.mutate(ctx, actor, rec.ID, 0, EventUpdated, "", false, func(k *store.Key, _ time.Time) error {
			if !apikey.Equal(k.PrevHash, rec.PrevHash) {
				return errUnchanged // regenerated or revoked meanwhile
			}
			k.PrevHash, k.PrevPepperID, k.PrevExpiresAt = nil, "", time.Time{}
			return nil
		}); err != nil {
			return LeakUnknown, err
		}
		outcome = LeakRevoked
	default:
		if _, err := m.Revoke(ctx, actor, rec.ID); err != nil {
			return LeakUnknown, err
		}
		outcome = LeakRevoked
	}
	reason := outcome.String()
	if outcome == LeakRevoked && viaPrev {
		reason = "grace_ended"
	}
	e := Event{Type: EventLeaked, Time: m.now(), KeyID: rec.ID, Hint: rec.Hint, Workspace: rec.Workspace,
		Actor: actor.ID, Reason: reason, Location: location(l)}
	m.auditor.Audit(ctx, e)
	return outcome, nil
}

// location describes where a leak was found, for the audit event.
func location(l Leak) string {
	switch {
	case l.URL != "" && l.Source != "":
		return l.URL + " (" + l.Source + ")"
	case l.URL != "":
		return l.URL
	}
	return l.Source
}

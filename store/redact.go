package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// redacted stands for a hash or a pepper id in printed keys.
const redacted = "[REDACTED]"

// keyView is what a printed Key shows: every field, but its hashes and
// pepper ids, which do not belong in logs, only as [REDACTED]. (Peppered
// hashes are not tokens, yet a leaked log should not hand anyone the
// material to test guessed tokens against.)
type keyView struct {
	ID             uuid.UUID
	Name           string
	Description    string
	Owner          string
	Workspace      string
	Role           string
	Scopes         []string
	Metadata       map[string]string
	IdentityID     uuid.UUID
	Hash           string
	PepperID       string
	PrevHash       string
	PrevPepperID   string
	PrevExpiresAt  time.Time
	Hint           string
	RateLimit      int
	RateWindow     time.Duration
	RateLimits     []RateLimit
	RemainingUses  any // nil or the int64, not a pointer
	Refill         any // nil or the Refill, not a pointer
	RefilledAt     time.Time
	AllowedCIDRs   []netip.Prefix
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ExpiresAt      time.Time
	LastUsedAt     time.Time
	RevokedAt      time.Time
	DisabledAt     time.Time
	ExpiryNotified time.Time
	Version        int64
}

// view returns k as printed.
func (k *Key) view() keyView {
	v := keyView{
		ID: k.ID, Name: k.Name, Description: k.Description, Owner: k.Owner, Workspace: k.Workspace,
		Role: k.Role, Scopes: k.Scopes, Metadata: k.Metadata, IdentityID: k.IdentityID,
		Hash: mask(len(k.Hash) > 0), PepperID: mask(k.PepperID != ""),
		PrevHash: mask(len(k.PrevHash) > 0), PrevPepperID: mask(k.PrevPepperID != ""), PrevExpiresAt: k.PrevExpiresAt,
		Hint: k.Hint, RateLimit: k.RateLimit, RateWindow: k.RateWindow, RateLimits: k.RateLimits,
		RefilledAt: k.RefilledAt, AllowedCIDRs: k.AllowedCIDRs,
		CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt, ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt,
		RevokedAt: k.RevokedAt, DisabledAt: k.DisabledAt, ExpiryNotified: k.ExpiryNotified, Version: k.Version,
	}
	if k.RemainingUses != nil {
		v.RemainingUses = *k.RemainingUses
	}
	if k.Refill != nil {
		v.Refill = *k.Refill
	}
	return v
}

// mask returns redacted when set, else "".
func mask(set bool) string {
	if set {
		return redacted
	}
	return ""
}

// Format prints k for every verb of package fmt (%v, %+v, %#v, %s...) with
// Hash, PepperID, PrevHash and PrevPepperID shown as [REDACTED] when set.
// The other fields print as they are; RemainingUses and Refill print their
// values, not pointers.
func (k Key) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), k.view())
}

// LogValue renders k for log/slog without its hashes and pepper ids: its
// id, name, workspace, owner, role, hint, identity, expiry, revocation
// and version.
func (k Key) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("id", k.ID.String()), slog.String("name", k.Name)}
	for _, a := range []slog.Attr{slog.String("workspace", k.Workspace), slog.String("owner", k.Owner),
		slog.String("role", k.Role), slog.String("hint", k.Hint)} {
		if a.Value.String() != "" {
			attrs = append(attrs, a)
		}
	}
	if k.IdentityID != uuid.Nil {
		attrs = append(attrs, slog.String("identity_id", k.IdentityID.String()))
	}
	if !k.ExpiresAt.IsZero() {
		attrs = append(attrs, slog.Time("expires_at", k.ExpiresAt))
	}
	if !k.RevokedAt.IsZero() {
		attrs = append(attrs, slog.Time("revoked_at", k.RevokedAt))
	}
	if !k.DisabledAt.IsZero() {
		attrs = append(attrs, slog.Time("disabled_at", k.DisabledAt))
	}
	return slog.GroupValue(append(attrs, slog.Int64("version", k.Version))...)
}

// MarshalJSON encodes k as a JSON object of its fields, with Hash,
// PepperID, PrevHash and PrevPepperID as "[REDACTED]" when set, so that a
// key dumped into a log or a response never shows them. It is therefore
// not a storage format: a store that keeps keys as JSON encodes a type of
// its own (examples/customstore's filestore does), and storetest's round
// trip catches one that does not.
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(k.view())
}

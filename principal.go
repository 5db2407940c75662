package keygate

import (
	"net/netip"
	"slices"
	"time"

	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// Principal is who acts on the [Manager]: a verified key, a signed-in user,
// or the application itself ([System]). It is a plain value; its fields
// decide what it may do:
//
//   - SuperAdmin is allowed everything, in every workspace.
//   - Otherwise Permissions must allow the action, and when Workspace is set
//     the principal acts only inside that workspace.
//
// A principal can never create or widen a key beyond what it holds itself:
// not in permissions, nor in workspace, nor in lifetime (ExpiresAt), nor in
// limits (Limits). The last two bind super admins too.
type Principal struct {
	// ID names the actor in audit events, e.g. "user:alice" or "key:<uuid>".
	ID string
	// Permissions are what the principal holds.
	Permissions permission.Set
	// Workspace, when set, confines the principal to one workspace.
	Workspace string
	// SuperAdmin allows everything.
	SuperAdmin bool
	// ExpiresAt, when set, is when the principal stops working: the keys it
	// creates, and the expiries it sets, may not outlive it.
	ExpiresAt time.Time
	// Limits are the principal's own limits, when it is a limited key (as
	// of its verification): keys it creates, and limits it sets, must be
	// at least as strict.
	Limits Limits
}

// System returns the all-powerful principal for the application's own
// trusted calls, such as a bootstrap script creating the first admin key.
func System() Principal {
	return Principal{ID: "system", SuperAdmin: true}
}

// Allows reports whether the principal holds p in workspace ("" when the
// resource belongs to no workspace). A principal bound to a workspace is
// allowed nothing outside it. It allocates nothing.
func (p *Principal) Allows(perm permission.Permission, workspace string) bool {
	if p.SuperAdmin {
		return true
	}
	if p.Workspace != "" && p.Workspace != workspace {
		return false
	}
	return p.Permissions.Allows(perm)
}

// covers reports whether p holds everything q holds, in every workspace q
// can act in: the privilege-escalation guard.
func (p *Principal) covers(q *Principal) bool {
	if p.SuperAdmin {
		return true
	}
	if q.SuperAdmin {
		return false
	}
	if p.Workspace != "" && p.Workspace != q.Workspace {
		return false
	}
	return p.Permissions.Covers(q.Permissions)
}

// bounds reports whether p may give a key the lifetime and limits of
// after. before is the key's state before the change, or nil for a new
// key. With full, or for a new key, the whole lifetime and limits are
// checked: a regeneration hands the caller a new token, and a change of
// permissions makes a new key in all but id. Otherwise only what changes
// is checked, so a limited principal may still, say, rename a key it
// covers. A usage-limited principal never raises a key's uses.
func (p *Principal) bounds(before, after *store.Key, full bool) bool {
	full = full || before == nil
	if full || !before.ExpiresAt.Equal(after.ExpiresAt) {
		if !p.ExpiresAt.IsZero() && (after.ExpiresAt.IsZero() || after.ExpiresAt.After(p.ExpiresAt)) {
			return false
		}
	}
	if full || !sameLimits(limitsOf(before), limitsOf(after)) {
		if !p.Limits.boundsLimits(limitsOf(after)) {
			return false
		}
	}
	if p.Limits.Uses != nil && before != nil && before.RemainingUses != nil &&
		(after.RemainingUses == nil || *after.RemainingUses > *before.RemainingUses) {
		return false
	}
	return true
}

// boundsLimits reports whether q is at least as strict as l in every limit
// l sets.
func (l Limits) boundsLimits(q Limits) bool {
	if l.Rate.Requests > 0 {
		if q.Rate.Requests <= 0 || q.Rate.Requests > l.Rate.Requests ||
			float64(q.Rate.Requests)*float64(l.Rate.Window) > float64(l.Rate.Requests)*float64(q.Rate.Window) {
			return false
		}
	}
	if l.Uses != nil && (q.Uses == nil || *q.Uses > *l.Uses) {
		return false
	}
	if len(l.AllowedCIDRs) > 0 {
		if len(q.AllowedCIDRs) == 0 {
			return false
		}
		for _, inner := range q.AllowedCIDRs {
			if !slices.ContainsFunc(l.AllowedCIDRs, func(outer netip.Prefix) bool {
				return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
			}) {
				return false
			}
		}
	}
	return true
}

// limitsOf returns the limits kept in rec.
func limitsOf(rec *store.Key) Limits {
	return Limits{
		Rate:         RateLimit{Requests: rec.RateLimit, Window: rec.RateWindow},
		Uses:         rec.RemainingUses,
		AllowedCIDRs: rec.AllowedCIDRs,
	}
}

// sameLimits reports whether a and b are the same limits.
func sameLimits(a, b Limits) bool {
	return a.Rate == b.Rate && slices.Equal(a.AllowedCIDRs, b.AllowedCIDRs) &&
		(a.Uses == nil) == (b.Uses == nil) && (a.Uses == nil || *a.Uses == *b.Uses)
}

// Key is a verified API key: its stored record and the permissions it
// resolves to (its role's permissions plus its scopes). A Key returned by
// [Manager.Verify] may be shared with other requests and must not be
// modified; it is safe for concurrent reads.
type Key struct {
	store.Key
	principal Principal
	// state is the key's rate limiter and last-used bookkeeping, shared by
	// every cached copy of the key in this process.
	state *keyState
}

// Principal returns the key as a principal, to act on the [Manager] on its
// own behalf (for example, a key that creates other keys).
func (k *Key) Principal() Principal {
	return k.principal
}

// Permissions returns the key's effective permissions: its role's and its
// scopes. The set must not be modified.
func (k *Key) Permissions() permission.Set {
	return k.principal.Permissions
}

// SuperAdmin reports whether the key's role is a super-admin role.
func (k *Key) SuperAdmin() bool {
	return k.principal.SuperAdmin
}

// Allows reports whether the key holds p in workspace ("" for a resource
// outside any workspace). A key bound to a workspace is allowed nothing
// outside it. It allocates nothing.
func (k *Key) Allows(p permission.Permission, workspace string) bool {
	return k.principal.Allows(p, workspace)
}

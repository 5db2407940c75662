package keygate

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"

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

	// keyID and keyHash identify the key and the secret (its stored hash)
	// a principal taken from a verified key acts with; oldSecret marks
	// the previous secret of a grace period. The Manager re-checks them
	// on every management call: see [Key.Principal].
	keyID     uuid.UUID
	keyHash   []byte
	oldSecret bool
}

// principalView is what a printed Principal shows: its exported fields,
// not the hash of the secret it acts with.
type principalView struct {
	ID          string
	Permissions permission.Set
	Workspace   string
	SuperAdmin  bool
	ExpiresAt   time.Time
	Limits      Limits
}

// Format prints p for every verb of package fmt with its exported fields
// only: never the stored hash of the key it was taken from.
func (p Principal) Format(f fmt.State, verb rune) {
	v := principalView{ID: p.ID, Permissions: p.Permissions, Workspace: p.Workspace,
		SuperAdmin: p.SuperAdmin, ExpiresAt: p.ExpiresAt, Limits: p.Limits}
	fmt.Fprintf(f, fmt.FormatString(f, verb), v)
}

// LogValue renders p for log/slog: its id, workspace, super-admin status
// and permissions.
func (p Principal) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("id", p.ID)}
	if p.Workspace != "" {
		attrs = append(attrs, slog.String("workspace", p.Workspace))
	}
	if p.SuperAdmin {
		attrs = append(attrs, slog.Bool("super_admin", true))
	}
	return slog.GroupValue(append(attrs, slog.String("permissions", p.Permissions.String()))...)
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

// deny returns nil if p holds perm in workspace, or the refusal saying
// why not.
func (p *Principal) deny(perm permission.Permission, workspace string) *DeniedError {
	if p.Allows(perm, workspace) {
		return nil
	}
	if p.Workspace != "" && p.Workspace != workspace {
		return &DeniedError{Actor: p.ID, Reason: DeniedWorkspace, Workspace: workspace}
	}
	return &DeniedError{Actor: p.ID, Reason: DeniedPermission, Permission: perm.String(), Workspace: workspace}
}

// coverage returns nil if p holds everything q holds, in every workspace q
// can act in (the privilege-escalation guard), or the refusal naming what
// p lacks.
func (p *Principal) coverage(q *Principal) *DeniedError {
	switch {
	case p.SuperAdmin:
		return nil
	case q.SuperAdmin:
		return &DeniedError{Actor: p.ID, Reason: DeniedSuperAdmin, Workspace: q.Workspace}
	case p.Workspace != "" && p.Workspace != q.Workspace:
		return &DeniedError{Actor: p.ID, Reason: DeniedWorkspace, Workspace: q.Workspace}
	}
	if missing, ok := p.Permissions.Missing(q.Permissions); ok {
		return &DeniedError{Actor: p.ID, Reason: DeniedPermission, Permission: missing.String(), Workspace: q.Workspace}
	}
	return nil
}

// bounds returns nil if p may give a key the lifetime and limits of after,
// or the refusal naming the bound. before is the key's state before the
// change, or nil for a new key. With full, or for a new key, the whole
// lifetime and limits are checked: a regeneration hands the caller a new
// token, and a change of permissions makes a new key in all but id.
// Otherwise only what changes is checked, so a limited principal may
// still, say, rename a key it covers. A usage-limited principal never
// raises a key's uses.
func (p *Principal) bounds(before, after *store.Key, full bool) *DeniedError {
	full = full || before == nil
	if full || !before.ExpiresAt.Equal(after.ExpiresAt) {
		if !p.ExpiresAt.IsZero() && (after.ExpiresAt.IsZero() || after.ExpiresAt.After(p.ExpiresAt)) {
			return &DeniedError{Actor: p.ID, Reason: DeniedLifetime, Workspace: after.Workspace, LatestExpiry: p.ExpiresAt}
		}
	}
	if full || !sameLimits(limitsOf(before), limitsOf(after)) {
		if limit := p.Limits.looser(limitsOf(after)); limit != "" {
			return &DeniedError{Actor: p.ID, Reason: DeniedLimit, Workspace: after.Workspace, Limit: limit}
		}
	}
	if p.Limits.Uses != nil && before != nil && before.RemainingUses != nil &&
		(after.RemainingUses == nil || *after.RemainingUses > *before.RemainingUses) {
		return &DeniedError{Actor: p.ID, Reason: DeniedLimit, Workspace: after.Workspace, Limit: LimitUses}
	}
	return nil
}

// looser returns the name of the first limit that l sets and q does not
// hold at least as strictly (LimitRate, LimitUses, LimitAllowedCIDRs), or
// "" when q is at least as strict as l in every one.
func (l Limits) looser(q Limits) string {
	if l.Rate.Requests > 0 {
		if q.Rate.Requests <= 0 || q.Rate.Requests > l.Rate.Requests ||
			float64(q.Rate.Requests)*float64(l.Rate.Window) > float64(l.Rate.Requests)*float64(q.Rate.Window) {
			return LimitRate
		}
	}
	if l.Uses != nil && (q.Uses == nil || *q.Uses > *l.Uses) {
		return LimitUses
	}
	if len(l.AllowedCIDRs) > 0 {
		if len(q.AllowedCIDRs) == 0 {
			return LimitAllowedCIDRs
		}
		for _, inner := range q.AllowedCIDRs {
			if !slices.ContainsFunc(l.AllowedCIDRs, func(outer netip.Prefix) bool {
				return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
			}) {
				return LimitAllowedCIDRs
			}
		}
	}
	return ""
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
	// touched is when this copy's use was last queued for recording
	// (Unix nanoseconds, read and written atomically). First, so that it
	// is 64-bit aligned on 32-bit platforms too.
	touched int64
	// grant is what the key resolves to, shared by the keys that resolve
	// to the same (see grant.go); nil only in a zero Key. It and touched
	// share the Key's first cache line with state and viaPrev.
	grant *grant
	// state is the key's rate limiter, shared by every cached copy of the
	// key in this process; nil for a key without a rate limit.
	state *keyState
	// usage counts the key's verifications, shared by every cached copy
	// of the key in this process; nil when the Manager counts none (and
	// for a Key from NewKey).
	usage *usageCounter
	// viaPrev records that this Key was verified with the record's
	// previous secret, valid until PrevExpiresAt.
	viaPrev bool
	store.Key
}

// NewKey returns a Key for a record verified elsewhere, such as by a
// remote keygate token service: package client's Verifier builds the keys
// it returns with it. perms are the permissions the key resolves to (its
// role's and its scopes') and superAdmin whether its role is a super
// admin's; [Key.Principal], [Key.Permissions] and [Key.Allows] follow from
// them and from rec's workspace, expiry and limits. rec and perms are
// copied.
//
// A Manager's own keys come from [Manager.Verify]; a Key from NewKey is
// known to no Manager, and a Manager never counts its uses.
func NewKey(rec *store.Key, perms permission.Set, superAdmin bool) *Key {
	r := rec.Clone()
	return &Key{Key: *r, grant: &grant{perms: slices.Clone(perms), superAdmin: superAdmin}}
}

// Principal returns the key as a principal, to act on the [Manager] on its
// own behalf (for example, a key that creates other keys).
//
// The principal is bound to the key as it is in the store, not as it was
// when verified: on every management call (Create, Get, List, Update,
// Regenerate, Revoke, Delete) the Manager reads the key's record again and
// refuses the principal ([DeniedInactive]) once the key is revoked,
// deleted, expired, or its secret replaced by a regeneration, and acts
// with the key's current permissions, workspace, expiry and limits
// (the uses left after the requests already made). A principal kept by
// application code therefore loses its power with its key. Only
// [Manager.VerifyFor] and [Manager.ListRoles], which change nothing, take
// the principal as it was verified. A principal acting with a key's
// previous secret, during a regeneration's grace period, may view and
// verify keys but change none ([DeniedOldSecret]): the holder of the new
// secret cannot be locked out by the old one.
func (k *Key) Principal() Principal {
	return k.grant.principal(&k.Key)
}

// withUses returns a copy of k, for one request, with n uses left.
func (k *Key) withUses(n int64) *Key {
	c := &Key{Key: k.Key, grant: k.grant, state: k.state, usage: k.usage, viaPrev: k.viaPrev}
	c.RemainingUses = &n
	if g := k.grant; g != nil && g.full != nil {
		// A grant of its own holds the whole Principal, limits included.
		full := *g.full
		full.Limits.Uses = &n
		c.grant = &grant{perms: g.perms, superAdmin: g.superAdmin, full: &full, managed: g.managed}
	}
	return c
}

// Permissions returns the key's effective permissions: its role's and its
// scopes. The set must not be modified.
func (k *Key) Permissions() permission.Set {
	if k.grant == nil {
		return nil
	}
	return k.grant.perms
}

// SuperAdmin reports whether the key's role is a super-admin role.
func (k *Key) SuperAdmin() bool {
	return k.grant != nil && k.grant.superAdmin
}

// Allows reports whether the key holds p in workspace ("" for a resource
// outside any workspace). A key bound to a workspace is allowed nothing
// outside it. It allocates nothing.
func (k *Key) Allows(p permission.Permission, workspace string) bool {
	return k.grant.allows(&k.Key, p, workspace)
}

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
// limits (Limits and IdentityLimits), nor give an identity looser limits
// than its own. The last two bind super admins too.
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
	// IdentityLimits are the limits of the identity the principal's key
	// belongs to, which bind it as its own do: the keys and identities it
	// creates or changes must be at least as strict as both together.
	// The Manager reads them on every management call of a principal taken
	// from a key ([Key.Principal] leaves them empty).
	IdentityLimits IdentityLimits

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
	ID             string
	Permissions    permission.Set
	Workspace      string
	SuperAdmin     bool
	ExpiresAt      time.Time
	Limits         Limits
	IdentityLimits IdentityLimits
}

// Format prints p for every verb of package fmt with its exported fields
// only: never the stored hash of the key it was taken from.
func (p Principal) Format(f fmt.State, verb rune) {
	v := principalView{ID: p.ID, Permissions: p.Permissions, Workspace: p.Workspace,
		SuperAdmin: p.SuperAdmin, ExpiresAt: p.ExpiresAt, Limits: p.Limits, IdentityLimits: p.IdentityLimits}
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
// change, or nil for a new key; identity holds the limits of after's
// identity, which count as the key's (read only when needed: see
// Manager.keyBounds). With full, for a new key, or for a key moved to
// another identity, the whole lifetime and limits are checked: a
// regeneration hands the caller a new token, and a change of permissions
// makes a new key in all but id. Otherwise only what changes is checked,
// so a limited principal may still, say, rename a key it covers. A
// principal drawing on uses or credits never raises a key's uses.
func (p *Principal) bounds(before, after *store.Key, identity IdentityLimits, full bool) *DeniedError {
	full = full || before == nil || before.IdentityID != after.IdentityID
	if full || !before.ExpiresAt.Equal(after.ExpiresAt) {
		if !p.ExpiresAt.IsZero() && (after.ExpiresAt.IsZero() || after.ExpiresAt.After(p.ExpiresAt)) {
			return &DeniedError{Actor: p.ID, Reason: DeniedLifetime, Workspace: after.Workspace, LatestExpiry: p.ExpiresAt}
		}
	}
	if full || !sameLimits(limitsOf(before), limitsOf(after)) {
		own, theirs := p.bound(), boundOf(limitsOf(after), identity)
		if limit := own.looser(&theirs, true); limit != "" {
			return &DeniedError{Actor: p.ID, Reason: DeniedLimit, Workspace: after.Workspace, Limit: limit}
		}
	}
	if p.drawsCredits() && before != nil && before.RemainingUses != nil &&
		(after.RemainingUses == nil || *after.RemainingUses > *before.RemainingUses) {
		return &DeniedError{Actor: p.ID, Reason: DeniedLimit, Workspace: after.Workspace, Limit: LimitUses}
	}
	return nil
}

// identityBounds returns nil if p may give an identity the limits after
// (before, nil for a new identity, being its limits until now), or the
// refusal naming the limit: they must be at least as strict as p's own
// rate limits, uses and credits (an identity holds no IP allow-list, which
// its keys hold themselves), and a principal drawing on uses or credits
// never raises an identity's balance.
func (p *Principal) identityBounds(before *IdentityLimits, after IdentityLimits) *DeniedError {
	own, theirs := p.bound(), boundOf(Limits{}, after)
	if limit := own.looser(&theirs, false); limit != "" {
		return &DeniedError{Actor: p.ID, Reason: DeniedLimit, Limit: limit}
	}
	if p.drawsCredits() && before != nil && before.Credits != nil &&
		(after.Credits == nil || after.Credits.Remaining > before.Credits.Remaining) {
		return &DeniedError{Actor: p.ID, Reason: DeniedLimit, Limit: LimitCredits}
	}
	return nil
}

// limited reports whether p has any limit that bounds what it may give.
func (p *Principal) limited() bool {
	return p.Limits.Rate.Requests > 0 || len(p.Limits.RateLimits) > 0 || p.Limits.Uses != nil ||
		len(p.Limits.AllowedCIDRs) > 0 || !p.IdentityLimits.empty()
}

// drawsCredits reports whether p's requests draw on uses or credits.
func (p *Principal) drawsCredits() bool {
	return p.Limits.Uses != nil || p.IdentityLimits.Credits != nil
}

// bound returns p's limits, its own and its identity's, as the privilege
// checks compare them.
func (p *Principal) bound() bound {
	return boundOf(p.Limits, p.IdentityLimits)
}

// bound is a set of limits as the privilege checks compare them: those of
// a principal, or of a key or identity it creates or changes, a key's own
// and its identity's together. Each side is compared by the shape of its
// limits, not by the counters they are kept in: two keys with the same
// rate limit each get that many requests.
type bound struct {
	// always are the rate limits that apply to every verification (a
	// key's own among them); onDemand those that apply to the
	// verifications naming them.
	always, onDemand []RateLimit
	// pools are the balances drawn from: a key's uses, an identity's
	// credits.
	pools []pool
	// cidrs is the IP allow-list; empty allows any address.
	cidrs []netip.Prefix
}

// pool is one balance of a bound.
type pool struct {
	remaining int64
	refill    *Refill
	// limit names the limit a looser pool fails: LimitUses or
	// LimitCredits.
	limit string
}

// boundOf returns the bound of a key's own limits l and its identity's id.
func boundOf(l Limits, id IdentityLimits) bound {
	var b bound
	if l.Rate.Requests > 0 {
		b.always = append(b.always, l.Rate)
	}
	for _, rls := range [][]RateLimit{l.RateLimits, id.RateLimits} {
		for _, r := range rls {
			if r.OnDemand {
				b.onDemand = append(b.onDemand, r)
			} else {
				b.always = append(b.always, r)
			}
		}
	}
	if l.Uses != nil {
		b.pools = append(b.pools, pool{remaining: *l.Uses, refill: l.Refill, limit: LimitUses})
	}
	if c := id.Credits; c != nil {
		b.pools = append(b.pools, pool{remaining: c.Remaining, refill: c.Refill, limit: LimitCredits})
	}
	b.cidrs = l.AllowedCIDRs
	return b
}

// looser returns the name of the first limit of b that q does not hold at
// least as strictly (LimitRate, LimitUses, LimitCredits,
// LimitAllowedCIDRs), or "" when q is at least as strict as b in every
// one; the IP allow-list only with cidrs. An always-on rate limit of b
// needs one of q's at most as many requests and at most as fast; an
// on-demand one, such a limit of q that is always on or on demand under
// the same name; a balance, one of q's with at most as much left and
// refilled with at most as much per period.
func (b *bound) looser(q *bound, cidrs bool) string {
	for _, l := range b.always {
		if !slices.ContainsFunc(q.always, func(t RateLimit) bool { return rateWithin(t, l) }) {
			return LimitRate
		}
	}
	for _, l := range b.onDemand {
		if !slices.ContainsFunc(q.always, func(t RateLimit) bool { return rateWithin(t, l) }) &&
			!slices.ContainsFunc(q.onDemand, func(t RateLimit) bool { return t.Name == l.Name && rateWithin(t, l) }) {
			return LimitRate
		}
	}
	for _, c := range b.pools {
		if !slices.ContainsFunc(q.pools, func(d pool) bool { return d.remaining <= c.remaining && refillWithin(d.refill, c.refill) }) {
			return c.limit
		}
	}
	if cidrs && len(b.cidrs) > 0 {
		if len(q.cidrs) == 0 {
			return LimitAllowedCIDRs
		}
		for _, inner := range q.cidrs {
			if !slices.ContainsFunc(b.cidrs, func(outer netip.Prefix) bool {
				return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
			}) {
				return LimitAllowedCIDRs
			}
		}
	}
	return ""
}

// rateWithin reports whether rate limit t is at least as strict as l: at
// most as many requests in a burst, and at most as many per unit of time.
func rateWithin(t, l RateLimit) bool {
	return t.Requests <= l.Requests && float64(t.Requests)*float64(l.Window) <= float64(l.Requests)*float64(t.Window)
}

// refillWithin reports whether refill t gives at most what l does: none
// gives nothing; within one period, at most the amount; a daily refill is
// counted as 31 a month, a monthly one as 28 days' worth of a daily one.
func refillWithin(t, l *Refill) bool {
	switch {
	case t == nil:
		return true
	case l == nil:
		return false
	case t.Every == l.Every:
		return t.Amount <= l.Amount
	case t.Every == store.PeriodDay:
		return t.Amount <= l.Amount/31
	}
	return t.Amount <= 28*l.Amount
}

// limitsOf returns the limits kept in rec.
func limitsOf(rec *store.Key) Limits {
	return Limits{
		Rate:         RateLimit{Requests: rec.RateLimit, Window: rec.RateWindow},
		RateLimits:   rec.RateLimits,
		Uses:         rec.RemainingUses,
		Refill:       rec.Refill,
		AllowedCIDRs: rec.AllowedCIDRs,
	}
}

// sameLimits reports whether a and b are the same limits.
func sameLimits(a, b Limits) bool {
	return a.Rate == b.Rate && slices.Equal(a.RateLimits, b.RateLimits) && slices.Equal(a.AllowedCIDRs, b.AllowedCIDRs) &&
		(a.Uses == nil) == (b.Uses == nil) && (a.Uses == nil || *a.Uses == *b.Uses) &&
		(a.Refill == nil) == (b.Refill == nil) && (a.Refill == nil || *a.Refill == *b.Refill)
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
	// meter holds the key's named rate limits and its identity's limits,
	// as its verifications apply them; nil when it has none. It follows
	// the record, off the lines a cached verification reads.
	meter *keyMeter
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
	c := &Key{Key: k.Key, grant: k.grant, state: k.state, usage: k.usage, meter: k.meter, viaPrev: k.viaPrev}
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

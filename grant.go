package keygate

import (
	"bytes"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// grant is what a verified key resolves to beyond its record: its
// permissions (its role's and its scopes') and whether it is a super
// admin. A Manager gives the keys that resolve to the same permissions one
// shared grant, so that a cached key costs its record and two pointers,
// not its own copy of a permission set and of a Principal; the rest of the
// key's Principal (id, workspace, expiry, limits) is read from its record.
//
// A grant is immutable, and so safe for concurrent use.
type grant struct {
	perms      permission.Set
	superAdmin bool
	// full, when set, is the key's whole Principal, for a key whose
	// Principal is not what its record says (the old secret of a grace
	// period expires before the key does). Such a grant is not shared.
	full *Principal
	// managed marks a grant of a Manager's own keys, whose Principals
	// carry the key's id and hash for the Manager to re-check (see
	// Principal.keyID); a key from NewKey has none.
	managed bool
	// reported is the rate status the key was verified with by another
	// service (see Key.WithReportedRate); nil for any other key.
	reported *RateStatus
}

// principal returns the Principal of the key whose record is rec; the zero
// Principal for a nil grant (a zero Key).
func (g *grant) principal(rec *store.Key) Principal {
	switch {
	case g == nil:
		return Principal{}
	case g.full != nil:
		return *g.full
	}
	p := Principal{
		ID:          keyActor(rec.ID),
		Permissions: g.perms,
		Workspace:   rec.Workspace,
		SuperAdmin:  g.superAdmin,
		ExpiresAt:   rec.ExpiresAt,
		Limits:      limitsOf(rec),
	}
	if g.managed {
		p.keyID, p.keyHash = rec.ID, rec.Hash
	}
	return p
}

// keyActor returns the id of key id's principal, "key:<id>", in one
// allocation ("key:" + id.String() makes two): every request to the REST
// API takes its caller's principal.
func keyActor(id uuid.UUID) string {
	const digits = "0123456789abcdef"
	var b [len("key:") + 36]byte
	n := copy(b[:], "key:")
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[n] = '-'
			n++
		}
		b[n], b[n+1] = digits[c>>4], digits[c&0xf]
		n += 2
	}
	return string(b[:])
}

// allows is [Principal.Allows] for the key whose record is rec, without
// building its whole Principal.
func (g *grant) allows(rec *store.Key, perm permission.Permission, workspace string) bool {
	switch {
	case g == nil:
		return false
	case g.full != nil:
		return g.full.Allows(perm, workspace)
	}
	p := Principal{Permissions: g.perms, Workspace: rec.Workspace, SuperAdmin: g.superAdmin}
	return p.Allows(perm, workspace)
}

// maxGrants bounds the number of distinct permission sets a Manager
// shares; keys resolving to others get a grant of their own.
const maxGrants = 4096

// grants interns grants by permission set. It is safe for concurrent use.
type grants struct {
	mu sync.Mutex
	m  map[grantKey]*grant
}

type grantKey struct {
	perms      string // the set's canonical form
	superAdmin bool
}

// get returns the shared grant of perms and superAdmin.
func (gs *grants) get(perms permission.Set, superAdmin bool) *grant {
	k := grantKey{perms.String(), superAdmin}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if g, ok := gs.m[k]; ok {
		return g
	}
	g := &grant{perms: slices.Clone(perms), superAdmin: superAdmin, managed: true}
	if gs.m == nil {
		gs.m = make(map[grantKey]*grant)
	}
	if len(gs.m) < maxGrants {
		gs.m[k] = g
	}
	return g
}

// initKey makes k the verified Key of rec, which resolves to p: a shallow
// copy of rec with a shared grant when p is what rec says, or with p kept
// whole otherwise.
func (m *Manager) initKey(k *Key, rec *store.Key, p *Principal) {
	k.Key = *rec
	if rec.RateLimit > 0 {
		k.state = m.states.get(rec.ID)
	}
	g := &grant{perms: p.Permissions, superAdmin: p.SuperAdmin, managed: true}
	if q := g.principal(rec); samePrincipal(&q, p) {
		k.grant = m.grants.get(p.Permissions, p.SuperAdmin)
	} else {
		full := *p
		g.full = &full
		k.grant = g
	}
}

// samePrincipal reports whether p and q are the same principal. It compares
// every field of Principal (TestSamePrincipalComparesEveryField keeps it
// so).
func samePrincipal(p, q *Principal) bool {
	return p.ID == q.ID && p.Workspace == q.Workspace && p.SuperAdmin == q.SuperAdmin &&
		p.ExpiresAt.Equal(q.ExpiresAt) && p.ExpiresAt.IsZero() == q.ExpiresAt.IsZero() &&
		slices.Equal(p.Permissions, q.Permissions) && sameLimits(p.Limits, q.Limits) &&
		sameIdentityLimits(p.IdentityLimits, q.IdentityLimits) &&
		p.keyID == q.keyID && bytes.Equal(p.keyHash, q.keyHash) && p.oldSecret == q.oldSecret
}

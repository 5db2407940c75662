package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// identities holds a Store's identities. Its fields are guarded by the
// Store's lock; the zero value is empty and ready to use.
type identities struct {
	// byID holds the store's own copy of every identity.
	byID map[uuid.UUID]*store.Identity
	// byExternal indexes the unique (Workspace, ExternalID) pair.
	byExternal map[nameKey]uuid.UUID
	// ids holds every id in ascending byte order, for ListIdentities.
	ids []uuid.UUID
	// keys counts the keys naming each identity.
	keys map[uuid.UUID]int
}

// holds reports whether id is the zero UUID (no identity) or names a
// stored identity. The caller holds the lock.
func (is *identities) holds(id uuid.UUID) bool {
	if id == uuid.Nil {
		return true
	}
	_, ok := is.byID[id]
	return ok
}

// link adds n to the count of keys naming id (nothing for the zero
// UUID). The caller holds the write lock.
func (is *identities) link(id uuid.UUID, n int) {
	if id == uuid.Nil {
		return
	}
	if is.keys == nil {
		is.keys = make(map[uuid.UUID]int)
	}
	if is.keys[id] += n; is.keys[id] <= 0 {
		delete(is.keys, id)
	}
}

// CreateIdentity stores a copy of id with Version 1 and sets id.Version to
// 1. It returns an error wrapping [store.ErrDuplicate] if id's id or
// (Workspace, ExternalID) pair is already used, and writes nothing then.
func (s *Store) CreateIdentity(ctx context.Context, id *store.Identity) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: create identity: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := &s.identities
	if _, ok := is.byID[id.ID]; ok {
		return fmt.Errorf("memory: create identity %s: id: %w", id.ID, store.ErrDuplicate)
	}
	ext := nameKey{id.Workspace, id.ExternalID}
	if _, ok := is.byExternal[ext]; ok {
		return fmt.Errorf("memory: create identity %s: external id %q in workspace %q: %w", id.ID, id.ExternalID, id.Workspace, store.ErrDuplicate)
	}
	if is.byID == nil {
		is.byID = make(map[uuid.UUID]*store.Identity)
		is.byExternal = make(map[nameKey]uuid.UUID)
	}
	c := id.Clone()
	c.Version = 1
	is.byID[c.ID] = c
	is.byExternal[ext] = c.ID
	i, _ := slices.BinarySearchFunc(is.ids, c.ID, compareIDs)
	is.ids = slices.Insert(is.ids, i, c.ID)
	id.Version = 1
	return nil
}

// GetIdentity returns a copy of the identity with the given id, or an
// error wrapping [store.ErrNotFound].
func (s *Store) GetIdentity(ctx context.Context, id uuid.UUID) (*store.Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: get identity: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	cur, ok := s.identities.byID[id]
	if !ok {
		return nil, fmt.Errorf("memory: get identity %s: %w", id, store.ErrNotFound)
	}
	return cur.Clone(), nil
}

// ListIdentities returns copies of the identities matching opts in
// ascending id order, paged as [Store.List] pages keys.
func (s *Store) ListIdentities(ctx context.Context, opts store.IdentityListOptions) (*store.IdentityPage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: list identities: %w", err)
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	limit = min(limit, store.MaxListLimit)
	s.mu.RLock()
	defer s.mu.RUnlock()
	is := &s.identities
	start := 0
	if opts.After != uuid.Nil {
		i, found := slices.BinarySearchFunc(is.ids, opts.After, compareIDs)
		if found {
			i++
		}
		start = i
	}
	page := &store.IdentityPage{Identities: make([]*store.Identity, 0, min(limit, len(is.ids)-start))}
	for _, id := range is.ids[start:] {
		cur := is.byID[id]
		if !opts.Matches(cur) {
			continue
		}
		if len(page.Identities) == limit {
			page.Next = page.Identities[limit-1].ID
			break
		}
		page.Identities = append(page.Identities, cur.Clone())
	}
	return page, nil
}

// UpdateIdentity replaces the stored identity id.ID with a copy of id if
// the stored version equals id.Version, keeping its CreatedAt and
// Workspace, and its credit balance unless balance is true (see
// [store.IdentityStore]); it then sets id.Version to the new version.
func (s *Store) UpdateIdentity(ctx context.Context, id *store.Identity, balance bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: update identity: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := &s.identities
	cur, ok := is.byID[id.ID]
	if !ok {
		return fmt.Errorf("memory: update identity %s: %w", id.ID, store.ErrNotFound)
	}
	if cur.Version != id.Version {
		return fmt.Errorf("memory: update identity %s: version %d, stored %d: %w", id.ID, id.Version, cur.Version, store.ErrConflict)
	}
	ext := nameKey{cur.Workspace, id.ExternalID}
	if other, ok := is.byExternal[ext]; ok && other != id.ID {
		return fmt.Errorf("memory: update identity %s: external id %q in workspace %q: %w", id.ID, id.ExternalID, cur.Workspace, store.ErrDuplicate)
	}
	c := id.Clone()
	c.CreatedAt, c.Workspace = cur.CreatedAt, cur.Workspace
	if !balance && c.Credits != nil && cur.Credits != nil {
		c.Credits.Remaining, c.Credits.RefilledAt = cur.Credits.Remaining, cur.Credits.RefilledAt
	}
	c.Version = cur.Version + 1
	delete(is.byExternal, nameKey{cur.Workspace, cur.ExternalID})
	is.byExternal[ext] = c.ID
	is.byID[c.ID] = c
	id.Version = c.Version
	return nil
}

// DeleteIdentity removes the identity with the given id, or returns an
// error wrapping [store.ErrNotFound], or [store.ErrIdentityInUse] while
// keys name it.
func (s *Store) DeleteIdentity(ctx context.Context, id uuid.UUID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete identity: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := &s.identities
	cur, ok := is.byID[id]
	if !ok {
		return fmt.Errorf("memory: delete identity %s: %w", id, store.ErrNotFound)
	}
	if n := is.keys[id]; n > 0 {
		return fmt.Errorf("memory: delete identity %s: %d keys: %w", id, n, store.ErrIdentityInUse)
	}
	delete(is.byID, id)
	delete(is.byExternal, nameKey{cur.Workspace, cur.ExternalID})
	if i, found := slices.BinarySearchFunc(is.ids, id, compareIDs); found {
		is.ids = slices.Delete(is.ids, i, i+1)
	}
	return nil
}

// SpendCredits takes cost from the credits of identity id at now, after
// a refill that is due (see [store.IdentityStore]). It returns the
// balance left, or the balance that could not pay with an error wrapping
// [store.ErrUsageExhausted], (-1, nil) for an identity without credits,
// or an error wrapping [store.ErrNotFound].
func (s *Store) SpendCredits(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: spend credits: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.identities.byID[id]
	if !ok {
		return 0, fmt.Errorf("memory: spend credits of %s: %w", id, store.ErrNotFound)
	}
	c := cur.Credits
	if c == nil {
		return -1, nil
	}
	left, at, ok := store.Spend(c.Remaining, c.Refill, c.RefilledAt, cost, now)
	if !ok {
		return left, fmt.Errorf("memory: spend %d credits of %s: %d left: %w", cost, id, left, store.ErrUsageExhausted)
	}
	// The store owns cur and its Credits (cloned on the way in and out).
	c.Remaining, c.RefilledAt = left, at
	return left, nil
}

package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

var (
	_ store.Store            = (*Store)(nil)
	_ store.Revoker          = (*Store)(nil)
	_ store.ExerciseRecorder = (*Store)(nil)
	_ store.Retirer          = (*Store)(nil)
	_ store.UsageRecorder    = (*Store)(nil)
	_ store.IdentityStore    = (*Store)(nil)
)

// Store is an in-memory [store.Store], safe for concurrent use by multiple
// goroutines: reads share a read lock, writes take the lock exclusively. It
// is meant for tests and small programs; nothing survives the process.
//
// Keys are copied with [store.Key.Clone] on the way in and out, so callers
// never share memory with the store. [Store.GetByHash] is one map lookup;
// [Store.List] finds its starting point by binary search over the ids kept
// in sorted order. The zero value is an empty store ready to use; [New]
// returns one.
type Store struct {
	mu sync.RWMutex
	// byID holds the store's own copy of every key.
	byID map[uuid.UUID]*store.Key
	// byHash indexes Key.Hash and byPrevHash a non-empty Key.PrevHash,
	// each keyed by string(hash).
	byHash     map[string]uuid.UUID
	byPrevHash map[string][]uuid.UUID
	// byName indexes the unique (Workspace, Name) pair.
	byName map[nameKey]uuid.UUID
	// ids holds every id in ascending byte order, for List.
	ids []uuid.UUID
	// exercises holds each key's recorded exercises.
	exercises map[uuid.UUID]map[exerciseKey]time.Time
	// retired holds the tombstones of retired secrets, keyed by
	// string(hash).
	retired map[string]store.RetiredHash
	// usage holds the usage counts, by subject.
	usage map[usageSubject]map[usageCell]int64
	// identities holds the identities; see identity.go.
	identities identities
}

type nameKey struct{ workspace, name string }

// New returns an empty Store.
func New() *Store {
	s := &Store{}
	s.ensureMaps()
	return s
}

// ensureMaps makes the maps of a zero Store. The caller holds the write lock (or
// owns s exclusively).
func (s *Store) ensureMaps() {
	if s.byID != nil {
		return
	}
	s.byID = make(map[uuid.UUID]*store.Key)
	s.byHash = make(map[string]uuid.UUID)
	s.byPrevHash = make(map[string][]uuid.UUID)
	s.byName = make(map[nameKey]uuid.UUID)
}

// Create stores a copy of k with Version 1 and sets k.Version to 1. It
// returns an error wrapping [store.ErrDuplicate] if k's id, Hash, or
// (Workspace, Name) pair is already used, and writes nothing then. k must
// not be nil.
func (s *Store) Create(ctx context.Context, k *store.Key) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: create: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureMaps()
	if _, ok := s.byID[k.ID]; ok {
		return fmt.Errorf("memory: create %s: id: %w", k.ID, store.ErrDuplicate)
	}
	if _, ok := s.byHash[string(k.Hash)]; ok {
		return fmt.Errorf("memory: create %s: hash: %w", k.ID, store.ErrDuplicate)
	}
	if _, ok := s.byName[nameKey{k.Workspace, k.Name}]; ok {
		return fmt.Errorf("memory: create %s: name %q in workspace %q: %w", k.ID, k.Name, k.Workspace, store.ErrDuplicate)
	}
	if !s.identities.holds(k.IdentityID) {
		return fmt.Errorf("memory: create %s: identity %s: %w", k.ID, k.IdentityID, store.ErrUnknownIdentity)
	}
	c := k.Clone()
	c.Version = 1
	s.byID[c.ID] = c
	s.index(c)
	i, _ := slices.BinarySearchFunc(s.ids, c.ID, compareIDs)
	s.ids = slices.Insert(s.ids, i, c.ID)
	k.Version = 1
	return nil
}

// Get returns a copy of the key with the given id, or an error wrapping
// [store.ErrNotFound].
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: get: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("memory: get %s: %w", id, store.ErrNotFound)
	}
	return k.Clone(), nil
}

// GetByHash returns a copy of the key whose Hash, or whose PrevHash, equals
// hash, or an error wrapping [store.ErrNotFound]. An empty hash matches no
// key. It is one map lookup plus the copy, and does not check expiry or
// revocation.
func (s *Store) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: get by hash: %w", err)
	}
	if len(hash) == 0 {
		return nil, fmt.Errorf("memory: get by hash: %w", store.ErrNotFound)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byHash[string(hash)]
	if !ok {
		// Several keys may share a previous hash: any one will do.
		if ids := s.byPrevHash[string(hash)]; len(ids) > 0 {
			id, ok = ids[0], true
		}
	}
	if !ok {
		return nil, fmt.Errorf("memory: get by hash: %w", store.ErrNotFound)
	}
	return s.byID[id].Clone(), nil
}

// List returns copies of the keys matching opts in ascending id order, at
// most opts.Limit of them (zero or negative means
// [store.DefaultListLimit]; the limit is clamped to [store.MaxListLimit]),
// starting after opts.After, which need not name an existing key. Next is
// set only when a further matching key exists, so the page holding the
// last match has a zero Next. Finding the start costs O(log n); the scan
// then visits keys until the page is full and one more match is seen.
func (s *Store) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: list: %w", err)
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	limit = min(limit, store.MaxListLimit)

	s.mu.RLock()
	defer s.mu.RUnlock()
	start := 0
	if opts.After != (uuid.UUID{}) {
		i, found := slices.BinarySearchFunc(s.ids, opts.After, compareIDs)
		if found {
			i++
		}
		start = i
	}
	page := &store.Page{Keys: make([]*store.Key, 0, min(limit, len(s.ids)-start))}
	for _, id := range s.ids[start:] {
		k := s.byID[id]
		if !opts.Matches(k) {
			continue
		}
		if len(page.Keys) == limit {
			page.Next = page.Keys[limit-1].ID
			break
		}
		page.Keys = append(page.Keys, k.Clone())
	}
	return page, nil
}

// Update replaces the stored key k.ID with a copy of k if the stored
// version equals k.Version, keeping the stored CreatedAt and LastUsedAt; it
// then stores and sets k.Version+1. It returns an error wrapping
// [store.ErrNotFound] for a missing key, [store.ErrConflict] for a stale
// version, and [store.ErrDuplicate] if k's (Workspace, Name) pair or Hash
// belongs to another key; nothing is written then. k must not be nil.
func (s *Store) Update(ctx context.Context, k *store.Key) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: update: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.byID[k.ID]
	if !ok {
		return fmt.Errorf("memory: update %s: %w", k.ID, store.ErrNotFound)
	}
	if cur.Version != k.Version {
		return fmt.Errorf("memory: update %s: version %d, stored %d: %w", k.ID, k.Version, cur.Version, store.ErrConflict)
	}
	if id, ok := s.byName[nameKey{k.Workspace, k.Name}]; ok && id != k.ID {
		return fmt.Errorf("memory: update %s: name %q in workspace %q: %w", k.ID, k.Name, k.Workspace, store.ErrDuplicate)
	}
	if id, ok := s.byHash[string(k.Hash)]; ok && id != k.ID {
		return fmt.Errorf("memory: update %s: hash: %w", k.ID, store.ErrDuplicate)
	}
	if !s.identities.holds(k.IdentityID) {
		return fmt.Errorf("memory: update %s: identity %s: %w", k.ID, k.IdentityID, store.ErrUnknownIdentity)
	}
	c := k.Clone()
	c.CreatedAt = cur.CreatedAt
	c.LastUsedAt = cur.LastUsedAt
	c.Version = cur.Version + 1
	s.unindex(cur)
	s.index(c)
	s.byID[c.ID] = c
	k.Version = c.Version
	return nil
}

// exerciseKey identifies one recorded exercise of a key.
type exerciseKey struct{ permission, workspace string }

// RecordExercises records exercises, keeping the latest time of each (see
// [store.ExerciseRecorder]).
func (s *Store) RecordExercises(ctx context.Context, exercises []store.Exercise) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: record exercises: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exercises == nil {
		s.exercises = make(map[uuid.UUID]map[exerciseKey]time.Time)
	}
	for _, e := range exercises {
		m := s.exercises[e.KeyID]
		if m == nil {
			m = make(map[exerciseKey]time.Time)
			s.exercises[e.KeyID] = m
		}
		k := exerciseKey{e.Permission, e.Workspace}
		if cur, ok := m[k]; !ok || e.At.After(cur) {
			m[k] = e.At
		}
	}
	return nil
}

// Exercises returns the exercises recorded for key id.
func (s *Store) Exercises(ctx context.Context, id uuid.UUID) ([]store.Exercise, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: exercises: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []store.Exercise
	for k, at := range s.exercises[id] {
		out = append(out, store.Exercise{KeyID: id, Permission: k.permission, Workspace: k.workspace, At: at})
	}
	return out, nil
}

// Retire records the hashes as retired, keeping the first record of a
// hash retired before (see [store.Retirer]).
func (s *Store) Retire(ctx context.Context, hashes []store.RetiredHash) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: retire: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired == nil {
		s.retired = make(map[string]store.RetiredHash)
	}
	for _, r := range hashes {
		if _, ok := s.retired[string(r.Hash)]; ok || len(r.Hash) == 0 {
			continue
		}
		r.Hash = bytes.Clone(r.Hash)
		s.retired[string(r.Hash)] = r
	}
	return nil
}

// Retired reports whether any of hashes is retired (see [store.Retirer]).
func (s *Store) Retired(ctx context.Context, hashes ...[]byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory: retired: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, h := range hashes {
		if _, ok := s.retired[string(h)]; ok && len(h) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// Revoke revokes key id at once, whatever its version (see
// [store.Revoker]), and returns it.
func (s *Store) Revoke(ctx context.Context, id uuid.UUID, at time.Time) (*store.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: revoke: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("memory: revoke %s: %w", id, store.ErrNotFound)
	}
	c := cur.Clone()
	if c.RevokedAt.IsZero() {
		c.RevokedAt = at
	}
	c.PrevHash, c.PrevPepperID, c.PrevExpiresAt = nil, "", time.Time{}
	c.UpdatedAt = at
	c.Version++
	s.unindex(cur)
	s.index(c)
	s.byID[id] = c
	return c.Clone(), nil
}

// Delete removes the key with the given id, or returns an error wrapping
// [store.ErrNotFound]. Removing the id from the sorted id list costs O(n).
func (s *Store) Delete(ctx context.Context, id uuid.UUID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("memory: delete %s: %w", id, store.ErrNotFound)
	}
	s.unindex(cur)
	delete(s.byID, id)
	delete(s.exercises, id)
	delete(s.usage, usageSubject{store.UsageKey, id})
	if i, found := slices.BinarySearchFunc(s.ids, id, compareIDs); found {
		s.ids = slices.Delete(s.ids, i, i+1)
	}
	return nil
}

// TouchLastUsed sets the LastUsedAt of each key in used to its time, under
// one lock, where that time is later than the stored one. Unknown ids are
// ignored; versions are not changed. An empty or nil map is a no-op.
func (s *Store) TouchLastUsed(ctx context.Context, used map[uuid.UUID]time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: touch last used: %w", err)
	}
	if len(used) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, at := range used {
		if k, ok := s.byID[id]; ok && at.After(k.LastUsedAt) {
			k.LastUsedAt = at
		}
	}
	return nil
}

// ConsumeUse atomically takes one use from a usage-limited key, adds one
// to its version and returns the uses left. It returns (-1, nil) for a key
// without a usage limit, leaving it unchanged, and an error wrapping
// [store.ErrUsageExhausted] (with 0) when no uses are left or
// [store.ErrNotFound] (with 0) for a missing key.
func (s *Store) ConsumeUse(ctx context.Context, id uuid.UUID) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: consume use: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.byID[id]
	if !ok {
		return 0, fmt.Errorf("memory: consume use %s: %w", id, store.ErrNotFound)
	}
	if k.RemainingUses == nil {
		return -1, nil
	}
	if *k.RemainingUses <= 0 {
		return 0, fmt.Errorf("memory: consume use %s: %w", id, store.ErrUsageExhausted)
	}
	// The store owns k and its RemainingUses pointer (both were cloned on
	// the way in), so changing them in place is safe under the write lock.
	*k.RemainingUses--
	k.Version++
	return *k.RemainingUses, nil
}

// SpendUses takes cost from the uses of key id at now, after a refill
// that is due (see [store.UseSpender]), and adds one to its version. It
// returns the uses left, or the uses that could not pay with an error
// wrapping [store.ErrUsageExhausted], (-1, nil) for a key without a usage
// limit, or an error wrapping [store.ErrNotFound].
func (s *Store) SpendUses(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: spend uses: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.byID[id]
	if !ok {
		return 0, fmt.Errorf("memory: spend uses of %s: %w", id, store.ErrNotFound)
	}
	if k.RemainingUses == nil {
		return -1, nil
	}
	left, at, ok := store.Spend(*k.RemainingUses, k.Refill, k.RefilledAt, cost, now)
	if !ok {
		return left, fmt.Errorf("memory: spend %d uses of %s: %d left: %w", cost, id, left, store.ErrUsageExhausted)
	}
	*k.RemainingUses, k.RefilledAt = left, at
	k.Version++
	return left, nil
}

// index adds k to the hash and name indexes, and counts it among its
// identity's keys. The caller holds the write lock.
func (s *Store) index(k *store.Key) {
	s.identities.link(k.IdentityID, 1)
	s.byHash[string(k.Hash)] = k.ID
	if len(k.PrevHash) > 0 {
		s.byPrevHash[string(k.PrevHash)] = append(s.byPrevHash[string(k.PrevHash)], k.ID)
	}
	s.byName[nameKey{k.Workspace, k.Name}] = k.ID
}

// unindex removes k from the hash and name indexes, leaving entries that
// belong to another key alone, and from its identity's count. The caller
// holds the write lock.
func (s *Store) unindex(k *store.Key) {
	s.identities.link(k.IdentityID, -1)
	if s.byHash[string(k.Hash)] == k.ID {
		delete(s.byHash, string(k.Hash))
	}
	if len(k.PrevHash) > 0 {
		ids := slices.DeleteFunc(s.byPrevHash[string(k.PrevHash)], func(id uuid.UUID) bool { return id == k.ID })
		if len(ids) == 0 {
			delete(s.byPrevHash, string(k.PrevHash))
		} else {
			s.byPrevHash[string(k.PrevHash)] = ids
		}
	}
	if nk := (nameKey{k.Workspace, k.Name}); s.byName[nk] == k.ID {
		delete(s.byName, nk)
	}
}

// compareIDs orders ids by their bytes, which for UUIDv7 is creation order
// and matches the order of uuid columns in SQL databases.
func compareIDs(a, b uuid.UUID) int {
	return bytes.Compare(a[:], b[:])
}

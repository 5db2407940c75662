package filestore

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// state is the store's content in memory: the result of replaying the log.
// Every index below answers one clause of the store.Store contract.
//
// Keys are copy-on-write: a *store.Key in keys is never changed after it
// is put there; a change puts a new one. So a reader holding mu.RLock may
// clone a key while no writer touches it.
//
// Locking: mu guards every field. Methods whose names start with "lookup"
// or "check", and list, must be called with mu held for reading (or by the
// Store's one writer, which is the only goroutine that calls apply); apply
// takes mu for writing itself.
type state struct {
	mu sync.RWMutex

	// keys holds every key by id: Get, and "id already used" on Create.
	keys map[uuid.UUID]*store.Key
	// byHash indexes Key.Hash, which is unique: GetByHash, and "hash
	// already used" on Create and Update. Keyed by string(hash).
	byHash map[string]uuid.UUID
	// byPrevHash indexes a non-empty Key.PrevHash: GetByHash during a
	// regeneration's grace period. The contract does not make PrevHash
	// unique, so one digest may name several keys.
	byPrevHash map[string][]uuid.UUID
	// byName indexes the unique (Workspace, Name) pair.
	byName map[nameKey]uuid.UUID
	// order holds every id in ascending byte order: List pages through it
	// with a binary search for the cursor.
	order []uuid.UUID
	// retired holds the tombstones of retired secrets (store.Retirer),
	// keyed by string(hash), apart from the keys: deleting a key leaves
	// them.
	retired map[string]store.RetiredHash
}

type nameKey struct{ workspace, name string }

func newState() *state {
	return &state{
		keys:       make(map[uuid.UUID]*store.Key),
		byHash:     make(map[string]uuid.UUID),
		byPrevHash: make(map[string][]uuid.UUID),
		byName:     make(map[nameKey]uuid.UUID),
		retired:    make(map[string]store.RetiredHash),
	}
}

// lookupRetired reports whether any of hashes is a tombstone.
func (st *state) lookupRetired(hashes [][]byte) bool {
	for _, h := range hashes {
		if _, ok := st.retired[string(h)]; ok && len(h) > 0 {
			return true
		}
	}
	return false
}

// lookupHash returns the key whose Hash equals hash or, failing that, one
// whose PrevHash does; nil if none. A Hash match wins, as in the SQL store.
func (st *state) lookupHash(hash []byte) *store.Key {
	if len(hash) == 0 {
		return nil
	}
	if id, ok := st.byHash[string(hash)]; ok {
		return st.keys[id]
	}
	if ids := st.byPrevHash[string(hash)]; len(ids) > 0 {
		return st.keys[ids[0]]
	}
	return nil
}

// checkUnique returns an error wrapping store.ErrDuplicate if k's Hash or
// its (Workspace, Name) pair belongs to a key other than k.ID. Create and
// Update call it before writing; replay calls it to catch a corrupt log.
func (st *state) checkUnique(k *store.Key) error {
	if id, ok := st.byName[nameKey{k.Workspace, k.Name}]; ok && id != k.ID {
		return fmt.Errorf("name %q in workspace %q: %w", k.Name, k.Workspace, store.ErrDuplicate)
	}
	if id, ok := st.byHash[string(k.Hash)]; ok && id != k.ID {
		return fmt.Errorf("hash: %w", store.ErrDuplicate) // never the hash itself
	}
	return nil
}

// list returns copies of at most limit keys matching opts with ids after
// opts.After, and whether a further match exists beyond them.
func (st *state) list(opts store.ListOptions, limit int) (keys []*store.Key, more bool) {
	// The cursor is an id, not an offset: keys created or deleted before
	// it while a caller pages never shift what comes after it. After need
	// not be an id still stored (it may have been deleted).
	start := 0
	if opts.After != (uuid.UUID{}) {
		i, found := slices.BinarySearchFunc(st.order, opts.After, compareIDs)
		if found {
			i++
		}
		start = i
	}
	for _, id := range st.order[start:] {
		k := st.keys[id]
		if !opts.Matches(k) {
			continue
		}
		if len(keys) == limit {
			return keys, true // one match beyond the page: Next is set
		}
		keys = append(keys, k.Clone())
	}
	return keys, false
}

// checkReplay returns an error if rec could not have been written by this
// package on top of the state so far: a sign of a damaged or hand-edited
// log. The live write path never needs it; it validates before writing.
func (st *state) checkReplay(rec record) error {
	switch rec.Op {
	case opPut:
		k := rec.Key
		cur, exists := st.keys[k.ID]
		switch {
		case exists && k.Version != cur.Version+1:
			return fmt.Errorf("key %s: version %d after %d", k.ID, k.Version, cur.Version)
		case !exists && k.Version < 1:
			return fmt.Errorf("key %s: version %d", k.ID, k.Version)
		}
		if err := st.checkUnique(k); err != nil {
			return fmt.Errorf("key %s: %w", k.ID, err)
		}
	case opDelete:
		if _, ok := st.keys[rec.ID]; !ok {
			return fmt.Errorf("delete of unknown key %s", rec.ID)
		}
	}
	return nil
}

// apply makes rec part of the state, under the write lock. It is the one
// place the state changes, for a record just written and for one replayed
// from disk alike, so what a store holds in memory is always what a
// reopen would rebuild. rec has been validated; apply cannot fail.
func (st *state) apply(rec record) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch rec.Op {
	case opPut:
		st.put(rec.Key)
	case opDelete:
		if cur, ok := st.keys[rec.ID]; ok {
			st.remove(cur)
		}
	case opRetire:
		for _, r := range rec.Retired {
			if _, ok := st.retired[string(r.Hash)]; !ok {
				st.retired[string(r.Hash)] = r // the first record of a hash stays
			}
		}
	case opTouch:
		for id, at := range rec.Used {
			cur, ok := st.keys[id]
			if !ok || !at.After(cur.LastUsedAt) {
				continue // unknown id, or not later: last-used only moves forward
			}
			c := cur.Clone() // copy-on-write: readers may hold cur
			c.LastUsedAt = at
			st.keys[id] = c
		}
	}
}

// put stores k, which the state then owns, in place of any key with its id.
func (st *state) put(k *store.Key) {
	if cur, ok := st.keys[k.ID]; ok {
		st.unindex(cur)
	} else {
		i, _ := slices.BinarySearchFunc(st.order, k.ID, compareIDs)
		st.order = slices.Insert(st.order, i, k.ID)
	}
	st.keys[k.ID] = k
	st.byHash[string(k.Hash)] = k.ID
	if len(k.PrevHash) > 0 {
		st.byPrevHash[string(k.PrevHash)] = append(st.byPrevHash[string(k.PrevHash)], k.ID)
	}
	st.byName[nameKey{k.Workspace, k.Name}] = k.ID
}

// remove deletes k, a stored key, and its index entries.
func (st *state) remove(k *store.Key) {
	st.unindex(k)
	delete(st.keys, k.ID)
	if i, found := slices.BinarySearchFunc(st.order, k.ID, compareIDs); found {
		st.order = slices.Delete(st.order, i, i+1)
	}
}

// unindex drops the hash and name entries of k, a stored key.
func (st *state) unindex(k *store.Key) {
	delete(st.byHash, string(k.Hash))
	delete(st.byName, nameKey{k.Workspace, k.Name})
	if len(k.PrevHash) > 0 {
		p := string(k.PrevHash)
		ids := slices.DeleteFunc(st.byPrevHash[p], func(id uuid.UUID) bool { return id == k.ID })
		if len(ids) == 0 {
			delete(st.byPrevHash, p)
		} else {
			st.byPrevHash[p] = ids
		}
	}
}

// compareIDs orders ids by their bytes: creation order for UUIDv7, and the
// order of uuid columns in SQL databases.
func compareIDs(a, b uuid.UUID) int {
	return bytes.Compare(a[:], b[:])
}

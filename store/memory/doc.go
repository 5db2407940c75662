// Package memory provides [Store], a [store.Store] that keeps API key
// records in memory. It is for tests and small programs: nothing survives
// the process, and one Store is not shared between processes.
//
// # Usage
//
//	s := memory.New()
//	err := s.Create(ctx, &store.Key{ID: id, Name: "ci", Hash: hash})
//	k, err := s.GetByHash(ctx, hash)
//
// # Behaviour
//
// [Store] honours the whole [store.Store] contract, and those of the
// optional [store.Revoker], [store.ExerciseRecorder], [store.Retirer]
// (tombstones of retired secrets, kept as long as the Store) and
// [store.UsageRecorder] (hourly usage counts), [store.IdentityStore]
// (identities, whose keys it counts so that one in use is never deleted),
// and passes
// the conformance suite in package store/storetest. A [Store] is safe for
// concurrent use; its methods never block on anything but its own lock.
// Every key is copied on the way in and out with [store.Key.Clone].
//
// # Performance
//
// [Store.GetByHash], the lookup on every verified request, is one map
// lookup under a read lock plus the copy of the key. [Store.List] keeps the
// ids sorted, so a page costs O(log n) to find its start plus the keys it
// scans. [Store.Create] and [Store.Delete] insert into and remove from that
// sorted slice, which is O(n) in the worst case (appending a newer UUIDv7
// is amortised O(1)).
//
// # Errors
//
// Errors wrap the sentinels of package store ([store.ErrNotFound],
// [store.ErrConflict], [store.ErrDuplicate], [store.ErrUsageExhausted],
// [store.ErrUnknownIdentity], [store.ErrIdentityInUse]) or
// the context's error; test them with [errors.Is]. Messages start with
// "memory:" and may name a key's id, workspace or name, never its hash.
package memory

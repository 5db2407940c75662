// Package filestore is a [store.Store] written from scratch as a guide for
// backend authors: it keeps API key records in one append-only file of JSON
// lines, replayed into memory when it is opened, and passes the
// conformance suite in package store/storetest. The walk-through of the
// contract, clause by clause, is examples/customstore/README.md.
//
// # Usage
//
//	s, err := filestore.Open(ctx, filestore.Config{Path: "/var/lib/myapp/keys.jsonl"})
//	if err != nil { ... }
//	defer s.Close()
//	m, err := keygate.New(keygate.Config{Store: s, Hasher: hasher})
//
// # Design
//
// Every change is one record appended to the log: put (the whole key, as
// it now is, version included), delete, touch (last-used times), or retire
// (tombstones of retired secrets, for the optional store.Retirer). A
// write validates against the in-memory state, appends its record,
// fsyncs, and only then applies the record to memory and reports success.
// [Open] replays the records through the same apply function, so memory
// always holds what a reopen would rebuild. [Store.Compact] rewrites the
// log as one put per key (and the tombstones); a write does so on its own
// once the log holds [Config.CompactAfter] records more than that.
//
// Reads are served from memory under a read lock and never wait for the
// disk. Writes are serialized by a writer lock that honours the caller's
// context while waiting. A Store is safe for concurrent use by multiple
// goroutines; only one Store may have a given file open (a lock file
// enforces it on Linux, macOS and the BSDs).
//
// # Crashes and corruption
//
// A crash during a write leaves at most a torn last line, a record that
// was never reported written; [Open] drops it and truncates the file. Any
// other unreadable or inconsistent record is corruption: [Open] fails with
// [ErrCorrupt] naming the line, and changes nothing. After a failed fsync
// the Store refuses further writes until the file is reopened.
//
// # Limits
//
// It is an example, meant to be read: every key lives in memory, each
// write costs an fsync (no group commit), and one process owns the file,
// so there is no [store.ChangeFeed]. It keeps no identities (it is no
// [store.IdentityStore]): a keygate Manager over it answers identity
// calls with ErrUnsupported. For production, use store/sqlstore.
//
// # Errors
//
// Errors wrap the sentinels of package store, the context's error, or
// [ErrCorrupt], [ErrLocked] and [ErrClosed]; test them with [errors.Is].
// Messages start with "filestore:" and may name a key's id, workspace or
// name, never its hash.
package filestore

// Package store defines the storage contract for API key records: the
// [Key] record, the [Store] interface and its sentinel errors.
//
// # Backends
//
// Package store/memory keeps keys in memory, for tests and small programs.
// Package store/sqlstore keeps them in SQLite, PostgreSQL or MySQL/MariaDB
// through sqlx. A user's own backend implements [Store] and proves it
// honours the contract by running the conformance suite in package
// store/storetest:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newMyStore(t) })
//	}
//
// Writing one is walked through in examples/customstore: package
// examples/customstore/filestore is a backend written from scratch (an
// append-only log file replayed into memory) that passes the suite, and
// its README takes the contract clause by clause, pointing to the code
// that honours each one and the subtest that checks it.
//
// # Contract
//
// Each method's doc comment states its contract. In short: "not found" is
// [ErrNotFound], not a system failure; updates are guarded by
// [Key.Version] and fail with [ErrConflict] rather than overwrite; a repeated
// id, hash or (workspace, name) pair is [ErrDuplicate]; nothing is half
// written on any error.
//
// # Optional capabilities
//
// A store may also implement [Revoker] (an atomic revocation),
// [ExerciseRecorder] (the permissions keys exercised), [Retirer]
// (tombstones of retired secrets, without which the keygate Manager
// refuses to import keys), [UsageRecorder] (usage history: hourly
// counts of verifications per key and outcome) and [IdentityStore]
// (identities: owners of keys whose limits all their keys share, without
// which the Manager answers identity calls ErrUnsupported); a change feed,
// [ChangeFeed], [ChangePublisher] and [HealthChecker]. The Manager detects
// each by type assertion. The stores of this module implement all five
// store capabilities, and storetest checks each one a store implements.
package store

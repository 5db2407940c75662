// Package sqlstore keeps API key records in a SQL database through sqlx:
// SQLite (the embedded default), PostgreSQL, or MySQL/MariaDB. [Store]
// implements [store.Store] and passes the conformance suite of package
// store/storetest on all three engines.
//
// # Engines
//
// One [Store] type speaks every engine; [Config.Dialect] ([SQLite],
// [Postgres], [MySQL]) selects the SQL, or is inferred from the driver
// name of [Config.DB]. The package imports no database driver: the program
// does, for example modernc.org/sqlite (pure Go, no cgo),
// github.com/jackc/pgx/v5/stdlib, or github.com/go-sql-driver/mysql. The
// package README compares the engines and gives recommended DSNs.
//
// # Schema and migrations
//
// The schema of each engine is embedded in the package, one directory per
// dialect, and applied by [Store.Migrate], which is idempotent and safe to
// call from several instances at once. Its DDL is also in the package
// README for those who run their own migration tool. [Config.TablePrefix]
// (default [DefaultTablePrefix]) prefixes every table and index name.
//
// # Contract
//
// Every method honours the [store.Store] contract: a missing row is
// [store.ErrNotFound], a unique violation (on each engine's own error code)
// [store.ErrDuplicate], a stale version [store.ErrConflict]. Each write is
// one statement or one transaction, rolled back on any error, so nothing
// is ever half-written. Errors name the operation and the step that failed
// ("sqlstore: update key: commit: ...") and wrap the driver's error, so
// [errors.Is] finds both the sentinel and the cause. A deadlock or
// serialization failure reported by the engine is retried twice.
//
// [Store] also implements the optional [store.Revoker],
// [store.ExerciseRecorder], [store.Retirer], [store.UsageRecorder] and
// [store.IdentityStore]: the hashes of retired secrets are kept in a table
// of their own ({prefix}retired, one row per hash, never deleted), so that
// the Manager never imports a retired secret again; usage history in
// {prefix}usage, one row per subject, hour and outcome, added to by one
// upsert per 500 rows ([Store.RecordUsage]), deleted with its key and
// purged by hour ([Store.PurgeUsage], over an index of hours); identities
// in {prefix}identities, named by the keys' identity_id column, kept
// consistent by locking the identity's row in the transaction of each key
// written with one (see [Store.DeleteIdentity]).
//
// [Store.TouchLastUsed] writes a whole batch of last-used times with one
// statement (per 500 keys), never one per request. [Store.GetByHash] and
// [Store.Get], run on every request, use prepared statements kept by the
// Store; [Store.Close] releases them.
//
// # Console sessions
//
// [Store.Sessions] keeps the admin console's sessions in the same
// database (give it to console.Config.Sessions), so that the console
// works behind a load balancer without sticky sessions. It implements
// console.SessionStore by its methods, without importing the console,
// and passes the console's session store suite on all three engines.
//
// # Change feed
//
// On PostgreSQL, Create, Update, Revoke and Delete also send the key's id
// on the notification channel [Store.Channel], in the same transaction,
// and UpdateIdentity and DeleteIdentity the identity's.
// Package store/sqlstore/pgnotify listens on it and implements
// [store.ChangeFeed], so that caches on other instances drop a revoked key
// within moments.
package sqlstore

// Package pgnotify is a [store.ChangeFeed] over PostgreSQL LISTEN/NOTIFY,
// for stores of package store/sqlstore on PostgreSQL.
//
// A Postgres sqlstore.Store sends the id of every key it creates, updates,
// revokes or deletes on a notification channel (its Channel method names
// it), in the same transaction as the change, so the notification goes out
// exactly when the change commits. A [Feed] listens on that channel and
// hands each id to the function given to [Feed.Watch]; a verifier's cache
// on every instance drops the key at once instead of waiting for its TTL,
// and forgets the tokens it remembered as unknown (one may be a key just
// imported).
//
// # Usage
//
//	feed, err := pgnotify.New(pgnotify.Config{ConnString: dsn, Channel: st.Channel()})
//	...
//	m, err := keygate.New(keygate.Config{Store: st, Hasher: h, ChangeFeed: feed})
//
// # Failures
//
// Each [Feed.Watch] call holds one connection of its own (LISTEN needs a
// session; it cannot go through a pool). If the first connection fails,
// Watch returns the error. A connection lost later is re-established with
// exponential backoff between [Config.MinBackoff] and [Config.MaxBackoff];
// notifications sent meanwhile are lost, so Watch then calls fn(uuid.Nil),
// which the keygate Manager answers by dropping its whole cache.
//
// This package imports pgx; package sqlstore itself imports no driver, so
// only programs that want the feed link it.
package pgnotify

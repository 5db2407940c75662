package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate/store"
)

// Errors of package sqlstore, besides the [store] sentinels its methods
// wrap. Each is wrapped with %w; test with [errors.Is].
var (
	// ErrConfig means [New] rejected its [Config]: no DB, an unknown
	// dialect, or an invalid table prefix.
	ErrConfig = errors.New("sqlstore: invalid config")
	// ErrMigrationLock means [Store.Migrate] could not take the migration
	// lock: on MySQL, GET_LOCK timed out while another instance migrated.
	ErrMigrationLock = errors.New("sqlstore: migration lock not acquired")
	// ErrNotMigrated means a table the store needs does not exist: the
	// database was never migrated, or was migrated with another table
	// prefix. Run Store.Migrate (keygate migrate) once before use. It is
	// wrapped, with the driver's error, by any method that meets it.
	ErrNotMigrated = errors.New("sqlstore: table missing: run Store.Migrate on this database and table prefix first")
)

// DefaultTablePrefix is the table prefix used when [Config.TablePrefix] is
// empty: the tables are keygate_keys and keygate_schema_migrations.
const DefaultTablePrefix = "keygate_"

// maxPrefixLen keeps every prefixed name (tables, indexes, the lock and the
// notification channel) within the engines' 63-byte identifier limit.
const maxPrefixLen = 31

// Config configures a [Store]. It is plain data, read once by [New].
type Config struct {
	// DB is the database handle; required. The Store never closes it.
	DB *sqlx.DB
	// Dialect is the engine behind DB. Zero means inferring it from
	// DB.DriverName(): "sqlite" and "sqlite3" are SQLite, "pgx" and
	// "postgres" are Postgres, "mysql" is MySQL.
	Dialect Dialect
	// TablePrefix starts the name of every table, index, lock and
	// notification channel of the store, so that several stores (or other
	// applications) can share one database. It must match
	// [a-z_][a-z0-9_]{0,30}; empty means DefaultTablePrefix.
	TablePrefix string
}

// Store is a [store.Store] over a SQL database: SQLite, PostgreSQL or
// MySQL/MariaDB through sqlx. It is safe for concurrent use by multiple
// goroutines and by several processes sharing the database: every write
// is one statement or one transaction, and concurrent updates are ordered
// by the key's version.
//
// The tables must exist: call [Store.Migrate] once at start-up, or apply
// the DDL of the package README with your own migration tool.
//
// Get and GetByHash, run on every request, use prepared statements that
// the Store prepares on first use and keeps; [Store.Close] releases them.
type Store struct {
	db      *sqlx.DB
	dialect Dialect
	prefix  string
	q       queries

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.Revoker       = (*Store)(nil)
	_ store.IdentityStore = (*Store)(nil)
)

// New returns a Store over cfg.DB. It does no I/O: it validates cfg and
// prepares the SQL text. It returns an error wrapping [ErrConfig] if cfg
// has no DB, its dialect is unknown or cannot be inferred, or its table
// prefix is invalid.
func New(cfg Config) (*Store, error) {
	if cfg.DB == nil {
		return nil, fmt.Errorf("%w: DB is nil", ErrConfig)
	}
	d := cfg.Dialect
	if d == 0 {
		var err error
		if d, err = dialectFor(cfg.DB.DriverName()); err != nil {
			return nil, err
		}
	}
	if d != SQLite && d != Postgres && d != MySQL {
		return nil, fmt.Errorf("%w: unknown dialect %v", ErrConfig, d)
	}
	prefix := cfg.TablePrefix
	if prefix == "" {
		prefix = DefaultTablePrefix
	}
	if !validPrefix(prefix) {
		return nil, fmt.Errorf("%w: table prefix %q does not match [a-z_][a-z0-9_]{0,30}", ErrConfig, prefix)
	}
	return &Store{
		db:      cfg.DB,
		dialect: d,
		prefix:  prefix,
		q:       newQueries(d, prefix),
		stmts:   make(map[string]*sql.Stmt),
	}, nil
}

// validPrefix reports whether p matches [a-z_][a-z0-9_]{0,30}, which makes
// it safe to splice into SQL as part of an identifier.
func validPrefix(p string) bool {
	if p == "" || len(p) > maxPrefixLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Dialect returns the engine the Store speaks.
func (s *Store) Dialect() Dialect { return s.dialect }

// Table returns the name of the keys table, such as "keygate_keys".
func (s *Store) Table() string { return s.prefix + "keys" }

// Tables returns the name of every table Migrate creates, the keys table
// first and the migrations' own table last: what to back up, or to drop
// to remove the store.
func (s *Store) Tables() []string {
	return []string{s.prefix + "keys", s.prefix + "exercises", s.prefix + "retired",
		s.prefix + "console_sessions", s.prefix + "console_nonces", s.prefix + "console_owners",
		s.prefix + "usage", s.prefix + "identities", s.prefix + "schema_migrations"}
}

// Channel returns the PostgreSQL notification channel on which a Postgres
// Store announces the id of each key it creates, updates, revokes or
// deletes, and of each identity it updates or deletes (so that caches of
// identities can follow), such as "keygate_changes". Package store/sqlstore/pgnotify listens
// on it. Stores of other dialects send no notifications.
func (s *Store) Channel() string { return s.prefix + "changes" }

// Close releases the prepared statements of the Store. It does not close
// the DB. A call made after Close prepares its statement again; Close must
// not run concurrently with other calls.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for q, st := range s.stmts {
		if err := st.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(s.stmts, q)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlstore: close statements: %w", err)
	}
	return nil
}

// prepared returns the prepared statement for query, preparing it on first
// use. A failed preparation is not cached, so a Store used before Migrate
// recovers once the tables exist.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	st := s.stmts[query]
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if other := s.stmts[query]; other != nil {
		_ = st.Close() // Another goroutine won the race; use its statement.
		return other, nil
	}
	s.stmts[query] = st
	return st, nil
}

// Create stores a new key with Version 1 and sets k.Version to 1. It is one
// INSERT; on PostgreSQL, a transaction of the INSERT and the notification
// of [Store.Channel], so that other instances forget a token they
// remembered as unknown (a key imported for it). A key naming an identity
// is inserted in a transaction that then takes a shared lock on the
// identity's row, so that the identity cannot be deleted before it
// commits, and rolls back with [store.ErrUnknownIdentity] when there is
// none (see [Store.DeleteIdentity]). A repeated id, hash or
// (Workspace, Name) pair violates a unique constraint and returns an error
// wrapping [store.ErrDuplicate] and the driver's error. Times are stored
// in UTC to the microsecond; a zero time is stored as NULL.
func (s *Store) Create(ctx context.Context, k *store.Key) error {
	args, err := s.insertArgs(k)
	if err != nil {
		return fmt.Errorf("sqlstore: create key: %w", err)
	}
	linked := k.IdentityID != uuid.Nil
	err = s.retry(ctx, func() error {
		return s.run(ctx, s.dialect == Postgres || linked, func(q querier) error {
			if _, err := q.ExecContext(ctx, s.q.insert, args...); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			if err := s.lockIdentity(ctx, q, k.IdentityID); err != nil {
				return err
			}
			return s.notify(ctx, q, k.ID)
		})
	})
	if err != nil {
		return s.fail("create key", err)
	}
	k.Version = 1
	return nil
}

// Get returns the key with the given id, or an error wrapping
// [store.ErrNotFound].
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	st, err := s.prepared(ctx, s.q.get)
	if err != nil {
		return nil, s.fail("get key", err)
	}
	k, err := scanKey(st.QueryRowContext(ctx, s.dialect.idArg(id)))
	if err != nil {
		return nil, s.fail("get key", err)
	}
	return k, nil
}

// GetByHash returns the key whose Hash, or whose PrevHash, equals hash,
// preferring a Hash match, or an error wrapping [store.ErrNotFound]. An
// empty hash matches no key. It is one indexed query on a prepared
// statement, and does not check expiry or revocation.
func (s *Store) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: get key by hash: %w", err)
	}
	if len(hash) == 0 {
		return nil, fmt.Errorf("sqlstore: get key by hash: %w", store.ErrNotFound)
	}
	st, err := s.prepared(ctx, s.q.getByHash)
	if err != nil {
		return nil, s.fail("get key by hash", err)
	}
	rows, err := st.QueryContext(ctx, hash, hash)
	if err != nil {
		return nil, s.fail("get key by hash", err)
	}
	defer rows.Close()
	var found *store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, s.fail("get key by hash", err)
		}
		if bytes.Equal(k.Hash, hash) {
			return k, nil
		}
		if found == nil {
			found = k
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("get key by hash", err)
	}
	if found == nil {
		return nil, fmt.Errorf("sqlstore: get key by hash: %w", store.ErrNotFound)
	}
	return found, nil
}

// List returns the keys matching opts in ascending id order, at most
// opts.Limit of them (zero or negative means [store.DefaultListLimit];
// the limit is clamped to [store.MaxListLimit]), starting after opts.After.
// It is one query on the (workspace, id), (owner, id) or (identity_id, id)
// index, asking for
// one row more than the limit to know whether Next is set.
func (s *Store) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	limit = min(limit, store.MaxListLimit)

	var (
		where []string
		args  []any
	)
	if opts.Workspace != "" {
		where, args = append(where, "workspace = ?"), append(args, opts.Workspace)
	}
	if opts.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, opts.Owner)
	}
	if opts.IdentityID != uuid.Nil {
		where, args = append(where, "identity_id = ?"), append(args, s.dialect.idArg(opts.IdentityID))
	}
	switch opts.Revoked {
	case store.OnlyActive:
		where = append(where, "revoked_at IS NULL")
	case store.OnlyRevoked:
		where = append(where, "revoked_at IS NOT NULL")
	}
	if !opts.ExpiresAfter.IsZero() {
		where, args = append(where, "expires_at > ?"), append(args, s.dialect.timeArg(opts.ExpiresAfter))
	}
	if !opts.ExpiresBefore.IsZero() {
		where, args = append(where, "expires_at <= ?"), append(args, s.dialect.timeArg(opts.ExpiresBefore))
	}
	keys, next, err := listPage(ctx, s, "list keys", s.q.list, where, args, opts.After, limit, scanKey, func(k *store.Key) uuid.UUID { return k.ID })
	if err != nil {
		return nil, err
	}
	return &store.Page{Keys: keys, Next: next}, nil
}

// listPage runs base (a SELECT of one table) with the conditions where and
// their args, after the id after, in ascending id order, and returns at
// most limit rows scanned by scan and the cursor of the following page
// (the last row's id, by idOf), or the zero UUID when no row follows: it
// asks for one row more than limit to know. op names the operation in
// errors. List and ListIdentities page this way.
func listPage[T any](ctx context.Context, s *Store, op, base string, where []string, args []any, after uuid.UUID, limit int,
	scan func(rowScanner) (T, error), idOf func(T) uuid.UUID) ([]T, uuid.UUID, error) {
	if after != uuid.Nil {
		where, args = append(where, "id > ?"), append(args, s.dialect.idArg(after))
	}
	var b strings.Builder
	b.WriteString(base)
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY id LIMIT ?")
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, sqlx.Rebind(s.dialect.bindType(), b.String()), args...)
	if err != nil {
		return nil, uuid.Nil, s.fail(op, err)
	}
	defer rows.Close()
	out := make([]T, 0, min(limit, 64))
	var next uuid.UUID
	for rows.Next() {
		if len(out) == limit {
			next = idOf(out[limit-1])
			break
		}
		v, err := scan(rows)
		if err != nil {
			return nil, uuid.Nil, s.fail(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, uuid.Nil, s.fail(op, err)
	}
	return out, next, nil
}

// Update replaces the stored key k.ID with k if the stored version equals
// k.Version, keeping the stored CreatedAt and LastUsedAt, and then sets
// k.Version to the new version. It runs in one transaction: an UPDATE
// guarded by the version and, when no row matched, a SELECT telling a
// missing key ([store.ErrNotFound]) from a stale version
// ([store.ErrConflict]), and for a key naming an identity a shared lock on
// the identity's row, as in Create ([store.ErrUnknownIdentity] when there
// is none). A name or hash taken by another key returns an
// error wrapping [store.ErrDuplicate]. On PostgreSQL the transaction also
// notifies [Store.Channel]. Nothing is written on any error.
func (s *Store) Update(ctx context.Context, k *store.Key) error {
	args, err := s.updateArgs(k)
	if err != nil {
		return fmt.Errorf("sqlstore: update key: %w", err)
	}
	id := s.dialect.idArg(k.ID)
	err = s.retry(ctx, func() error {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.q.update, args...)
			if err != nil {
				return fmt.Errorf("update: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("update: rows affected: %w", err)
			}
			if n == 0 {
				var version int64
				err := tx.QueryRowContext(ctx, s.q.getVersion, id).Scan(&version)
				switch {
				case errors.Is(err, sql.ErrNoRows):
					return store.ErrNotFound
				case err != nil:
					return fmt.Errorf("check version: %w", err)
				}
				return fmt.Errorf("version %d, stored %d: %w", k.Version, version, store.ErrConflict)
			}
			if err := s.lockIdentity(ctx, tx, k.IdentityID); err != nil {
				return err
			}
			return s.notify(ctx, tx, k.ID)
		})
	})
	if err != nil {
		return s.fail("update key", err)
	}
	k.Version++
	return nil
}

// Revoke revokes key id whatever its version (see [store.Revoker]) and
// returns it: one transaction of an UPDATE that keeps a revocation time
// already set and clears the previous secret, and a SELECT of the row; on
// PostgreSQL it also notifies [Store.Channel].
func (s *Store) Revoke(ctx context.Context, id uuid.UUID, at time.Time) (*store.Key, error) {
	var k *store.Key
	arg := s.dialect.idArg(id)
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.q.revoke, s.dialect.timeArg(at), s.dialect.timeArg(at), arg)
			if err != nil {
				return fmt.Errorf("revoke: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("revoke: rows affected: %w", err)
			}
			if n == 0 {
				return store.ErrNotFound
			}
			if k, err = scanKey(tx.QueryRowContext(ctx, s.q.get, arg)); err != nil {
				return fmt.Errorf("read revoked key: %w", err)
			}
			return s.notify(ctx, tx, id)
		})
	})
	if err != nil {
		return nil, s.fail("revoke key", err)
	}
	return k, nil
}

// Delete removes the key with the given id, its exercises and its usage
// counts, or returns an error wrapping [store.ErrNotFound]. It is one
// transaction of three DELETEs that, on PostgreSQL, also notifies
// [Store.Channel].
func (s *Store) Delete(ctx context.Context, id uuid.UUID) error {
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.q.remove, s.dialect.idArg(id))
			if err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("delete: rows affected: %w", err)
			}
			if n == 0 {
				return store.ErrNotFound
			}
			if _, err := tx.ExecContext(ctx, s.q.removeExercises, s.dialect.idArg(id)); err != nil {
				return fmt.Errorf("delete exercises: %w", err)
			}
			if _, err := tx.ExecContext(ctx, s.q.removeUsage, store.UsageKey, s.dialect.idArg(id)); err != nil {
				return fmt.Errorf("delete usage: %w", err)
			}
			return s.notify(ctx, tx, id)
		})
	})
	if err != nil {
		return s.fail("delete key", err)
	}
	return nil
}

// TouchLastUsed sets the LastUsedAt of each key in used to its time where
// that is later than the stored one; zero times and unknown ids are
// ignored, and versions do not change. Each batch of up to 500 keys is ONE
// UPDATE statement (a join with a VALUES list on PostgreSQL and SQLite, with
// a UNION ALL derived table on MySQL); larger maps take several statements
// in one transaction. Keys are sorted by id so that concurrent batches lock
// rows in the same order.
func (s *Store) TouchLastUsed(ctx context.Context, used map[uuid.UUID]time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: touch last used: %w", err)
	}
	ids := make([]uuid.UUID, 0, len(used))
	for id, at := range used {
		if !at.IsZero() {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	err := s.retry(ctx, func() error {
		return s.run(ctx, len(ids) > touchBatch, func(q querier) error {
			for chunk := range slices.Chunk(ids, touchBatch) {
				args := make([]any, 0, 2*len(chunk))
				for _, id := range chunk {
					args = append(args, s.dialect.idArg(id), s.dialect.timeArg(used[id]))
				}
				if _, err := q.ExecContext(ctx, s.q.touchQuery(s.dialect, len(chunk)), args...); err != nil {
					return fmt.Errorf("update: %w", err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return s.fail("touch last used", err)
	}
	return nil
}

// ConsumeUse atomically takes one use from a usage-limited key, adds one to
// its version and returns the uses left. It returns (-1, nil) for a key
// without a usage limit, leaving it unchanged, and 0 with an error wrapping
// [store.ErrUsageExhausted] when no uses are left or [store.ErrNotFound]
// for a missing key. It runs in one transaction: a guarded UPDATE
// (remaining_uses > 0) then a SELECT ... FOR UPDATE of the count, which
// tells the cases apart; on PostgreSQL it also notifies [Store.Channel].
func (s *Store) ConsumeUse(ctx context.Context, id uuid.UUID) (int64, error) {
	var left int64
	arg := s.dialect.idArg(id)
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			// The second round runs only if another transaction gave the
			// key uses between the UPDATE and the SELECT; the SELECT has
			// locked the row since, so the second UPDATE takes a use.
			for range 2 {
				res, err := tx.ExecContext(ctx, s.q.consume, arg)
				if err != nil {
					return fmt.Errorf("decrement: %w", err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return fmt.Errorf("decrement: rows affected: %w", err)
				}
				var rem sql.NullInt64
				err = tx.QueryRowContext(ctx, s.q.remaining, arg).Scan(&rem)
				switch {
				case errors.Is(err, sql.ErrNoRows):
					return store.ErrNotFound
				case err != nil:
					return fmt.Errorf("read remaining uses: %w", err)
				case n > 0:
					// No notification: a use taken changes nothing a cache
					// holds (verifiers take uses from the store each time).
					left = rem.Int64
					return nil
				case !rem.Valid:
					left = -1
					return nil
				case rem.Int64 <= 0:
					return store.ErrUsageExhausted
				}
			}
			return errors.New("remaining uses changed concurrently")
		})
	})
	if err != nil {
		return 0, s.fail("consume use", err)
	}
	return left, nil
}

// querier is what the methods need of a *sql.DB or a *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// run calls fn with the DB, or within a transaction when inTx is set.
func (s *Store) run(ctx context.Context, inTx bool, fn func(q querier) error) error {
	if !inTx {
		return fn(s.db)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error { return fn(tx) })
}

// inTx runs fn in a transaction, committing if fn returns nil and rolling
// back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return fmt.Errorf("%w (rollback: %v)", err, rbErr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// maxAttempts bounds how often a write is tried when the engine aborts it
// for a deadlock, a serialization failure or a busy database.
const maxAttempts = 3

// retry runs fn, again after a short pause if it fails with an error the
// engine reports as retryable, up to maxAttempts times in all.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || !s.dialect.isRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

// notify sends id on the change-feed channel, on PostgreSQL only; q is the
// transaction of the change, so the notification goes out on commit.
func (s *Store) notify(ctx context.Context, q querier, id uuid.UUID) error {
	if s.dialect != Postgres {
		return nil
	}
	if _, err := q.ExecContext(ctx, s.q.notify, s.Channel(), id.String()); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// fail wraps err as the failure of operation op: sql.ErrNoRows becomes
// [store.ErrNotFound] and a unique violation [store.ErrDuplicate] (keeping
// the driver error in the chain).
func (s *Store) fail(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound)
	case s.dialect.isUnique(err):
		return fmt.Errorf("sqlstore: %s: %w: %w", op, store.ErrDuplicate, err)
	case s.dialect.isUndefinedTable(err):
		return fmt.Errorf("sqlstore: %s: %w: %w", op, ErrNotMigrated, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

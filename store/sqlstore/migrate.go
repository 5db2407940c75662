package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds the schema of each dialect, one directory per
// dialect, one file per version named NNNN_description.sql, with {prefix}
// standing for the table prefix. (A //go:embed variable is necessarily a
// package variable; it is read-only.)
//
//go:embed migrations
var migrationFiles embed.FS

// migration is one embedded schema version.
type migration struct {
	version    int64
	name       string
	statements []string
}

// migrations returns the dialect's migrations in version order, with the
// table prefix substituted and split into statements.
func (s *Store) migrations() ([]migration, error) {
	dir := path.Join("migrations", s.dialect.String())
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		digits, _, ok := strings.Cut(e.Name(), "_")
		if e.IsDir() || !ok || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad version: %w", e.Name(), err)
		}
		text, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{
			version:    v,
			name:       e.Name(),
			statements: splitStatements(strings.ReplaceAll(string(text), "{prefix}", s.prefix)),
		})
	}
	slices.SortFunc(ms, func(a, b migration) int { return int(a.version - b.version) })
	return ms, nil
}

// splitStatements splits a migration file into statements, each ending
// with a semicolon at the end of a line. (Migration files keep semicolons
// out of string literals and comments.)
func splitStatements(text string) []string {
	var out []string
	for stmt := range strings.SplitSeq(text, ";\n") {
		if stmt = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(stmt), ";")); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

// Migrate creates or upgrades the store's tables to the latest schema
// version embedded in the package. It records each applied version in the
// table <prefix>schema_migrations, so running it again is a no-op, and it
// is safe when several instances call it at once: they are serialized by a
// transaction-scoped advisory lock on PostgreSQL, GET_LOCK on MySQL (at most
// 60 s, or until ctx's deadline; then it fails with [ErrMigrationLock]),
// and a BEGIN IMMEDIATE transaction on SQLite.
//
// On PostgreSQL and SQLite each run is one transaction, so a failure leaves
// the schema as it was. MySQL commits every DDL statement implicitly; its
// migrations are written with IF NOT EXISTS so that running Migrate again
// after a failure completes them.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := s.migrations()
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: read migrations: %w", err)
	}
	switch s.dialect {
	case Postgres:
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, s.q.lock, s.lockKey()); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			return s.applyMigrations(ctx, tx, ms)
		})
	case SQLite:
		err = s.withConn(ctx, func(conn *sql.Conn) (bool, error) { return s.migrateSQLite(ctx, conn, ms) })
	case MySQL:
		err = s.withConn(ctx, func(conn *sql.Conn) (bool, error) { return s.migrateMySQL(ctx, conn, ms) })
	}
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return nil
}

// connectWait bounds how long Migrate retries opening its connection
// while the database is busy.
const connectWait = 30 * time.Second

// connect opens a connection of its own, retrying while the engine reports
// the database busy. On a new SQLite file, opening a connection runs the
// DSN's pragmas, and switching the file to WAL needs an exclusive lock for
// which SQLite does not wait (its busy timeout does not apply): instances
// migrating one new file at once would otherwise fail with SQLITE_BUSY.
func (s *Store) connect(ctx context.Context) (*sql.Conn, error) {
	deadline := time.Now().Add(connectWait)
	for backoff := 5 * time.Millisecond; ; backoff = min(2*backoff, 250*time.Millisecond) {
		conn, err := s.db.Conn(ctx)
		if err == nil || !s.dialect.isRetryable(err) || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
	}
}

// lockKey is the PostgreSQL advisory lock id of this prefix's migrations.
func (s *Store) lockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("keygate/sqlstore migrate " + s.prefix))
	return int64(h.Sum64())
}

// lockName is the MySQL GET_LOCK name of this prefix's migrations (at most
// 64 characters).
func (s *Store) lockName() string { return "keygate_migrate:" + s.prefix }

// withConn runs fn on a connection of its own. If fn reports discard, the
// connection is closed rather than returned to the pool, since it may still
// hold a transaction or a lock.
func (s *Store) withConn(ctx context.Context, fn func(conn *sql.Conn) (discard bool, err error)) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	discard, err := fn(conn)
	if discard {
		// Returning driver.ErrBadConn from Raw makes database/sql close
		// the connection.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// cleanupCtx returns a context for releasing a lock or rolling back after
// ctx may have ended.
func cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// migrateSQLite applies ms in one BEGIN IMMEDIATE transaction, which takes
// the database's write lock before reading the applied versions.
func (s *Store) migrateSQLite(ctx context.Context, conn *sql.Conn, ms []migration) (discard bool, err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	if err := s.applyMigrations(ctx, conn, ms); err != nil {
		cctx, cancel := cleanupCtx(ctx)
		defer cancel()
		if _, rbErr := conn.ExecContext(cctx, "ROLLBACK"); rbErr != nil {
			return true, fmt.Errorf("%w (rollback: %v)", err, rbErr)
		}
		return false, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return true, fmt.Errorf("commit: %w", err)
	}
	return false, nil
}

// migrateMySQL applies ms holding a GET_LOCK named lock for the session.
func (s *Store) migrateMySQL(ctx context.Context, conn *sql.Conn, ms []migration) (discard bool, err error) {
	timeout := 60 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(deadline), 0)
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, s.q.lock, s.lockName(), int64(timeout.Seconds())).Scan(&got); err != nil {
		return false, fmt.Errorf("lock: %w", err)
	}
	if got.Int64 != 1 {
		return false, fmt.Errorf("lock %q: %w", s.lockName(), ErrMigrationLock)
	}
	err = s.applyMigrations(ctx, conn, ms)
	cctx, cancel := cleanupCtx(ctx)
	defer cancel()
	if _, unlockErr := conn.ExecContext(cctx, s.q.unlock, s.lockName()); unlockErr != nil {
		// Closing the session releases the lock.
		return true, errors.Join(err, fmt.Errorf("unlock: %w", unlockErr))
	}
	return false, err
}

// alreadyApplied reports whether err says that a MySQL DDL statement's
// work is already done: a duplicate column (1060) or index name (1061).
// MySQL commits DDL at once and, unlike MariaDB, has no ADD COLUMN IF NOT
// EXISTS, so a migration that failed midway is completed by running it
// again past such errors.
func (s *Store) alreadyApplied(err error) bool {
	if s.dialect != MySQL {
		return false
	}
	n := mysqlErrorNumber(err)
	return n == 1060 || n == 1061
}

// migrationConn is what applyMigrations needs of a *sql.Tx or *sql.Conn.
type migrationConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// applyMigrations creates the version table if needed and applies, in
// order, each migration of ms not recorded there. The caller holds the
// migration lock.
func (s *Store) applyMigrations(ctx context.Context, c migrationConn, ms []migration) error {
	if _, err := c.ExecContext(ctx, s.q.createVersions); err != nil {
		return fmt.Errorf("create version table: %w", err)
	}
	applied, err := appliedVersions(ctx, c, s.q.appliedVersions)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		for i, stmt := range m.statements {
			if _, err := c.ExecContext(ctx, stmt); err != nil && !s.alreadyApplied(err) {
				return fmt.Errorf("%s: statement %d: %w", m.name, i+1, err)
			}
		}
		if _, err := c.ExecContext(ctx, s.q.insertVersion, m.version); err != nil {
			return fmt.Errorf("%s: record version: %w", m.name, err)
		}
	}
	return nil
}

// appliedVersions reads the set of recorded schema versions.
func appliedVersions(ctx context.Context, c migrationConn, query string) (map[int64]bool, error) {
	rows, err := c.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	defer rows.Close()
	applied := make(map[int64]bool)
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read versions: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	return applied, nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
)

// The SQL of [Sessions], with "?" placeholders and {sessions} and
// {nonces} for the prefixed table names (migration 0005).
const (
	sqlCreateSession = `INSERT INTO {sessions} (id, owner, data, flash, created_at, expires_at) VALUES (?, ?, ?, '', ?, ?)`
	// sqlOwnerSessions lists an owner's sessions, newest first.
	sqlOwnerSessions = `SELECT id FROM {sessions} WHERE owner = ? ORDER BY created_at DESC, id DESC`
	sqlEndedOfOwner  = `DELETE FROM {sessions} WHERE owner = ? AND expires_at <= ?`
	sqlGetSession    = `SELECT data, flash, expires_at FROM {sessions} WHERE id = ? AND expires_at > ?`
	sqlTouchSession  = `UPDATE {sessions} SET expires_at = ? WHERE id = ? AND expires_at > ?`
	sqlDeleteSession = `DELETE FROM {sessions} WHERE id = ?`
	sqlSetFlash      = `UPDATE {sessions} SET flash = ? WHERE id = ?`
	// sqlTakeFlash changes the row only if it still holds the message:
	// of several takes, one changes it.
	sqlTakeFlash    = `UPDATE {sessions} SET flash = '' WHERE id = ? AND flash = ?`
	sqlSweepSession = `DELETE FROM {sessions} WHERE expires_at <= ?`
	sqlSweepNonces  = `DELETE FROM {nonces} WHERE expires_at <= ?`

	// The statements that insert a nonce unless it is there, changing
	// one row only if it was not.
	sqlUseNonce   = `INSERT INTO {nonces} (nonce, expires_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING`
	mysqlUseNonce = `INSERT IGNORE INTO {nonces} (nonce, expires_at) VALUES (?, ?)`
	// The statements that lock an owner's row of {owners}, inserting it
	// if needed, until the transaction ends: they serialize the creations
	// of one owner's sessions.
	sqlLockOwner   = `INSERT INTO {owners} (owner) VALUES (?) ON CONFLICT (owner) DO UPDATE SET owner = excluded.owner`
	mysqlLockOwner = `INSERT INTO {owners} (owner) VALUES (?) ON DUPLICATE KEY UPDATE owner = VALUES(owner)`
)

// sessionSweepEvery is how often a Sessions deletes expired rows.
const sessionSweepEvery = time.Minute

// sessionQueries are the statements of a Sessions, with table names and
// placeholders in place.
type sessionQueries struct {
	create, owned, endedOfOwner, get, touch, remove, setFlash, takeFlash string
	sweepSessions, sweepNonces, useNonce, lockOwner                      string
}

// Sessions keeps the admin console's sessions and used nonces in the
// Store's database, in the tables <prefix>console_sessions,
// <prefix>console_nonces and <prefix>console_owners (schema version 5;
// [Store.Migrate] creates them), so that every instance of a service sharing the database serves
// every session: give it to console.Config.Sessions. It implements
// console.SessionStore (by its methods; the package does not import the
// console), and passes the console's conformance suite on SQLite,
// PostgreSQL and MySQL/MariaDB.
//
// A session is one row, under the SHA-256 of its id (the console never
// gives the id itself), holding the console's data, its flash message,
// and when it was created and expires. Creating a session and ending the
// oldest of its owner's beyond the bound is one transaction, serialized
// per owner by a lock on the owner's row of console_owners (one small
// row per key or user that ever signed in). Using a nonce is one INSERT
// that changes no row when the nonce is there. Expired rows are deleted
// at most once a minute per Sessions, on the way into CreateSession or
// UseNonce.
//
// Sessions is safe for concurrent use, by goroutines and by instances.
type Sessions struct {
	s *Store
	q sessionQueries
	// lastSweep is when expired rows were last deleted, in Unix
	// nanoseconds of the callers' clock.
	lastSweep atomic.Int64
}

// Sessions returns the console session store over the Store's database
// and table prefix.
func (s *Store) Sessions() *Sessions {
	r := strings.NewReplacer("{sessions}", s.prefix+"console_sessions", "{nonces}", s.prefix+"console_nonces",
		"{owners}", s.prefix+"console_owners")
	q := func(text string) string { return sqlx.Rebind(s.dialect.bindType(), r.Replace(text)) }
	x := &Sessions{s: s, q: sessionQueries{
		create:        q(sqlCreateSession),
		owned:         q(sqlOwnerSessions),
		endedOfOwner:  q(sqlEndedOfOwner),
		get:           q(sqlGetSession),
		touch:         q(sqlTouchSession),
		remove:        q(sqlDeleteSession),
		setFlash:      q(sqlSetFlash),
		takeFlash:     q(sqlTakeFlash),
		sweepSessions: q(sqlSweepSession),
		sweepNonces:   q(sqlSweepNonces),
		useNonce:      q(sqlUseNonce),
		lockOwner:     q(sqlLockOwner),
	}}
	if s.dialect == MySQL {
		x.q.lockOwner = q(mysqlLockOwner)
		x.q.useNonce = q(mysqlUseNonce)
	}
	return x
}

// CreateSession stores a new session and ends the oldest of owner's
// beyond perOwner, in one transaction (see console.SessionStore).
func (x *Sessions) CreateSession(ctx context.Context, id []byte, owner string, data []byte, now, expires time.Time, perOwner int) error {
	x.sweep(ctx, now)
	d := x.s.dialect
	err := x.s.retry(ctx, func() error {
		return x.inTx(ctx, func(tx *sql.Tx) error {
			// A write first (SQLite takes its write lock at once), which
			// waits for any other creation for owner to commit: the
			// statements after it see that one's session.
			if _, err := tx.ExecContext(ctx, x.q.lockOwner, owner); err != nil {
				return fmt.Errorf("lock owner: %w", err)
			}
			if _, err := tx.ExecContext(ctx, x.q.create, id, owner, data, d.timeArg(now), d.timeArg(expires)); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			if _, err := tx.ExecContext(ctx, x.q.endedOfOwner, owner, d.timeArg(now)); err != nil {
				return fmt.Errorf("delete ended: %w", err)
			}
			var ids [][]byte
			rows, err := tx.QueryContext(ctx, x.q.owned, owner)
			if err != nil {
				return fmt.Errorf("list owner's: %w", err)
			}
			for n := 0; rows.Next(); n++ {
				var id []byte
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return fmt.Errorf("list owner's: %w", err)
				}
				if n >= max(perOwner, 1) {
					ids = append(ids, id)
				}
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("list owner's: %w", err)
			}
			for _, id := range ids {
				if _, err := tx.ExecContext(ctx, x.q.remove, id); err != nil {
					return fmt.Errorf("delete oldest: %w", err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return x.s.fail("create session", err)
	}
	return nil
}

// inTx runs fn in a transaction, as Store.inTx does, at READ COMMITTED on
// MySQL (PostgreSQL's default; SQLite has only one level), so that the
// statements after the owner's lock see what the transaction that held
// it committed, and InnoDB takes no gap locks, which deadlock concurrent
// creations.
func (x *Sessions) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if x.s.dialect != MySQL {
		return x.s.inTx(ctx, fn)
	}
	tx, err := x.s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
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

// Session returns the data, flash message and expiry of session id if it
// is live at now; nil data if not (see console.SessionStore). It is one
// query on a prepared statement.
func (x *Sessions) Session(ctx context.Context, id []byte, now time.Time) ([]byte, string, time.Time, error) {
	st, err := x.s.prepared(ctx, x.q.get)
	if err != nil {
		return nil, "", time.Time{}, x.s.fail("read session", err)
	}
	var (
		data    []byte
		flash   string
		expires time.Time
	)
	err = st.QueryRowContext(ctx, id, x.s.dialect.timeArg(now)).Scan(&data, &flash, timeDest{&expires})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, "", time.Time{}, nil
	case err != nil:
		return nil, "", time.Time{}, x.s.fail("read session", err)
	case data == nil:
		data = []byte{}
	}
	return data, flash, expires, nil
}

// TouchSession sets the expiry of session id if it is live at now.
func (x *Sessions) TouchSession(ctx context.Context, id []byte, _ string, now, expires time.Time) error {
	d := x.s.dialect
	if _, err := x.s.db.ExecContext(ctx, x.q.touch, d.timeArg(expires), id, d.timeArg(now)); err != nil {
		return x.s.fail("touch session", err)
	}
	return nil
}

// DeleteSession ends session id.
func (x *Sessions) DeleteSession(ctx context.Context, id []byte) error {
	if _, err := x.s.db.ExecContext(ctx, x.q.remove, id); err != nil {
		return x.s.fail("delete session", err)
	}
	return nil
}

// SetFlash sets the flash message of session id.
func (x *Sessions) SetFlash(ctx context.Context, id []byte, msg string) error {
	if _, err := x.s.db.ExecContext(ctx, x.q.setFlash, msg, id); err != nil {
		return x.s.fail("set flash", err)
	}
	return nil
}

// TakeFlash clears the flash message of session id if it is msg, and
// reports whether it did: one UPDATE guarded by the message.
func (x *Sessions) TakeFlash(ctx context.Context, id []byte, msg string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("sqlstore: take flash: %w", err)
	}
	if msg == "" {
		return false, nil
	}
	res, err := x.s.db.ExecContext(ctx, x.q.takeFlash, id, msg)
	if err != nil {
		return false, x.s.fail("take flash", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, x.s.fail("take flash", err)
	}
	return n == 1, nil
}

// UseNonce records nonce as used until expires, and reports whether it
// was unused: one INSERT that changes no row when the nonce is there.
func (x *Sessions) UseNonce(ctx context.Context, nonce []byte, now, expires time.Time) (bool, error) {
	x.sweep(ctx, now)
	res, err := x.s.db.ExecContext(ctx, x.q.useNonce, nonce, x.s.dialect.timeArg(expires))
	if err != nil {
		return false, x.s.fail("use nonce", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, x.s.fail("use nonce", err)
	}
	return n == 1, nil
}

// sweep deletes the sessions and nonces expired at now, if a minute has
// passed since it last did. Its failure fails nothing else: the rows
// expired are ignored anyway, and the next call tries again.
func (x *Sessions) sweep(ctx context.Context, now time.Time) {
	last, n := x.lastSweep.Load(), now.UnixNano()
	if n-last < int64(sessionSweepEvery) && n >= last || !x.lastSweep.CompareAndSwap(last, n) {
		return
	}
	at := x.s.dialect.timeArg(now)
	for _, q := range []string{x.q.sweepSessions, x.q.sweepNonces} {
		if _, err := x.s.db.ExecContext(ctx, q, at); err != nil {
			x.lastSweep.CompareAndSwap(n, last)
			return
		}
	}
}

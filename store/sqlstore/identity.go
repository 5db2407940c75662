package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// The SQL of identities, in the form of the keys' statements (see
// queries.go): {prefix} stands for the table prefix.
const (
	identityColumns = `id, external_id, workspace, metadata, rate_limits,
	credits_remaining, credits_refill_amount, credits_refill_every, credits_refill_day, credits_refilled_at,
	created_at, updated_at, version`

	// sqlInsertIdentity writes credits_refill_due_at too, which only the
	// store reads (see refillDue).
	sqlInsertIdentity = `INSERT INTO {prefix}identities (` + identityColumns + `, credits_refill_due_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	sqlGetIdentity = `SELECT ` + identityColumns + ` FROM {prefix}identities WHERE id = ?`

	sqlListIdentities = `SELECT ` + identityColumns + ` FROM {prefix}identities`

	// sqlUpdateIdentity leaves id, workspace and created_at alone, and the
	// balance (credits_remaining, credits_refilled_at) unless its flag is
	// set or the identity has no credits yet. credits_refilled_at and
	// credits_refill_due_at come first: MySQL evaluates the assignments in
	// order, and the later ones see the earlier ones' values. With a kept
	// balance and a refill, the due time is kept as a placeholder that the
	// same transaction replaces, from the refilled_at kept (see
	// Store.UpdateIdentity); with a kept balance and no refill it is NULL.
	sqlUpdateIdentity = `UPDATE {prefix}identities SET external_id = ?, metadata = ?, rate_limits = ?,
	credits_refilled_at = CASE WHEN ? OR credits_remaining IS NULL THEN ? ELSE credits_refilled_at END,
	credits_refill_due_at = CASE WHEN ? OR credits_remaining IS NULL THEN ? WHEN ? THEN credits_refill_due_at ELSE NULL END,
	credits_remaining = CASE WHEN ? OR credits_remaining IS NULL THEN ? ELSE credits_remaining END,
	credits_refill_amount = ?, credits_refill_every = ?, credits_refill_day = ?,
	updated_at = ?, version = version + 1
	WHERE id = ? AND version = ?`

	sqlGetIdentityVersion = `SELECT version FROM {prefix}identities WHERE id = ?`

	sqlDeleteIdentity = `DELETE FROM {prefix}identities WHERE id = ?`

	// sqlLockIdentity gets the shared lock clause appended, for the write
	// of a key naming the identity.
	sqlLockIdentity = `SELECT id FROM {prefix}identities WHERE id = ?`

	// sqlIdentityInUse gets the shared lock clause appended, so that
	// MySQL reads the latest rows rather than its snapshot.
	sqlIdentityInUse = `SELECT id FROM {keys} WHERE identity_id = ? LIMIT 1`

	// The statements of SpendCredits, in the form of SpendUses's (see
	// queries.go); the version does not change.
	sqlSpendCredits = `UPDATE {prefix}identities SET credits_remaining = credits_remaining - ?
	WHERE id = ? AND credits_remaining >= ?
	AND (credits_refill_amount IS NULL OR credits_refill_due_at > ?)`
	sqlCreditsBalance = `SELECT credits_remaining FROM {prefix}identities WHERE id = ?`
	sqlCreditsState   = `SELECT credits_remaining, credits_refill_amount, credits_refill_every,
	credits_refill_day, credits_refilled_at FROM {prefix}identities WHERE id = ?`
	sqlSetCredits = `UPDATE {prefix}identities SET credits_remaining = ?, credits_refilled_at = ?,
	credits_refill_due_at = ? WHERE id = ?`
	// sqlSetCreditsDue sets the due time alone, for an update that kept
	// the balance.
	sqlSetCreditsDue = `UPDATE {prefix}identities SET credits_refill_due_at = ? WHERE id = ?`
)

// identityQueries holds the identity statements of one Store.
type identityQueries struct {
	insert, get, list, update, getVersion, remove string
	// lockShared locks an identity's row; inUse finds a key naming it.
	lockShared, inUse string
	// spend holds the statements of SpendCredits; setDue sets the due
	// time alone.
	spend  spendQueries
	setDue string
}

// newIdentityQueries returns the identity statements, q substituting the
// table names and rebinding placeholders.
func newIdentityQueries(d Dialect, q func(string) string) identityQueries {
	return identityQueries{
		insert:     q(sqlInsertIdentity),
		get:        q(sqlGetIdentity),
		list:       q(sqlListIdentities),
		update:     q(sqlUpdateIdentity),
		getVersion: q(sqlGetIdentityVersion),
		remove:     q(sqlDeleteIdentity),
		lockShared: q(sqlLockIdentity + d.shareLockClause()),
		inUse:      q(sqlIdentityInUse + d.shareLockClause()),
		spend:      newSpendQueries(d, q, sqlSpendCredits, "credits_remaining", sqlCreditsBalance, sqlCreditsState, sqlSetCredits),
		setDue:     q(sqlSetCreditsDue),
	}
}

// rateLimitJSON is how a rate limit is kept in the rate_limits column.
type rateLimitJSON struct {
	Name     string `json:"name"`
	Requests int    `json:"requests"`
	WindowNs int64  `json:"window_ns"`
	OnDemand bool   `json:"on_demand,omitempty"`
}

// decodeRateLimits reads a rate_limits column; NULL is none.
func decodeRateLimits(src []byte) ([]store.RateLimit, error) {
	var rls []rateLimitJSON
	if err := decodeJSON(src, &rls, "rate_limits"); err != nil {
		return nil, err
	}
	var out []store.RateLimit
	for _, r := range rls {
		out = append(out, store.RateLimit{Name: r.Name, Requests: r.Requests, Window: time.Duration(r.WindowNs), OnDemand: r.OnDemand})
	}
	return out, nil
}

// encodeRateLimits returns the rate_limits column of rls: NULL for none.
func encodeRateLimits(rls []store.RateLimit) (any, error) {
	js := make([]rateLimitJSON, len(rls))
	for i, r := range rls {
		js[i] = rateLimitJSON{Name: r.Name, Requests: r.Requests, WindowNs: int64(r.Window), OnDemand: r.OnDemand}
	}
	v, err := encodeJSON(js, len(js) == 0)
	if err != nil {
		return nil, fmt.Errorf("encode rate limits: %w", err)
	}
	return v, nil
}

// scanIdentity reads one row of identityColumns into a new Identity.
func scanIdentity(sc rowScanner) (*store.Identity, error) {
	var (
		id                store.Identity
		metadata, limits  []byte
		remaining, amount sql.NullInt64
		every             string
		day               int64
		refilledAt        time.Time
	)
	err := sc.Scan(&id.ID, &id.ExternalID, &id.Workspace, &metadata, &limits,
		&remaining, &amount, &every, &day, timeDest{&refilledAt},
		timeDest{&id.CreatedAt}, timeDest{&id.UpdatedAt}, &id.Version)
	if err != nil {
		return nil, err
	}
	if err := decodeJSON(metadata, &id.Metadata, "metadata"); err != nil {
		return nil, err
	}
	if id.RateLimits, err = decodeRateLimits(limits); err != nil {
		return nil, err
	}
	if remaining.Valid {
		id.Credits = &store.Credits{Remaining: remaining.Int64, RefilledAt: refilledAt}
		if amount.Valid {
			id.Credits.Refill = &store.Refill{Amount: amount.Int64, Every: store.Period(every), Day: int(day)}
		}
	}
	return &id, nil
}

// identityArgs holds the column values of an identity that need encoding.
type identityArgs struct {
	metadata, limits                   any
	remaining, amount, refilledAt, due any
	every                              string
	day                                int64
}

// encodeIdentity encodes the columns of id that need more than passing the
// field.
func (s *Store) encodeIdentity(id *store.Identity) (identityArgs, error) {
	var (
		a   identityArgs
		err error
	)
	if a.metadata, err = encodeJSON(id.Metadata, id.Metadata == nil); err != nil {
		return a, fmt.Errorf("encode metadata: %w", err)
	}
	if a.limits, err = encodeRateLimits(id.RateLimits); err != nil {
		return a, err
	}
	if c := id.Credits; c != nil {
		a.remaining, a.refilledAt = c.Remaining, s.dialect.timeArg(c.RefilledAt)
		if c.Refill != nil {
			a.amount, a.every, a.day = c.Refill.Amount, string(c.Refill.Every), int64(c.Refill.Day)
		}
		a.due = s.dialect.timeArg(refillDue(c.Refill, c.RefilledAt))
	}
	return a, nil
}

// CreateIdentity stores a new identity with Version 1 and sets id.Version
// to 1: one INSERT. A repeated id or (Workspace, ExternalID) pair returns
// an error wrapping [store.ErrDuplicate].
func (s *Store) CreateIdentity(ctx context.Context, id *store.Identity) error {
	a, err := s.encodeIdentity(id)
	if err != nil {
		return fmt.Errorf("sqlstore: create identity: %w", err)
	}
	d := s.dialect
	args := []any{d.idArg(id.ID), id.ExternalID, id.Workspace, a.metadata, a.limits,
		a.remaining, a.amount, a.every, a.day, a.refilledAt,
		d.timeArg(id.CreatedAt), d.timeArg(id.UpdatedAt), int64(1), a.due}
	err = s.retry(ctx, func() error {
		_, err := s.db.ExecContext(ctx, s.q.identity.insert, args...)
		return err
	})
	if err != nil {
		return s.fail("create identity", err)
	}
	id.Version = 1
	return nil
}

// GetIdentity returns the identity with the given id, or an error
// wrapping [store.ErrNotFound].
func (s *Store) GetIdentity(ctx context.Context, id uuid.UUID) (*store.Identity, error) {
	got, err := scanIdentity(s.db.QueryRowContext(ctx, s.q.identity.get, s.dialect.idArg(id)))
	if err != nil {
		return nil, s.fail("get identity", err)
	}
	return got, nil
}

// ListIdentities returns the identities matching opts in ascending id
// order, paged as [Store.List] pages keys: one query on the primary key or
// the (workspace, id) index, asking for one row more than the limit.
func (s *Store) ListIdentities(ctx context.Context, opts store.IdentityListOptions) (*store.IdentityPage, error) {
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
	if opts.ExternalID != "" {
		where, args = append(where, "external_id = ?"), append(args, opts.ExternalID)
	}
	ids, next, err := listPage(ctx, s, "list identities", s.q.identity.list, where, args, opts.After, limit, scanIdentity,
		func(id *store.Identity) uuid.UUID { return id.ID })
	if err != nil {
		return nil, err
	}
	return &store.IdentityPage{Identities: ids, Next: next}, nil
}

// UpdateIdentity replaces the stored identity id.ID with id if the stored
// version equals id.Version, keeping its credit balance unless balance is
// true (see [store.IdentityStore]), and sets id.Version to the new
// version. It is one transaction of an UPDATE guarded by the version and,
// when no row matched, a SELECT telling [store.ErrNotFound] from
// [store.ErrConflict]; on PostgreSQL it also notifies [Store.Channel] of
// the identity's id.
func (s *Store) UpdateIdentity(ctx context.Context, id *store.Identity, balance bool) error {
	a, err := s.encodeIdentity(id)
	if err != nil {
		return fmt.Errorf("sqlstore: update identity: %w", err)
	}
	d := s.dialect
	setBalance := balance || id.Credits == nil
	// With the balance kept, the due time follows the refill from the
	// refilled_at kept, which only the database knows.
	keepsDue := !setBalance && id.Credits.Refill != nil
	arg := d.idArg(id.ID)
	args := []any{id.ExternalID, a.metadata, a.limits,
		setBalance, a.refilledAt, setBalance, a.due, keepsDue, setBalance, a.remaining,
		a.amount, a.every, a.day, d.timeArg(id.UpdatedAt), arg, id.Version}
	err = s.retry(ctx, func() error {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.q.identity.update, args...)
			if err != nil {
				return fmt.Errorf("update: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("update: rows affected: %w", err)
			}
			if n == 0 {
				var version int64
				err := tx.QueryRowContext(ctx, s.q.identity.getVersion, arg).Scan(&version)
				switch {
				case errors.Is(err, sql.ErrNoRows):
					return store.ErrNotFound
				case err != nil:
					return fmt.Errorf("check version: %w", err)
				}
				return fmt.Errorf("version %d, stored %d: %w", id.Version, version, store.ErrConflict)
			}
			if keepsDue {
				if err := s.setCreditsDue(ctx, tx, arg); err != nil {
					return err
				}
			}
			return s.notify(ctx, tx, id.ID)
		})
	})
	if err != nil {
		return s.fail("update identity", err)
	}
	id.Version++
	return nil
}

// setCreditsDue sets the credits_refill_due_at of identity arg from its
// stored refill and credits_refilled_at, in tx after an update that kept
// the balance (the row is locked since).
func (s *Store) setCreditsDue(ctx context.Context, tx *sql.Tx, arg any) error {
	st, err := scanBalance(tx.QueryRowContext(ctx, s.q.identity.spend.state, arg))
	if err != nil {
		return fmt.Errorf("read refill: %w", err)
	}
	due := time.Time{}
	if st.remaining.Valid {
		due = refillDue(st.refill, st.refilledAt)
	}
	if _, err := tx.ExecContext(ctx, s.q.identity.setDue, s.dialect.timeArg(due), arg); err != nil {
		return fmt.Errorf("set refill due: %w", err)
	}
	return nil
}

// DeleteIdentity removes the identity with the given id, or returns an
// error wrapping [store.ErrNotFound], or [store.ErrIdentityInUse] while a
// key names it. It is one transaction: the DELETE, which locks the
// identity's row, then a look for a key naming it, rolling back if there
// is one. A key being linked to the identity meanwhile either committed
// before (and is found) or waits for the lock its transaction takes on the
// identity's row, and then finds the identity gone. On PostgreSQL it also
// notifies [Store.Channel]. (Every write starts with a write, so that on
// SQLite it waits for the database's write lock rather than fail on a
// stale snapshot.)
func (s *Store) DeleteIdentity(ctx context.Context, id uuid.UUID) error {
	arg := s.dialect.idArg(id)
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.q.identity.remove, arg)
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
			var found uuid.UUID
			err = tx.QueryRowContext(ctx, s.q.identity.inUse, arg).Scan(&found)
			switch {
			case err == nil:
				return store.ErrIdentityInUse
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("find its keys: %w", err)
			}
			return s.notify(ctx, tx, id)
		})
	})
	if err != nil {
		return s.fail("delete identity", err)
	}
	return nil
}

// lockIdentity takes a shared lock on identity id's row within tx, after
// the write of a key naming it, so that the identity cannot be deleted
// before tx ends; store.ErrUnknownIdentity when there is no such identity
// (the caller rolls back). The zero UUID (no identity) needs no lock.
func (s *Store) lockIdentity(ctx context.Context, tx querier, id uuid.UUID) error {
	if id == uuid.Nil {
		return nil
	}
	var found uuid.UUID
	err := tx.QueryRowContext(ctx, s.q.identity.lockShared, s.dialect.idArg(id)).Scan(&found)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrUnknownIdentity
	case err != nil:
		return fmt.Errorf("lock identity: %w", err)
	}
	return nil
}

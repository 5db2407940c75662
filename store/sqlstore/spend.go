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

var (
	_ store.UseSpender    = (*Store)(nil)
	_ store.CreditSpender = (*Store)(nil)
)

// spendQueries are the statements that spend one kind of balance: a key's
// uses or an identity's credits.
type spendQueries struct {
	// fast is take with RETURNING of the balance left, on PostgreSQL and
	// SQLite; "" on MySQL and MariaDB, which have no UPDATE ... RETURNING.
	fast string
	// take is the guarded UPDATE (arguments cost, id, cost, now); balance
	// reads the balance after it, locked.
	take, balance string
	// state reads balance, refill and refilled_at, locking the row; set
	// writes balance, refilled_at and due time of a row (its id last).
	state, set string
}

// newSpendQueries returns the spend statements of dialect d from their
// SQL: take the guarded UPDATE, col the balance column it returns,
// balance, state and set the other statements; q substitutes the table
// names and rebinds placeholders.
func newSpendQueries(d Dialect, q func(string) string, take, col, balance, state, set string) spendQueries {
	sq := spendQueries{
		take:    q(take),
		balance: q(balance + d.lockClause()),
		state:   q(state + d.lockClause()),
		set:     q(set),
	}
	if d != MySQL {
		sq.fast = q(take + " RETURNING " + col)
	}
	return sq
}

// balanceRow is a balance as the state statements read it.
type balanceRow struct {
	remaining  sql.NullInt64 // NULL: no limit
	refill     *store.Refill
	refilledAt time.Time
}

// scanBalance reads a row of a state statement.
func scanBalance(sc rowScanner) (balanceRow, error) {
	var (
		b      balanceRow
		amount sql.NullInt64
		every  string
		day    int64
	)
	if err := sc.Scan(&b.remaining, &amount, &every, &day, timeDest{&b.refilledAt}); err != nil {
		return b, err
	}
	if amount.Valid {
		b.refill = &store.Refill{Amount: amount.Int64, Every: store.Period(every), Day: int(day)}
	}
	return b, nil
}

// SpendUses takes cost from the uses of key id at now, after a refill that
// is due, and adds one to its version (see [store.UseSpender]). It returns
// the uses left; or the uses that could not pay with an error wrapping
// [store.ErrUsageExhausted]; (-1, nil) for a key without a usage limit;
// or an error wrapping [store.ErrNotFound].
//
// When the uses cover cost and no refill is due (the refill_due_at column
// is after now), it is one guarded UPDATE on a prepared statement,
// returning the balance (on MySQL, which has no UPDATE ... RETURNING, a
// transaction of the UPDATE and a SELECT of the balance). Otherwise a
// transaction locks the key's row (SELECT ... FOR UPDATE; on SQLite the
// guarded UPDATE takes the database's write lock first), computes the
// spend with [store.Spend], and writes the balance, refilled_at, the next
// due time and the version, or nothing. Calls from any number of
// instances are ordered by the row lock, so a refill happens once per
// period.
func (s *Store) SpendUses(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	return s.spend(ctx, "spend uses", s.q.spend, id, cost, now)
}

// SpendCredits takes cost from the credits of identity id at now, after a
// refill that is due, as [Store.SpendUses] takes a key's uses, without
// changing the identity's version (see [store.CreditSpender]). It returns
// the credits left; or the credits that could not pay with an error
// wrapping [store.ErrUsageExhausted]; (-1, nil) for an identity without
// credits; or an error wrapping [store.ErrNotFound].
func (s *Store) SpendCredits(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	return s.spend(ctx, "spend credits", s.q.identity.spend, id, cost, now)
}

// spend is SpendUses and SpendCredits, with the statements sq; op names
// the operation in errors.
func (s *Store) spend(ctx context.Context, op string, sq spendQueries, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	arg := s.dialect.idArg(id)
	guard := []any{cost, arg, cost, s.dialect.timeArg(now)}
	var (
		left int64
		done bool
	)
	if sq.fast != "" {
		err := s.retry(ctx, func() error {
			st, err := s.prepared(ctx, sq.fast)
			if err != nil {
				return err
			}
			err = st.QueryRowContext(ctx, guard...).Scan(&left)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return nil // not covered, a refill due, no limit, or no row
			case err != nil:
				return fmt.Errorf("spend: %w", err)
			}
			done = true
			return nil
		})
		if err != nil {
			return 0, s.fail(op, err)
		}
		if done {
			return left, nil
		}
	}
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			if s.dialect != Postgres {
				// MySQL's fast path; on SQLite, the write that takes the
				// database's write lock before the read.
				res, err := tx.ExecContext(ctx, sq.take, guard...)
				if err != nil {
					return fmt.Errorf("spend: %w", err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return fmt.Errorf("spend: rows affected: %w", err)
				}
				if n > 0 {
					if err := tx.QueryRowContext(ctx, sq.balance, arg).Scan(&left); err != nil {
						return fmt.Errorf("read balance: %w", err)
					}
					return nil
				}
			}
			b, err := scanBalance(tx.QueryRowContext(ctx, sq.state, arg))
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return store.ErrNotFound
			case err != nil:
				return fmt.Errorf("lock balance: %w", err)
			case !b.remaining.Valid:
				left = -1
				return nil
			}
			var (
				setAt time.Time
				ok    bool
			)
			left, setAt, ok = store.Spend(b.remaining.Int64, b.refill, b.refilledAt, cost, now)
			if !ok {
				return fmt.Errorf("cost %d, %d left: %w", cost, left, store.ErrUsageExhausted)
			}
			d := s.dialect
			if _, err := tx.ExecContext(ctx, sq.set, left, d.timeArg(setAt), d.timeArg(refillDue(b.refill, setAt)), arg); err != nil {
				return fmt.Errorf("write balance: %w", err)
			}
			return nil
		})
	})
	switch {
	case errors.Is(err, store.ErrUsageExhausted):
		return left, s.fail(op, err)
	case err != nil:
		return 0, s.fail(op, err)
	}
	return left, nil
}

package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate/store"
)

var _ store.Retirer = (*Store)(nil)

// retireBatch is the largest number of hashes one statement retires
// (three placeholders each, far below every engine's limit).
const retireBatch = 500

// retireInsert returns the statement that retires n hashes, leaving those
// already retired as they are.
func (s *Store) retireInsert(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.prefix + "retired (hash, pepper_id, retired_at) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?)")
	}
	switch s.dialect {
	case Postgres, SQLite:
		b.WriteString(" ON CONFLICT (hash) DO NOTHING")
	case MySQL:
		// Not INSERT IGNORE, which would also turn other errors into
		// warnings.
		b.WriteString(" ON DUPLICATE KEY UPDATE hash = hash")
	}
	return sqlx.Rebind(s.dialect.bindType(), b.String())
}

// Retire records the hashes as retired (see [store.Retirer]): one insert
// statement per 500 that leaves a hash already retired as it was, in one
// transaction, sorted so that concurrent calls lock rows in the same
// order.
func (s *Store) Retire(ctx context.Context, hashes []store.RetiredHash) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: retire: %w", err)
	}
	rs := make([]store.RetiredHash, 0, len(hashes))
	for _, r := range hashes {
		if len(r.Hash) > 0 {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	slices.SortStableFunc(rs, func(a, b store.RetiredHash) int { return bytes.Compare(a.Hash, b.Hash) })
	// One row per hash per statement (the first given wins).
	rs = slices.CompactFunc(rs, func(a, b store.RetiredHash) bool { return bytes.Equal(a.Hash, b.Hash) })
	err := s.retry(ctx, func() error {
		return s.run(ctx, len(rs) > retireBatch, func(q querier) error {
			for chunk := range slices.Chunk(rs, retireBatch) {
				args := make([]any, 0, 3*len(chunk))
				for _, r := range chunk {
					args = append(args, r.Hash, r.PepperID, s.dialect.timeArg(r.At))
				}
				if _, err := q.ExecContext(ctx, s.retireInsert(len(chunk)), args...); err != nil {
					return fmt.Errorf("insert: %w", err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return s.fail("retire", err)
	}
	return nil
}

// Retired reports whether any of hashes is retired (see [store.Retirer]):
// one query on the table's primary key.
func (s *Store) Retired(ctx context.Context, hashes ...[]byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("sqlstore: retired: %w", err)
	}
	args := make([]any, 0, len(hashes))
	for _, h := range hashes {
		if len(h) > 0 {
			args = append(args, h)
		}
	}
	if len(args) == 0 {
		return false, nil
	}
	query := "SELECT 1 FROM " + s.prefix + "retired WHERE hash IN (?" + strings.Repeat(", ?", len(args)-1) + ") LIMIT 1"
	var one int
	err := s.db.QueryRowContext(ctx, sqlx.Rebind(s.dialect.bindType(), query), args...).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, s.fail("check retired", err)
	}
	return true, nil
}

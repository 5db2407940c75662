package sqlstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate/store"
)

var _ store.UsageRecorder = (*Store)(nil)

// usageBatch is the largest number of counts one statement writes (five
// placeholders each, far below every engine's limit).
const usageBatch = 500

// usageUpsert returns the statement that adds n counts to the stored ones.
func (s *Store) usageUpsert(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.prefix + "usage (subject_kind, subject_id, hour_start, outcome, verifications) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?)")
	}
	switch s.dialect {
	case Postgres:
		b.WriteString(" ON CONFLICT (subject_kind, subject_id, hour_start, outcome) DO UPDATE SET verifications = " +
			s.prefix + "usage.verifications + EXCLUDED.verifications")
	case SQLite:
		b.WriteString(" ON CONFLICT (subject_kind, subject_id, hour_start, outcome) DO UPDATE SET verifications = verifications + excluded.verifications")
	case MySQL:
		b.WriteString(" ON DUPLICATE KEY UPDATE verifications = verifications + VALUES(verifications)")
	}
	return sqlx.Rebind(s.dialect.bindType(), b.String())
}

// compareUsageCells orders counts by the table's primary key.
func compareUsageCells(a, b store.UsageCount) int {
	return cmp.Or(
		strings.Compare(a.Kind, b.Kind),
		bytes.Compare(a.Subject[:], b.Subject[:]),
		a.Hour.Compare(b.Hour),
		strings.Compare(a.Outcome, b.Outcome),
	)
}

// RecordUsage adds counts to the stored ones (see [store.UsageRecorder]):
// one upsert statement per 500 cells, in one transaction when there are
// more, the cells summed first (PostgreSQL refuses to touch a row twice in
// one statement) and sorted, so that concurrent batches lock rows in the
// same order.
func (s *Store) RecordUsage(ctx context.Context, counts []store.UsageCount) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: record usage: %w", err)
	}
	cells := make([]store.UsageCount, 0, len(counts))
	for _, c := range counts {
		if c.Count > 0 {
			c.Hour = c.Hour.UTC()
			cells = append(cells, c)
		}
	}
	if len(cells) == 0 {
		return nil
	}
	slices.SortFunc(cells, compareUsageCells)
	sums := cells[:1]
	for _, c := range cells[1:] {
		if last := &sums[len(sums)-1]; compareUsageCells(*last, c) == 0 {
			last.Count += c.Count
			continue
		}
		sums = append(sums, c)
	}
	err := s.retry(ctx, func() error {
		return s.run(ctx, len(sums) > usageBatch, func(q querier) error {
			for chunk := range slices.Chunk(sums, usageBatch) {
				args := make([]any, 0, 5*len(chunk))
				for _, c := range chunk {
					args = append(args, c.Kind, s.dialect.idArg(c.Subject), s.dialect.timeArg(c.Hour), c.Outcome, c.Count)
				}
				if _, err := q.ExecContext(ctx, s.usageUpsert(len(chunk)), args...); err != nil {
					return fmt.Errorf("upsert: %w", err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return s.fail("record usage", err)
	}
	return nil
}

// Usage returns the counts q selects (see [store.UsageRecorder]), in one
// query over the table's primary key.
func (s *Store) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: read usage: %w", err)
	}
	if len(q.Subjects) == 0 || !q.From.Before(q.To) {
		return nil, nil
	}
	args := make([]any, 0, len(q.Subjects)+3)
	args = append(args, q.Kind)
	for _, id := range q.Subjects {
		args = append(args, s.dialect.idArg(id))
	}
	args = append(args, s.dialect.timeArg(q.From), s.dialect.timeArg(q.To))
	query := "SELECT subject_id, hour_start, outcome, verifications FROM " + s.prefix + "usage WHERE subject_kind = ? AND subject_id IN (?" +
		strings.Repeat(", ?", len(q.Subjects)-1) + ") AND hour_start >= ? AND hour_start < ?"
	rows, err := s.db.QueryContext(ctx, sqlx.Rebind(s.dialect.bindType(), query), args...)
	if err != nil {
		return nil, s.fail("read usage", err)
	}
	defer rows.Close()
	var out []store.UsageCount
	for rows.Next() {
		c := store.UsageCount{Kind: q.Kind}
		var id uuid.UUID
		if err := rows.Scan(&id, timeDest{&c.Hour}, &c.Outcome, &c.Count); err != nil {
			return nil, s.fail("read usage", err)
		}
		c.Subject = id
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("read usage", err)
	}
	return out, nil
}

// PurgeUsage removes the counts of the hours before before (see
// [store.UsageRecorder]), in one statement over the table's index of
// hours.
func (s *Store) PurgeUsage(ctx context.Context, before time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sqlstore: purge usage: %w", err)
	}
	var n int64
	err := s.retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, sqlx.Rebind(s.dialect.bindType(),
			"DELETE FROM "+s.prefix+"usage WHERE hour_start < ?"), s.dialect.timeArg(before))
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("delete: rows affected: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, s.fail("purge usage", err)
	}
	return n, nil
}

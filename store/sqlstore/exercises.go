package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate/store"
)

var _ store.ExerciseRecorder = (*Store)(nil)

// exerciseBatch is the largest number of exercises one statement writes
// (four placeholders each, far below every engine's limit).
const exerciseBatch = 500

// exerciseUpsert returns the statement that records n exercises, keeping
// the latest time of each (key, permission, workspace).
func (s *Store) exerciseUpsert(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.prefix + "exercises (key_id, permission, workspace, last_at) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
	}
	switch s.dialect {
	case Postgres:
		b.WriteString(" ON CONFLICT (key_id, permission, workspace) DO UPDATE SET last_at = GREATEST(" + s.prefix + "exercises.last_at, EXCLUDED.last_at)")
	case SQLite:
		b.WriteString(" ON CONFLICT (key_id, permission, workspace) DO UPDATE SET last_at = max(last_at, excluded.last_at)")
	case MySQL:
		b.WriteString(" ON DUPLICATE KEY UPDATE last_at = GREATEST(last_at, VALUES(last_at))")
	}
	return sqlx.Rebind(s.dialect.bindType(), b.String())
}

// RecordExercises records exercises (see [store.ExerciseRecorder]): one
// upsert statement per 500, in one transaction, sorted so that concurrent
// batches lock rows in the same order. Exercises of an unknown key are
// stored too; Delete removes a key's exercises.
func (s *Store) RecordExercises(ctx context.Context, exercises []store.Exercise) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: record exercises: %w", err)
	}
	if len(exercises) == 0 {
		return nil
	}
	sorted := slices.Clone(exercises)
	slices.SortFunc(sorted, func(a, b store.Exercise) int {
		if c := strings.Compare(string(a.KeyID[:]), string(b.KeyID[:])); c != 0 {
			return c
		}
		if c := strings.Compare(a.Permission, b.Permission); c != 0 {
			return c
		}
		return strings.Compare(a.Workspace, b.Workspace)
	})
	// One row per (key, permission, workspace) per statement: PostgreSQL
	// refuses to touch a row twice in one INSERT ... ON CONFLICT.
	uniq := sorted[:0]
	for _, e := range sorted {
		if n := len(uniq); n > 0 && uniq[n-1].KeyID == e.KeyID && uniq[n-1].Permission == e.Permission && uniq[n-1].Workspace == e.Workspace {
			if e.At.After(uniq[n-1].At) {
				uniq[n-1].At = e.At
			}
			continue
		}
		uniq = append(uniq, e)
	}
	sorted = uniq
	err := s.retry(ctx, func() error {
		return s.run(ctx, len(sorted) > exerciseBatch, func(q querier) error {
			for chunk := range slices.Chunk(sorted, exerciseBatch) {
				args := make([]any, 0, 4*len(chunk))
				for _, e := range chunk {
					args = append(args, s.dialect.idArg(e.KeyID), e.Permission, e.Workspace, s.dialect.timeArg(e.At))
				}
				if _, err := q.ExecContext(ctx, s.exerciseUpsert(len(chunk)), args...); err != nil {
					return fmt.Errorf("upsert: %w", err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return s.fail("record exercises", err)
	}
	return nil
}

// Exercises returns the exercises recorded for key id.
func (s *Store) Exercises(ctx context.Context, id uuid.UUID) ([]store.Exercise, error) {
	rows, err := s.db.QueryContext(ctx, sqlx.Rebind(s.dialect.bindType(),
		"SELECT permission, workspace, last_at FROM "+s.prefix+"exercises WHERE key_id = ?"), s.dialect.idArg(id))
	if err != nil {
		return nil, s.fail("read exercises", err)
	}
	defer rows.Close()
	var out []store.Exercise
	for rows.Next() {
		e := store.Exercise{KeyID: id}
		if err := rows.Scan(&e.Permission, &e.Workspace, timeDest{&e.At}); err != nil {
			return nil, s.fail("read exercises", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("read exercises", err)
	}
	return out, nil
}

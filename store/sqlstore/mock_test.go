package sqlstore_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore"
)

// The sqlmock tests show what real servers cannot easily: a driver error
// on each statement of each method, a connection lost between two
// statements of a transaction, and a failed commit. Each must return an
// error that names the operation and the failed step and wraps the
// driver's error, and must leave nothing half-written: the transaction is
// rolled back and no statement runs after the failure.

// stepKind is the kind of one database call of a method.
type stepKind int

const (
	begin stepKind = iota
	exec
	query
	prepareQuery // a prepared statement, prepared on first use
	commit
	rollback // expected on a path that ends in a sentinel error; never failed
)

// step is one database call a method makes on its successful path.
type step struct {
	kind    stepKind
	pattern string // regular expression matched against the SQL
	name    string // what the error message must say failed ("" for the operation alone)
	// affected is the RowsAffected of an exec; rows builds a query's rows.
	affected int64
	rows     func() *sqlmock.Rows
}

// script is the successful path of one method on one dialect.
type script struct {
	name string // subtest name
	op   string // the operation the error message must name
	call func(ctx context.Context, s *sqlstore.Store) error
	// steps are the calls in order. Between guard[0] and guard[1]
	// (exclusive) a failure must be followed by cleanup: ROLLBACK, or the
	// release of a lock.
	steps   []step
	guard   [2]int
	cleanup func(mock sqlmock.Sqlmock)
}

// inTx marks steps as a transaction: steps[0] is BEGIN and the last is
// COMMIT; a failure in between must roll back.
func (sc script) inTx() script {
	sc.guard = [2]int{1, len(sc.steps) - 1}
	sc.cleanup = func(mock sqlmock.Sqlmock) { mock.ExpectRollback() }
	return sc
}

// keyRows returns one stored key as the store's SELECT returns it.
func keyRows(k *store.Key) func() *sqlmock.Rows {
	return func() *sqlmock.Rows {
		cols := strings.Fields("id name description owner workspace role scopes metadata hash pepper_id prev_hash prev_pepper_id prev_expires_at hint rate_limit rate_window_ns remaining_uses allowed_cidrs created_at updated_at expires_at last_used_at revoked_at version disabled_at expiry_notified_at identity_id rate_limits refill_amount refill_every refill_day refilled_at")
		return sqlmock.NewRows(cols).AddRow(k.ID[:], k.Name, "", "", "", "", `["a"]`, `{"k":"v"}`, k.Hash, "p", nil, "",
			nil, "", 0, 0, 3, nil, "2025-01-01T00:00:00.000000Z", "2025-01-01T00:00:00.000000Z", nil, nil, nil, 1, nil, nil, nil,
			nil, nil, "", 0, nil)
	}
}

func intRow(col string, v any) func() *sqlmock.Rows {
	return func() *sqlmock.Rows { return sqlmock.NewRows([]string{col}).AddRow(v) }
}

// migrationFiles returns the migration files of a dialect, in order, and
// the first word of each of their statements (CREATE, ALTER).
func migrationFiles(t *testing.T, d sqlstore.Dialect) [][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", d.String(), "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migration files: %v %v", files, err)
	}
	slices.Sort(files)
	var out [][]string
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read migration: %v", err)
		}
		var words []string
		for stmt := range strings.SplitSeq(string(text), ";\n") {
			if fields := strings.Fields(stmt); len(fields) > 0 {
				words = append(words, fields[0])
			}
		}
		out = append(out, words)
	}
	return out
}

// scripts returns the successful path of every method on dialect d.
func scripts(t *testing.T, d sqlstore.Dialect) []script {
	k := testKey("mock")
	ctxKey := func(k *store.Key) *store.Key { c := k.Clone(); c.Version = 1; return c }
	notify := []step{}
	if d == sqlstore.Postgres {
		notify = []step{{kind: exec, pattern: `SELECT pg_notify`, name: "notify", affected: 1}}
	}
	touch := func(n int) map[uuid.UUID]time.Time {
		m := make(map[uuid.UUID]time.Time, n)
		for range n {
			m[uuid.New()] = time.Now()
		}
		return m
	}
	tx := func(steps ...[]step) []step {
		all := []step{{kind: begin, name: "begin"}}
		for _, s := range steps {
			all = append(all, s...)
		}
		return append(all, step{kind: commit, name: "commit"})
	}

	create := script{name: "Create", op: "create key",
		call:  func(ctx context.Context, s *sqlstore.Store) error { return s.Create(ctx, k.Clone()) },
		steps: []step{{kind: exec, pattern: `^INSERT INTO \w+keys`, name: "insert", affected: 1}}}
	if d == sqlstore.Postgres {
		// The insert and its notification, in one transaction.
		create.steps = tx(create.steps, notify)
		create = create.inTx()
	}
	out := []script{
		create,

		{name: "Get", op: "get key",
			call:  func(ctx context.Context, s *sqlstore.Store) error { _, err := s.Get(ctx, k.ID); return err },
			steps: []step{{kind: prepareQuery, pattern: `^SELECT .* FROM \w+keys WHERE id = `, rows: keyRows(k)}}},
		{name: "GetByHash", op: "get key by hash",
			call:  func(ctx context.Context, s *sqlstore.Store) error { _, err := s.GetByHash(ctx, k.Hash); return err },
			steps: []step{{kind: prepareQuery, pattern: `^SELECT .* WHERE hash = .* OR prev_hash = `, rows: keyRows(k)}}},
		{name: "List", op: "list keys",
			call: func(ctx context.Context, s *sqlstore.Store) error {
				_, err := s.List(ctx, store.ListOptions{Workspace: "w", Owner: "o", Revoked: store.OnlyActive, After: k.ID})
				return err
			},
			steps: []step{{kind: query, pattern: `^SELECT .* WHERE workspace = .* AND owner = .* AND revoked_at IS NULL AND id > .* ORDER BY id LIMIT`, rows: keyRows(k)}}},
		script{name: "Update", op: "update key",
			call:  func(ctx context.Context, s *sqlstore.Store) error { return s.Update(ctx, ctxKey(k)) },
			steps: tx([]step{{kind: exec, pattern: `^UPDATE \w+keys SET name = .* version = version \+ 1`, name: "update", affected: 1}}, notify),
		}.inTx(),
		script{name: "Update/stale", op: "update key",
			call: func(ctx context.Context, s *sqlstore.Store) error {
				err := s.Update(ctx, ctxKey(k))
				if errors.Is(err, store.ErrConflict) {
					return nil // the successful path of this script
				}
				return err
			},
			steps: []step{
				{kind: begin, name: "begin"},
				{kind: exec, pattern: `^UPDATE \w+keys SET name`, name: "update", affected: 0},
				{kind: query, pattern: `^SELECT version FROM`, name: "check version", rows: intRow("version", 2)},
				{kind: rollback},
			},
			guard:   [2]int{1, 3},
			cleanup: func(mock sqlmock.Sqlmock) { mock.ExpectRollback() },
		},
		script{name: "ConsumeUse", op: "consume use",
			call: func(ctx context.Context, s *sqlstore.Store) error { _, err := s.ConsumeUse(ctx, k.ID); return err },
			steps: tx([]step{
				{kind: exec, pattern: `^UPDATE \w+keys SET remaining_uses = remaining_uses - 1`, name: "decrement", affected: 1},
				{kind: query, pattern: `^SELECT remaining_uses FROM`, name: "read remaining uses", rows: intRow("remaining_uses", 2)},
			}),
		}.inTx(),
		{name: "TouchLastUsed", op: "touch last used",
			call:  func(ctx context.Context, s *sqlstore.Store) error { return s.TouchLastUsed(ctx, touch(3)) },
			steps: []step{{kind: exec, pattern: `UPDATE .*last_used_at`, name: "update", affected: 3}}},
		script{name: "TouchLastUsed/two batches", op: "touch last used",
			call: func(ctx context.Context, s *sqlstore.Store) error { return s.TouchLastUsed(ctx, touch(501)) },
			steps: tx([]step{
				{kind: exec, pattern: `UPDATE .*last_used_at`, name: "update", affected: 500},
				{kind: exec, pattern: `UPDATE .*last_used_at`, name: "update", affected: 1},
			}),
		}.inTx(),
		{name: "Retire", op: "retire",
			call: func(ctx context.Context, s *sqlstore.Store) error {
				return s.Retire(ctx, []store.RetiredHash{{Hash: k.Hash, PepperID: "p1", At: time.Now()}})
			},
			steps: []step{{kind: exec, pattern: `^INSERT INTO \w+retired \(hash, pepper_id, retired_at\) VALUES`, name: "insert", affected: 1}}},
		script{name: "Retire/two batches", op: "retire",
			call: func(ctx context.Context, s *sqlstore.Store) error {
				rs := make([]store.RetiredHash, 501)
				for i := range rs {
					rs[i] = store.RetiredHash{Hash: []byte(fmt.Sprintf("hash %03d", i)), PepperID: "p1", At: time.Now()}
				}
				return s.Retire(ctx, rs)
			},
			steps: tx([]step{
				{kind: exec, pattern: `^INSERT INTO \w+retired`, name: "insert", affected: 500},
				{kind: exec, pattern: `^INSERT INTO \w+retired`, name: "insert", affected: 1},
			}),
		}.inTx(),
		{name: "Retired", op: "check retired",
			call: func(ctx context.Context, s *sqlstore.Store) error {
				_, err := s.Retired(ctx, k.Hash, k.PrevHash)
				return err
			},
			steps: []step{{kind: query, pattern: `^SELECT 1 FROM \w+retired WHERE hash IN \(.*\) LIMIT 1$`, rows: intRow("one", 1)}}},
		{name: "RecordUsage", op: "record usage",
			call: func(ctx context.Context, s *sqlstore.Store) error {
				return s.RecordUsage(ctx, []store.UsageCount{{Kind: store.UsageKey, Subject: k.ID, Hour: time.Now().Truncate(time.Hour), Outcome: "valid", Count: 2}})
			},
			steps: []step{{kind: exec, pattern: `^INSERT INTO \w+usage \(subject_kind, subject_id, hour_start, outcome, verifications\) VALUES`, name: "upsert", affected: 1}}},
		script{name: "RecordUsage/two batches", op: "record usage",
			call: func(ctx context.Context, s *sqlstore.Store) error {
				cs := make([]store.UsageCount, 501)
				for i := range cs {
					cs[i] = store.UsageCount{Kind: store.UsageKey, Subject: k.ID, Hour: time.Now().Truncate(time.Hour), Outcome: fmt.Sprintf("o%03d", i), Count: 1}
				}
				return s.RecordUsage(ctx, cs)
			},
			steps: tx([]step{
				{kind: exec, pattern: `^INSERT INTO \w+usage`, name: "upsert", affected: 500},
				{kind: exec, pattern: `^INSERT INTO \w+usage`, name: "upsert", affected: 1},
			}),
		}.inTx(),
		{name: "Usage", op: "read usage",
			call: func(ctx context.Context, s *sqlstore.Store) error {
				_, err := s.Usage(ctx, store.UsageQuery{Kind: store.UsageKey, Subjects: []uuid.UUID{k.ID}, From: time.Now().Add(-time.Hour), To: time.Now()})
				return err
			},
			steps: []step{{kind: query, pattern: `^SELECT subject_id, hour_start, outcome, verifications FROM \w+usage WHERE`,
				rows: func() *sqlmock.Rows {
					return sqlmock.NewRows([]string{"subject_id", "hour_start", "outcome", "verifications"}).AddRow(k.ID[:], time.Now().Truncate(time.Hour), "valid", 3)
				}}}},
		{name: "PurgeUsage", op: "purge usage",
			call: func(ctx context.Context, s *sqlstore.Store) error {
				_, err := s.PurgeUsage(ctx, time.Now())
				return err
			},
			steps: []step{{kind: exec, pattern: `^DELETE FROM \w+usage WHERE hour_start < `, name: "delete", affected: 3}}},
	}
	out = append(out, spendScripts(d, k.ID)...)
	del := []step{
		{kind: exec, pattern: `^DELETE FROM \w+keys WHERE id = `, name: "delete", affected: 1},
		{kind: exec, pattern: `^DELETE FROM \w+exercises WHERE key_id = `, name: "delete exercises", affected: 0},
		{kind: exec, pattern: `^DELETE FROM \w+usage WHERE subject_kind = `, name: "delete usage", affected: 0},
	}
	out = append(out, script{name: "Delete", op: "delete key",
		call:  func(ctx context.Context, s *sqlstore.Store) error { return s.Delete(ctx, k.ID) },
		steps: tx(del, notify)}.inTx())

	// Migrate: the version table, the applied versions (none), each DDL
	// statement, the version record, under the dialect's lock.
	ddl := []step{
		{kind: exec, pattern: `^CREATE TABLE IF NOT EXISTS \w+schema_migrations`, name: "create version table"},
		{kind: query, pattern: `^SELECT version FROM \w+schema_migrations`, name: "read versions", rows: func() *sqlmock.Rows { return sqlmock.NewRows([]string{"version"}) }},
	}
	for _, words := range migrationFiles(t, d) {
		for i, word := range words {
			ddl = append(ddl, step{kind: exec, pattern: `^` + word + ` `, name: fmt.Sprintf("statement %d", i+1)})
		}
		ddl = append(ddl, step{kind: exec, pattern: `^INSERT INTO \w+schema_migrations`, name: "record version", affected: 1})
	}
	migrate := func(ctx context.Context, s *sqlstore.Store) error { return s.Migrate(ctx) }
	switch d {
	case sqlstore.Postgres:
		out = append(out, script{name: "Migrate", op: "migrate", call: migrate,
			steps: tx([]step{{kind: exec, pattern: `^SELECT pg_advisory_xact_lock`, name: "lock"}}, ddl)}.inTx())
	case sqlstore.SQLite:
		steps := append([]step{{kind: exec, pattern: `^BEGIN IMMEDIATE$`, name: "begin"}}, ddl...)
		steps = append(steps, step{kind: exec, pattern: `^COMMIT$`, name: "commit"})
		out = append(out, script{name: "Migrate", op: "migrate", call: migrate, steps: steps,
			guard:   [2]int{1, len(steps) - 1},
			cleanup: func(mock sqlmock.Sqlmock) { mock.ExpectExec(`^ROLLBACK$`).WillReturnResult(sqlmock.NewResult(0, 0)) }})
	case sqlstore.MySQL:
		unlock := step{kind: exec, pattern: `^SELECT RELEASE_LOCK`, name: "unlock"}
		steps := append([]step{{kind: query, pattern: `^SELECT GET_LOCK`, name: "lock", rows: intRow("got", 1)}}, ddl...)
		steps = append(steps, unlock)
		out = append(out, script{name: "Migrate", op: "migrate", call: migrate, steps: steps,
			guard:   [2]int{1, len(steps) - 1},
			cleanup: func(mock sqlmock.Sqlmock) { mock.ExpectExec(unlock.pattern).WillReturnResult(sqlmock.NewResult(0, 0)) }})
	}
	return out
}

// spendScripts returns the paths of SpendUses and SpendCredits on dialect
// d: the guarded UPDATE that pays (on MySQL, in a transaction with a read
// of the balance), and the transaction that locks the row and refills it.
func spendScripts(d sqlstore.Dialect, id uuid.UUID) []script {
	var out []script
	for _, m := range []struct {
		name, op, table, balance, state string
		call                            func(ctx context.Context, s *sqlstore.Store) error
	}{
		{"SpendUses", "spend uses", "keys", "remaining_uses", "remaining_uses, refill_amount, refill_every, refill_day, refilled_at",
			func(ctx context.Context, s *sqlstore.Store) error {
				return spent(s.SpendUses(ctx, id, 2, time.Now()))
			}},
		{"SpendCredits", "spend credits", "identities", "credits_remaining", "credits_remaining, credits_refill_amount, credits_refill_every, credits_refill_day, credits_refilled_at",
			func(ctx context.Context, s *sqlstore.Store) error {
				return spent(s.SpendCredits(ctx, id, 2, time.Now()))
			}},
	} {
		take := `^UPDATE \w+` + m.table + ` SET ` + m.balance + ` = ` + m.balance + ` - `
		balance := func() *sqlmock.Rows { return sqlmock.NewRows([]string{m.balance}).AddRow(7) }
		none := func() *sqlmock.Rows { return sqlmock.NewRows([]string{m.balance}) }
		state := func() *sqlmock.Rows {
			// A daily refill of 10, last on 2025-01-01: due.
			return sqlmock.NewRows(strings.Split(m.state, ", ")).AddRow(0, 10, "day", 0, "2025-01-01T00:00:00.000000Z")
		}
		lock := step{kind: query, pattern: `^SELECT ` + m.state + ` FROM \w+` + m.table + ` WHERE id = `, name: "lock balance", rows: state}
		set := step{kind: exec, pattern: `^UPDATE \w+` + m.table + ` SET ` + m.balance + ` = (\?|\$1), `, name: "write balance", affected: 1}
		begin := step{kind: begin, name: "begin"}
		commit := step{kind: commit, name: "commit"}
		if d == sqlstore.MySQL {
			out = append(out,
				script{name: m.name + "/paid", op: m.op, call: m.call, steps: []step{begin,
					{kind: exec, pattern: take, name: "spend", affected: 1},
					{kind: query, pattern: `^SELECT ` + m.balance + ` FROM .* FOR UPDATE$`, name: "read balance", rows: balance},
					commit}}.inTx(),
				script{name: m.name + "/refilled", op: m.op, call: m.call, steps: []step{begin,
					{kind: exec, pattern: take, name: "spend", affected: 0}, lock, set, commit}}.inTx())
			continue
		}
		fast := step{kind: prepareQuery, pattern: take + `.* RETURNING ` + m.balance + `$`, name: "spend", rows: balance}
		out = append(out, script{name: m.name + "/paid", op: m.op, call: m.call, steps: []step{fast}})
		fast.rows = none
		steps := []step{fast, begin}
		if d == sqlstore.SQLite {
			// The write that takes the database's write lock first.
			steps = append(steps, step{kind: exec, pattern: take, name: "spend", affected: 0})
		}
		steps = append(steps, lock, set, commit)
		out = append(out, script{name: m.name + "/refilled", op: m.op, call: m.call, steps: steps,
			guard:   [2]int{2, len(steps) - 1},
			cleanup: func(mock sqlmock.Sqlmock) { mock.ExpectRollback() }})
	}
	return out
}

// spent checks what a spend of 2 returned: on success, 7 (the balance
// the guarded UPDATE returns) or 8 (a refill to 10, less 2); on failure,
// 0 and the error, as it was, for checkFailure.
func spent(left int64, err error) error {
	switch {
	case err != nil && left != 0:
		return fmt.Errorf("got %d with error %v, want 0", left, err) // not wrapped: checkFailure fails
	case err == nil && left != 7 && left != 8:
		return fmt.Errorf("got %d left, want 7 or 8", left)
	}
	return err
}

// expect registers steps on mock, the last one failing with fail if fail
// is not nil.
func expect(mock sqlmock.Sqlmock, steps []step, fail error) {
	for i, st := range steps {
		var err error
		if i == len(steps)-1 {
			err = fail
		}
		switch st.kind {
		case begin:
			e := mock.ExpectBegin()
			if err != nil {
				e.WillReturnError(err)
			}
		case rollback:
			mock.ExpectRollback()
		case commit:
			e := mock.ExpectCommit()
			if err != nil {
				e.WillReturnError(err)
			}
		case exec:
			e := mock.ExpectExec(st.pattern)
			if err != nil {
				e.WillReturnError(err)
			} else {
				e.WillReturnResult(sqlmock.NewResult(0, st.affected))
			}
		case query:
			e := mock.ExpectQuery(st.pattern)
			if err != nil {
				e.WillReturnError(err)
			} else {
				e.WillReturnRows(st.rows())
			}
		case prepareQuery:
			p := mock.ExpectPrepare(st.pattern)
			if err != nil {
				// The statement prepares; running it fails.
				p.ExpectQuery().WillReturnError(err)
			} else {
				p.ExpectQuery().WillReturnRows(st.rows())
			}
		}
	}
}

// newMockStore returns a store of dialect d over a new sqlmock database.
func newMockStore(t *testing.T, d sqlstore.Dialect) (*sqlstore.Store, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New()
	if err != nil {
		t.Fatalf("sqlmock: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := sqlstore.New(sqlstore.Config{DB: sqlx.NewDb(db, "sqlmock"), Dialect: d})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, mock
}

func TestMockDriverErrors(t *testing.T) {
	t.Parallel()
	errDriver := errors.New("driver exploded")
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres, sqlstore.MySQL} {
		for _, sc := range scripts(t, d) {
			t.Run(d.String()+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				t.Run("success", func(t *testing.T) {
					s, mock := newMockStore(t, d)
					expect(mock, sc.steps, nil)
					if err := sc.call(t.Context(), s); err != nil {
						t.Fatalf("%s: got error %v, want nil", sc.name, err)
					}
					if err := mock.ExpectationsWereMet(); err != nil {
						t.Errorf("%s: %v", sc.name, err)
					}
				})
				for i, st := range sc.steps {
					if st.kind == rollback {
						continue
					}
					t.Run(fmt.Sprintf("fail step %d %s", i, st.name), func(t *testing.T) {
						s, mock := newMockStore(t, d)
						expect(mock, sc.steps[:i+1], errDriver)
						if i >= sc.guard[0] && i < sc.guard[1] {
							sc.cleanup(mock)
						}
						err := sc.call(t.Context(), s)
						checkFailure(t, mock, sc, st, err, errDriver)
					})
				}
				// A connection lost after the first statement of a
				// transaction: the second statement fails with ErrBadConn.
				if sc.guard[1]-sc.guard[0] >= 2 {
					i := sc.guard[0] + 1
					t.Run("connection lost", func(t *testing.T) {
						s, mock := newMockStore(t, d)
						expect(mock, sc.steps[:i+1], driver.ErrBadConn)
						if sc.steps[sc.guard[0]-1].kind == begin {
							sc.cleanup(mock) // database/sql still asks the driver to roll back
						}
						err := sc.call(t.Context(), s)
						checkFailure(t, mock, sc, sc.steps[i], err, driver.ErrBadConn)
					})
				}
			})
		}
	}
}

// checkFailure checks err and that the mock saw exactly the expected calls.
func checkFailure(t *testing.T, mock sqlmock.Sqlmock, sc script, st step, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want one wrapping %v", sc.name, err, want)
	}
	if err != nil {
		msg := err.Error()
		prefix := "sqlstore: " + sc.op + ": "
		if !strings.HasPrefix(msg, prefix) {
			t.Errorf("%s: error %q: want prefix %q naming the operation", sc.name, msg, prefix)
		}
		if st.name != "" && !strings.Contains(msg, st.name+": ") {
			t.Errorf("%s: error %q: want it to name the failed step %q", sc.name, msg, st.name)
		}
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Errorf("%s: want a rollback and no statement after the failure: %v", sc.name, err)
	}
}

// TestMockUniqueViolation checks that each engine's own unique-violation
// error becomes store.ErrDuplicate, keeping the driver error, and that
// other constraint errors do not.
func TestMockUniqueViolation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dialect sqlstore.Dialect
		err     error
		dup     bool
	}{
		{sqlstore.Postgres, sqlStateError("23505"), true},
		{sqlstore.Postgres, sqlStateError("23503"), false}, // foreign key
		{sqlstore.SQLite, codeError(2067), true},           // SQLITE_CONSTRAINT_UNIQUE
		{sqlstore.SQLite, codeError(1555), true},           // SQLITE_CONSTRAINT_PRIMARYKEY
		{sqlstore.SQLite, codeError(1299), false},          // SQLITE_CONSTRAINT_NOTNULL
		{sqlstore.SQLite, errors.New("UNIQUE constraint failed: keys.hash"), true},
		{sqlstore.MySQL, errors.New("Error 1062 (23000): Duplicate entry 'x' for key 'hash'"), true},
		{sqlstore.MySQL, errors.New("Error 1452 (23000): Cannot add or update a child row"), false},
		{sqlstore.MySQL, fmt.Errorf("wrapped: %w", errors.New("Error 1062: Duplicate entry")), true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v/%v", tc.dialect, tc.err), func(t *testing.T) {
			s, mock := newMockStore(t, tc.dialect)
			if tc.dialect == sqlstore.Postgres {
				mock.ExpectBegin() // the insert and its notification
			}
			mock.ExpectExec(`^INSERT`).WillReturnError(tc.err)
			if tc.dialect == sqlstore.Postgres {
				mock.ExpectRollback()
			}
			err := s.Create(t.Context(), testKey("dup"))
			if got := errors.Is(err, store.ErrDuplicate); got != tc.dup {
				t.Errorf("Create: errors.Is(%v, ErrDuplicate): got %v, want %v", err, got, tc.dup)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("Create: got error %v, want it to wrap the driver error %v", err, tc.err)
			}
		})
	}
}

// sqlStateError mimics *pgconn.PgError.
type sqlStateError string

func (e sqlStateError) Error() string    { return "pg error " + string(e) }
func (e sqlStateError) SQLState() string { return string(e) }

// codeError mimics *sqlite.Error of modernc.org/sqlite.
type codeError int

func (e codeError) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e codeError) Code() int     { return int(e) }

// TestMockRetry checks that a deadlock is retried and a second one in a
// row is too, up to the limit, while other errors are not retried.
func TestMockRetry(t *testing.T) {
	t.Parallel()
	deadlock := errors.New("Error 1213 (40001): Deadlock found when trying to get lock")
	s, mock := newMockStore(t, sqlstore.MySQL)
	mock.ExpectBegin()
	mock.ExpectExec(`^DELETE`).WillReturnError(deadlock)
	mock.ExpectRollback()
	mock.ExpectBegin()
	mock.ExpectExec(`^DELETE FROM \w+keys`).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectExec(`^DELETE FROM \w+exercises`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec(`^DELETE FROM \w+usage`).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectCommit()
	if err := s.Delete(t.Context(), uuid.New()); err != nil {
		t.Errorf("Delete after one deadlock: got error %v, want nil", err)
	}
	for range 3 {
		mock.ExpectBegin()
		mock.ExpectExec(`^DELETE`).WillReturnError(deadlock)
		mock.ExpectRollback()
	}
	if err := s.Delete(t.Context(), uuid.New()); !errors.Is(err, deadlock) {
		t.Errorf("Delete after three deadlocks: got error %v, want %v", err, deadlock)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// TestMockTouchOneStatement checks that a batch is one statement whatever
// its size up to the batch limit.
func TestMockTouchOneStatement(t *testing.T) {
	t.Parallel()
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres, sqlstore.MySQL} {
		t.Run(d.String(), func(t *testing.T) {
			s, mock := newMockStore(t, d)
			used := make(map[uuid.UUID]time.Time)
			for range 500 {
				used[uuid.New()] = time.Now()
			}
			args := make([]driver.Value, 1000)
			for i := range args {
				args[i] = sqlmock.AnyArg()
			}
			mock.ExpectExec(`UPDATE .*last_used_at`).WithArgs(args...).WillReturnResult(sqlmock.NewResult(0, 500))
			if err := s.TouchLastUsed(t.Context(), used); err != nil {
				t.Fatalf("TouchLastUsed(500 keys): %v", err)
			}
			if err := mock.ExpectationsWereMet(); err != nil {
				t.Errorf("TouchLastUsed(500 keys): want one statement with 1000 arguments: %v", err)
			}
		})
	}
}

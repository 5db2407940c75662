package sqlstore_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore"
)

// bigRows is the number of keys of TestListMillionKeys.
const bigRows = 1_000_000

// TestListMillionKeys checks, on PostgreSQL with a million keys, that a
// page of 100 costs the same at the start of the table and at its end:
// List pages with a cursor (id > last id ORDER BY id LIMIT n) on an index,
// never with an OFFSET. It logs the times of the first, a middle and the
// last page (and, for contrast, of the last page by OFFSET) and the plans
// of EXPLAIN (ANALYZE, BUFFERS). It takes a minute and runs only with
// KEYGATE_BIG=1 and KEYGATE_TEST_POSTGRES_DSN:
//
//	KEYGATE_BIG=1 KEYGATE_TEST_POSTGRES_DSN=postgres://... go test -run ListMillionKeys -v ./store/sqlstore
func TestListMillionKeys(t *testing.T) {
	if os.Getenv("KEYGATE_BIG") != "1" {
		t.Skip("KEYGATE_BIG is not 1")
	}
	db := openServer(t, "pgx", postgresEnv)
	s := newStore(t, db, sqlstore.Postgres)
	ctx := context.Background()
	table := s.Table()

	start := time.Now()
	// One statement builds every row on the server: keys spread over 100
	// workspaces, a tenth of them revoked, with scopes and metadata as real
	// keys have, and ids that grow with creation as UUIDv7s do.
	if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, name, owner, workspace, role, scopes, metadata,
		hash, pepper_id, hint, created_at, updated_at, expires_at, revoked_at, version)
	SELECT lpad(to_hex(i), 32, '0')::uuid, 'key-' || i, 'owner-' || (i % 1000), 'ws-' || (i % 100), 'editor',
		'["billing:write"]'::jsonb, '{"team":"payments"}'::jsonb,
		sha256(int8send(i)), 'p1', 'kg_' || substr(md5(i::text), 1, 6), now(), now(), now() + interval '30 days',
		CASE WHEN i % 10 = 0 THEN now() END, 1
	FROM generate_series(1, $1) AS i`, bigRows); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE `+table); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d rows in %v", bigRows, time.Since(start).Round(time.Millisecond))

	// The cursors of the middle and of the last page of 100.
	cursor := func(workspace string, offset int) uuid.UUID {
		var id uuid.UUID
		if err := db.GetContext(ctx, &id, `SELECT id FROM `+table+` WHERE $1 = '' OR workspace = $1 ORDER BY id OFFSET $2 LIMIT 1`, workspace, offset); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Workspace ws-42 holds a hundredth of the keys.
	middle, last, wsLast := cursor("", bigRows/2-1), cursor("", bigRows-101), cursor("ws-42", bigRows/100-101)

	const rounds = 200
	timeList := func(opts store.ListOptions) (time.Duration, *store.Page) {
		var page *store.Page
		if _, err := s.List(ctx, opts); err != nil { // warm up
			t.Fatal(err)
		}
		times := make([]time.Duration, rounds)
		for i := range times {
			begin := time.Now()
			var err error
			if page, err = s.List(ctx, opts); err != nil {
				t.Fatal(err)
			}
			times[i] = time.Since(begin)
		}
		slices.Sort(times)
		return times[rounds/2], page
	}
	first, firstPage := timeList(store.ListOptions{Limit: 100})
	mid, _ := timeList(store.ListOptions{Limit: 100, After: middle})
	end, lastPage := timeList(store.ListOptions{Limit: 100, After: last})
	wsFirst, _ := timeList(store.ListOptions{Limit: 100, Workspace: "ws-42"})
	ws, wsPage := timeList(store.ListOptions{Limit: 100, Workspace: "ws-42", After: wsLast})
	active, _ := timeList(store.ListOptions{Limit: 100, Revoked: store.OnlyActive, After: middle})
	if len(firstPage.Keys) != 100 || firstPage.Next == uuid.Nil {
		t.Errorf("first page: %d keys, next %v; want 100 and a cursor", len(firstPage.Keys), firstPage.Next)
	}
	if len(wsPage.Keys) != 100 || wsPage.Next != uuid.Nil {
		t.Errorf("last page of ws-42: %d keys, next %v; want 100 and no cursor", len(wsPage.Keys), wsPage.Next)
	}
	if len(lastPage.Keys) != 100 || lastPage.Next != uuid.Nil {
		t.Errorf("last page: %d keys, next %v; want 100 and no cursor", len(lastPage.Keys), lastPage.Next)
	}
	// For contrast: the last page by OFFSET, which reads every row before it.
	var offset time.Duration
	{
		begin := time.Now()
		const offsetRounds = 5
		for range offsetRounds {
			rows, err := db.QueryxContext(ctx, `SELECT * FROM `+table+` ORDER BY id LIMIT 101 OFFSET $1`, bigRows-100)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
			}
			rows.Close()
		}
		offset = time.Since(begin) / offsetRounds
	}
	t.Logf("page of 100, median of %d: first %v, middle %v, last %v; workspace ws-42 (10,000 keys) first %v, last %v; middle, active only %v; last by OFFSET %v",
		rounds, first.Round(time.Microsecond), mid.Round(time.Microsecond), end.Round(time.Microsecond),
		wsFirst.Round(time.Microsecond), ws.Round(time.Microsecond), active.Round(time.Microsecond), offset.Round(time.Microsecond))
	if end > 3*first+time.Millisecond {
		t.Errorf("the last page takes %v, the first %v: paging is not on an index", end, first)
	}

	// The plans of the statements List sends (the store's own SQL, with
	// the cursor as its first argument), read with EXPLAIN.
	cols := "id, name, description, owner, workspace, role, scopes, metadata, hash, pepper_id, prev_hash, prev_pepper_id, prev_expires_at, hint, rate_limit, rate_window_ns, remaining_uses, allowed_cidrs, created_at, updated_at, expires_at, last_used_at, revoked_at, version"
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"first page", `SELECT ` + cols + ` FROM ` + table + ` ORDER BY id LIMIT $1`, []any{101}},
		{"last page", `SELECT ` + cols + ` FROM ` + table + ` WHERE id > $1 ORDER BY id LIMIT $2`, []any{last.String(), 101}},
		{"last page of a workspace", `SELECT ` + cols + ` FROM ` + table + ` WHERE workspace = $1 AND id > $2 ORDER BY id LIMIT $3`, []any{"ws-42", wsLast.String(), 101}},
	} {
		plan := explain(t, db, q.sql, q.args...)
		t.Logf("EXPLAIN (ANALYZE, BUFFERS) of the %s:\n%s", q.name, plan)
		if !strings.Contains(plan, "Index Scan") || strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Sort") {
			t.Errorf("the %s is not an index range scan:\n%s", q.name, plan)
		}
	}
}

// explain returns the plan of EXPLAIN (ANALYZE, BUFFERS) of query.
func explain(t *testing.T, db *sqlx.DB, query string, args ...any) string {
	t.Helper()
	var lines []string
	if err := db.Select(&lines, `EXPLAIN (ANALYZE, BUFFERS) `+query, args...); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore"
	"github.com/keygate/keygate/store/storetest"
)

// The environment variables naming the test servers. Tests of an engine
// whose variable is unset are skipped; CI always sets both.
const (
	postgresEnv = "KEYGATE_TEST_POSTGRES_DSN"
	mysqlEnv    = "KEYGATE_TEST_MYSQL_DSN"
)

// engine is one database engine under test.
type engine struct {
	name    string
	dialect sqlstore.Dialect
	// open returns a new handle on the engine's test database, closed at
	// cleanup: for SQLite a new file in a temporary directory. It skips
	// the test when the engine's server is not configured.
	open func(t testing.TB) *sqlx.DB
}

// engines returns every engine, SQLite first.
func engines() []engine {
	return []engine{
		{"sqlite", sqlstore.SQLite, func(t testing.TB) *sqlx.DB {
			return openSQLite(t, filepath.Join(t.TempDir(), "keys.db"))
		}},
		{"postgres", sqlstore.Postgres, func(t testing.TB) *sqlx.DB { return openServer(t, "pgx", postgresEnv) }},
		{"mysql", sqlstore.MySQL, func(t testing.TB) *sqlx.DB { return openServer(t, "mysql", mysqlEnv) }},
	}
}

// sqliteDSN is the recommended modernc.org/sqlite DSN for a store: a busy
// timeout so that concurrent writers wait instead of failing, WAL so that
// readers do not block writers.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
}

// openSQLite opens the SQLite database file at path.
func openSQLite(t testing.TB, path string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("sqlite", sqliteDSN(path))
	if err != nil {
		t.Fatalf("open sqlite %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// openServer opens the server database named by the environment variable
// env, or skips the test when it is unset.
func openServer(t testing.TB, driver, env string) *sqlx.DB {
	t.Helper()
	dsn := os.Getenv(env)
	if dsn == "" {
		t.Skipf("%s is not set", env)
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("ping %s (%s): %v", driver, env, err)
	}
	return db
}

// randomPrefix returns a table prefix no other test uses.
func randomPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b) + "_"
}

// newStore returns a migrated, empty store on db under a fresh table
// prefix; its tables are dropped at cleanup.
func newStore(t testing.TB, db *sqlx.DB, d sqlstore.Dialect) *sqlstore.Store {
	t.Helper()
	prefix := randomPrefix(t)
	s, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: d, TablePrefix: prefix})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		dropTables(t, db, s.Tables())
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// prefixTables returns the tables a store of dialect d under prefix makes.
func prefixTables(t testing.TB, d sqlstore.Dialect, prefix string) []string {
	t.Helper()
	s, err := sqlstore.New(sqlstore.Config{DB: sqlx.NewDb(nil, "none"), Dialect: d, TablePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s.Tables()
}

// dropTables drops tables.
func dropTables(t testing.TB, db *sqlx.DB, tables []string) {
	t.Helper()
	for _, table := range tables {
		if _, err := db.Exec("DROP TABLE IF EXISTS " + table); err != nil {
			t.Errorf("drop table %s: %v", table, err)
		}
	}
}

// TestConformance runs the shared store suite against every engine.
func TestConformance(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var shared *sqlx.DB
			if e.dialect != sqlstore.SQLite {
				shared = e.open(t)
			}
			storetest.Run(t, func(t *testing.T) store.Store {
				db := shared
				if db == nil {
					db = e.open(t)
				}
				return newStore(t, db, e.dialect)
			})
		})
	}
}

// testKey returns a key with every field set.
func testKey(name string) *store.Key {
	base := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("X", 3600))
	uses := int64(3)
	return &store.Key{
		ID:            uuid.Must(uuid.NewV7()),
		Name:          name,
		Description:   "desc ünïcode",
		Owner:         "alice",
		Workspace:     "acme",
		Role:          "admin",
		Scopes:        []string{"keys:read"},
		Metadata:      map[string]string{"k": "v"},
		Hash:          randomBytes(32),
		PepperID:      "p2",
		PrevHash:      randomBytes(32),
		PrevPepperID:  "p1",
		PrevExpiresAt: base.Add(time.Hour),
		Hint:          "kg_ab…",
		RateLimit:     10,
		RateWindow:    time.Minute + time.Nanosecond,
		RemainingUses: &uses,
		AllowedCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		CreatedAt:     base,
		UpdatedAt:     base.Add(time.Second),
		ExpiresAt:     base.Add(24 * time.Hour),
		LastUsedAt:    base.Add(2 * time.Second),
		RevokedAt:     base.Add(3 * time.Second),
	}
}

// utcMicros is t as a store returns it: UTC, to the microsecond; the zero
// time stays zero.
func utcMicros(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestRoundTripEncoding checks what the conformance suite leaves open:
// times come back in UTC truncated to the microsecond, nil and empty
// collections keep their difference, and an empty PrevHash is nil.
func TestRoundTripEncoding(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, e.open(t), e.dialect)
			full := testKey("full")
			empty := testKey("empty")
			empty.Scopes, empty.Metadata, empty.AllowedCIDRs = []string{}, map[string]string{}, []netip.Prefix{}
			empty.PrevHash, empty.RemainingUses = nil, nil
			empty.PrevExpiresAt, empty.ExpiresAt, empty.LastUsedAt, empty.RevokedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			nils := testKey("nils")
			nils.Scopes, nils.Metadata, nils.AllowedCIDRs = nil, nil, nil

			for _, k := range []*store.Key{full, empty, nils} {
				if err := s.Create(t.Context(), k); err != nil {
					t.Fatalf("Create(%s): %v", k.Name, err)
				}
				got, err := s.Get(t.Context(), k.ID)
				if err != nil {
					t.Fatalf("Get(%s): %v", k.Name, err)
				}
				for _, tt := range []struct {
					field     string
					got, want time.Time
				}{
					{"CreatedAt", got.CreatedAt, utcMicros(k.CreatedAt)},
					{"ExpiresAt", got.ExpiresAt, utcMicros(k.ExpiresAt)},
					{"RevokedAt", got.RevokedAt, utcMicros(k.RevokedAt)},
				} {
					if tt.got != tt.want { // == also compares the location
						t.Errorf("%s: %s: got %v, want %v (UTC, microseconds)", k.Name, tt.field, tt.got, tt.want)
					}
				}
				if (got.Scopes == nil) != (k.Scopes == nil) || (got.Metadata == nil) != (k.Metadata == nil) ||
					(got.AllowedCIDRs == nil) != (k.AllowedCIDRs == nil) {
					t.Errorf("%s: nil-ness: got scopes %#v metadata %#v cidrs %#v, want %#v %#v %#v",
						k.Name, got.Scopes, got.Metadata, got.AllowedCIDRs, k.Scopes, k.Metadata, k.AllowedCIDRs)
				}
				if got.RateWindow != k.RateWindow {
					t.Errorf("%s: RateWindow: got %v, want %v", k.Name, got.RateWindow, k.RateWindow)
				}
				if k.PrevHash == nil && got.PrevHash != nil {
					t.Errorf("%s: PrevHash: got %x, want nil", k.Name, got.PrevHash)
				}
			}
		})
	}
}

// TestNew checks Config validation and dialect inference.
func TestNew(t *testing.T) {
	t.Parallel()
	db := sqlx.NewDb(nil, "pgx")
	tests := []struct {
		name    string
		cfg     sqlstore.Config
		wantErr error
		want    sqlstore.Dialect
		table   string
	}{
		{"defaults", sqlstore.Config{DB: db}, nil, sqlstore.Postgres, "keygate_keys"},
		{"explicit dialect wins", sqlstore.Config{DB: db, Dialect: sqlstore.MySQL}, nil, sqlstore.MySQL, "keygate_keys"},
		{"sqlite driver", sqlstore.Config{DB: sqlx.NewDb(nil, "sqlite")}, nil, sqlstore.SQLite, "keygate_keys"},
		{"mysql driver", sqlstore.Config{DB: sqlx.NewDb(nil, "mysql")}, nil, sqlstore.MySQL, "keygate_keys"},
		{"prefix", sqlstore.Config{DB: db, TablePrefix: "app_1_"}, nil, sqlstore.Postgres, "app_1_keys"},
		{"longest prefix", sqlstore.Config{DB: db, TablePrefix: "a234567890123456789012345678901"}, nil, sqlstore.Postgres, "a234567890123456789012345678901keys"},
		{"nil DB", sqlstore.Config{}, sqlstore.ErrConfig, 0, ""},
		{"unknown driver", sqlstore.Config{DB: sqlx.NewDb(nil, "oracle")}, sqlstore.ErrConfig, 0, ""},
		{"unknown dialect", sqlstore.Config{DB: db, Dialect: 42}, sqlstore.ErrConfig, 0, ""},
		{"prefix too long", sqlstore.Config{DB: db, TablePrefix: "a2345678901234567890123456789012"}, sqlstore.ErrConfig, 0, ""},
		{"prefix upper case", sqlstore.Config{DB: db, TablePrefix: "App_"}, sqlstore.ErrConfig, 0, ""},
		{"prefix starts with digit", sqlstore.Config{DB: db, TablePrefix: "1app_"}, sqlstore.ErrConfig, 0, ""},
		{"prefix injection", sqlstore.Config{DB: db, TablePrefix: "x; DROP TABLE y; --"}, sqlstore.ErrConfig, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlstore.New(tc.cfg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("New: got error %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if s.Dialect() != tc.want || s.Table() != tc.table {
				t.Errorf("New: got dialect %v table %q, want %v %q", s.Dialect(), s.Table(), tc.want, tc.table)
			}
		})
	}
}

// TestMigrate checks that Migrate is idempotent and safe to run from
// several instances at once: each migration is recorded once.
func TestMigrate(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			rounds := 1
			if e.dialect == sqlstore.SQLite {
				// Instances migrating one new SQLite file at once used to
				// fail about once in twenty rounds with SQLITE_BUSY while
				// connecting (issue 8, finding 12): run enough rounds to
				// catch that.
				rounds = 40
			}
			for round := range rounds {
				t.Run(fmt.Sprint("round", round), func(t *testing.T) { testMigrate(t, e) })
			}
		})
	}
}

// testMigrate migrates one new database from several instances at once.
func testMigrate(t *testing.T, e engine) {
	{
		{
			path := filepath.Join(t.TempDir(), "keys.db")
			open := e.open
			if e.dialect == sqlstore.SQLite {
				open = func(t testing.TB) *sqlx.DB { return openSQLite(t, path) }
			}
			prefix := randomPrefix(t)
			first := open(t)
			t.Cleanup(func() { dropTables(t, first, prefixTables(t, e.dialect, prefix)) })

			const instances = 4
			var wg sync.WaitGroup
			errs := make([]error, instances)
			for i := range instances {
				db := open(t) // one handle per instance, as separate processes would have
				wg.Go(func() {
					s, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: e.dialect, TablePrefix: prefix})
					if err == nil {
						err = s.Migrate(t.Context())
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("concurrent Migrate #%d: got error %v, want nil", i, err)
				}
			}
			s, err := sqlstore.New(sqlstore.Config{DB: first, Dialect: e.dialect, TablePrefix: prefix})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate again: got error %v, want nil", err)
			}
			var versions []int64
			if err := first.Select(&versions, "SELECT version FROM "+prefix+"schema_migrations ORDER BY version"); err != nil {
				t.Fatalf("read versions: %v", err)
			}
			if want := migrationVersions(t, e.dialect); !slices.Equal(versions, want) {
				t.Errorf("recorded versions: got %v, want %v (each migration once)", versions, want)
			}
			k := testKey("after-migrate")
			if err := s.Create(t.Context(), k); err != nil {
				t.Errorf("Create after Migrate: got error %v, want nil", err)
			}
		}
	}
}

// migrationVersions returns the versions of the migration files of d, in
// order.
func migrationVersions(t *testing.T, d sqlstore.Dialect) []int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", d.String(), "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migration files of %v: %v, %v", d, files, err)
	}
	var vs []int64
	for _, f := range files {
		var v int64
		if _, err := fmt.Sscanf(filepath.Base(f), "%d_", &v); err != nil {
			t.Fatalf("migration file %s: %v", f, err)
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// TestTouchLastUsedLargeBatch sends more keys than one statement takes.
func TestTouchLastUsedLargeBatch(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			s := newStore(t, db, e.dialect)
			const n = 520
			base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			used := make(map[uuid.UUID]time.Time, n)
			ids := make([]uuid.UUID, n)
			for i := range n {
				k := testKey("k" + uuid.NewString())
				k.LastUsedAt = base
				if i == 0 {
					k.LastUsedAt = base.Add(time.Hour) // newer than the touch: must stay
				}
				if err := s.Create(t.Context(), k); err != nil {
					t.Fatalf("Create: %v", err)
				}
				ids[i] = k.ID
				used[k.ID] = base.Add(time.Duration(i+1) * time.Second)
			}
			used[uuid.Must(uuid.NewV7())] = base // unknown: ignored
			if err := s.TouchLastUsed(t.Context(), used); err != nil {
				t.Fatalf("TouchLastUsed(%d keys): %v", len(used), err)
			}
			for i, id := range ids {
				if i%97 != 0 && i != n-1 {
					continue // a sample, across both statements
				}
				got, err := s.Get(t.Context(), id)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				want := used[id]
				if i == 0 {
					want = base.Add(time.Hour)
				}
				if !got.LastUsedAt.Equal(want) {
					t.Errorf("key #%d: LastUsedAt: got %v, want %v", i, got.LastUsedAt, want)
				}
				if got.Version != 1 {
					t.Errorf("key #%d: Version: got %d, want 1 (touch must not change it)", i, got.Version)
				}
			}
		})
	}
}

// TestMigrateUpgrades upgrades a store made by the first schema version,
// holding a key, to the latest: the key survives and reads back with the
// new fields zero. On MySQL, whose DDL is not transactional, a version 2
// that failed after its first statement is completed by running Migrate
// again.
func TestMigrateUpgrades(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			prefix := randomPrefix(t)
			t.Cleanup(func() { dropTables(t, db, prefixTables(t, e.dialect, prefix)) })
			text, err := os.ReadFile(filepath.Join("migrations", e.dialect.String(), "0001_create_keys.sql"))
			if err != nil {
				t.Fatal(err)
			}
			for stmt := range strings.SplitSeq(strings.ReplaceAll(string(text), "{prefix}", prefix), ";\n") {
				if strings.TrimSpace(stmt) != "" {
					if _, err := db.Exec(stmt); err != nil {
						t.Fatalf("version 1: %v", err)
					}
				}
			}
			if _, err := db.Exec("CREATE TABLE " + prefix + "schema_migrations (version BIGINT NOT NULL PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("INSERT INTO " + prefix + "schema_migrations (version) VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if e.dialect == sqlstore.MySQL {
				// Version 2's first statement ran; the rest did not.
				if _, err := db.Exec("ALTER TABLE " + prefix + "keys ADD COLUMN disabled_at DATETIME(6) NULL"); err != nil {
					t.Fatal(err)
				}
			}
			id := uuid.Must(uuid.NewV7())
			idArg := any(id[:])
			if e.dialect == sqlstore.Postgres {
				idArg = id.String()
			}
			if _, err := db.Exec(db.Rebind("INSERT INTO "+prefix+"keys (id, name, description, hash) VALUES (?, ?, ?, ?)"), idArg, "old", "", []byte("hash-of-an-old-key")); err != nil {
				t.Fatal(err)
			}
			s, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: e.dialect, TablePrefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate from version 1: %v", err)
			}
			k, err := s.Get(t.Context(), id)
			if err != nil || k.Name != "old" || !k.DisabledAt.IsZero() || !k.ExpiryNotified.IsZero() {
				t.Fatalf("the old key after the upgrade: %+v, %v", k, err)
			}
			k.DisabledAt = time.Now()
			if err := s.Update(t.Context(), k); err != nil {
				t.Fatalf("Update with a new field: %v", err)
			}
			if got, _ := s.Get(t.Context(), id); got.DisabledAt.IsZero() {
				t.Error("DisabledAt did not round-trip after the upgrade")
			}
		})
	}
}

// applyVersions applies the migration files of d up to version last by
// hand, as an older release's Migrate left the database, and records
// them.
func applyVersions(t *testing.T, db *sqlx.DB, d sqlstore.Dialect, prefix string, last int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", d.String(), "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if _, err := db.Exec("CREATE TABLE " + prefix + "schema_migrations (version BIGINT NOT NULL PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	for i, f := range files[:last] {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for stmt := range strings.SplitSeq(strings.ReplaceAll(string(text), "{prefix}", prefix), ";\n") {
			if strings.TrimSpace(stmt) != "" {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
			}
		}
		if _, err := db.Exec(db.Rebind("INSERT INTO "+prefix+"schema_migrations (version) VALUES (?)"), i+1); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrateKeyLimits upgrades a store of schema version 7 holding a key
// with a rate limit and a usage limit, and an identity with credits that
// refill, to version 8 (a key's named rate limits and the refill of its
// uses): the key reads back as it was, its rate limit its "default" and
// its uses without a refill, and takes the new fields afterwards; the
// identity keeps its credits.
func TestMigrateKeyLimits(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			prefix := randomPrefix(t)
			t.Cleanup(func() { dropTables(t, db, prefixTables(t, e.dialect, prefix)) })
			applyVersions(t, db, e.dialect, prefix, 7)
			id, identity := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
			idArg, identityArg := any(id[:]), any(identity[:])
			if e.dialect == sqlstore.Postgres {
				idArg, identityArg = id.String(), identity.String()
			}
			refilled := "2026-03-01T00:00:00.000000Z"
			if e.dialect == sqlstore.MySQL {
				refilled = "2026-03-01 00:00:00"
			}
			if _, err := db.Exec(db.Rebind("INSERT INTO "+prefix+"identities (id, external_id, credits_remaining, credits_refill_amount, credits_refill_every, credits_refill_day, credits_refilled_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
				identityArg, "cus_1", 40, 100, "month", 31, refilled); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(db.Rebind("INSERT INTO "+prefix+"keys (id, name, description, hash, rate_limit, rate_window_ns, remaining_uses, identity_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
				idArg, "old", "", []byte("hash-of-an-old-key"), 5, int64(time.Minute), 7, identityArg); err != nil {
				t.Fatal(err)
			}
			s, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: e.dialect, TablePrefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate from version 7: %v", err)
			}
			k, err := s.Get(t.Context(), id)
			if err != nil {
				t.Fatalf("the old key after the upgrade: %v", err)
			}
			if k.RateLimit != 5 || k.RateWindow != time.Minute || k.RemainingUses == nil || *k.RemainingUses != 7 ||
				k.RateLimits != nil || k.Refill != nil || !k.RefilledAt.IsZero() || k.IdentityID != identity {
				t.Fatalf("the old key after the upgrade: got %+v, want its rate limit 5/1m and 7 uses, no named limit, no refill", k)
			}
			ident, err := s.GetIdentity(t.Context(), identity)
			if err != nil || ident.Credits == nil || ident.Credits.Remaining != 40 || ident.Credits.Refill == nil ||
				*ident.Credits.Refill != (store.Refill{Amount: 100, Every: store.PeriodMonth, Day: 31}) ||
				!ident.Credits.RefilledAt.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("the old identity after the upgrade: got %+v (credits %+v), %v", ident, ident.Credits, err)
			}
			k.RateLimits = []store.RateLimit{{Name: "tokens", Requests: 1000, Window: time.Hour, OnDemand: true}}
			k.Refill = &store.Refill{Amount: 10, Every: store.PeriodDay}
			k.RefilledAt = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
			if err := s.Update(t.Context(), k); err != nil {
				t.Fatalf("Update with the new fields: %v", err)
			}
			got, err := s.Get(t.Context(), id)
			if err != nil || !slices.Equal(got.RateLimits, k.RateLimits) || got.Refill == nil || *got.Refill != *k.Refill || !got.RefilledAt.Equal(k.RefilledAt) {
				t.Fatalf("the new fields after the upgrade: got %+v, %v", got, err)
			}
		})
	}
}

// TestSpendManyInstances races spends across a refill boundary through
// several stores, each on its own database handle (so its own
// connections), as instances of an application sharing one database
// would: the refill must happen once, for keys and for identities.
func TestSpendManyInstances(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			const instances = 4
			open := e.open
			if e.dialect == sqlstore.SQLite {
				path := filepath.Join(t.TempDir(), "keys.db")
				open = func(t testing.TB) *sqlx.DB { return openSQLite(t, path) }
			}
			first := newStore(t, open(t), e.dialect)
			prefix := strings.TrimSuffix(first.Table(), "keys")
			stores := []*sqlstore.Store{first}
			for range instances - 1 {
				s, err := sqlstore.New(sqlstore.Config{DB: open(t), Dialect: e.dialect, TablePrefix: prefix})
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				t.Cleanup(func() { _ = s.Close() })
				stores = append(stores, s)
			}
			var turn atomic.Int64
			next := func() *sqlstore.Store { return stores[turn.Add(1)%instances] }
			refilledAt := time.Date(2027, 3, 10, 8, 0, 0, 0, time.UTC)
			boundary := time.Date(2027, 3, 11, 0, 0, 0, 0, time.UTC)

			k := testKey("shared")
			uses := int64(10)
			k.RemainingUses, k.Refill, k.RefilledAt = &uses, &store.Refill{Amount: 20, Every: store.PeriodDay}, refilledAt
			if err := first.Create(t.Context(), k); err != nil {
				t.Fatal(err)
			}
			storetest.RaceSpends(t, func(id uuid.UUID, cost int64, now time.Time) (int64, error) {
				return next().SpendUses(t.Context(), id, cost, now)
			}, k.ID)
			got, err := first.Get(t.Context(), k.ID)
			if err != nil {
				t.Fatal(err)
			}
			if *got.RemainingUses != 0 || !got.RefilledAt.Equal(boundary) || got.Version != 31 {
				t.Errorf("key after the race: %d uses, refilled %s, version %d; want 0, %s, 31", *got.RemainingUses, got.RefilledAt, got.Version, boundary)
			}

			id := &store.Identity{ID: uuid.Must(uuid.NewV7()), ExternalID: "acme",
				Credits: &store.Credits{Remaining: 10, Refill: &store.Refill{Amount: 20, Every: store.PeriodDay}, RefilledAt: refilledAt}}
			if err := first.CreateIdentity(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			storetest.RaceSpends(t, func(id uuid.UUID, cost int64, now time.Time) (int64, error) {
				return next().SpendCredits(t.Context(), id, cost, now)
			}, id.ID)
			gotID, err := first.GetIdentity(t.Context(), id.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c := gotID.Credits; c.Remaining != 0 || !c.RefilledAt.Equal(boundary) || gotID.Version != 1 {
				t.Errorf("identity after the race: %d credits, refilled %s, version %d; want 0, %s, 1", c.Remaining, c.RefilledAt, gotID.Version, boundary)
			}
		})
	}
}

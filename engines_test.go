package keygate_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
	"github.com/keygate/keygate/store/sqlstore"
	"github.com/keygate/keygate/store/sqlstore/pgnotify"
)

// engines returns a fresh store of each engine available: memory and
// SQLite always, PostgreSQL and MySQL/MariaDB when their DSN variables are
// set (.ci/run always sets them).
func engines(t *testing.T) map[string]func(t *testing.T) store.Store {
	t.Helper()
	sql := func(driver, dsn string, d sqlstore.Dialect) func(t *testing.T) store.Store {
		return func(t *testing.T) store.Store {
			t.Helper()
			if driver == "sqlite" {
				dsn = "file:" + filepath.Join(t.TempDir(), "keys.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
			}
			db, err := sqlx.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			suffix := make([]byte, 4)
			rand.Read(suffix)
			prefix := "mgr" + hex.EncodeToString(suffix) + "_"
			st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: d, TablePrefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				st.Close()
				for _, table := range st.Tables() {
					if _, err := db.Exec("DROP TABLE IF EXISTS " + table); err != nil {
						t.Errorf("drop %s: %v", table, err)
					}
				}
			})
			return st
		}
	}
	out := map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return memory.New() },
		"sqlite": sql("sqlite", "", sqlstore.SQLite),
	}
	if dsn := os.Getenv("KEYGATE_TEST_POSTGRES_DSN"); dsn != "" {
		out["postgres"] = sql("pgx", dsn, sqlstore.Postgres)
	}
	if dsn := os.Getenv("KEYGATE_TEST_MYSQL_DSN"); dsn != "" {
		out["mysql"] = sql("mysql", dsn, sqlstore.MySQL)
	}
	return out
}

func hasher(t *testing.T, ids ...string) *apikey.Hasher {
	t.Helper()
	var peppers []apikey.Pepper
	for _, id := range ids {
		peppers = append(peppers, apikey.Pepper{ID: id, Key: []byte("pepper " + id + " of at least thirty-two bytes")})
	}
	h, err := apikey.NewHasher(peppers[0], peppers[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestManagerOnEveryEngine runs a key's whole life through the Manager on
// each storage engine: what the conformance suite proves of the stores,
// this proves of the Manager over them.
func TestManagerOnEveryEngine(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t)
			newManager := func(h *apikey.Hasher) *keygate.Manager {
				m, err := keygate.New(keygate.Config{Store: st, Hasher: h, Auditor: nopAuditor{}, LastUsedInterval: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close(ctx) })
				return m
			}
			m := newManager(hasher(t, "p1"))
			uses := int64(3)
			c, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{
				Name: "ci", Workspace: "tiger", Role: "editor", Scopes: []string{"billing:write"},
				Metadata: map[string]string{"team": "infra"}, Expiry: keygate.ExpireAfterDays(30),
				Limits: keygate.Limits{Uses: &uses},
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "ci", Workspace: "tiger", Role: "viewer", Expiry: keygate.NeverExpire()}); !errors.Is(err, keygate.ErrDuplicateName) {
				t.Errorf("duplicate name: got %v, want ErrDuplicateName", err)
			}
			tok := c.Token.Reveal()

			// Uses are taken in the store, exactly.
			for i := range 3 {
				if _, err := m.Verify(ctx, tok); err != nil {
					t.Fatalf("use %d: %v", i+1, err)
				}
			}
			if _, err := m.Verify(ctx, tok); !errors.Is(err, keygate.ErrUsageExhausted) {
				t.Fatalf("fourth use: got %v, want ErrUsageExhausted", err)
			}
			unlimited := int64(-1)
			if _, err := m.Update(ctx, keygate.System(), c.Key.ID, keygate.UpdateRequest{Uses: &unlimited}); err != nil {
				t.Fatal(err)
			}

			// Last-used times reach the store in a flush.
			if err := m.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			rec, err := st.Get(ctx, c.Key.ID)
			if err != nil || rec.LastUsedAt.IsZero() {
				t.Fatalf("LastUsedAt after flush = %v, %v; want set", rec.LastUsedAt, err)
			}

			// A rotated pepper still verifies, and re-hashes the key.
			rotated := newManager(hasher(t, "p2", "p1"))
			k, err := rotated.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("verify under the older pepper: %v", err)
			}
			if !k.Allows(mustParse(t, "billing:write"), "tiger") {
				t.Error("key lost its scope")
			}
			if rec, _ := st.Get(ctx, c.Key.ID); rec.PepperID != "p2" {
				t.Errorf("pepper after verification = %q, want p2", rec.PepperID)
			}

			// Regenerate with a grace period, then revoke.
			r, err := rotated.Regenerate(ctx, keygate.System(), c.Key.ID, keygate.RegenerateRequest{Expiry: keygate.ExpireAfterDays(60), GracePeriod: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{tok, r.Token.Reveal()} {
				if _, err := rotated.Verify(ctx, s); err != nil {
					t.Errorf("during grace: %v", err)
				}
			}
			if _, err := rotated.Revoke(ctx, keygate.System(), c.Key.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := rotated.Verify(ctx, r.Token.Reveal()); !errors.Is(err, keygate.ErrRevoked) {
				t.Errorf("after revoke: got %v, want ErrRevoked", err)
			}
			// Revoking also wipes the old secret of the grace period.
			if _, err := rotated.Verify(ctx, tok); !errors.Is(err, keygate.ErrInvalid) {
				t.Errorf("old secret after revoke: got %v, want ErrInvalid", err)
			}
			page, err := rotated.List(ctx, keygate.System(), keygate.ListRequest{Workspace: "tiger", Revoked: store.OnlyRevoked})
			if err != nil || len(page.Keys) != 1 || page.Keys[0].ID != c.Key.ID {
				t.Fatalf("list revoked = %v, %v", page, err)
			}
			if err := rotated.Delete(ctx, keygate.System(), c.Key.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := rotated.Get(ctx, keygate.System(), c.Key.ID); !errors.Is(err, keygate.ErrNotFound) {
				t.Errorf("after delete: got %v, want ErrNotFound", err)
			}
		})
	}
}

type nopAuditor struct{}

func (nopAuditor) Audit(context.Context, keygate.Event) {}

func mustParse(t *testing.T, s string) permission.Permission {
	t.Helper()
	p, err := permission.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// postgresInstances returns a function making Managers, as instances of
// one service, on one new PostgreSQL store, with a cache TTL of an hour
// and the change feed given; and the store's LISTEN/NOTIFY feed.
func postgresInstances(t *testing.T, dsn string) (func(feed store.ChangeFeed) *keygate.Manager, store.ChangeFeed) {
	t.Helper()
	st := engines(t)["postgres"](t).(*sqlstore.Store)
	feed, err := pgnotify.New(pgnotify.Config{ConnString: dsn, Channel: st.Channel()})
	if err != nil {
		t.Fatal(err)
	}
	h := hasher(t, "p1")
	return func(feed store.ChangeFeed) *keygate.Manager {
		m, err := keygate.New(keygate.Config{Store: st, Hasher: h, Auditor: nopAuditor{}, CacheTTL: time.Hour, ChangeFeed: feed, LastUsedInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(context.Background()) })
		return m
	}, feed
}

// waitListening waits until m's change feed listens.
func waitListening(t *testing.T, m *keygate.Manager) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.Health(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the change feed did not start listening")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRevocationReachesOtherInstances runs two Managers, as two instances
// of a service, on one PostgreSQL store with the LISTEN/NOTIFY change feed:
// a key revoked through one must be refused by the other, which had it
// cached for a long TTL, within a second.
func TestRevocationReachesOtherInstances(t *testing.T) {
	dsn := os.Getenv("KEYGATE_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("KEYGATE_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	newInstance, feed := postgresInstances(t, dsn)
	// a revokes; b has the feed; control has none, to show that the key
	// is really served from cache.
	a, b, control := newInstance(nil), newInstance(feed), newInstance(nil)
	waitListening(t, b)
	c, err := a.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "k", Role: "admin", Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*keygate.Manager{b, control} {
		if _, err := m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Revoke(ctx, keygate.System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := control.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatalf("an instance without a feed refused the key at once (%v): the key was not cached, so this test proves nothing", err)
	}
	start := time.Now()
	for {
		_, err := b.Verify(ctx, c.Token.Reveal())
		if errors.Is(err, keygate.ErrRevoked) {
			t.Logf("revocation seen by the other instance after %v", time.Since(start))
			return
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the other instance still accepts the key a second after its revocation: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRevocationUnderLoad (issue 8): many goroutines verify a cached key
// on two instances while it is revoked through one of them. After Revoke
// returns, no verification succeeds on that instance; on the other, which
// has the PostgreSQL change feed, none succeeds once the measured bound
// has passed, which must be under a second.
func TestRevocationUnderLoad(t *testing.T) {
	dsn := os.Getenv("KEYGATE_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("KEYGATE_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	newInstance, feed := postgresInstances(t, dsn)
	a, b := newInstance(nil), newInstance(feed)
	waitListening(t, b)
	var bounds []time.Duration
	for round := range 5 {
		c, err := a.Create(ctx, keygate.System(), keygate.CreateRequest{Name: fmt.Sprint("loaded-", round), Role: "admin", Expiry: keygate.NeverExpire()})
		if err != nil {
			t.Fatal(err)
		}
		tok := c.Token.Reveal()
		var revokedAt atomic.Int64 // Unix nanoseconds when Revoke returned; 0 before
		var lastA, lastB atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 8 {
			m, last := a, &lastA
			if i%2 == 1 {
				m, last = b, &lastB
			}
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					// A verification counts from when it began: one under
					// way when Revoke returns may still finish with the key.
					begin := time.Now().UnixNano()
					if _, err := m.Verify(ctx, tok); err == nil {
						last.Store(max(last.Load(), begin))
					}
				}
			})
		}
		time.Sleep(50 * time.Millisecond) // both instances serve the key from their caches
		if _, err := a.Revoke(ctx, keygate.System(), c.Key.ID); err != nil {
			t.Fatal(err)
		}
		revokedAt.Store(time.Now().UnixNano())
		time.Sleep(1100 * time.Millisecond)
		close(stop)
		wg.Wait()
		if last := lastA.Load(); last > revokedAt.Load() {
			t.Errorf("round %d: the revoking instance accepted the key in a verification begun %v after Revoke returned", round, time.Duration(last-revokedAt.Load()))
		}
		bound := max(time.Duration(lastB.Load()-revokedAt.Load()), 0)
		if bound >= time.Second {
			t.Errorf("round %d: the other instance accepted the key %v after the revocation, want under 1s", round, bound)
		}
		bounds = append(bounds, bound)
	}
	slices.Sort(bounds)
	t.Logf("last acceptance by the other instance after Revoke returned (8 goroutines, 5 rounds): min %v, median %v, max %v",
		bounds[0], bounds[len(bounds)/2], bounds[len(bounds)-1])
}

// TestImportReachesOtherInstancesOverPostgres (issue 16, Low 6): on
// PostgreSQL with the LISTEN/NOTIFY feed, an instance that remembers a
// token as unknown (for an hour here) verifies it within a second of
// another instance importing it.
func TestImportReachesOtherInstancesOverPostgres(t *testing.T) {
	dsn := os.Getenv("KEYGATE_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("KEYGATE_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	st := engines(t)["postgres"](t).(*sqlstore.Store)
	feed, err := pgnotify.New(pgnotify.Config{ConnString: dsn, Channel: st.Channel()})
	if err != nil {
		t.Fatal(err)
	}
	h := hasher(t, "p1")
	newInstance := func(feed store.ChangeFeed) *keygate.Manager {
		m, err := keygate.New(keygate.Config{Store: st, Hasher: h, Auditor: nopAuditor{}, CacheTTL: time.Hour, NegativeCacheTTL: time.Hour,
			ChangeFeed: feed, LastUsedInterval: -1, ImportedSHA256: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(ctx) })
		return m
	}
	a, b, control := newInstance(nil), newInstance(feed), newInstance(nil)
	waitListening(t, b)
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, bySHA := range []bool{false, true} {
		tok, err := format.Generate() // issued by another keygate, say
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []*keygate.Manager{b, control} {
			if _, err := m.Verify(ctx, tok.Reveal()); !errors.Is(err, keygate.ErrInvalid) {
				t.Fatalf("before the import: %v", err)
			}
		}
		row := keygate.ImportRequest{CreateRequest: keygate.CreateRequest{Name: fmt.Sprint("imported-", bySHA), Role: "admin", Expiry: keygate.NeverExpire()}}
		if bySHA {
			row.SHA256 = fmt.Sprintf("%x", sha256.Sum256([]byte(tok.Reveal())))
		} else {
			row.Token = tok
		}
		res, err := a.Import(ctx, keygate.System(), []keygate.ImportRequest{row})
		if err != nil || res[0].Status != keygate.ImportCreated {
			t.Fatalf("Import = %+v, %v", res, err)
		}
		if _, err := control.Verify(ctx, tok.Reveal()); !errors.Is(err, keygate.ErrInvalid) {
			t.Fatalf("an instance without a feed took the import at once (%v): the token was not remembered, so this test proves nothing", err)
		}
		start := time.Now()
		for {
			k, err := b.Verify(ctx, tok.Reveal())
			if err == nil && k.ID == res[0].Key.ID {
				t.Logf("import (by SHA-256: %v) seen by the other instance after %v", bySHA, time.Since(start))
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("the other instance still refuses the imported token (by SHA-256: %v) a second after its import: %v", bySHA, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

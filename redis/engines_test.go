package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/keygate/keygate"
	kgredis "github.com/keygate/keygate/redis"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
	"github.com/keygate/keygate/store/sqlstore"
)

// engines returns a fresh store of each engine available, as in keygate's
// own engines_test.go: memory and SQLite always, PostgreSQL and
// MySQL/MariaDB when KEYGATE_TEST_POSTGRES_DSN and KEYGATE_TEST_MYSQL_DSN
// are set (.ci/run sets both). SQL stores get tables of their own,
// dropped at cleanup.
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
			prefix := "rds" + hex.EncodeToString(suffix) + "_"
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

// TestRevocationReachesOtherInstances runs, on each engine, two Managers
// as two instances of a service sharing a store, each with its own Feed on
// one channel and a cache TTL of an hour: a key revoked through one must
// be refused by the other within a second. A third Manager without the
// feed still accepts the key from its cache: without a feed, instances see
// each other's changes only within their cache TTL.
func TestRevocationReachesOtherInstances(t *testing.T) {
	addr := redisAddr(t)
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := open(t)
			channel := uniqueName(t) + ":changes"
			newInstance := func(withFeed bool) *keygate.Manager {
				var feed *kgredis.Feed
				subscribed := make(chan bool, 1)
				if withFeed {
					var err error
					feed, err = kgredis.NewFeed(kgredis.FeedConfig{
						Client:      newClient(t, addr),
						Channel:     channel,
						OnSubscribe: func(bool) { subscribed <- true },
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				m := newManager(t, st, func(c *keygate.Config) {
					c.CacheTTL = time.Hour
					if feed != nil {
						c.ChangeFeed = feed
					}
				})
				if withFeed {
					select {
					case <-subscribed:
					case <-time.After(10 * time.Second):
						t.Fatal("the change feed did not subscribe")
					}
					if err := m.Health(ctx); err != nil {
						t.Fatalf("Manager.Health with the feed subscribed: %v, want nil", err)
					}
				}
				return m
			}
			a, b, control := newInstance(true), newInstance(true), newInstance(false)

			const rounds = 20
			var total, afterCall []time.Duration
			for round := range rounds {
				c := createKey(t, a, keygate.RateLimit{})
				tok := c.Token.Reveal()
				for _, m := range []*keygate.Manager{a, b, control} {
					if _, err := m.Verify(ctx, tok); err != nil {
						t.Fatal(err)
					}
				}
				revoker, watcher := a, b
				if round%2 == 1 {
					revoker, watcher = b, a
				}
				// total runs from the start of the revocation (the store's
				// write and the publication), afterCall from its return.
				start := time.Now()
				if _, err := revoker.Revoke(ctx, keygate.System(), c.Key.ID); err != nil {
					t.Fatal(err)
				}
				returned := time.Now()
				for {
					_, err := watcher.Verify(ctx, tok)
					if errors.Is(err, keygate.ErrRevoked) {
						total = append(total, time.Since(start))
						afterCall = append(afterCall, time.Since(returned))
						break
					}
					if err != nil {
						t.Fatalf("Verify on the other instance: %v, want nil or ErrRevoked", err)
					}
					if time.Since(start) > time.Second {
						t.Fatalf("round %d: the other instance still accepts the key a second after its revocation", round+1)
					}
					time.Sleep(50 * time.Microsecond)
				}
				if _, err := control.Verify(ctx, tok); err != nil {
					t.Fatalf("an instance without a feed refused the key at once (%v): the key was not cached, so this test proves nothing", err)
				}
			}
			t.Logf("%s: revoked key refused by the other instance, over %d rounds: from the Revoke call %s; from its return %s",
				name, rounds, minMedianMax(total), minMedianMax(afterCall))
		})
	}
}

// minMedianMax formats the minimum, median and maximum of ds.
func minMedianMax(ds []time.Duration) string {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("min %v, median %v, max %v", r(ds[0]), r(ds[len(ds)/2]), r(ds[len(ds)-1]))
}

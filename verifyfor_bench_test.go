package keygate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
	"github.com/keygate/keygate/store/sqlstore"
)

// BenchmarkVerifyForUnseen measures what VerifyFor costs for the two
// tokens it answers alike, ErrInvalid: a key of a workspace the caller may
// not verify ("hidden") and a token that matches no key ("unknown"). From
// the caches (the key in the verification cache, the unknown token in the
// negative cache) and without them (CacheTTL and NegativeCacheTTL -1: a
// store lookup each time), with one pepper and with two (during a pepper
// rotation: a key under the current pepper is found by the first lookup,
// an unknown token takes three). The memory store always; PostgreSQL when
// KEYGATE_TEST_POSTGRES_DSN is set. It is the measurement behind
// VerifyFor's documentation of the timing difference.
func BenchmarkVerifyForUnseen(b *testing.B) {
	ctx := context.Background()
	stores := map[string]func(b *testing.B) store.Store{"memory": func(*testing.B) store.Store { return memory.New() }}
	if dsn := os.Getenv("KEYGATE_TEST_POSTGRES_DSN"); dsn != "" {
		stores["postgres"] = func(b *testing.B) store.Store { return benchSQLStore(b, "pgx", dsn, sqlstore.Postgres) }
	}
	for _, engine := range []string{"memory", "postgres"} {
		open, ok := stores[engine]
		if !ok {
			continue
		}
		for _, peppers := range []int{1, 2} {
			for _, cached := range []bool{true, false} {
				st := open(b)
				current := apikey.Pepper{ID: "p2", Key: bytes.Repeat([]byte{2}, 32)}
				var older []apikey.Pepper
				if peppers == 2 {
					older = append(older, apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{1}, 32)})
				}
				hasher, err := apikey.NewHasher(current, older...)
				if err != nil {
					b.Fatal(err)
				}
				cfg := keygate.Config{Store: st, Hasher: hasher, Logger: slog.New(slog.DiscardHandler), Auditor: nopAuditor{}, LastUsedInterval: -1}
				if !cached {
					cfg.CacheTTL, cfg.NegativeCacheTTL = -1, -1
				}
				m, err := keygate.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { m.Close(ctx) })
				create := func(req keygate.CreateRequest) string {
					req.Name, req.Expiry = rand.Text(), keygate.NeverExpire()
					c, err := m.Create(ctx, keygate.System(), req)
					if err != nil {
						b.Fatal(err)
					}
					return c.Token.Reveal()
				}
				k, err := m.Verify(ctx, create(keygate.CreateRequest{Workspace: "tiger", Scopes: []string{keygate.PermissionVerifyKeys}}))
				if err != nil {
					b.Fatal(err)
				}
				by := k.Principal()
				format, _ := apikey.NewFormat(apikey.DefaultPrefix)
				unknown, _ := format.Generate()
				tokens := map[string]string{
					"hidden":  create(keygate.CreateRequest{Workspace: "lion", Scopes: []string{"cluster:read"}}),
					"unknown": unknown.Reveal(),
				}
				for _, which := range []string{"hidden", "unknown"} {
					req := keygate.VerifyRequest{Token: tokens[which]}
					if v, err := m.VerifyFor(ctx, by, req); err != nil || !errors.Is(v.Err, keygate.ErrInvalid) {
						b.Fatalf("%s: %v, %v; want the verdict ErrInvalid", which, v.Err, err)
					}
					name := engine + "/peppers=" + string(rune('0'+peppers)) + "/cached=" + map[bool]string{true: "yes", false: "no"}[cached] + "/" + which
					b.Run(name, func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							if _, err := m.VerifyFor(ctx, by, req); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			}
		}
	}
}

// benchSQLStore returns a migrated SQL store in tables of its own, dropped
// at the end.
func benchSQLStore(b *testing.B, driver, dsn string, d sqlstore.Dialect) store.Store {
	b.Helper()
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	suffix := make([]byte, 4)
	rand.Read(suffix)
	prefix := "bvf" + hex.EncodeToString(suffix) + "_"
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: d, TablePrefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		st.Close()
		for _, table := range st.Tables() {
			if _, err := db.Exec("DROP TABLE IF EXISTS " + table); err != nil {
				b.Errorf("drop %s: %v", table, err)
			}
		}
	})
	return st
}

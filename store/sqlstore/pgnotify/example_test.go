package pgnotify_test

import (
	"context"
	"log"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/sqlstore"
	"github.com/keygate/keygate/store/sqlstore/pgnotify"
)

// Every instance gives the feed to its Manager: a key revoked, changed or
// deleted through any of them is dropped from the others' caches at once,
// instead of after their CacheTTL.
func ExampleNew() {
	ctx := context.Background()
	dsn := os.Getenv("DATABASE_URL") // postgres://user:pass@host:5432/db
	db, err := sqlx.Open("pgx", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db})
	if err != nil {
		log.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	feed, err := pgnotify.New(pgnotify.Config{ConnString: dsn, Channel: st.Channel()})
	if err != nil {
		log.Fatal(err)
	}
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "2026-11", Key: []byte(os.Getenv("KEYGATE_PEPPER"))})
	if err != nil {
		log.Fatal(err)
	}
	m, err := keygate.New(keygate.Config{Store: st, Hasher: hasher, ChangeFeed: feed})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(ctx)
	// Readiness: nil once the store answers and the feed listens.
	if err := m.Health(ctx); err != nil {
		log.Print(err)
	}
}

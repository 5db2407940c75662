package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // The program picks the driver; sqlstore imports none.

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore"
)

// ExampleNew stores a key in SQLite and finds it again by its hash, as a
// verifier does on each request.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	dsn := "file:" + filepath.Join(dir, "keys.db") +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
	db, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	st, err := sqlstore.New(sqlstore.Config{DB: db}) // dialect inferred from "sqlite"
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}

	k := &store.Key{
		ID:        uuid.Must(uuid.NewV7()),
		Name:      "ci-deploy",
		Owner:     "alice",
		Scopes:    []string{"deploy:write"},
		Hash:      []byte("keyed digest of the token"),
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if err := st.Create(ctx, k); err != nil {
		fmt.Println(err)
		return
	}
	got, err := st.GetByHash(ctx, []byte("keyed digest of the token"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Name, got.Owner, got.Scopes, got.Version, got.CreatedAt)

	_, err = st.GetByHash(ctx, []byte("some other digest"))
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Output:
	// ci-deploy alice [deploy:write] 1 2025-01-02 03:04:05 +0000 UTC
	// true
}

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

// ExampleStore_Sessions shares the admin console's sessions between two
// instances through one database: a session created through one is read
// through the other, and a nonce used through one is refused through the
// other. A program gives st.Sessions() to console.Config.Sessions.
func ExampleStore_Sessions() {
	dir, err := os.MkdirTemp("", "sqlstore-sessions")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	dsn := "file:" + filepath.Join(dir, "keys.db") +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
	ctx := context.Background()
	var instances [2]*sqlstore.Sessions
	for i := range instances {
		db, err := sqlx.Open("sqlite", dsn) // each instance its own handle
		if err != nil {
			fmt.Println(err)
			return
		}
		defer db.Close()
		st, err := sqlstore.New(sqlstore.Config{DB: db})
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := st.Migrate(ctx); err != nil {
			fmt.Println(err)
			return
		}
		instances[i] = st.Sessions()
	}
	a, b := instances[0], instances[1]

	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	id := []byte("the SHA-256 of a session id....")
	if err := a.CreateSession(ctx, id, "key:ops", []byte(`{"csrf":"..."}`), now, now.Add(30*time.Minute), 10); err != nil {
		fmt.Println(err)
		return
	}
	data, _, expires, err := b.Session(ctx, id, now.Add(time.Minute))
	fmt.Println(string(data), expires, err)

	nonce := []byte("the SHA-256 of a form's nonce..")
	first, _ := a.UseNonce(ctx, nonce, now, now.Add(time.Hour))
	again, _ := b.UseNonce(ctx, nonce, now, now.Add(time.Hour))
	fmt.Println(first, again)
	// Output:
	// {"csrf":"..."} 2026-11-30 10:30:00 +0000 UTC <nil>
	// true false
}

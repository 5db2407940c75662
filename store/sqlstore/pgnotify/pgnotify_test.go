package pgnotify_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore"
	"github.com/keygate/keygate/store/sqlstore/pgnotify"
)

const postgresEnv = "KEYGATE_TEST_POSTGRES_DSN"

func TestNewConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     pgnotify.Config
		wantErr bool
	}{
		{"defaults", pgnotify.Config{ConnString: "postgres://u@localhost/db"}, false},
		{"channel", pgnotify.Config{ConnString: "postgres://u@localhost/db", Channel: "app_changes"}, false},
		{"bad conn string", pgnotify.Config{ConnString: "postgres://u:s3cret@[::1/db"}, true},
		{"channel with quote", pgnotify.Config{ConnString: "postgres://u@localhost/db", Channel: `x"; DROP`}, true},
		{"channel too long", pgnotify.Config{ConnString: "postgres://u@localhost/db", Channel: strings.Repeat("a", 64)}, true},
		{"backoff inverted", pgnotify.Config{ConnString: "postgres://u@localhost/db", MinBackoff: time.Minute, MaxBackoff: time.Second}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pgnotify.New(tc.cfg)
			if got := errors.Is(err, pgnotify.ErrConfig); got != tc.wantErr {
				t.Fatalf("New: got error %v, want ErrConfig: %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("New: error %q reveals the password", err)
			}
		})
	}
}

// TestWatchFirstConnectFails checks that a feed that cannot connect at
// all says so at once instead of retrying forever.
func TestWatchFirstConnectFails(t *testing.T) {
	t.Parallel()
	f, err := pgnotify.New(pgnotify.Config{ConnString: "postgres://nobody@127.0.0.1:1/db?connect_timeout=2"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = f.Watch(ctx, func(uuid.UUID) {})
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch with an unreachable server: got error %v, want the connection error", err)
	}
}

// TestHealthWhileConnecting checks that Health reports a Watch that is
// still connecting, and nothing once no Watch is in progress.
func TestHealthWhileConnecting(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never answers: the Watch
	// stays connecting until its context ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	t.Cleanup(func() {
		ln.Close()
		for len(accepted) > 0 {
			(<-accepted).Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- c:
			default:
				c.Close()
			}
		}
	}()
	f, err := pgnotify.New(pgnotify.Config{ConnString: "postgres://nobody@" + ln.Addr().String() + "/db"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := f.Health(t.Context()); err != nil {
		t.Fatalf("Health before any Watch: %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Watch(ctx, func(uuid.UUID) {}) }()
	deadline := time.Now().Add(5 * time.Second)
	for f.Health(t.Context()) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Health = nil while the Watch cannot connect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := f.Health(t.Context()); !errors.Is(err, pgnotify.ErrNotListening) {
		t.Errorf("Health while connecting: %v, want ErrNotListening", err)
	}
	cancel()
	<-done
	if err := f.Health(t.Context()); err != nil {
		t.Errorf("Health after the Watch returned: %v, want nil", err)
	}
}

// TestWatchDeliversChanges checks that a revocation, a use and a deletion
// through a Store reach a Watch within a second, also after the feed's
// connection was killed and re-established.
func TestWatchDeliversChanges(t *testing.T) {
	t.Parallel()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		t.Skipf("%s is not set", postgresEnv)
	}
	db, err := sqlx.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	prefix := "n" + hex.EncodeToString(b) + "_"
	s, err := sqlstore.New(sqlstore.Config{DB: db, TablePrefix: prefix})
	if err != nil {
		t.Fatalf("New store: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		for _, table := range s.Tables() {
			_, _ = db.Exec("DROP TABLE IF EXISTS " + table)
		}
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	listening := make(chan bool, 4)
	feed, err := pgnotify.New(pgnotify.Config{
		ConnString: dsn,
		Channel:    s.Channel(),
		MinBackoff: 20 * time.Millisecond,
		OnListen:   func(reconnected bool) { listening <- reconnected },
	})
	if err != nil {
		t.Fatalf("New feed: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ids := make(chan uuid.UUID, 16)
	done := make(chan error, 1)
	go func() { done <- feed.Watch(ctx, func(id uuid.UUID) { ids <- id }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch after cancel: got error %v, want one wrapping %v", err, context.Canceled)
		}
	})
	waitListening(t, listening, false)
	expectID(t, ids, uuid.Nil, "reset once listening", true)
	if err := feed.Health(t.Context()); err != nil {
		t.Errorf("Health while listening: %v, want nil", err)
	}

	uses := int64(5)
	k := &store.Key{ID: uuid.Must(uuid.NewV7()), Name: "k", Hash: []byte("hash-1"), RemainingUses: &uses}
	if err := s.Create(t.Context(), k); err != nil {
		t.Fatalf("Create: %v", err)
	}
	// A new key may be one imported for a token that caches remember as
	// unknown: it is announced too.
	expectID(t, ids, k.ID, "Create", true)

	revoke := func(what string) {
		t.Helper()
		k.RevokedAt = time.Now()
		if err := s.Update(t.Context(), k); err != nil {
			t.Fatalf("Update: %v", err)
		}
		expectID(t, ids, k.ID, what, true)
	}
	revoke("revocation")

	// A use taken changes nothing a cache holds: no notification, so busy
	// usage-limited keys do not flush caches everywhere.
	if _, err := s.ConsumeUse(t.Context(), k.ID); err != nil {
		t.Fatalf("ConsumeUse: %v", err)
	}
	expectID(t, ids, k.ID, "ConsumeUse (no notification expected)", false)
	k.Version++

	// Kill the feed's connection; it must come back and deliver again.
	var killed int
	err = db.Get(&killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1`,
		`LISTEN "`+s.Channel()+`"`)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the feed's backend: killed %d, err %v; want 1, nil", killed, err)
	}
	// Changes may have been missed while disconnected: the feed says so
	// with uuid.Nil before it reports listening again.
	waitListening(t, listening, true)
	expectID(t, ids, uuid.Nil, "reset after reconnect", true)
	if err := feed.Health(t.Context()); err != nil {
		t.Errorf("Health once listening again: %v, want nil", err)
	}
	revoke("revocation after reconnect")

	if err := s.Delete(t.Context(), k.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	expectID(t, ids, k.ID, "Delete", true)
}

func waitListening(t *testing.T, listening <-chan bool, reconnected bool) {
	t.Helper()
	select {
	case got := <-listening:
		if got != reconnected {
			t.Fatalf("OnListen(reconnected): got %v, want %v", got, reconnected)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("OnListen(%v) not called within 10s", reconnected)
	}
}

// expectID waits up to a second for id on ids when want is set, and checks
// that nothing arrives within 200ms otherwise.
func expectID(t *testing.T, ids <-chan uuid.UUID, id uuid.UUID, what string, want bool) {
	t.Helper()
	wait := time.Second
	if !want {
		wait = 200 * time.Millisecond
	}
	start := time.Now()
	select {
	case got := <-ids:
		if !want {
			t.Fatalf("%s: got notification %s, want none", what, got)
		}
		if got != id {
			t.Fatalf("%s: got id %s, want %s", what, got, id)
		}
		t.Logf("%s delivered in %v", what, time.Since(start))
	case <-time.After(wait):
		if want {
			t.Fatalf("%s: no notification within %v", what, wait)
		}
	}
}

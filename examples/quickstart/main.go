// Command quickstart issues, verifies, authorizes and revokes an API key
// with keygate, printing what happens. By default it keeps keys in an
// embedded SQLite database in a temporary directory; with -memory it keeps
// them in memory.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // the embedded, pure-Go SQLite driver

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
	"github.com/keygate/keygate/store/sqlstore"
)

func main() {
	inMemory := flag.Bool("memory", false, "keep keys in memory instead of SQLite")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *inMemory); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run goes through the demo, printing to w.
func run(ctx context.Context, w io.Writer, inMemory bool) error {
	st, cleanup, err := openStore(ctx, w, inMemory)
	if err != nil {
		return err
	}
	defer cleanup()

	// The pepper lives outside the database (a secret manager, an
	// environment variable); here a random one for the demo.
	pepper := make([]byte, 32)
	rand.Read(pepper)
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "demo", Key: pepper})
	if err != nil {
		return err
	}
	m, err := keygate.New(keygate.Config{
		Store:   st,
		Hasher:  hasher,
		Prefix:  "acme_live",
		Auditor: printAuditor{w},
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer m.Close(ctx)

	// 1. Issue a key: a viewer of workspace "tiger", plus one granular scope.
	created, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name:        "grafana",
		Description: "dashboards for the tiger workspace",
		Owner:       "alice",
		Workspace:   "tiger",
		Role:        permission.RoleViewer,
		Scopes:      []string{"billing:read"},
		Expiry:      keygate.ExpireAfterDays(30),
	})
	if err != nil {
		return err
	}
	token := created.Token.Reveal() // shown exactly once
	fmt.Fprintf(w, "issued   %s (id %s), expires %s\n", created.Key.Hint, created.Key.ID, created.Key.ExpiresAt.Format("2006-01-02"))
	fmt.Fprintf(w, "token    %s\n", token)
	fmt.Fprintf(w, "printed  %v   <- the token type redacts itself\n", created.Token)

	// 2. Verify it, as middleware does on every request.
	key, err := m.Verify(ctx, token)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "verified %q, role %s, workspace %s\n", key.Name, key.Role, key.Workspace)

	// 3. Authorize actions.
	for _, c := range []struct{ perm, workspace string }{
		{"cluster:read", "tiger"},
		{"billing:read", "tiger"},
		{"cluster:write", "tiger"},
		{"cluster:read", "lion"},
	} {
		p, err := permission.Parse(c.perm)
		if err != nil {
			return err
		}
		verdict := "allowed"
		if err := m.Authorize(key, p, c.workspace); err != nil {
			verdict = "denied"
		}
		fmt.Fprintf(w, "  %-14s in %-6s %s\n", c.perm, c.workspace, verdict)
	}

	// 4. A typo is caught by the checksum, without a database lookup.
	typo := token[:len(token)-1] + flip(token[len(token)-1])
	_, err = m.Verify(ctx, typo)
	fmt.Fprintf(w, "typo     rejected: %v\n", err)

	// 5. Revoke: the next request fails.
	if _, err := m.Revoke(ctx, keygate.System(), key.ID); err != nil {
		return err
	}
	_, err = m.Verify(ctx, token)
	fmt.Fprintf(w, "revoked  rejected: %v (ErrRevoked: %t)\n", err, errors.Is(err, keygate.ErrRevoked))
	return nil
}

// printAuditor prints audit events; the default Auditor logs them with
// log/slog. Events carry the key's id and hint, never its secret.
type printAuditor struct{ w io.Writer }

func (a printAuditor) Audit(_ context.Context, e keygate.Event) {
	fmt.Fprintf(a.w, "  audit: %s %s %s\n", e.Type, e.Hint, e.Reason)
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// openStore opens the embedded SQLite store in a temporary directory, or a
// memory store.
func openStore(ctx context.Context, w io.Writer, inMemory bool) (store.Store, func(), error) {
	if inMemory {
		fmt.Fprintln(w, "store    in memory")
		return memory.New(), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "keygate-quickstart")
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, "keys.db")
	db, err := sqlx.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { db.Close(); os.RemoveAll(dir) }
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite})
	if err == nil {
		err = st.Migrate(ctx)
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	fmt.Fprintln(w, "store    SQLite,", path)
	return st, cleanup, nil
}

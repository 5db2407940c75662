// Command customstore runs keygate on a store written from scratch,
// package filestore next to it: it issues a key, restarts (closing and
// reopening the store), verifies the same token again from the replayed
// log, revokes it, and prints the log and what compaction makes of it.
//
//	go run ./examples/customstore                  # in a temporary directory
//	go run ./examples/customstore -path keys.jsonl # keep the log; run it again
//
// README.md next to this file walks through the store.Store contract and
// how filestore honours each clause.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/examples/customstore/filestore"
	"github.com/keygate/keygate/permission"
)

func main() {
	path := flag.String("path", "", "the log file (default: one in a temporary directory, removed at exit)")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *path); err != nil {
		fmt.Fprintln(os.Stderr, "customstore:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, path string) error {
	if path == "" {
		dir, err := os.MkdirTemp("", "keygate-customstore")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "keys.jsonl")
	}
	// The pepper lives outside the store; here a random one for the demo,
	// kept across the "restart" below as a real deployment keeps it.
	pepper := make([]byte, 32)
	rand.Read(pepper)
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "demo", Key: pepper})
	if err != nil {
		return err
	}
	cfg := filestore.Config{Path: path}

	// First run: issue a key and verify it. A log kept from an earlier
	// run (-path) already holds keys; the name of the new one counts them.
	st, m, err := start(ctx, cfg, hasher)
	if err != nil {
		return err
	}
	before := st.Stats().Keys
	fmt.Fprintf(out, "opened    %s: %d keys\n", path, before)
	created, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name:      fmt.Sprintf("grafana-%d", before+1),
		Owner:     "alice",
		Workspace: "tiger",
		Role:      permission.RoleViewer,
		Expiry:    keygate.ExpireAfterDays(30),
	})
	if err != nil {
		return err
	}
	token := created.Token.Reveal()
	fmt.Fprintf(out, "issued    %s, named %q\n", created.Key.Hint, created.Key.Name)
	if _, err := m.Verify(ctx, token); err != nil {
		return err
	}
	fmt.Fprintln(out, "verified  the new token")
	if err := stop(ctx, st, m); err != nil {
		return err
	}

	// "Restart": a new store replays the log, a new Manager has an empty
	// cache, so this verification reads the replayed key.
	st, m, err = start(ctx, cfg, hasher)
	if err != nil {
		return err
	}
	key, err := m.Verify(ctx, token)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "restarted %d keys replayed; the same token verifies: %q, role %s\n", st.Stats().Keys, key.Name, key.Role)
	if _, err := m.Revoke(ctx, keygate.System(), key.ID); err != nil {
		return err
	}
	_, err = m.Verify(ctx, token)
	fmt.Fprintf(out, "revoked   next verification: ErrRevoked %t\n", errors.Is(err, keygate.ErrRevoked))

	fmt.Fprintln(out, "log:")
	if err := printLog(out, path); err != nil {
		return err
	}
	if err := st.Compact(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "log after Compact:")
	if err := printLog(out, path); err != nil {
		return err
	}
	return stop(ctx, st, m)
}

// start opens the store and a Manager over it.
func start(ctx context.Context, cfg filestore.Config, hasher *apikey.Hasher) (*filestore.Store, *keygate.Manager, error) {
	st, err := filestore.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	m, err := keygate.New(keygate.Config{
		Store:  st,
		Hasher: hasher,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// Audit events are not this example's subject; see
		// examples/quickstart for them.
		Auditor: quietAuditor{},
	})
	if err != nil {
		return nil, nil, errors.Join(err, st.Close())
	}
	return st, m, nil
}

// stop closes the Manager, which writes its pending last-used times to the
// store, and then the store.
func stop(ctx context.Context, st *filestore.Store, m *keygate.Manager) error {
	return errors.Join(m.Close(ctx), st.Close())
}

// quietAuditor drops audit events.
type quietAuditor struct{}

func (quietAuditor) Audit(context.Context, keygate.Event) {}

// printLog prints one line per record of the log at path: what it does
// and to which key, leaving out hashes and the other fields.
func printLog(out io.Writer, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var rec struct {
			Format  string `json:"format"`
			Version int    `json:"version"`
			Op      string `json:"op"`
			Key     *struct {
				Name      string `json:"name"`
				Version   int64  `json:"version"`
				RevokedAt string `json:"revoked_at"`
			} `json:"key"`
			Used    map[string]string `json:"used"`
			Retired []json.RawMessage `json:"retired"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		switch {
		case rec.Format != "":
			fmt.Fprintf(out, "  %d  header  %s version %d\n", n, rec.Format, rec.Version)
		case rec.Key != nil:
			revoked := ""
			if rec.Key.RevokedAt != "" {
				revoked = ", revoked"
			}
			fmt.Fprintf(out, "  %d  %-6s  %q version %d%s\n", n, rec.Op, rec.Key.Name, rec.Key.Version, revoked)
		case rec.Used != nil:
			fmt.Fprintf(out, "  %d  %-6s  last-used time of %d key(s)\n", n, rec.Op, len(rec.Used))
		case rec.Retired != nil:
			fmt.Fprintf(out, "  %d  %-6s  tombstones of %d retired secret(s)\n", n, rec.Op, len(rec.Retired))
		default:
			fmt.Fprintf(out, "  %d  %s\n", n, rec.Op)
		}
	}
	fmt.Fprintf(out, "  (%d bytes)\n", len(b))
	return sc.Err()
}

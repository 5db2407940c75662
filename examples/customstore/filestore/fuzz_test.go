package filestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/examples/customstore/filestore"
	"github.com/keygate/keygate/store"
)

// FuzzOpen opens arbitrary file contents as a log. Open must never panic:
// it either fails with ErrCorrupt, leaving the file as it was, or succeeds,
// and then the store must take a write and reopen to the same keys.
//
// The body is deterministic (fixed ids, hashes and times, no goroutines),
// so the fuzzer's coverage does not flicker between runs of one input.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	seedPath := filepath.Join(dir, "seed.jsonl")
	s := mustOpen(f, filestore.Config{Path: seedPath})
	k := fixedKey("a")
	mustCreate(f, s, k)
	k.Description = "updated"
	if err := s.Update(context.Background(), k); err != nil {
		f.Fatalf("Update: %v", err)
	}
	if err := s.TouchLastUsed(context.Background(), map[uuid.UUID]time.Time{k.ID: k.CreatedAt.Add(time.Hour)}); err != nil {
		f.Fatalf("TouchLastUsed: %v", err)
	}
	if err := s.Retire(context.Background(), []store.RetiredHash{{Hash: k.Hash, PepperID: k.PepperID, At: k.CreatedAt}}); err != nil {
		f.Fatalf("Retire: %v", err)
	}
	if err := s.Delete(context.Background(), k.ID); err != nil {
		f.Fatalf("Delete: %v", err)
	}
	mustClose(f, s)
	valid := readFile(f, seedPath)
	f.Add(valid)
	f.Add(valid[:len(valid)-7])
	f.Add(valid[:20])
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte("hello"))
	f.Add(bytes.ReplaceAll(valid, []byte(`"version":2`), []byte(`"version":3`)))

	// Iterations of one worker run one after another: reuse one path.
	path := filepath.Join(dir, "keys.jsonl")
	f.Fuzz(func(t *testing.T, content []byte) {
		writeFile(t, path, content)
		s, err := filestore.Open(context.Background(), filestore.Config{Path: path})
		if err != nil {
			if !errors.Is(err, filestore.ErrCorrupt) {
				t.Fatalf("Open: got error %v, want nil or %v", err, filestore.ErrCorrupt)
			}
			if got := readFile(t, path); !bytes.Equal(got, content) {
				t.Fatalf("file after a failed Open: got %q, want it unchanged %q", got, content)
			}
			return
		}
		k := fixedKey("fuzz-new-key")
		if err := s.Create(context.Background(), k); err != nil && !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("Create: got error %v, want nil or %v", err, store.ErrDuplicate)
		}
		want := encodeKeys(t, snapshot(t, s))
		mustClose(t, s)
		s = mustOpen(t, filestore.Config{Path: path})
		defer mustClose(t, s)
		if got := encodeKeys(t, snapshot(t, s)); !bytes.Equal(got, want) {
			t.Fatalf("keys after reopen:\n got %s\nwant %s", got, want)
		}
	})
}

// fixedKey returns a key whose every field is fixed by name.
func fixedKey(name string) *store.Key {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	uses := int64(3)
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(name))
	return &store.Key{
		ID: id, Name: name, Workspace: "w1", Owner: "alice",
		Hash: id[:], PrevHash: []byte(name), RemainingUses: &uses,
		Metadata:  map[string]string{"team": "platform"},
		CreatedAt: at, UpdatedAt: at,
	}
}

// encodeKeys returns keys as JSON, which writes maps in sorted key order,
// for a comparison whose cost does not depend on map iteration order.
func encodeKeys(t *testing.T, keys []*store.Key) []byte {
	t.Helper()
	for i, k := range keys {
		keys[i] = normalize(k)
	}
	b, err := json.Marshal(keys)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return b
}

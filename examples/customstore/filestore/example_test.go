package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/keygate/keygate/examples/customstore/filestore"
	"github.com/keygate/keygate/store"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "filestore-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	cfg := filestore.Config{Path: filepath.Join(dir, "keys.jsonl")}

	s, err := filestore.Open(ctx, cfg)
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	k := &store.Key{
		ID:            uuid.Must(uuid.NewV7()),
		Name:          "ci",
		Workspace:     "acme",
		Hash:          []byte("digest of the token"),
		RemainingUses: new(int64(2)),
	}
	if err := s.Create(ctx, k); err != nil {
		fmt.Println("create:", err)
		return
	}
	left, err := s.ConsumeUse(ctx, k.ID)
	fmt.Println("uses left:", left, err)
	if err := s.Close(); err != nil {
		fmt.Println("close:", err)
		return
	}

	// Reopening replays the log: the key and its spent use are still there.
	s, err = filestore.Open(ctx, cfg)
	if err != nil {
		fmt.Println("reopen:", err)
		return
	}
	defer s.Close()
	got, err := s.GetByHash(ctx, []byte("digest of the token"))
	if err != nil {
		fmt.Println("get:", err)
		return
	}
	fmt.Println(got.Workspace, got.Name, "version", got.Version, "uses left", *got.RemainingUses)

	dup := &store.Key{ID: uuid.Must(uuid.NewV7()), Name: "ci", Workspace: "acme", Hash: []byte("other")}
	fmt.Println("same name again is a duplicate:", errors.Is(s.Create(ctx, dup), store.ErrDuplicate))

	fmt.Println("records in the log:", s.Stats().Records)
	if err := s.Compact(ctx); err != nil {
		fmt.Println("compact:", err)
		return
	}
	fmt.Println("records after Compact:", s.Stats().Records)
	// Output:
	// uses left: 1 <nil>
	// acme ci version 2 uses left 1
	// same name again is a duplicate: true
	// records in the log: 2
	// records after Compact: 1
}

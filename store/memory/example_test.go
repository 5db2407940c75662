package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

func ExampleNew() {
	ctx := context.Background()
	s := memory.New()

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

	got, err := s.GetByHash(ctx, []byte("digest of the token"))
	if err != nil {
		fmt.Println("get:", err)
		return
	}
	fmt.Println(got.Workspace, got.Name, "version", got.Version)

	for range 3 {
		left, err := s.ConsumeUse(ctx, k.ID)
		if errors.Is(err, store.ErrUsageExhausted) {
			fmt.Println("no uses left")
			break
		}
		fmt.Println("uses left:", left)
	}

	err = s.Create(ctx, &store.Key{ID: uuid.Must(uuid.NewV7()), Name: "ci", Workspace: "acme", Hash: []byte("other")})
	fmt.Println("same name again is a duplicate:", errors.Is(err, store.ErrDuplicate))
	// Output:
	// acme ci version 1
	// uses left: 1
	// uses left: 0
	// no uses left
	// same name again is a duplicate: true
}

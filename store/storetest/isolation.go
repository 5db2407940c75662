package storetest

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

var copyTests = []namedTest{
	{"CreateArgument", func(t *testing.T, s store.Store) {
		k := newKey(t, "w1", "a")
		mustCreate(t, s, k)
		want := k.Clone()
		scribble(k)
		assertStored(t, s, want)
	}},
	{"UpdateArgument", func(t *testing.T, s store.Store) {
		orig := newKey(t, "w1", "a")
		mustCreate(t, s, orig)
		k := mustGet(t, s, orig.ID)
		k.Description = "updated"
		mustUpdate(t, s, k)
		want := k.Clone()
		scribble(k)
		assertStored(t, s, want)
	}},
	{"GetResult", func(t *testing.T, s store.Store) {
		k := newKey(t, "w1", "a")
		mustCreate(t, s, k)
		got := mustGet(t, s, k.ID)
		want := got.Clone()
		scribble(got)
		assertStored(t, s, want)
	}},
	{"GetByHashResult", func(t *testing.T, s store.Store) {
		k := newKey(t, "w1", "a")
		mustCreate(t, s, k)
		got, err := s.GetByHash(t.Context(), k.Hash)
		if err != nil {
			t.Fatalf("GetByHash: got error %v, want nil", err)
		}
		want := got.Clone()
		scribble(got)
		assertStored(t, s, want)
	}},
	{"ListResult", func(t *testing.T, s store.Store) {
		k := newKey(t, "w1", "a")
		mustCreate(t, s, k)
		all := listAll(t, s, store.ListOptions{})
		if len(all) != 1 {
			t.Fatalf("List: got %d keys, want 1", len(all))
		}
		want := all[0].Clone()
		scribble(all[0])
		assertStored(t, s, want)
	}},
}

// scribble changes k in place, through every field that shares memory
// with a copy: slices, the map and the RemainingUses and Refill pointers.
func scribble(k *store.Key) {
	k.Name = "scribbled"
	k.Scopes[0] = "scribbled"
	k.Metadata["team"] = "scribbled"
	k.Metadata["added"] = "scribbled"
	k.Hash[0] ^= 0xff
	k.PrevHash[0] ^= 0xff
	*k.RemainingUses = 12345
	k.RateLimits[0].Requests = 12345
	k.Refill.Amount = 12345
	k.AllowedCIDRs[0] = netip.MustParsePrefix("0.0.0.0/0")
	k.Version = 99
}

// assertStored checks that the store still holds want, by id and by hash.
func assertStored(t *testing.T, s store.Store, want *store.Key) {
	t.Helper()
	assertGetEqual(t, s, want)
	got, err := s.GetByHash(t.Context(), want.Hash)
	if err != nil {
		t.Fatalf("GetByHash(stored hash): got error %v, want nil", err)
	}
	assertKeyEqual(t, got, want)
}

var contextTests = []namedTest{
	{"Cancelled", testContextCancelled},
}

func testContextCancelled(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	want := k.Clone()
	fresh := newKey(t, "w1", "fresh")
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Create", func(ctx context.Context) error { return s.Create(ctx, fresh) }},
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, k.ID); return err }},
		{"GetByHash", func(ctx context.Context) error { _, err := s.GetByHash(ctx, k.Hash); return err }},
		{"List", func(ctx context.Context) error { _, err := s.List(ctx, store.ListOptions{}); return err }},
		{"Update", func(ctx context.Context) error {
			u := k.Clone()
			u.Description = "cancelled"
			return s.Update(ctx, u)
		}},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, k.ID) }},
		{"TouchLastUsed", func(ctx context.Context) error {
			return s.TouchLastUsed(ctx, map[uuid.UUID]time.Time{k.ID: now().Add(time.Hour)})
		}},
		{"ConsumeUse", func(ctx context.Context) error { _, err := s.ConsumeUse(ctx, k.ID); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(cancelled(t))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: got error %v, want one wrapping %v", tc.name, err, context.Canceled)
			}
		})
	}
	// No cancelled call may have written anything.
	assertGetEqual(t, s, want)
	_, err := s.Get(t.Context(), fresh.ID)
	assertErrorIs(t, "Get(key created with a cancelled context)", err, store.ErrNotFound)
}

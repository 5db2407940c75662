package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// revokeTests check the optional store.Revoker capability; a store
// without it skips them (a capability, not a failure).
var revokeTests = []namedTest{
	{"RevokesAtOnce", testRevokeAtOnce},
	{"KeepsFirstTime", testRevokeKeepsFirstTime},
	{"NotFound", testRevokeNotFound},
	{"UnderConcurrentUse", testRevokeUnderUse},
}

// revoker returns s as a store.Revoker, or skips the test.
func revoker(t *testing.T, s store.Store) store.Revoker {
	t.Helper()
	r, ok := s.(store.Revoker)
	if !ok {
		t.Skip("the store does not implement store.Revoker (optional)")
	}
	return r
}

func testRevokeAtOnce(t *testing.T, s store.Store) {
	r := revoker(t, s)
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	other := newKey(t, "w1", "b")
	mustCreate(t, s, other)
	at := now().Add(time.Minute)
	got, err := r.Revoke(t.Context(), k.ID, at)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	want := k.Clone()
	want.RevokedAt, want.UpdatedAt, want.Version = at, at, 2
	want.PrevHash, want.PrevPepperID, want.PrevExpiresAt = nil, "", time.Time{}
	assertKeyEqual(t, got, want)
	assertGetEqual(t, s, want)
	// The old secret of the grace period is gone with the key.
	_, err = s.GetByHash(t.Context(), k.PrevHash)
	assertErrorIs(t, "GetByHash(previous hash of a revoked key)", err, store.ErrNotFound)
	assertGetEqual(t, s, other)
}

func testRevokeKeepsFirstTime(t *testing.T, s store.Store) {
	r := revoker(t, s)
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	first := now()
	if _, err := r.Revoke(t.Context(), k.ID, first); err != nil {
		t.Fatal(err)
	}
	later := first.Add(time.Hour)
	got, err := r.Revoke(t.Context(), k.ID, later)
	if err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if !got.RevokedAt.Equal(first) || !got.UpdatedAt.Equal(later) || got.Version != 3 {
		t.Errorf("second Revoke: RevokedAt %v UpdatedAt %v Version %d; want %v, %v, 3", got.RevokedAt, got.UpdatedAt, got.Version, first, later)
	}
}

func testRevokeNotFound(t *testing.T, s store.Store) {
	r := revoker(t, s)
	mustCreate(t, s, newKey(t, "w1", "a"))
	_, err := r.Revoke(t.Context(), newID(), now())
	assertErrorIs(t, "Revoke(unknown id)", err, store.ErrNotFound)
	_, err = r.Revoke(cancelled(t), newID(), now())
	assertErrorIs(t, "Revoke(cancelled context)", err, context.Canceled)
}

// testRevokeUnderUse revokes a key while goroutines take its uses: each
// Revoke succeeds at the first attempt, whatever the version, and every
// use taken is counted.
func testRevokeUnderUse(t *testing.T, s store.Store) {
	r := revoker(t, s)
	k := newKey(t, "w1", "a")
	k.RemainingUses = int64p(1_000_000)
	mustCreate(t, s, k)
	var stop atomic.Bool
	var taken atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := s.ConsumeUse(t.Context(), k.ID); err != nil {
					t.Errorf("ConsumeUse: %v", err)
					return
				}
				taken.Add(1)
			}
		})
	}
	for i := range 10 {
		at := now()
		if _, err := r.Revoke(t.Context(), k.ID, at); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("Revoke %d under concurrent use: %v", i+1, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	got := mustGet(t, s, k.ID)
	if got.RevokedAt.IsZero() || got.RemainingUses == nil || *got.RemainingUses != 1_000_000-taken.Load() {
		t.Errorf("after revocations under use: revoked %v, uses left %s, want revoked and %d", got.RevokedAt, usesString(got.RemainingUses), 1_000_000-taken.Load())
	}
}

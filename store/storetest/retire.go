package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/keygate/keygate/store"
)

// retireTests check the optional store.Retirer capability; a store
// without it skips them.
var retireTests = []namedTest{
	{"RetireAndCheck", testRetireAndCheck},
	{"Idempotent", testRetireIdempotent},
	{"ApartFromKeys", testRetireApartFromKeys},
	{"LargeBatch", testRetireLarge},
	{"Concurrent", testRetireConcurrent},
}

// retirer returns s as a store.Retirer, or skips the test.
func retirer(t *testing.T, s store.Store) store.Retirer {
	t.Helper()
	r, ok := s.(store.Retirer)
	if !ok {
		t.Skip("the store does not implement store.Retirer (optional)")
	}
	return r
}

// retired returns whether any of hashes is retired in r, or ends the
// test.
func retired(t *testing.T, r store.Retirer, hashes ...[]byte) bool {
	t.Helper()
	ok, err := r.Retired(t.Context(), hashes...)
	if err != nil {
		t.Fatalf("Retired: %v", err)
	}
	return ok
}

// mustRetire retires hashes in r or ends the test.
func mustRetire(t *testing.T, r store.Retirer, hashes ...[]byte) {
	t.Helper()
	rs := make([]store.RetiredHash, len(hashes))
	for i, h := range hashes {
		rs[i] = store.RetiredHash{Hash: h, PepperID: "pepper-1", At: now()}
	}
	if err := r.Retire(t.Context(), rs); err != nil {
		t.Fatalf("Retire(%d hashes): %v", len(rs), err)
	}
}

func testRetireAndCheck(t *testing.T, s store.Store) {
	r := retirer(t, s)
	a, b, other := randomHash(), randomHash(), randomHash()
	if retired(t, r, a) {
		t.Error("Retired(a) before any Retire: got true, want false")
	}
	mustRetire(t, r, a, b, nil, []byte{})
	for _, tc := range []struct {
		name   string
		hashes [][]byte
		want   bool
	}{
		{"a", [][]byte{a}, true},
		{"b", [][]byte{b}, true},
		{"other", [][]byte{other}, false},
		{"other, b", [][]byte{other, b}, true},
		{"none", nil, false},
		{"nil and empty", [][]byte{nil, {}}, false},
		{"a prefix of a", [][]byte{a[:31]}, false},
	} {
		if got := retired(t, r, tc.hashes...); got != tc.want {
			t.Errorf("Retired(%s): got %v, want %v", tc.name, got, tc.want)
		}
	}
	if err := r.Retire(t.Context(), nil); err != nil {
		t.Errorf("Retire(nil): %v", err)
	}
	_, err := r.Retired(cancelled(t), a)
	assertErrorIs(t, "Retired(cancelled context)", err, context.Canceled)
	err = r.Retire(cancelled(t), []store.RetiredHash{{Hash: other, PepperID: "pepper-1", At: now()}})
	assertErrorIs(t, "Retire(cancelled context)", err, context.Canceled)
	if retired(t, r, other) {
		t.Error("Retire with a cancelled context wrote its hash")
	}
}

func testRetireIdempotent(t *testing.T, s store.Store) {
	r := retirer(t, s)
	a, b := randomHash(), randomHash()
	mustRetire(t, r, a)
	mustRetire(t, r, a, b, b) // again, and twice in one call
	if !retired(t, r, a) || !retired(t, r, b) {
		t.Error("a hash retired again is no longer retired")
	}
}

func testRetireApartFromKeys(t *testing.T, s store.Store) {
	r := retirer(t, s)
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	// A tombstone of a hash a key still holds (a write that failed after
	// its tombstone) changes nothing about the key.
	mustRetire(t, r, k.Hash, k.PrevHash)
	got, err := s.GetByHash(t.Context(), k.Hash)
	if err != nil || got.ID != k.ID {
		t.Fatalf("GetByHash(retired hash of a stored key): got %v, %v, want the key", got, err)
	}
	if err := s.Delete(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	if !retired(t, r, k.Hash) || !retired(t, r, k.PrevHash) {
		t.Error("deleting a key dropped the tombstones of its hashes")
	}
	// Nor does the store refuse a key holding a retired hash: refusing
	// retired secrets is the Manager's job.
	again := newKey(t, "w1", "again")
	again.Hash = k.Hash
	if err := s.Create(t.Context(), again); err != nil {
		t.Errorf("Create with a retired hash: %v, want nil", err)
	}
}

func testRetireLarge(t *testing.T, s store.Store) {
	r := retirer(t, s)
	hashes := make([][]byte, 1201)
	for i := range hashes {
		hashes[i] = randomHash()
	}
	mustRetire(t, r, hashes...)
	for i, h := range hashes {
		if !retired(t, r, h) {
			t.Fatalf("hash %d of 1201 retired in one call is not retired", i)
		}
	}
}

func testRetireConcurrent(t *testing.T, s store.Store) {
	r := retirer(t, s)
	shared := make([][]byte, 20)
	for i := range shared {
		shared[i] = randomHash()
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			// Every worker retires the shared hashes, in a different
			// order, and one of its own.
			rs := []store.RetiredHash{{Hash: randomHash(), PepperID: "pepper-1", At: now()}}
			for i := range shared {
				rs = append(rs, store.RetiredHash{Hash: shared[(i+w)%len(shared)], PepperID: fmt.Sprint("pepper-", w), At: now()})
			}
			if err := r.Retire(t.Context(), rs); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Retire of the same hashes: %v", err)
	}
	for i, h := range shared {
		if !retired(t, r, h) {
			t.Errorf("shared hash %d is not retired", i)
		}
	}
}

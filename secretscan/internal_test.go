package secretscan

import (
	"crypto/sha256"
	"testing"
	"time"
)

// TestReplaysBounded: the reports remembered stay within the limit, the
// expired ones forgotten first, the ones being handled never.
func TestReplaysBounded(t *testing.T) {
	t.Parallel()
	const limit, window = 64, time.Hour
	r := replays{limit: limit, seen: map[[sha256.Size]byte]*handled{}}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	id := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte{byte(i), byte(i >> 8)}) }

	// Ten reports still being handled, then handled ones in excess.
	pending := map[[sha256.Size]byte]bool{}
	for i := range 10 {
		if _, first := r.claim(id(i), now, window); !first {
			t.Fatalf("report %d: not first", i)
		}
		pending[id(i)] = true
	}
	for i := 10; i < 1000; i++ {
		a, first := r.claim(id(i), now, window)
		if !first {
			t.Fatalf("report %d: not first", i)
		}
		r.done(a, []byte{1})
		if n := len(r.seen); n > limit {
			t.Fatalf("%d reports remembered, limit %d", n, limit)
		}
	}
	for p := range pending {
		if a, ok := r.seen[p]; !ok || closed(a.done) {
			t.Fatal("a report being handled was forgotten")
		}
	}
	// The newest is remembered: sent again, it is not first.
	if _, first := r.claim(id(999), now, window); first {
		t.Error("the latest report was forgotten")
	}
	// Once the window has passed, the old ones make room before any
	// newer one is dropped.
	later := now.Add(window)
	a, _ := r.claim(id(5000), later, window)
	r.done(a, nil)
	for i := 5001; i < 5001+limit/2; i++ {
		a, _ := r.claim(id(i), later, window)
		r.done(a, nil)
	}
	for i := 5000; i < 5001+limit/2; i++ {
		if _, ok := r.seen[id(i)]; !ok {
			t.Fatalf("report %d, within its window, forgotten while expired ones were kept", i)
		}
	}
}

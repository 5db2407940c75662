// Package sessiontest is the conformance suite of console.SessionStore:
// every session store (the console's MemoryStore, store/sqlstore's on
// SQLite, PostgreSQL and MySQL/MariaDB, the redis module's) runs the same
// cases, so that the console behaves the same on each, and on several
// instances sharing one.
package sessiontest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/console"
)

// Run runs the suite against the stores newStore returns. newStore must
// return a new, empty store for each call (or one whose contents no
// other call sees, such as under a fresh prefix); every leaf subtest
// calls it once, with its own t, so it may register cleanup with
// t.Cleanup and fail with t.Fatal. Subtests are named after what they
// test ("Create", "Bound/PerOwner", "Nonce/Concurrent", ...) and run one
// after another.
func Run(t *testing.T, newStore func(t *testing.T) console.SessionStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s console.SessionStore)
	}{
		{"Create", testCreate},
		{"Missing", testMissing},
		{"Expiry", testExpiry},
		{"Touch", testTouch},
		{"Delete", testDelete},
		{"Flash", testFlash},
		{"Bound/PerOwner", testPerOwner},
		{"Bound/ExpiredDoNotCount", testExpiredDoNotCount},
		{"Bound/Concurrent", testConcurrentBound},
		{"Nonce", testNonce},
		{"Nonce/Concurrent", testConcurrentNonce},
		{"Context", testContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.fn(t, s)
		})
	}
}

// now returns the current time in UTC at the microsecond precision every
// store keeps. Every time of the suite derives from it.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// newID returns a random 32-byte id, as the console's digests are.
func newID() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// newOwner returns an owner name no other test uses.
func newOwner() string {
	return fmt.Sprintf("key:%x", newID()[:16])
}

// create stores a session of owner holding data, or fails t.
func create(t *testing.T, s console.SessionStore, id []byte, owner string, data []byte, at, expires time.Time, perOwner int) {
	t.Helper()
	if err := s.CreateSession(t.Context(), id, owner, data, at, expires, perOwner); err != nil {
		t.Fatalf("CreateSession: got error %v, want nil", err)
	}
}

// read returns session id at now, or fails t.
func read(t *testing.T, s console.SessionStore, id []byte, at time.Time) (data []byte, flash string, expires time.Time) {
	t.Helper()
	data, flash, expires, err := s.Session(t.Context(), id, at)
	if err != nil {
		t.Fatalf("Session: got error %v, want nil", err)
	}
	return data, flash, expires
}

// alive reports whether session id is live at now.
func alive(t *testing.T, s console.SessionStore, id []byte, at time.Time) bool {
	t.Helper()
	data, _, _ := read(t, s, id, at)
	return data != nil
}

func testCreate(t *testing.T, s console.SessionStore) {
	t0 := now()
	id := newID()
	// Any bytes: the console's JSON, or anything else.
	data := []byte("{\"csrf\":\"x\"}\x00\xff\xfe binary")
	create(t, s, id, newOwner(), data, t0, t0.Add(time.Hour), 10)
	data[0] = 'X' // the store keeps its own copy
	got, flash, expires := read(t, s, id, t0.Add(time.Minute))
	if !bytes.Equal(got, []byte("{\"csrf\":\"x\"}\x00\xff\xfe binary")) {
		t.Errorf("Session data: got %q, want what was stored", got)
	}
	if flash != "" {
		t.Errorf("Session flash: got %q, want none", flash)
	}
	if !expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("Session expires: got %v, want %v", expires, t0.Add(time.Hour))
	}
	got[0] = 'Y'
	if again, _, _ := read(t, s, id, t0.Add(time.Minute)); again[0] != '{' {
		t.Error("Session returned the store's own slice")
	}
}

func testMissing(t *testing.T, s console.SessionStore) {
	t0 := now()
	for _, id := range [][]byte{newID(), {}, nil} {
		data, flash, expires, err := s.Session(t.Context(), id, t0)
		if err != nil || data != nil || flash != "" || !expires.IsZero() {
			t.Errorf("Session(%x) of no session: got %q, %q, %v, %v; want nil and no error", id, data, flash, expires, err)
		}
	}
	id := newID()
	if err := s.TouchSession(t.Context(), id, newOwner(), t0, t0.Add(time.Hour)); err != nil {
		t.Errorf("TouchSession of no session: got error %v, want nil", err)
	}
	if err := s.SetFlash(t.Context(), id, "hello"); err != nil {
		t.Errorf("SetFlash of no session: got error %v, want nil", err)
	}
	if ok, err := s.TakeFlash(t.Context(), id, "hello"); err != nil || ok {
		t.Errorf("TakeFlash of no session: got %v, %v; want false, nil", ok, err)
	}
	if err := s.DeleteSession(t.Context(), id); err != nil {
		t.Errorf("DeleteSession of no session: got error %v, want nil", err)
	}
	if alive(t, s, id, t0) {
		t.Error("touching, flashing or deleting no session made one")
	}
}

func testExpiry(t *testing.T, s console.SessionStore) {
	t0 := now()
	id := newID()
	create(t, s, id, newOwner(), []byte("d"), t0, t0.Add(time.Hour), 10)
	if !alive(t, s, id, t0.Add(time.Hour-time.Microsecond)) {
		t.Error("a session is not live just before its expiry")
	}
	if alive(t, s, id, t0.Add(time.Hour)) {
		t.Error("a session is live at its expiry")
	}
	if err := s.TouchSession(t.Context(), id, "", t0.Add(2*time.Hour), t0.Add(3*time.Hour)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if alive(t, s, id, t0.Add(2*time.Hour)) {
		t.Error("touching an expired session brought it back")
	}
}

func testTouch(t *testing.T, s console.SessionStore) {
	t0 := now()
	id, owner := newID(), newOwner()
	create(t, s, id, owner, []byte("d"), t0, t0.Add(time.Hour), 10)
	if err := s.TouchSession(t.Context(), id, owner, t0.Add(50*time.Minute), t0.Add(110*time.Minute)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if _, _, exp := read(t, s, id, t0.Add(100*time.Minute)); !exp.Equal(t0.Add(110 * time.Minute)) {
		t.Errorf("after TouchSession: expires %v, want %v", exp, t0.Add(110*time.Minute))
	}
	if alive(t, s, id, t0.Add(110*time.Minute)) {
		t.Error("a touched session outlived its new expiry")
	}
}

func testDelete(t *testing.T, s console.SessionStore) {
	t0 := now()
	id, other, owner := newID(), newID(), newOwner()
	create(t, s, id, owner, []byte("d"), t0, t0.Add(time.Hour), 10)
	create(t, s, other, owner, []byte("e"), t0, t0.Add(time.Hour), 10)
	if err := s.DeleteSession(t.Context(), id); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if alive(t, s, id, t0) {
		t.Error("a deleted session is live")
	}
	if !alive(t, s, other, t0) {
		t.Error("deleting one session ended another")
	}
	if err := s.DeleteSession(t.Context(), id); err != nil {
		t.Errorf("DeleteSession again: got error %v, want nil", err)
	}
	// Nothing brings it back.
	if err := s.TouchSession(t.Context(), id, owner, t0, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFlash(t.Context(), id, "back?"); err != nil {
		t.Fatal(err)
	}
	if alive(t, s, id, t0) {
		t.Error("a deleted session came back after TouchSession or SetFlash")
	}
}

func testFlash(t *testing.T, s console.SessionStore) {
	t0 := now()
	id, other := newID(), newID()
	create(t, s, id, newOwner(), []byte("d"), t0, t0.Add(time.Hour), 10)
	create(t, s, other, newOwner(), []byte("e"), t0, t0.Add(time.Hour), 10)
	const msg = `Token "grafana" revoked: it is refused from its next request. ✓`
	if err := s.SetFlash(t.Context(), id, msg); err != nil {
		t.Fatalf("SetFlash: %v", err)
	}
	if _, flash, _ := read(t, s, id, t0); flash != msg {
		t.Errorf("flash: got %q, want %q", flash, msg)
	}
	if _, flash, _ := read(t, s, other, t0); flash != "" {
		t.Errorf("another session's flash: got %q, want none", flash)
	}
	for _, wrong := range []string{"", "another message"} {
		if ok, err := s.TakeFlash(t.Context(), id, wrong); err != nil || ok {
			t.Errorf("TakeFlash(%q) of a session flashing another: got %v, %v; want false, nil", wrong, ok, err)
		}
	}
	if ok, err := s.TakeFlash(t.Context(), id, msg); err != nil || !ok {
		t.Errorf("TakeFlash: got %v, %v; want true, nil", ok, err)
	}
	if ok, err := s.TakeFlash(t.Context(), id, msg); err != nil || ok {
		t.Errorf("TakeFlash again: got %v, %v; want false, nil", ok, err)
	}
	if _, flash, _ := read(t, s, id, t0); flash != "" {
		t.Errorf("flash after TakeFlash: got %q, want none", flash)
	}
	// A new message replaces one not yet taken.
	if err := s.SetFlash(t.Context(), id, "first"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFlash(t.Context(), id, "second"); err != nil {
		t.Fatal(err)
	}
	if _, flash, _ := read(t, s, id, t0); flash != "second" {
		t.Errorf("flash: got %q, want the latest", flash)
	}
	// Of concurrent takes, one gets the message.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := s.TakeFlash(t.Context(), id, "second")
			if err != nil {
				t.Errorf("concurrent TakeFlash: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Errorf("8 concurrent TakeFlash of one message: %d got it, want 1", n)
	}
}

func testPerOwner(t *testing.T, s console.SessionStore) {
	t0 := now()
	victim, spammer := newOwner(), newOwner()
	v := newID()
	create(t, s, v, victim, []byte("victim"), t0, t0.Add(time.Hour), 3)
	var ids [][]byte
	for i := range 6 {
		id := newID()
		ids = append(ids, id)
		create(t, s, id, spammer, fmt.Appendf(nil, "spam %d", i), t0.Add(time.Duration(i+1)*time.Second), t0.Add(time.Hour), 3)
	}
	// Touching the oldest does not save it: the oldest by creation ends.
	at := t0.Add(10 * time.Second)
	if err := s.TouchSession(t.Context(), ids[3], spammer, at, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	id := newID()
	ids = append(ids, id)
	create(t, s, id, spammer, []byte("spam 6"), at, t0.Add(time.Hour), 3)
	for i, id := range ids {
		if got, want := alive(t, s, id, at), i >= len(ids)-3; got != want {
			t.Errorf("session %d of 7 of one owner, 3 at most: live %v, want %v (the newest 3)", i, got, want)
		}
	}
	if !alive(t, s, v, at) {
		t.Error("an owner over its bound ended another owner's session")
	}
}

func testExpiredDoNotCount(t *testing.T, s console.SessionStore) {
	t0 := now()
	owner := newOwner()
	old := newID()
	create(t, s, old, owner, []byte("old"), t0, t0.Add(time.Minute), 2)
	live := newID()
	create(t, s, live, owner, []byte("live"), t0.Add(time.Second), t0.Add(time.Hour), 2)
	// At t0+2m the first has expired: the new one makes two live.
	at := t0.Add(2 * time.Minute)
	fresh := newID()
	create(t, s, fresh, owner, []byte("fresh"), at, at.Add(time.Hour), 2)
	if !alive(t, s, live, at) || !alive(t, s, fresh, at) {
		t.Error("an expired session counted against its owner's bound")
	}
}

func testConcurrentBound(t *testing.T, s console.SessionStore) {
	t0 := now()
	owner := newOwner()
	const n, bound = 12, 3
	ids := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = newID()
		wg.Go(func() {
			if err := s.CreateSession(t.Context(), ids[i], owner, []byte("d"), t0.Add(time.Duration(i)*time.Millisecond), t0.Add(time.Hour), bound); err != nil {
				t.Errorf("concurrent CreateSession: %v", err)
			}
		})
	}
	wg.Wait()
	// Whatever order they ran in, the newest by creation are left.
	for i, id := range ids {
		if got, want := alive(t, s, id, t0.Add(time.Second)), i >= n-bound; got != want {
			t.Errorf("session %d of %d of one owner created at once, %d at most: live %v, want %v (the newest %d)",
				i, n, bound, got, want, bound)
		}
	}
}

func testNonce(t *testing.T, s console.SessionStore) {
	t0 := now()
	n, other := newID(), newID()
	for _, tt := range []struct {
		name  string
		nonce []byte
		want  bool
	}{
		{"first", n, true},
		{"again", n, false},
		{"another", other, true},
		{"again", n, false},
	} {
		ok, err := s.UseNonce(t.Context(), tt.nonce, t0, t0.Add(time.Hour))
		if err != nil || ok != tt.want {
			t.Errorf("UseNonce (%s): got %v, %v; want %v, nil", tt.name, ok, err, tt.want)
		}
	}
	// Still used just before it expires, at another time.
	if ok, err := s.UseNonce(t.Context(), n, t0.Add(time.Hour-time.Second), t0.Add(2*time.Hour)); err != nil || ok {
		t.Errorf("UseNonce before its expiry: got %v, %v; want false, nil", ok, err)
	}
}

func testConcurrentNonce(t *testing.T, s console.SessionStore) {
	t0 := now()
	for range 3 {
		n := newID()
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				ok, err := s.UseNonce(t.Context(), n, t0, t0.Add(time.Hour))
				if err != nil {
					t.Errorf("concurrent UseNonce: %v", err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if got := wins.Load(); got != 1 {
			t.Errorf("16 concurrent UseNonce of one nonce: %d got true, want exactly 1", got)
		}
	}
}

func testContext(t *testing.T, s console.SessionStore) {
	t0 := now()
	id, owner := newID(), newOwner()
	create(t, s, id, owner, []byte("d"), t0, t0.Add(time.Hour), 10)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: got error %v, want one wrapping context.Canceled", name, err)
		}
	}
	check("CreateSession", s.CreateSession(ctx, newID(), owner, []byte("d"), t0, t0.Add(time.Hour), 10))
	_, _, _, err := s.Session(ctx, id, t0)
	check("Session", err)
	check("TouchSession", s.TouchSession(ctx, id, owner, t0, t0.Add(2*time.Hour)))
	check("SetFlash", s.SetFlash(ctx, id, "x"))
	_, err = s.TakeFlash(ctx, id, "x")
	check("TakeFlash", err)
	_, err = s.UseNonce(ctx, newID(), t0, t0.Add(time.Hour))
	check("UseNonce", err)
	check("DeleteSession", s.DeleteSession(ctx, id))
	if !alive(t, s, id, t0) {
		t.Error("a call with a canceled context ended the session")
	}
}

// Benchmark measures what the console asks of a session store: reading
// a session (every request), creating one (every sign-in, with the
// owner's bound; the owner holds 10 sessions) and using a nonce (every
// form that makes a token, and every sign-in). Run it from a backend's
// benchmark with a store of its own.
func Benchmark(b *testing.B, s console.SessionStore) {
	ctx := b.Context()
	t0 := now()
	id := newID()
	if err := s.CreateSession(ctx, id, newOwner(), make([]byte, 200), t0, t0.Add(time.Hour), 10); err != nil {
		b.Fatal(err)
	}
	b.Run("Session", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if data, _, _, err := s.Session(ctx, id, t0); err != nil || data == nil {
				b.Fatalf("Session: %q, %v", data, err)
			}
		}
	})
	b.Run("CreateSession", func(b *testing.B) {
		owner := newOwner()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if err := s.CreateSession(ctx, newID(), owner, make([]byte, 200), t0.Add(time.Duration(i)*time.Microsecond), t0.Add(time.Hour), 10); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UseNonce", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := s.UseNonce(ctx, newID(), t0, t0.Add(time.Hour)); err != nil || !ok {
				b.Fatalf("UseNonce: %v, %v", ok, err)
			}
		}
	})
}

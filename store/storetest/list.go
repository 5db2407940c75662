package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

var listTests = []namedTest{
	{"Empty", testListEmpty},
	{"Filters", testListFilters},
	{"Order", testListOrder},
	{"Paging", testListPaging},
	{"CursorDeleted", testListCursorDeleted},
	{"Limit", testListLimit},
}

func testListEmpty(t *testing.T, s store.Store) {
	page, err := s.List(t.Context(), store.ListOptions{})
	if err != nil {
		t.Fatalf("List(empty store): got error %v, want nil", err)
	}
	if len(page.Keys) != 0 || page.Next != (uuid.UUID{}) {
		t.Errorf("List(empty store): got %d keys, Next %s; want 0 keys, zero Next", len(page.Keys), page.Next)
	}
}

func testListFilters(t *testing.T, s store.Store) {
	base := now()
	var keys []*store.Key
	for i := range 16 {
		k := newKey(t, []string{"w1", "w2"}[i%2], fmt.Sprintf("k%02d", i))
		k.Owner = []string{"alice", "bob"}[i/2%2]
		if i/4%2 == 1 {
			k.RevokedAt = base.Add(-time.Duration(i) * time.Minute)
		}
		// Every fourth key never expires; the others expire i hours from now.
		k.ExpiresAt = base.Add(time.Duration(i) * time.Hour)
		if i%4 == 0 {
			k.ExpiresAt = time.Time{}
		}
		keys = append(keys, k)
	}
	createShuffled(t, s, keys)

	tests := []struct {
		name string
		opts store.ListOptions
		want func(k *store.Key) bool
	}{
		{"no filter", store.ListOptions{}, func(*store.Key) bool { return true }},
		{"AnyRevoked", store.ListOptions{Revoked: store.AnyRevoked}, func(*store.Key) bool { return true }},
		{"workspace", store.ListOptions{Workspace: "w1"}, func(k *store.Key) bool { return k.Workspace == "w1" }},
		{"owner", store.ListOptions{Owner: "alice"}, func(k *store.Key) bool { return k.Owner == "alice" }},
		{"OnlyActive", store.ListOptions{Revoked: store.OnlyActive}, func(k *store.Key) bool { return k.RevokedAt.IsZero() }},
		{"OnlyRevoked", store.ListOptions{Revoked: store.OnlyRevoked}, func(k *store.Key) bool { return !k.RevokedAt.IsZero() }},
		{"workspace and owner", store.ListOptions{Workspace: "w2", Owner: "bob"}, func(k *store.Key) bool {
			return k.Workspace == "w2" && k.Owner == "bob"
		}},
		{"workspace and OnlyActive", store.ListOptions{Workspace: "w1", Revoked: store.OnlyActive}, func(k *store.Key) bool {
			return k.Workspace == "w1" && k.RevokedAt.IsZero()
		}},
		{"all three", store.ListOptions{Workspace: "w2", Owner: "alice", Revoked: store.OnlyRevoked}, func(k *store.Key) bool {
			return k.Workspace == "w2" && k.Owner == "alice" && !k.RevokedAt.IsZero()
		}},
		{"expiring within 5 hours", store.ListOptions{ExpiresAfter: base, ExpiresBefore: base.Add(5 * time.Hour)}, func(k *store.Key) bool {
			h := expiresIn(k, base)
			return h > 0 && h <= 5
		}},
		{"expiring by 6 hours, the bound included", store.ListOptions{ExpiresBefore: base.Add(6 * time.Hour)}, func(k *store.Key) bool {
			h := expiresIn(k, base)
			return h >= 0 && h <= 6
		}},
		{"expiring after 10 hours", store.ListOptions{ExpiresAfter: base.Add(10 * time.Hour)}, func(k *store.Key) bool { return expiresIn(k, base) > 10 }},
		{"expiring soon, active, in w2", store.ListOptions{Workspace: "w2", Revoked: store.OnlyActive, ExpiresAfter: base, ExpiresBefore: base.Add(7 * time.Hour)},
			func(k *store.Key) bool {
				h := expiresIn(k, base)
				return k.Workspace == "w2" && k.RevokedAt.IsZero() && h > 0 && h <= 7
			}},
		{"unknown workspace", store.ListOptions{Workspace: "w3"}, func(*store.Key) bool { return false }},
		{"unknown owner", store.ListOptions{Owner: "carol"}, func(*store.Key) bool { return false }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []*store.Key
			for _, k := range keys {
				if tc.want(k) {
					want = append(want, k)
				}
			}
			opts := tc.opts
			opts.Limit = 100
			page, err := s.List(t.Context(), opts)
			if err != nil {
				t.Fatalf("List(%+v): got error %v, want nil", opts, err)
			}
			if page.Next != (uuid.UUID{}) {
				t.Errorf("List(%+v): got Next %s, want zero (one page)", opts, page.Next)
			}
			if got, want := ids(page.Keys), sortedIDs(want); !slices.Equal(got, want) {
				t.Fatalf("List(%+v): got ids %v, want %v", opts, got, want)
			}
			byID := make(map[uuid.UUID]*store.Key, len(want))
			for _, k := range want {
				byID[k.ID] = k
			}
			for _, got := range page.Keys {
				assertKeyEqual(t, got, byID[got.ID])
			}
		})
	}
}

func testListOrder(t *testing.T, s store.Store) {
	var keys []*store.Key
	for i := range 12 {
		keys = append(keys, newKey(t, "w1", fmt.Sprintf("k%02d", i)))
	}
	// Create newest first: List must sort by id, not by insertion.
	for _, k := range slices.Backward(keys) {
		mustCreate(t, s, k)
	}
	got := ids(listAll(t, s, store.ListOptions{Limit: 5}))
	if want := sortedIDs(keys); !slices.Equal(got, want) {
		t.Errorf("List order: got %v, want %v", got, want)
	}
}

func testListPaging(t *testing.T, s store.Store) {
	// 23 keys in "a" (alternating owners) and 20 in "b", created interleaved.
	var keys []*store.Key
	for i := range 43 {
		ws := "a"
		if i%2 == 1 && i < 41 {
			ws = "b"
		}
		k := newKey(t, ws, fmt.Sprintf("k%02d", i))
		k.Owner = []string{"alice", "bob"}[i/2%2]
		keys = append(keys, k)
	}
	createShuffled(t, s, keys)

	tests := []struct {
		name  string
		opts  store.ListOptions
		sizes []int
	}{
		{"all keys", store.ListOptions{Limit: 5}, []int{5, 5, 5, 5, 5, 5, 5, 5, 3}},
		{"partial last page", store.ListOptions{Workspace: "a", Limit: 5}, []int{5, 5, 5, 5, 3}},
		{"exact multiple", store.ListOptions{Workspace: "b", Limit: 5}, []int{5, 5, 5, 5}},
		{"limit 1", store.ListOptions{Workspace: "b", Owner: "bob", Limit: 1}, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"one page", store.ListOptions{Workspace: "a", Limit: 23}, []int{23}},
		{"two filters", store.ListOptions{Workspace: "a", Owner: "alice", Limit: 4}, []int{4, 4, 4}},
		{"no match", store.ListOptions{Workspace: "c", Limit: 5}, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []uuid.UUID
			for _, id := range sortedIDs(keys) {
				k := keys[slices.IndexFunc(keys, func(k *store.Key) bool { return k.ID == id })]
				if (tc.opts.Workspace == "" || k.Workspace == tc.opts.Workspace) &&
					(tc.opts.Owner == "" || k.Owner == tc.opts.Owner) {
					want = append(want, id)
				}
			}
			pages := listPages(t, s, tc.opts)
			var got []uuid.UUID
			var sizes []int
			for _, p := range pages {
				got = append(got, ids(p)...)
				sizes = append(sizes, len(p))
			}
			if !slices.Equal(got, want) {
				t.Errorf("ids over all pages: got %v, want %v", got, want)
			}
			if !slices.Equal(sizes, tc.sizes) {
				t.Errorf("page sizes: got %v, want %v (the page holding the last match has a zero Next)", sizes, tc.sizes)
			}
		})
	}
}

func testListCursorDeleted(t *testing.T, s store.Store) {
	var keys []*store.Key
	for i := range 10 {
		k := newKey(t, "w1", fmt.Sprintf("k%02d", i))
		keys = append(keys, k)
		mustCreate(t, s, k)
	}
	want := sortedIDs(keys)
	page, err := s.List(t.Context(), store.ListOptions{Limit: 4})
	if err != nil {
		t.Fatalf("List: got error %v, want nil", err)
	}
	if got := ids(page.Keys); !slices.Equal(got, want[:4]) {
		t.Fatalf("first page: got %v, want %v", got, want[:4])
	}
	if err := s.Delete(t.Context(), page.Next); err != nil {
		t.Fatalf("Delete(cursor key): got error %v, want nil", err)
	}
	rest := listAll(t, s, store.ListOptions{Limit: 4, After: page.Next})
	if got := ids(rest); !slices.Equal(got, want[4:]) {
		t.Errorf("pages after a deleted cursor: got %v, want %v", got, want[4:])
	}

	after := newID() // newer than every key
	page, err = s.List(t.Context(), store.ListOptions{After: after})
	if err != nil {
		t.Fatalf("List(After newest): got error %v, want nil", err)
	}
	if len(page.Keys) != 0 || page.Next != (uuid.UUID{}) {
		t.Errorf("List(After newest): got %v, Next %s; want no keys, zero Next", ids(page.Keys), page.Next)
	}
}

func testListLimit(t *testing.T, s store.Store) {
	const n = store.MaxListLimit + 1
	keys := createMany(t, s, n, "w1")
	want := sortedIDs(keys)

	tests := []struct {
		name     string
		limit    int
		wantKeys int
	}{
		{"default", 0, store.DefaultListLimit},
		{"explicit", 7, 7},
		{"maximum", store.MaxListLimit, store.MaxListLimit},
		{"clamped", store.MaxListLimit + 500, store.MaxListLimit},
		{"negative means default", -5, store.DefaultListLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.List(t.Context(), store.ListOptions{Limit: tc.limit})
			if err != nil {
				t.Fatalf("List(Limit %d): got error %v, want nil", tc.limit, err)
			}
			if got := ids(page.Keys); !slices.Equal(got, want[:tc.wantKeys]) {
				t.Fatalf("List(Limit %d): got %d keys, want the first %d", tc.limit, len(got), tc.wantKeys)
			}
			if wantNext := want[tc.wantKeys-1]; page.Next != wantNext {
				t.Errorf("List(Limit %d): got Next %s, want %s", tc.limit, page.Next, wantNext)
			}
		})
	}
	t.Run("last page after clamped", func(t *testing.T) {
		page, err := s.List(t.Context(), store.ListOptions{Limit: 5000, After: want[store.MaxListLimit-1]})
		if err != nil {
			t.Fatalf("List: got error %v, want nil", err)
		}
		if got := ids(page.Keys); !slices.Equal(got, want[store.MaxListLimit:]) || page.Next != (uuid.UUID{}) {
			t.Errorf("List: got %v, Next %s; want %v, zero Next", got, page.Next, want[store.MaxListLimit:])
		}
	})
}

// listPages pages through s with opts until Next is zero and returns the
// pages. It checks the paging contract on the way: each page holds at most
// the limit, and a non-zero Next is the id of the page's last key.
func listPages(t *testing.T, s store.Store, opts store.ListOptions) [][]*store.Key {
	t.Helper()
	limit := opts.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	var pages [][]*store.Key
	for {
		if len(pages) > 10000 {
			t.Fatalf("List(%+v): still paging after %d pages", opts, len(pages))
		}
		page, err := s.List(t.Context(), opts)
		if err != nil {
			t.Fatalf("List(%+v): got error %v, want nil", opts, err)
		}
		if len(page.Keys) > limit {
			t.Errorf("List(%+v): got %d keys, want at most %d", opts, len(page.Keys), limit)
		}
		pages = append(pages, page.Keys)
		if page.Next == (uuid.UUID{}) {
			return pages
		}
		if len(page.Keys) == 0 {
			t.Fatalf("List(%+v): got an empty page with Next %s, want Next zero", opts, page.Next)
		}
		if last := page.Keys[len(page.Keys)-1].ID; page.Next != last {
			t.Fatalf("List(%+v): got Next %s, want the last key's id %s", opts, page.Next, last)
		}
		opts.After = page.Next
	}
}

// listAll is listPages flattened.
func listAll(t *testing.T, s store.Store, opts store.ListOptions) []*store.Key {
	t.Helper()
	return slices.Concat(listPages(t, s, opts)...)
}

// createShuffled creates keys in a random order, so a store that lists in
// insertion order rather than id order is caught.
func createShuffled(t *testing.T, s store.Store, keys []*store.Key) {
	t.Helper()
	order := slices.Clone(keys)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, k := range order {
		mustCreate(t, s, k)
	}
}

// createMany creates n keys in workspace with 4 goroutines, to keep slow
// backends quick, and returns them.
func createMany(t *testing.T, s store.Store, n int, workspace string) []*store.Key {
	t.Helper()
	keys := make([]*store.Key, n)
	for i := range keys {
		keys[i] = newKey(t, workspace, fmt.Sprintf("bulk-%04d", i))
	}
	const workers = 4
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := s.Create(t.Context(), keys[i]); err != nil {
					errs[w] = fmt.Errorf("Create(%s): %w", keys[i].ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("creating %d keys: got error %v, want nil", n, err)
		}
	}
	return keys
}

// expiresIn returns in how many whole hours after base k expires, or -1
// for a key that never expires.
func expiresIn(k *store.Key, base time.Time) int {
	if k.ExpiresAt.IsZero() {
		return -1
	}
	return int(k.ExpiresAt.Sub(base) / time.Hour)
}

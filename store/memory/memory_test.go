package memory_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
	"github.com/keygate/keygate/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
}

func TestConformanceZeroValue(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return new(memory.Store) })
}

// TestErrorsOmitHash checks that no error message carries the hash asked
// for, in any common encoding.
func TestErrorsOmitHash(t *testing.T) {
	t.Parallel()
	s := memory.New()
	k := &store.Key{ID: uuid.Must(uuid.NewV7()), Name: "a", Hash: []byte("0123456789abcdef0123456789abcdef")}
	if err := s.Create(t.Context(), k); err != nil {
		t.Fatalf("Create: got error %v, want nil", err)
	}
	dup := &store.Key{ID: uuid.Must(uuid.NewV7()), Name: "b", Hash: k.Hash}
	missing := []byte("fedcba9876543210fedcba9876543210")
	_, errGet := s.GetByHash(t.Context(), missing)
	tests := []struct {
		name string
		err  error
		hash []byte
		want error
	}{
		{"GetByHash not found", errGet, missing, store.ErrNotFound},
		{"Create duplicate hash", s.Create(t.Context(), dup), k.Hash, store.ErrDuplicate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("got error %v, want %v", tc.err, tc.want)
			}
			msg := tc.err.Error()
			for _, enc := range []string{string(tc.hash), fmt.Sprintf("%x", tc.hash), fmt.Sprint(tc.hash)} {
				if strings.Contains(msg, enc) {
					t.Errorf("error %q contains the hash %q", msg, enc)
				}
			}
			if !strings.HasPrefix(msg, "memory: ") {
				t.Errorf("error %q: want prefix %q", msg, "memory: ")
			}
		})
	}
}

// TestListRandomIDs checks that ids which are not created in order (UUIDv4
// here) still list in ascending byte order.
func TestListRandomIDs(t *testing.T) {
	t.Parallel()
	s := memory.New()
	var want []uuid.UUID
	for i := range 200 {
		k := &store.Key{ID: uuid.New(), Name: fmt.Sprint(i), Hash: randomHash(t)}
		if err := s.Create(t.Context(), k); err != nil {
			t.Fatalf("Create: got error %v, want nil", err)
		}
		want = append(want, k.ID)
	}
	slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(string(a[:]), string(b[:])) })
	var got []uuid.UUID
	opts := store.ListOptions{Limit: 9}
	for {
		page, err := s.List(t.Context(), opts)
		if err != nil {
			t.Fatalf("List: got error %v, want nil", err)
		}
		for _, k := range page.Keys {
			got = append(got, k.ID)
		}
		if page.Next == (uuid.UUID{}) {
			break
		}
		opts.After = page.Next
	}
	if !slices.Equal(got, want) {
		t.Errorf("List: got %d ids %v, want %d ids %v", len(got), got, len(want), want)
	}
}

func randomHash(tb testing.TB) []byte {
	tb.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// fill returns a store holding n keys and their hashes.
func fill(b *testing.B, n int) (*memory.Store, [][]byte) {
	b.Helper()
	s := memory.New()
	hashes := make([][]byte, n)
	for i := range n {
		hashes[i] = randomHash(b)
		k := &store.Key{
			ID:        uuid.Must(uuid.NewV7()),
			Name:      fmt.Sprintf("key-%d", i),
			Workspace: "w1",
			Scopes:    []string{"keys:read", "keys:write"},
			Metadata:  map[string]string{"team": "platform"},
			Hash:      hashes[i],
			PrevHash:  randomHash(b),
		}
		if err := s.Create(b.Context(), k); err != nil {
			b.Fatalf("Create: %v", err)
		}
	}
	return s, hashes
}

func BenchmarkGetByHash(b *testing.B) {
	s, hashes := fill(b, 10_000)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.GetByHash(ctx, hashes[i%len(hashes)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetByHashParallel(b *testing.B) {
	s, hashes := fill(b, 10_000)
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.GetByHash(ctx, hashes[i%len(hashes)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkList(b *testing.B) {
	s, _ := fill(b, 10_000)
	ctx := b.Context()
	b.ReportAllocs()
	opts := store.ListOptions{Limit: store.DefaultListLimit}
	for b.Loop() {
		page, err := s.List(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		opts.After = page.Next // wraps to the first page at the end
	}
}

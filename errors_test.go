package keygate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestErrorsSayKeygateOnce: an error of the Manager names the package
// once, however many of its errors it wraps, and still matches each of
// them with errors.Is.
func TestErrorsSayKeygateOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	c := f.create(t, CreateRequest{})
	_, noName := f.m.Create(ctx, System(), CreateRequest{Scopes: []string{"x:read"}, Expiry: NeverExpire()})
	_, notFound := f.m.Get(ctx, System(), uuid.Must(uuid.NewV7()))
	_, badExpiry := ParseExpiry("next tuesday")
	f.store.fail.Store(true)
	name := "down"
	_, down := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Name: &name})
	f.m.cache.clear()
	_, verifyDown := f.m.Verify(ctx, c.Token.Reveal())
	f.store.fail.Store(false)
	for _, tc := range []struct {
		name string
		err  error
		is   []error
		says string
	}{
		{"no name", noName, []error{ErrInvalidRequest, ErrNameRequired}, "keygate: invalid request: name is required"},
		{"not found", notFound, []error{ErrNotFound}, "keygate: get key: key not found"},
		{"bad expiry", badExpiry, []error{ErrInvalidRequest, ErrInvalidExpiry}, "keygate: invalid request: invalid expiry: "},
		{"store down", down, []error{ErrUnavailable, errStoreDown}, "keygate: key.updated: key store unavailable: "},
		{"verify, store down", verifyDown, []error{ErrUnavailable, errStoreDown}, "keygate: look up key: key store unavailable: "},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := tc.err.Error()
		if n := strings.Count(msg, "keygate: "); n != 1 || !strings.HasPrefix(msg, tc.says) {
			t.Errorf("%s: %q says \"keygate: \" %d times; want once, starting %q", tc.name, msg, n, tc.says)
		}
		for _, target := range tc.is {
			if !errors.Is(tc.err, target) {
				t.Errorf("%s: %v is not %v", tc.name, tc.err, target)
			}
		}
	}
}

package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// Run runs the conformance suite against the store returned by newStore.
// newStore must return a new, empty store for each call; every leaf
// subtest calls it once, with its own t, so it may register cleanup with
// t.Cleanup and fail with t.Fatal. Subtests are named after the method
// they test ("Create/Duplicate", "List/Paging", "Concurrency/ConsumeUse",
// ...) so one can be selected with go test -run.
//
// Subtests run one after another, never in parallel, so newStore may share
// a database server between calls as long as each store it returns is
// empty and independent. Run itself is safe to call from several tests
// at once only if newStore is.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []namedTest
	}{
		{"Create", createTests},
		{"Get", getTests},
		{"GetByHash", getByHashTests},
		{"List", listTests},
		{"Update", updateTests},
		{"Delete", deleteTests},
		{"TouchLastUsed", touchTests},
		{"ConsumeUse", consumeTests},
		{"Revoke", revokeTests},
		{"Exercises", exerciseTests},
		{"Retire", retireTests},
		{"Usage", usageTests},
		{"Identities", identityTests},
		{"Spend", spendTests},
		{"Copies", copyTests},
		{"Context", contextTests},
		{"Concurrency", concurrencyTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := newStore(t)
					if s == nil {
						t.Fatal("newStore returned nil")
					}
					tc.fn(t, s)
				})
			}
		})
	}
}

// namedTest is one leaf subtest of the suite; fn gets a new, empty store.
type namedTest struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// now returns the current time in UTC at the microsecond precision SQL
// engines keep. Every time in the suite derives from it.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// newID returns a new UUIDv7.
func newID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}

// randomHash returns 32 random bytes, standing in for a keyed digest.
func randomHash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // Never fails; it crashes the program instead.
	return b
}

// newKey returns a valid key with every field set to a non-zero value
// except RevokedAt and Version (DisabledAt is set: a disabled key is stored
// like any other): a fresh id and random Hash and PrevHash, so
// keys from separate calls never collide except in the (workspace, name)
// given.
func newKey(t *testing.T, workspace, name string) *store.Key {
	t.Helper()
	base := now()
	uses := int64(100)
	return &store.Key{
		ID:            newID(),
		Name:          name,
		Description:   "key " + name + " for tests",
		Owner:         "owner-1",
		Workspace:     workspace,
		Role:          "reader",
		Scopes:        []string{"keys:read", "keys:write"},
		Metadata:      map[string]string{"team": "platform", "env": "test"},
		Hash:          randomHash(),
		PepperID:      "pepper-2",
		PrevHash:      randomHash(),
		PrevPepperID:  "pepper-1",
		PrevExpiresAt: base.Add(time.Hour),
		Hint:          "kg_7Gq2…",
		RateLimit:     100,
		RateWindow:    90 * time.Second,
		RateLimits: []store.RateLimit{
			{Name: "tokens", Requests: 100000, Window: time.Hour},
			{Name: "exports", Requests: 5, Window: 24 * time.Hour, OnDemand: true},
		},
		RemainingUses: &uses,
		Refill:        &store.Refill{Amount: 500, Every: store.PeriodMonth, Day: 31},
		RefilledAt:    base.Add(-4 * time.Minute),
		AllowedCIDRs: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("192.0.2.7/32"),
			netip.MustParsePrefix("2001:db8::/32"),
		},
		CreatedAt:      base.Add(-time.Hour),
		UpdatedAt:      base.Add(-time.Minute),
		ExpiresAt:      base.Add(30 * 24 * time.Hour),
		LastUsedAt:     base.Add(-2 * time.Minute),
		DisabledAt:     base.Add(-3 * time.Minute),
		ExpiryNotified: base.Add(29 * 24 * time.Hour),
	}
}

// assertKeyEqual reports, one error per field, every field in which got
// differs from want. Nil and empty Scopes, Metadata, AllowedCIDRs, Hash and
// PrevHash are equal; times are compared with time.Time.Equal.
func assertKeyEqual(t *testing.T, got, want *store.Key) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Errorf("key: got %v, want %v", got, want)
		}
		return
	}
	diff := func(field string, g, w any) {
		t.Helper()
		t.Errorf("key %s: %s: got %v, want %v", want.ID, field, g, w)
	}
	if got.ID != want.ID {
		diff("ID", got.ID, want.ID)
	}
	for _, f := range []struct {
		name      string
		got, want string
	}{
		{"Name", got.Name, want.Name},
		{"Description", got.Description, want.Description},
		{"Owner", got.Owner, want.Owner},
		{"Workspace", got.Workspace, want.Workspace},
		{"Role", got.Role, want.Role},
		{"PepperID", got.PepperID, want.PepperID},
		{"PrevPepperID", got.PrevPepperID, want.PrevPepperID},
		{"Hint", got.Hint, want.Hint},
	} {
		if f.got != f.want {
			diff(f.name, fmt.Sprintf("%q", f.got), fmt.Sprintf("%q", f.want))
		}
	}
	if !slices.Equal(got.Scopes, want.Scopes) {
		diff("Scopes", fmt.Sprintf("%q", got.Scopes), fmt.Sprintf("%q", want.Scopes))
	}
	if !maps.Equal(got.Metadata, want.Metadata) {
		diff("Metadata", got.Metadata, want.Metadata)
	}
	if !bytes.Equal(got.Hash, want.Hash) {
		diff("Hash", fmt.Sprintf("%x", got.Hash), fmt.Sprintf("%x", want.Hash))
	}
	if !bytes.Equal(got.PrevHash, want.PrevHash) {
		diff("PrevHash", fmt.Sprintf("%x", got.PrevHash), fmt.Sprintf("%x", want.PrevHash))
	}
	if got.RateLimit != want.RateLimit {
		diff("RateLimit", got.RateLimit, want.RateLimit)
	}
	if got.RateWindow != want.RateWindow {
		diff("RateWindow", got.RateWindow, want.RateWindow)
	}
	if !slices.Equal(got.RateLimits, want.RateLimits) {
		diff("RateLimits", got.RateLimits, want.RateLimits)
	}
	if g, w := usesString(got.RemainingUses), usesString(want.RemainingUses); g != w {
		diff("RemainingUses", g, w)
	}
	if g, w := refillString(got.Refill), refillString(want.Refill); g != w {
		diff("Refill", g, w)
	}
	if !slices.Equal(got.AllowedCIDRs, want.AllowedCIDRs) {
		diff("AllowedCIDRs", got.AllowedCIDRs, want.AllowedCIDRs)
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"PrevExpiresAt", got.PrevExpiresAt, want.PrevExpiresAt},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		{"LastUsedAt", got.LastUsedAt, want.LastUsedAt},
		{"RevokedAt", got.RevokedAt, want.RevokedAt},
		{"DisabledAt", got.DisabledAt, want.DisabledAt},
		{"ExpiryNotified", got.ExpiryNotified, want.ExpiryNotified},
		{"RefilledAt", got.RefilledAt, want.RefilledAt},
	} {
		if !f.got.Equal(f.want) {
			diff(f.name, f.got, f.want)
		}
	}
	if got.Version != want.Version {
		diff("Version", got.Version, want.Version)
	}
}

// usesString formats a RemainingUses pointer for comparison and messages.
func usesString(p *int64) string {
	if p == nil {
		return "nil (unlimited)"
	}
	return fmt.Sprint(*p)
}

// refillString formats a Refill pointer for comparison and messages.
func refillString(r *store.Refill) string {
	if r == nil {
		return "nil (never)"
	}
	return fmt.Sprintf("%d every %s (day %d)", r.Amount, r.Every, r.Day)
}

// int64p returns a pointer to n.
func int64p(n int64) *int64 {
	return &n
}

// mustCreate creates k in s or ends the test.
func mustCreate(t *testing.T, s store.Store, k *store.Key) {
	t.Helper()
	if err := s.Create(t.Context(), k); err != nil {
		t.Fatalf("Create(%s %q/%q): got error %v, want nil", k.ID, k.Workspace, k.Name, err)
	}
}

// mustGet returns the key id from s or ends the test.
func mustGet(t *testing.T, s store.Store, id uuid.UUID) *store.Key {
	t.Helper()
	k, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s): got error %v, want nil", id, err)
	}
	if k == nil {
		t.Fatalf("Get(%s): got nil key and nil error", id)
	}
	return k
}

// mustUpdate updates k in s or ends the test.
func mustUpdate(t *testing.T, s store.Store, k *store.Key) {
	t.Helper()
	if err := s.Update(t.Context(), k); err != nil {
		t.Fatalf("Update(%s): got error %v, want nil", k.ID, err)
	}
}

// assertGetEqual fetches want.ID and compares it with want.
func assertGetEqual(t *testing.T, s store.Store, want *store.Key) {
	t.Helper()
	assertKeyEqual(t, mustGet(t, s, want.ID), want)
}

// assertErrorIs reports an error unless err wraps target.
func assertErrorIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// assertNotFound checks that neither Get(id) nor GetByHash of each hash
// finds a key.
func assertNotFound(t *testing.T, s store.Store, id uuid.UUID, hashes ...[]byte) {
	t.Helper()
	_, err := s.Get(t.Context(), id)
	assertErrorIs(t, fmt.Sprintf("Get(%s)", id), err, store.ErrNotFound)
	for i, h := range hashes {
		_, err := s.GetByHash(t.Context(), h)
		assertErrorIs(t, fmt.Sprintf("GetByHash(hash #%d)", i), err, store.ErrNotFound)
	}
}

// ids returns the ids of keys, in order.
func ids(keys []*store.Key) []uuid.UUID {
	out := make([]uuid.UUID, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

// sortedIDs returns the ids of keys in ascending order.
func sortedIDs(keys []*store.Key) []uuid.UUID {
	out := ids(keys)
	slices.SortFunc(out, compareIDs)
	return out
}

// compareIDs orders ids by their bytes, the order List must use.
func compareIDs(a, b uuid.UUID) int {
	return bytes.Compare(a[:], b[:])
}

// cancelled returns a context that is already cancelled.
func cancelled(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

package sqlstore_test

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore"
)

// TestPepperUsage counts the keys that need each pepper: live keys by
// their hash's pepper, previous secrets still in their grace by theirs,
// and nothing of revoked or expired keys or of ended graces.
func TestPepperUsage(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, e.open(t), e.dialect)
			ctx := t.Context()
			add := func(name, pepper string, edit func(k *store.Key)) {
				t.Helper()
				k := testKey(name)
				k.ID = uuid.Must(uuid.NewV7())
				k.Hash = randomBytes(32)
				k.PepperID = pepper
				k.PrevHash, k.PrevPepperID, k.PrevExpiresAt = nil, "", time.Time{}
				k.RevokedAt, k.DisabledAt = time.Time{}, time.Time{}
				k.ExpiresAt = now.Add(time.Hour)
				if edit != nil {
					edit(k)
				}
				if err := s.Create(ctx, k); err != nil {
					t.Fatalf("create %s: %v", name, err)
				}
			}
			add("a1", "a", nil)
			add("a2", "a", func(f *store.Key) { f.ExpiresAt = time.Time{} })                 // never expires
			add("a3", "a", func(f *store.Key) { f.DisabledAt = now.Add(-time.Hour) })        // disabled: counts
			add("gone1", "gone", func(f *store.Key) { f.RevokedAt = now.Add(-time.Hour) })   // revoked
			add("gone2", "gone", func(f *store.Key) { f.ExpiresAt = now.Add(-time.Second) }) // expired
			add("b1", "b", func(f *store.Key) {                                              // old secret in grace
				f.PrevHash, f.PrevPepperID, f.PrevExpiresAt = randomBytes(32), "old", now.Add(time.Minute)
			})
			add("b2", "b", func(f *store.Key) { // grace ended
				f.PrevHash, f.PrevPepperID, f.PrevExpiresAt = randomBytes(32), "ended", now.Add(-time.Minute)
			})
			add("b3", "b", func(f *store.Key) { // previous secret under the same pepper: counted once
				f.PrevHash, f.PrevPepperID, f.PrevExpiresAt = randomBytes(32), "b", now.Add(time.Minute)
			})
			got, err := s.PepperUsage(ctx, now)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{"a": 3, "b": 3, "old": 1}
			if !maps.Equal(got, want) {
				t.Errorf("PepperUsage = %v, want %v", got, want)
			}
		})
	}
}

// TestNotMigrated: a store used before Migrate says so (ErrNotMigrated,
// "run Store.Migrate"), on every engine, instead of a bare driver error
// that reads as an outage.
func TestNotMigrated(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			s, err := sqlstore.New(sqlstore.Config{DB: e.open(t), Dialect: e.dialect, TablePrefix: randomPrefix(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()
			k := testKey("unmigrated")
			_, getErr := s.Get(ctx, k.ID)
			_, hashErr := s.GetByHash(ctx, k.Hash)
			_, listErr := s.List(ctx, store.ListOptions{})
			_, usageErr := s.PepperUsage(ctx, time.Now())
			for name, err := range map[string]error{"Create": s.Create(ctx, k), "Get": getErr, "GetByHash": hashErr, "List": listErr, "PepperUsage": usageErr} {
				if !errors.Is(err, sqlstore.ErrNotMigrated) || !strings.Contains(err.Error(), "run Store.Migrate") {
					t.Errorf("%s before Migrate: %v, want ErrNotMigrated", name, err)
				}
			}
		})
	}
}

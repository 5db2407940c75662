package storetest

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

var createTests = []namedTest{
	{"RoundTrip", testCreateRoundTrip},
	{"Duplicate", testCreateDuplicate},
	{"SameNameOtherWorkspace", testCreateSameNameOtherWorkspace},
}

func testCreateRoundTrip(t *testing.T, s store.Store) {
	base := now()
	tests := []struct {
		name string
		key  func() *store.Key
	}{
		{"fully populated", func() *store.Key { return newKey(t, "w1", "full") }},
		{"revoked", func() *store.Key {
			k := newKey(t, "w1", "revoked")
			k.RevokedAt = base.Add(-time.Second)
			return k
		}},
		{"minimal with zero times", func() *store.Key {
			return &store.Key{ID: newID(), Name: "minimal", Hash: randomHash()}
		}},
		{"empty collections", func() *store.Key {
			k := newKey(t, "", "empty")
			k.Scopes, k.Metadata, k.AllowedCIDRs, k.PrevHash = []string{}, map[string]string{}, []netip.Prefix{}, []byte{}
			k.PrevPepperID, k.PrevExpiresAt = "", time.Time{}
			return k
		}},
		{"no uses left", func() *store.Key {
			k := newKey(t, "w2", "zero-uses")
			k.RemainingUses = int64p(0)
			return k
		}},
		{"unlimited uses", func() *store.Key {
			k := newKey(t, "w2", "unlimited")
			k.RemainingUses = nil
			return k
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.key()
			k.Version = 42 // Create ignores the version passed.
			want := k.Clone()
			want.Version = 1
			mustCreate(t, s, k)
			if k.Version != 1 {
				t.Errorf("Create: got k.Version %d, want 1", k.Version)
			}
			assertGetEqual(t, s, want)
			byHash, err := s.GetByHash(t.Context(), want.Hash)
			if err != nil {
				t.Fatalf("GetByHash: got error %v, want nil", err)
			}
			assertKeyEqual(t, byHash, want)
			page, err := s.List(t.Context(), store.ListOptions{Limit: store.MaxListLimit})
			if err != nil {
				t.Fatalf("List: got error %v, want nil", err)
			}
			found := false
			for _, got := range page.Keys {
				if got.ID == want.ID {
					found = true
					assertKeyEqual(t, got, want)
				}
			}
			if !found {
				t.Errorf("List: key %s missing from %v", want.ID, ids(page.Keys))
			}
		})
	}
}

func testCreateDuplicate(t *testing.T, s store.Store) {
	orig := newKey(t, "w1", "taken")
	mustCreate(t, s, orig)
	want := orig.Clone()
	tests := []struct {
		name  string
		dup   func() *store.Key
		check func(t *testing.T, dup *store.Key)
	}{
		{
			name: "same id",
			dup: func() *store.Key {
				k := newKey(t, "w1", "other")
				k.ID = orig.ID
				return k
			},
			check: func(t *testing.T, dup *store.Key) {
				assertGetEqual(t, s, want)
				_, err := s.GetByHash(t.Context(), dup.Hash)
				assertErrorIs(t, "GetByHash(duplicate's hash)", err, store.ErrNotFound)
			},
		},
		{
			name: "same hash",
			dup: func() *store.Key {
				k := newKey(t, "w1", "other")
				k.Hash = append([]byte(nil), orig.Hash...)
				return k
			},
			check: func(t *testing.T, dup *store.Key) {
				assertNotFound(t, s, dup.ID, dup.PrevHash)
				got, err := s.GetByHash(t.Context(), orig.Hash)
				if err != nil {
					t.Fatalf("GetByHash(original hash): got error %v, want nil", err)
				}
				assertKeyEqual(t, got, want)
			},
		},
		{
			name: "same workspace and name",
			dup:  func() *store.Key { return newKey(t, "w1", "taken") },
			check: func(t *testing.T, dup *store.Key) {
				assertNotFound(t, s, dup.ID, dup.Hash, dup.PrevHash)
				assertGetEqual(t, s, want)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dup := tc.dup()
			err := s.Create(t.Context(), dup)
			assertErrorIs(t, "Create", err, store.ErrDuplicate)
			tc.check(t, dup)
		})
	}
	all := listAll(t, s, store.ListOptions{})
	if len(all) != 1 {
		t.Errorf("List after failed creates: got %d keys %v, want 1", len(all), ids(all))
	}
}

func testCreateSameNameOtherWorkspace(t *testing.T, s store.Store) {
	keys := []*store.Key{newKey(t, "w1", "ci"), newKey(t, "w2", "ci"), newKey(t, "", "ci")}
	for _, k := range keys {
		mustCreate(t, s, k)
	}
	for _, k := range keys {
		if got := mustGet(t, s, k.ID); got.Workspace != k.Workspace || got.Name != k.Name {
			t.Errorf("Get(%s): got %q/%q, want %q/%q", k.ID, got.Workspace, got.Name, k.Workspace, k.Name)
		}
	}
}

var getTests = []namedTest{
	{"NotFound", testGetNotFound},
}

func testGetNotFound(t *testing.T, s store.Store) {
	mustCreate(t, s, newKey(t, "w1", "present"))
	for _, id := range []uuid.UUID{newID(), {}} {
		_, err := s.Get(t.Context(), id)
		assertErrorIs(t, fmt.Sprintf("Get(%s)", id), err, store.ErrNotFound)
	}
}

var getByHashTests = []namedTest{
	{"HashAndPrevHash", testGetByHashFinds},
	{"NotFound", testGetByHashNotFound},
	{"PrefersHash", testGetByHashPrefersHash},
	{"SharedPrevHash", testGetByHashSharedPrevHash},
}

// testGetByHashPrefersHash: a key's Hash may equal another key's PrevHash
// (on Create and on Update: only Hash against Hash is a duplicate), and
// GetByHash then returns the key whose Hash it is.
func testGetByHashPrefersHash(t *testing.T, s store.Store) {
	old := newKey(t, "w1", "old")
	mustCreate(t, s, old)
	current := newKey(t, "w1", "current")
	current.Hash = bytes.Clone(old.PrevHash)
	if err := s.Create(t.Context(), current); err != nil {
		t.Fatalf("Create with a Hash equal to another key's PrevHash: got %v, want nil", err)
	}
	got, err := s.GetByHash(t.Context(), current.Hash)
	if err != nil || got.ID != current.ID {
		t.Fatalf("GetByHash(hash that is one key's Hash, another's PrevHash): got %v, %v; want the key whose Hash it is", got, err)
	}
	updated := newKey(t, "w1", "updated")
	mustCreate(t, s, updated)
	updated.Hash = bytes.Clone(current.PrevHash)
	if err := s.Update(t.Context(), updated); err != nil {
		t.Fatalf("Update to a Hash equal to another key's PrevHash: got %v, want nil", err)
	}
	if got, err := s.GetByHash(t.Context(), updated.Hash); err != nil || got.ID != updated.ID {
		t.Errorf("GetByHash after the Update: got %v, %v; want the updated key", got, err)
	}
}

// testGetByHashSharedPrevHash: two keys may share a PrevHash; GetByHash
// returns one of them, and still the other once one is deleted.
func testGetByHashSharedPrevHash(t *testing.T, s store.Store) {
	a, b := newKey(t, "w1", "a"), newKey(t, "w1", "b")
	b.PrevHash = bytes.Clone(a.PrevHash)
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	got, err := s.GetByHash(t.Context(), a.PrevHash)
	if err != nil || (got.ID != a.ID && got.ID != b.ID) {
		t.Fatalf("GetByHash(shared PrevHash): got %v, %v; want a or b", got, err)
	}
	if err := s.Delete(t.Context(), got.ID); err != nil {
		t.Fatal(err)
	}
	left := map[uuid.UUID]uuid.UUID{a.ID: b.ID, b.ID: a.ID}[got.ID]
	if got, err := s.GetByHash(t.Context(), a.PrevHash); err != nil || got.ID != left {
		t.Errorf("GetByHash(shared PrevHash) after deleting one holder: got %v, %v; want the other, %s", got, err, left)
	}
}

func testGetByHashFinds(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "a")
	other := newKey(t, "w1", "b")
	mustCreate(t, s, k)
	mustCreate(t, s, other)
	tests := []struct {
		name string
		hash []byte
		want *store.Key
	}{
		{"Hash", k.Hash, k},
		{"PrevHash", k.PrevHash, k},
		{"other key's Hash", other.Hash, other},
		{"other key's PrevHash", other.PrevHash, other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetByHash(t.Context(), tc.hash)
			if err != nil {
				t.Fatalf("GetByHash: got error %v, want nil", err)
			}
			assertKeyEqual(t, got, tc.want)
		})
	}
}

func testGetByHashNotFound(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	tests := []struct {
		name string
		hash []byte
	}{
		{"unknown hash", randomHash()},
		{"prefix of a hash", k.Hash[:16]},
		{"empty", []byte{}},
		{"nil", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.GetByHash(t.Context(), tc.hash)
			assertErrorIs(t, "GetByHash", err, store.ErrNotFound)
		})
	}
}

var updateTests = []namedTest{
	{"AllFields", testUpdateAllFields},
	{"Version", testUpdateVersion},
	{"Conflict", testUpdateConflict},
	{"NotFound", testUpdateNotFound},
	{"DuplicateName", testUpdateDuplicateName},
	{"Regenerate", testUpdateRegenerate},
	{"KeepsCreatedAndLastUsed", testUpdateKeepsCreatedAndLastUsed},
}

func testUpdateAllFields(t *testing.T, s store.Store) {
	base := now()
	tests := []struct {
		name   string
		change func(k *store.Key)
	}{
		{"every mutable field changed", func(k *store.Key) {
			k.Name = "renamed"
			k.Description = "changed description"
			k.Owner = "owner-2"
			k.Workspace = "w2"
			k.Role = "admin"
			k.Scopes = []string{"keys:admin"}
			k.Metadata = map[string]string{"team": "security", "ticket": "SEC-1"}
			k.PrevHash, k.Hash = k.Hash, randomHash()
			k.PrevPepperID, k.PepperID = k.PepperID, "pepper-3"
			k.PrevExpiresAt = base.Add(2 * time.Hour)
			k.Hint = "kg_Zx9…"
			k.RateLimit = 7
			k.RateWindow = time.Hour
			k.RateLimits = []store.RateLimit{{Name: "searches", Requests: 3, Window: time.Minute, OnDemand: true}}
			k.RemainingUses = int64p(3)
			k.Refill = &store.Refill{Amount: 30, Every: store.PeriodDay}
			k.RefilledAt = base.Add(-time.Hour)
			k.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}
			k.UpdatedAt = base.Add(time.Second)
			k.ExpiresAt = base.Add(48 * time.Hour)
			k.RevokedAt = base.Add(time.Minute)
		}},
		{"optional fields cleared", func(k *store.Key) {
			k.Description, k.Owner, k.Workspace, k.Role, k.Hint = "", "", "", "", ""
			k.Scopes, k.Metadata, k.AllowedCIDRs = nil, nil, nil
			k.PrevHash, k.PrevPepperID, k.PrevExpiresAt = nil, "", time.Time{}
			k.RateLimit, k.RateWindow, k.RateLimits = 0, 0, nil
			k.RemainingUses, k.Refill, k.RefilledAt = nil, nil, time.Time{}
			k.UpdatedAt = base.Add(2 * time.Second)
			k.ExpiresAt, k.RevokedAt = time.Time{}, time.Time{}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := newKey(t, "w1", "orig")
			mustCreate(t, s, orig)
			k := mustGet(t, s, orig.ID)
			tc.change(k)
			want := k.Clone()
			want.Version = 2
			mustUpdate(t, s, k)
			assertGetEqual(t, s, want)
			if len(want.PrevHash) > 0 {
				got, err := s.GetByHash(t.Context(), want.PrevHash)
				if err != nil {
					t.Fatalf("GetByHash(new PrevHash): got error %v, want nil", err)
				}
				assertKeyEqual(t, got, want)
			}
			got, err := s.GetByHash(t.Context(), want.Hash)
			if err != nil {
				t.Fatalf("GetByHash(new Hash): got error %v, want nil", err)
			}
			assertKeyEqual(t, got, want)
		})
	}
}

func testUpdateVersion(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	for want := int64(2); want <= 4; want++ {
		k.Description = fmt.Sprintf("update %d", want)
		mustUpdate(t, s, k)
		if k.Version != want {
			t.Errorf("Update: got k.Version %d, want %d", k.Version, want)
		}
		if got := mustGet(t, s, k.ID); got.Version != want {
			t.Errorf("Get after Update: got Version %d, want %d", got.Version, want)
		}
	}
}

func testUpdateConflict(t *testing.T, s store.Store) {
	orig := newKey(t, "w1", "a")
	mustCreate(t, s, orig)
	first := mustGet(t, s, orig.ID)
	first.Description = "first writer"
	mustUpdate(t, s, first) // stored version is now 2
	want := first.Clone()
	tests := []struct {
		name    string
		version int64
	}{
		{"stale version", 1},
		{"future version", 3},
		{"zero version", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := want.Clone()
			k.Version = tc.version
			k.Description = "lost write"
			k.Name = "lost-name"
			err := s.Update(t.Context(), k)
			assertErrorIs(t, "Update", err, store.ErrConflict)
			if k.Version != tc.version {
				t.Errorf("Update failed: got k.Version %d, want %d unchanged", k.Version, tc.version)
			}
			assertGetEqual(t, s, want)
		})
	}
}

func testUpdateNotFound(t *testing.T, s store.Store) {
	mustCreate(t, s, newKey(t, "w1", "present"))
	k := newKey(t, "w1", "missing")
	k.Version = 1
	err := s.Update(t.Context(), k)
	assertErrorIs(t, "Update(missing key)", err, store.ErrNotFound)
	assertNotFound(t, s, k.ID, k.Hash, k.PrevHash)
}

func testUpdateDuplicateName(t *testing.T, s store.Store) {
	a := newKey(t, "w1", "a")
	b := newKey(t, "w1", "b")
	c := newKey(t, "w2", "b")
	for _, k := range []*store.Key{a, b, c} {
		mustCreate(t, s, k)
	}
	tests := []struct {
		name               string
		workspace, keyName string
	}{
		{"rename onto a taken name", "w1", "a"},
		{"move into a workspace where the name is taken", "w2", "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := b.Clone()
			k.Workspace, k.Name = tc.workspace, tc.keyName
			err := s.Update(t.Context(), k)
			assertErrorIs(t, "Update", err, store.ErrDuplicate)
			assertGetEqual(t, s, b)
			assertGetEqual(t, s, a)
			assertGetEqual(t, s, c)
		})
	}
	t.Run("rename frees the old name", func(t *testing.T) {
		k := b.Clone()
		k.Name = "c"
		mustUpdate(t, s, k)
		mustCreate(t, s, newKey(t, "w1", "b"))
		err := s.Create(t.Context(), newKey(t, "w1", "c"))
		assertErrorIs(t, "Create with the new name", err, store.ErrDuplicate)
		assertGetEqual(t, s, k)
	})
}

func testUpdateRegenerate(t *testing.T, s store.Store) {
	tests := []struct {
		name     string
		keepPrev bool
	}{
		{"old hash kept as PrevHash", true},
		{"old hash dropped", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := newKey(t, "w1", tc.name)
			mustCreate(t, s, orig)
			k := orig.Clone()
			k.Hash = randomHash()
			k.PrevHash = nil
			if tc.keepPrev {
				k.PrevHash = orig.Hash
			}
			mustUpdate(t, s, k)

			got, err := s.GetByHash(t.Context(), k.Hash)
			if err != nil {
				t.Fatalf("GetByHash(new hash): got error %v, want nil", err)
			}
			assertKeyEqual(t, got, k)
			got, err = s.GetByHash(t.Context(), orig.Hash)
			if tc.keepPrev {
				if err != nil {
					t.Fatalf("GetByHash(old hash, now PrevHash): got error %v, want nil", err)
				}
				assertKeyEqual(t, got, k)
			} else {
				assertErrorIs(t, "GetByHash(old hash, dropped)", err, store.ErrNotFound)
			}
			_, err = s.GetByHash(t.Context(), orig.PrevHash)
			assertErrorIs(t, "GetByHash(old PrevHash, replaced)", err, store.ErrNotFound)
		})
	}
}

func testUpdateKeepsCreatedAndLastUsed(t *testing.T, s store.Store) {
	base := now()
	orig := newKey(t, "w1", "a")
	orig.LastUsedAt = time.Time{}
	mustCreate(t, s, orig)
	read := mustGet(t, s, orig.ID) // LastUsedAt zero in this copy
	used := base.Add(time.Minute)
	if err := s.TouchLastUsed(t.Context(), map[uuid.UUID]time.Time{orig.ID: used}); err != nil {
		t.Fatalf("TouchLastUsed: got error %v, want nil", err)
	}

	tests := []struct {
		name                  string
		createdAt, lastUsedAt time.Time
	}{
		{"stale copy with zero LastUsedAt", read.CreatedAt, time.Time{}},
		{"both changed", base.Add(-100 * time.Hour), base.Add(time.Hour)},
		{"both zero", time.Time{}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := mustGet(t, s, orig.ID)
			k.CreatedAt, k.LastUsedAt = tc.createdAt, tc.lastUsedAt
			k.Description = tc.name
			mustUpdate(t, s, k)
			got := mustGet(t, s, orig.ID)
			if !got.CreatedAt.Equal(orig.CreatedAt) {
				t.Errorf("CreatedAt after Update: got %v, want %v", got.CreatedAt, orig.CreatedAt)
			}
			if !got.LastUsedAt.Equal(used) {
				t.Errorf("LastUsedAt after Update: got %v, want %v", got.LastUsedAt, used)
			}
			if got.Description != tc.name {
				t.Errorf("Description after Update: got %q, want %q", got.Description, tc.name)
			}
		})
	}
}

var deleteTests = []namedTest{
	{"RemovesKey", testDeleteRemovesKey},
	{"NotFound", testDeleteNotFound},
}

func testDeleteRemovesKey(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "doomed")
	keep := newKey(t, "w1", "kept")
	mustCreate(t, s, k)
	mustCreate(t, s, keep)
	if err := s.Delete(t.Context(), k.ID); err != nil {
		t.Fatalf("Delete: got error %v, want nil", err)
	}
	assertNotFound(t, s, k.ID, k.Hash, k.PrevHash)
	all := listAll(t, s, store.ListOptions{})
	if len(all) != 1 || all[0].ID != keep.ID {
		t.Errorf("List after Delete: got %v, want [%s]", ids(all), keep.ID)
	}
	assertGetEqual(t, s, keep)

	again := newKey(t, "w1", "doomed")
	if err := s.Create(t.Context(), again); err != nil {
		t.Errorf("Create with a deleted key's name: got error %v, want nil", err)
	}
}

func testDeleteNotFound(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	err := s.Delete(t.Context(), newID())
	assertErrorIs(t, "Delete(unknown id)", err, store.ErrNotFound)
	if err := s.Delete(t.Context(), k.ID); err != nil {
		t.Fatalf("Delete: got error %v, want nil", err)
	}
	err = s.Delete(t.Context(), k.ID)
	assertErrorIs(t, "Delete twice", err, store.ErrNotFound)
}

var touchTests = []namedTest{
	{"Batch", testTouchBatch},
	{"Empty", testTouchEmpty},
}

func testTouchBatch(t *testing.T, s store.Store) {
	base := now()
	never := newKey(t, "w1", "never-used")
	never.LastUsedAt = time.Time{}
	older := newKey(t, "w1", "used-before")
	older.LastUsedAt = base.Add(-time.Hour)
	newer := newKey(t, "w1", "used-recently")
	newer.LastUsedAt = base.Add(time.Hour)
	for _, k := range []*store.Key{never, older, newer} {
		mustCreate(t, s, k)
	}
	unknown := newID()
	used := map[uuid.UUID]time.Time{
		never.ID: base,
		older.ID: base.Add(time.Millisecond),
		newer.ID: base, // earlier than stored: ignored
		unknown:  base,
	}
	if err := s.TouchLastUsed(t.Context(), used); err != nil {
		t.Fatalf("TouchLastUsed: got error %v, want nil", err)
	}
	wants := []struct {
		key  *store.Key
		want time.Time
	}{
		{never, base},
		{older, base.Add(time.Millisecond)},
		{newer, base.Add(time.Hour)},
	}
	for _, w := range wants {
		got := mustGet(t, s, w.key.ID)
		if !got.LastUsedAt.Equal(w.want) {
			t.Errorf("%s LastUsedAt: got %v, want %v", w.key.Name, got.LastUsedAt, w.want)
		}
		if got.Version != 1 {
			t.Errorf("%s Version after TouchLastUsed: got %d, want 1", w.key.Name, got.Version)
		}
	}
	_, err := s.Get(t.Context(), unknown)
	assertErrorIs(t, "Get(touched unknown id)", err, store.ErrNotFound)

	// Forward again, then back: only the forward move sticks.
	later := base.Add(time.Minute)
	for _, at := range []time.Time{later, base.Add(time.Second)} {
		if err := s.TouchLastUsed(t.Context(), map[uuid.UUID]time.Time{never.ID: at}); err != nil {
			t.Fatalf("TouchLastUsed: got error %v, want nil", err)
		}
	}
	if got := mustGet(t, s, never.ID); !got.LastUsedAt.Equal(later) {
		t.Errorf("LastUsedAt after forward and backward touch: got %v, want %v", got.LastUsedAt, later)
	}
}

func testTouchEmpty(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	want := k.Clone()
	for _, used := range []map[uuid.UUID]time.Time{{}, nil} {
		if err := s.TouchLastUsed(t.Context(), used); err != nil {
			t.Errorf("TouchLastUsed(%v): got error %v, want nil", used, err)
		}
	}
	assertGetEqual(t, s, want)
}

var consumeTests = []namedTest{
	{"CountsDown", testConsumeCountsDown},
	{"Unlimited", testConsumeUnlimited},
	{"NoneLeft", testConsumeNoneLeft},
	{"NotFound", testConsumeNotFound},
	{"ZeroWithError", testConsumeZeroWithError},
}

// testConsumeZeroWithError: with any error, ConsumeUse returns 0 uses
// left, never a count a careless caller could act on.
func testConsumeZeroWithError(t *testing.T, s store.Store) {
	none := newKey(t, "w1", "none")
	none.RemainingUses = int64p(0)
	mustCreate(t, s, none)
	for what, call := range map[string]func() (int64, error){
		"no uses left":      func() (int64, error) { return s.ConsumeUse(t.Context(), none.ID) },
		"unknown id":        func() (int64, error) { return s.ConsumeUse(t.Context(), newID()) },
		"cancelled context": func() (int64, error) { return s.ConsumeUse(cancelled(t), none.ID) },
	} {
		if n, err := call(); err == nil || n != 0 {
			t.Errorf("ConsumeUse(%s): got (%d, %v), want (0, an error)", what, n, err)
		}
	}
}

func testConsumeCountsDown(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "a")
	k.RemainingUses = int64p(3)
	mustCreate(t, s, k)
	for _, want := range []int64{2, 1, 0} {
		got, err := s.ConsumeUse(t.Context(), k.ID)
		if err != nil || got != want {
			t.Fatalf("ConsumeUse: got (%d, %v), want (%d, nil)", got, err, want)
		}
	}
	for range 2 {
		_, err := s.ConsumeUse(t.Context(), k.ID)
		assertErrorIs(t, "ConsumeUse with no uses left", err, store.ErrUsageExhausted)
	}
	want := k.Clone()
	want.RemainingUses = int64p(0)
	want.Version = 4
	assertGetEqual(t, s, want)
}

func testConsumeUnlimited(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "a")
	k.RemainingUses = nil
	mustCreate(t, s, k)
	want := k.Clone()
	for range 2 {
		got, err := s.ConsumeUse(t.Context(), k.ID)
		if err != nil || got != -1 {
			t.Errorf("ConsumeUse(unlimited): got (%d, %v), want (-1, nil)", got, err)
		}
	}
	assertGetEqual(t, s, want)
}

func testConsumeNoneLeft(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "a")
	k.RemainingUses = int64p(0)
	mustCreate(t, s, k)
	want := k.Clone()
	_, err := s.ConsumeUse(t.Context(), k.ID)
	assertErrorIs(t, "ConsumeUse(created with 0 uses)", err, store.ErrUsageExhausted)
	assertGetEqual(t, s, want)
}

func testConsumeNotFound(t *testing.T, s store.Store) {
	mustCreate(t, s, newKey(t, "w1", "a"))
	_, err := s.ConsumeUse(t.Context(), newID())
	assertErrorIs(t, "ConsumeUse(unknown id)", err, store.ErrNotFound)
}

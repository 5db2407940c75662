package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// identityTests check the optional store.IdentityStore capability; a store
// without it skips them.
var identityTests = []namedTest{
	{"RoundTrip", testIdentityRoundTrip},
	{"RoundTripEmpty", testIdentityRoundTripEmpty},
	{"Duplicate", testIdentityDuplicate},
	{"GetMissing", testIdentityGetMissing},
	{"List", testIdentityList},
	{"ListPaging", testIdentityListPaging},
	{"ListLimit", testIdentityListLimit},
	{"Update", testIdentityUpdate},
	{"UpdateErrors", testIdentityUpdateErrors},
	{"UpdateBalance", testIdentityUpdateBalance},
	{"Delete", testIdentityDelete},
	{"DeleteInUse", testIdentityDeleteInUse},
	{"KeyRoundTrip", testIdentityKeyRoundTrip},
	{"KeyUnknownIdentity", testIdentityKeyUnknown},
	{"KeyListFilter", testIdentityKeyListFilter},
	{"Copies", testIdentityCopies},
	{"Context", testIdentityContext},
	{"ConcurrentLinkAndDelete", testIdentityConcurrentLinkAndDelete},
	{"ConcurrentUpdate", testIdentityConcurrentUpdate},
}

// identityStore returns s as a store.IdentityStore, or skips the test.
func identityStore(t *testing.T, s store.Store) store.IdentityStore {
	t.Helper()
	is, ok := s.(store.IdentityStore)
	if !ok {
		t.Skip("the store does not implement store.IdentityStore (optional)")
	}
	return is
}

// newIdentity returns a valid identity with every field set, with a fresh
// id, in workspace with the external id ext.
func newIdentity(workspace, ext string) *store.Identity {
	base := now()
	return &store.Identity{
		ID:         newID(),
		ExternalID: ext,
		Workspace:  workspace,
		Metadata:   map[string]string{"plan": "pro", "region": "eu"},
		RateLimits: []store.RateLimit{
			{Name: "requests", Requests: 100, Window: time.Second},
			{Name: "tokens", Requests: 50_000, Window: time.Minute, OnDemand: true},
		},
		Credits: &store.Credits{
			Remaining:  1000,
			Refill:     &store.Refill{Amount: 5000, Every: store.PeriodMonth, Day: 31},
			RefilledAt: base.Add(-24 * time.Hour),
		},
		CreatedAt: base.Add(-time.Hour),
		UpdatedAt: base.Add(-time.Minute),
	}
}

// assertIdentityEqual reports every field in which got differs from want.
// Nil and empty Metadata and RateLimits are equal; times are compared with
// time.Time.Equal.
func assertIdentityEqual(t *testing.T, got, want *store.Identity) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Errorf("identity: got %v, want %v", got, want)
		}
		return
	}
	diff := func(field string, g, w any) {
		t.Helper()
		t.Errorf("identity %s: %s: got %v, want %v", want.ID, field, g, w)
	}
	if got.ID != want.ID {
		diff("ID", got.ID, want.ID)
	}
	if got.ExternalID != want.ExternalID {
		diff("ExternalID", fmt.Sprintf("%q", got.ExternalID), fmt.Sprintf("%q", want.ExternalID))
	}
	if got.Workspace != want.Workspace {
		diff("Workspace", fmt.Sprintf("%q", got.Workspace), fmt.Sprintf("%q", want.Workspace))
	}
	if !maps.Equal(got.Metadata, want.Metadata) {
		diff("Metadata", got.Metadata, want.Metadata)
	}
	if !slices.Equal(got.RateLimits, want.RateLimits) {
		diff("RateLimits", got.RateLimits, want.RateLimits)
	}
	if g, w := creditsString(got.Credits), creditsString(want.Credits); g != w {
		diff("Credits", g, w)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		diff("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		diff("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	}
	if got.Version != want.Version {
		diff("Version", got.Version, want.Version)
	}
}

// creditsString formats credits for comparison and messages, the time in
// UTC.
func creditsString(c *store.Credits) string {
	if c == nil {
		return "none"
	}
	s := fmt.Sprintf("%d left, refilled %s", c.Remaining, c.RefilledAt.UTC().Format(time.RFC3339Nano))
	if c.Refill != nil {
		s += fmt.Sprintf(", refill %+v", *c.Refill)
	}
	return s
}

// mustCreateIdentity creates id in is or ends the test.
func mustCreateIdentity(t *testing.T, is store.IdentityStore, id *store.Identity) {
	t.Helper()
	if err := is.CreateIdentity(t.Context(), id); err != nil {
		t.Fatalf("CreateIdentity(%s %q/%q): got error %v, want nil", id.ID, id.Workspace, id.ExternalID, err)
	}
}

// mustGetIdentity returns identity id from is or ends the test.
func mustGetIdentity(t *testing.T, is store.IdentityStore, id uuid.UUID) *store.Identity {
	t.Helper()
	got, err := is.GetIdentity(t.Context(), id)
	if err != nil || got == nil {
		t.Fatalf("GetIdentity(%s): got %v, %v; want the identity", id, got, err)
	}
	return got
}

func testIdentityRoundTrip(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	want := newIdentity("w1", "customer-1")
	mustCreateIdentity(t, is, want)
	if want.Version != 1 {
		t.Errorf("CreateIdentity set Version %d, want 1", want.Version)
	}
	assertIdentityEqual(t, mustGetIdentity(t, is, want.ID), want)
	// A daily refill, and the other forms of the fields.
	daily := newIdentity("", "customer with spaces and ünïcode")
	daily.Credits = &store.Credits{Remaining: 0, Refill: &store.Refill{Amount: 1, Every: store.PeriodDay}, RefilledAt: now()}
	daily.RateLimits = []store.RateLimit{{Name: "default", Requests: 1_000_000_000, Window: 366 * 24 * time.Hour}}
	mustCreateIdentity(t, is, daily)
	assertIdentityEqual(t, mustGetIdentity(t, is, daily.ID), daily)
	// Credits without a refill.
	once := newIdentity("w1", "customer-2")
	once.Credits = &store.Credits{Remaining: 1 << 50, RefilledAt: now()}
	mustCreateIdentity(t, is, once)
	assertIdentityEqual(t, mustGetIdentity(t, is, once.ID), once)
}

func testIdentityRoundTripEmpty(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	want := &store.Identity{ID: newID(), ExternalID: "bare", CreatedAt: now(), UpdatedAt: now()}
	mustCreateIdentity(t, is, want)
	got := mustGetIdentity(t, is, want.ID)
	assertIdentityEqual(t, got, want)
	if got.Credits != nil {
		t.Errorf("an identity stored without credits came back with %s", creditsString(got.Credits))
	}
}

func testIdentityDuplicate(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	a := newIdentity("w1", "acme")
	mustCreateIdentity(t, is, a)
	sameID := newIdentity("w1", "other")
	sameID.ID = a.ID
	sameExt := newIdentity("w1", "acme")
	for name, id := range map[string]*store.Identity{"same id": sameID, "same external id in the workspace": sameExt} {
		err := is.CreateIdentity(t.Context(), id)
		assertErrorIs(t, "CreateIdentity("+name+")", err, store.ErrDuplicate)
		if id.Version != 0 {
			t.Errorf("CreateIdentity(%s) failed but set Version %d", name, id.Version)
		}
	}
	if _, err := is.GetIdentity(t.Context(), sameExt.ID); err == nil {
		t.Error("a refused identity was stored")
	}
	// The same external id in another workspace, or none, is another
	// identity.
	mustCreateIdentity(t, is, newIdentity("w2", "acme"))
	mustCreateIdentity(t, is, newIdentity("", "acme"))
	// External ids differing only in case or trailing space are distinct
	// (they are the application's own ids).
	mustCreateIdentity(t, is, newIdentity("w1", "ACME"))
}

func testIdentityGetMissing(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	_, err := is.GetIdentity(t.Context(), newID())
	assertErrorIs(t, "GetIdentity(missing)", err, store.ErrNotFound)
	_, err = is.GetIdentity(t.Context(), uuid.Nil)
	assertErrorIs(t, "GetIdentity(zero UUID)", err, store.ErrNotFound)
}

func testIdentityList(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	var all []*store.Identity
	for i := range 12 {
		id := newIdentity([]string{"w1", "w2", ""}[i%3], fmt.Sprintf("c%d", i%4))
		mustCreateIdentity(t, is, id)
		all = append(all, id)
	}
	for _, tc := range []struct {
		name string
		opts store.IdentityListOptions
	}{
		{"no filter", store.IdentityListOptions{}},
		{"workspace", store.IdentityListOptions{Workspace: "w1"}},
		{"external id", store.IdentityListOptions{ExternalID: "c1"}},
		{"both", store.IdentityListOptions{Workspace: "w2", ExternalID: "c1"}},
		{"none match", store.IdentityListOptions{Workspace: "w3"}},
	} {
		page, err := is.ListIdentities(t.Context(), tc.opts)
		if err != nil {
			t.Fatalf("ListIdentities(%s): %v", tc.name, err)
		}
		var want []uuid.UUID
		for _, id := range all {
			if tc.opts.Matches(id) {
				want = append(want, id.ID)
			}
		}
		slices.SortFunc(want, compareIDs)
		var got []uuid.UUID
		for _, id := range page.Identities {
			got = append(got, id.ID)
		}
		if !slices.Equal(got, want) || page.Next != uuid.Nil {
			t.Errorf("ListIdentities(%s): got %v (Next %s), want %v in id order and no Next", tc.name, got, page.Next, want)
		}
	}
	page, err := is.ListIdentities(t.Context(), store.IdentityListOptions{ExternalID: "c0", Workspace: "w1"})
	if err != nil || len(page.Identities) != 1 {
		t.Fatalf("ListIdentities(w1, c0): %v, %v; want one", page, err)
	}
	for _, id := range all {
		if id.ID == page.Identities[0].ID {
			assertIdentityEqual(t, page.Identities[0], id)
		}
	}
}

func testIdentityListPaging(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	var want []uuid.UUID
	for i := range 11 {
		id := newIdentity("w1", fmt.Sprintf("c%02d", i))
		mustCreateIdentity(t, is, id)
		want = append(want, id.ID)
	}
	mustCreateIdentity(t, is, newIdentity("w2", "elsewhere"))
	slices.SortFunc(want, compareIDs)
	var got []uuid.UUID
	opts := store.IdentityListOptions{Workspace: "w1", Limit: 4}
	for pages := 1; ; pages++ {
		page, err := is.ListIdentities(t.Context(), opts)
		if err != nil {
			t.Fatalf("ListIdentities page %d: %v", pages, err)
		}
		for _, id := range page.Identities {
			got = append(got, id.ID)
		}
		if page.Next == uuid.Nil {
			if pages != 3 {
				t.Errorf("paging took %d pages, want 3", pages)
			}
			break
		}
		if last := page.Identities[len(page.Identities)-1].ID; page.Next != last {
			t.Errorf("page %d: Next %s, want its last id %s", pages, page.Next, last)
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		opts.After = page.Next
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged %v, want %v", got, want)
	}
	// A full last page has no Next.
	page, err := is.ListIdentities(t.Context(), store.IdentityListOptions{Workspace: "w1", Limit: 11})
	if err != nil || len(page.Identities) != 11 || page.Next != uuid.Nil {
		t.Errorf("ListIdentities(limit 11 of 11): %d identities, Next %s, %v; want 11 and no Next", len(page.Identities), page.Next, err)
	}
}

func testIdentityListLimit(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	n := store.MaxListLimit + 1
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < n; i += 4 {
				id := &store.Identity{ID: newID(), ExternalID: fmt.Sprintf("c%d", i), CreatedAt: now(), UpdatedAt: now()}
				if err := is.CreateIdentity(t.Context(), id); err != nil {
					t.Errorf("CreateIdentity: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, tc := range []struct {
		limit, want int
	}{{0, store.DefaultListLimit}, {-1, store.DefaultListLimit}, {n + 5, store.MaxListLimit}} {
		page, err := is.ListIdentities(t.Context(), store.IdentityListOptions{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Identities) != tc.want || page.Next == uuid.Nil {
			t.Errorf("ListIdentities(Limit %d): %d identities, Next %s; want %d and a Next", tc.limit, len(page.Identities), page.Next, tc.want)
		}
	}
}

func testIdentityUpdate(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	id := newIdentity("w1", "acme")
	mustCreateIdentity(t, is, id)
	created := id.CreatedAt
	id.ExternalID = "acme-2"
	id.Metadata = map[string]string{"plan": "enterprise"}
	id.RateLimits = []store.RateLimit{{Name: "requests", Requests: 10, Window: time.Minute}}
	id.Credits = &store.Credits{Remaining: 7, Refill: &store.Refill{Amount: 10, Every: store.PeriodDay}, RefilledAt: now()}
	id.UpdatedAt = now()
	// Neither is written: the creation time and the workspace stay.
	id.CreatedAt = created.Add(-time.Hour)
	id.Workspace = "w2"
	if err := is.UpdateIdentity(t.Context(), id, true); err != nil {
		t.Fatalf("UpdateIdentity: %v", err)
	}
	if id.Version != 2 {
		t.Errorf("UpdateIdentity set Version %d, want 2", id.Version)
	}
	want := id.Clone()
	want.CreatedAt, want.Workspace = created, "w1"
	assertIdentityEqual(t, mustGetIdentity(t, is, id.ID), want)
	// The old external id is free again, the new one taken.
	mustCreateIdentity(t, is, newIdentity("w1", "acme"))
	err := is.CreateIdentity(t.Context(), newIdentity("w1", "acme-2"))
	assertErrorIs(t, "CreateIdentity(an external id taken by an update)", err, store.ErrDuplicate)
	// Removing every limit.
	want.RateLimits, want.Credits, want.Metadata = nil, nil, nil
	if err := is.UpdateIdentity(t.Context(), want, false); err != nil {
		t.Fatalf("UpdateIdentity(no limits): %v", err)
	}
	assertIdentityEqual(t, mustGetIdentity(t, is, id.ID), want)
}

func testIdentityUpdateErrors(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	a, b := newIdentity("w1", "a"), newIdentity("w1", "b")
	mustCreateIdentity(t, is, a)
	mustCreateIdentity(t, is, b)

	stale := a.Clone()
	stale.Version = 7
	stale.ExternalID = "changed"
	err := is.UpdateIdentity(t.Context(), stale, true)
	assertErrorIs(t, "UpdateIdentity(stale version)", err, store.ErrConflict)
	if stale.Version != 7 {
		t.Errorf("a failed UpdateIdentity changed Version to %d", stale.Version)
	}

	missing := newIdentity("w1", "missing")
	missing.Version = 1
	err = is.UpdateIdentity(t.Context(), missing, true)
	assertErrorIs(t, "UpdateIdentity(missing)", err, store.ErrNotFound)

	dup := a.Clone()
	dup.ExternalID = "b"
	err = is.UpdateIdentity(t.Context(), dup, true)
	assertErrorIs(t, "UpdateIdentity(external id of another)", err, store.ErrDuplicate)
	if dup.Version != 1 {
		t.Errorf("a failed UpdateIdentity changed Version to %d", dup.Version)
	}
	assertIdentityEqual(t, mustGetIdentity(t, is, a.ID), a)
}

func testIdentityUpdateBalance(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	id := newIdentity("w1", "acme")
	mustCreateIdentity(t, is, id)
	stored := id.Clone()

	// Without balance, the stored balance stays; the refill is replaced.
	id.Credits = &store.Credits{Remaining: 999_999, Refill: &store.Refill{Amount: 20, Every: store.PeriodDay}, RefilledAt: now().Add(time.Hour)}
	if err := is.UpdateIdentity(t.Context(), id, false); err != nil {
		t.Fatal(err)
	}
	got := mustGetIdentity(t, is, id.ID)
	want := &store.Credits{Remaining: stored.Credits.Remaining, Refill: id.Credits.Refill, RefilledAt: stored.Credits.RefilledAt}
	if creditsString(got.Credits) != creditsString(want) {
		t.Errorf("UpdateIdentity(balance false): credits %s, want %s", creditsString(got.Credits), creditsString(want))
	}
	// A refill removed, still without balance.
	got.Credits.Refill = nil
	got.Credits.Remaining = 5
	if err := is.UpdateIdentity(t.Context(), got, false); err != nil {
		t.Fatal(err)
	}
	if c := mustGetIdentity(t, is, id.ID).Credits; c == nil || c.Refill != nil || c.Remaining != stored.Credits.Remaining {
		t.Errorf("UpdateIdentity(no refill, balance false): credits %s, want %d left and no refill", creditsString(c), stored.Credits.Remaining)
	}

	// With balance, the balance is written.
	got = mustGetIdentity(t, is, id.ID)
	at := now()
	got.Credits = &store.Credits{Remaining: 42, RefilledAt: at}
	if err := is.UpdateIdentity(t.Context(), got, true); err != nil {
		t.Fatal(err)
	}
	if c := mustGetIdentity(t, is, id.ID).Credits; creditsString(c) != creditsString(got.Credits) {
		t.Errorf("UpdateIdentity(balance true): credits %s, want %s", creditsString(c), creditsString(got.Credits))
	}

	// Credits removed, then given again without balance: the stored
	// identity has none, so id's are written.
	got.Credits = nil
	if err := is.UpdateIdentity(t.Context(), got, false); err != nil {
		t.Fatal(err)
	}
	if c := mustGetIdentity(t, is, id.ID).Credits; c != nil {
		t.Errorf("UpdateIdentity(nil credits): credits %s, want none", creditsString(c))
	}
	got.Credits = &store.Credits{Remaining: 3, Refill: &store.Refill{Amount: 3, Every: store.PeriodMonth, Day: 1}, RefilledAt: at}
	if err := is.UpdateIdentity(t.Context(), got, false); err != nil {
		t.Fatal(err)
	}
	if c := mustGetIdentity(t, is, id.ID).Credits; creditsString(c) != creditsString(got.Credits) {
		t.Errorf("UpdateIdentity(credits where there were none, balance false): credits %s, want %s", creditsString(c), creditsString(got.Credits))
	}
}

func testIdentityDelete(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	id := newIdentity("w1", "acme")
	mustCreateIdentity(t, is, id)
	if err := is.DeleteIdentity(t.Context(), id.ID); err != nil {
		t.Fatalf("DeleteIdentity: %v", err)
	}
	_, err := is.GetIdentity(t.Context(), id.ID)
	assertErrorIs(t, "GetIdentity(deleted)", err, store.ErrNotFound)
	err = is.DeleteIdentity(t.Context(), id.ID)
	assertErrorIs(t, "DeleteIdentity(deleted)", err, store.ErrNotFound)
	// Its external id is free again.
	mustCreateIdentity(t, is, newIdentity("w1", "acme"))
}

func testIdentityDeleteInUse(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	id := newIdentity("w1", "acme")
	mustCreateIdentity(t, is, id)
	a, b := newKey(t, "w1", "a"), newKey(t, "w1", "b")
	a.IdentityID, b.IdentityID = id.ID, id.ID
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	err := is.DeleteIdentity(t.Context(), id.ID)
	assertErrorIs(t, "DeleteIdentity(named by two keys)", err, store.ErrIdentityInUse)
	mustGetIdentity(t, is, id.ID)

	// A revoked key still names it.
	if rv, ok := s.(store.Revoker); ok {
		if _, err := rv.Revoke(t.Context(), a.ID, now()); err != nil {
			t.Fatal(err)
		}
		a = mustGet(t, s, a.ID)
		err = is.DeleteIdentity(t.Context(), id.ID)
		assertErrorIs(t, "DeleteIdentity(named by a revoked key)", err, store.ErrIdentityInUse)
	}
	// One key unlinked, the other deleted: it may go.
	a.IdentityID = uuid.Nil
	mustUpdate(t, s, a)
	err = is.DeleteIdentity(t.Context(), id.ID)
	assertErrorIs(t, "DeleteIdentity(named by one key)", err, store.ErrIdentityInUse)
	if err := s.Delete(t.Context(), b.ID); err != nil {
		t.Fatal(err)
	}
	if err := is.DeleteIdentity(t.Context(), id.ID); err != nil {
		t.Fatalf("DeleteIdentity(named by no key): %v", err)
	}
}

func testIdentityKeyRoundTrip(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	id, other := newIdentity("w1", "acme"), newIdentity("w1", "globex")
	mustCreateIdentity(t, is, id)
	mustCreateIdentity(t, is, other)
	k := newKey(t, "w1", "linked")
	k.IdentityID = id.ID
	mustCreate(t, s, k)
	assertGetEqual(t, s, k)
	byHash, err := s.GetByHash(t.Context(), k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	assertKeyEqual(t, byHash, k)
	// Moved to another identity, then to none.
	for _, to := range []uuid.UUID{other.ID, uuid.Nil} {
		k.IdentityID = to
		mustUpdate(t, s, k)
		got := mustGet(t, s, k.ID)
		if got.IdentityID != to {
			t.Errorf("after Update to identity %s: got %s", to, got.IdentityID)
		}
		assertKeyEqual(t, got, k)
	}
	// A key created without one has none.
	plain := newKey(t, "w1", "plain")
	mustCreate(t, s, plain)
	if got := mustGet(t, s, plain.ID); got.IdentityID != uuid.Nil {
		t.Errorf("a key created without identity has identity %s", got.IdentityID)
	}
}

func testIdentityKeyUnknown(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	k := newKey(t, "w1", "orphan")
	k.IdentityID = newID()
	err := s.Create(t.Context(), k)
	assertErrorIs(t, "Create(a key of an unknown identity)", err, store.ErrUnknownIdentity)
	if k.Version != 0 {
		t.Errorf("a refused Create set Version %d", k.Version)
	}
	assertNotFound(t, s, k.ID, k.Hash)

	id := newIdentity("w1", "acme")
	mustCreateIdentity(t, is, id)
	k.IdentityID = id.ID
	mustCreate(t, s, k)
	before := mustGet(t, s, k.ID)
	k.IdentityID = newID()
	k.Description = "changed"
	err = s.Update(t.Context(), k)
	assertErrorIs(t, "Update(to an unknown identity)", err, store.ErrUnknownIdentity)
	if k.Version != before.Version {
		t.Errorf("a refused Update changed Version to %d", k.Version)
	}
	assertGetEqual(t, s, before)
}

func testIdentityKeyListFilter(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	a, b := newIdentity("w1", "a"), newIdentity("w2", "b")
	mustCreateIdentity(t, is, a)
	mustCreateIdentity(t, is, b)
	var ofA []uuid.UUID
	for i := range 9 {
		k := newKey(t, []string{"w1", "w2"}[i%2], fmt.Sprintf("k%d", i))
		switch i % 3 {
		case 0:
			k.IdentityID = a.ID
			k.Workspace = "w1"
			ofA = append(ofA, k.ID)
		case 1:
			k.IdentityID = b.ID
			k.Workspace = "w2"
		}
		mustCreate(t, s, k)
	}
	slices.SortFunc(ofA, compareIDs)
	page, err := s.List(t.Context(), store.ListOptions{IdentityID: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(page.Keys); !slices.Equal(got, ofA) {
		t.Errorf("List(IdentityID a): got %v, want %v", got, ofA)
	}
	page, err = s.List(t.Context(), store.ListOptions{IdentityID: a.ID, Workspace: "w2"})
	if err != nil || len(page.Keys) != 0 {
		t.Errorf("List(IdentityID a, workspace w2): %d keys, %v; want none", len(page.Keys), err)
	}
	page, err = s.List(t.Context(), store.ListOptions{IdentityID: newID()})
	if err != nil || len(page.Keys) != 0 {
		t.Errorf("List(unknown IdentityID): %d keys, %v; want none", len(page.Keys), err)
	}
	page, err = s.List(t.Context(), store.ListOptions{IdentityID: a.ID, Limit: 2})
	if err != nil || len(page.Keys) != 2 || page.Next != ofA[1] {
		t.Errorf("List(IdentityID a, limit 2): %d keys, Next %s, %v; want 2 and Next %s", len(page.Keys), page.Next, err, ofA[1])
	}
}

func testIdentityCopies(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	id := newIdentity("w1", "acme")
	want := id.Clone()
	mustCreateIdentity(t, is, id)
	want.Version = 1
	// Changing what was handed in, or what came out, changes nothing
	// stored.
	id.Metadata["plan"] = "changed"
	id.RateLimits[0].Requests = 1
	id.Credits.Remaining = 1
	id.Credits.Refill.Amount = 1
	got := mustGetIdentity(t, is, want.ID)
	got.Metadata["plan"] = "changed too"
	got.RateLimits[0].Name = "changed"
	got.Credits.Refill.Every = store.PeriodDay
	page, err := is.ListIdentities(t.Context(), store.IdentityListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	page.Identities[0].Metadata["plan"] = "changed again"
	page.Identities[0].Credits.Remaining = 2
	assertIdentityEqual(t, mustGetIdentity(t, is, want.ID), want)
}

func testIdentityContext(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	id := newIdentity("w1", "acme")
	mustCreateIdentity(t, is, id)
	ctx := cancelled(t)
	fresh := newIdentity("w1", "fresh")
	assertErrorIs(t, "CreateIdentity", is.CreateIdentity(ctx, fresh), context.Canceled)
	_, err := is.GetIdentity(ctx, id.ID)
	assertErrorIs(t, "GetIdentity", err, context.Canceled)
	_, err = is.ListIdentities(ctx, store.IdentityListOptions{})
	assertErrorIs(t, "ListIdentities", err, context.Canceled)
	changed := id.Clone()
	changed.ExternalID = "changed"
	assertErrorIs(t, "UpdateIdentity", is.UpdateIdentity(ctx, changed, true), context.Canceled)
	assertErrorIs(t, "DeleteIdentity", is.DeleteIdentity(ctx, id.ID), context.Canceled)
	assertIdentityEqual(t, mustGetIdentity(t, is, id.ID), id)
	if _, err := is.GetIdentity(t.Context(), fresh.ID); err == nil {
		t.Error("CreateIdentity with a cancelled context stored the identity")
	}
}

// testIdentityConcurrentLinkAndDelete races keys linking to an identity
// against its deletion: whichever wins, no key may name an identity that
// is gone.
func testIdentityConcurrentLinkAndDelete(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	for round := range 6 {
		id := newIdentity("w1", fmt.Sprintf("acme-%d", round))
		mustCreateIdentity(t, is, id)
		// Half the keys exist already and are moved to the identity; the
		// others are created with it.
		var existing []*store.Key
		for i := range goroutines / 2 {
			k := newKey(t, "w1", fmt.Sprintf("r%d-existing-%d", round, i))
			mustCreate(t, s, k)
			existing = append(existing, k)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var deleted bool
		wg.Go(func() {
			<-start
			err := is.DeleteIdentity(t.Context(), id.ID)
			deleted = err == nil
			if err != nil && !errors.Is(err, store.ErrIdentityInUse) {
				t.Errorf("DeleteIdentity: %v", err)
			}
		})
		for i := range goroutines {
			wg.Go(func() {
				<-start
				var err error
				if i < len(existing) {
					k := existing[i]
					k.IdentityID = id.ID
					err = s.Update(t.Context(), k)
				} else {
					k := newKey(t, "w1", fmt.Sprintf("r%d-new-%d", round, i))
					k.IdentityID = id.ID
					err = s.Create(t.Context(), k)
				}
				if err != nil && !errors.Is(err, store.ErrUnknownIdentity) {
					t.Errorf("linking a key: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		page, err := s.List(t.Context(), store.ListOptions{IdentityID: id.ID, Limit: store.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		_, getErr := is.GetIdentity(t.Context(), id.ID)
		switch {
		case deleted && len(page.Keys) > 0:
			t.Fatalf("round %d: the identity was deleted, yet %d keys name it", round, len(page.Keys))
		case deleted && !errors.Is(getErr, store.ErrNotFound):
			t.Fatalf("round %d: DeleteIdentity succeeded, yet GetIdentity answers %v", round, getErr)
		case !deleted && (getErr != nil || len(page.Keys) == 0):
			t.Fatalf("round %d: DeleteIdentity was refused, yet the identity is %v with %d keys", round, getErr, len(page.Keys))
		}
	}
}

// testIdentityConcurrentUpdate checks that concurrent updates guarded by
// the version lose no write.
func testIdentityConcurrentUpdate(t *testing.T, s store.Store) {
	is := identityStore(t, s)
	id := newIdentity("w1", "acme")
	id.Metadata = map[string]string{}
	mustCreateIdentity(t, is, id)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perRoutine {
				for attempt := 0; ; attempt++ {
					cur, err := is.GetIdentity(t.Context(), id.ID)
					if err != nil {
						t.Error(err)
						return
					}
					cur.Metadata[fmt.Sprintf("g%d-%d", g, i)] = "x"
					err = is.UpdateIdentity(t.Context(), cur, false)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrConflict) || attempt > 200 {
						t.Errorf("UpdateIdentity: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	got := mustGetIdentity(t, is, id.ID)
	if len(got.Metadata) != goroutines*perRoutine || got.Version != int64(1+goroutines*perRoutine) {
		t.Errorf("after %d updates: %d metadata entries, version %d; want %d and %d",
			goroutines*perRoutine, len(got.Metadata), got.Version, goroutines*perRoutine, 1+goroutines*perRoutine)
	}
}

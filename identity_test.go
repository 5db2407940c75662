package keygate

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// The countingStore of the fixture passes the memory store's
// store.IdentityStore on, failing with the others while fail is set.

func (s *countingStore) identities() store.IdentityStore {
	return s.Store.(store.IdentityStore)
}

func (s *countingStore) CreateIdentity(ctx context.Context, id *store.Identity) error {
	if s.fail.Load() {
		return errStoreDown
	}
	return s.identities().CreateIdentity(ctx, id)
}

func (s *countingStore) GetIdentity(ctx context.Context, id uuid.UUID) (*store.Identity, error) {
	if s.fail.Load() {
		return nil, errStoreDown
	}
	return s.identities().GetIdentity(ctx, id)
}

func (s *countingStore) ListIdentities(ctx context.Context, opts store.IdentityListOptions) (*store.IdentityPage, error) {
	if s.fail.Load() {
		return nil, errStoreDown
	}
	return s.identities().ListIdentities(ctx, opts)
}

func (s *countingStore) UpdateIdentity(ctx context.Context, id *store.Identity, balance bool) error {
	if s.fail.Load() {
		return errStoreDown
	}
	return s.identities().UpdateIdentity(ctx, id, balance)
}

func (s *countingStore) DeleteIdentity(ctx context.Context, id uuid.UUID) error {
	if s.fail.Load() {
		return errStoreDown
	}
	return s.identities().DeleteIdentity(ctx, id)
}

// identity creates an identity as the system, or ends the test.
func (f *fixture) identity(t testing.TB, req CreateIdentityRequest) *store.Identity {
	t.Helper()
	if req.ExternalID == "" {
		req.ExternalID = "customer-" + uuid.NewString()
	}
	id, err := f.m.CreateIdentity(context.Background(), System(), req)
	if err != nil {
		t.Fatalf("CreateIdentity(%q): %v", req.ExternalID, err)
	}
	return id
}

// principal returns the principal of a new key made from req, as verified.
func (f *fixture) principal(t testing.TB, req CreateRequest) Principal {
	t.Helper()
	if req.Expiry == (Expiry{}) {
		req.Expiry = NeverExpire()
	}
	k, err := f.m.Verify(context.Background(), f.create(t, req).Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	return k.Principal()
}

func int64p(n int64) *int64 { return &n }

// refusal returns the DeniedError err is, or fails the test.
func refusal(t *testing.T, what string, err error) *DeniedError {
	t.Helper()
	var d *DeniedError
	if !errors.As(err, &d) || !errors.Is(err, ErrForbidden) {
		t.Fatalf("%s: %v, want a DeniedError", what, err)
	}
	return d
}

func TestIdentityLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	start := f.clock.Now()
	limits := IdentityLimits{
		RateLimits: []RateLimit{
			{Name: "requests", Requests: 100, Window: time.Second},
			{Name: "tokens", Requests: 10_000, Window: time.Minute, OnDemand: true},
		},
		Credits: &Credits{Remaining: 500, Refill: &Refill{Amount: 1000, Every: store.PeriodMonth, Day: 31}},
	}
	id, err := f.m.CreateIdentity(ctx, System(), CreateIdentityRequest{ExternalID: "acme", Workspace: "tiger",
		Metadata: map[string]string{"plan": "pro"}, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	if id.Version != 1 || id.ExternalID != "acme" || id.Workspace != "tiger" || id.Metadata["plan"] != "pro" ||
		!slices.Equal(id.RateLimits, limits.RateLimits) || id.Credits == nil || id.Credits.Remaining != 500 ||
		*id.Credits.Refill != *limits.Credits.Refill || !id.Credits.RefilledAt.Equal(start) || !id.CreatedAt.Equal(start) {
		t.Fatalf("created %+v, want the request's fields, version 1, refilled and created now", id)
	}
	if e := f.audit.last(); e.Type != EventIdentityCreated || e.IdentityID != id.ID || e.Workspace != "tiger" || e.Actor != "system" {
		t.Errorf("audit: %+v, want identity.created of %s", e, id.ID)
	}
	got, err := f.m.GetIdentity(ctx, System(), id.ID)
	if err != nil || got.ExternalID != "acme" || got.Version != 1 {
		t.Fatalf("GetIdentity: %+v, %v", got, err)
	}

	// The same external id in the workspace is a duplicate; in another
	// workspace it is another identity.
	_, err = f.m.CreateIdentity(ctx, System(), CreateIdentityRequest{ExternalID: "acme", Workspace: "tiger"})
	if !errors.Is(err, ErrDuplicateExternalID) || !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("a second acme in tiger: %v, want ErrDuplicateExternalID", err)
	}
	other := f.identity(t, CreateIdentityRequest{ExternalID: "acme", Workspace: "lion"})

	// Lists, by workspace and external id.
	page, err := f.m.ListIdentities(ctx, System(), IdentityListRequest{ExternalID: "acme"})
	if err != nil || len(page.Identities) != 2 {
		t.Fatalf("ListIdentities(acme): %v, %v; want both", page, err)
	}
	page, err = f.m.ListIdentities(ctx, System(), IdentityListRequest{Workspace: "lion"})
	if err != nil || len(page.Identities) != 1 || page.Identities[0].ID != other.ID {
		t.Fatalf("ListIdentities(lion): %v, %v; want the lion one", page, err)
	}

	// An update changes what it names; the balance stays as drawn when
	// not set.
	f.clock.Advance(time.Hour)
	ext, md := "acme-corp", map[string]string{"plan": "enterprise"}
	rls := []RateLimit{{Name: "requests", Requests: 50, Window: time.Second}}
	up, err := f.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{ExternalID: &ext, Metadata: &md, RateLimits: &rls,
		Credits: &CreditsUpdate{Refill: &Refill{Amount: 50, Every: store.PeriodDay}}})
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != 2 || up.ExternalID != ext || up.Metadata["plan"] != "enterprise" || !slices.Equal(up.RateLimits, rls) ||
		up.Credits.Remaining != 500 || !up.Credits.RefilledAt.Equal(start) || up.Credits.Refill.Every != store.PeriodDay || !up.UpdatedAt.After(start) {
		t.Errorf("updated %+v (credits %+v)", up, up.Credits)
	}
	if e := f.audit.last(); e.Type != EventIdentityUpdated || e.IdentityID != id.ID {
		t.Errorf("audit: %+v, want identity.updated", e)
	}
	// Setting the balance counts its period from now.
	up, err = f.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{Credits: &CreditsUpdate{Remaining: int64p(7)}})
	if err != nil || up.Credits.Remaining != 7 || !up.Credits.RefilledAt.Equal(f.clock.Now()) || up.Credits.Refill == nil {
		t.Fatalf("setting the balance: %+v, %v", up, err)
	}
	// The zero Refill removes the refill; a negative balance the credits.
	up, err = f.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{Credits: &CreditsUpdate{Refill: &Refill{}}})
	if err != nil || up.Credits == nil || up.Credits.Refill != nil || up.Credits.Remaining != 7 {
		t.Fatalf("removing the refill: %+v, %v", up, err)
	}
	up, err = f.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{Credits: &CreditsUpdate{Remaining: int64p(-1)}})
	if err != nil || up.Credits != nil {
		t.Fatalf("removing the credits: %+v, %v", up, err)
	}
	// A stale version conflicts; an empty update writes nothing.
	_, err = f.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{Version: 2, ExternalID: &ext})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("stale version: %v, want ErrConflict", err)
	}
	events := len(f.audit.types())
	same, err := f.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{})
	if err != nil || same.Version != up.Version || len(f.audit.types()) != events {
		t.Errorf("empty update: %+v, %v; %d events, was %d; want nothing written", same, err, len(f.audit.types()), events)
	}

	// Deleting: gone, and audited.
	if err := f.m.DeleteIdentity(ctx, System(), id.ID); err != nil {
		t.Fatal(err)
	}
	if e := f.audit.last(); e.Type != EventIdentityDeleted || e.IdentityID != id.ID {
		t.Errorf("audit: %+v, want identity.deleted", e)
	}
	for name, err := range map[string]error{
		"get":    second(f.m.GetIdentity(ctx, System(), id.ID)),
		"update": second(f.m.UpdateIdentity(ctx, System(), id.ID, UpdateIdentityRequest{ExternalID: &ext})),
		"delete": f.m.DeleteIdentity(ctx, System(), id.ID),
	} {
		if !errors.Is(err, ErrIdentityNotFound) || !errors.Is(err, ErrNotFound) {
			t.Errorf("%s a deleted identity: %v, want ErrIdentityNotFound and ErrNotFound", name, err)
		}
	}

	// The store down: ErrUnavailable, nothing passes.
	f.store.fail.Store(true)
	_, err = f.m.CreateIdentity(ctx, System(), CreateIdentityRequest{ExternalID: "down"})
	f.store.fail.Store(false)
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "down") && !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("store down: %v, want ErrUnavailable", err)
	}
}

// second returns the error of a call returning a value and an error.
func second[T any](_ T, err error) error { return err }

func TestIdentityValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rl := func(name string, n int, w time.Duration) RateLimit {
		return RateLimit{Name: name, Requests: n, Window: w}
	}
	many := make([]RateLimit, MaxRateLimits+1)
	for i := range many {
		many[i] = rl("r"+strings.Repeat("x", i), 1, time.Second)
	}
	for name, req := range map[string]CreateIdentityRequest{
		"no external id":               {},
		"external id too long":         {ExternalID: strings.Repeat("x", MaxIdentLength+1)},
		"external id with a space":     {ExternalID: "acme "},
		"external id with control":     {ExternalID: "ac\x00me"},
		"bad workspace":                {ExternalID: "a", Workspace: " tiger"},
		"too much metadata":            {ExternalID: "a", Metadata: bigMap(MaxMetadataEntries + 1)},
		"too many rate limits":         {ExternalID: "a", Limits: IdentityLimits{RateLimits: many}},
		"a nameless limit":             {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl("", 1, time.Second)}}},
		"an upper-case name":           {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl("Requests", 1, time.Second)}}},
		"a name too long":              {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl(strings.Repeat("r", MaxRateLimitName+1), 1, time.Second)}}},
		"a name starting with a digit": {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl("1r", 1, time.Second)}}},
		"two limits of one name":       {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl("r", 1, time.Second), rl("r", 2, time.Second)}}},
		"no requests":                  {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl("r", 0, time.Second)}}},
		"no window":                    {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl("r", 1, 0)}}},
		"too many requests":            {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl("r", MaxRateRequests+1, time.Hour)}}},
		"too long a window":            {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl("r", 1, MaxRateWindow+1)}}},
		"faster than a nanosecond":     {ExternalID: "a", Limits: IdentityLimits{RateLimits: []RateLimit{rl("r", 10, 5)}}},
		"negative credits":             {ExternalID: "a", Limits: IdentityLimits{Credits: &Credits{Remaining: -1}}},
		"too many credits":             {ExternalID: "a", Limits: IdentityLimits{Credits: &Credits{Remaining: MaxCredits + 1}}},
		"a refill of nothing":          {ExternalID: "a", Limits: IdentityLimits{Credits: &Credits{Refill: &Refill{Every: store.PeriodDay}}}},
		"a refill too large":           {ExternalID: "a", Limits: IdentityLimits{Credits: &Credits{Refill: &Refill{Amount: MaxCredits + 1, Every: store.PeriodDay}}}},
		"a daily refill with a day":    {ExternalID: "a", Limits: IdentityLimits{Credits: &Credits{Refill: &Refill{Amount: 1, Every: store.PeriodDay, Day: 3}}}},
		"a monthly refill on day 0":    {ExternalID: "a", Limits: IdentityLimits{Credits: &Credits{Refill: &Refill{Amount: 1, Every: store.PeriodMonth}}}},
		"a monthly refill on day 32":   {ExternalID: "a", Limits: IdentityLimits{Credits: &Credits{Refill: &Refill{Amount: 1, Every: store.PeriodMonth, Day: 32}}}},
		"a weekly refill":              {ExternalID: "a", Limits: IdentityLimits{Credits: &Credits{Refill: &Refill{Amount: 1, Every: "week"}}}},
	} {
		_, err := f.m.CreateIdentity(ctx, System(), req)
		if !errors.Is(err, ErrInvalidRequest) || !errors.Is(err, ErrInvalidField) {
			t.Errorf("%s: %v, want ErrInvalidField", name, err)
		}
	}
	page, err := f.m.ListIdentities(ctx, System(), IdentityListRequest{})
	if err != nil || len(page.Identities) != 0 {
		t.Errorf("refused requests stored %d identities (%v)", len(page.Identities), err)
	}
	// The bounds themselves are allowed.
	f.identity(t, CreateIdentityRequest{ExternalID: strings.Repeat("x", MaxIdentLength), Limits: IdentityLimits{
		RateLimits: append(many[:MaxRateLimits-1:MaxRateLimits-1], rl(strings.Repeat("r", MaxRateLimitName), MaxRateRequests, MaxRateWindow)),
		Credits:    &Credits{Remaining: MaxCredits, Refill: &Refill{Amount: MaxCredits, Every: store.PeriodMonth, Day: 31}},
	}})

	// Updates are validated the same way, and against what the identity
	// holds.
	id := f.identity(t, CreateIdentityRequest{})
	bad := []RateLimit{rl("r", 0, time.Second)}
	for name, req := range map[string]UpdateIdentityRequest{
		"a bad rate limit":                   {RateLimits: &bad},
		"credits without a balance":          {Credits: &CreditsUpdate{Refill: &Refill{Amount: 1, Every: store.PeriodDay}}},
		"removing credits, keeping a refill": {Credits: &CreditsUpdate{Remaining: int64p(-1), Refill: &Refill{Amount: 1, Every: store.PeriodDay}}},
		"an empty external id":               {ExternalID: new(string)},
	} {
		if _, err := f.m.UpdateIdentity(ctx, System(), id.ID, req); !errors.Is(err, ErrInvalidField) {
			t.Errorf("update with %s: %v, want ErrInvalidField", name, err)
		}
	}
	// A key's own rate limit is its "default", always on.
	for _, r := range []RateLimit{{Name: "tokens", Requests: 1, Window: time.Second}, {Requests: 1, Window: time.Second, OnDemand: true}} {
		_, err := f.m.Create(ctx, System(), CreateRequest{Name: "k", Role: "admin", Expiry: NeverExpire(), Limits: Limits{Rate: r}})
		if !errors.Is(err, ErrInvalidField) {
			t.Errorf("a key's own rate limit %+v: %v, want ErrInvalidField", r, err)
		}
	}
	f.create(t, CreateRequest{Limits: Limits{Rate: RateLimit{Name: DefaultRateLimit, Requests: 1, Window: time.Second}}})
}

func TestIdentitiesNeedAnIdentityStore(t *testing.T) {
	t.Parallel()
	m, err := New(Config{Store: struct{ store.Store }{memory.New()}, Hasher: testHasher(t), Auditor: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	ctx := context.Background()
	id := uuid.New()
	for name, err := range map[string]error{
		"create": second(m.CreateIdentity(ctx, System(), CreateIdentityRequest{ExternalID: "a"})),
		"get":    second(m.GetIdentity(ctx, System(), id)),
		"list":   second(m.ListIdentities(ctx, System(), IdentityListRequest{})),
		"update": second(m.UpdateIdentity(ctx, System(), id, UpdateIdentityRequest{})),
		"delete": m.DeleteIdentity(ctx, System(), id),
		"link":   second(m.Create(ctx, System(), CreateRequest{Name: "k", Role: "admin", Expiry: NeverExpire(), IdentityID: id})),
	} {
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}
	// Keys without identities work as ever.
	if _, err := m.Create(ctx, System(), CreateRequest{Name: "k", Role: "admin", Expiry: NeverExpire()}); err != nil {
		t.Error(err)
	}
}

func TestIdentityAuthorization(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tiger := f.identity(t, CreateIdentityRequest{ExternalID: "t", Workspace: "tiger"})
	lion := f.identity(t, CreateIdentityRequest{ExternalID: "l", Workspace: "lion"})
	unbound := f.identity(t, CreateIdentityRequest{ExternalID: "u"})
	owner := f.principal(t, CreateRequest{Workspace: "tiger", Role: "owner"})
	viewer := f.principal(t, CreateRequest{Workspace: "tiger", Role: "viewer"}) // *:read: not apikey:view
	watcher := f.principal(t, CreateRequest{Workspace: "tiger", Scopes: []string{"apikey:view"}})
	manager := f.principal(t, CreateRequest{Workspace: "tiger", Scopes: []string{"apikey:manage"}})
	name := "renamed"

	// No existence oracle: an identity out of reach is answered as one
	// that does not exist, error for error.
	missing := uuid.New()
	for _, by := range []Principal{owner, viewer, watcher, manager} {
		for _, target := range []*store.Identity{lion, unbound} {
			for op, call := range map[string]func(uuid.UUID) error{
				"get": func(id uuid.UUID) error { return second(f.m.GetIdentity(ctx, by, id)) },
				"update": func(id uuid.UUID) error {
					return second(f.m.UpdateIdentity(ctx, by, id, UpdateIdentityRequest{ExternalID: &name}))
				},
				"delete": func(id uuid.UUID) error { return f.m.DeleteIdentity(ctx, by, id) },
			} {
				got, want := call(target.ID), call(missing)
				if !errors.Is(got, ErrIdentityNotFound) || strings.ReplaceAll(got.Error(), target.ID.String(), "ID") != strings.ReplaceAll(want.Error(), missing.String(), "ID") {
					t.Errorf("%s %s of %s: %v; a missing one: %v; want the same ErrIdentityNotFound", by.ID, op, target.Workspace, got, want)
				}
			}
		}
	}
	// viewer's *:read sees no identity even in its workspace.
	if err := second(f.m.GetIdentity(ctx, viewer, tiger.ID)); !errors.Is(err, ErrIdentityNotFound) {
		t.Errorf("viewer gets tiger's identity: %v, want ErrIdentityNotFound", err)
	}
	// apikey:view sees but changes nothing; apikey:manage changes but does
	// not read.
	if _, err := f.m.GetIdentity(ctx, watcher, tiger.ID); err != nil {
		t.Errorf("watcher gets: %v", err)
	}
	if d := refusal(t, "watcher updates", second(f.m.UpdateIdentity(ctx, watcher, tiger.ID, UpdateIdentityRequest{ExternalID: &name}))); d.Permission != PermissionManageKeys || d.IdentityID != tiger.ID {
		t.Errorf("watcher updates: %v, want apikey:manage lacked on the identity", d)
	}
	if d := refusal(t, "watcher deletes", f.m.DeleteIdentity(ctx, watcher, tiger.ID)); d.Permission != PermissionManageKeys {
		t.Errorf("watcher deletes: %v", d)
	}
	if d := refusal(t, "watcher creates", second(f.m.CreateIdentity(ctx, watcher, CreateIdentityRequest{ExternalID: "w", Workspace: "tiger"}))); d.Permission != PermissionManageKeys {
		t.Errorf("watcher creates: %v", d)
	}
	if d := refusal(t, "manager gets", second(f.m.GetIdentity(ctx, manager, tiger.ID))); d.Permission != PermissionViewKeys {
		t.Errorf("manager gets: %v", d)
	}
	if _, err := f.m.UpdateIdentity(ctx, manager, tiger.ID, UpdateIdentityRequest{ExternalID: &name}); err != nil {
		t.Errorf("manager updates: %v", err)
	}
	// A principal bound to tiger creates and lists only there.
	if d := refusal(t, "owner creates in lion", second(f.m.CreateIdentity(ctx, owner, CreateIdentityRequest{ExternalID: "x", Workspace: "lion"}))); d.Reason != DeniedWorkspace {
		t.Errorf("owner creates in lion: %v", d)
	}
	if d := refusal(t, "owner lists lion", second(f.m.ListIdentities(ctx, owner, IdentityListRequest{Workspace: "lion"}))); d.Reason != DeniedWorkspace {
		t.Errorf("owner lists lion: %v", d)
	}
	page, err := f.m.ListIdentities(ctx, owner, IdentityListRequest{})
	if err != nil || len(page.Identities) != 1 || page.Identities[0].ID != tiger.ID {
		t.Errorf("owner lists: %v, %v; want tiger's only", page, err)
	}
	if _, err := f.m.ListIdentities(ctx, viewer, IdentityListRequest{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("viewer lists: %v, want ErrForbidden", err)
	}
	if _, err := f.m.CreateIdentity(ctx, owner, CreateIdentityRequest{ExternalID: "x", Workspace: "tiger"}); err != nil {
		t.Errorf("owner creates in tiger: %v", err)
	}
	// A revoked key's principal does nothing any more.
	gone := f.create(t, CreateRequest{Workspace: "tiger", Role: "owner", Expiry: NeverExpire()})
	gk, err := f.m.Verify(ctx, gone.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Revoke(ctx, System(), gone.Key.ID); err != nil {
		t.Fatal(err)
	}
	if d := refusal(t, "revoked key creates", second(f.m.CreateIdentity(ctx, gk.Principal(), CreateIdentityRequest{ExternalID: "y", Workspace: "tiger"}))); d.Reason != DeniedInactive {
		t.Errorf("revoked key creates: %v", d)
	}
}

func TestKeysInIdentities(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	acme := f.identity(t, CreateIdentityRequest{ExternalID: "acme", Workspace: "tiger"})
	globex := f.identity(t, CreateIdentityRequest{ExternalID: "globex", Workspace: "tiger"})
	lion := f.identity(t, CreateIdentityRequest{ExternalID: "acme", Workspace: "lion"})
	owner := f.principal(t, CreateRequest{Workspace: "tiger", Role: "owner"})

	k, err := f.m.Create(ctx, owner, CreateRequest{Name: "a", Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), IdentityID: acme.ID})
	if err != nil || k.Key.IdentityID != acme.ID {
		t.Fatalf("Create in acme: %+v, %v", k, err)
	}
	if rec, err := f.m.Get(ctx, owner, k.Key.ID); err != nil || rec.IdentityID != acme.ID {
		t.Fatalf("Get: %+v, %v; want it in acme", rec, err)
	}
	// An identity that does not exist, or out of reach, is unknown alike;
	// one of another workspace within reach is a wrong field.
	for name, id := range map[string]uuid.UUID{"missing": uuid.New(), "out of reach": lion.ID} {
		_, err := f.m.Create(ctx, owner, CreateRequest{Name: "b", Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), IdentityID: id})
		if !errors.Is(err, ErrUnknownIdentity) || !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Create in a %s identity: %v, want ErrUnknownIdentity", name, err)
		}
	}
	_, err = f.m.Create(ctx, System(), CreateRequest{Name: "b", Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), IdentityID: lion.ID})
	if !errors.Is(err, ErrInvalidField) {
		t.Errorf("Create in another workspace's identity: %v, want ErrInvalidField", err)
	}

	// Moved to another identity, then out of any.
	rec, err := f.m.Update(ctx, owner, k.Key.ID, UpdateRequest{IdentityID: &globex.ID})
	if err != nil || rec.IdentityID != globex.ID {
		t.Fatalf("move to globex: %+v, %v", rec, err)
	}
	missing := uuid.New()
	if _, err := f.m.Update(ctx, owner, k.Key.ID, UpdateRequest{IdentityID: &missing}); !errors.Is(err, ErrUnknownIdentity) {
		t.Errorf("move to a missing identity: %v, want ErrUnknownIdentity", err)
	}
	if _, err := f.m.Update(ctx, owner, k.Key.ID, UpdateRequest{IdentityID: &lion.ID}); !errors.Is(err, ErrUnknownIdentity) {
		t.Errorf("move to another workspace's identity: %v, want ErrUnknownIdentity", err)
	}

	// An identity in use is not deleted.
	err = f.m.DeleteIdentity(ctx, owner, globex.ID)
	if !errors.Is(err, ErrIdentityInUse) {
		t.Errorf("delete an identity in use: %v, want ErrIdentityInUse", err)
	}
	page, err := f.m.List(ctx, owner, ListRequest{IdentityID: globex.ID})
	if err != nil || len(page.Keys) != 1 || page.Keys[0].ID != k.Key.ID {
		t.Errorf("List(globex's keys): %v, %v; want the key", page, err)
	}
	none := uuid.Nil
	if rec, err := f.m.Update(ctx, owner, k.Key.ID, UpdateRequest{IdentityID: &none}); err != nil || rec.IdentityID != uuid.Nil {
		t.Fatalf("take out of globex: %+v, %v", rec, err)
	}
	if err := f.m.DeleteIdentity(ctx, owner, globex.ID); err != nil {
		t.Errorf("delete an identity no key is in: %v", err)
	}
	// A deleted key frees its identity too.
	if err := f.m.Delete(ctx, owner, second2(f.m.Create(ctx, owner, CreateRequest{Name: "c", Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), IdentityID: acme.ID}))); err != nil {
		t.Fatal(err)
	}
	if err := f.m.DeleteIdentity(ctx, owner, acme.ID); err != nil {
		t.Errorf("delete an identity whose key was deleted: %v", err)
	}
}

// second2 returns the id of a created key, or the zero UUID.
func second2(c *Created, err error) uuid.UUID {
	if err != nil {
		return uuid.Nil
	}
	return c.Key.ID
}

// TestIdentityPrivilegeBounds: a principal may not give an identity, nor
// put a key in one with, looser limits than its own, its identity's
// counted; nor loosen its own identity; nor change an identity's limits
// over keys it could not change.
func TestIdentityPrivilegeBounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rate := func(name string, n int, w time.Duration) RateLimit {
		return RateLimit{Name: name, Requests: n, Window: w}
	}
	monthly := func(n int64) *Refill { return &Refill{Amount: n, Every: store.PeriodMonth, Day: 1} }

	// P is an owner of tiger in identity home: 100 requests a second,
	// 50 a minute of "tokens" on demand, 1000 credits refilled to 1000 a
	// month.
	home := f.identity(t, CreateIdentityRequest{ExternalID: "home", Workspace: "tiger", Limits: IdentityLimits{
		RateLimits: []RateLimit{rate("requests", 100, time.Second), {Name: "tokens", Requests: 50, Window: time.Minute, OnDemand: true}},
		Credits:    &Credits{Remaining: 1000, Refill: monthly(1000)},
	}})
	pc := f.create(t, CreateRequest{Workspace: "tiger", Role: "owner", Expiry: NeverExpire(), IdentityID: home.ID})
	pk, err := f.m.Verify(ctx, pc.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	p := pk.Principal()
	// The verification took a credit: P's own are what is left.
	if home, err = f.store.identities().GetIdentity(ctx, home.ID); err != nil || home.Credits.Remaining != 999 {
		t.Fatalf("identity after one verification: %+v, %v; want 999 credits left", home, err)
	}
	strict := IdentityLimits{
		RateLimits: []RateLimit{rate("requests", 10, time.Second), {Name: "tokens", Requests: 5, Window: time.Minute, OnDemand: true}},
		Credits:    &Credits{Remaining: 100, Refill: monthly(100)},
	}
	with := func(edit func(*IdentityLimits)) IdentityLimits {
		l := strict
		l.RateLimits = slices.Clone(strict.RateLimits)
		c := *strict.Credits
		l.Credits = &c
		edit(&l)
		return l
	}
	for _, tc := range []struct {
		name   string
		limits IdentityLimits
		limit  string // "" allowed
	}{
		{"stricter in everything", strict, ""},
		{"equal to its own", limitsOfIdentity(home), ""},
		{"an always-on limit standing for the on-demand one", with(func(l *IdentityLimits) { l.RateLimits = []RateLimit{rate("requests", 5, time.Minute)} }), ""},
		{"an always-on limit too fast for the on-demand one", with(func(l *IdentityLimits) { l.RateLimits = l.RateLimits[:1] }), LimitRate},
		{"a daily refill within the monthly", with(func(l *IdentityLimits) { l.Credits.Refill = &Refill{Amount: 32, Every: store.PeriodDay} }), ""},
		{"no credits refilled", with(func(l *IdentityLimits) { l.Credits.Refill = nil }), ""},
		{"no limits", IdentityLimits{}, LimitRate},
		{"no rate limit", with(func(l *IdentityLimits) { l.RateLimits = nil }), LimitRate},
		{"a faster rate", with(func(l *IdentityLimits) { l.RateLimits[0] = rate("requests", 100, time.Millisecond*999) }), LimitRate},
		{"a larger burst", with(func(l *IdentityLimits) { l.RateLimits[0] = rate("requests", 200, 2*time.Second) }), LimitRate},
		{"the on-demand limit under another name", with(func(l *IdentityLimits) {
			l.RateLimits[0] = rate("requests", 100, time.Second)
			l.RateLimits[1].Name = "other"
		}), LimitRate},
		{"no credits", with(func(l *IdentityLimits) { l.Credits = nil }), LimitCredits},
		{"more credits", with(func(l *IdentityLimits) { l.Credits.Remaining = 1001 }), LimitCredits},
		{"a larger refill", with(func(l *IdentityLimits) { l.Credits.Refill = monthly(1001) }), LimitCredits},
		{"a daily refill worth more a month", with(func(l *IdentityLimits) { l.Credits.Refill = &Refill{Amount: 33, Every: store.PeriodDay} }), LimitCredits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.m.CreateIdentity(ctx, p, CreateIdentityRequest{ExternalID: "x-" + uuid.NewString(), Workspace: "tiger", Limits: tc.limits})
			if tc.limit == "" {
				if err != nil {
					t.Fatalf("CreateIdentity: %v, want success", err)
				}
				return
			}
			if d := refusal(t, "CreateIdentity", err); d.Reason != DeniedLimit || d.Limit != tc.limit {
				t.Fatalf("CreateIdentity: %v, want a looser %s", d, tc.limit)
			}
			// A key with those limits of its identity's is refused alike.
			id := f.identity(t, CreateIdentityRequest{ExternalID: "y-" + uuid.NewString(), Workspace: "tiger", Limits: tc.limits})
			_, err = f.m.Create(ctx, p, CreateRequest{Name: "k-" + uuid.NewString(), Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), IdentityID: id.ID})
			if d := refusal(t, "Create in it", err); d.Reason != DeniedLimit || d.Limit != tc.limit {
				t.Fatalf("Create in it: %v, want a looser %s", d, tc.limit)
			}
		})
	}

	// A key's own limits and its identity's count together: a key without
	// limits of its own in a strict identity is strict enough, and so is
	// one without identity whose own limits are (its rate within P's
	// always-on and on-demand ones, its uses within P's credits).
	strictID := f.identity(t, CreateIdentityRequest{ExternalID: "strict", Workspace: "tiger", Limits: strict})
	if _, err := f.m.Create(ctx, p, CreateRequest{Name: "in-strict", Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), IdentityID: strictID.ID}); err != nil {
		t.Errorf("a key in a strict identity: %v", err)
	}
	own := Limits{Rate: rate("", 5, time.Minute), Uses: int64p(10)}
	if _, err := f.m.Create(ctx, p, CreateRequest{Name: "own-limits", Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), Limits: own}); err != nil {
		t.Errorf("a key with strict limits of its own: %v", err)
	}
	plain := f.create(t, CreateRequest{Workspace: "tiger", Role: "viewer", Expiry: NeverExpire()})
	if d := refusal(t, "a key without limits", second(f.m.Create(ctx, p, CreateRequest{Name: "free", Workspace: "tiger", Role: "viewer", Expiry: NeverExpire()}))); d.Limit != LimitRate {
		t.Errorf("a key without limits: %v", d)
	}
	// Moving an unlimited key into the strict identity makes it strict
	// enough; out of it, it is looser again.
	if _, err := f.m.Update(ctx, p, plain.Key.ID, UpdateRequest{IdentityID: &strictID.ID}); err != nil {
		t.Errorf("moving an unlimited key into a strict identity: %v", err)
	}
	none := uuid.Nil
	if d := refusal(t, "taking it out", second(f.m.Update(ctx, p, plain.Key.ID, UpdateRequest{IdentityID: &none}))); d.Reason != DeniedLimit || d.KeyID != plain.Key.ID {
		t.Errorf("taking it out: %v", d)
	}
	loose := f.identity(t, CreateIdentityRequest{ExternalID: "loose", Workspace: "tiger"})
	if d := refusal(t, "moving it to a loose identity", second(f.m.Update(ctx, p, plain.Key.ID, UpdateRequest{IdentityID: &loose.ID}))); d.Reason != DeniedLimit {
		t.Errorf("moving it to a loose identity: %v", d)
	}

	// P cannot loosen its own identity, nor refill it; it may tighten it
	// and change what limits nothing.
	faster := []RateLimit{rate("requests", 1000, time.Second), home.RateLimits[1]}
	if d := refusal(t, "P raises its identity's rate", second(f.m.UpdateIdentity(ctx, p, home.ID, UpdateIdentityRequest{RateLimits: &faster}))); d.Limit != LimitRate || d.IdentityID != home.ID {
		t.Errorf("P raises its identity's rate: %v", d)
	}
	if d := refusal(t, "P drops its identity's credits", second(f.m.UpdateIdentity(ctx, p, home.ID, UpdateIdentityRequest{Credits: &CreditsUpdate{Remaining: int64p(-1)}}))); d.Limit != LimitCredits {
		t.Errorf("P drops its identity's credits: %v", d)
	}
	if _, err := f.m.UpdateIdentity(ctx, System(), home.ID, UpdateIdentityRequest{Credits: &CreditsUpdate{Remaining: int64p(400)}}); err != nil {
		t.Fatal(err)
	}
	if d := refusal(t, "P refills its identity", second(f.m.UpdateIdentity(ctx, p, home.ID, UpdateIdentityRequest{Credits: &CreditsUpdate{Remaining: int64p(401)}}))); d.Limit != LimitCredits {
		t.Errorf("P refills its identity: %v", d)
	}
	if _, err := f.m.UpdateIdentity(ctx, p, home.ID, UpdateIdentityRequest{Credits: &CreditsUpdate{Remaining: int64p(300)}}); err != nil {
		t.Errorf("P lowers its identity's balance: %v", err)
	}
	// Nor refill another identity, even within its own balance.
	if d := refusal(t, "P refills another identity", second(f.m.UpdateIdentity(ctx, p, strictID.ID, UpdateIdentityRequest{Credits: &CreditsUpdate{Remaining: int64p(150)}}))); d.Limit != LimitCredits {
		t.Errorf("P refills another identity: %v", d)
	}
	md := map[string]string{"note": "fine"}
	if _, err := f.m.UpdateIdentity(ctx, p, home.ID, UpdateIdentityRequest{Metadata: &md}); err != nil {
		t.Errorf("P changes its identity's metadata: %v", err)
	}
	// Nor can it refill a key's uses now that it draws on credits.
	used := f.create(t, CreateRequest{Workspace: "tiger", Role: "viewer", Expiry: NeverExpire(), Limits: Limits{Rate: rate("", 1, time.Second), Uses: int64p(5)}, IdentityID: strictID.ID})
	if d := refusal(t, "P raises a key's uses", second(f.m.Update(ctx, p, used.Key.ID, UpdateRequest{Uses: int64p(6)}))); d.Limit != LimitUses {
		t.Errorf("P raises a key's uses: %v", d)
	}

	// Changing an identity's limits needs rights over every key in it; its
	// metadata does not.
	narrow := f.principal(t, CreateRequest{Workspace: "tiger", Scopes: []string{"apikey:manage", "apikey:view", "cluster:read"}})
	shared := f.identity(t, CreateIdentityRequest{ExternalID: "shared", Workspace: "tiger", Limits: strict})
	f.create(t, CreateRequest{Workspace: "tiger", Scopes: []string{"cluster:read"}, Expiry: NeverExpire(), IdentityID: shared.ID})
	strong := f.create(t, CreateRequest{Workspace: "tiger", Role: "owner", Expiry: NeverExpire(), IdentityID: shared.ID})
	tighter := []RateLimit{rate("requests", 1, time.Second)}
	d := refusal(t, "narrow changes the limits over an owner key", second(f.m.UpdateIdentity(ctx, narrow, shared.ID, UpdateIdentityRequest{RateLimits: &tighter})))
	if d.Reason != DeniedPermission || d.KeyID != strong.Key.ID || d.IdentityID != shared.ID {
		t.Errorf("narrow changes the limits over an owner key: %v, want a permission the owner key holds", d)
	}
	if _, err := f.m.UpdateIdentity(ctx, narrow, shared.ID, UpdateIdentityRequest{Metadata: &md}); err != nil {
		t.Errorf("narrow changes the metadata: %v", err)
	}
	if err := f.m.Delete(ctx, System(), strong.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.UpdateIdentity(ctx, narrow, shared.ID, UpdateIdentityRequest{RateLimits: &tighter}); err != nil {
		t.Errorf("narrow changes the limits over keys it covers: %v", err)
	}
}

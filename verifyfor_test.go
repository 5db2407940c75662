package keygate

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

func TestVerifyFor(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	verifier := func(req CreateRequest) Principal {
		t.Helper()
		k, err := f.m.Verify(ctx, f.create(t, req).Token.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		return k.Principal()
	}
	admin := verifier(CreateRequest{Role: "admin"})
	global := verifier(CreateRequest{Scopes: []string{"apikey:verify"}})
	tigerOnly := verifier(CreateRequest{Workspace: "tiger", Scopes: []string{"apikey:verify"}})
	owner := verifier(CreateRequest{Workspace: "tiger", Role: "owner"}) // *:* holds apikey:verify
	viewer := verifier(CreateRequest{Workspace: "tiger", Role: "viewer"})
	editor := verifier(CreateRequest{Workspace: "tiger", Role: "editor"})
	manager := verifier(CreateRequest{Scopes: []string{"apikey:manage", "apikey:view"}})

	tiger := f.create(t, CreateRequest{Workspace: "tiger", Role: "viewer"}).Token.Reveal()
	lion := f.create(t, CreateRequest{Workspace: "lion", Role: "viewer"}).Token.Reveal()
	unbound := f.create(t, CreateRequest{Scopes: []string{"cluster:read"}}).Token.Reveal()
	revoked := f.create(t, CreateRequest{Workspace: "lion", Role: "viewer"})
	if _, err := f.m.Revoke(ctx, System(), revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	unknown := f.m.format
	unknownTok, err := unknown.Generate()
	if err != nil {
		t.Fatal(err)
	}

	// Who may verify at all: a refusal of the caller is an error, never
	// a verdict.
	for name, by := range map[string]Principal{"viewer": viewer, "editor": editor, "manager": manager} {
		_, err := f.m.VerifyFor(ctx, by, VerifyRequest{Token: tiger})
		var d *DeniedError
		if !errors.As(err, &d) || d.Reason != DeniedPermission || d.Permission != PermissionVerifyKeys {
			t.Errorf("%s: VerifyFor error %v, want a DeniedError naming %s", name, err, PermissionVerifyKeys)
		}
	}

	tests := []struct {
		name string
		by   Principal
		req  VerifyRequest
		want error // nil: valid
	}{
		{"admin, any workspace", admin, VerifyRequest{Token: lion}, nil},
		{"global verifier, unbound key", global, VerifyRequest{Token: unbound}, nil},
		{"owner of tiger, tiger key", owner, VerifyRequest{Token: tiger}, nil},
		{"tiger verifier, tiger key", tigerOnly, VerifyRequest{Token: tiger}, nil},
		{"tiger verifier, lion key: as unknown", tigerOnly, VerifyRequest{Token: lion}, ErrInvalid},
		{"tiger verifier, unbound key: as unknown", tigerOnly, VerifyRequest{Token: unbound}, ErrInvalid},
		{"tiger verifier, revoked lion key: as unknown", tigerOnly, VerifyRequest{Token: revoked.Token.Reveal()}, ErrInvalid},
		{"unknown token", tigerOnly, VerifyRequest{Token: unknownTok.Reveal()}, ErrInvalid},
		{"revoked", admin, VerifyRequest{Token: revoked.Token.Reveal()}, ErrRevoked},
		{"malformed", admin, VerifyRequest{Token: "kg_nope"}, ErrMalformed},
		{"permission held in workspace", admin, VerifyRequest{Token: tiger, Permission: "cluster:read", Workspace: "tiger"}, nil},
		{"permission not held", admin, VerifyRequest{Token: tiger, Permission: "cluster:write", Workspace: "tiger"}, ErrForbidden},
		{"permission in another workspace", admin, VerifyRequest{Token: tiger, Permission: "cluster:read", Workspace: "lion"}, ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := f.m.VerifyFor(ctx, tt.by, tt.req)
			if err != nil {
				t.Fatalf("VerifyFor: error %v, want a verdict", err)
			}
			if tt.want == nil {
				if v.Err != nil || v.Key == nil {
					t.Fatalf("verdict %+v, want valid", v)
				}
				return
			}
			if v.Key != nil || !errors.Is(v.Err, tt.want) {
				t.Fatalf("verdict %+v, want %v", v, tt.want)
			}
		})
	}

	// An invalid request is the caller's error.
	if _, err := f.m.VerifyFor(ctx, admin, VerifyRequest{Token: tiger, Permission: "not a permission"}); !errors.Is(err, ErrInvalidScope) {
		t.Errorf("bad permission: got %v, want ErrInvalidScope", err)
	}
	if _, err := f.m.VerifyFor(ctx, admin, VerifyRequest{Token: tiger, Workspace: "bad\x00ws"}); !errors.Is(err, ErrInvalidField) {
		t.Errorf("bad workspace: got %v, want ErrInvalidField", err)
	}
}

// TestVerifyForIsAUse checks that a remote verification spends the key's
// limits like a local one, and that a key the caller may not see spends
// nothing.
func TestVerifyForIsAUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.LastUsedInterval = time.Hour })
	ctx := context.Background()
	two := int64(2)
	c := f.create(t, CreateRequest{Workspace: "lion", Role: "viewer", Limits: Limits{
		Uses: &two, Rate: RateLimit{Requests: 100, Window: time.Minute},
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}})
	tigerOnly := Principal{ID: "svc", Workspace: "tiger", Permissions: permission.Set{permission.MustParse("apikey:verify")}}
	req := VerifyRequest{Token: c.Token.Reveal(), Address: netip.MustParseAddr("10.1.2.3")}
	for range 3 {
		if v, err := f.m.VerifyFor(ctx, tigerOnly, req); err != nil || !errors.Is(v.Err, ErrInvalid) {
			t.Fatalf("other workspace: verdict %+v, %v; want ErrInvalid", v, err)
		}
	}
	if rec, _ := f.store.Get(ctx, c.Key.ID); *rec.RemainingUses != 2 {
		t.Fatalf("an invisible key's uses went from 2 to %d", *rec.RemainingUses)
	}
	admin := System()
	if v, _ := f.m.VerifyFor(ctx, admin, VerifyRequest{Token: c.Token.Reveal()}); !errors.Is(v.Err, ErrAddressDenied) {
		t.Errorf("no address for an allow-listed key: %+v, want ErrAddressDenied", v)
	}
	for i := range 2 {
		if v, err := f.m.VerifyFor(ctx, admin, req); err != nil || v.Err != nil {
			t.Fatalf("use %d: verdict %+v, %v", i+1, v, err)
		}
	}
	if v, _ := f.m.VerifyFor(ctx, admin, req); !errors.Is(v.Err, ErrUsageExhausted) {
		t.Errorf("third use: %+v, want ErrUsageExhausted", v)
	}
	if err := f.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, _ := f.store.Get(ctx, c.Key.ID); rec.LastUsedAt.IsZero() {
		t.Error("a remote verification did not record the key's last use")
	}

	f.store.fail.Store(true)
	f.m.cache.clear()
	if _, err := f.m.VerifyFor(ctx, admin, req); !errors.Is(err, ErrUnavailable) {
		t.Errorf("store down: got %v, want the error ErrUnavailable (no verdict)", err)
	}
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	uses := int64(4)
	rec := &store.Key{ID: uuid.New(), Workspace: "tiger", ExpiresAt: time.Now().Add(time.Hour), RemainingUses: &uses}
	perms := permission.Set{permission.MustParse("cluster:read")}
	k := NewKey(rec, perms, false)
	*rec.RemainingUses = 0
	perms[0] = permission.MustParse("*:*")
	if !k.Allows(permission.MustParse("cluster:read"), "tiger") || k.Allows(permission.MustParse("cluster:read"), "lion") ||
		k.Allows(permission.MustParse("cluster:write"), "tiger") {
		t.Error("NewKey's key does not allow exactly its permissions in its workspace")
	}
	p := k.Principal()
	if p.ID != "key:"+rec.ID.String() || p.Workspace != "tiger" || !p.ExpiresAt.Equal(rec.ExpiresAt) || *p.Limits.Uses != 4 || *k.RemainingUses != 4 {
		t.Errorf("principal %+v does not follow the record (or shares its memory)", p)
	}
	if !NewKey(rec, nil, true).Allows(permission.MustParse("billing:write"), "any") {
		t.Error("a super admin key from NewKey is not allowed everything")
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	if err := f.m.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	f.store.fail.Store(true)
	if err := f.m.Health(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, errStoreDown) {
		t.Errorf("Health with the store down: %v, want ErrUnavailable wrapping the cause", err)
	}
	f.store.fail.Store(false)

	feed := &failingFeed{fail: make(chan error), healthy: make(chan error, 1)}
	g := newFixture(t, func(c *Config) { c.ChangeFeed = feed })
	// Watching, and the feed says it is fine.
	feed.healthy <- nil
	waitFor(t, func() bool { return g.m.Health(ctx) == nil })
	// The feed reports its own failure (a connection being re-established).
	errLost := errors.New("connection lost")
	feed.healthy <- errLost
	waitFor(t, func() bool { return errors.Is(g.m.Health(ctx), errLost) })
	if err := g.m.Health(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Health with the feed down: %v, want ErrUnavailable", err)
	}
	// Watch fails: unhealthy until the Manager watches again.
	feed.healthy <- nil
	errBroke := errors.New("feed broke")
	feed.fail <- errBroke
	waitFor(t, func() bool { return errors.Is(g.m.Health(ctx), errBroke) })
	waitFor(t, func() bool { return g.m.Health(ctx) == nil })
}

// failingFeed is a change feed that fails when told to, and reports the
// health it was last given.
type failingFeed struct {
	fail    chan error
	healthy chan error
	last    error
}

func (f *failingFeed) Watch(ctx context.Context, _ func(uuid.UUID)) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-f.fail:
		return err
	}
}

func (f *failingFeed) Health(context.Context) error {
	select {
	case err := <-f.healthy:
		f.last = err
	default:
	}
	return f.last
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestListRoles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for name, tt := range map[string]struct {
		by Principal
		ok bool
	}{
		"system":         {System(), true},
		"viewer of keys": {Principal{ID: "v", Workspace: "tiger", Permissions: permission.Set{permission.MustParse("apikey:view")}}, true},
		"reader":         {Principal{ID: "r", Permissions: permission.Set{permission.MustParse("*:read")}}, false},
	} {
		roles, err := f.m.ListRoles(tt.by)
		if !tt.ok {
			var d *DeniedError
			if !errors.As(err, &d) || d.Permission != PermissionViewKeys {
				t.Errorf("%s: ListRoles error %v, want a DeniedError naming %s", name, err, PermissionViewKeys)
			}
			continue
		}
		if err != nil || len(roles) != len(f.m.Roles().Roles()) {
			t.Errorf("%s: ListRoles = %d roles, %v; want the registry's %d", name, len(roles), err, len(f.m.Roles().Roles()))
		}
	}
}

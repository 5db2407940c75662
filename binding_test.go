package keygate

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestBoundPrincipal: a key's principal, kept as its binding (the key's id
// and stored hash, as a session in a shared database keeps it), comes back
// through Refresh as the key is now, and is refused as the principal
// itself would be: revoked, regenerated, or acting with the old secret.
func TestBoundPrincipal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	c := f.create(t, CreateRequest{Name: "ops", Scopes: []string{"apikey:view", "apikey:manage", "cluster:read"}})
	k, err := f.m.Verify(ctx, c.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	id, hash, ok := k.Principal().Binding()
	if !ok || id != c.Key.ID || !bytes.Equal(hash, c.Key.Hash) {
		t.Fatalf("Binding() = %v, %x, %v; want the key's id and stored hash", id, hash, ok)
	}
	hash[0] ^= 0xff
	if _, again, _ := k.Principal().Binding(); bytes.Equal(again, hash) {
		t.Error("Binding returned the principal's own slice")
	}
	hash[0] ^= 0xff
	for _, p := range []Principal{System(), {ID: "user:alice", SuperAdmin: true}} {
		if _, _, ok := p.Binding(); ok {
			t.Errorf("%s: Binding ok for a principal not taken from a key", p.ID)
		}
	}

	bound := BoundPrincipal(id, hash)
	if bound.Allows(f.m.viewKeys, "") || bound.SuperAdmin {
		t.Error("a bound principal holds something before Refresh")
	}
	p, err := f.m.Refresh(ctx, bound)
	if err != nil {
		t.Fatalf("Refresh(bound): %v", err)
	}
	if want, _ := f.m.Refresh(ctx, k.Principal()); !samePrincipal(&p, &want) {
		t.Errorf("Refresh(bound) = %+v, want the key's principal %+v", p, want)
	}
	// It acts as the key: a change goes through.
	if _, err := f.m.Create(ctx, bound, CreateRequest{Name: "child", Scopes: []string{"cluster:read"}, Expiry: ExpireAfterDays(7)}); err != nil {
		t.Errorf("Create by the bound principal: %v", err)
	}
	// Another secret, or another key, is refused.
	if _, err := f.m.Refresh(ctx, BoundPrincipal(id, []byte("not the hash"))); !errors.Is(err, ErrForbidden) {
		t.Errorf("Refresh with a wrong hash: %v, want a refusal", err)
	}
	if _, err := f.m.Refresh(ctx, BoundPrincipal(uuid.Must(uuid.NewV7()), hash)); !errors.Is(err, ErrForbidden) {
		t.Errorf("Refresh of a key that does not exist: %v, want a refusal", err)
	}
	if z, err := f.m.Refresh(ctx, BoundPrincipal(uuid.Nil, nil)); err == nil && (z.SuperAdmin || z.Allows(f.m.viewKeys, "") || len(z.Permissions) > 0) {
		t.Errorf("Refresh of the zero binding = %+v, want a principal that holds nothing", z)
	}

	// Regenerated with a grace period: the old secret's binding views but
	// changes nothing; once the grace is over, it is refused.
	if _, err := f.m.Regenerate(ctx, System(), id, RegenerateRequest{Expiry: ExpireAfterDays(7), GracePeriod: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Refresh(ctx, bound); err != nil {
		t.Errorf("Refresh of the old secret in its grace period: %v", err)
	}
	var d *DeniedError
	if _, err := f.m.Create(ctx, bound, CreateRequest{Name: "child2", Scopes: []string{"cluster:read"}, Expiry: ExpireAfterDays(7)}); !errors.As(err, &d) || d.Reason != DeniedOldSecret {
		t.Errorf("Create with the old secret's binding: %v, want DeniedOldSecret", err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.m.Refresh(ctx, bound); !errors.As(err, &d) || d.Reason != DeniedInactive {
		t.Errorf("Refresh after the grace period: %v, want DeniedInactive", err)
	}
}

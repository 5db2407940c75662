package keygate

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestDisableAndEnable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	c := f.create(t, CreateRequest{Scopes: []string{"apikey:manage", "cluster:read"}})
	tok := c.Token.Reveal()
	k, err := f.m.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	kept := k.Principal()
	if _, err := f.m.Disable(ctx, System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Verify(ctx, tok); !errors.Is(err, ErrDisabled) {
		t.Errorf("a disabled key: %v, want ErrDisabled", err)
	}
	if e := f.audit.last(); e.Type != EventVerificationFailed || e.Reason != "disabled" {
		t.Errorf("audit %+v, want a failed verification for disabled", e)
	}
	var d *DeniedError
	if _, err := f.m.Create(ctx, kept, CreateRequest{Name: "x", Scopes: []string{"cluster:read"}, Expiry: ExpireAfterDays(1)}); !errors.As(err, &d) || d.Reason != DeniedInactive {
		t.Errorf("a disabled key's kept principal: %v, want DeniedInactive", err)
	}
	rec, err := f.m.Disable(ctx, System(), c.Key.ID)
	if err != nil || rec.DisabledAt.IsZero() {
		t.Errorf("disabling again: %v, %v", rec, err)
	}
	if _, err := f.m.Enable(ctx, System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Verify(ctx, tok); err != nil {
		t.Errorf("after Enable, the next request: %v", err)
	}
	if got := f.audit.types(); !slices.Contains(got, EventDisabled) || !slices.Contains(got, EventEnabled) {
		t.Errorf("audit types %v lack key.disabled and key.enabled", got)
	}
	// Only those who may change the key may disable it.
	viewer := Principal{ID: "v", Permissions: mustSet(t, "apikey:view")}
	if _, err := f.m.Disable(ctx, viewer, c.Key.ID); !errors.Is(err, ErrForbidden) {
		t.Errorf("a viewer disabling: %v, want ErrForbidden", err)
	}
}

func TestNotifyExpiring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	soon := f.create(t, CreateRequest{Expiry: ExpireAfterDays(2)})
	f.create(t, CreateRequest{Expiry: ExpireAfterDays(10)})
	f.create(t, CreateRequest{Expiry: NeverExpire()})
	revoked := f.create(t, CreateRequest{Expiry: ExpireAfterDays(1)})
	if _, err := f.m.Revoke(ctx, System(), revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	disabled := f.create(t, CreateRequest{Expiry: ExpireAfterDays(1)})
	if _, err := f.m.Disable(ctx, System(), disabled.Key.ID); err != nil {
		t.Fatal(err)
	}
	week := 7 * 24 * time.Hour
	n, err := f.m.NotifyExpiring(ctx, week)
	if err != nil || n != 1 {
		t.Fatalf("NotifyExpiring = %d, %v; want 1", n, err)
	}
	if e := f.audit.last(); e.Type != EventExpiringSoon || e.KeyID != soon.Key.ID || !e.ExpiresAt.Equal(soon.Key.ExpiresAt) {
		t.Errorf("event %+v, want key.expiring_soon for the 2-day key", e)
	}
	if n, _ := f.m.NotifyExpiring(ctx, week); n != 0 {
		t.Errorf("again: %d notices, want 0 (once per key and expiry)", n)
	}
	// A new expiry is notified again.
	in3 := ExpireAfterDays(3)
	if _, err := f.m.Update(ctx, System(), soon.Key.ID, UpdateRequest{Expiry: &in3}); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.m.NotifyExpiring(ctx, week); n != 1 {
		t.Errorf("after a new expiry: %d notices, want 1", n)
	}
	// Several instances at once send each notice once.
	f.clock.Advance(4 * 24 * time.Hour) // the 10-day key now expires in 6 days
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 4 {
		other, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, Now: f.clock.Now, Auditor: &recorder{}, LastUsedInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close(ctx) })
		wg.Go(func() {
			n, err := other.NotifyExpiring(ctx, week)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 1 {
		t.Errorf("4 instances at once sent %d notices for one key, want 1", total)
	}
	if _, err := f.m.NotifyExpiring(ctx, 0); !errors.Is(err, ErrInvalidField) {
		t.Errorf("a zero lead: %v, want ErrInvalidField", err)
	}
}

// TestNoticeLoop: with Config.ExpiryNotice the Manager sends notices by
// itself.
func TestNoticeLoop(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.create(t, CreateRequest{Expiry: ExpireAfterDays(1)})
	audit := &recorder{}
	m, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, Now: f.clock.Now, Auditor: audit, LastUsedInterval: -1,
		ExpiryNotice: 48 * time.Hour, ExpiryNoticeInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	deadline := time.Now().Add(5 * time.Second)
	for audit.last().Type != EventExpiringSoon {
		if time.Now().After(deadline) {
			t.Fatal("no expiry notice within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if audit.last().KeyID != c.Key.ID {
		t.Errorf("notice for %s, want %s", audit.last().KeyID, c.Key.ID)
	}
}

package keygate

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestGraceNeverRevivesAnExpiredSecret (issue 8, finding 4): a
// regeneration's grace period keeps the old secret only as long as it
// would have lived anyway.
func TestGraceNeverRevivesAnExpiredSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	expired := f.create(t, CreateRequest{Expiry: ExpireAfter(time.Hour)})
	soon := f.create(t, CreateRequest{Expiry: ExpireAfter(3 * time.Hour)})
	f.clock.Advance(2 * time.Hour)
	if _, err := f.m.Verify(ctx, expired.Token.Reveal()); !errors.Is(err, ErrExpired) {
		t.Fatalf("before: %v, want ErrExpired", err)
	}
	for _, c := range []*Created{expired, soon} {
		if _, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(7), GracePeriod: 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.Verify(ctx, expired.Token.Reveal()); err == nil {
		t.Error("a secret that had expired works again after a regeneration with a grace period")
	}
	if _, err := f.m.Verify(ctx, soon.Token.Reveal()); err != nil {
		t.Errorf("within its own life and the grace period: %v", err)
	}
	f.clock.Advance(90 * time.Minute) // past the old secret's own expiry, within the 24 h grace
	if _, err := f.m.Verify(ctx, soon.Token.Reveal()); err == nil {
		t.Error("an old secret outlived its own expiry through a grace period")
	}
}

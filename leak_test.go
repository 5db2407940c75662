package keygate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHandleLeak(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	leak := func(token string, revoke bool) LeakOutcome {
		t.Helper()
		o, err := f.m.HandleLeak(ctx, Leak{Token: token, Reporter: "github", URL: "https://github.com/o/r/blob/main/.env", Source: "content"}, revoke)
		if err != nil {
			t.Fatalf("HandleLeak: %v", err)
		}
		return o
	}
	five := int64(5)
	live := f.create(t, CreateRequest{Limits: Limits{Uses: &five}})
	if o := leak(live.Token.Reveal(), false); o != LeakReported || !o.Real() {
		t.Errorf("report only: %v, want reported", o)
	}
	if rec, _ := f.store.Get(ctx, live.Key.ID); !rec.RevokedAt.IsZero() || *rec.RemainingUses != 5 || !rec.LastUsedAt.IsZero() {
		t.Errorf("reporting changed the key: revoked %v, uses %d, last used %v", rec.RevokedAt, *rec.RemainingUses, rec.LastUsedAt)
	}
	if e := f.audit.last(); e.Type != EventLeaked || e.KeyID != live.Key.ID || e.Reason != "reported" ||
		e.Location != "https://github.com/o/r/blob/main/.env (content)" || e.Actor != "scanner:github" {
		t.Errorf("audit event %+v", e)
	}
	if o := leak(live.Token.Reveal(), true); o != LeakRevoked {
		t.Errorf("revoke: %v, want revoked", o)
	}
	if _, err := f.m.Verify(ctx, live.Token.Reveal()); !errors.Is(err, ErrRevoked) {
		t.Errorf("a leaked key after its revocation: %v, want ErrRevoked", err)
	}
	if o := leak(live.Token.Reveal(), true); o != LeakInactive || !o.Real() {
		t.Errorf("leaked again: %v, want inactive (still a true positive)", o)
	}

	// The old secret of a grace period: the grace ends, the new secret works.
	old := f.create(t, CreateRequest{})
	r, err := f.m.Regenerate(ctx, System(), old.Key.ID, RegenerateRequest{Expiry: NeverExpire(), GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if o := leak(old.Token.Reveal(), true); o != LeakRevoked || f.audit.last().Reason != "grace_ended" {
		t.Errorf("old secret leaked: %v (%s), want revoked, grace ended", o, f.audit.last().Reason)
	}
	if _, err := f.m.Verify(ctx, old.Token.Reveal()); err == nil {
		t.Error("the leaked old secret still works")
	}
	if _, err := f.m.Verify(ctx, r.Token.Reveal()); err != nil {
		t.Errorf("the new secret after its old one leaked: %v", err)
	}

	// Not ours, unknown.
	other, _ := f.m.format.Generate()
	foreign := "acme_" + other.Reveal()[3:]
	lookups := f.store.getByHash.Load()
	for _, garbage := range []string{"", "hello", other.Reveal()[:20], otherLast(other.Reveal()), foreign} {
		if o := leak(garbage, true); o != LeakNotOurs || o.Real() {
			t.Errorf("%q: %v, want not ours", garbage, o)
		}
	}
	if f.store.getByHash.Load() != lookups {
		t.Error("tokens that are not ours were looked up")
	}
	if o := leak(other.Reveal(), true); o != LeakUnknown || o.Real() {
		t.Errorf("unknown: %v, want unknown", o)
	}
	f.store.fail.Store(true)
	if _, err := f.m.HandleLeak(ctx, Leak{Token: other.Reveal()}, true); !errors.Is(err, ErrUnavailable) {
		t.Errorf("store down: %v, want ErrUnavailable", err)
	}
}

// otherLast returns s with its last character replaced by another letter,
// so that a token's checksum fails whatever its last character was.
func otherLast(s string) string {
	if strings.HasSuffix(s, "x") {
		return s[:len(s)-1] + "y"
	}
	return s[:len(s)-1] + "x"
}

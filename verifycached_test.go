package keygate

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestVerifyCached: a key in the verification cache is verified as
// VerifyFrom would, every check applied; any other token (never verified,
// unknown even if negatively cached, malformed, revoked since, expired
// from the cache) is not known, and costs no lookup and no audit event.
func TestVerifyCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tok := f.create(t, CreateRequest{}).Token.Reveal()
	limited := f.create(t, CreateRequest{Limits: Limits{Rate: RateLimit{Requests: 1, Window: time.Hour}}}).Token.Reveal()
	two := int64(2)
	used := f.create(t, CreateRequest{Limits: Limits{Uses: &two}}).Token.Reveal()
	revoked := f.create(t, CreateRequest{})
	unknownTok, err := f.m.format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	unknown := unknownTok.Reveal()

	notKnown := func(name, token string) {
		t.Helper()
		lookups, events := f.store.getByHash.Load(), len(f.audit.types())
		if k, known, err := f.m.VerifyCached(ctx, token, netip.Addr{}); known || k != nil || err != nil {
			t.Errorf("%s: VerifyCached = %v, %v, %v; want nil, false, nil", name, k, known, err)
		}
		if n := f.store.getByHash.Load() - lookups; n != 0 {
			t.Errorf("%s: %d store lookups, want 0", name, n)
		}
		if n := len(f.audit.types()) - events; n != 0 {
			t.Errorf("%s: %d audit events, want 0", name, n)
		}
	}
	notKnown("a key never verified", tok)
	notKnown("malformed", "kg_nope")
	notKnown("garbage of any length", "not a token at all")
	if _, err := f.m.Verify(ctx, unknown); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	notKnown("an unknown token in the negative cache", unknown)

	for _, s := range []string{tok, limited, used, revoked.Token.Reveal()} {
		if _, err := f.m.Verify(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	lookups := f.store.getByHash.Load()
	k, known, err := f.m.VerifyCached(ctx, tok, netip.Addr{})
	if !known || err != nil || k == nil {
		t.Fatalf("a key verified before: %v, %v, %v; want it known and valid", k, known, err)
	}
	if _, known, err := f.m.VerifyCached(ctx, limited, netip.Addr{}); !known || !errors.Is(err, ErrRateLimited) {
		t.Errorf("a known key over its rate limit: known %v, %v; want known, ErrRateLimited", known, err)
	}
	if k, known, err := f.m.VerifyCached(ctx, used, netip.Addr{}); !known || err != nil || k.RemainingUses == nil || *k.RemainingUses != 0 {
		t.Errorf("a known key with a use left: %v, %v; want known, its last use taken", known, err)
	}
	if _, known, err := f.m.VerifyCached(ctx, used, netip.Addr{}); !known || !errors.Is(err, ErrUsageExhausted) {
		t.Errorf("a known key with no use left: known %v, %v; want known, ErrUsageExhausted", known, err)
	}
	if n := f.store.getByHash.Load() - lookups; n != 0 {
		t.Errorf("known keys made %d store lookups, want 0", n)
	}

	if _, err := f.m.Revoke(ctx, System(), revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	notKnown("a key revoked since (its entry dropped)", revoked.Token.Reveal())
	if _, err := f.m.Verify(ctx, revoked.Token.Reveal()); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	if _, known, err := f.m.VerifyCached(ctx, revoked.Token.Reveal(), netip.Addr{}); !known || !errors.Is(err, ErrRevoked) {
		t.Errorf("a revoked key cached as such: known %v, %v; want known, ErrRevoked", known, err)
	}
	f.clock.Advance(31 * time.Second) // past the default CacheTTL
	notKnown("a key whose cache entry expired", tok)
}

// TestVerifyCachedAllocatesNothing: the hit of a known key allocates
// nothing (not parallel: AllocsPerRun counts every allocation in the
// process).
func TestVerifyCachedAllocatesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.create(t, CreateRequest{}).Token.Reveal()
	if _, err := f.m.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, known, err := f.m.VerifyCached(ctx, tok, netip.Addr{}); !known || err != nil {
			t.Fatal("not known")
		}
	}); n != 0 {
		t.Errorf("VerifyCached of a known key allocates %v times per call, want 0", n)
	}
}

package keygate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/permission"
)

// testDigest returns the digest of n.
func testDigest(n uint64) digest {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], n)
	return sha256.Sum256(b[:])
}

// TestCacheMatchesAMap drives a small cache with random puts, gets,
// invalidations and clears, and checks it against a plain map: every
// entry it returns is the latest put for its digest and was not
// invalidated since, and it never holds more than its limit.
func TestCacheMatchesAMap(t *testing.T) {
	t.Parallel()
	const limit = 200
	c := newCache(limit)
	ids := make([]uuid.UUID, 50)
	keys := make([]*Key, len(ids))
	for i := range ids {
		ids[i] = uuid.New()
		keys[i] = &Key{}
		keys[i].ID = ids[i]
	}
	want := map[digest]*cacheEntry{}
	r := rand.New(rand.NewPCG(1, 2))
	for step := range 50_000 {
		d := testDigest(r.Uint64N(400))
		switch op := r.IntN(100); {
		case op < 50:
			e := &cacheEntry{key: keys[r.IntN(len(keys))], expires: 1 << 62}
			if r.IntN(5) == 0 {
				e.key = nil
			}
			c.put(&d, e, c.epoch.Load())
			if got, ok := c.get(&d, 0); ok {
				if got != e {
					t.Fatalf("step %d: get after put returned another entry", step)
				}
				want[d] = e
			} else {
				delete(want, d) // full: the cache may decline
			}
		case op < 95:
			got, ok := c.get(&d, 0)
			if ok && want[d] != got {
				t.Fatalf("step %d: get returned an entry that is not the latest put", step)
			}
		case op < 99:
			id := ids[r.IntN(len(ids))]
			c.invalidate(id)
			for d, e := range want {
				if e.key != nil && e.key.ID == id {
					delete(want, d)
				}
			}
			for d, e := range want {
				if e.key != nil && e.key.ID == id {
					if _, ok := c.get(&d, 0); ok {
						t.Fatalf("step %d: invalidated entry still found", step)
					}
				}
			}
		default:
			c.clear()
			clear(want)
		}
		if n := c.len(); n > limit {
			t.Fatalf("step %d: %d entries, limit %d", step, n, limit)
		}
		// Evictions may have dropped entries of want; those still in the
		// cache must be the ones put.
		for d := range want {
			if _, ok := c.get(&d, 0); !ok {
				delete(want, d)
			}
		}
	}
	// The id index holds exactly the cached entries with a key.
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		for _, e := range s.byID {
			for ; e != nil; e = e.sameKey {
				if _, ok := s.table.Load().slotOf(e); !ok {
					t.Fatal("id index holds an entry that is not in the table")
				}
				n++
			}
		}
	}
	keyed := 0
	for _, e := range want {
		if e.key != nil {
			keyed++
		}
	}
	if n != keyed {
		t.Errorf("id index holds %d entries, cache %d with a key", n, keyed)
	}
}

// TestCacheConcurrentReadersNeverSeeInvalidated runs readers against
// writers that fill, evict and invalidate: once invalidate(id) returns, no
// lookup that starts afterwards finds an entry of id put before it.
func TestCacheConcurrentReadersNeverSeeInvalidated(t *testing.T) {
	t.Parallel()
	c := newCache(64)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	// Background churn: fills and evictions in every shard.
	wg.Go(func() {
		for i := uint64(0); ctx.Err() == nil; i++ {
			d := testDigest(1000 + i%500)
			k := &Key{}
			k.ID = uuid.New()
			c.put(&d, &cacheEntry{key: k, expires: 1 << 62}, c.epoch.Load())
		}
	})
	for g := range 2 {
		wg.Go(func() {
			for i := uint64(0); ctx.Err() == nil; i++ {
				d := testDigest(uint64(g)<<32 | i%8)
				k := &Key{}
				k.ID = uuid.New()
				c.put(&d, &cacheEntry{key: k, expires: 1 << 62}, c.epoch.Load())
				c.invalidate(k.ID)
				if e, ok := c.get(&d, 0); ok && e.key == k {
					t.Error("an entry was found after its invalidation returned")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestSamePrincipalComparesEveryField guards the compact Key: a key shares
// its grant only when its Principal is what its record says, which
// samePrincipal decides by comparing every field of Principal.
func TestSamePrincipalComparesEveryField(t *testing.T) {
	t.Parallel()
	if n := reflect.TypeFor[Principal]().NumField(); n != 10 {
		t.Fatalf("Principal has %d fields; make samePrincipal compare every one and update this test", n)
	}
	uses := int64(3)
	base := Principal{ID: "key:1", Permissions: permission.Set{permission.MustParse("a:b")}, Workspace: "w",
		ExpiresAt: time.Unix(100, 0), Limits: Limits{Uses: &uses}}
	for name, edit := range map[string]func(*Principal){
		"ID":          func(p *Principal) { p.ID = "key:2" },
		"Permissions": func(p *Principal) { p.Permissions = permission.Set{permission.MustParse("a:c")} },
		"Workspace":   func(p *Principal) { p.Workspace = "v" },
		"SuperAdmin":  func(p *Principal) { p.SuperAdmin = true },
		"ExpiresAt":   func(p *Principal) { p.ExpiresAt = time.Unix(99, 0) },
		"Limits":      func(p *Principal) { p.Limits = Limits{} },
		"IdentityLimits": func(p *Principal) {
			p.IdentityLimits = IdentityLimits{RateLimits: []RateLimit{{Name: "requests", Requests: 1, Window: time.Second}}}
		},
		"keyID":     func(p *Principal) { p.keyID = uuid.New() },
		"keyHash":   func(p *Principal) { p.keyHash = []byte("other") },
		"oldSecret": func(p *Principal) { p.oldSecret = true },
	} {
		q := base
		edit(&q)
		if samePrincipal(&base, &q) {
			t.Errorf("samePrincipal ignores a different %s", name)
		}
	}
	q := base
	if !samePrincipal(&base, &q) {
		t.Error("samePrincipal(p, copy of p) = false")
	}
}

// TestVerifiedKeyPrincipal checks that a verified key's Principal is the
// one its record resolves to, for a plain key (shared grant) and for the
// old secret of a grace period (whose expiry is the grace end).
func TestVerifiedKeyPrincipal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	a := f.create(t, CreateRequest{Workspace: "tiger", Role: "editor", Scopes: []string{"billing:write"}})
	b := f.create(t, CreateRequest{Workspace: "lion", Role: "editor", Scopes: []string{"billing:write"}})
	ka, err := f.m.Verify(ctx, a.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	kb, err := f.m.Verify(ctx, b.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	want, err := f.m.principalOf(&ka.Key)
	if err != nil {
		t.Fatal(err)
	}
	want.keyID, want.keyHash = ka.ID, ka.Hash
	if got := ka.Principal(); !reflect.DeepEqual(got, want) {
		t.Errorf("Principal() = %+v, want %+v", got, want)
	}
	if ka.grant != kb.grant {
		t.Error("two keys of the same role and scopes do not share their grant")
	}
	old := a.Token.Reveal()
	if _, err := f.m.Regenerate(ctx, System(), a.Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(30), GracePeriod: time.Hour}); err != nil {
		t.Fatal(err)
	}
	kold, err := f.m.Verify(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kold.Principal().ExpiresAt, kold.PrevExpiresAt; !got.Equal(want) {
		t.Errorf("old secret's principal expires %v, want the grace end %v", got, want)
	}
	if kold.grant == ka.grant {
		t.Error("the old secret's key shares a grant")
	}
	if p := kold.Principal(); !p.oldSecret || !bytes.Equal(p.keyHash, kold.PrevHash) {
		t.Errorf("old secret's principal: oldSecret %v, hash of the old secret %v", p.oldSecret, bytes.Equal(p.keyHash, kold.PrevHash))
	}
	// An old secret whose grace ends with the key's new expiry has the
	// key's own expiry, and must still be told apart from the new secret.
	old = f.create(t, CreateRequest{Workspace: "tiger", Role: "editor"}).Token.Reveal()
	kc, err := f.m.Verify(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Regenerate(ctx, System(), kc.ID, RegenerateRequest{Expiry: ExpireAfter(time.Hour), GracePeriod: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	kold, err = f.m.Verify(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if !kold.PrevExpiresAt.Equal(kold.ExpiresAt) {
		t.Fatalf("grace end %v, key expiry %v: want them equal for this case", kold.PrevExpiresAt, kold.ExpiresAt)
	}
	if p := kold.Principal(); !p.oldSecret {
		t.Error("the old secret, expiring with the key, acts as the new secret")
	}
	var denied *DeniedError
	if _, err := f.m.Create(ctx, kold.Principal(), CreateRequest{Name: "child", Workspace: "tiger", Role: "viewer"}); !errors.As(err, &denied) || denied.Reason != DeniedOldSecret {
		t.Errorf("the old secret creating a key: %v, want a DeniedError for the old secret", err)
	}
}

// TestUsageLimitedKeyTouchedOncePerInterval: a usage-limited key's request
// gets a copy of the cached key, yet its last use is queued once per
// interval, as for any other key, not on every request.
func TestUsageLimitedKeyTouchedOncePerInterval(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.LastUsedInterval = time.Hour })
	uses := int64(10)
	c := f.create(t, CreateRequest{Workspace: "tiger", Role: "viewer", Limits: Limits{Uses: &uses}})
	ctx := context.Background()
	pending := func() int {
		f.m.lastUsed.mu.Lock()
		defer f.m.lastUsed.mu.Unlock()
		n := len(f.m.lastUsed.pending)
		clear(f.m.lastUsed.pending)
		return n
	}
	for i, want := range []int{1, 0, 0} {
		if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
		if got := pending(); got != want {
			t.Errorf("request %d: %d last uses queued, want %d", i+1, got, want)
		}
	}
}

// TestAdmitSummaryMatchesFullChecks checks admit's fast path (the entry's
// summary, cacheEntry.live) against its full checks: for keys of every
// kind (expiring, never expiring, at MaxExpiry, revoked, disabled, the old
// secret of a grace period and the new one, with an allow-list, a rate
// limit or a usage limit), at times around each bound, the summary admits
// exactly when the full checks do, and the keys with something else to
// check never take the fast path.
func TestAdmitSummaryMatchesFullChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	t0 := f.clock.Now()
	uses := int64(1000)
	type entryCase struct {
		name string
		tok  string
		fast bool // whether the summary may admit
	}
	var cases []entryCase
	add := func(name string, fast bool, req CreateRequest) *Created {
		c := f.create(t, req)
		cases = append(cases, entryCase{name, c.Token.Reveal(), fast})
		return c
	}
	add("expiring", true, CreateRequest{Expiry: ExpireAfter(time.Hour)})
	add("never", true, CreateRequest{Expiry: NeverExpire()})
	add("max", true, CreateRequest{Expiry: ExpireAt(MaxExpiry)})
	revoked := add("revoked", false, CreateRequest{})
	disabled := add("disabled", false, CreateRequest{})
	add("allow-list", false, CreateRequest{Limits: Limits{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	add("rate", false, CreateRequest{Limits: Limits{Rate: RateLimit{Requests: 1_000_000_000, Window: time.Hour}}})
	add("uses", false, CreateRequest{Limits: Limits{Uses: &uses}})
	old := add("old secret", true, CreateRequest{Expiry: ExpireAfter(2 * time.Hour)})
	regen, err := f.m.Regenerate(ctx, System(), old.Key.ID, RegenerateRequest{Expiry: ExpireAfter(3 * time.Hour), GracePeriod: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, entryCase{"new secret", regen.Token.Reveal(), true})
	if _, err := f.m.Revoke(ctx, System(), revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Disable(ctx, System(), disabled.Key.ID); err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	for _, d := range []time.Duration{0, time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 30 * 24 * time.Hour} {
		times = append(times, t0.Add(d-1), t0.Add(d), t0.Add(d+1))
	}
	times = append(times, time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, c := range cases {
		_, verr := f.m.Verify(ctx, c.tok)
		d := digestOf(c.tok)
		e, ok := f.m.cache.get(&d, t0.UnixNano())
		if !ok {
			t.Fatalf("%s: not cached after Verify (%v)", c.name, verr)
		}
		if fast := e.live != math.MinInt64; fast != c.fast {
			t.Fatalf("%s: summary admits %v, want %v", c.name, fast, c.fast)
		}
		for _, now := range times {
			full := *e
			full.live = math.MinInt64
			wantKey, wantReason, wantErr := f.m.admit(ctx, &full, now, netip.Addr{}, nil)
			gotKey, gotReason, gotErr := f.m.admit(ctx, e, now, netip.Addr{}, nil)
			// A usage-limited key is returned as a copy per request.
			sameKey := gotKey == wantKey || gotKey != nil && wantKey != nil && !c.fast && gotKey.ID == wantKey.ID
			if !sameKey || gotReason != wantReason || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("%s at %v: summary gives (%p, %q, %v), full checks (%p, %q, %v)",
					c.name, now, gotKey, gotReason, gotErr, wantKey, wantReason, wantErr)
			}
		}
	}
}

// TestSummaryFollowsChanges checks that a cached key's summary follows
// every change made to it: a key verified (and cached) is refused at once
// once revoked or disabled, and at its new expiry once that is changed.
func TestSummaryFollowsChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	verify := func(tok string, want error) {
		t.Helper()
		if _, err := f.m.Verify(ctx, tok); !errors.Is(err, want) {
			t.Fatalf("Verify: %v, want %v", err, want)
		}
	}
	var keys []*Created
	for range 3 {
		c := f.create(t, CreateRequest{Expiry: NeverExpire()})
		verify(c.Token.Reveal(), nil)
		verify(c.Token.Reveal(), nil) // a hit, through the summary
		keys = append(keys, c)
	}
	if _, err := f.m.Revoke(ctx, System(), keys[0].Key.ID); err != nil {
		t.Fatal(err)
	}
	verify(keys[0].Token.Reveal(), ErrRevoked)
	if _, err := f.m.Disable(ctx, System(), keys[1].Key.ID); err != nil {
		t.Fatal(err)
	}
	verify(keys[1].Token.Reveal(), ErrDisabled)
	if _, err := f.m.Enable(ctx, System(), keys[1].Key.ID); err != nil {
		t.Fatal(err)
	}
	verify(keys[1].Token.Reveal(), nil)
	expiry := ExpireAfter(time.Minute)
	if _, err := f.m.Update(ctx, System(), keys[2].Key.ID, UpdateRequest{Expiry: &expiry}); err != nil {
		t.Fatal(err)
	}
	verify(keys[2].Token.Reveal(), nil)
	f.clock.Advance(time.Minute - 1)
	verify(keys[2].Token.Reveal(), nil)
	f.clock.Advance(1)
	verify(keys[2].Token.Reveal(), ErrExpired)
}

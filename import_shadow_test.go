package keygate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/apikey"
)

// shadowOf imports, by System, a key by the SHA-256 of tok alone, with
// billing:write in workspace tiger, and returns its id. Nothing at import
// can tell that tok is another key's secret: its hash needs the token.
func shadowOf(t *testing.T, m *Manager, name string, tok apikey.Token) uuid.UUID {
	t.Helper()
	row := shaRow(name, tok)
	row.Role, row.Scopes = "", []string{"billing:write"}
	res := mustImport(t, m, []ImportRequest{row}, ImportCreated)
	return res[0].Key.ID
}

// TestImportSHA256ShadowNeverVerifies (issue 16, Medium 1): a SHA-256 row
// of a token another key holds (a native key, or one imported by
// plaintext) makes a second key, a shadow. While the original lives, the
// token finds the original first, and the shadow's permissions never
// apply; once the original's secret is retired (regenerated, revoked and
// deleted, or revoked by a leak report and deleted), the token must not
// verify through the shadow, which is revoked when it is found.
func TestImportSHA256ShadowNeverVerifies(t *testing.T) {
	ctx := context.Background()
	newF := func(t *testing.T) *fixture {
		return newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike; c.ImportedSHA256 = true })
	}
	billing := mustPerm(t, "billing:write")
	// original returns a native key of role viewer in tiger (no
	// billing:write), or one imported by plaintext.
	original := func(t *testing.T, f *fixture, imported bool) (uuid.UUID, apikey.Token) {
		t.Helper()
		if imported {
			tok := foreignToken(t, 77)
			row := importRow("original", tok)
			row.Scopes = nil
			res := mustImport(t, f.m, []ImportRequest{row}, ImportCreated)
			return res[0].Key.ID, tok
		}
		c := f.create(t, CreateRequest{Name: "original", Workspace: "tiger", Role: "viewer"})
		return c.Key.ID, c.Token
	}
	retirements := map[string]func(t *testing.T, f *fixture, id uuid.UUID, tok apikey.Token){
		"regenerated": func(t *testing.T, f *fixture, id uuid.UUID, _ apikey.Token) {
			if _, err := f.m.Regenerate(ctx, System(), id, RegenerateRequest{Expiry: ExpireAfterDays(30)}); err != nil {
				t.Fatal(err)
			}
		},
		"revoked and deleted": func(t *testing.T, f *fixture, id uuid.UUID, _ apikey.Token) {
			if _, err := f.m.Revoke(ctx, System(), id); err != nil {
				t.Fatal(err)
			}
			if err := f.m.Delete(ctx, System(), id); err != nil {
				t.Fatal(err)
			}
		},
		"regenerated after a grace period": func(t *testing.T, f *fixture, id uuid.UUID, tok apikey.Token) {
			if _, err := f.m.Regenerate(ctx, System(), id, RegenerateRequest{Expiry: ExpireAfterDays(30), GracePeriod: time.Hour}); err != nil {
				t.Fatal(err)
			}
			if k, err := f.m.Verify(ctx, tok.Reveal()); err != nil || k.ID != id {
				t.Fatalf("during the grace period: %v, %v; want the original", k, err)
			}
			f.clock.Advance(2 * time.Hour)
			if _, err := f.m.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrInvalid) {
				t.Fatalf("after the grace period: %v, want ErrInvalid", err)
			}
			if _, err := f.m.Regenerate(ctx, System(), id, RegenerateRequest{Expiry: ExpireAfterDays(30)}); err != nil {
				t.Fatal(err)
			}
		},
		"leaked, revoked and deleted": func(t *testing.T, f *fixture, id uuid.UUID, tok apikey.Token) {
			out, err := f.m.HandleLeak(ctx, Leak{Token: tok.Reveal(), Reporter: "github", URL: "https://example.com/leak"}, true)
			if tok.Hint()[:3] == "kg_" && (err != nil || out != LeakRevoked) {
				t.Fatalf("HandleLeak = %v, %v; want the original revoked", out, err)
			}
			if _, err := f.m.Revoke(ctx, System(), id); err != nil { // a foreign token is no leak of ours
				t.Fatal(err)
			}
			if _, err := f.m.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrRevoked) {
				t.Fatalf("after the leak report: %v, want ErrRevoked (the original)", err)
			}
			if err := f.m.Delete(ctx, System(), id); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, retire := range retirements {
		for _, imported := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/native", true: "/imported"}[imported], func(t *testing.T) {
				f := newF(t)
				id, tok := original(t, f, imported)
				shadow := shadowOf(t, f.m, "shadow", tok)
				// While the original lives, the token is the original's, on
				// this instance (cached or not) and on another.
				other, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, Auditor: &recorder{}, Now: f.clock.Now,
					ImportedTokens: stripeLike, ImportedSHA256: true, LastUsedInterval: -1, CacheTTL: -1})
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close(ctx)
				for _, m := range []*Manager{f.m, f.m, other} {
					k, err := m.Verify(ctx, tok.Reveal())
					if err != nil || k.ID != id || m.Authorize(k, billing, "tiger") == nil {
						t.Fatalf("while the original lives: %v, %v; want the original, without the shadow's billing:write", k, err)
					}
				}
				retire(t, f, id, tok)
				for _, m := range []*Manager{f.m, other, f.m} {
					if k, err := m.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrInvalid) {
						t.Fatalf("the retired token verifies through the shadow: %v, %v", k, err)
					}
				}
				rec, err := f.store.Get(ctx, shadow)
				if err != nil || rec.RevokedAt.IsZero() {
					t.Fatalf("the shadow after its token was found retired: revoked at %v, %v", rec.RevokedAt, err)
				}
				revoked := 0
				f.audit.mu.Lock()
				for _, e := range f.audit.events {
					if e.Type == EventRevoked && e.KeyID == shadow && e.Reason == "shadow_of_retired_secret" && e.Actor == "keygate" {
						revoked++
					}
				}
				f.audit.mu.Unlock()
				if revoked != 1 {
					t.Errorf("%d audit events of the shadow's revocation with its reason, want 1", revoked)
				}
				// Its row sent again names the revoked shadow; the token's
				// own row is retired. Neither makes a key.
				res := mustImport(t, f.m, []ImportRequest{shaRow("shadow-again", tok), importRow("plain-again", tok)}, ImportDuplicate, ImportFailed)
				if res[0].Key.ID != shadow || res[0].Key.RevokedAt.IsZero() || !errors.Is(res[1].Err, ErrRetired) {
					t.Errorf("rows of the retired token: %+v", res)
				}
			})
		}
	}
}

// TestShadowCheckOnlyOnDigestLookups: the check for shadows costs the
// verification path nothing but on a store lookup that finds a key by its
// SHA-256: once in a genuine import's life (its first use re-hashes it),
// never for other keys, cached or not.
func TestShadowCheckOnlyOnDigestLookups(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike; c.ImportedSHA256 = true; c.CacheTTL = -1 })
	native := f.create(t, CreateRequest{})
	imported := foreignToken(t, 88)
	shadowOf(t, f.m, "genuine", imported)
	before := f.store.retiredChecks.Load() // the import's own check
	for range 3 {
		for _, tok := range []apikey.Token{native.Token, imported} {
			if _, err := f.m.Verify(ctx, tok.Reveal()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := f.store.retiredChecks.Load() - before; n != 1 {
		t.Fatalf("%d checks of the tombstones in 6 uncached verifications, want 1 (the import's first use)", n)
	}
	// A store failure during the check fails closed.
	second := foreignToken(t, 89)
	shadowOf(t, f.m, "second", second)
	f.store.failRetiredCheck.Store(true)
	if _, err := f.m.Verify(ctx, second.Reveal()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify with the tombstones unreadable: %v, want ErrUnavailable", err)
	}
}

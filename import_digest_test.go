package keygate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store"
)

// storedBytes returns every byte string a record holds that could stand
// for its token: its hashes.
func storedBytes(rec *store.Key) [][]byte { return [][]byte{rec.Hash, rec.PrevHash} }

// TestImportSHA256StoresNoPlainDigest (issue 16, Low 10): a key imported
// by SHA-256 is stored as the digest HMAC'd under the pepper, never as
// the plain digest, before and after its first use; a key an earlier
// version stored by its plain digest still verifies, and loses the plain
// digest at its first use.
func TestImportSHA256StoresNoPlainDigest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike; c.ImportedSHA256 = true })
	tok := foreignToken(t, 21)
	plain := sha256.Sum256([]byte(tok.Reveal()))
	row := ImportRequest{CreateRequest: importRow("hashed", apikey.Token{}).CreateRequest, SHA256: hex.EncodeToString(plain[:])}
	res, err := f.m.Import(ctx, System(), []ImportRequest{row})
	if err != nil || res[0].Status != ImportCreated {
		t.Fatalf("Import = %+v, %v", res, err)
	}
	id := res[0].Key.ID
	marker, err := f.cfg.Hasher.HashDigestWith("p1", plain[:])
	if err != nil {
		t.Fatal(err)
	}
	noPlainDigest := func(when string, digest []byte) *store.Key {
		t.Helper()
		rec, err := f.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range storedBytes(rec) {
			if len(b) > 0 && bytes.Contains(b, digest) {
				t.Fatalf("%s: the plain SHA-256 of the token is stored (pepper %q, previous %q)", when, rec.PepperID, rec.PrevPepperID)
			}
		}
		return rec
	}
	rec := noPlainDigest("after import", plain[:])
	if rec.PepperID != "sha256:p1" || !apikey.Equal(rec.Hash, marker) {
		t.Fatalf("stored under %q, want the digest HMAC'd under sha256:p1", rec.PepperID)
	}
	if k, err := f.m.Verify(ctx, tok.Reveal()); err != nil || k.ID != id {
		t.Fatalf("Verify = %v, %v", k, err)
	}
	rec = noPlainDigest("after first use", plain[:])
	if rec.PepperID != "p1" || rec.PrevPepperID != "sha256:p1" || !apikey.Equal(rec.PrevHash, marker) {
		t.Fatalf("after first use: pepper %q, previous %q (the peppered digest, kept so that the row stays a duplicate)", rec.PepperID, rec.PrevPepperID)
	}
	if r, err := f.m.Import(ctx, System(), []ImportRequest{row}); err != nil || r[0].Status != ImportDuplicate {
		t.Fatalf("the row again after first use: %+v, %v", r, err)
	}

	// Keys stored by earlier versions, by their plain digest under
	// "sha256": one never used, one used (so holding the plain digest as
	// its spent previous secret).
	legacy := func(n int, used bool) (apikey.Token, [32]byte, uuid.UUID) {
		t.Helper()
		tok := foreignToken(t, n)
		sum := sha256.Sum256([]byte(tok.Reveal()))
		now := f.clock.Now()
		rec := &store.Key{ID: uuid.Must(uuid.NewV7()), Name: "legacy-" + tok.Hint(), Workspace: "tiger", Role: "viewer",
			Hash: sum[:], PepperID: apikey.SHA256PepperID, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
		if used {
			rec.Hash, rec.PepperID = f.cfg.Hasher.Hash(tok)
			rec.PrevHash, rec.PrevPepperID, rec.PrevExpiresAt = sum[:], apikey.SHA256PepperID, now
		}
		if err := f.store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return tok, sum, rec.ID
	}
	for i, used := range []bool{false, true} {
		tok, sum, lid := legacy(22+i, used)
		id = lid
		if k, err := f.m.Verify(ctx, tok.Reveal()); err != nil || k.ID != lid {
			t.Fatalf("legacy key (used %v): Verify = %v, %v", used, k, err)
		}
		rec := noPlainDigest("a legacy key after its first use here", sum[:])
		want, _ := f.cfg.Hasher.HashDigestWith("p1", sum[:])
		if rec.PepperID != "p1" || rec.PrevPepperID != "sha256:p1" || !apikey.Equal(rec.PrevHash, want) {
			t.Fatalf("legacy key (used %v) after a use: pepper %q, previous %q", used, rec.PepperID, rec.PrevPepperID)
		}
		legacyRow := ImportRequest{CreateRequest: importRow("legacy-again-"+tok.Hint(), apikey.Token{}).CreateRequest, SHA256: hex.EncodeToString(sum[:])}
		if r, err := f.m.Import(ctx, System(), []ImportRequest{legacyRow}); err != nil || r[0].Status != ImportDuplicate || r[0].Key.ID != lid {
			t.Fatalf("legacy key's row again: %+v, %v", r, err)
		}
	}
}

// TestUnkeyedManagerImportsSHA256 checks that a Manager hashing with
// apikey.NewSHA256Hasher, unkeyed by the user's choice, stores a SHA-256
// row as the digest (which is its tokens' own hash) and verifies it.
func TestUnkeyedManagerImportsSHA256(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.Hasher = apikey.NewSHA256Hasher(); c.ImportedTokens = stripeLike })
	tok := foreignToken(t, 31)
	sum := sha256.Sum256([]byte(tok.Reveal()))
	res, err := f.m.Import(ctx, System(), []ImportRequest{{CreateRequest: importRow("u", apikey.Token{}).CreateRequest, SHA256: hex.EncodeToString(sum[:])}})
	if err != nil || res[0].Status != ImportCreated || res[0].Key.PepperID != apikey.SHA256PepperID || !bytes.Equal(res[0].Key.Hash, sum[:]) {
		t.Fatalf("Import = %+v, %v", res, err)
	}
	if k, err := f.m.Verify(ctx, tok.Reveal()); err != nil || k.ID != res[0].Key.ID {
		t.Fatalf("Verify = %v, %v", k, err)
	}
	if r, _ := f.m.Import(ctx, System(), []ImportRequest{importRow("u-plain", tok)}); r[0].Status != ImportDuplicate {
		t.Fatalf("its plaintext: %+v", r[0])
	}
}

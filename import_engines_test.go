package keygate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
)

// TestImportOnEveryEngine imports keys by plaintext and by SHA-256 on each
// storage engine, verifies them (re-hashing the SHA-256 one), and imports
// the same batch again from several goroutines at once: nothing is stored
// twice.
func TestImportOnEveryEngine(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t)
			cfg := keygate.Config{Store: st, Hasher: hasher(t, "p1"), Auditor: nopAuditor{}, LastUsedInterval: -1,
				ImportedTokens: func(t string) bool { return strings.HasPrefix(t, "sk_live_") }, ImportedSHA256: true}
			m, err := keygate.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			var rows []keygate.ImportRequest
			var tokens []string
			for i := range 6 {
				tok, err := apikey.ParseImported(fmt.Sprintf("sk_live_%dxYzAbCdEfGhIjKlMnOpQrSt", i))
				if err != nil {
					t.Fatal(err)
				}
				row := keygate.ImportRequest{CreateRequest: keygate.CreateRequest{
					Name: fmt.Sprintf("legacy-%d", i), Workspace: "tiger", Scopes: []string{"cluster:read"}, Expiry: keygate.ExpireAfterDays(90)}}
				if i%2 == 0 {
					row.Token = tok
				} else {
					sum := sha256.Sum256([]byte(tok.Reveal()))
					row.SHA256 = hex.EncodeToString(sum[:])
				}
				rows = append(rows, row)
				tokens = append(tokens, tok.Reveal())
			}
			res, err := m.Import(ctx, keygate.System(), rows)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Status != keygate.ImportCreated {
					t.Fatalf("row %d: %+v", i, r)
				}
				// A SHA-256 row is stored peppered, never as its digest.
				if rows[i].SHA256 != "" {
					rec, err := st.Get(ctx, r.Key.ID)
					if err != nil {
						t.Fatal(err)
					}
					sum, _ := hex.DecodeString(rows[i].SHA256)
					if rec.PepperID != "sha256:p1" || bytes.Equal(rec.Hash, sum) {
						t.Fatalf("row %d stored under %q, plain digest %v", i, rec.PepperID, bytes.Equal(rec.Hash, sum))
					}
				}
			}
			// The same batch from four callers at once: all duplicates.
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					res, err := m.Import(ctx, keygate.System(), rows)
					if err != nil {
						t.Error(err)
						return
					}
					for i, r := range res {
						if r.Status != keygate.ImportDuplicate {
							t.Errorf("again, row %d: %+v", i, r)
						}
					}
				})
			}
			wg.Wait()
			for i, tok := range tokens {
				k, err := m.Verify(ctx, tok)
				if err != nil || k.ID != res[i].Key.ID {
					t.Fatalf("Verify(row %d) = %v, %v", i, k, err)
				}
				rec, err := st.Get(ctx, k.ID)
				if err != nil {
					t.Fatal(err)
				}
				if rec.PepperID != "p1" {
					t.Fatalf("row %d after its first use: pepper %q", i, rec.PepperID)
				}
			}
			// Used now, and so no longer stored under their SHA-256: still
			// duplicates.
			again, err := m.Import(ctx, keygate.System(), rows)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range again {
				if r.Status != keygate.ImportDuplicate {
					t.Errorf("after first use, row %d: %+v", i, r)
				}
			}
			page, err := m.List(ctx, keygate.System(), keygate.ListRequest{})
			if err != nil || len(page.Keys) != len(rows) {
				t.Fatalf("List: %d keys, %v", len(page.Keys), err)
			}
		})
	}
}

// TestImportRetiredOnEveryEngine (issue 16, Medium 2): on each storage
// engine, a batch sent again after some of its keys were regenerated or
// deleted brings none of their secrets back, through the Manager that
// retired them or another sharing the store.
func TestImportRetiredOnEveryEngine(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t)
			newManager := func() *keygate.Manager {
				m, err := keygate.New(keygate.Config{Store: st, Hasher: hasher(t, "p1"), Auditor: nopAuditor{}, LastUsedInterval: -1,
					ImportedTokens: func(t string) bool { return strings.HasPrefix(t, "sk_live_") }, ImportedSHA256: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close(ctx) })
				return m
			}
			m := newManager()
			var tokens []string
			rows := func(round string) []keygate.ImportRequest {
				var out []keygate.ImportRequest
				for i, tok := range tokens {
					row := keygate.ImportRequest{CreateRequest: keygate.CreateRequest{
						Name: fmt.Sprintf("legacy-%d%s", i, round), Workspace: "tiger", Scopes: []string{"cluster:read"}, Expiry: keygate.ExpireAfterDays(90)}}
					parsed, err := apikey.ParseImported(tok)
					if err != nil {
						t.Fatal(err)
					}
					if i%2 == 0 {
						row.Token = parsed
					} else {
						sum := sha256.Sum256([]byte(tok))
						row.SHA256 = hex.EncodeToString(sum[:])
					}
					out = append(out, row)
				}
				return out
			}
			for i := range 4 {
				tokens = append(tokens, fmt.Sprintf("sk_live_%dRetiReDxYzAbCdEfGhIjKl", i))
			}
			res, err := m.Import(ctx, keygate.System(), rows(""))
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Status != keygate.ImportCreated {
					t.Fatalf("row %d: %+v", i, r)
				}
			}
			if _, err := m.Verify(ctx, tokens[3]); err != nil { // re-hashed: its digest becomes its previous secret
				t.Fatal(err)
			}
			for i, r := range res {
				id := r.Key.ID
				if i < 2 {
					if _, err := m.Regenerate(ctx, keygate.System(), id, keygate.RegenerateRequest{Expiry: keygate.ExpireAfterDays(30)}); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if _, err := m.Revoke(ctx, keygate.System(), id); err != nil {
					t.Fatal(err)
				}
				if err := m.Delete(ctx, keygate.System(), id); err != nil {
					t.Fatal(err)
				}
			}
			for _, mm := range []*keygate.Manager{m, newManager()} {
				again, err := mm.Import(ctx, keygate.System(), rows("-again"))
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range again {
					if r.Status != keygate.ImportFailed || !errors.Is(r.Err, keygate.ErrRetired) {
						t.Errorf("row %d sent again after its secret was retired: %+v", i, r)
					}
				}
				for i, tok := range tokens {
					if _, err := mm.Verify(ctx, tok); !errors.Is(err, keygate.ErrInvalid) {
						t.Errorf("retired token %d: %v, want ErrInvalid", i, err)
					}
				}
			}
		})
	}
}

// TestImportShadowOnEveryEngine (issue 16, Medium 1): on each storage
// engine, a key imported by the SHA-256 of another key's token never
// verifies: not while the original lives (the original is found first),
// nor once the original is regenerated or deleted (the shadow is then
// revoked), on the instance that retired it or another.
func TestImportShadowOnEveryEngine(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t)
			newManager := func() *keygate.Manager {
				m, err := keygate.New(keygate.Config{Store: st, Hasher: hasher(t, "p1"), Auditor: nopAuditor{}, LastUsedInterval: -1, ImportedSHA256: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close(ctx) })
				return m
			}
			m, other := newManager(), newManager()
			billing := mustParse(t, "billing:write")
			for _, deleted := range []bool{false, true} {
				original, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: fmt.Sprint("original-", deleted), Workspace: "tiger", Role: "viewer", Expiry: keygate.ExpireAfterDays(30)})
				if err != nil {
					t.Fatal(err)
				}
				tok := original.Token.Reveal()
				sum := sha256.Sum256([]byte(tok))
				res, err := m.Import(ctx, keygate.System(), []keygate.ImportRequest{{CreateRequest: keygate.CreateRequest{
					Name: fmt.Sprint("shadow-", deleted), Workspace: "tiger", Scopes: []string{"billing:write"}, Expiry: keygate.ExpireAfterDays(30)},
					SHA256: hex.EncodeToString(sum[:])}})
				if err != nil || res[0].Status != keygate.ImportCreated {
					t.Fatalf("Import = %+v, %v", res, err)
				}
				shadow := res[0].Key.ID
				k, err := other.Verify(ctx, tok)
				if err != nil || k.ID != original.Key.ID || k.Allows(billing, "tiger") {
					t.Fatalf("while the original lives: %v, %v; want the original, without the shadow's permissions", k, err)
				}
				if deleted {
					if _, err := m.Revoke(ctx, keygate.System(), original.Key.ID); err != nil {
						t.Fatal(err)
					}
					if err := m.Delete(ctx, keygate.System(), original.Key.ID); err != nil {
						t.Fatal(err)
					}
				} else if _, err := m.Regenerate(ctx, keygate.System(), original.Key.ID, keygate.RegenerateRequest{Expiry: keygate.ExpireAfterDays(30)}); err != nil {
					t.Fatal(err)
				}
				for _, mm := range []*keygate.Manager{newManager(), m} { // a fresh cache each
					if k, err := mm.Verify(ctx, tok); !errors.Is(err, keygate.ErrInvalid) {
						t.Fatalf("the retired token (deleted %v) verifies through the shadow: %v, %v", deleted, k, err)
					}
				}
				if rec, err := st.Get(ctx, shadow); err != nil || rec.RevokedAt.IsZero() {
					t.Fatalf("the shadow: revoked at %v, %v; want revoked", rec.RevokedAt, err)
				}
			}
		})
	}
}

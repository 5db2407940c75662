package keygate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// shaRow returns an import row of tok by its SHA-256 alone.
func shaRow(name string, tok apikey.Token) ImportRequest {
	return ImportRequest{CreateRequest: importRow(name, apikey.Token{}).CreateRequest, SHA256: sha256Hex(tok)}
}

// mustImport imports rows by System and returns the results, wanting
// each row's status.
func mustImport(t *testing.T, m *Manager, rows []ImportRequest, want ...ImportStatus) []ImportResult {
	t.Helper()
	res, err := m.Import(context.Background(), System(), rows)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	for i, r := range res {
		if i < len(want) && r.Status != want[i] {
			t.Fatalf("row %d (%s): %+v, want %s", i, rows[i].Name, r, want[i])
		}
	}
	return res
}

// TestImportResentBatchKeepsRetiredSecretsRetired (issue 16, Medium 2): the
// docs say a batch cut short may be sent again whole; a row whose secret
// has since been retired (regenerated with no grace, or revoked then
// deleted) must fail with ErrRetired, not come back as a working key.
func TestImportResentBatchKeepsRetiredSecretsRetired(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike; c.ImportedSHA256 = true })
	toks := make([]apikey.Token, 6)
	for i := range toks {
		toks[i] = foreignToken(t, 40+i)
	}
	batch := []ImportRequest{
		importRow("plain-regenerated", toks[0]),
		importRow("plain-deleted", toks[1]),
		shaRow("sha-unused-regenerated", toks[2]),
		shaRow("sha-used-deleted", toks[3]),
		importRow("plain-grace", toks[4]),
		shaRow("sha-used-regenerated", toks[5]),
	}
	created := ImportCreated
	res := mustImport(t, f.m, batch, created, created, created, created, created, created)
	id := func(i int) (_ [16]byte) { return res[i].Key.ID }
	for _, i := range []int{3, 5} { // first use: re-hashed under the pepper
		if _, err := f.m.Verify(ctx, toks[i].Reveal()); err != nil {
			t.Fatalf("Verify(row %d): %v", i, err)
		}
	}
	regenerate := func(i int, grace time.Duration) {
		t.Helper()
		if _, err := f.m.Regenerate(ctx, System(), id(i), RegenerateRequest{Expiry: ExpireAfterDays(30), GracePeriod: grace}); err != nil {
			t.Fatalf("Regenerate(row %d): %v", i, err)
		}
	}
	remove := func(i int) {
		t.Helper()
		if _, err := f.m.Revoke(ctx, System(), id(i)); err != nil {
			t.Fatal(err)
		}
		if err := f.m.Delete(ctx, System(), id(i)); err != nil {
			t.Fatal(err)
		}
	}
	regenerate(0, 0)
	remove(1)
	regenerate(2, 0)
	remove(3)
	regenerate(4, time.Hour)
	regenerate(5, 0)
	// A native key regenerated: its old token, as a plaintext row.
	native := f.create(t, CreateRequest{Name: "native"})
	regenerate2 := func() {
		if _, err := f.m.Regenerate(ctx, System(), native.Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(30)}); err != nil {
			t.Fatal(err)
		}
	}
	regenerate2()

	failed, dup := ImportFailed, ImportDuplicate
	again := append(batch,
		importRow("native-old-token", native.Token),
		importRow("sha-unused-regenerated-plain", toks[2]), // the plaintext of a retired SHA-256 row
	)
	res2 := mustImport(t, f.m, again, failed, failed, failed, failed, dup, failed, failed, failed)
	for i, r := range res2 {
		if r.Status == ImportFailed && (!errors.Is(r.Err, ErrRetired) || !errors.Is(r.Err, ErrInvalidRequest) || r.Key != nil) {
			t.Errorf("row %d (%s): %v, want ErrRetired", i, again[i].Name, r.Err)
		}
		if r.Err != nil && strings.Contains(r.Err.Error(), "AbCdEf") {
			t.Errorf("row %d: the error quotes the token: %v", i, r.Err)
		}
	}
	for i, tok := range append(toks, native.Token) {
		_, err := f.m.Verify(ctx, tok.Reveal())
		switch {
		case i == 4 && err != nil:
			t.Errorf("the old secret of a grace period: %v, want it to verify until the grace ends", err)
		case i != 4 && !errors.Is(err, ErrInvalid):
			t.Errorf("retired token %d: Verify = %v, want ErrInvalid", i, err)
		}
	}
	// The grace period's secret retires when the key is regenerated again.
	regenerate(4, 0)
	mustImport(t, f.m, batch[4:5], failed)
	page, err := f.m.List(ctx, System(), ListRequest{})
	if err != nil || len(page.Keys) != 5 {
		t.Fatalf("List: %d keys, %v; want the 4 left of the batch and the native one", len(page.Keys), err)
	}
}

// TestImportRacingRegenerate: an import of a key's token running while the
// key is regenerated without grace either finds the key (duplicate) or
// finds its secret retired; it never creates a key for the old secret.
func TestImportRacingRegenerate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike; c.ImportedSHA256 = true })
	for round := range 40 {
		tok := foreignToken(t, 1000+round)
		res := mustImport(t, f.m, []ImportRequest{importRow(fmt.Sprint("k", round), tok)}, ImportCreated)
		var wg sync.WaitGroup
		var again []ImportResult
		wg.Go(func() {
			if _, err := f.m.Regenerate(ctx, System(), res[0].Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(30)}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			again = mustImport(t, f.m, []ImportRequest{importRow(fmt.Sprint("k", round, "-again"), tok)})
		})
		wg.Wait()
		switch r := again[0]; {
		case r.Status == ImportDuplicate:
		case r.Status == ImportFailed && errors.Is(r.Err, ErrRetired):
		default:
			t.Fatalf("round %d: import racing a regeneration: %+v", round, r)
		}
		if _, err := f.m.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrInvalid) {
			t.Fatalf("round %d: the regenerated secret: %v, want ErrInvalid", round, err)
		}
	}
}

// TestRetireFailure: when the tombstone cannot be written, a regeneration
// or a deletion fails with ErrUnavailable and changes nothing (the secret
// is not retired); a revocation, a security action, goes ahead.
func TestRetireFailure(t *testing.T) {
	ctx := context.Background()
	var logged strings.Builder
	f := newFixture(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logged, nil)) })
	c := f.create(t, CreateRequest{})
	r, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: NeverExpire(), GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.store.failRetire.Store(true)
	if _, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: NeverExpire()}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Regenerate without tombstones: %v, want ErrUnavailable", err)
	}
	if err := f.m.Delete(ctx, System(), c.Key.ID); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Delete without tombstones: %v, want ErrUnavailable", err)
	}
	for _, tok := range []apikey.Token{c.Token, r.Token} {
		if k, err := f.m.Verify(ctx, tok.Reveal()); err != nil || k.ID != c.Key.ID {
			t.Fatalf("the key after the failed calls: %v, %v; want it unchanged, in its grace period", k, err)
		}
	}
	if _, err := f.m.Revoke(ctx, System(), c.Key.ID); err != nil {
		t.Fatalf("Revoke without tombstones: %v, want it to go ahead", err)
	}
	if _, err := f.m.Verify(ctx, r.Token.Reveal()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after Revoke: %v", err)
	}
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("the old secret of the grace period after Revoke: %v", err)
	}
	if !strings.Contains(logged.String(), "tombstone") {
		t.Errorf("the failed tombstone of a revocation was not logged: %q", logged.String())
	}

	// The same through store.Revoker, the atomic revocation.
	logged.Reset()
	m, err := New(Config{Store: failingRetirer{memory.New()}, Hasher: testHasher(t), Auditor: &recorder{},
		Logger: slog.New(slog.NewTextHandler(&logged, nil)), LastUsedInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	c, err = m.Create(ctx, System(), CreateRequest{Name: "k", Role: "admin", Expiry: NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, System(), c.Key.ID); err != nil {
		t.Fatalf("Revoke through store.Revoker without tombstones: %v, want it to go ahead", err)
	}
	if _, err := m.Verify(ctx, c.Token.Reveal()); !errors.Is(err, ErrRevoked) || !strings.Contains(logged.String(), "tombstone") {
		t.Fatalf("after Revoke: %v (logged %q)", err, logged.String())
	}
}

// failingRetirer is a memory store whose tombstones cannot be written.
type failingRetirer struct{ *memory.Store }

func (failingRetirer) Retire(context.Context, []store.RetiredHash) error { return errStoreDown }

// bareStore is a store with none of the optional capabilities.
type bareStore struct{ store.Store }

// TestImportNeedsRetirer: a Manager whose store keeps no tombstones
// refuses to import (it could bring retired secrets back), and works
// otherwise.
func TestImportNeedsRetirer(t *testing.T) {
	ctx := context.Background()
	m, err := New(Config{Store: bareStore{memory.New()}, Hasher: testHasher(t), Auditor: &recorder{}, ImportedTokens: stripeLike, LastUsedInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	if _, err := m.Import(ctx, System(), []ImportRequest{importRow("a", foreignToken(t, 1))}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Import on a store without store.Retirer: %v, want ErrUnsupported", err)
	}
	c, err := m.Create(ctx, System(), CreateRequest{Name: "k", Role: "admin", Expiry: NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: NeverExpire()}); err != nil {
		t.Fatalf("Regenerate: %v", err)
	}
	if err := m.Delete(ctx, System(), c.Key.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

// TestLeakedGraceSecretIsRetired: the old secret of a grace period that a
// leak report ends is retired like any other: never imported again.
func TestLeakedGraceSecretIsRetired(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.create(t, CreateRequest{})
	if _, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(30), GracePeriod: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if out, err := f.m.HandleLeak(ctx, Leak{Token: c.Token.Reveal(), Reporter: "github"}, true); err != nil || out != LeakRevoked {
		t.Fatalf("HandleLeak = %v, %v", out, err)
	}
	res := mustImport(t, f.m, []ImportRequest{importRow("leaked", c.Token)}, ImportFailed)
	if !errors.Is(res[0].Err, ErrRetired) {
		t.Fatalf("the leaked old secret, imported: %v, want ErrRetired", res[0].Err)
	}
}

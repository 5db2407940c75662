package keygate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/permission"
)

// stripeLike accepts the tokens of the system imported from in these tests.
func stripeLike(t string) bool { return strings.HasPrefix(t, "sk_live_") }

// foreignToken returns a token of that system, distinct per n.
func foreignToken(t testing.TB, n int) apikey.Token {
	t.Helper()
	tok, err := apikey.ParseImported(fmt.Sprintf("sk_live_%04dAbCdEfGhIjKlMnOpQrStUv", n))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func importRow(name string, tok apikey.Token) ImportRequest {
	return ImportRequest{
		CreateRequest: CreateRequest{Name: name, Owner: "billing-team", Workspace: "tiger", Role: permission.RoleViewer,
			Scopes: []string{"billing:write"}, Expiry: ExpireAfterDays(60)},
		Token: tok,
	}
}

func sha256Hex(tok apikey.Token) string {
	sum := sha256.Sum256([]byte(tok.Reveal()))
	return hex.EncodeToString(sum[:])
}

func TestImportPlaintextVerifies(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike })
	tok := foreignToken(t, 1)
	native := f.create(t, CreateRequest{Name: "native"}).Token // a keygate token may be imported too: it exists already
	res, err := f.m.Import(ctx, System(), []ImportRequest{importRow("legacy", tok), importRow("again", native)})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != ImportCreated || res[0].Err != nil || res[0].Key == nil {
		t.Fatalf("row 0: %+v", res[0])
	}
	if res[1].Status != ImportDuplicate || res[1].Key == nil || res[1].Key.Name != "native" {
		t.Fatalf("row 1, a token already stored: %+v", res[1])
	}
	rec := res[0].Key
	if rec.PepperID != "p1" || rec.Hint != tok.Hint() || rec.Workspace != "tiger" || rec.Owner != "billing-team" {
		t.Fatalf("stored %+v", rec)
	}
	stored, err := f.store.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprintf("%#v %s", *stored, stored.Hash), tok.Reveal()[8:]) || string(stored.Hash) == tok.Reveal() {
		t.Fatal("the plaintext reached the store")
	}
	k, err := f.m.Verify(ctx, tok.Reveal())
	if err != nil {
		t.Fatalf("Verify(imported): %v", err)
	}
	if k.ID != rec.ID || f.m.Authorize(k, mustPerm(t, "billing:write"), "tiger") != nil || f.m.Authorize(k, mustPerm(t, "cluster:write"), "tiger") == nil {
		t.Fatalf("verified %v with the wrong permissions", k.ID)
	}
	// Cached now: no lookup for the next request.
	before := f.store.getByHash.Load()
	if _, err := f.m.Verify(ctx, tok.Reveal()); err != nil {
		t.Fatal(err)
	}
	if n := f.store.getByHash.Load() - before; n != 0 {
		t.Fatalf("a cached imported key was looked up %d times", n)
	}
	if got := f.audit.types(); !contains(got, EventImported) {
		t.Fatalf("audit events %v lack %s", got, EventImported)
	}
	// Expiry, revocation and the rest apply as to any key.
	if _, err := f.m.Revoke(ctx, System(), rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Verify(ctx, tok.Reveal()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify(revoked import) = %v", err)
	}
	f.clock.Advance(61 * 24 * time.Hour)
	if _, err := f.m.Verify(ctx, native.Reveal()); !errors.Is(err, ErrExpired) {
		t.Fatalf("native key after its expiry: %v", err)
	}
}

func TestImportIsIdempotent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike; c.ImportedSHA256 = true })
	plain, hashed := foreignToken(t, 1), foreignToken(t, 2)
	batch := []ImportRequest{
		importRow("a", plain),
		{CreateRequest: importRow("b", apikey.Token{}).CreateRequest, SHA256: sha256Hex(hashed), Hint: "sk_live_0002"},
		importRow("a-again", plain), // the same token twice in one batch
	}
	first, err := f.m.Import(ctx, System(), batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []ImportStatus{ImportCreated, ImportCreated, ImportDuplicate}
	for i, r := range first {
		if r.Status != want[i] {
			t.Fatalf("first run, row %d: %+v, want %s", i, r, want[i])
		}
	}
	if first[2].Key.ID != first[0].Key.ID {
		t.Fatalf("duplicate row names key %v, want %v", first[2].Key.ID, first[0].Key.ID)
	}
	// The whole batch again, as after a timeout: nothing is imported twice.
	again, err := f.m.Import(ctx, System(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if r.Status != ImportDuplicate || r.Err != nil {
			t.Fatalf("second run, row %d: %+v", i, r)
		}
	}
	// A plaintext row for a key imported by its SHA-256 is a duplicate too.
	if r, _ := f.m.Import(ctx, System(), []ImportRequest{importRow("b-plain", hashed)}); r[0].Status != ImportDuplicate || r[0].Key.ID != first[1].Key.ID {
		t.Fatalf("plaintext of a SHA-256 import: %+v", r[0])
	}
	page, err := f.m.List(ctx, System(), ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Keys) != 2 {
		t.Fatalf("%d keys stored, want 2", len(page.Keys))
	}
}

func TestImportBySHA256RehashesOnFirstUse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike; c.ImportedSHA256 = true })
	tok := foreignToken(t, 7)
	row := ImportRequest{CreateRequest: importRow("hashed", apikey.Token{}).CreateRequest, SHA256: strings.ToUpper(sha256Hex(tok))}
	res, err := f.m.Import(ctx, System(), []ImportRequest{row})
	if err != nil || res[0].Status != ImportCreated {
		t.Fatalf("Import = %+v, %v", res, err)
	}
	id := res[0].Key.ID
	if res[0].Key.PepperID != "sha256:p1" || res[0].Key.Hint != "" {
		t.Fatalf("stored under %q with hint %q", res[0].Key.PepperID, res[0].Key.Hint)
	}
	// A wrong token with the same prefix finds nothing.
	if _, err := f.m.Verify(ctx, foreignToken(t, 8).Reveal()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Verify(other token) = %v", err)
	}
	k, err := f.m.Verify(ctx, tok.Reveal())
	if err != nil || k.ID != id {
		t.Fatalf("Verify = %v, %v", k, err)
	}
	rec, err := f.store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := f.m.hasher.Hash(tok)
	if rec.PepperID != "p1" || !apikey.Equal(rec.Hash, want) || rec.Hint != tok.Hint() {
		t.Fatalf("after first use: pepper %q, hint %q, hash rehashed %v", rec.PepperID, rec.Hint, apikey.Equal(rec.Hash, want))
	}
	// Its row sent again is still a duplicate, though it is no longer
	// stored under its SHA-256; and the digest kept for that verifies
	// nothing, nor acts as an old secret.
	if again, err := f.m.Import(ctx, System(), []ImportRequest{row}); err != nil || again[0].Status != ImportDuplicate || again[0].Key.ID != id {
		t.Fatalf("SHA-256 row again after first use: %+v, %v", again, err)
	}
	if rec.PrevPepperID != "sha256:p1" || f.clock.Now().Before(rec.PrevExpiresAt) {
		t.Fatalf("the imported digest is kept as %q until %v", rec.PrevPepperID, rec.PrevExpiresAt)
	}
	if k, err := f.m.Verify(ctx, tok.Reveal()); err != nil || k.Principal().oldSecret {
		t.Fatalf("Verify after re-hash: %v, %v", k, err)
	}
	// Another instance, without the cache, finds it under the pepper.
	other, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, Auditor: &recorder{}, ImportedTokens: stripeLike, LastUsedInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if k, err := other.Verify(ctx, tok.Reveal()); err != nil || k.ID != id {
		t.Fatalf("other instance: %v, %v", k, err)
	}
}

func TestImportRefusesBadRows(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike })
	good := importRow("good", foreignToken(t, 1))
	gh, err := apikey.ParseImported("ghp_0123456789abcdefghijklmnop")
	if err != nil {
		t.Fatal(err)
	}
	expired := importRow("expired", foreignToken(t, 2))
	expired.Expiry = ExpireAt(f.clock.Now().Add(-time.Hour))
	both := importRow("both", foreignToken(t, 3))
	both.SHA256 = sha256Hex(foreignToken(t, 3))
	hinted := importRow("hinted", foreignToken(t, 4))
	hinted.Hint = "sk_live_0004"
	sameName := importRow("good", foreignToken(t, 5))
	noName := importRow("", foreignToken(t, 6))
	rows := []ImportRequest{
		good,
		importRow("other-system", gh),       // not accepted by ImportedTokens
		{CreateRequest: good.CreateRequest}, // neither token nor hash
		{CreateRequest: importRow("sha", apikey.Token{}).CreateRequest, SHA256: sha256Hex(gh)}, // ImportedSHA256 off
		expired, both, hinted, sameName, noName,
	}
	res, err := f.m.Import(ctx, System(), rows)
	if err != nil {
		t.Fatal(err)
	}
	wants := []error{nil, ErrNotImportable, ErrInvalidField, ErrNotImportable, ErrInvalidExpiry, ErrInvalidField, ErrInvalidField, ErrDuplicateName, ErrNameRequired}
	for i, w := range wants {
		r := res[i]
		switch {
		case w == nil && (r.Status != ImportCreated || r.Err != nil):
			t.Errorf("row %d: %+v, want imported", i, r)
		case w != nil && (r.Status != ImportFailed || !errors.Is(r.Err, w) || !errors.Is(r.Err, ErrInvalidRequest) || r.Key != nil):
			t.Errorf("row %d: %+v, want failed with %v", i, r, w)
		}
		if r.Err != nil && strings.Contains(r.Err.Error(), "AbCdEfGh") {
			t.Errorf("row %d: error quotes the token: %v", i, r.Err)
		}
	}
	if _, err := f.m.Import(ctx, System(), make([]ImportRequest, MaxImportBatch+1)); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("oversized batch: %v", err)
	}
	page, err := f.m.List(ctx, System(), ListRequest{})
	if err != nil || len(page.Keys) != 1 {
		t.Fatalf("stored %d keys (%v), want only the good one", len(page.Keys), err)
	}
	// A token the predicate refuses is malformed, and never looked up.
	before := f.store.getByHash.Load()
	if _, err := f.m.Verify(ctx, gh.Reveal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Verify(refused import) = %v", err)
	}
	if f.store.getByHash.Load() != before {
		t.Fatal("a token outside ImportedTokens reached the store")
	}
}

func TestImportWithoutConfigRefusesForeignTokens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	res, err := f.m.Import(ctx, System(), []ImportRequest{importRow("legacy", foreignToken(t, 1))})
	if err != nil || !errors.Is(res[0].Err, ErrNotImportable) {
		t.Fatalf("Import = %+v, %v", res, err)
	}
	if _, err := f.m.Verify(ctx, foreignToken(t, 1).Reveal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Verify(foreign) = %v", err)
	}
}

func TestImportNeverStrongerThanTheImporter(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike })
	importer := f.create(t, CreateRequest{Name: "importer", Workspace: "tiger", Scopes: []string{"apikey:manage", "billing:write"}, Expiry: ExpireAfterDays(30)})
	k, err := f.m.Verify(ctx, importer.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	by := k.Principal()
	weak := importRow("weak", foreignToken(t, 1))
	weak.Role, weak.Expiry = "", ExpireAfterDays(7)
	strong := importRow("strong", foreignToken(t, 2)) // a viewer role it does not hold
	strong.Expiry = ExpireAfterDays(7)
	long := importRow("long", foreignToken(t, 3))
	long.Role = "" // outlives the importer
	otherWS := importRow("elsewhere", foreignToken(t, 4))
	otherWS.Role, otherWS.Workspace, otherWS.Expiry = "", "lion", ExpireAfterDays(7)
	res, err := f.m.Import(ctx, by, []ImportRequest{weak, strong, long, otherWS})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != ImportCreated {
		t.Fatalf("weak row: %+v", res[0])
	}
	for i, r := range res[1:] {
		var d *DeniedError
		if r.Status != ImportFailed || !errors.As(r.Err, &d) || !errors.Is(r.Err, ErrForbidden) {
			t.Errorf("row %d: %+v, want denied", i+1, r)
		}
	}
	if _, err := f.m.Verify(ctx, foreignToken(t, 2).Reveal()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a refused row verifies: %v", err)
	}
	// One that may manage no keys anywhere is refused as a whole.
	viewer := f.create(t, CreateRequest{Name: "viewer", Workspace: "tiger", Scopes: []string{"apikey:view", "billing:write"}})
	vk, err := f.m.Verify(ctx, viewer.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	var d *DeniedError
	if _, err := f.m.Import(ctx, vk.Principal(), []ImportRequest{weak}); !errors.As(err, &d) || d.Permission != PermissionManageKeys {
		t.Fatalf("importer without apikey:manage: %v", err)
	}
	// A revoked importer imports nothing.
	if _, err := f.m.Revoke(ctx, System(), importer.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Import(ctx, by, []ImportRequest{weak}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("revoked importer: %v", err)
	}
}

func TestImportStoreDownLosesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike })
	f.store.fail.Store(true)
	rows := []ImportRequest{importRow("a", foreignToken(t, 1)), importRow("b", foreignToken(t, 2))}
	res, err := f.m.Import(ctx, System(), rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != ImportFailed || !errors.Is(r.Err, ErrUnavailable) {
			t.Fatalf("row %d with the store down: %+v", i, r)
		}
	}
	f.store.fail.Store(false)
	res, err = f.m.Import(ctx, System(), rows)
	if err != nil || res[0].Status != ImportCreated || res[1].Status != ImportCreated {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	res, err = f.m.Import(cctx, System(), []ImportRequest{importRow("c", foreignToken(t, 3))})
	if err != nil || !errors.Is(res[0].Err, ErrUnavailable) || !errors.Is(res[0].Err, context.Canceled) {
		t.Fatalf("cancelled: %+v, %v", res, err)
	}
}

func TestImportConcurrentSameToken(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.ImportedTokens = stripeLike })
	const n = 8
	results := make(chan ImportResult, n)
	for i := range n {
		go func() {
			// Different names: only the hash can collide.
			res, err := f.m.Import(ctx, System(), []ImportRequest{importRow(fmt.Sprintf("r%d", i), foreignToken(t, 1))})
			if err != nil {
				results <- ImportResult{Err: err}
				return
			}
			results <- res[0]
		}()
	}
	created := 0
	for range n {
		r := <-results
		switch r.Status {
		case ImportCreated:
			created++
		case ImportDuplicate:
		default:
			t.Errorf("concurrent import: %+v", r)
		}
	}
	if created != 1 {
		t.Fatalf("%d imports created the key, want 1", created)
	}
}

func TestImportRequestPrintsNoSecret(t *testing.T) {
	tok := foreignToken(t, 1)
	row := importRow("visible-name", tok)
	row.SHA256 = sha256Hex(tok)
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("row", "row", row)
	for _, out := range []string{fmt.Sprint(row), fmt.Sprintf("%+v", row), fmt.Sprintf("%#v", row), fmt.Sprintf("%v", &row), logged.String()} {
		if strings.Contains(out, tok.Reveal()) || strings.Contains(out, row.SHA256) || strings.Contains(out, "AbCdEf") {
			t.Fatalf("printed a secret: %s", out)
		}
		if !strings.Contains(out, "visible-name") {
			t.Fatalf("printed nothing useful: %s", out)
		}
	}
}

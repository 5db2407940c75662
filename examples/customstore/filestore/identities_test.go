package filestore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/examples/customstore/filestore"
	"github.com/keygate/keygate/store"
)

// TestNoIdentities: the file store keeps no identities (it is no
// store.IdentityStore), so a Manager over it answers identity calls, and
// a key put in an identity, with keygate.ErrUnsupported (501 unsupported
// over REST), and writes nothing; keys work as ever.
func TestNoIdentities(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl")})
	t.Cleanup(func() { mustClose(t, s) })
	if _, ok := any(s).(store.IdentityStore); ok {
		t.Fatal("the file store claims to keep identities: document and test them")
	}
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := keygate.New(keygate.Config{Store: s, Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	ctx := context.Background()
	if m.SupportsIdentities() {
		t.Error("SupportsIdentities over the file store: true")
	}
	if _, err := m.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{ExternalID: "acme"}); !errors.Is(err, keygate.ErrUnsupported) {
		t.Errorf("CreateIdentity: %v, want ErrUnsupported", err)
	}
	_, err = m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "k", Role: "admin", Expiry: keygate.NeverExpire(), IdentityID: uuid.New()})
	if !errors.Is(err, keygate.ErrUnsupported) {
		t.Errorf("Create in an identity: %v, want ErrUnsupported", err)
	}
	page, err := s.List(ctx, store.ListOptions{})
	if err != nil || len(page.Keys) != 0 {
		t.Fatalf("a refused key was stored: %v, %v", page, err)
	}
	if _, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "k", Role: "admin", Expiry: keygate.NeverExpire()}); err != nil {
		t.Errorf("Create without identity: %v", err)
	}
}

package keygate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memory"
)

// printAuditor prints the audit events of the examples below.
type printAuditor struct{}

func (printAuditor) Audit(_ context.Context, e keygate.Event) {
	fmt.Println(strings.TrimSpace(fmt.Sprint("audit: ", e.Type, " ", e.Reason, " ", e.Location)))
}

// A token found in public code is revoked at once; package secretscan
// calls HandleLeak for each token GitHub reports.
func ExampleManager_HandleLeak() {
	ctx := context.Background()
	m := newManager()
	defer m.Close(ctx)
	c, _ := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "ci", Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})

	outcome, err := m.HandleLeak(ctx, keygate.Leak{Token: c.Token.Reveal(), Reporter: "github",
		URL: "https://github.com/acme/app/blob/main/.env", Source: "content"}, true)
	fmt.Println(outcome, outcome.Real(), err)
	_, err = m.Verify(ctx, c.Token.Reveal())
	fmt.Println(errors.Is(err, keygate.ErrRevoked))
	outcome, _ = m.HandleLeak(ctx, keygate.Leak{Token: "ghp_not_one_of_ours"}, true)
	fmt.Println(outcome, outcome.Real())
	// Output:
	// revoked true <nil>
	// true
	// not_ours false
}

// Disable is a reversible stop, for a key under suspicion.
func ExampleManager_Disable() {
	ctx := context.Background()
	m := newManager()
	defer m.Close(ctx)
	c, _ := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "batch", Scopes: []string{"jobs:run"}, Expiry: keygate.NeverExpire()})

	_, _ = m.Disable(ctx, keygate.System(), c.Key.ID)
	_, err := m.Verify(ctx, c.Token.Reveal())
	fmt.Println("disabled:", errors.Is(err, keygate.ErrDisabled))
	_, _ = m.Enable(ctx, keygate.System(), c.Key.ID)
	_, err = m.Verify(ctx, c.Token.Reveal())
	fmt.Println("enabled again:", err == nil)
	// Output:
	// disabled: true
	// enabled again: true
}

// Owners are reminded before their keys expire: one key.expiring_soon
// event per key and expiry, whatever the number of instances.
func ExampleManager_NotifyExpiring() {
	ctx := context.Background()
	hasher, _ := apikey.NewHasher(apikey.Pepper{ID: "2026-11", Key: []byte("an example pepper of at least 32 bytes")})
	m, _ := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Auditor: printAuditor{}, Logger: slog.New(slog.DiscardHandler)})
	defer m.Close(ctx)
	_, _ = m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "soon", Scopes: []string{"jobs:run"}, Expiry: keygate.ExpireAfterDays(3)})
	_, _ = m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "later", Scopes: []string{"jobs:run"}, Expiry: keygate.ExpireAfterDays(90)})

	// Config.ExpiryNotice runs this by itself; here, by hand.
	n, err := m.NotifyExpiring(ctx, 7*24*time.Hour)
	fmt.Println("sent", n, err)
	n, _ = m.NotifyExpiring(ctx, 7*24*time.Hour)
	fmt.Println("sent again", n)
	// Output:
	// audit: key.created
	// audit: key.created
	// audit: key.expiring_soon
	// sent 1 <nil>
	// sent again 0
}

// A ceiling on every key's life, as GitHub enforces for organisations.
func ExampleConfig_maxLifetime() {
	ctx := context.Background()
	hasher, _ := apikey.NewHasher(apikey.Pepper{ID: "2026-11", Key: []byte("an example pepper of at least 32 bytes")})
	m, _ := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, MaxLifetime: 90 * 24 * time.Hour, Logger: slog.New(slog.DiscardHandler)})
	defer m.Close(ctx)
	_, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "forever", Scopes: []string{"jobs:run"}, Expiry: keygate.NeverExpire()})
	fmt.Println(errors.Is(err, keygate.ErrInvalidExpiry))
	_, err = m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "quarter", Scopes: []string{"jobs:run"}, Expiry: keygate.ExpireAfterDays(90)})
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}

// Keys of another system are imported without reissuing them: by their
// plaintext, or by the SHA-256 that system kept. Their holders keep
// their tokens; a batch sent twice imports nothing twice.
func ExampleManager_Import() {
	ctx := context.Background()
	hasher, _ := apikey.NewHasher(apikey.Pepper{ID: "2026-11", Key: []byte("an example pepper of at least 32 bytes")})
	m, _ := keygate.New(keygate.Config{
		Store:  memory.New(),
		Hasher: hasher,
		// The other system's tokens start with "sk_live_".
		ImportedTokens: func(t string) bool { return strings.HasPrefix(t, "sk_live_") },
		ImportedSHA256: true,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	defer m.Close(ctx)

	legacy, _ := apikey.ParseImported("sk_live_51HxYzAbCdEfGhIjKlMnOp")
	rows := []keygate.ImportRequest{
		{CreateRequest: keygate.CreateRequest{Name: "billing-export", Scopes: []string{"billing:read"}, Expiry: keygate.ExpireAfterDays(90)},
			Token: legacy},
		{CreateRequest: keygate.CreateRequest{Name: "reports", Scopes: []string{"reports:read"}, Expiry: keygate.NeverExpire()},
			// sha256("sk_live_reportsOnlyKeptTheHash")
			SHA256: "a4e607ae2311b31f805a1d915b556320a18ccdf211fa9da76192604d5eedb1f8", Hint: "sk_live_repo"},
	}
	for _, run := range []string{"first", "again"} {
		results, _ := m.Import(ctx, keygate.System(), rows)
		for _, r := range results {
			fmt.Println(run, r.Key.Name, r.Status)
		}
	}
	k, err := m.Verify(ctx, legacy.Reveal())
	fmt.Println(k.Name, err)
	// Verified by its SHA-256, then re-hashed under the pepper.
	k, err = m.Verify(ctx, "sk_live_reportsOnlyKeptTheHash")
	fmt.Println(k.Name, k.PepperID, err)
	// Output:
	// first billing-export imported
	// first reports imported
	// again billing-export duplicate
	// again reports duplicate
	// billing-export <nil>
	// reports 2026-11 <nil>
}

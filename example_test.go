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
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store/memory"
)

// newManager returns a Manager over an in-memory store. A real program loads
// the pepper from a secret manager, never from the database.
func newManager() *keygate.Manager {
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "2026-11", Key: []byte("an example pepper of at least 32 bytes")})
	if err != nil {
		panic(err)
	}
	m, err := keygate.New(keygate.Config{
		Store:  memory.New(),
		Hasher: hasher,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		panic(err)
	}
	return m
}

func ExampleNew() {
	ctx := context.Background()
	// The pepper comes from outside the database: a secret manager, an
	// environment variable. Older peppers may follow the current one, so
	// that keys hashed before a rotation still verify.
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "2026-11", Key: []byte("an example pepper of at least 32 bytes")})
	if err != nil {
		panic(err)
	}
	m, err := keygate.New(keygate.Config{
		Store:    memory.New(), // or sqlstore for SQLite, PostgreSQL, MySQL
		Hasher:   hasher,
		Prefix:   "acme_live",      // tokens look like acme_live_…
		CacheTTL: 10 * time.Second, // other instances' changes are seen within this
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer m.Close(ctx) // writes the queued last-used times

	created, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "bootstrap", Role: permission.RoleAdmin, Expiry: keygate.NeverExpire(),
	})
	if err != nil {
		panic(err)
	}
	key, err := m.Verify(ctx, created.Token.Reveal())
	fmt.Println(strings.HasPrefix(created.Token.Reveal(), "acme_live_"), key.Name, key.SuperAdmin(), err)
	fmt.Println(m.Health(ctx))
	// Output:
	// true bootstrap true <nil>
	// <nil>
}

func ExampleManager_Create() {
	ctx := context.Background()
	m := newManager()
	defer m.Close(ctx)

	created, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name:      "ci-deployer",
		Owner:     "alice",
		Workspace: "tiger",
		Role:      permission.RoleEditor,
		Scopes:    []string{"billing:read"},
		Expiry:    keygate.ExpireAfterDays(30),
	})
	if err != nil {
		panic(err)
	}
	// The token never prints itself: only Reveal gives the secret, once, to
	// hand to the key's user.
	printed := fmt.Sprint(created.Token)
	fmt.Println("printed token is redacted:", strings.HasSuffix(printed, "[REDACTED]"), printed == created.Token.Reveal())
	fmt.Println("role:", created.Key.Role, "workspace:", created.Key.Workspace)
	// Output:
	// printed token is redacted: true false
	// role: editor workspace: tiger
}

func ExampleManager_Verify() {
	ctx := context.Background()
	m := newManager()
	defer m.Close(ctx)
	created, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "reporting", Workspace: "tiger", Role: permission.RoleViewer, Expiry: keygate.NeverExpire(),
	})
	if err != nil {
		panic(err)
	}

	key, err := m.Verify(ctx, created.Token.Reveal())
	if err != nil {
		panic(err)
	}
	read, _ := permission.Parse("cluster:read")
	write, _ := permission.Parse("cluster:write")
	fmt.Println("read tiger:", m.Authorize(key, read, "tiger") == nil)
	fmt.Println("write tiger:", m.Authorize(key, write, "tiger") == nil)
	fmt.Println("read lion:", m.Authorize(key, read, "lion") == nil)

	if _, err := m.Revoke(ctx, keygate.System(), key.ID); err != nil {
		panic(err)
	}
	_, err = m.Verify(ctx, created.Token.Reveal())
	fmt.Println("after revoke:", errors.Is(err, keygate.ErrRevoked))

	_, err = m.Verify(ctx, "kg_not-a-real-token")
	fmt.Println("garbage:", errors.Is(err, keygate.ErrMalformed))
	// Output:
	// read tiger: true
	// write tiger: false
	// read lion: false
	// after revoke: true
	// garbage: true
}

func ExampleManager_Create_onBehalfOfAKey() {
	ctx := context.Background()
	m := newManager()
	defer m.Close(ctx)
	// A workspace owner key may manage keys in its workspace, but never
	// create one stronger or longer-lived than itself.
	owner, _ := m.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "team-lead", Workspace: "tiger", Role: permission.RoleOwner, Expiry: keygate.ExpireAfterDays(90),
	})
	key, _ := m.Verify(ctx, owner.Token.Reveal())

	_, err := m.Create(ctx, key.Principal(), keygate.CreateRequest{
		Name: "dashboard", Workspace: "tiger", Role: permission.RoleViewer, Expiry: keygate.ExpireAfterDays(7),
	})
	fmt.Println("create viewer:", err)
	_, err = m.Create(ctx, key.Principal(), keygate.CreateRequest{
		Name: "escalation", Role: permission.RoleAdmin, Expiry: keygate.NeverExpire(),
	})
	fmt.Println("create admin forbidden:", errors.Is(err, keygate.ErrForbidden))
	_, err = m.Create(ctx, key.Principal(), keygate.CreateRequest{
		Name: "forever", Workspace: "tiger", Role: permission.RoleViewer, Expiry: keygate.NeverExpire(),
	})
	fmt.Println("outlive the owner forbidden:", errors.Is(err, keygate.ErrForbidden))
	// Output:
	// create viewer: <nil>
	// create admin forbidden: true
	// outlive the owner forbidden: true
}

func ExampleParseExpiry() {
	for _, s := range []string{"7d", "90d", "never", "2030-12-31"} {
		e, err := keygate.ParseExpiry(s)
		fmt.Println(s, "->", e, err)
	}
	// Output:
	// 7d -> 7d <nil>
	// 90d -> 90d <nil>
	// never -> never <nil>
	// 2030-12-31 -> 2031-01-01T00:00:00Z <nil>
}

// A key limited to 3 requests a minute, after one: 2 left now, and the
// whole limit back in 20 seconds (one request comes back every 20). The
// middleware sends the same figures as RateLimit headers when
// middleware.Config.RateLimitHeaders is set.
func ExampleManager_RateStatus() {
	ctx := context.Background()
	m := newManager()
	defer m.Close(ctx)
	created, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "poller", Scopes: []string{"cluster:read"}, Expiry: keygate.ExpireAfterDays(30),
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 3, Window: time.Minute}},
	})
	if err != nil {
		panic(err)
	}
	key, err := m.Verify(ctx, created.Token.Reveal())
	if err != nil {
		panic(err)
	}
	if st, ok := m.RateStatus(ctx, key); ok {
		fmt.Printf("%d of %d per %v left; whole again in %v\n", st.Remaining, st.Requests, st.Window, st.Reset.Round(time.Second))
	}
	// Output: 2 of 3 per 1m0s left; whole again in 20s
}

// A service selling a language model meters each customer: an identity
// holds the customer's monthly credits and a "tokens" rate limit shared by
// all its keys; each request costs the tokens it asks for, and the
// report says what is left, for the response's headers.
func ExampleManager_VerifyWith() {
	ctx := context.Background()
	m := newManager()
	defer m.Close(ctx)
	acme, err := m.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{
		ExternalID: "cus_acme",
		Limits: keygate.IdentityLimits{
			RateLimits: []keygate.RateLimit{{Name: "tokens", Requests: 50_000, Window: time.Hour}},
			Credits:    &keygate.Credits{Remaining: 1_000_000, Refill: &keygate.Refill{Amount: 1_000_000, Every: "month", Day: 1}},
		},
	})
	if err != nil {
		panic(err)
	}
	created, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "acme-prod", Scopes: []string{"model:invoke"}, Expiry: keygate.NeverExpire(), IdentityID: acme.ID,
	})
	if err != nil {
		panic(err)
	}

	_, report, err := m.VerifyWith(ctx, created.Token.Reveal(), keygate.VerifyOptions{Cost: 1200})
	if err != nil {
		panic(err)
	}
	for _, l := range report.Limits {
		fmt.Printf("%s: %d of %d left\n", l.Limit.Name, l.Remaining, l.Limit.Requests)
	}
	fmt.Println("credits left:", report.Credits.Remaining)

	// A request above what the limit holds is refused, and says by which.
	_, _, err = m.VerifyWith(ctx, created.Token.Reveal(), keygate.VerifyOptions{Cost: 60_000})
	var rl *keygate.RateLimitError
	fmt.Println(errors.As(err, &rl), rl.Name, rl.Identity)
	// Output:
	// tokens: 48800 of 50000 left
	// credits left: 998800
	// true tokens true
}

package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store/memory"
)

func TestImport(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	rows := []client.ImportRow{
		{CreateRequest: client.CreateRequest{Name: "legacy", Workspace: "w", Role: "viewer", Expiry: "90d"}, Token: issued.Reveal()},
		{CreateRequest: client.CreateRequest{Name: "foreign", Workspace: "w", Role: "viewer", Expiry: "90d"}, Token: "sk_live_0123456789abcdefghij"},
	}
	out, resp, err := e.client.Import(ctx, rows)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Import = %v, %v", resp, err)
	}
	if out.Imported != 1 || out.Failed != 1 || out.Results[0].Status != "imported" || out.Results[1].Error == nil ||
		out.Results[1].Error.Code != server.CodeNotImportable {
		t.Fatalf("results %+v", out)
	}
	if k, err := e.m.Verify(ctx, issued.Reveal()); err != nil || k.ID != out.Results[0].Key.ID {
		t.Fatalf("the imported token: %v, %v", k, err)
	}
	again, _, err := e.client.Import(ctx, rows[:1])
	if err != nil || again.Duplicates != 1 {
		t.Fatalf("again: %+v, %v", again, err)
	}
	// A caller that may manage no key is refused as a whole.
	viewer := e.clientFor(t, e.token(t, keygate.CreateRequest{Name: "viewer", Workspace: "w", Scopes: []string{"apikey:view"}}))
	_, _, err = viewer.Import(ctx, rows)
	wantProblem(t, err, http.StatusForbidden, server.CodeForbidden, keygate.ErrForbidden)
	// No row is ever printed with its token.
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("import", "row", rows[0], "rows", rows)
	asJSON, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("import", "rows", rows)
	for _, s := range []string{fmt.Sprint(rows), fmt.Sprintf("%+v", rows[0]), fmt.Sprintf("%#v", rows), logged.String(), string(asJSON)} {
		if strings.Contains(s, issued.Reveal()) || strings.Contains(s, "0123456789abcdefghij") || !strings.Contains(s, "legacy") {
			t.Fatalf("printed: %s", s)
		}
	}
}

func TestVerifierImportedTokens(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	stripe := func(tok string) bool { return strings.HasPrefix(tok, "sk_live_") }
	m, api := tokenService(t, keygate.Config{ImportedTokens: stripe})
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	verifierKey, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "verifier", Scopes: []string{"apikey:verify"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := apikey.ParseImported("sk_live_0123456789abcdefghij")
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Import(ctx, keygate.System(), []keygate.ImportRequest{{CreateRequest: keygate.CreateRequest{Name: "legacy",
		Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()}, Token: legacy}})
	if err != nil || res[0].Status != keygate.ImportCreated {
		t.Fatalf("Import = %+v, %v", res, err)
	}
	c, err := client.New(srv.URL, client.WithToken(verifierKey.Token.Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	with := c.NewVerifier(client.VerifierConfig{ImportedTokens: stripe})
	k, err := with.VerifyFrom(ctx, legacy.Reveal(), netip.Addr{})
	if err != nil || k.ID != res[0].Key.ID || !k.Permissions().Allows(permission.MustParse("cluster:read")) {
		t.Fatalf("remote Verify(imported) = %v, %v", k, err)
	}
	before := calls.Load()
	without := c.NewVerifier(client.VerifierConfig{})
	if _, err := without.VerifyFrom(ctx, legacy.Reveal(), netip.Addr{}); !errors.Is(err, keygate.ErrMalformed) {
		t.Fatalf("without ImportedTokens: %v", err)
	}
	if _, err := with.VerifyFrom(ctx, "ghp_0123456789abcdefghijklmnop", netip.Addr{}); !errors.Is(err, keygate.ErrMalformed) {
		t.Fatalf("a token ImportedTokens refuses: %v", err)
	}
	if n := calls.Load() - before; n != 0 {
		t.Fatalf("%d requests for tokens refused locally", n)
	}
}

// TestWithImportedToken: a script keeps driving the API with an admin key
// of the old system, imported: in Authorization when it is token68, in
// X-API-Key when it is not (Authorization is held to token68).
func TestWithImportedToken(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	legacy := func(tok string) bool { return strings.HasPrefix(tok, "sk_live_") || strings.HasPrefix(tok, "legacy:") }
	m, api := tokenService(t, keygate.Config{ImportedTokens: legacy})
	var last atomic.Pointer[http.Header]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		last.Store(&h)
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	for _, tt := range []struct{ token, header, value string }{
		{"sk_live_0123456789abcdefghij", "Authorization", "Api-Key sk_live_0123456789abcdefghij"},
		{"legacy:Zq8!r#T2$w%9@xY*Lp^3", "X-API-Key", "legacy:Zq8!r#T2$w%9@xY*Lp^3"},
	} {
		tok, err := apikey.ParseImported(tt.token)
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Import(ctx, keygate.System(), []keygate.ImportRequest{{Token: tok,
			CreateRequest: keygate.CreateRequest{Name: "admin-" + tt.header, Role: "admin", Expiry: keygate.NeverExpire()}}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("Import: %v %v", err, res[0].Err)
		}
		c, err := client.New(srv.URL, client.WithImportedToken(tt.token))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		list, _, err := c.List(ctx, client.ListOptions{})
		if err != nil || len(list.Keys) == 0 {
			t.Fatalf("List with %s: %v", tt.header, err)
		}
		h := *last.Load()
		if h.Get(tt.header) != tt.value || len(h.Values("Authorization"))+len(h.Values("X-Api-Key")) != 1 {
			t.Errorf("the token went in %v, want only %s", h, tt.header)
		}
	}
	for _, bad := range []string{"", "short", "has a space 0123456789", "legacy:é0123456789abcdef"} {
		_, err := client.New(srv.URL, client.WithImportedToken(bad))
		if !errors.Is(err, client.ErrInvalidConfig) || bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("WithImportedToken(%q): %v, want ErrInvalidConfig not quoting it", bad, err)
		}
	}
}

// tokenService returns a Manager over a memory store, configured by cfg
// (its Store, Hasher and Logger set here), and the REST API serving it
// behind the default middleware, as keygate serve runs it.
func tokenService(t testing.TB, cfg keygate.Config) (*keygate.Manager, *server.Server) {
	t.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Hasher, cfg.Logger = memory.New(), hasher, slog.New(slog.DiscardHandler)
	m, err := keygate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	mw, err := middleware.New(middleware.Config{Verifier: m})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.New(server.Config{Manager: m, Middleware: mw})
	if err != nil {
		t.Fatal(err)
	}
	return m, api
}

package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store/memory"
)

func ExampleClient() {
	ctx := context.Background()

	// A server: the API over a Manager, mounted under /v1/ as keygate serve mounts it.
	hasher, _ := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte("k"), 32)})
	manager, _ := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	defer manager.Close(ctx)
	mw, _ := middleware.New(middleware.Config{Verifier: manager})
	api, _ := server.New(server.Config{Manager: manager, Middleware: mw})
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.StripPrefix("/v1", api))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// The first admin key comes from the application itself.
	admin, _ := manager.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "bootstrap", Role: "admin", Expiry: keygate.NeverExpire(),
	})

	c, err := client.New(srv.URL+"/v1", client.WithToken(admin.Token.Reveal()))
	if err != nil {
		fmt.Println(err)
		return
	}
	created, _, err := c.Create(ctx, client.CreateRequest{
		Name: "grafana", Workspace: "tiger", Role: "viewer", Expiry: "30d",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created:", created.Key.Name, created.Key.Role, "in", created.Key.Workspace)
	fmt.Println("printed token is redacted:", strings.HasSuffix(fmt.Sprint(created.Token), "[REDACTED]"))
	fmt.Println("revealed token:", strings.HasPrefix(created.Token.Reveal(), "kg_"))

	list, _, _ := c.List(ctx, client.ListOptions{Workspace: "tiger"})
	fmt.Println("keys in tiger:", len(list.Keys))

	_, _, err = c.Create(ctx, client.CreateRequest{Name: "grafana", Workspace: "tiger", Role: "viewer", Expiry: "30d"})
	fmt.Println("again:", errors.Is(err, keygate.ErrDuplicateName))

	revoked, _, _ := c.Revoke(ctx, created.Key.ID)
	fmt.Println("revoked:", !revoked.RevokedAt.IsZero())
	// Output:
	// created: grafana viewer in tiger
	// printed token is redacted: true
	// revealed token: true
	// keys in tiger: 1
	// again: true
	// revoked: true
}

// A service that holds neither the database nor the pepper protects its
// routes with keys checked by a remote keygate server.
func ExampleClient_NewVerifier() {
	ctx := context.Background()
	// The token service (keygate serve runs one).
	hasher, _ := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte("k"), 32)})
	manager, _ := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	defer manager.Close(ctx)
	mw, _ := middleware.New(middleware.Config{Verifier: manager})
	api, _ := server.New(server.Config{Manager: manager, Middleware: mw})
	tokenService := httptest.NewServer(http.StripPrefix("/v1", api))
	defer tokenService.Close()
	svc, _ := manager.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "orders-service", Scopes: []string{"apikey:verify"}, Expiry: keygate.NeverExpire(),
	})
	caller, _ := manager.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "grafana", Workspace: "tiger", Role: "viewer", Expiry: keygate.ExpireAfterDays(30),
	})

	// The other service: its middleware asks the token service.
	c, err := client.New(tokenService.URL+"/v1", client.WithToken(svc.Token.Reveal()))
	if err != nil {
		panic(err)
	}
	remote, err := middleware.New(middleware.Config{Verifier: c.NewVerifier(client.VerifierConfig{})})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /workspaces/{workspace}/orders", remote.MustRequire(middleware.PathValue("workspace"), "orders:read")(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, _ := middleware.FromContext(r.Context())
			fmt.Fprintf(w, "orders for %s", key.Name)
		})))
	for _, path := range []string{"/workspaces/tiger/orders", "/workspaces/lion/orders"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("X-API-Key", caller.Token.Reveal())
		mux.ServeHTTP(rec, req)
		fmt.Println(path, rec.Code, rec.Body.Len() > 0)
	}
	// Output:
	// /workspaces/tiger/orders 200 true
	// /workspaces/lion/orders 403 true
}

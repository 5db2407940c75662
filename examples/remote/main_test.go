package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store/memory"
)

// TestRemoteService runs the service against a real keygate token service
// over HTTP: the same answers as with a local Manager, revocation seen
// after the cache TTL, and 503 (never a pass) when the token service is
// down.
func TestRemoteService(t *testing.T) {
	ctx := context.Background()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(ctx) })
	tmw, err := middleware.New(middleware.Config{Verifier: m})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.New(server.Config{Manager: m, Middleware: tmw})
	if err != nil {
		t.Fatal(err)
	}
	tokenService := httptest.NewServer(http.StripPrefix("/v1", api))
	t.Cleanup(tokenService.Close)
	mk := func(req keygate.CreateRequest) *keygate.Created {
		t.Helper()
		req.Expiry = keygate.NeverExpire()
		c, err := m.Create(ctx, keygate.System(), req)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	svc := mk(keygate.CreateRequest{Name: "reports-service", Scopes: []string{"apikey:verify"}})
	reader := mk(keygate.CreateRequest{Name: "reader", Workspace: "tiger", Scopes: []string{"report:read"}})
	writer := mk(keygate.CreateRequest{Name: "writer", Workspace: "tiger", Role: "editor"})

	c, err := client.New(tokenService.URL+"/v1", client.WithToken(svc.Token.Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	ttl := 200 * time.Millisecond
	var logged bytes.Buffer
	h, err := newHandler(c.NewVerifier(client.VerifierConfig{CacheTTL: ttl, Logger: slog.New(slog.NewTextHandler(&logged, nil))}))
	if err != nil {
		t.Fatal(err)
	}
	var last *httptest.ResponseRecorder
	do := func(method, path, token string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Api-Key "+token)
		}
		h.ServeHTTP(rec, req)
		last = rec
		return rec.Code
	}
	for _, tt := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/workspaces/tiger/reports", reader.Token.Reveal(), 200},
		{"POST", "/workspaces/tiger/reports", reader.Token.Reveal(), 403},
		{"POST", "/workspaces/tiger/reports", writer.Token.Reveal(), 201},
		{"GET", "/workspaces/lion/reports", writer.Token.Reveal(), 403},
		{"GET", "/workspaces/tiger/reports", "", 401},
		{"GET", "/workspaces/tiger/reports", "kg_garbage", 401},
	} {
		if got := do(tt.method, tt.path, tt.token); got != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, got, tt.want)
		}
	}

	if _, err := m.Revoke(ctx, keygate.System(), reader.Key.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(ttl + 2*time.Second)
	for do("GET", "/workspaces/tiger/reports", reader.Token.Reveal()) != 401 {
		if time.Now().After(deadline) {
			t.Fatal("a revoked key is still accepted after the cache TTL")
		}
		time.Sleep(20 * time.Millisecond)
	}

	tokenService.Close()
	time.Sleep(ttl)
	if got := do("GET", "/workspaces/tiger/reports", writer.Token.Reveal()); got != 503 || last.Header().Get("Retry-After") != "5" {
		t.Errorf("with the token service down: %d Retry-After %q, want 503 and 5", got, last.Header().Get("Retry-After"))
	}
	if !strings.Contains(logged.String(), "token service unavailable") || strings.Contains(logged.String(), writer.Token.Reveal()) {
		t.Errorf("with the token service down, logged %q; want a warning, without the token", logged.String())
	}
}

// Command remote is a service that protects its API with keys checked by a
// remote keygate token service (keygate serve), holding neither the key
// database nor the pepper: its middleware's Verifier is package client's,
// which calls POST /v1/keys/verify with the service's own key.
//
//	KEYGATE_TOKEN=<a key with apikey:verify> go run ./examples/remote -keygate http://127.0.0.1:8080/v1
//	curl -H "X-API-Key: $TOKEN" localhost:8081/workspaces/tiger/reports
//
// Its routes: GET /workspaces/{workspace}/reports needs report:read in the
// workspace, POST /workspaces/{workspace}/reports needs report:write.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/middleware"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	base := flag.String("keygate", "http://127.0.0.1:8080/v1", "base URL of the keygate token service's API")
	cacheTTL := flag.Duration("cache-ttl", client.DefaultVerifierCacheTTL, "how long a verified key is trusted without asking again")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*addr, *base, os.Getenv("KEYGATE_TOKEN"), *cacheTTL, logger); err != nil {
		fmt.Fprintln(os.Stderr, "remote:", err)
		os.Exit(1)
	}
}

// run serves until SIGINT or SIGTERM.
func run(addr, base, token string, cacheTTL time.Duration, logger *slog.Logger) error {
	if token == "" {
		return errors.New("set KEYGATE_TOKEN to this service's key (one holding apikey:verify)")
	}
	c, err := client.New(base, client.WithToken(token), client.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		return err
	}
	// The Logger is told when the token service cannot be used (at most
	// once a minute), and when it can again.
	h, err := newHandler(c.NewVerifier(client.VerifierConfig{CacheTTL: cacheTTL, Logger: logger}))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	logger.Info("listening", "addr", addr, "keygate", base)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler returns the service's routes, protected by keys that v
// verifies.
func newHandler(v middleware.Verifier) (http.Handler, error) {
	mw, err := middleware.New(middleware.Config{Verifier: v, RateLimitHeaders: true})
	if err != nil {
		return nil, err
	}
	ws := middleware.PathValue("workspace")
	read, err := mw.Require(ws, "report:read")
	if err != nil {
		return nil, err
	}
	write, err := mw.Require(ws, "report:write")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /workspaces/{workspace}/reports", read(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := middleware.FromContext(r.Context())
		reply(w, http.StatusOK, map[string]any{"workspace": r.PathValue("workspace"), "reports": []string{"q3-costs"}, "caller": key.Name})
	})))
	mux.Handle("POST /workspaces/{workspace}/reports", write(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusCreated, map[string]string{"workspace": r.PathValue("workspace"), "status": "queued"})
	})))
	return mux, nil
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/secretscan"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
)

// The http.Server's limits: a slow or oversized client is cut off.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// app is the token service: storage, Manager and the HTTP handler.
type app struct {
	opts    *options
	logger  *slog.Logger
	storage *storage
	manager *keygate.Manager
	handler http.Handler
	metrics *metrics // nil without -metrics
}

// newApp opens the storage, builds the Manager and the routes, and
// creates the bootstrap key on the first start.
func newApp(ctx context.Context, o *options, getenv func(string) string, stderr io.Writer) (*app, error) {
	a := &app{opts: o}
	hopts := &slog.HandlerOptions{Level: o.logLevel}
	if o.logFormat == "json" {
		a.logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	} else {
		a.logger = slog.New(slog.NewTextHandler(stderr, hopts))
	}
	st, err := openStorage(ctx, o.db, o.tablePrefix)
	if err != nil {
		return nil, err
	}
	hasher, source, err := loadHasher(o, st, getenv)
	if err != nil {
		st.close()
		return nil, err
	}
	a.storage = st
	cfg := keygate.Config{
		Store:            st.store,
		Hasher:           hasher,
		Prefix:           o.prefix,
		Logger:           a.logger,
		ChangeFeed:       st.feed,
		LastUsedInterval: o.lastUsed,
		MaxLifetime:      o.maxLifetime,
		ImportedSHA256:   o.importSHA256,
	}
	if prefixes := o.importPrefixes; len(prefixes) > 0 {
		cfg.ImportedTokens = func(token string) bool {
			return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(token, p) })
		}
	}
	if o.metrics {
		if a.metrics, err = newMetrics(); err != nil {
			st.close()
			return nil, err
		}
		cfg.MeterProvider = a.metrics.provider
	}
	a.manager, err = keygate.New(cfg)
	if err != nil {
		st.close()
		return nil, err
	}
	a.logger.Info("keygate server starting", "storage", st.engine, "database", st.where, "pepper", source,
		"pepper_ids", hasher.PepperIDs(), "change_feed", st.feed != nil)
	if a.handler, err = a.routes(); err != nil {
		a.close(ctx)
		return nil, err
	}
	if err := a.bootstrap(ctx, stderr); err != nil {
		a.close(ctx)
		return nil, err
	}
	return a, nil
}

// routes builds the service's handler.
func (a *app) routes() (http.Handler, error) {
	cfg := middleware.Config{Verifier: a.manager, RateLimitHeaders: true}
	if a.opts.failures > 0 {
		cfg.FailureLimit = middleware.FailureLimit{Failures: a.opts.failures, Window: a.opts.failureWindow}
	}
	mw, err := middleware.New(cfg)
	if err != nil {
		return nil, err
	}
	api, err := server.New(server.Config{
		Manager:      a.manager,
		Middleware:   mw,
		MaxBodyBytes: a.opts.maxBody,
		Principal: func(r *http.Request) (keygate.Principal, bool) {
			key, ok := noteKey(r)
			if !ok {
				return keygate.Principal{}, false
			}
			return key.Principal(), true
		},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	v1 := http.StripPrefix("/v1", api)
	mux.Handle("/v1/", v1)
	// The route every remote verification takes has a pattern of its own:
	// the mux matches it outright, without capturing the rest of the path
	// as it does for "/v1/" (four allocations a request).
	mux.Handle("POST /v1/keys/verify", v1)
	mux.Handle("GET /v1/openapi.json", server.OpenAPIHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	if a.metrics != nil {
		mux.Handle("GET /metrics", a.metrics.handler)
	}
	// GitHub's secret scanning partner program posts the tokens of this
	// service it finds in public code here: they are revoked at once.
	scan, err := secretscan.New(secretscan.Config{
		Manager: a.manager,
		Keys:    secretscan.NewGitHubKeys(&http.Client{Timeout: 10 * time.Second}, ""),
		Logger:  a.logger,
	})
	if err != nil {
		return nil, err
	}
	mux.Handle("POST /github/secret-scanning", scan)
	con, err := newConsole(a.manager, a.logger)
	if err != nil {
		return nil, err
	}
	mux.Handle("/console/", http.StripPrefix("/console", con))
	if err := newDemo(mw).register(mux); err != nil {
		return nil, err
	}
	return a.logRequests(mux), nil
}

// ready answers the readiness probe: 200 when the store, and the change
// feed if any, are reachable; 503 otherwise.
func (a *app) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.manager.Health(ctx); err != nil {
		a.logger.WarnContext(ctx, "not ready", "error", err)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// bootstrapName names the super-admin key made on the first start.
const bootstrapName = "bootstrap-admin"

// bootstrap creates a super-admin key when the store holds no key at all,
// and prints its token once, in a banner on stderr (and to
// -admin-token-file). On every later start it does nothing. Instances
// starting together on one database race harmlessly: the name is unique,
// so only one key is made and only its maker prints it.
func (a *app) bootstrap(ctx context.Context, stderr io.Writer) error {
	page, err := a.storage.store.List(ctx, store.ListOptions{Limit: 1})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if len(page.Keys) > 0 {
		return nil
	}
	c, err := a.manager.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name:        bootstrapName,
		Description: "Created on the first start. Use it to create your own keys, then revoke it.",
		Owner:       "keygate",
		Role:        permission.RoleAdmin,
		Expiry:      keygate.NeverExpire(),
	})
	if errors.Is(err, keygate.ErrDuplicateName) {
		return nil // another instance made it
	}
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if path := a.opts.adminTokenFile; path != "" {
		if err := writeSecretFile(path, c.Token.Reveal()+"\n"); err != nil {
			return fmt.Errorf("bootstrap: -admin-token-file: %w", err)
		}
	}
	line := "================================================================================"
	fmt.Fprintf(stderr, "\n%s\n keygate: first start. A super-admin key was created (id %s):\n\n   %s\n\n"+
		" It is shown this once and cannot be recovered. Keep it in a secret manager,\n"+
		" create your own keys with it, then revoke it.\n%s\n\n", line, c.Key.ID, c.Token.Reveal(), line)
	return nil
}

// writeSecretFile writes data to path with mode 0600, replacing the file.
func writeSecretFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// An existing file keeps its mode through O_TRUNC: tighten it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// serve listens and serves until ctx ends, then shuts down: in-flight
// requests get -shutdown-grace to finish, and the last-used times are
// written before it returns.
func (a *app) serve(ctx context.Context, ready func(addr string)) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.opts.readHeaderTimeout,
		ReadTimeout:       a.opts.readTimeout,
		WriteTimeout:      a.opts.writeTimeout,
		IdleTimeout:       a.opts.idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", a.opts.addr)
	if err != nil {
		a.close(ctx)
		return err
	}
	scheme := "http"
	if a.opts.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(a.opts.tlsCert, a.opts.tlsKey)
		if err != nil {
			ln.Close()
			a.close(ctx)
			return fmt.Errorf("TLS: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln, scheme = tls.NewListener(ln, srv.TLSConfig), "https"
	}
	a.logger.Info("listening", "url", scheme+"://"+ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-served:
		a.close(context.WithoutCancel(ctx))
		return err
	case <-ctx.Done():
	}
	a.logger.Info("shutting down", "grace", a.opts.shutdownGrace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.shutdownGrace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if cerr := a.close(sctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	a.logger.Info("stopped")
	return nil
}

// close stops the Manager, writing the queued last-used times, and closes
// the storage.
func (a *app) close(ctx context.Context) error {
	err := a.manager.Close(ctx)
	a.storage.close()
	return errors.Join(err, a.metrics.close(ctx))
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package serve

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
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/config"
	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
	kgredis "github.com/keygate/keygate/redis"
	"github.com/keygate/keygate/secretscan"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore/pgnotify"
)

// Cache TTLs: with a change feed (or one instance on SQLite) a change made
// elsewhere is seen at once, so the cache may keep keys long; without
// one, a revocation reaches the other instances only when their cache
// entry expires, so it is kept short.
const (
	cacheTTLWithFeed    = 30 * time.Second
	cacheTTLWithoutFeed = 5 * time.Second
)

// app is the token service: storage, Manager and the HTTP handler.
type app struct {
	opts    *Options
	logger  *slog.Logger
	storage *config.Storage
	redis   *goredis.Client // nil without --redis
	manager *keygate.Manager
	handler http.Handler
	metrics *metrics // nil without --metrics-addr
}

// newLogger returns the service's logger, writing to w.
func newLogger(o *Options, w io.Writer) *slog.Logger {
	hopts := &slog.HandlerOptions{Level: o.LogLevel}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// newApp opens the storage (migrating it), Redis and the peppers, checks
// that every stored key can verify with them, builds the Manager and the
// routes, and creates the bootstrap key on the first start.
func newApp(ctx context.Context, o *Options, logger *slog.Logger, getenv func(string) string, stderr io.Writer) (_ *app, err error) {
	a := &app{opts: o, logger: logger}
	defer func() {
		if err != nil {
			a.close(context.WithoutCancel(ctx))
		}
	}()
	if a.storage, err = config.Open(ctx, o.Storage); err != nil {
		return nil, cmdutil.Unavailable(err)
	}
	if err := a.storage.Migrate(ctx); err != nil {
		return nil, cmdutil.Unavailable(err)
	}
	hasher, source, err := config.LoadHasher(o.Peppers, a.storage.Target, getenv, true)
	if err != nil {
		return nil, err
	}
	if err := config.CheckPeppers(ctx, a.storage.Store, hasher, o.ImportSHA256, time.Now()); err != nil {
		var missing *config.MissingPeppersError
		if !errors.As(err, &missing) {
			return nil, cmdutil.Unavailable(err)
		}
		if !o.AllowMissingPeppers {
			return nil, err
		}
		logger.Error("starting with --allow-missing-peppers: these keys cannot verify until their pepper is supplied",
			"missing", missing.Missing)
	}
	cfg := keygate.Config{
		Store:            a.storage.Store,
		Hasher:           hasher,
		Prefix:           o.Prefix,
		Logger:           logger,
		LastUsedInterval: o.LastUsed,
		UsageInterval:    o.UsageInterval,
		UsageRetention:   o.UsageRetention,
		MaxLifetime:      o.MaxLifetime,
		ImportedSHA256:   o.ImportSHA256,
		CacheTTL:         o.CacheTTL,
	}
	if prefixes := o.ImportPrefixes; len(prefixes) > 0 {
		cfg.ImportedTokens = func(token string) bool {
			return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(token, p) })
		}
	}
	feedKind := "none"
	switch {
	case o.Redis != "":
		if err := a.openRedis(ctx, &cfg); err != nil {
			return nil, err
		}
		feedKind = "redis"
	case a.storage.Engine == config.Postgres:
		if cfg.ChangeFeed, err = pgnotify.New(pgnotify.Config{ConnString: a.storage.URL, Channel: a.storage.Store.Channel()}); err != nil {
			return nil, fmt.Errorf("change feed: %w", err)
		}
		feedKind = "postgres"
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = cacheTTLWithFeed
		if cfg.ChangeFeed == nil && a.storage.Engine != config.SQLite {
			cfg.CacheTTL = cacheTTLWithoutFeed
		}
	}
	if cfg.ChangeFeed == nil && a.storage.Engine != config.SQLite {
		logger.Warn(fmt.Sprintf("no change feed on %s without --redis: with several instances, a key revoked or changed on one "+
			"is still accepted by the others until their cache entry expires, up to --cache-ttl (%v); rate limits are counted "+
			"per instance. Give every instance --redis to share both at once.", a.storage.Engine, cfg.CacheTTL))
	}
	if o.MetricsAddr != "" {
		if a.metrics, err = newMetrics(); err != nil {
			return nil, err
		}
		cfg.MeterProvider = a.metrics.provider
	}
	if a.manager, err = keygate.New(cfg); err != nil {
		return nil, err
	}
	logger.Info("keygate starting", "storage", a.storage.Engine, "database", a.storage.Where, "pepper", source,
		"pepper_ids", hasher.PepperIDs(), "change_feed", feedKind, "cache_ttl", cfg.CacheTTL,
		"shared_rate_limits", cfg.RateLimiter != nil)
	if a.handler, err = a.routes(); err != nil {
		return nil, err
	}
	if err := a.bootstrap(ctx, stderr); err != nil {
		return nil, err
	}
	return a, nil
}

// openRedis connects to --redis and puts its rate limiter and change feed
// in cfg.
func (a *app) openRedis(ctx context.Context, cfg *keygate.Config) error {
	ropts, err := goredis.ParseURL(a.opts.Redis)
	if err != nil {
		// The parse error may quote the URL, password included.
		return errors.New("--redis: the URL does not parse; want redis://[user:password@]host:port[/db]")
	}
	// Bounded waits: a verification of a rate-limited key waits for Redis,
	// and a change (a revocation) waits for its publication: while Redis
	// is down, both fail fast instead of retrying for seconds.
	ropts.DialTimeout, ropts.ReadTimeout, ropts.WriteTimeout = time.Second, time.Second, time.Second
	ropts.MaxRetries, ropts.DialerRetries, ropts.DialerRetryTimeout = 1, 1, 20*time.Millisecond
	a.redis = goredis.NewClient(ropts)
	if err := a.redis.Ping(ctx).Err(); err != nil {
		return cmdutil.Unavailable(fmt.Errorf("--redis %s: %w", config.RedactURL(a.opts.Redis), err))
	}
	limiter, err := kgredis.NewLimiter(kgredis.LimiterConfig{Client: a.redis, Prefix: a.opts.Storage.TablePrefix + "rate:"})
	if err != nil {
		return err
	}
	feed, err := kgredis.NewFeed(kgredis.FeedConfig{
		Client:     a.redis,
		Channel:    a.opts.Storage.TablePrefix + "changes",
		MaxBackoff: time.Second,
		// A half-open connection is found within two intervals.
		PingInterval: time.Second,
	})
	if err != nil {
		return err
	}
	cfg.RateLimiter, cfg.ChangeFeed = limiter, feed
	return nil
}

// routes builds the service's handler.
func (a *app) routes() (http.Handler, error) {
	cfg := middleware.Config{Verifier: a.manager, RateLimitHeaders: true, TrustedProxies: a.opts.TrustedProxies}
	if a.opts.Failures > 0 {
		cfg.FailureLimit = middleware.FailureLimit{Failures: a.opts.Failures, Window: a.opts.FailureWindow}
	}
	mw, err := middleware.New(cfg)
	if err != nil {
		return nil, err
	}
	api, err := server.New(server.Config{
		Manager:      a.manager,
		Middleware:   mw,
		MaxBodyBytes: a.opts.MaxBody,
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
	if a.opts.SecretScanning {
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
	}
	if a.opts.Console {
		// Sessions where every instance sees them: in Redis with --redis,
		// else in the key store's database.
		var sessions console.SessionStore = a.storage.Store.Sessions()
		if a.redis != nil {
			if sessions, err = kgredis.NewSessions(kgredis.SessionsConfig{Client: a.redis, Prefix: a.opts.Storage.TablePrefix + "console:"}); err != nil {
				return nil, err
			}
		}
		con, err := newConsole(a.manager, a.logger, sessions, mw)
		if err != nil {
			return nil, err
		}
		mux.Handle("/console/", http.StripPrefix("/console", con))
	}
	if a.opts.Demo {
		if err := newDemo(mw).register(mux); err != nil {
			return nil, err
		}
	}
	var h http.Handler = mux
	if a.metrics != nil {
		h = a.metrics.instrument(mux, h)
	}
	return a.logRequests(h), nil
}

// ready answers the readiness probe: 200 when the store, the change feed
// and Redis, if any, are reachable; 503 otherwise.
func (a *app) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	err := a.manager.Health(ctx)
	if err == nil && a.redis != nil {
		err = a.redis.Ping(ctx).Err()
	}
	if err != nil {
		a.logger.WarnContext(ctx, "not ready", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// BootstrapName names the super-admin key made on the first start.
const BootstrapName = "bootstrap-admin"

// bootstrap creates a super-admin key when the store holds no key at all,
// and prints its token once, in a banner on stderr (and to
// --admin-token-file). On every later start it does nothing. Instances
// starting together on one database race harmlessly: the name is unique,
// so only one key is made and only its maker prints it.
func (a *app) bootstrap(ctx context.Context, stderr io.Writer) error {
	page, err := a.storage.Store.List(ctx, store.ListOptions{Limit: 1})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if len(page.Keys) > 0 {
		return nil
	}
	c, err := a.manager.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name:        BootstrapName,
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
	if path := a.opts.AdminTokenFile; path != "" {
		if err := cmdutil.WriteSecretFile(path, c.Token.Reveal()+"\n"); err != nil {
			return fmt.Errorf("bootstrap: --admin-token-file: %w", err)
		}
	}
	line := "================================================================================"
	fmt.Fprintf(stderr, "\n%s\n keygate: first start. A super-admin key was created (id %s):\n\n   %s\n\n"+
		" It is shown this once and cannot be recovered. Keep it in a secret manager,\n"+
		" create your own keys with it, then revoke it.\n%s\n\n", line, c.Key.ID, c.Token.Reveal(), line)
	return nil
}

// listeners are the service's sockets, opened before anything is written
// so that a bad or busy address fails first.
type listeners struct {
	api, metrics net.Listener
	scheme       string
}

// listen opens the API's and the metrics' sockets, and loads the TLS
// certificate.
func listen(o *Options) (*listeners, error) {
	var tlsConfig *tls.Config
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ls := &listeners{scheme: "http"}
	var err error
	if ls.api, err = net.Listen("tcp", o.Addr); err != nil {
		return nil, fmt.Errorf("--addr: %w", err)
	}
	if tlsConfig != nil {
		ls.api, ls.scheme = tls.NewListener(ls.api, tlsConfig), "https"
	}
	if o.MetricsAddr != "" {
		if ls.metrics, err = net.Listen("tcp", o.MetricsAddr); err != nil {
			ls.api.Close()
			return nil, fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	return ls, nil
}

// close closes the sockets that are still open.
func (ls *listeners) close() {
	ls.api.Close()
	if ls.metrics != nil {
		ls.metrics.Close()
	}
}

// serve serves on ls until ctx ends, then shuts down: in-flight requests
// get --shutdown-grace to finish, and the last-used times are written
// before it returns.
func (a *app) serve(ctx context.Context, ls *listeners, ready func(addr string)) error {
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: a.opts.ReadHeaderTimeout,
			ReadTimeout:       a.opts.ReadTimeout,
			WriteTimeout:      a.opts.WriteTimeout,
			IdleTimeout:       a.opts.IdleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
	}
	srv := newServer(a.handler)
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ls.api) }()
	a.logger.Info("listening", "url", ls.scheme+"://"+ls.api.Addr().String())
	var msrv *http.Server
	if ls.metrics != nil {
		msrv = newServer(a.metrics.handler)
		go func() { served <- msrv.Serve(ls.metrics) }()
		a.logger.Info("metrics", "url", "http://"+ls.metrics.Addr().String()+"/metrics")
	}
	if ready != nil {
		ready(ls.api.Addr().String())
	}
	select {
	case err := <-served:
		srv.Close()
		if msrv != nil {
			msrv.Close()
		}
		a.close(context.WithoutCancel(ctx))
		return err
	case <-ctx.Done():
	}
	a.logger.Info("shutting down", "grace", a.opts.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if msrv != nil {
		err = errors.Join(err, msrv.Shutdown(sctx))
	}
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
// the storage and Redis. It is safe on a partly built app.
func (a *app) close(ctx context.Context) error {
	var err error
	if a.manager != nil {
		err = a.manager.Close(ctx)
	}
	if a.storage != nil {
		a.storage.Close()
	}
	if a.redis != nil {
		err = errors.Join(err, a.redis.Close())
	}
	return errors.Join(err, a.metrics.close(ctx))
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

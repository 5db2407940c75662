package console

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
)

// Defaults of [Config].
const (
	DefaultSessionTTL    = 30 * time.Minute
	DefaultSessionMaxAge = 12 * time.Hour
	DefaultMaxFormBytes  = 64 << 10
	DefaultPageSize      = 50
	DefaultMaxSessions   = 10000
	// DefaultSessionsPerKey is the default of [Config.SessionsPerKey].
	DefaultSessionsPerKey = 10
	// DefaultSignInFailures failed sign-ins per DefaultSignInWindow from
	// one client address are the default budget of [Config.Throttle].
	DefaultSignInFailures = 10
	DefaultSignInWindow   = time.Minute
)

// Errors of this package, checked with [errors.Is].
var (
	// ErrInvalidConfig means [New] was given an unusable [Config]: no
	// Manager, an invalid or repeated category, or a negative setting.
	ErrInvalidConfig = errors.New("console: invalid configuration")
)

// Category is one row of the permission grid on the add and edit pages:
// its switches grant "<Resource>:read" and "<Resource>:write".
type Category struct {
	// Name is what people read, such as "Custom Pricing".
	Name string
	// Resource is the permission resource, such as "custom_pricing": a
	// lowercase name matching [a-z][a-z0-9_.-]*.
	Resource string
}

// Categories returns a category for each name, its resource the name
// lowercased with spaces as underscores: "Custom Pricing" grants
// custom_pricing:read and custom_pricing:write.
func Categories(names ...string) []Category {
	cs := make([]Category, len(names))
	for i, n := range names {
		cs[i] = Category{Name: n, Resource: strings.ReplaceAll(strings.ToLower(strings.TrimSpace(n)), " ", "_")}
	}
	return cs
}

// actions are the columns of the permission grid.
var actions = []string{"read", "write"}

// Config configures a [Console]. Manager is required; every other field
// has a documented default.
type Config struct {
	// Manager carries out, and authorizes, every action. Required.
	Manager *keygate.Manager
	// Categories are the rows of the permission grid, in order. Keys may
	// hold other scopes (given through the REST API): the edit page keeps
	// them, listed apart.
	Categories []Category
	// Principal, when set, supplies the principal of a request from the
	// host application's own session (its user), so that nobody signs in
	// with a key; when it returns false, signing in with a key is offered.
	// It must be safe for concurrent use.
	Principal func(r *http.Request) (keygate.Principal, bool)
	// ClientAddr returns the client address of a request, which a key
	// with an IP allow-list must be inside to sign in and to keep its
	// session. Default: the address of r.RemoteAddr. Behind a proxy, give
	// one that reads the header your proxy sets.
	ClientAddr func(r *http.Request) netip.Addr
	// SessionTTL ends a session after this long without a request.
	// Default [DefaultSessionTTL] (30 minutes).
	SessionTTL time.Duration
	// SessionMaxAge ends a session this long after sign-in, however
	// active. Default [DefaultSessionMaxAge] (12 hours).
	SessionMaxAge time.Duration
	// Sessions keeps the sessions. Default: a [MemoryStore] of
	// MaxSessions sessions, which only this process sees: behind a load
	// balancer without sticky sessions, give one every instance shares,
	// such as store/sqlstore's Store.Sessions (the key store's database)
	// or the redis module's NewSessions.
	Sessions SessionStore
	// SessionsPerKey bounds the sessions of one key (or one user of the
	// host application): signing in once more ends its oldest session,
	// never another key's. Default [DefaultSessionsPerKey] (10).
	SessionsPerKey int
	// MaxSessions bounds the sessions of the default in-memory store:
	// past it, the oldest session of the key holding the most ends.
	// Default [DefaultMaxSessions]. Unused with Sessions.
	MaxSessions int
	// Throttle counts failed sign-ins per client address (the address of
	// ClientAddr; IPv6: per /64), as the API middleware counts bad keys: a
	// token that is malformed, unknown, expired, revoked or disabled, and a
	// replayed sign-in form. An address past its budget is refused (429,
	// with Retry-After) without its token being looked up, so that the
	// form is neither a way to flood the key store nor an oracle for
	// guessing tokens. Give the API middleware's (middleware.Middleware's
	// Throttle method) to draw on one budget per address for both, or one
	// of middleware.NewThrottle. Default (nil, as the Throttle of a
	// middleware without a FailureLimit is): a throttle of the console's
	// own, of [DefaultSignInFailures] per [DefaultSignInWindow] (10 a
	// minute). Like the middleware's, it counts in its process: each
	// instance throttles on its own.
	Throttle *middleware.Throttle
	// SecureCookies marks the session cookie Secure on every request, as
	// needed behind a proxy that terminates TLS. Requests received over
	// TLS get Secure cookies anyway.
	SecureCookies bool
	// MaxFormBytes bounds a submitted form; larger ones are refused with
	// 413. Default [DefaultMaxFormBytes] (64 KiB).
	MaxFormBytes int64
	// PageSize is the number of keys on a page of the list. Default
	// [DefaultPageSize] (50); at most 1000.
	PageSize int
	// Title names the application in the page header. Default "keygate".
	Title string
	// Logger receives failures worth an operator's attention (never a
	// token). Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock of sessions. Default: time.Now.
	Now func() time.Time
}

// Console is the admin console: an http.Handler serving its pages
// relative to its root, so that it can be mounted under any prefix with
// http.StripPrefix. It is safe for concurrent use.
type Console struct {
	manager     *keygate.Manager
	categories  []Category
	principal   func(r *http.Request) (keygate.Principal, bool)
	clientAddr  func(r *http.Request) netip.Addr
	secure      bool
	maxForm     int64
	pageSize    int
	title       string
	logger      *slog.Logger
	now         func() time.Time
	sessions    *sessions
	throttle    *middleware.Throttle
	views       *views
	assets      *assets
	handler     http.Handler
	viewKeys    permission.Permission
	manageKeys  permission.Permission
	knownScopes map[string]bool // every permission a switch of the forms grants
}

// New returns a Console for cfg, or an error wrapping [ErrInvalidConfig].
func New(cfg Config) (*Console, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case cfg.Manager == nil:
		return nil, bad("Config.Manager is required")
	case cfg.SessionTTL < 0, cfg.SessionMaxAge < 0, cfg.MaxSessions < 0, cfg.SessionsPerKey < 0, cfg.MaxFormBytes < 0, cfg.PageSize < 0:
		return nil, bad("negative setting")
	case cfg.PageSize > 1000:
		return nil, bad("Config.PageSize is above 1000")
	}
	c := &Console{
		manager:     cfg.Manager,
		principal:   cfg.Principal,
		clientAddr:  cfg.ClientAddr,
		secure:      cfg.SecureCookies,
		maxForm:     cmpOr(cfg.MaxFormBytes, DefaultMaxFormBytes),
		pageSize:    cmpOr(cfg.PageSize, DefaultPageSize),
		title:       cmpOr(cfg.Title, "keygate"),
		logger:      cfg.Logger,
		now:         cfg.Now,
		viewKeys:    permission.MustParse(keygate.PermissionViewKeys),
		manageKeys:  permission.MustParse(keygate.PermissionManageKeys),
		knownScopes: map[string]bool{},
	}
	if c.clientAddr == nil {
		c.clientAddr = remoteAddr
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	for _, s := range managementScopes {
		c.knownScopes[s.Scope] = true
	}
	for _, cat := range cfg.Categories {
		if strings.TrimSpace(cat.Name) == "" {
			return nil, bad("category %q has no name", cat.Resource)
		}
		for _, a := range actions {
			p, err := permission.Parse(cat.Resource + ":" + a)
			if err != nil || p.Resource != cat.Resource || p.Instance != "" || cat.Resource == "*" {
				return nil, bad("category %q: resource %q is not a lowercase name", cat.Name, cat.Resource)
			}
			if c.knownScopes[p.String()] || p.Resource == "apikey" {
				return nil, bad("category %q: resource %q is used twice, or by the key management switches", cat.Name, cat.Resource)
			}
			c.knownScopes[p.String()] = true
		}
		c.categories = append(c.categories, cat)
	}
	c.sessions = &sessions{store: cfg.Sessions, ttl: cmpOr(cfg.SessionTTL, DefaultSessionTTL),
		maxAge: cmpOr(cfg.SessionMaxAge, DefaultSessionMaxAge), perKey: cmpOr(cfg.SessionsPerKey, DefaultSessionsPerKey),
		logger: c.logger}
	if c.sessions.store == nil {
		c.sessions.store = NewMemoryStore(cfg.MaxSessions)
	}
	if c.throttle = cfg.Throttle; c.throttle == nil {
		var err error
		c.throttle, err = middleware.NewThrottle(middleware.FailureLimit{Failures: DefaultSignInFailures, Window: DefaultSignInWindow}, c.now)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
	}
	var err error
	if c.assets, err = loadAssets(); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if c.views, err = loadViews(c.assets); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c.handler = c.routes()
	return c, nil
}

// cmpOr returns v, or def when v is the zero value.
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// remoteAddr is the default Config.ClientAddr.
func remoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a.Unmap()
}

// contentSecurityPolicy allows the console's own scripts, styles and
// images only: no inline script or style, no framing, forms posted to the
// console only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP serves the console. Every response carries the console's
// security headers; pages are never stored by caches or browsers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.handler.ServeHTTP(w, r)
}

// routes builds the console's handler: the pages, behind the browsers'
// cross-origin check (Sec-Fetch-Site, Origin) on every unsafe request;
// each change also needs its session's anti-forgery token.
func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	page := func(pattern string, h func(*request) error) {
		mux.Handle(pattern, c.authed(h))
	}
	page("GET /{$}", c.list)
	page("GET /keys/new", c.newKey)
	page("POST /keys/new", c.createKey)
	page("GET /keys/{id}", c.showKey)
	page("GET /keys/{id}/edit", c.editKey)
	page("POST /keys/{id}/edit", c.updateKey)
	page("GET /keys/{id}/regenerate", c.regenerateForm)
	page("POST /keys/{id}/regenerate", c.regenerateKey)
	page("GET /keys/{id}/revoke", c.revokeForm)
	page("POST /keys/{id}/revoke", c.revokeKey)
	page("GET /keys/{id}/disable", c.disableForm)
	page("POST /keys/{id}/disable", c.disableKey)
	page("GET /keys/{id}/enable", c.enableForm)
	page("POST /keys/{id}/enable", c.enableKey)
	page("GET /keys/{id}/delete", c.deleteForm)
	page("POST /keys/{id}/delete", c.deleteKey)
	identityPaths := c.routeIdentities(page)
	page("POST /signout", c.signOut)
	mux.HandleFunc("GET /signin", c.signInPage)
	mux.HandleFunc("POST /signin", c.signIn)
	mux.HandleFunc("GET /static/{file}", c.assets.serve)
	// Known paths with another method, and unknown paths, get a page
	// rather than ServeMux's plain text.
	other := http.NewServeMux()
	for _, p := range []string{"/{$}", "/keys/new", "/keys/{id}", "/keys/{id}/edit", "/keys/{id}/regenerate",
		"/keys/{id}/revoke", "/keys/{id}/disable", "/keys/{id}/enable", "/keys/{id}/delete", "/signout", "/signin", "/static/{file}"} {
		other.HandleFunc(p, c.methodNotAllowed)
	}
	for _, p := range identityPaths {
		other.HandleFunc(p, c.methodNotAllowed)
	}
	other.HandleFunc("/", c.notFound)
	mux.Handle("/", other)
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, nil, http.StatusForbidden, "Request refused",
			"This form was sent from another site. Changes are accepted only from the console's own pages.")
	}))
	return csrf.Handler(mux)
}

// methodNotAllowed answers a known path with another method.
func (c *Console) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	c.errorPage(w, r, nil, http.StatusMethodNotAllowed, "Not allowed", "This page cannot be reached this way.")
}

// notFound answers an unknown path.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.errorPage(w, r, nil, http.StatusNotFound, "Page not found", "There is no page at this address.")
}

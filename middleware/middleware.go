package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/permission"
)

// Verifier checks a token presented from a client address. *keygate.Manager
// implements it; tests may supply their own. VerifyFrom is called by every
// request, concurrently, and must be safe for concurrent use.
//
// Its errors are answered as documented at [Middleware]: they should wrap
// keygate's sentinel errors (keygate.ErrInvalid, keygate.ErrUnavailable,
// ...); any other error is answered 500, never let through. An error that
// has (or wraps one that has) a method RetryAfter() time.Duration, as
// package client's remote Verifier's outage errors do, gives the
// Retry-After header of the 503 (or 429) it causes.
type Verifier interface {
	VerifyFrom(ctx context.Context, token string, addr netip.Addr) (*keygate.Key, error)
}

// ExerciseRecorder is an optional interface of a [Verifier] that records
// what each request let a key do, for least-privilege reports:
// *keygate.Manager implements it. Require calls Exercised, for each of
// its permissions, when it lets a request through. It is called
// concurrently, on every such request, and must be quick.
type ExerciseRecorder interface {
	Exercised(k *keygate.Key, p permission.Permission, workspace string)
}

// RateStatusReporter is an optional interface of a [Verifier] that tells
// what is left of a key's rate limit: *keygate.Manager implements it (see
// keygate.Manager.RateStatus), and so does package client's remote
// Verifier. With [Config.RateLimitHeaders], the middleware asks it once
// per verified request whose key has a rate limit.
type RateStatusReporter interface {
	RateStatus(ctx context.Context, k *keygate.Key) (keygate.RateStatus, bool)
}

// CachedVerifier is an optional interface of a [Verifier] that verifies a
// token without a store lookup when it can: *keygate.Manager implements
// it (see keygate.Manager.VerifyCached). With [Config.FailureLimit], the
// middleware asks it about the tokens of a throttled client: a key the
// Verifier holds already passes, with every check of the key applied, and
// any other token is refused 429 too_many_failures, unverified. A
// Verifier without it (package client's remote Verifier, say) has every
// token of a throttled client refused.
//
// VerifyCached returns what VerifyFrom would, with known true, when it
// needs no store lookup for token; otherwise it returns known false and
// does nothing else. It is called concurrently and must be safe for
// concurrent use.
type CachedVerifier interface {
	VerifyCached(ctx context.Context, token string, addr netip.Addr) (k *keygate.Key, known bool, err error)
}

// Config configures a [Middleware]. Only Verifier is required.
type Config struct {
	// Verifier checks tokens, usually a *keygate.Manager. Required.
	Verifier Verifier

	// Extractors find the token of a request. They are all tried, in
	// order: the first credential found is used, but a request in which
	// any extractor reports a malformed credential, or two find different
	// credentials, is refused as malformed rather than guessed at. Default:
	// [DefaultExtractors] (Authorization: Api-Key, Authorization: Bearer,
	// X-API-Key).
	Extractors []Extractor

	// TrustedProxies lists the reverse proxies whose X-Forwarded-For
	// header is believed. The client address given to the Verifier (and so
	// checked against a key's IP allow-list) is the connection's peer
	// address, r.RemoteAddr, unless that peer is inside one of these
	// prefixes: then X-Forwarded-For is walked from the right, skipping
	// addresses inside these prefixes, and the first other address is the
	// client (the leftmost one if all are trusted). An X-Forwarded-For from
	// any other peer is ignored, so a client cannot choose its address. An
	// entry that is not an IP address makes the address unknown (the zero
	// netip.Addr), which fails keys with an allow-list closed. Empty (the
	// default): X-Forwarded-For is never read.
	TrustedProxies []netip.Prefix

	// ErrorHandler writes the response to a refused request: the status
	// p.Status and a body. Before calling it the middleware has set the
	// headers that go with the status: WWW-Authenticate (401), Retry-After
	// (429 and 503 when known), the RateLimit fields (429, with
	// RateLimitHeaders), X-Accepted-Permissions (403 for a missing
	// permission) and Cache-Control: no-store. Default: [WriteProblem].
	// It is called concurrently and must be safe for concurrent use.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, p *Problem)

	// Realm is the realm named in WWW-Authenticate challenges. Default
	// "api". It may not hold '"', '\\', or control or non-ASCII characters.
	Realm string

	// Schemes are the authentication schemes offered in the challenges of
	// a 401, one WWW-Authenticate field each. Default: "Api-Key" and
	// "Bearer", matching [DefaultExtractors].
	Schemes []string

	// FailureLimit throttles clients that present bad keys: after
	// FailureLimit.Failures failed verifications (a malformed, unknown,
	// expired or revoked key; not a missing one, nor an outage) from one
	// client (an address, an IPv6 /64, or the IPv4 address an IPv6 one
	// embeds: see [Throttle]) per FailureLimit.Window, that client's
	// requests carrying a credential are refused with 429
	// too_many_failures and Retry-After, without verifying them, until its
	// budget refills. Guessing keys and flooding the store with made-up
	// tokens then cost the client, not the service (a token that fails its
	// checksum never reaches the store anyway).
	//
	// One exception, with a Verifier that is a [CachedVerifier] (as
	// *keygate.Manager is): a key the Verifier holds in its cache, because
	// it was verified recently, passes (or fails its own checks, such as
	// its rate limit) even from a throttled client. The throttle is there
	// to stop guessing, and a cache hit costs no lookup and tells a
	// guesser nothing (a guessed token is never in the cache), so the good
	// keys in use behind an address that one client abuses keep working.
	// Any token that would need a store lookup is refused as above.
	//
	// The client address is the one [Config.TrustedProxies] determines:
	// behind a proxy, configure them, or every client shares the proxy's
	// budget. Default: zero, no throttle; for example {Failures: 30,
	// Window: time.Minute}.
	FailureLimit FailureLimit

	// Now is the clock of FailureLimit. Default time.Now.
	Now func() time.Time

	// RateLimitHeaders tells clients what is left of their key's rate
	// limit, on every response to a request verified with a key that has
	// one, in the fields of the IETF RateLimit header draft that clients
	// read most: "RateLimit-Limit: 100", "RateLimit-Remaining: 41" (after
	// this request), "RateLimit-Reset: 36" (seconds until the whole limit
	// is available again) and "RateLimit-Policy: 100;w=3600" (the window
	// in seconds). The Verifier must be a [RateStatusReporter]
	// (*keygate.Manager and package client's remote Verifier, which passes
	// on the token service's figures, are). With the Manager's default
	// in-process limiter this costs an atomic load; with a shared one,
	// such as Redis, a round trip per request. A refused request (429
	// rate_limited) gets them too, with RateLimit-Remaining: 0, next to
	// Retry-After (and RateLimit-Reset only from the in-process limiter,
	// the one that knows it without another call).
	//
	// A metered request (see Meter) takes them from its verification's
	// report, at no extra cost: those of the limit it was refused by, or
	// else of the limit checked with the fewest remaining (of the key's
	// own or its identity's, whichever is tighter). It also gets the
	// balances it drew from: "Keygate-Uses-Remaining: 41" (the key's
	// uses, when it has a usage limit) and "Keygate-Credits-Remaining:
	// 9000" (its identity's credits, when it has some), each with
	// "Keygate-Uses-Refill" or "Keygate-Credits-Refill" when the balance
	// refills: the time of the next refill, RFC 3339 in UTC
	// ("2030-02-01T00:00:00Z"). Default false.
	RateLimitHeaders bool

	// Meter, when set, meters every request the Middleware verifies: it
	// returns the cost the request takes from its key's rate limits, uses
	// and identity's credits, and the on-demand rate limits it names (see
	// [MeterFunc]). The request is then verified with the Verifier's
	// VerifyWith, which must exist ([MeteredVerifier]; [New] fails
	// otherwise), from the client address, and its report is kept for
	// [ReportFromContext] (and the fields of RateLimitHeaders). A cost out
	// of bounds is refused 400 invalid_request. A metered request from a
	// throttled client (FailureLimit) passes only when its key is cached
	// and the Verifier can meter it from there ([CachedMeteredVerifier]);
	// it is refused unverified otherwise.
	//
	// Meter applies to every route the Middleware verifies; for costs that
	// differ per route, leave it nil and mount [Middleware.Metered] on
	// those routes. Default nil: requests are verified with VerifyFrom,
	// at cost 1, and no on-demand limit applies.
	Meter MeterFunc
}

// Middleware authenticates requests by API key, in the net/http
// convention: each of its middlewares has the type
// func(http.Handler) http.Handler and works with http.ServeMux, chi and
// any router of that convention.
//
//   - [Middleware.Verify] finds and verifies the key and stores the result in
//     the request context ([FromContext], [ErrorFromContext]); it never
//     refuses a request, so public routes behind it still work.
//   - [Middleware.RequireKey] refuses requests without a valid key.
//   - [Middleware.Require] refuses requests whose key lacks permissions, in
//     the workspace the request names.
//
// RequireKey and Require verify the request themselves when Verify did not
// run before them, so either can be used alone. A request is verified at
// most once however many of them it passes.
//
// Refusals, as [Problem]s (Code in parentheses): 401 with WWW-Authenticate
// for a missing (missing), malformed (malformed), unknown (invalid),
// expired (expired) or revoked (revoked) key; 403 for a missing permission
// (insufficient_permission) or a client address outside the key's
// allow-list (address_denied); 429 with Retry-After for a rate limit
// (rate_limited) and 429 without it for a used-up usage limit
// (usage_exhausted), which retrying does not cure (unless the balance of a
// metered request refills: Retry-After then says when); 400 for a metered
// request whose cost is out of bounds (invalid_request); 503 when the key
// store fails (unavailable), never a pass, with Retry-After when the
// Verifier's error says when (see [Verifier]); 500 for any other error
// (internal), [ErrUnmetered] included.
//
// A Middleware is immutable after [New] and safe for concurrent use.
type Middleware struct {
	verifier Verifier
	// exercised, when the Verifier records exercised permissions (as
	// *keygate.Manager does), is told what each request let a key do.
	exercised  func(k *keygate.Key, p permission.Permission, workspace string)
	extractors []Extractor
	trusted    []netip.Prefix
	onError    func(w http.ResponseWriter, r *http.Request, p *Problem)
	challenges [numChallenges][]string
	throttle   *Throttle // nil: none
	// cached, when the Verifier is a CachedVerifier, verifies the tokens
	// of a throttled client that it needs no lookup for.
	cached func(ctx context.Context, token string, addr netip.Addr) (*keygate.Key, bool, error)
	// cachedWith, when the Verifier is a CachedMeteredVerifier, meters
	// them.
	cachedWith func(ctx context.Context, token string, opts keygate.VerifyOptions) (*keygate.Key, keygate.Report, bool, error)
	// rateHeaders is Config.RateLimitHeaders; rateStatus, with it and a
	// Verifier that reports them, tells what is left of a key's rate limit.
	rateHeaders bool
	rateStatus  func(ctx context.Context, k *keygate.Key) (keygate.RateStatus, bool)
	// verifyWith, when the Verifier is a MeteredVerifier, verifies metered
	// requests; meter, with Config.Meter, meters every request.
	verifyWith func(ctx context.Context, token string, opts keygate.VerifyOptions) (*keygate.Key, keygate.Report, error)
	meter      *meter
	// now is Config.Now: the clock of the throttle and of the Retry-After
	// of a balance that refills.
	now func() time.Time
}

// New returns a Middleware for cfg, or an error wrapping [ErrInvalidConfig]
// when cfg has no Verifier, a nil Extractor, an invalid trusted proxy
// prefix, an invalid Realm or scheme, or a Meter with a Verifier that is
// not a [MeteredVerifier].
func New(cfg Config) (*Middleware, error) {
	if cfg.Verifier == nil {
		return nil, fmt.Errorf("%w: Config.Verifier is required", ErrInvalidConfig)
	}
	m := &Middleware{
		verifier:   cfg.Verifier,
		extractors: slices.Clone(cfg.Extractors),
		onError:    cfg.ErrorHandler,
	}
	if len(m.extractors) == 0 {
		m.extractors = DefaultExtractors()
	}
	if c, ok := cfg.Verifier.(CachedVerifier); ok {
		m.cached = c.VerifyCached
	}
	if c, ok := cfg.Verifier.(CachedMeteredVerifier); ok {
		m.cachedWith = c.VerifyCachedWith
	}
	if r, ok := cfg.Verifier.(ExerciseRecorder); ok {
		m.exercised = r.Exercised
	}
	m.rateHeaders = cfg.RateLimitHeaders
	if r, ok := cfg.Verifier.(RateStatusReporter); ok && cfg.RateLimitHeaders {
		m.rateStatus = r.RateStatus
	}
	if v, ok := cfg.Verifier.(MeteredVerifier); ok {
		m.verifyWith = v.VerifyWith
	}
	if cfg.Meter != nil {
		var err error
		if m.meter, err = m.newMeter(cfg.Meter); err != nil {
			return nil, err
		}
	}
	m.now = cfg.Now
	if m.now == nil {
		m.now = time.Now
	}
	for _, ex := range m.extractors {
		if ex == nil {
			return nil, fmt.Errorf("%w: nil Extractor", ErrInvalidConfig)
		}
	}
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: invalid trusted proxy prefix", ErrInvalidConfig)
		}
		m.trusted = append(m.trusted, p.Masked())
	}
	if m.onError == nil {
		m.onError = WriteProblem
	}
	realm := cfg.Realm
	if realm == "" {
		realm = "api"
	}
	if !validRealm(realm) {
		return nil, fmt.Errorf("%w: invalid realm", ErrInvalidConfig)
	}
	schemes := cfg.Schemes
	if len(schemes) == 0 {
		schemes = []string{"Api-Key", "Bearer"}
	}
	for _, s := range schemes {
		if !validScheme(s) {
			return nil, fmt.Errorf("%w: invalid scheme %q", ErrInvalidConfig, s)
		}
	}
	m.challenges = challenges(schemes, realm)
	var err error
	if m.throttle, err = NewThrottle(cfg.FailureLimit, m.now); err != nil {
		return nil, err
	}
	return m, nil
}

// Throttle returns the throttle of the middleware's [Config.FailureLimit],
// to count another door's failures against the same budget per client
// (the console's sign-in form: console.Config.Throttle), or nil when it
// has none.
func (m *Middleware) Throttle() *Throttle {
	return m.throttle
}

// Verify is a middleware that finds the request's key with the configured
// extractors, verifies it from the client's address (see
// [Config.TrustedProxies]), and calls next with the outcome in the request
// context: the key for [FromContext], or the reason it failed for
// [ErrorFromContext]. It never refuses a request; enforce with
// [Middleware.RequireKey] or [Middleware.Require]. A request already
// verified is passed on unchanged.
func (m *Middleware) Verify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, m.verified(w, r))
	})
}

// RequireKey is a middleware that calls next only for a request with a
// valid key, verifying it first if [Middleware.Verify] did not; it refuses
// every other request as documented at [Middleware].
func (m *Middleware) RequireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = m.verified(w, r)
		if _, err := outcome(r.Context()); err != nil {
			m.refuse(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WorkspaceFunc returns the workspace a request acts in, such as a path
// segment, or "" for a resource outside any workspace. It is called
// concurrently and must be safe for concurrent use.
type WorkspaceFunc func(r *http.Request) string

// PathValue returns a [WorkspaceFunc] reading the path wildcard name, as
// set by http.ServeMux patterns such as
// "GET /workspaces/{workspace}/clusters" (and by chi v5, which sets path
// values too). Use it on handlers registered in the router, where the
// values are known.
func PathValue(name string) WorkspaceFunc {
	return func(r *http.Request) string { return r.PathValue(name) }
}

// Require returns a middleware that calls next only when the request's key
// holds every one of perms (such as "cluster:read") in the workspace that
// workspace returns for the request; a nil workspace means "" (no
// workspace). A key bound to a workspace is allowed nothing in another.
// The request is verified first if [Middleware.Verify] did not run.
//
// A key lacking a permission gets a 403 with code insufficient_permission,
// [Problem.Permissions] naming perms, and the header
// "X-Accepted-Permissions: cluster:read, ..." (after GitHub's
// X-Accepted-GitHub-Permissions); other refusals are as documented at
// [Middleware].
//
// The permissions are parsed once, here: Require returns an error wrapping
// [ErrInvalidConfig] and permission.ErrInvalid if one is invalid, and
// [ErrInvalidConfig] if there is none. The check on each request allocates
// nothing.
func (m *Middleware) Require(workspace WorkspaceFunc, perms ...string) (func(http.Handler) http.Handler, error) {
	if len(perms) == 0 {
		return nil, fmt.Errorf("%w: Require needs at least one permission", ErrInvalidConfig)
	}
	parsed := make([]permission.Permission, len(perms))
	names := make([]string, len(perms))
	for i, s := range perms {
		p, err := permission.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		parsed[i], names[i] = p, p.String()
	}
	accepted := strings.Join(names, ", ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = m.verified(w, r)
			key, err := outcome(r.Context())
			if err != nil {
				m.refuse(w, r, err)
				return
			}
			ws := ""
			if workspace != nil {
				ws = workspace(r)
			}
			for _, p := range parsed {
				if !key.Allows(p, ws) {
					m.forbid(w, r, names, accepted)
					return
				}
			}
			if m.exercised != nil {
				for _, p := range parsed {
					m.exercised(key, p, ws)
				}
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// MustRequire is like [Middleware.Require] but panics if the permissions
// are invalid, like regexp.MustCompile: for permissions written as
// constants, where the panic shows at start-up.
func (m *Middleware) MustRequire(workspace WorkspaceFunc, perms ...string) func(http.Handler) http.Handler {
	mw, err := m.Require(workspace, perms...)
	if err != nil {
		panic(err)
	}
	return mw
}

// verified returns r with the outcome of its verification in its context,
// verifying it unless that was done already. Verifying a key with a rate
// limit sets the RateLimit fields of w, with Config.RateLimitHeaders. With
// Config.Meter, it is verifiedWith that meter.
func (m *Middleware) verified(w http.ResponseWriter, r *http.Request) *http.Request {
	if m.meter != nil {
		return m.verifiedWith(w, r, m.meter)
	}
	ctx := r.Context()
	if ctx.Value(outcomeKey{}) != nil {
		return r
	}
	out := m.verify(r, nil, nil)
	if k, ok := out.(*keygate.Key); ok && m.rateStatus != nil && k.RateLimit > 0 {
		if st, ok := m.rateStatus(ctx, k); ok {
			setRateHeaders(w.Header(), st, true)
		}
	}
	return r.WithContext(context.WithValue(ctx, outcomeKey{}, out))
}

// setRateHeaders sets the RateLimit fields of h from st; RateLimit-Reset
// only when withReset. It is on the path of every request of a
// rate-limited key, so it makes two allocations, not one per field: the
// values are substrings of one string, and their slices share one array
// (each capped, so that appending to one cannot overwrite the next). The
// names are in canonical form, so that the header does not canonicalize
// them again.
func setRateHeaders(h http.Header, st keygate.RateStatus, withReset bool) {
	var buf [80]byte
	b := strconv.AppendInt(buf[:0], int64(st.Requests), 10)
	limitEnd := len(b)
	b = strconv.AppendInt(b, int64(st.Remaining), 10)
	remainingEnd := len(b)
	b = strconv.AppendInt(b, int64(math.Ceil(st.Reset.Seconds())), 10)
	resetEnd := len(b)
	b = strconv.AppendInt(b, int64(st.Requests), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, int64(math.Ceil(st.Window.Seconds())), 10)
	v := string(b)
	vals := []string{v[:limitEnd], v[limitEnd:remainingEnd], v[remainingEnd:resetEnd], v[resetEnd:]}
	h["Ratelimit-Limit"] = vals[0:1:1]
	h["Ratelimit-Remaining"] = vals[1:2:2]
	if withReset {
		h["Ratelimit-Reset"] = vals[2:3:3]
	}
	h["Ratelimit-Policy"] = vals[3:4:4]
}

// verify finds and verifies the key of r, metered by mt when it is not
// nil (with VerifyWith, its report stored in rep). It returns a
// *keygate.Key or an error, never nil.
func (m *Middleware) verify(r *http.Request, mt *meter, rep *keygate.Report) any {
	token, err := m.extract(r)
	addr := m.clientAddr(r)
	if err != nil {
		if m.throttle != nil && !errors.Is(err, ErrNoCredential) {
			m.throttle.fail(addr) // a garbled credential
		}
		return err
	}
	var key *keygate.Key
	if wait, blocked := m.throttle.Blocked(addr); blocked {
		known := false
		switch {
		case mt == nil && m.cached != nil:
			key, known, err = m.cached(r.Context(), token, addr)
		case mt != nil && m.cachedWith != nil:
			var opts keygate.VerifyOptions
			if opts, err = mt.options(r, addr); err != nil {
				return err
			}
			key, *rep, known, err = m.cachedWith(r.Context(), token, opts)
		}
		if !known {
			return &failureError{wait: wait}
		}
	} else if mt == nil {
		key, err = m.verifier.VerifyFrom(r.Context(), token, addr)
	} else {
		var opts keygate.VerifyOptions
		if opts, err = mt.options(r, addr); err != nil {
			return err // the request's fault, not its key's: not counted
		}
		key, *rep, err = m.verifyWith(r.Context(), token, opts)
	}
	switch {
	case err != nil:
		m.throttle.Record(addr, err)
		return err
	case key == nil:
		return fmt.Errorf("%w: verifier returned no key and no error", keygate.ErrInvalid)
	}
	return key
}

// extract runs every extractor on r, as documented at [Config.Extractors].
func (m *Middleware) extract(r *http.Request) (string, error) {
	token := ""
	for _, ex := range m.extractors {
		t, err := ex(r)
		switch {
		case err != nil:
			return "", err
		case t == "":
		case token == "":
			token = t
		case t != token:
			return "", ErrAmbiguousCredential
		}
	}
	if token == "" {
		return "", ErrNoCredential
	}
	return token, nil
}

// refuse answers a request whose verification failed with err.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, err error) {
	why := classify(err)
	p := &Problem{
		Type:   "about:blank",
		Title:  http.StatusText(why.status),
		Status: why.status,
		Detail: why.detail,
		Code:   why.code,
		Err:    err,
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if why.challenge != noChallenge {
		h["Www-Authenticate"] = slices.Clone(m.challenges[why.challenge])
	}
	if why.code == CodeRateLimited || why.code == CodeUnavailable || why.code == CodeTooManyFailures {
		if p.RetryAfter = retryAfter(err); p.RetryAfter > 0 {
			h.Set("Retry-After", seconds(p.RetryAfter))
		}
	}
	if why.code == CodeUsageExhausted {
		if p.RetryAfter = refillWait(r.Context(), m.now()); p.RetryAfter > 0 {
			h.Set("Retry-After", seconds(p.RetryAfter))
		}
	}
	var rl *keygate.RateLimitError
	if why.code == CodeRateLimited && errors.As(err, &rl) {
		if rl.Identity || (rl.Name != "" && rl.Name != keygate.DefaultRateLimit) {
			p.RateLimit, p.RateLimitScope = rl.Name, "key"
			p.Detail = "Too many requests with this API key for its rate limit \"" + rl.Name + "\"; retry later."
			if rl.Identity {
				p.RateLimitScope = "identity"
				p.Detail = "Too many requests for the rate limit \"" + rl.Name + "\" that this API key shares with the other keys of its identity; retry later."
			}
		}
		if m.rateHeaders && rl.Limit.Requests > 0 && h["Ratelimit-Limit"] == nil {
			setRateHeaders(h, keygate.RateStatus{RateLimit: rl.Limit, Reset: rl.Reset}, rl.Reset > 0)
		}
	}
	m.onError(w, r, p)
}

// forbid answers a request whose key lacks one of perms.
func (m *Middleware) forbid(w http.ResponseWriter, r *http.Request, perms []string, accepted string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accepted-Permissions", accepted)
	m.onError(w, r, &Problem{
		Type:        "about:blank",
		Title:       http.StatusText(http.StatusForbidden),
		Status:      http.StatusForbidden,
		Detail:      "The API key lacks a permission this request needs.",
		Code:        CodeInsufficientPermission,
		Permissions: slices.Clone(perms),
	})
}

// outcomeKey is the context key of a verification outcome: a *keygate.Key
// or an error. An unexported zero-size type cannot collide with any other
// package's key, and needs no package variable.
type outcomeKey struct{}

// NewContext returns a copy of ctx carrying key as a verified key, for
// [FromContext]; the middlewares then pass its requests without verifying
// them again. It is meant for tests of handlers, and for other
// authentication schemes that produce keygate keys. A nil key carries
// nothing: requests with that context count as not verified. A metered
// middleware ([Config.Meter], [Middleware.Metered]) refuses such a
// request with [ErrUnmetered] rather than let it through uncharged.
func NewContext(ctx context.Context, key *keygate.Key) context.Context {
	if key == nil {
		return ctx
	}
	return context.WithValue(ctx, outcomeKey{}, key)
}

// FromContext returns the verified key of a request that passed
// [Middleware.Verify] (or RequireKey, or Require), and whether there is one.
// It returns false for a request without a valid key.
func FromContext(ctx context.Context) (*keygate.Key, bool) {
	switch v := ctx.Value(outcomeKey{}).(type) {
	case *keygate.Key:
		return v, true
	case *metered:
		return v.key, v.key != nil
	}
	return nil, false
}

// ErrorFromContext returns why verification of a request failed, such as
// an error wrapping [ErrNoCredential] or keygate.ErrExpired, or nil when it
// succeeded or did not run. Handlers of public routes may use it to tell an
// anonymous request from one with a bad key. The error may hold internal
// details: log it, do not send it to the client.
func ErrorFromContext(ctx context.Context) error {
	switch v := ctx.Value(outcomeKey{}).(type) {
	case error:
		return v
	case *metered:
		return v.err
	}
	return nil
}

// outcome returns the key, or the reason there is none, of a verified
// request context.
func outcome(ctx context.Context) (*keygate.Key, error) {
	switch v := ctx.Value(outcomeKey{}).(type) {
	case *keygate.Key:
		return v, nil
	case error:
		return nil, v
	case *metered:
		return v.key, v.err
	}
	return nil, ErrNoCredential
}

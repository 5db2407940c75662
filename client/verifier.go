package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
)

// The defaults of [VerifierConfig].
const (
	DefaultVerifierCacheTTL          = 10 * time.Second
	DefaultVerifierNegativeCacheTTL  = 5 * time.Second
	DefaultVerifierCacheSize         = 10000
	DefaultVerifierRetryAfter        = 5 * time.Second
	DefaultVerifierOutageLogInterval = time.Minute
)

// VerifierConfig configures a [Verifier]. The zero value is usable.
type VerifierConfig struct {
	// CacheTTL is how long a valid key is answered from the local cache
	// without asking the server, counted from when the server was asked
	// (not from when its answer arrived, which would stretch it by a slow
	// answer): a key revoked or changed on the server is still accepted
	// here for at most this long after the change. Keys with a usage or
	// rate limit (named ones included), keys whose verification checked a
	// limit or drew from a balance (their identity's), and verifications
	// with a cost or naming limits ([Verifier.VerifyWith]) are never
	// cached: every use of those reaches the server.
	// Default [DefaultVerifierCacheTTL] (10s); negative disables the cache.
	CacheTTL time.Duration
	// NegativeCacheTTL is how long a token the server called unknown,
	// revoked, expired or disabled is refused without asking again, also
	// counted from when the server was asked (so a key enabled again is
	// accepted here within this long). Default
	// [DefaultVerifierNegativeCacheTTL] (5s); negative disables it.
	NegativeCacheTTL time.Duration
	// CacheSize bounds the number of cached valid keys. Default
	// [DefaultVerifierCacheSize]. Refusals are cached apart, in at most
	// CacheSize/4 entries, so that made-up tokens (which pass the local
	// checksum check and are refused by the server) never evict a valid
	// key, as in keygate.Manager.
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// ImportedTokens, when set, lets tokens of another system, imported
	// into the server (keygate.Manager.Import), through to it: it reports
	// whether a token that is not a well-formed keygate token may be one,
	// as keygate.Config.ImportedTokens does on the server. Only tokens it
	// accepts (and that apikey.ParseImported accepts) are sent; any other
	// is refused here as malformed, without a request. Default nil: only
	// keygate tokens are sent.
	ImportedTokens func(token string) bool
	// RetryAfter is how long the 503 that a failed call to the server
	// causes asks the client to wait (its Retry-After header, through the
	// middleware), when the server did not say itself: a server's own
	// Retry-After (on a 503 or a 429) is passed on. Default
	// [DefaultVerifierRetryAfter] (5s).
	RetryAfter time.Duration
	// Logger, when set, is told when the server cannot be used: it is
	// unreachable, times out, answers 5xx or no verdict, or refuses the
	// Verifier's own credentials (each a verification failed with
	// keygate.ErrUnavailable, a 503; a request whose own context was
	// cancelled does not count). It gets a warning "client: token service
	// unavailable" with the error and the number of failures since the
	// last warning, at most once per OutageLogInterval, and an info record
	// "client: token service available again" at the first verdict after
	// a warning. Errors never hold a token. Default nil: nothing is
	// logged.
	Logger *slog.Logger
	// OutageLogInterval is the least time between two of Logger's
	// warnings. Default [DefaultVerifierOutageLogInterval] (1 minute).
	OutageLogInterval time.Duration
}

// Verifier verifies tokens against a remote keygate server (POST
// /keys/verify), so that a service holding neither the database nor the
// pepper can check its callers' keys. It implements middleware.Verifier:
//
//	remote := c.NewVerifier(client.VerifierConfig{}) // c holds a key with apikey:verify
//	mw, err := middleware.New(middleware.Config{Verifier: remote})
//
// Its errors are keygate's sentinels (keygate.ErrMalformed, ErrInvalid,
// ErrExpired, ErrRevoked, ErrDisabled, ErrUsageExhausted, a
// *keygate.RateLimitError, ErrAddressDenied, ErrForbidden), one for each
// verdict code of the server's OpenAPI document, so the middleware
// answers exactly as with a local Manager, and Require works unchanged on
// the keys it returns (built with keygate.NewKey from the server's
// verdict). It fails closed: a network error, a timeout, a 5xx, or the
// server refusing the Verifier's own credentials is
// keygate.ErrUnavailable (503), never a pass. Such an error says when to
// retry (the server's Retry-After, else [VerifierConfig.RetryAfter]),
// which the middleware sends with the 503, and is reported to
// [VerifierConfig.Logger], rate-limited.
//
// A token that is not well formed is refused locally, without a call.
// Valid keys without usage or rate limits, whose verification metered
// nothing (see [Verifier.VerifyWith]), are cached for
// [VerifierConfig.CacheTTL] (their expiry and IP allow-list are still
// checked on every call; a previous secret's verdict carries the end of
// its grace period as the key's expiry), and unknown, revoked, expired
// and disabled tokens for NegativeCacheTTL, apart; concurrent misses for
// the same token and address are coalesced into one call, except for
// limited keys, whose every use reaches the server.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	client      *Client
	ttl         time.Duration
	negativeTTL time.Duration
	now         func() time.Time
	// cache holds valid keys, refused the refusals (apart, so that made-up
	// tokens never evict a key).
	cache   *verdictCache
	refused *verdictCache

	mu      sync.Mutex
	flights map[flightKey]*verifyFlight
	// imported is VerifierConfig.ImportedTokens.
	imported func(string) bool
	// retryAfter is VerifierConfig.RetryAfter.
	retryAfter time.Duration
	// outage tells VerifierConfig.Logger about failed calls.
	outage outageLog
}

// NewVerifier returns a Verifier asking the server of c, with c's
// credentials (a key holding apikey:verify, in the workspaces whose keys
// it should accept: keys of other workspaces are answered as unknown).
func (c *Client) NewVerifier(cfg VerifierConfig) *Verifier {
	v := &Verifier{client: c, ttl: cfg.CacheTTL, negativeTTL: cfg.NegativeCacheTTL, now: cfg.Now, imported: cfg.ImportedTokens,
		retryAfter: cfg.RetryAfter, outage: outageLog{logger: cfg.Logger, interval: cfg.OutageLogInterval}}
	if v.ttl == 0 {
		v.ttl = DefaultVerifierCacheTTL
	}
	if v.negativeTTL == 0 {
		v.negativeTTL = DefaultVerifierNegativeCacheTTL
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.retryAfter <= 0 {
		v.retryAfter = DefaultVerifierRetryAfter
	}
	if v.outage.interval <= 0 {
		v.outage.interval = DefaultVerifierOutageLogInterval
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = DefaultVerifierCacheSize
	}
	v.cache = newVerdictCache(size)
	v.refused = newVerdictCache(max(size/4, verdictShards))
	return v
}

// VerifyFrom verifies token, presented from addr (the zero Addr when
// unknown), as documented at [Verifier].
func (v *Verifier) VerifyFrom(ctx context.Context, token string, addr netip.Addr) (*keygate.Key, error) {
	k, _, err := v.verify(ctx, token, addr, 0, nil)
	return k, err
}

// VerifyWith verifies token as [Verifier.VerifyFrom] does, from
// opts.Address, with the cost and the on-demand rate limits of opts, and
// returns besides the key or the error the [keygate.Report] of what the
// server took: the limits it checked and the balances it drew from, with
// what is left of each. It has keygate.Manager.VerifyWith's signature, so
// that middleware can use either through one interface.
//
// A verification with a Cost above 1 or naming Limits is never answered
// from the cache, shares no call with another and fills no cache: every
// one reaches the server. Nor is any verdict whose report is not empty
// (one that checked a rate limit or drew from the key's uses or its
// identity's credits) shared or cached. Options out of bounds, which the
// server refuses (400 invalid_field), are an error wrapping
// keygate.ErrInvalidRequest and keygate.ErrInvalidField, with nothing
// verified, as with a local Manager.
func (v *Verifier) VerifyWith(ctx context.Context, token string, opts keygate.VerifyOptions) (*keygate.Key, keygate.Report, error) {
	return v.verify(ctx, token, opts.Address, opts.Cost, opts.Limits)
}

// verify is VerifyWith, its options spelled out so that VerifyFrom does not
// build them.
func (v *Verifier) verify(ctx context.Context, token string, addr netip.Addr, cost int, limits []string) (*keygate.Key, keygate.Report, error) {
	now := v.now()
	d := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	metered := cost != 0 && cost != 1 || len(limits) > 0
	if !metered {
		if e, ok := v.cache.get(&d, now.UnixNano()); ok {
			k, err := e.answer(now, addr)
			return k, e.report, err
		}
		if e, ok := v.refused.get(&d, now.UnixNano()); ok {
			k, err := e.answer(now, addr)
			return k, e.report, err
		}
	}
	if _, err := apikey.Parse(token); err != nil && !v.acceptsImported(token) {
		return nil, keygate.Report{Cost: max(cost, 1)}, fmt.Errorf("%w: %w", keygate.ErrMalformed, err)
	}
	var e *verdict
	var err error
	if metered {
		e, err = v.call(ctx, now, token, &d, addr, cost, limits)
	} else {
		e, err = v.lookup(ctx, now, token, &d, addr)
	}
	if err != nil {
		return nil, keygate.Report{}, err
	}
	// The key's expiry is checked at the answer's arrival, which a slow
	// answer may have passed.
	k, err := e.answer(v.now(), addr)
	return k, e.report, err
}

// acceptsImported reports whether token, not a keygate token, may be one
// imported from another system (VerifierConfig.ImportedTokens).
func (v *Verifier) acceptsImported(token string) bool {
	if v.imported == nil {
		return false
	}
	_, err := apikey.ParseImported(token)
	return err == nil && v.imported(token)
}

// verdict is one answer of the server, cached or not.
type verdict struct {
	key *keygate.Key
	err error
	// report is what the verification took; a shared verdict's is empty
	// (its Cost 1).
	report keygate.Report
	// expires is when a cached verdict stops being used (Unix nanoseconds).
	expires int64
}

// answer returns the verdict for a request from addr at now. The expiry
// and allow-list of a cached key are checked again on every call.
func (e *verdict) answer(now time.Time, addr netip.Addr) (*keygate.Key, error) {
	if e.err != nil {
		return nil, e.err
	}
	k := e.key
	if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		return nil, keygate.ErrExpired
	}
	if len(k.AllowedCIDRs) > 0 && !allowed(k.AllowedCIDRs, addr) {
		return nil, keygate.ErrAddressDenied
	}
	return k, nil
}

// allowed reports whether addr is inside one of prefixes.
func allowed(prefixes []netip.Prefix, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// flightKey identifies the concurrent lookups that may share one call.
type flightKey struct {
	digest [sha256.Size]byte
	addr   netip.Addr
}

// verifyFlight is one call to the server shared by concurrent lookups.
type verifyFlight struct {
	done chan struct{}
	e    *verdict
	err  error
}

// lookup asks the server about token at asked, sharing the call with
// concurrent lookups of the same token and address when its answer may be
// shared.
func (v *Verifier) lookup(ctx context.Context, asked time.Time, token string, d *[sha256.Size]byte, addr netip.Addr) (*verdict, error) {
	fk := flightKey{digest: *d, addr: addr}
	v.mu.Lock()
	if f, ok := v.flights[fk]; ok {
		v.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			// The caller's own context: not the server's failure.
			return nil, &unavailableError{err: fmt.Errorf("client: verify: %w: %w", keygate.ErrUnavailable, ctx.Err()), wait: v.retryAfter}
		}
		if f.err == nil && f.e != nil && shareable(f.e) {
			return f.e, nil
		}
		// A limited key's every use must reach the server, and a failed
		// call may have been the leader's own (its context ended).
		return v.call(ctx, asked, token, d, addr, 0, nil)
	}
	f := &verifyFlight{done: make(chan struct{})}
	if v.flights == nil {
		v.flights = make(map[flightKey]*verifyFlight)
	}
	v.flights[fk] = f
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.flights, fk)
		v.mu.Unlock()
		close(f.done)
	}()
	// Should call panic, f.e stays nil and the waiters ask for
	// themselves.
	f.e, f.err = v.call(ctx, asked, token, d, addr, 0, nil)
	return f.e, f.err
}

// shareable reports whether a verdict of a verification without a cost or
// limits may be shared with other requests and cached: one whose report
// is empty (no rate limit checked, neither uses nor credits drawn from),
// and that is not about a key with a usage or rate limit (named ones
// included), nor depends on the moment (rate limits, used-up uses).
func shareable(e *verdict) bool {
	if r := &e.report; len(r.Limits) > 0 || r.Uses != nil || r.Credits != nil {
		return false
	}
	if e.err != nil {
		return errors.Is(e.err, keygate.ErrInvalid) || errors.Is(e.err, keygate.ErrRevoked) ||
			errors.Is(e.err, keygate.ErrExpired) || errors.Is(e.err, keygate.ErrDisabled)
	}
	return e.key.RemainingUses == nil && e.key.RateLimit == 0 && len(e.key.RateLimits) == 0
}

// call asks the server about token, with cost and limits, and, for a
// verification without them, caches what may be cached, for its TTL from
// asked (when the verification began: the server's answer is as of some
// moment after it, and a slow answer must not stretch how long it is
// used). Its error is ErrUnavailable, or a refusal of cost or limits
// wrapping keygate.ErrInvalidRequest: a verdict about the token is never
// an error.
func (v *Verifier) call(ctx context.Context, asked time.Time, token string, d *[sha256.Size]byte, addr netip.Addr, cost int, limits []string) (*verdict, error) {
	req := VerifyRequest{Token: token, Limits: limits}
	metered := cost != 0 && cost != 1 || len(limits) > 0
	if cost != 1 {
		req.Cost = cost // 1 is the default, and keeps the body plain
	}
	if addr.IsValid() {
		req.Address = addr.String()
	}
	res, resp, err := v.client.Verify(ctx, req)
	if err != nil {
		var er *ErrorResponse
		if metered && errors.As(err, &er) && resp != nil && resp.StatusCode == http.StatusBadRequest && errors.Is(er, keygate.ErrInvalidRequest) {
			// The cost or a limit's name is out of bounds: the caller's
			// mistake, not an outage.
			return nil, fmt.Errorf("client: verify: %w", er)
		}
		if errors.As(err, &er) {
			// The server refused the call itself (the Verifier's own key,
			// an outage): never a verdict about the caller's token.
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			err = fmt.Errorf("client: verify: %w: server answered %d %s", keygate.ErrUnavailable, status, er.Problem.Code)
		} else {
			err = fmt.Errorf("client: verify: %w: %w", keygate.ErrUnavailable, err)
		}
		return nil, v.unavailable(ctx, resp, err)
	}
	e, err := fromResponse(res, max(cost, 1))
	if err != nil {
		return nil, v.unavailable(ctx, resp, fmt.Errorf("client: verify: %w: %w", keygate.ErrUnavailable, err))
	}
	v.outage.ok(ctx)
	now := asked.UnixNano()
	switch {
	case metered || !shareable(e):
	case e.err == nil && v.ttl > 0:
		e.expires = now + int64(v.ttl)
		v.cache.put(d, e)
	case e.err != nil && v.negativeTTL > 0:
		e.expires = now + int64(v.negativeTTL)
		v.refused.put(d, e)
	}
	return e, nil
}

// unavailable returns err, a failed call wrapping keygate.ErrUnavailable,
// with when to retry: the server's Retry-After (resp, when it answered),
// or VerifierConfig.RetryAfter. It tells the Logger, unless the call
// failed because the caller's request was cancelled.
func (v *Verifier) unavailable(ctx context.Context, resp *Response, err error) error {
	wait := v.retryAfter
	if resp != nil && resp.RetryAfter > 0 {
		wait = resp.RetryAfter
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		v.outage.failed(ctx, v.now(), err)
	}
	return &unavailableError{err: err, wait: wait}
}

// unavailableError is a verification that failed for want of the server:
// it wraps keygate.ErrUnavailable and says when to retry, which the
// middleware sends as the 503's Retry-After.
type unavailableError struct {
	err  error
	wait time.Duration
}

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// RetryAfter returns how long the client should wait before retrying.
func (e *unavailableError) RetryAfter() time.Duration { return e.wait }

// outageLog tells a logger that the server cannot be used, at most once
// per interval, and that it can again. It is safe for concurrent use.
type outageLog struct {
	logger   *slog.Logger // nil: nothing is logged
	interval time.Duration
	// down is set from a warning until the next verdict.
	down atomic.Bool

	mu sync.Mutex
	// warned is when the last warning was logged; failures counts the
	// failed calls since.
	warned   time.Time
	failures int
}

// failed records a failed call at now, logging err unless a warning was
// logged within the interval.
func (o *outageLog) failed(ctx context.Context, now time.Time, err error) {
	if o.logger == nil {
		return
	}
	o.mu.Lock()
	o.failures++
	n := o.failures
	warn := o.warned.IsZero() || now.Sub(o.warned) >= o.interval
	if warn {
		o.warned, o.failures = now, 0
		o.down.Store(true)
	}
	o.mu.Unlock()
	if warn {
		o.logger.WarnContext(ctx, "client: token service unavailable", "error", err, "failures", n)
	}
}

// ok records a verdict: the first after a warning is logged, with the
// failed calls since the warning.
func (o *outageLog) ok(ctx context.Context) {
	if o.logger == nil || !o.down.Load() {
		return
	}
	o.mu.Lock()
	was := o.down.Swap(false)
	n := o.failures
	o.mu.Unlock()
	if was {
		// The next warning still waits for the interval, so that a
		// flapping server is told of at most twice per interval.
		o.logger.InfoContext(ctx, "client: token service available again", "failures", n)
	}
}

// verdictCodes are the codes of an invalid verdict, as
// server.VerifyResponse documents them; any other is an invalid response.
var verdictCodes = map[string]bool{
	middleware.CodeMalformed: true, middleware.CodeInvalid: true, middleware.CodeExpired: true,
	middleware.CodeRevoked: true, middleware.CodeDisabled: true, middleware.CodeUsageExhausted: true, middleware.CodeRateLimited: true,
	middleware.CodeAddressDenied: true, middleware.CodeInsufficientPermission: true,
}

// fromResponse converts the server's verdict about a verification of
// cost. A verdict that contradicts itself (valid with a code, or without a
// key or its id) or has a code no verdict has is an invalid response,
// which fails closed.
func fromResponse(res *VerifyResponse, cost int) (*verdict, error) {
	rep := report(res.Report, cost)
	if !res.Valid {
		if !verdictCodes[res.Code] {
			return nil, fmt.Errorf("%w: a verdict without a code or with an unknown one", ErrInvalidResponse)
		}
		if res.Code == middleware.CodeRateLimited {
			return &verdict{err: rateLimitError(res, &rep), report: rep}, nil
		}
		return &verdict{err: fmt.Errorf("client: verify: %w", server.ErrorsFor(res.Code)[0]), report: rep}, nil
	}
	if res.Key == nil || res.Key.ID == uuid.Nil || res.Code != "" {
		return nil, fmt.Errorf("%w: a valid verdict without a key id, or with a code", ErrInvalidResponse)
	}
	perms, err := permission.ParseSet(res.Permissions...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidResponse, err)
	}
	var rec store.Key // on the stack: NewKey copies it
	if err := record(res.Key, &rec); err != nil {
		return nil, err
	}
	k := keygate.NewKey(&rec, perms, res.SuperAdmin)
	if st, ok := rateStatus(res.RateLimit); ok {
		// A rate-limited key's verdict is never shared nor cached: this
		// request's own.
		k = k.WithReportedRate(st)
	}
	return &verdict{key: k, report: rep}, nil
}

// rateLimitError returns the refusal of a rate_limited verdict res, whose
// report is rep: the limit that refused, as a local Manager's error has
// it, taken from the report's refusing limit when it has one.
func rateLimitError(res *VerifyResponse, rep *keygate.Report) *keygate.RateLimitError {
	rl := &keygate.RateLimitError{RetryAfter: seconds(max(res.RetryAfter, 0))}
	if st, ok := rateStatus(res.RateLimit); ok {
		rl.Limit, rl.Reset = st.RateLimit, st.Reset
	}
	if st := res.RateLimit; st != nil {
		rl.Name, rl.Identity = st.Name, st.Identity
	}
	if n := len(rep.Limits); n > 0 && !rep.Limits[n-1].Allowed {
		last := &rep.Limits[n-1]
		rl.Limit, rl.Name, rl.Identity = last.Limit, last.Limit.Name, last.Identity
	}
	if rl.Name == "" && !rl.Identity {
		rl.Name = keygate.DefaultRateLimit // a server that names no limit refused with the key's own
	}
	switch {
	case rl.Name == keygate.DefaultRateLimit && !rl.Identity:
		rl.Limit.Name = "" // as Limits.Rate holds it
	case rl.Limit.Name == "":
		rl.Limit.Name = rl.Name
	}
	return rl
}

// rateLimits converts a key's named rate limits; nil for none.
func rateLimits(rls []server.NamedRateLimit) []keygate.RateLimit {
	var out []keygate.RateLimit
	for _, r := range rls {
		out = append(out, keygate.RateLimit{Name: r.Name, Requests: r.Requests, Window: time.Duration(r.Window), OnDemand: r.OnDemand})
	}
	return out
}

// report converts the report of a verdict about a verification of cost;
// none (a verification that checked no limit and drew from no balance) is
// the empty report of that cost.
func report(r *server.VerifyReport, cost int) keygate.Report {
	if r == nil {
		return keygate.Report{Cost: cost}
	}
	out := keygate.Report{Cost: r.Cost, Uses: balance(r.Uses), Credits: balance(r.Credits)}
	if len(r.Limits) > 0 {
		out.Limits = make([]keygate.LimitReport, len(r.Limits))
		for i, l := range r.Limits {
			out.Limits[i] = keygate.LimitReport{
				Limit:    keygate.RateLimit{Name: l.Name, Requests: l.Requests, Window: time.Duration(l.Window), OnDemand: l.OnDemand},
				Identity: l.Identity, Allowed: l.Allowed, Remaining: l.Remaining,
				Reset: max(time.Duration(l.Reset), 0), RetryAfter: max(time.Duration(l.RetryAfter), 0),
			}
		}
	}
	return out
}

// balance converts a balance of a report; nil stays nil.
func balance(b *server.Balance) *keygate.Balance {
	if b == nil {
		return nil
	}
	return &keygate.Balance{Remaining: b.Remaining, NextRefill: b.NextRefill}
}

var _ middleware.RateStatusReporter = (*Verifier)(nil)

// rateStatus converts the status a verdict reports, false when there is
// none or it makes no sense (then it is left out, not trusted).
func rateStatus(st *server.RateStatus) (keygate.RateStatus, bool) {
	if st == nil || st.Requests < 1 || st.Window <= 0 || st.Remaining < 0 || st.Remaining > st.Requests {
		return keygate.RateStatus{}, false
	}
	out := keygate.RateStatus{RateLimit: keygate.RateLimit{Requests: st.Requests, Window: time.Duration(st.Window)}, Remaining: st.Remaining}
	if st.Reset != nil {
		out.Reset = max(time.Duration(*st.Reset), 0)
	}
	return out, true
}

// RateStatus returns what is left of k's rate limit as the server reported
// it with the verdict k comes from, and false for a key without a rate
// limit (or a server that reports none). It makes the Verifier a
// middleware.RateStatusReporter, so that a middleware with
// RateLimitHeaders sends the token service's figures.
func (v *Verifier) RateStatus(_ context.Context, k *keygate.Key) (keygate.RateStatus, bool) {
	return k.ReportedRate()
}

// record makes rec the store record of the API's view of a key (without
// hashes, which the API never sends).
func record(k *Key, rec *store.Key) error {
	*rec = store.Key{
		ID:            k.ID,
		Name:          k.Name,
		Description:   k.Description,
		Owner:         k.Owner,
		Workspace:     k.Workspace,
		Role:          k.Role,
		Scopes:        k.Scopes,
		Metadata:      k.Metadata,
		IdentityID:    k.IdentityID,
		Hint:          k.Hint,
		RateLimit:     k.Limits.Rate.Requests,
		RateWindow:    time.Duration(k.Limits.Rate.Window),
		RateLimits:    rateLimits(k.Limits.RateLimits),
		RemainingUses: k.Limits.UsesRemaining,
		RefilledAt:    k.Limits.UsesRefilledAt,
		CreatedAt:     k.CreatedAt,
		UpdatedAt:     k.UpdatedAt,
		ExpiresAt:     k.ExpiresAt,
		LastUsedAt:    k.LastUsedAt,
		RevokedAt:     k.RevokedAt,
		Version:       k.Version,
	}
	if r := k.Limits.UsesRefill; r != nil {
		rec.Refill = &store.Refill{Amount: r.Amount, Every: store.Period(r.Every), Day: r.Day}
	}
	for _, s := range k.Limits.AllowedCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%w: an allowed CIDR does not parse", ErrInvalidResponse)
		}
		rec.AllowedCIDRs = append(rec.AllowedCIDRs, p)
	}
	return nil
}

const verdictShards = 16

// verdictCache is a sharded, size-bounded map of verdicts by the token's
// SHA-256, each with its own expiry. When a shard is full an arbitrary
// entry is evicted. It is safe for concurrent use.
type verdictCache struct {
	shards   [verdictShards]verdictShard
	perShard int
}

type verdictShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*verdict
}

func newVerdictCache(size int) *verdictCache {
	c := &verdictCache{perShard: max(1, size/verdictShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]*verdict)
	}
	return c
}

// get returns the live verdict for d at now (Unix nanoseconds).
func (c *verdictCache) get(d *[sha256.Size]byte, now int64) (*verdict, bool) {
	s := &c.shards[d[0]%verdictShards]
	s.mu.RLock()
	e, ok := s.m[*d]
	s.mu.RUnlock()
	if !ok || now >= e.expires {
		return nil, false
	}
	return e, true
}

// put stores e for d.
func (c *verdictCache) put(d *[sha256.Size]byte, e *verdict) {
	s := &c.shards[d[0]%verdictShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*d]; !ok && len(s.m) >= c.perShard {
		for victim := range s.m {
			delete(s.m, victim)
			break
		}
	}
	s.m[*d] = e
}

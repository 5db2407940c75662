package middleware

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/keygate/keygate"
)

// MeteredVerifier is an optional interface of a [Verifier] that verifies
// a token with a cost and on-demand rate limits, and reports what the
// verification took: *keygate.Manager implements it (see
// keygate.Manager.VerifyWith), and so does package client's remote
// Verifier. A Middleware with [Config.Meter], and [Middleware.Metered],
// need one. VerifyWith is called by every metered request, concurrently,
// and must be safe for concurrent use; its errors are answered as
// VerifyFrom's are (see [Verifier]), an error wrapping
// keygate.ErrInvalidRequest as a 400 invalid_request.
type MeteredVerifier interface {
	VerifyWith(ctx context.Context, token string, opts keygate.VerifyOptions) (*keygate.Key, keygate.Report, error)
}

// CachedMeteredVerifier is an optional interface of a [MeteredVerifier]
// that meters a token without a store lookup when it can, as a
// [CachedVerifier] verifies one: *keygate.Manager implements it (see
// keygate.Manager.VerifyCachedWith). With [Config.FailureLimit], a
// metered request of a throttled client whose key it holds passes, with
// every check and its metering applied; without it, every metered
// request of a throttled client is refused unverified.
type CachedMeteredVerifier interface {
	VerifyCachedWith(ctx context.Context, token string, opts keygate.VerifyOptions) (k *keygate.Key, rep keygate.Report, known bool, err error)
}

// Metering is what verifying one request takes from its key's limits:
// what a [MeterFunc] returns.
type Metering struct {
	// Cost is what the request takes from each rate limit it is checked
	// against, from the key's uses and from its identity's credits: 1 to
	// keygate.MaxCost, 0 meaning 1. A request to a language model might
	// cost the tokens it declares, a bulk call its items. A cost out of
	// bounds refuses the request 400 invalid_request, unverified.
	Cost int
	// Limits names the on-demand rate limits (OnDemand true) of the key
	// and of its identity that apply to the request, besides the
	// always-on ones, such as "exports" on an export endpoint. A name
	// that neither has is ignored, so that a route can name a limit that
	// only some keys carry.
	Limits []string
}

// MeterFunc returns the [Metering] of a request, from its method, path,
// headers or path values: an LLM proxy charges by the request's declared
// tokens,
//
//	func(r *http.Request) middleware.Metering {
//		tokens, err := strconv.Atoi(r.Header.Get("X-Max-Tokens"))
//		if err != nil {
//			tokens = -1 // refused 400 invalid_request
//		}
//		return middleware.Metering{Cost: tokens}
//	}
//
// and an export endpoint names the on-demand "exports" limit:
//
//	func(*http.Request) middleware.Metering {
//		return middleware.Metering{Limits: []string{"exports"}}
//	}
//
// A MeterFunc that cannot tell a request's cost returns a negative Cost:
// the request is refused 400 invalid_request. It should not read the
// request body (or must leave it as it found it). It is called once per
// request that carries a credential, before the handler, concurrently,
// and must be safe for concurrent use; it may keep the Limits slice it
// returns across requests, which is never modified.
type MeterFunc func(r *http.Request) Metering

// meter is a MeterFunc; its pointer tells the meters of a Middleware
// apart.
type meter struct{ fn MeterFunc }

// metered is the outcome of a metered verification, in the request
// context.
type metered struct {
	by     *meter
	key    *keygate.Key // nil when err is not
	err    error
	report keygate.Report
}

// Metered returns a middleware that verifies each request with the cost
// and limits meter returns for it (see [MeterFunc]) and, like
// [Middleware.RequireKey], calls next only for a request with a valid
// key: it mounts different costs on different routes of one Middleware.
// The request goes on verified, so that [Middleware.Require] after it
// checks permissions without verifying again:
//
//	exports, err := mw.Metered(func(*http.Request) middleware.Metering {
//		return middleware.Metering{Limits: []string{"exports"}}
//	})
//	...
//	mux.Handle("POST /workspaces/{workspace}/exports",
//		exports(mw.MustRequire(middleware.PathValue("workspace"), "export:create")(createExport)))
//
// A request is verified once: one that an unmetered Verify (or another
// meter) verified before it is refused with [ErrUnmetered] (500), never
// let through uncharged, so mount Verify on the other routes rather than
// in front of the router. A metered request from a client that
// [Config.FailureLimit] throttles is refused 429 too_many_failures,
// unverified, even with a key the Verifier holds.
//
// Metered returns an error wrapping [ErrInvalidConfig] when meter is nil
// or the Verifier is not a [MeteredVerifier].
func (m *Middleware) Metered(meter MeterFunc) (func(http.Handler) http.Handler, error) {
	mt, err := m.newMeter(meter)
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = m.verifiedWith(w, r, mt)
			if _, err := outcome(r.Context()); err != nil {
				m.refuse(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// newMeter returns the meter of fn, or an error wrapping
// ErrInvalidConfig when there is none or the Verifier cannot meter.
func (m *Middleware) newMeter(fn MeterFunc) (*meter, error) {
	if fn == nil {
		return nil, fmt.Errorf("%w: nil MeterFunc", ErrInvalidConfig)
	}
	if m.verifyWith == nil {
		return nil, fmt.Errorf("%w: metering needs a Verifier with VerifyWith (a middleware.MeteredVerifier, such as *keygate.Manager); %T is not one",
			ErrInvalidConfig, m.verifier)
	}
	return &meter{fn: fn}, nil
}

// ReportFromContext returns the [keygate.Report] of a request verified
// with a meter ([Config.Meter], [Middleware.Metered]): the rate limits it
// was checked against and the balances it drew from, with what is left
// of each. A refused request has one too, of what was checked up to the
// refusal (its handler sees it after [Middleware.Verify]). It returns
// false for a request that was not metered, or that was refused before
// its key was looked at (no credential, an invalid cost).
func ReportFromContext(ctx context.Context) (keygate.Report, bool) {
	mo, ok := ctx.Value(outcomeKey{}).(*metered)
	if !ok || mo.report.Cost == 0 {
		return keygate.Report{}, false
	}
	return mo.report, true
}

// verifiedWith is verified with the meter mt: it returns r with the
// outcome of its metered verification in its context, verifying it unless
// mt (or an error) did already, and sets the RateLimit and balance fields
// of w from its report, with Config.RateLimitHeaders.
func (m *Middleware) verifiedWith(w http.ResponseWriter, r *http.Request, mt *meter) *http.Request {
	ctx := r.Context()
	switch v := ctx.Value(outcomeKey{}).(type) {
	case nil:
	case *metered:
		if v.by == mt || v.err != nil {
			return r
		}
		return r.WithContext(context.WithValue(ctx, outcomeKey{}, ErrUnmetered))
	case *keygate.Key:
		return r.WithContext(context.WithValue(ctx, outcomeKey{}, ErrUnmetered))
	default: // an error: refused unmetered, charged nothing
		return r
	}
	mo := &metered{by: mt}
	switch v := m.verify(r, mt, &mo.report).(type) {
	case *keygate.Key:
		mo.key = v
	case error:
		mo.err = v
	}
	if m.rateHeaders {
		setReportHeaders(w.Header(), &mo.report)
	}
	return r.WithContext(context.WithValue(ctx, outcomeKey{}, mo))
}

// options returns the verification options of r, from addr, or an error
// wrapping keygate.ErrInvalidRequest when its cost is out of bounds.
func (mt *meter) options(r *http.Request, addr netip.Addr) (keygate.VerifyOptions, error) {
	mm := mt.fn(r)
	if mm.Cost < 0 || mm.Cost > keygate.MaxCost {
		return keygate.VerifyOptions{}, fmt.Errorf("%w: middleware: a request's cost must be 0 to %d, the meter said %d",
			keygate.ErrInvalidRequest, keygate.MaxCost, mm.Cost)
	}
	return keygate.VerifyOptions{Address: addr, Cost: mm.Cost, Limits: mm.Limits}, nil
}

// The names of the balance fields of a metered response; see
// [Config.RateLimitHeaders].
const (
	headerUsesRemaining    = "Keygate-Uses-Remaining"
	headerUsesRefill       = "Keygate-Uses-Refill"
	headerCreditsRemaining = "Keygate-Credits-Remaining"
	headerCreditsRefill    = "Keygate-Credits-Refill"
)

// setReportHeaders sets the fields of h that tell what rep left: the
// RateLimit fields of its tightest rate limit (the refusing one, or the
// one with the fewest remaining that tells), and the balances of the
// key's uses and its identity's credits.
func setReportHeaders(h http.Header, rep *keygate.Report) {
	if l := tightest(rep.Limits); l != nil {
		st := keygate.RateStatus{RateLimit: l.Limit, Remaining: max(l.Remaining, 0), Reset: l.Reset}
		setRateHeaders(h, st, l.Allowed || l.Reset > 0)
	}
	setBalanceHeaders(h, rep.Uses, headerUsesRemaining, headerUsesRefill)
	setBalanceHeaders(h, rep.Credits, headerCreditsRemaining, headerCreditsRefill)
}

// tightest returns the limit of limits a client should be told about: the
// refusing one (last), or else the one with the fewest remaining, the
// first of equals; nil when there is none that tells.
func tightest(limits []keygate.LimitReport) *keygate.LimitReport {
	if n := len(limits); n > 0 && !limits[n-1].Allowed {
		return &limits[n-1]
	}
	var t *keygate.LimitReport
	for i := range limits {
		if l := &limits[i]; l.Remaining >= 0 && (t == nil || l.Remaining < t.Remaining) {
			t = l
		}
	}
	return t
}

// setBalanceHeaders sets the fields remaining and refill of h from b, if
// any: its balance, and when it is next refilled (RFC 3339, UTC).
func setBalanceHeaders(h http.Header, b *keygate.Balance, remaining, refill string) {
	if b == nil {
		return
	}
	h[remaining] = []string{strconv.FormatInt(b.Remaining, 10)}
	if !b.NextRefill.IsZero() {
		h[refill] = []string{b.NextRefill.UTC().Format(time.RFC3339)}
	}
}

// refillWait returns how long until the balance that refused the metered
// request of ctx refills (its identity's credits, when they were drawn
// from, else the key's uses), or 0 when it never does or it is unknown.
func refillWait(ctx context.Context, now time.Time) time.Duration {
	mo, ok := ctx.Value(outcomeKey{}).(*metered)
	if !ok {
		return 0
	}
	b := mo.report.Credits
	if b == nil {
		b = mo.report.Uses
	}
	if b == nil || b.NextRefill.IsZero() {
		return 0
	}
	return max(b.NextRefill.Sub(now), 0)
}

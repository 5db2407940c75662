package middleware

import (
	"fmt"
	"net/netip"
	"time"
)

// Throttle is the failure throttle of a [FailureLimit], for another way
// in than the middleware to count its failures per client address the
// way the middleware does (IPv6: per /64): the admin console's sign-in
// form takes one (console.Config.Throttle). Take the middleware's own
// with [Middleware.Throttle], so that bad keys sent to the API and to the
// sign-in form draw on one budget per address, or build one with
// [NewThrottle]. Its counts live in the process: each instance of a
// service throttles on its own.
//
// A Throttle is safe for concurrent use.
type Throttle struct{ t *throttle }

// NewThrottle returns the throttle of l, with now as its clock (nil means
// time.Now), or an error wrapping [ErrInvalidConfig] when l is invalid or
// is the zero FailureLimit, which throttles nothing.
func NewThrottle(l FailureLimit, now func() time.Time) (*Throttle, error) {
	if now == nil {
		now = time.Now
	}
	t, err := newThrottle(l, now)
	switch {
	case err != nil:
		return nil, err
	case t == nil:
		return nil, fmt.Errorf("%w: the zero FailureLimit throttles nothing", ErrInvalidConfig)
	}
	return &Throttle{t}, nil
}

// Throttle returns the throttle of the middleware's [Config.FailureLimit],
// shared with the middleware, or nil when it has none.
func (m *Middleware) Throttle() *Throttle {
	if m.throttle == nil {
		return nil
	}
	return &Throttle{m.throttle}
}

// Blocked reports whether addr has used up its failure budget, and how
// long until it may try again. A blocked client's request should be
// refused without verifying anything.
func (t *Throttle) Blocked(addr netip.Addr) (wait time.Duration, blocked bool) {
	return t.t.blocked(addr)
}

// Fail counts one failure from addr.
func (t *Throttle) Fail(addr netip.Addr) {
	t.t.fail(addr)
}

// Failed counts err against addr when it is a failed verification as the
// middleware counts them (a malformed, unknown, expired, revoked or
// disabled key; not a missing key, an outage, or a limit of a valid key),
// and reports whether it did.
func (t *Throttle) Failed(addr netip.Addr, err error) bool {
	if err == nil || !isFailure(err) {
		return false
	}
	t.t.fail(addr)
	return true
}

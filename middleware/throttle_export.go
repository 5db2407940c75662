package middleware

import (
	"net/netip"
	"time"
)

// This file exports the failure throttle for the console's sign-in form,
// with the API main's throttle.go has since exported (NewThrottle,
// Blocked, Record, nil-safe) so that the console compiles against either.
// When merging with main, delete this file: main's throttle.go declares
// Throttle and these methods itself.

// Throttle counts failed verifications per client address and refuses,
// for a while, the addresses that made too many, as [Config.FailureLimit]
// describes: the Middleware's own ([Middleware.Throttle]), and one for
// any other door where tokens are presented (the console's sign-in form),
// which calls [Throttle.Blocked] before verifying a token and
// [Throttle.Record] after. A nil *Throttle throttles nothing. A Throttle
// is safe for concurrent use.
type Throttle = throttle

// NewThrottle returns the Throttle of l with the clock now (time.Now when
// nil): nil, which throttles nothing, for the zero FailureLimit, or an
// error wrapping [ErrInvalidConfig] when l is invalid (as [New] checks
// Config.FailureLimit).
func NewThrottle(l FailureLimit, now func() time.Time) (*Throttle, error) {
	if now == nil {
		now = time.Now
	}
	return newThrottle(l, now)
}

// Blocked reports whether addr has used up its failure budget, and how
// long until it may fail again: refuse its token unverified.
func (t *Throttle) Blocked(addr netip.Addr) (wait time.Duration, blocked bool) {
	if t == nil {
		return 0, false
	}
	return t.blocked(addr)
}

// Record counts err, the outcome of verifying a token presented from
// addr, against addr when it is a failed verification: a malformed,
// unknown, expired, revoked or disabled key. Nil, an outage, a limit of a
// valid key, a denied address and a missing credential do not count.
func (t *Throttle) Record(addr netip.Addr, err error) {
	if t != nil && err != nil && isFailure(err) {
		t.fail(addr)
	}
}

package keygate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// ErrRateLimited means a key made more requests than its rate limit allows;
// the error is a [*RateLimitError] that says when to retry.
var ErrRateLimited = errors.New("keygate: rate limit exceeded")

// ErrAddressDenied means a key with an IP allow-list was presented from an
// address outside it (or from no known address).
var ErrAddressDenied = errors.New("keygate: client address not allowed for this key")

// RateLimitError is returned when a key is over its rate limit. It matches
// [ErrRateLimited] with [errors.Is].
type RateLimitError struct {
	// RetryAfter is how long until the key may make a request again.
	RetryAfter time.Duration
	// Limit is the key's rate limit (zero in a remote verifier's answer),
	// and Reset how long until all of it is available again (zero when
	// unknown: only the default in-process limiter knows it).
	Limit RateLimit
	Reset time.Duration
	// Name is the name of the limit that refused: DefaultRateLimit for
	// a key's own (Limits.Rate), or one of its or its identity's named
	// limits; Identity says it is the identity's, shared by its keys.
	Name     string
	Identity bool
}

// Error implements error.
func (e *RateLimitError) Error() string {
	switch {
	case e.Identity:
		return fmt.Sprintf("keygate: rate limit %q of the key's identity exceeded, retry after %v", e.Name, e.RetryAfter)
	case e.Name != "" && e.Name != DefaultRateLimit:
		return fmt.Sprintf("keygate: rate limit %q exceeded, retry after %v", e.Name, e.RetryAfter)
	}
	return fmt.Sprintf("keygate: rate limit exceeded, retry after %v", e.RetryAfter)
}

// Is reports whether target is ErrRateLimited.
func (e *RateLimitError) Is(target error) bool {
	return target == ErrRateLimited
}

// RateLimiter enforces keys' rate limits for a [Manager] when
// [Config.RateLimiter] is set; by default each Manager counts in its own
// process (an exact GCRA per key, kept in memory), so N instances allow N
// times a key's limit. A shared RateLimiter (package
// github.com/keygate/keygate/redis has one over Redis) makes limits exact
// across every instance.
//
// Allow takes one request of key id under limit and reports whether it is
// allowed; when it is not, retryAfter says how long until it would be. An
// error fails the verification closed, as [ErrUnavailable], unless the
// implementation chooses otherwise. It is called on every verification of
// a key with a "default" rate limit (never for keys without one; a
// [CostLimiter]'s AllowN is called instead for a verification with a cost
// or a report, [Manager.VerifyWith]'s), concurrently, and must be safe for
// concurrent use.
type RateLimiter interface {
	Allow(ctx context.Context, id uuid.UUID, limit RateLimit) (retryAfter time.Duration, allowed bool, err error)
}

// CostLimiter is a [RateLimiter] that also keeps named limits and takes a
// cost other than 1: the limits of [Limits].RateLimits and
// [IdentityLimits].RateLimits, and verifications with
// [VerifyOptions].Cost. The Redis limiter of package
// github.com/keygate/keygate/redis is one. With a Config.RateLimiter that
// is not, a key's "default" limit goes to it and every other limit is
// counted in this process (exact for one instance, N times the limit
// across N).
type CostLimiter interface {
	RateLimiter
	// AllowN takes cost units (1 or more, at most limit.Requests) from the
	// limit named name of subject, a key's id or an identity's id, and
	// reports what is left. The limit named "default" of a key is the one
	// Allow counts. A refused request takes nothing. It must be safe for
	// concurrent use; an error fails the verification closed, unless the
	// implementation chooses otherwise.
	AllowN(ctx context.Context, subject uuid.UUID, name string, limit RateLimit, cost int) (LimitDecision, error)
}

// LimitDecision is a [CostLimiter]'s answer about one request under one
// limit.
type LimitDecision struct {
	// Allowed says whether the request's cost was taken.
	Allowed bool
	// Remaining is how many units the limit has left now, one request
	// after another (0 when the next unit would be refused).
	Remaining int
	// RetryAfter, when the request was refused, is how long until its cost
	// would be allowed.
	RetryAfter time.Duration
	// Reset is how long until the whole limit is available again (0 when
	// it is).
	Reset time.Duration
}

// RateStatus is what is left of a key's rate limit at one moment: what
// an API tells its clients in headers such as RateLimit-Remaining, so that
// they slow down before they are refused.
type RateStatus struct {
	// RateLimit is the key's limit: Requests per Window.
	RateLimit
	// Remaining is how many requests the key may make now, one after
	// another, before one is refused (0 when the next would be).
	Remaining int
	// Reset is how long until the whole limit is available again (0 when
	// it is): with a steady rate limiter, one request comes back every
	// Window/Requests.
	Reset time.Duration
}

// RateReporter is a [RateLimiter] that can tell what is left of a key's
// limit without taking a request, for [Manager.RateStatus]. The Redis
// limiter of package github.com/keygate/keygate/redis is one.
type RateReporter interface {
	RateLimiter
	// Status returns how many requests key id may make now under limit,
	// and how long until the whole limit is available again.
	Status(ctx context.Context, id uuid.UUID, limit RateLimit) (remaining int, reset time.Duration, err error)
}

// RateStatus returns what is left of k's rate limit, as the Manager's rate
// limiter counts it now, after the request k was verified for (if any).
// It takes no request from the limit. It returns false for a key without a
// rate limit, one the Manager did not verify (a Key from [NewKey], as a
// remote verifier returns), and when Config.RateLimiter is set but is not
// a [RateReporter] or fails (there is then nothing reliable to tell).
//
// With the default in-process limiter it costs an atomic load and
// allocates nothing; a shared one is asked (a round trip to Redis). Under
// concurrent requests with the same key, the figure may already count some
// of theirs.
func (m *Manager) RateStatus(ctx context.Context, k *Key) (RateStatus, bool) {
	if k == nil || k.RateLimit <= 0 || k.state == nil {
		return RateStatus{}, false
	}
	limit := RateLimit{Requests: k.RateLimit, Window: k.RateWindow}
	if m.limiter != nil {
		r, ok := m.limiter.(RateReporter)
		if !ok {
			return RateStatus{}, false
		}
		remaining, reset, err := r.Status(ctx, k.ID, limit)
		if err != nil {
			return RateStatus{}, false
		}
		return RateStatus{RateLimit: limit, Remaining: min(max(remaining, 0), limit.Requests), Reset: max(reset, 0)}, true
	}
	remaining, reset := k.state.status(limit.Requests, limit.Window, m.clock().UnixNano())
	return RateStatus{RateLimit: limit, Remaining: remaining, Reset: reset}, true
}

// WithReportedRate returns a copy of k that carries st, the status of its
// rate limit as the service that verified it reported it: package
// client's remote Verifier builds the keys it returns with it, so that it
// can tell its middleware what is left of a key's limit
// ([Key.ReportedRate]). k is not modified.
func (k *Key) WithReportedRate(st RateStatus) *Key {
	c := *k
	var g grant
	if k.grant != nil {
		g = *k.grant
	}
	g.reported = &st
	c.grant = &g
	return &c
}

// ReportedRate returns the rate status k carries from [Key.WithReportedRate],
// and false when it carries none (every key a Manager verifies itself:
// ask [Manager.RateStatus]).
func (k *Key) ReportedRate() (RateStatus, bool) {
	if k == nil || k.grant == nil || k.grant.reported == nil {
		return RateStatus{}, false
	}
	return *k.grant.reported, true
}

// keyState is the per-key, per-process state that must outlive cache
// entries: the rate limiter of a key that has a rate limit.
type keyState struct {
	// tat is the GCRA theoretical arrival time, in Unix nanoseconds.
	tat atomic.Int64
}

// allow takes one request from a limit of requests per window at now
// (Unix nanoseconds), with the generic cell rate algorithm: requests are
// spaced window/requests apart on average, with bursts of up to requests.
// It is exact under concurrency (compare-and-swap) and allocates nothing.
// On refusal it returns how long to wait.
func (s *keyState) allow(requests int, window time.Duration, now int64) (time.Duration, bool) {
	return s.allowN(requests, window, 1, now)
}

// allowN is allow for a request that takes cost slots at once (1 to
// requests, so that the arithmetic stays within the window).
func (s *keyState) allowN(requests int, window time.Duration, cost int, now int64) (time.Duration, bool) {
	inc := int64(window) / int64(requests) * int64(cost)
	for {
		tat := s.tat.Load()
		next := max(tat, now) + inc
		if over := next - now - int64(window); over > 0 {
			return time.Duration(over), false
		}
		if s.tat.CompareAndSwap(tat, next) {
			return 0, true
		}
	}
}

// status returns how many requests allow would let through one after
// another at now (at most requests), and how long until requests would.
func (s *keyState) status(requests int, window time.Duration, now int64) (int, time.Duration) {
	interval := int64(window) / int64(requests)
	ahead := max(s.tat.Load()-now, 0) // how far the next request's slot is booked ahead
	remaining := (int64(window) - ahead) / interval
	return int(min(max(remaining, 0), int64(requests))), time.Duration(ahead)
}

// states holds a keyState per key id for its "default" limit, and per
// key or identity id and name for the named limits. It is safe for
// concurrent use.
type states struct {
	mu      sync.Mutex
	m       map[uuid.UUID]*keyState
	perName map[uuid.UUID]map[string]*keyState
}

// named returns the state of the limit called name of id (a key's or an
// identity's), creating it if needed.
func (s *states) named(id uuid.UUID, name string) *keyState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perName == nil {
		s.perName = make(map[uuid.UUID]map[string]*keyState)
	}
	byName := s.perName[id]
	if byName == nil {
		byName = make(map[string]*keyState)
		s.perName[id] = byName
	}
	st, ok := byName[name]
	if !ok {
		st = new(keyState)
		byName[name] = st
	}
	return st
}

// get returns the state of id, creating it if needed.
func (s *states) get(id uuid.UUID) *keyState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[uuid.UUID]*keyState)
	}
	st, ok := s.m[id]
	if !ok {
		st = new(keyState)
		s.m[id] = st
	}
	return st
}

// drop forgets the states of a deleted key or identity.
func (s *states) drop(id uuid.UUID) {
	s.mu.Lock()
	delete(s.m, id)
	delete(s.perName, id)
	s.mu.Unlock()
}

// allowsAddr reports whether addr is inside one of the key's allowed
// prefixes. An invalid addr (unknown) is never allowed.
func (k *Key) allowsAddr(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, p := range k.AllowedCIDRs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

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
}

// Error implements error.
func (e *RateLimitError) Error() string {
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
// a rate-limited key (never for keys without one), concurrently, and must
// be safe for concurrent use.
type RateLimiter interface {
	Allow(ctx context.Context, id uuid.UUID, limit RateLimit) (retryAfter time.Duration, allowed bool, err error)
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
	interval := int64(window) / int64(requests)
	for {
		tat := s.tat.Load()
		next := max(tat, now) + interval
		if over := next - now - int64(window); over > 0 {
			return time.Duration(over), false
		}
		if s.tat.CompareAndSwap(tat, next) {
			return 0, true
		}
	}
}

// states holds a keyState per key id. It is safe for concurrent use.
type states struct {
	mu sync.Mutex
	m  map[uuid.UUID]*keyState
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

// drop forgets the state of a deleted key.
func (s *states) drop(id uuid.UUID) {
	s.mu.Lock()
	delete(s.m, id)
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

package middleware

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
)

// FailureLimit throttles the clients that present bad keys; see
// [Config.FailureLimit]. The zero FailureLimit throttles nothing.
type FailureLimit struct {
	// Failures is how many failed verifications a client address may make
	// per Window, in bursts of up to Failures: after those, its requests
	// that carry a credential are refused until the budget refills.
	Failures int
	// Window is the period Failures are counted over.
	Window time.Duration
	// MaxClients bounds how many client addresses are tracked at once;
	// when full, an arbitrary one is forgotten. Default 100000.
	MaxClients int
}

// ErrTooManyFailures means the client's address sent too many bad keys
// recently: the request was refused without verifying its key. It
// becomes a 429 with code "too_many_failures" and Retry-After.
var ErrTooManyFailures = errors.New("middleware: too many failed verifications from this address")

// failureError is ErrTooManyFailures with the time to wait.
type failureError struct{ wait time.Duration }

func (e *failureError) Error() string {
	return fmt.Sprintf("%v; retry after %v", ErrTooManyFailures, e.wait)
}

func (e *failureError) Is(target error) bool { return target == ErrTooManyFailures }

// throttleShards spreads the addresses over independently locked maps.
const throttleShards = 16

// throttle counts failed verifications per client address with the
// generic cell rate algorithm: each failure takes interval =
// window/failures of budget, and an address whose next failure would
// exceed the window is refused. It is safe for concurrent use.
type throttle struct {
	interval, window int64 // nanoseconds
	perShard         int
	now              func() time.Time
	shards           [throttleShards]throttleShard
}

type throttleShard struct {
	mu  sync.Mutex
	tat map[netip.Addr]*atomic.Int64
}

// newThrottle returns the throttle of l, or nil when l throttles nothing.
func newThrottle(l FailureLimit, now func() time.Time) (*throttle, error) {
	if l.Failures == 0 && l.Window == 0 {
		return nil, nil
	}
	if l.Failures <= 0 || l.Window <= 0 || l.MaxClients < 0 || int64(l.Window) < int64(l.Failures) {
		return nil, fmt.Errorf("%w: FailureLimit needs positive Failures and Window (at most one failure per nanosecond)", ErrInvalidConfig)
	}
	clients := l.MaxClients
	if clients == 0 {
		clients = 100000
	}
	t := &throttle{interval: int64(l.Window) / int64(l.Failures), window: int64(l.Window),
		perShard: max(1, clients/throttleShards), now: now}
	for i := range t.shards {
		t.shards[i].tat = make(map[netip.Addr]*atomic.Int64)
	}
	return t, nil
}

// client returns the bucket of addr: IPv6 addresses count per /64, which
// one client usually holds whole.
func client(addr netip.Addr) netip.Addr {
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

// shard returns the shard of addr.
func (t *throttle) shard(addr netip.Addr) *throttleShard {
	b := addr.As16()
	return &t.shards[(b[15]^b[7]^b[3])%throttleShards]
}

// blocked reports whether addr has used up its failure budget, and how
// long until it may try again.
func (t *throttle) blocked(addr netip.Addr) (time.Duration, bool) {
	addr = client(addr)
	s := t.shard(addr)
	s.mu.Lock()
	tat, ok := s.tat[addr]
	s.mu.Unlock()
	if !ok {
		return 0, false
	}
	now := t.now().UnixNano()
	if over := max(tat.Load(), now) + t.interval - now - t.window; over > 0 {
		return time.Duration(over), true
	}
	return 0, false
}

// fail counts one failed verification from addr.
func (t *throttle) fail(addr netip.Addr) {
	addr = client(addr)
	s := t.shard(addr)
	s.mu.Lock()
	tat, ok := s.tat[addr]
	if !ok {
		if len(s.tat) >= t.perShard {
			for victim := range s.tat {
				delete(s.tat, victim)
				break
			}
		}
		tat = new(atomic.Int64)
		s.tat[addr] = tat
	}
	s.mu.Unlock()
	now := t.now().UnixNano()
	for {
		cur := tat.Load()
		next := max(cur, now) + t.interval
		if next-now > t.window+t.interval {
			return // already over: the budget refills from where it was
		}
		if tat.CompareAndSwap(cur, next) {
			return
		}
	}
}

// isFailure reports whether err is a failed verification that counts
// against the client: a malformed, unknown, expired, revoked or disabled key. An
// outage, a limit of a valid key, or a missing key does not count.
func isFailure(err error) bool {
	return errors.Is(err, ErrMalformedCredential) || errors.Is(err, keygate.ErrMalformed) ||
		(!errors.Is(err, keygate.ErrUnavailable) &&
			(errors.Is(err, keygate.ErrInvalid) || errors.Is(err, keygate.ErrExpired) || errors.Is(err, keygate.ErrRevoked) ||
				errors.Is(err, keygate.ErrDisabled)))
}

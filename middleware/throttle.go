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

// Throttle counts failed verifications per client address and refuses,
// for a while, the addresses that made too many, as [Config.FailureLimit]
// describes: the Middleware's own, and one for any other door where
// tokens are presented (a sign-in form, say), which calls
// [Throttle.Blocked] before verifying a token and [Throttle.Record] after.
// A nil *Throttle throttles nothing. A Throttle is safe for concurrent
// use.
//
// It is the generic cell rate algorithm: each failure takes
// Window/Failures of budget, and an address whose next failure would
// exceed the window is refused.
//
// Addresses are counted per client, by the part of the address space one
// client holds:
//
//   - an IPv4 address, whole;
//   - an IPv6 address that embeds the client's IPv4 address, as that IPv4
//     address, so that the clients behind one translator or relay are
//     apart, and a client counts once whichever way it comes:
//     IPv4-mapped (::ffff:0:0/96), NAT64's well-known prefix
//     (64:ff9b::/96, RFC 6052: the last 32 bits), Teredo (2001::/32, RFC
//     4380: the last 32 bits inverted, the client's public address) and
//     6to4 (2002::/16, RFC 3056: bits 16–47; a 6to4 site holds a /48,
//     65536 /64s);
//   - an address of the local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215),
//     whole: its operator chooses where in it the IPv4 address goes, and
//     a translator makes one address of each IPv4 client whatever the
//     layout;
//   - any other IPv6 address, per /64, which one client usually holds
//     whole.
//
// Traffic from those prefixes comes through a translator or relay that
// sends the answers to the embedded IPv4 address, so a client can choose
// an embedded address no more freely than an IPv4 one.
type Throttle struct {
	interval, window int64 // nanoseconds
	perShard         int
	now              func() time.Time
	shards           [throttleShards]throttleShard
}

type throttleShard struct {
	mu  sync.Mutex
	tat map[netip.Addr]*atomic.Int64
}

// NewThrottle returns the Throttle of l with the clock now (time.Now when
// nil): nil, which throttles nothing, for the zero FailureLimit, or an
// error wrapping [ErrInvalidConfig] when l is invalid (as [New] checks
// Config.FailureLimit).
func NewThrottle(l FailureLimit, now func() time.Time) (*Throttle, error) {
	if l.Failures == 0 && l.Window == 0 {
		return nil, nil
	}
	if l.Failures <= 0 || l.Window <= 0 || l.MaxClients < 0 || int64(l.Window) < int64(l.Failures) {
		return nil, fmt.Errorf("%w: FailureLimit needs positive Failures and Window (at most one failure per nanosecond)", ErrInvalidConfig)
	}
	if now == nil {
		now = time.Now
	}
	clients := l.MaxClients
	if clients == 0 {
		clients = 100000
	}
	t := &Throttle{interval: int64(l.Window) / int64(l.Failures), window: int64(l.Window),
		perShard: max(1, clients/throttleShards), now: now}
	for i := range t.shards {
		t.shards[i].tat = make(map[netip.Addr]*atomic.Int64)
	}
	return t, nil
}

// client returns the bucket of addr, as described at [Throttle].
func client(addr netip.Addr) netip.Addr {
	if addr.Is4() {
		return addr
	}
	b := addr.As16()
	switch {
	case b[0] == 0x20 && b[1] == 0x02: // 6to4
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0: // Teredo
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0:
		if b[5] == 0 && isZero(b[6:12]) { // 64:ff9b::/96
			return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		}
		if b[5] == 1 { // 64:ff9b:1::/48
			return addr.WithZone("")
		}
	case addr.Is4In6():
		return addr.Unmap()
	}
	p, _ := addr.Prefix(64)
	return p.Addr()
}

// isZero reports whether b holds only zeros.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// shard returns the shard of addr.
func (t *Throttle) shard(addr netip.Addr) *throttleShard {
	b := addr.As16()
	return &t.shards[(b[15]^b[7]^b[3])%throttleShards]
}

// Blocked reports whether addr has used up its failure budget, and how
// long until it may fail again: refuse its token unverified (the
// Middleware answers 429 too_many_failures with Retry-After). It
// allocates nothing.
func (t *Throttle) Blocked(addr netip.Addr) (wait time.Duration, blocked bool) {
	if t == nil {
		return 0, false
	}
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

// Record counts err, the outcome of verifying a token presented from
// addr, against addr when it is a failed verification: a malformed,
// unknown, expired, revoked or disabled key ([ErrMalformedCredential],
// keygate.ErrMalformed, ErrInvalid, ErrExpired, ErrRevoked, ErrDisabled).
// Nil, an outage (keygate.ErrUnavailable), a limit of a valid key, a
// denied address and a missing credential do not count.
func (t *Throttle) Record(addr netip.Addr, err error) {
	if t != nil && err != nil && isFailure(err) {
		t.fail(addr)
	}
}

// fail counts one failed verification from addr.
func (t *Throttle) fail(addr netip.Addr) {
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

package console

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// SessionStore keeps the console's sessions and its used one-time
// nonces. The default, [MemoryStore], keeps them in the process; a store
// that several instances share (store/sqlstore's Store.Sessions, or
// NewSessions of module github.com/keygate/keygate/redis) lets any
// instance behind a load balancer serve any request of a session, with
// no stickiness.
//
// The console gives a store only digests: a session is stored under the
// SHA-256 of the random id its cookie holds, and a nonce as its SHA-256,
// so that reading the store gives nobody a session. Its data is the
// console's own encoding of what the session carries (the anti-forgery
// token, the key signed in with and the stored hash of its secret, the
// name shown); a store keeps it as opaque bytes. The methods use only
// standard types, so that a store need not import this package.
//
// Times come from the console's clock ([Config.Now]): a store compares
// them with the times it keeps, not with its own clock, except to drop
// what has expired. A store keeps times to the microsecond at least.
// A session is live while now is before its expiry.
//
// "Not found" is no error: reading, touching, flashing or deleting a
// session that does not exist, or has expired, does nothing and returns
// nil. An error means the store failed, and the console fails closed
// (503). A SessionStore must be safe for concurrent use, by goroutines
// and, for a shared store, by instances.
type SessionStore interface {
	// CreateSession stores a new session under id, for owner (the key
	// signed in with, or the host application's user), holding data, live
	// from now until expires. If owner then holds more than perOwner live
	// sessions, its oldest (created first; of sessions created at the same
	// time, any) end until it holds perOwner; another owner's never do.
	// owner is at most 255 bytes. Of concurrent creations for one owner,
	// the bound may be exceeded by at most the ones still running.
	CreateSession(ctx context.Context, id []byte, owner string, data []byte, now, expires time.Time, perOwner int) error
	// Session returns the data and flash message of session id if it is
	// live at now, and when it expires; data is nil when it is not.
	Session(ctx context.Context, id []byte, now time.Time) (data []byte, flash string, expires time.Time, err error)
	// TouchSession sets the expiry of session id, of owner, to expires
	// if it is live at now. It never brings back a session that ended.
	TouchSession(ctx context.Context, id []byte, owner string, now, expires time.Time) error
	// DeleteSession ends session id.
	DeleteSession(ctx context.Context, id []byte) error
	// SetFlash sets the flash message of session id, the message for its
	// next page, replacing any.
	SetFlash(ctx context.Context, id []byte, msg string) error
	// TakeFlash clears the flash message of session id if it is msg, and
	// reports whether it did: of several calls taking one message, on any
	// instance, one gets true.
	TakeFlash(ctx context.Context, id []byte, msg string) (bool, error)
	// UseNonce records nonce as used until expires, which is after now,
	// and reports whether it was unused: of any number of calls with one
	// nonce before expires, on any instance, exactly one gets true. After
	// expires a store may answer either.
	UseNonce(ctx context.Context, nonce []byte, now, expires time.Time) (bool, error)
}

// MemoryStore is the default [SessionStore]: sessions in the memory of
// one process, which another instance does not see. It holds at most a
// number of sessions: past it, the oldest session of the owner (key or
// user) holding the most sessions ends, so that one key signing in over
// and over ends only its own. It also remembers at most eight times as
// many used nonces: past that, the one used first is forgotten (its form
// could then be sent once more). Every operation takes constant time
// but the sweep of expired sessions, once a minute or when the store is
// full. A MemoryStore is safe for concurrent use.
type MemoryStore struct {
	mu        sync.Mutex
	max       int
	sessions  map[string]*memorySession
	owners    map[string][]*memorySession // created first
	nonces    map[string]time.Time
	used      []usedNonce // nonces in the order used, from usedHead
	usedHead  int
	lastSweep time.Time
}

// usedNonce is a nonce of a MemoryStore, in the order of use.
type usedNonce struct {
	nonce   string
	expires time.Time
}

// memorySession is a session of a MemoryStore.
type memorySession struct {
	id, owner        string
	data             []byte
	flash            string
	created, expires time.Time
}

// memorySweepEvery is how often a MemoryStore drops what has expired.
const memorySweepEvery = time.Minute

var _ SessionStore = (*MemoryStore)(nil)

// NewMemoryStore returns a MemoryStore of at most maxSessions sessions
// (zero or less: [DefaultMaxSessions]).
func NewMemoryStore(maxSessions int) *MemoryStore {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	return &MemoryStore{max: maxSessions, sessions: map[string]*memorySession{}, owners: map[string][]*memorySession{},
		nonces: map[string]time.Time{}}
}

// memoryErr returns the error of an operation on a MemoryStore: that of
// ctx, if it is done.
func memoryErr(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("console: memory store: %s: %w", op, err)
	}
	return nil
}

// CreateSession implements [SessionStore].
func (m *MemoryStore) CreateSession(ctx context.Context, id []byte, owner string, data []byte, now, expires time.Time, perOwner int) error {
	if err := memoryErr(ctx, "create session"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now, len(m.sessions) >= m.max)
	if old := m.sessions[string(id)]; old != nil {
		m.remove(old)
	}
	s := &memorySession{id: string(id), owner: owner, data: slices.Clone(data), created: now, expires: expires}
	m.sessions[s.id] = s
	list := slices.DeleteFunc(m.owners[owner], func(o *memorySession) bool {
		if now.Before(o.expires) {
			return false
		}
		delete(m.sessions, o.id)
		return true
	})
	// Kept in order of creation: after the last created no later than s.
	i := len(list)
	for i > 0 && list[i-1].created.After(now) {
		i--
	}
	list = slices.Insert(list, i, s)
	for len(list) > max(perOwner, 1) {
		delete(m.sessions, list[0].id)
		list = list[1:]
	}
	m.owners[owner] = list
	for len(m.sessions) > m.max {
		// The oldest session of the owner holding the most.
		var most []*memorySession
		for _, l := range m.owners {
			if len(l) > len(most) {
				most = l
			}
		}
		m.remove(most[0])
	}
	return nil
}

// remove drops s. m.mu is held.
func (m *MemoryStore) remove(s *memorySession) {
	delete(m.sessions, s.id)
	list := slices.DeleteFunc(m.owners[s.owner], func(o *memorySession) bool { return o == s })
	if len(list) == 0 {
		delete(m.owners, s.owner)
	} else {
		m.owners[s.owner] = list
	}
}

// sweep drops the sessions and nonces expired at now, if a sweep is due
// or force is set. m.mu is held.
func (m *MemoryStore) sweep(now time.Time, force bool) {
	if !force && now.Sub(m.lastSweep) < memorySweepEvery && !now.Before(m.lastSweep) {
		return
	}
	m.lastSweep = now
	for _, s := range m.sessions {
		if !now.Before(s.expires) {
			m.remove(s)
		}
	}
	m.forgetNonces(func(u usedNonce) bool { return !now.Before(u.expires) })
}

// forgetNonces forgets the nonces used first while drop says so. m.mu is
// held.
func (m *MemoryStore) forgetNonces(drop func(usedNonce) bool) {
	for m.usedHead < len(m.used) && drop(m.used[m.usedHead]) {
		u := m.used[m.usedHead]
		if exp, ok := m.nonces[u.nonce]; ok && exp.Equal(u.expires) {
			delete(m.nonces, u.nonce)
		}
		m.used[m.usedHead] = usedNonce{}
		m.usedHead++
	}
	if m.usedHead > len(m.used)/2 {
		m.used = slices.Delete(m.used, 0, m.usedHead)
		m.usedHead = 0
	}
}

// live returns session id if it is live at now. m.mu is held.
func (m *MemoryStore) live(id []byte, now time.Time) *memorySession {
	s := m.sessions[string(id)]
	if s == nil || !now.Before(s.expires) {
		return nil
	}
	return s
}

// Session implements [SessionStore].
func (m *MemoryStore) Session(ctx context.Context, id []byte, now time.Time) ([]byte, string, time.Time, error) {
	if err := memoryErr(ctx, "read session"); err != nil {
		return nil, "", time.Time{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.live(id, now)
	if s == nil {
		return nil, "", time.Time{}, nil
	}
	return slices.Clone(s.data), s.flash, s.expires, nil
}

// TouchSession implements [SessionStore].
func (m *MemoryStore) TouchSession(ctx context.Context, id []byte, owner string, now, expires time.Time) error {
	if err := memoryErr(ctx, "touch session"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.live(id, now); s != nil {
		s.expires = expires
	}
	return nil
}

// DeleteSession implements [SessionStore].
func (m *MemoryStore) DeleteSession(ctx context.Context, id []byte) error {
	if err := memoryErr(ctx, "delete session"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[string(id)]; s != nil {
		m.remove(s)
	}
	return nil
}

// SetFlash implements [SessionStore].
func (m *MemoryStore) SetFlash(ctx context.Context, id []byte, msg string) error {
	if err := memoryErr(ctx, "set flash"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[string(id)]; s != nil {
		s.flash = msg
	}
	return nil
}

// TakeFlash implements [SessionStore].
func (m *MemoryStore) TakeFlash(ctx context.Context, id []byte, msg string) (bool, error) {
	if err := memoryErr(ctx, "take flash"); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[string(id)]
	if s == nil || msg == "" || s.flash != msg {
		return false, nil
	}
	s.flash = ""
	return true, nil
}

// UseNonce implements [SessionStore].
func (m *MemoryStore) UseNonce(ctx context.Context, nonce []byte, now, expires time.Time) (bool, error) {
	if err := memoryErr(ctx, "use nonce"); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.nonces[string(nonce)]; ok && now.Before(exp) {
		return false, nil
	}
	m.forgetNonces(func(u usedNonce) bool { return !now.Before(u.expires) || len(m.nonces) >= 8*m.max })
	m.nonces[string(nonce)] = expires
	m.used = append(m.used, usedNonce{string(nonce), expires})
	return true, nil
}

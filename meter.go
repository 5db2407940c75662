package keygate

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// MaxCost is the largest cost of one verification ([VerifyOptions.Cost]).
const MaxCost = 1_000_000_000

// MaxVerifyLimits bounds the on-demand rate limits one verification may
// name ([VerifyOptions].Limits): those of its key and of its identity.
const MaxVerifyLimits = 2 * MaxRateLimits

// VerifyOptions are the options of one verification with
// [Manager.VerifyWith].
type VerifyOptions struct {
	// Address is the client address the token was presented from, checked
	// against a key's IP allow-list (the zero Addr when unknown).
	Address netip.Addr
	// Cost is what the verification takes from each rate limit it is
	// checked against, from the key's uses and from its identity's
	// credits: 1 to MaxCost, 0 meaning 1. A request to a language model
	// might cost its tokens, a bulk call its items.
	Cost int
	// Limits names the on-demand rate limits (OnDemand true) of the key
	// and of its identity that apply to this verification, besides the
	// always-on ones. A name that neither has is ignored, so that one
	// endpoint can name a limit that only some keys carry.
	Limits []string
}

// Report is what a verification with [Manager.VerifyWith] took: the
// limits it was checked against and the balances it drew from, with
// what is left of each, for an API to tell its clients (headers such as
// RateLimit-Remaining, or a credits balance). A refused verification
// reports what was checked up to the refusal, the refusing limit or
// balance last.
type Report struct {
	// Cost is the verification's cost.
	Cost int
	// Limits are the rate limits checked, in the order they were: the
	// key's "default", its other limits that apply (always-on, or on
	// demand and named) in the key's order, then its identity's likewise.
	Limits []LimitReport
	// Uses is the key's balance of uses, nil when it has no usage limit.
	Uses *Balance
	// Credits is the key's identity's balance of credits, nil when it has
	// none.
	Credits *Balance
}

// LimitReport is what is left of one rate limit after a verification.
type LimitReport struct {
	// Limit is the rate limit, its Name included.
	Limit RateLimit
	// Identity says that the limit is the key's identity's, shared by all
	// its keys, rather than the key's own.
	Identity bool
	// Allowed says whether the verification's cost was taken from it.
	Allowed bool
	// Remaining is how many units the limit has left now, one request
	// after another; -1 when the Manager's rate limiter cannot tell (a
	// Config.RateLimiter that is not a [CostLimiter]).
	Remaining int
	// Reset is how long until the whole limit is available again (0 when
	// it is or when unknown), and RetryAfter, when the verification was
	// refused, how long until its cost would be allowed.
	Reset      time.Duration
	RetryAfter time.Duration
}

// Balance is what is left of a key's uses or an identity's credits after
// a verification (or, when it was refused for them, what could not pay).
type Balance struct {
	// Remaining is the balance.
	Remaining int64
	// NextRefill is when the balance is next set to its refill's amount;
	// the zero Time when it never refills.
	NextRefill time.Time
}

// VerifyWith is [Manager.VerifyFrom] with options: a cost other than 1,
// and on-demand rate limits to apply (see [VerifyOptions]). Besides the
// key or the error, it returns the [Report] of the limits checked and the
// balances drawn from, on success and on refusal alike.
//
// A verification is checked against the key's rate limits, then its
// identity's, then takes its cost from the key's uses, then from its
// identity's credits, stopping at the first refusal: what the limits
// before it took stays taken (a refused request is not refunded, as with
// any rate limiter). With Config.RateLimiter set, the key's "default"
// limit and, when it is a [CostLimiter], every other limit are counted by
// it (across instances); without one, in this process.
//
// Options out of bounds (a negative Cost or one above MaxCost, more than
// MaxVerifyLimits names, a name no limit could have) are an error wrapping
// [ErrInvalidRequest], with nothing verified.
func (m *Manager) VerifyWith(ctx context.Context, token string, opts VerifyOptions) (*Key, Report, error) {
	q, err := newQuery(opts.Cost, opts.Limits)
	if err != nil {
		return nil, Report{}, err
	}
	rep := Report{Cost: int(q.cost)}
	q.report = &rep
	k, err := m.measuredVerify(ctx, token, opts.Address, &q, nil, false)
	return k, rep, err
}

// VerifyCachedWith is [Manager.VerifyWith] for a token whose key is in
// the verification cache, as [Manager.VerifyCached] is VerifyFrom's: for
// a key in the cache it returns what VerifyWith would, metered alike,
// with known true; for any other token it returns known false and does
// nothing else (no store lookup, nothing metered or counted). Options out
// of bounds are an error wrapping [ErrInvalidRequest], with known false.
func (m *Manager) VerifyCachedWith(ctx context.Context, token string, opts VerifyOptions) (k *Key, rep Report, known bool, err error) {
	q, err := newQuery(opts.Cost, opts.Limits)
	if err != nil {
		return nil, Report{}, false, err
	}
	rep.Cost = int(q.cost)
	q.report = &rep
	k, err = m.measuredVerify(ctx, token, opts.Address, &q, nil, true)
	if errors.Is(err, errNotCached) {
		return nil, Report{}, false, nil
	}
	return k, rep, true, err
}

// verifyQuery is what one verification asks beyond its token and
// address; nil for [Manager.Verify]'s (a cost of 1, nothing named, no
// report).
type verifyQuery struct {
	// cost is 1 or more.
	cost int64
	// names are the on-demand limits that apply.
	names []string
	// report, when not nil, receives what was checked.
	report *Report
}

// newQuery returns the query of a verification with cost (0
// meaning 1) naming limits, or an error wrapping ErrInvalidRequest.
func newQuery(cost int, limits []string) (verifyQuery, error) {
	bad := func(format string, args ...any) error {
		return errorf("%w: %w: "+format, append([]any{ErrInvalidRequest, ErrInvalidField}, args...)...)
	}
	switch {
	case cost == 0:
		cost = 1
	case cost < 0 || cost > MaxCost:
		return verifyQuery{}, bad("a verification's cost must be 1 to %d", MaxCost)
	}
	if len(limits) > MaxVerifyLimits {
		return verifyQuery{}, bad("a verification names at most %d limits", MaxVerifyLimits)
	}
	for i, n := range limits {
		if !ValidLimitName(n) { // the name is not quoted: it may be anything a caller sent
			return verifyQuery{}, bad("limits[%d] cannot name a rate limit (1 to %d lowercase letters, digits, '_', '-' or '.', starting with a letter)", i, MaxRateLimitName)
		}
	}
	return verifyQuery{cost: int64(cost), names: limits}, nil
}

// applies reports whether l applies to the verification: always-on, or
// named.
func (q *verifyQuery) applies(l *RateLimit) bool {
	if !l.OnDemand {
		return true
	}
	for _, n := range q.names {
		if n == l.Name {
			return true
		}
	}
	return false
}

// keyMeter is what a cached key's verification meters besides its
// "default" rate limit and its uses: its other named rate limits and its
// identity's limits. A key with none has no keyMeter.
type keyMeter struct {
	// own are the key's named limits.
	own []meteredLimit
	// ident is the key's identity's limits; nil when it has no identity.
	ident *identEntry
	// always says that something applies to every verification: an
	// always-on limit, or the identity's credits.
	always bool
}

// meteredLimit is a named rate limit and its in-process state.
type meteredLimit struct {
	RateLimit
	state *keyState
}

// identEntry is an identity's limits as a Manager's cached keys apply
// them, shared by the identity's keys: loaded with the first of them and
// dropped, with every cached key it holds, when the identity changes
// (see Manager.identChanged).
type identEntry struct {
	id uuid.UUID
	// expires is when the entry is loaded again for a key loaded after it
	// (the Manager's clock, Unix nanoseconds): a change of the identity
	// that no change feed reports applies within a cache TTL, as a key's.
	expires int64
	limits  []meteredLimit
	credits *Refill // the credits' refill
	// hasCredits says that the identity has credits.
	hasCredits bool
	// keys are the ids of the keys loaded with the entry, guarded by
	// idents.mu.
	keys map[uuid.UUID]struct{}
}

// idents holds the identity entries of a Manager.
type idents struct {
	mu sync.Mutex
	m  map[uuid.UUID]*identEntry
	// gen counts changes of identities: an entry loaded across one is
	// not kept.
	gen uint64
}

// meterOf returns the keyMeter of rec, whose identity's entry is ie (nil
// for none), or nil when it needs none.
func (m *Manager) meterOf(rec *store.Key, ie *identEntry) *keyMeter {
	if len(rec.RateLimits) == 0 && (ie == nil || (len(ie.limits) == 0 && !ie.hasCredits)) {
		return nil
	}
	km := &keyMeter{ident: ie}
	for _, l := range rec.RateLimits {
		km.own = append(km.own, meteredLimit{RateLimit: l, state: m.states.named(rec.ID, l.Name)})
		km.always = km.always || !l.OnDemand
	}
	if ie != nil {
		km.always = km.always || ie.hasCredits
		for _, l := range ie.limits {
			km.always = km.always || !l.OnDemand
		}
	}
	return km
}

// identEntry returns the entry of identity id, loading it from the store
// when it is not held or has expired, and records that key keyID was
// loaded with it at now. An identity the store does not hold (deleted as
// the key was unlinked from it) has no entry (nil). Only a store failure
// is an error ([ErrUnavailable]).
func (m *Manager) identEntry(ctx context.Context, id, keyID uuid.UUID, now time.Time) (*identEntry, error) {
	is := &m.idents
	is.mu.Lock()
	if ie := is.m[id]; ie != nil && now.UnixNano() < ie.expires {
		ie.keys[keyID] = struct{}{}
		is.mu.Unlock()
		return ie, nil
	}
	// The caller's load read the cache epoch before it began: a change of
	// the identity from now on moves it on (identChanged), so the key is
	// not cached with an entry loaded stale, and gen keeps the entry from
	// being held for the identity's other keys.
	gen := is.gen
	is.mu.Unlock()
	rec, err := m.identities.GetIdentity(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, errorf("keygate: look up identity: %w: %w", ErrUnavailable, err)
	}
	ie := &identEntry{id: id, expires: now.Add(m.keyTTL()).UnixNano(), keys: map[uuid.UUID]struct{}{keyID: {}}}
	for _, l := range rec.RateLimits {
		ie.limits = append(ie.limits, meteredLimit{RateLimit: l, state: m.states.named(id, l.Name)})
	}
	if c := rec.Credits; c != nil {
		ie.hasCredits, ie.credits = true, c.Refill
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	cur := is.m[id]
	if cur != nil && now.UnixNano() < cur.expires {
		cur.keys[keyID] = struct{}{}
		return cur, nil
	}
	if is.gen != gen {
		return ie, nil // for this load only
	}
	if cur != nil {
		// Keys cached with the expired entry are still dropped when the
		// identity changes.
		for k := range cur.keys {
			ie.keys[k] = struct{}{}
		}
	}
	if is.m == nil {
		is.m = make(map[uuid.UUID]*identEntry)
	}
	is.m[id] = ie
	return ie, nil
}

// identChanged drops the entry of identity id, if any, and the cached
// keys loaded with it, so that the identity's next verification loads
// its limits as they are now. uuid.Nil drops every entry (the cache is
// being cleared too). For an id that is a key's, not an identity's, it
// only keeps loads under way from caching (the key's own invalidation
// does that too).
func (m *Manager) identChanged(id uuid.UUID) {
	is := &m.idents
	is.mu.Lock()
	is.gen++
	var keys []uuid.UUID
	if id == uuid.Nil {
		clear(is.m)
	} else if ie := is.m[id]; ie != nil {
		delete(is.m, id)
		for k := range ie.keys {
			keys = append(keys, k)
		}
	}
	is.mu.Unlock()
	// Loads under way with the old entry must not fill the cache.
	m.cache.epoch.Add(1)
	for _, k := range keys {
		m.cache.invalidate(k)
	}
}

// allowLimit takes q's cost from limit l of subject (the key's id, or
// its identity's with identity true), whose in-process state is state. A
// CostLimiter counts every limit; a plain RateLimiter only a key's
// "default" (one request whatever the cost, what is left unknown); this
// process counts the rest. A cost above the whole limit is refused
// without asking. On refusal it returns the audit reason and a
// *RateLimitError.
func (m *Manager) allowLimit(ctx context.Context, subject uuid.UUID, l RateLimit, state *keyState, identity bool, now time.Time, q *verifyQuery) (_ string, err error) {
	defer func() { m.tel.rateDecision(ctx, err) }()
	cl, costly := m.limiter.(CostLimiter)
	plain := m.limiter != nil && !costly && !identity && l.Name == DefaultRateLimit
	cost := int(q.cost)
	var d LimitDecision
	switch {
	case cost > l.Requests:
		d = LimitDecision{RetryAfter: l.Window, Remaining: -1}
		if !costly && !plain {
			d.Remaining, d.Reset = state.status(l.Requests, l.Window, now.UnixNano())
		}
	case costly:
		if d, err = cl.AllowN(ctx, subject, l.Name, l, cost); err != nil {
			return "unavailable", errorf("keygate: rate limiter: %w: %w", ErrUnavailable, err)
		}
	case plain:
		unnamed := l
		unnamed.Name = "" // as Allow has always been given it
		if d.RetryAfter, d.Allowed, err = m.limiter.Allow(ctx, subject, unnamed); err != nil {
			return "unavailable", errorf("keygate: rate limiter: %w: %w", ErrUnavailable, err)
		}
		d.Remaining = -1
	default:
		d = state.decide(l, cost, now.UnixNano())
	}
	return q.limitDecided(l, identity, d)
}

// limitDecided reports decision d of limit l (the identity's with
// identity true), and returns a *RateLimitError when it is a refusal.
func (q *verifyQuery) limitDecided(l RateLimit, identity bool, d LimitDecision) (string, error) {
	if q.report != nil {
		q.report.Limits = append(q.report.Limits, LimitReport{Limit: l, Identity: identity, Allowed: d.Allowed,
			Remaining: d.Remaining, Reset: d.Reset, RetryAfter: d.RetryAfter})
	}
	if !d.Allowed {
		e := &RateLimitError{RetryAfter: d.RetryAfter, Limit: l, Reset: d.Reset, Name: l.Name, Identity: identity}
		if !identity && l.Name == DefaultRateLimit {
			e.Limit.Name = "" // as Limits.Rate holds it
		}
		return "rate_limited", e
	}
	return "", nil
}

// decide takes cost from limit l at now (Unix nanoseconds) in this
// process, with the GCRA of allow, and returns the decision with what is
// left.
func (s *keyState) decide(l RateLimit, cost int, now int64) LimitDecision {
	wait, ok := s.allowN(l.Requests, l.Window, cost, now)
	if !ok {
		// The refused request's cost would have ended wait past the
		// window: the booked slots end wait + window - cost*interval from
		// now.
		interval := l.Window / time.Duration(l.Requests)
		return LimitDecision{RetryAfter: wait, Reset: max(wait+l.Window-time.Duration(cost)*interval, 0)}
	}
	remaining, reset := s.status(l.Requests, l.Window, now)
	return LimitDecision{Allowed: true, Remaining: remaining, Reset: reset}
}

// spendUses takes q's cost from the uses of key k at now, in the store.
// A store that is not a [store.UseSpender] takes a cost of 1 with
// ConsumeUse (its uses never refill), and fails a higher cost as
// unavailable.
func (m *Manager) spendUses(ctx context.Context, k *Key, now time.Time, q *verifyQuery) (left int64, reason string, err error) {
	switch is, wrapped := m.store.(*instrumentedStore); {
	case m.useSpender != nil && wrapped:
		left, err = is.spendUses(ctx, m.useSpender, k.ID, q.cost, now)
	case m.useSpender != nil:
		left, err = m.useSpender.SpendUses(ctx, k.ID, q.cost, now)
	case q.cost == 1:
		left, err = m.store.ConsumeUse(ctx, k.ID)
	default:
		return 0, "unavailable", errorf("keygate: spend uses: %w: the store takes no cost other than 1 (not a store.UseSpender)", ErrUnavailable)
	}
	if q.report != nil && (err == nil || errors.Is(err, store.ErrUsageExhausted)) {
		q.report.Uses = &Balance{Remaining: left, NextRefill: nextRefill(k.Refill, now)}
	}
	switch {
	case err == nil:
		return left, "", nil
	case errors.Is(err, store.ErrUsageExhausted):
		return 0, "usage_exhausted", ErrUsageExhausted
	case errors.Is(err, store.ErrNotFound):
		m.cache.invalidate(k.ID)
		return 0, "invalid", ErrInvalid
	}
	return 0, "unavailable", errorf("keygate: spend uses: %w: %w", ErrUnavailable, err)
}

// spendCredits takes q's cost from the credits of identity ie at now.
func (m *Manager) spendCredits(ctx context.Context, k *Key, ie *identEntry, now time.Time, q *verifyQuery) (string, error) {
	var left int64
	var err error
	switch is, wrapped := m.store.(*instrumentedStore); {
	case m.creditSpend == nil:
		return "unavailable", errorf("keygate: spend credits: %w: the identity store spends no credits (not a store.CreditSpender)", ErrUnavailable)
	case wrapped:
		left, err = is.spendCredits(ctx, m.creditSpend, ie.id, q.cost, now)
	default:
		left, err = m.creditSpend.SpendCredits(ctx, ie.id, q.cost, now)
	}
	if q.report != nil && (err == nil || errors.Is(err, store.ErrUsageExhausted)) {
		q.report.Credits = &Balance{Remaining: left, NextRefill: nextRefill(ie.credits, now)}
	}
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, store.ErrUsageExhausted):
		return "usage_exhausted", errorf("%w: identity %s has %d credits left, the verification costs %d", ErrUsageExhausted, ie.id, left, q.cost)
	case errors.Is(err, store.ErrNotFound):
		// The key left the identity as it was verified: load it again.
		m.cache.invalidate(k.ID)
		m.identChanged(ie.id)
	}
	return "unavailable", errorf("keygate: spend credits: %w: %w", ErrUnavailable, err)
}

// nextRefill returns when a balance with refill r is next refilled after
// now; the zero Time for none.
func nextRefill(r *Refill, now time.Time) time.Time {
	if r == nil {
		return time.Time{}
	}
	return r.Next(now)
}

// keyAsDue shows the uses of k, a record about to be returned to a caller,
// as the next verification finds them: refilled to the refill's amount,
// at its last boundary, when a refill is due (the store writes it only at
// that verification).
func keyAsDue(k *store.Key, now time.Time) {
	if k.RemainingUses != nil && k.Refill != nil && k.Refill.Due(k.RefilledAt, now) {
		n := k.Refill.Amount
		k.RemainingUses, k.RefilledAt = &n, k.Refill.Last(now)
	}
}

// identityAsDue is keyAsDue for an identity's credits.
func identityAsDue(id *store.Identity, now time.Time) {
	if c := id.Credits; c != nil && c.Refill != nil && c.Refill.Due(c.RefilledAt, now) {
		c.Remaining, c.RefilledAt = c.Refill.Amount, c.Refill.Last(now)
	}
}

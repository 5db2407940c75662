package keygate

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// Verify checks token and returns its key, or an error matching one of
// [ErrMalformed], [ErrInvalid], [ErrExpired], [ErrRevoked],
// [ErrUsageExhausted], [ErrRateLimited], [ErrAddressDenied] or
// [ErrUnavailable]. A key with an IP allow-list fails with ErrAddressDenied:
// use [Manager.VerifyFrom] for requests with a known client address.
//
// The returned Key is shared and must not be modified.
func (m *Manager) Verify(ctx context.Context, token string) (*Key, error) {
	return m.VerifyFrom(ctx, token, netip.Addr{})
}

// VerifyFrom is [Manager.Verify] for a request from addr, which a key with
// an IP allow-list must be inside.
//
// A token is first looked up in the verification cache, keyed by its
// SHA-256. One not found there is parsed: a malformed token is rejected by
// its checksum, without touching the store; a well-formed one is looked up
// in the store by its peppered hash (trying older peppers too) and
// compared in constant time. A token of another format is looked up only
// if Config.ImportedTokens accepts it (a key imported by [Manager.Import]).
// Revocation, expiry, the address, the rate limit and the usage limit are
// checked on every call, cached or not.
func (m *Manager) VerifyFrom(ctx context.Context, token string, addr netip.Addr) (*Key, error) {
	return m.measuredVerify(ctx, token, addr, nil, nil, false)
}

// VerifyCached is [Manager.VerifyFrom] for a token whose key is in the
// verification cache (verified within Config.CacheTTL, by anyone, and not
// changed since): it returns what VerifyFrom would, with known true, every
// check of the key applied as VerifyFrom applies them (its rate limit
// counted, a use of its usage limit taken from the store). For any other
// token, a key not in the cache, an unknown or malformed token, it
// returns known false and does nothing else: no store lookup, no audit
// event, no use or rate counted.
//
// It is what the failure throttle of package middleware asks about the
// tokens of a throttled client address: a cache hit costs no lookup, and
// a guessed token is never in the cache. It allocates nothing on a hit of
// a key without a usage limit.
func (m *Manager) VerifyCached(ctx context.Context, token string, addr netip.Addr) (k *Key, known bool, err error) {
	k, err = m.measuredVerify(ctx, token, addr, nil, nil, true)
	if errors.Is(err, errNotCached) {
		return nil, false, nil
	}
	return k, true, err
}

// errNotCached is what verify returns, cachedOnly, for a token whose key
// is not in the cache.
var errNotCached = errors.New("keygate: not in the verification cache")

// verify is VerifyFrom at now, for a caller that sees only the keys for
// which visible, when not nil, returns true: any other key is answered as
// an unknown token, before a use is taken or a rate limit counted. counted
// says whether the caches' lookups are counted (see recordGate). With
// cachedOnly, a token whose key is not in the cache is errNotCached, with
// nothing done (see VerifyCached).
func (m *Manager) verify(ctx context.Context, now time.Time, counted bool, token string, addr netip.Addr, q *verifyQuery, visible func(*Key) bool, cachedOnly bool) (*Key, error) {
	var d digest
	var e *cacheEntry
	ok := false
	ns := now.UnixNano()
	// A token of the right length is looked up in the cache before it is
	// parsed: a hit means this very string (same SHA-256) was parsed and
	// verified before, so parsing it again would be wasted work. Anything
	// else is parsed first, so garbage is never hashed, cached or looked up.
	if len(token) == m.format.Len() {
		d = digestOf(token)
		e, ok = m.cache.get(&d, ns)
		if counted {
			m.cache.tel.lookup(ok)
		}
	}
	if !ok {
		if cachedOnly && len(token) == m.format.Len() {
			return nil, errNotCached
		}
		tok, err := m.format.Parse(token)
		if err != nil {
			if tok, err = m.parseImported(token, err); err != nil {
				if cachedOnly {
					return nil, errNotCached
				}
				m.audit(ctx, EventVerificationFailed, nil, "", "malformed")
				return nil, fmt.Errorf("%w: %w", ErrMalformed, err) // no second "keygate: " to drop: the hot path of floods stays as cheap as it was
			}
			if len(token) != m.format.Len() {
				d = digestOf(token)
				e, ok = m.cache.get(&d, ns)
				if counted {
					m.cache.tel.lookup(ok)
				}
			}
		}
		if !ok && cachedOnly {
			return nil, errNotCached
		}
		// Parse succeeded, so the length matched and d is the digest (or
		// an imported token's digest was just taken).
		if !ok {
			e, ok = m.unknown.get(&d, ns)
			if counted {
				m.unknown.tel.lookup(ok)
			}
		}
		if !ok {
			if e, err = m.loadShared(ctx, tok, &d, now); err != nil {
				m.audit(ctx, EventVerificationFailed, nil, "", "unavailable")
				return nil, err
			}
		}
	}
	if visible != nil && e.key != nil && !visible(e.key) {
		m.countUse(e.key, ns, useInvalid)
		m.audit(ctx, EventVerificationFailed, &e.key.Key, "", "invalid")
		return nil, ErrInvalid
	}
	k, reason, err := m.admit(ctx, e, now, addr, q)
	if err != nil {
		var rec *store.Key
		if e.key != nil {
			rec = &e.key.Key
			m.countUse(e.key, ns, usageOutcomeOf(reason))
		}
		m.audit(ctx, EventVerificationFailed, rec, "", reason)
		return nil, err
	}
	if visible == nil {
		// VerifyFor (the only caller with visible) counts its verdict
		// itself: it may still refuse the key for a permission.
		m.countUse(e.key, ns, useValid)
	}
	return k, nil
}

// VerifyRequest asks [Manager.VerifyFor] about a token presented to
// another service.
type VerifyRequest struct {
	// Token is the token the other service was given.
	Token string
	// Address is the client address it was presented from, checked
	// against a key's IP allow-list; the zero Addr when unknown (a key with
	// an allow-list then fails with ErrAddressDenied).
	Address netip.Addr
	// Permission, when set, such as "cluster:read", must be held by the
	// key in Workspace, or the verdict is ErrForbidden.
	Permission string
	// Workspace is where Permission is checked ("" for none).
	Workspace string
	// Cost and Limits are the verification's cost and the on-demand rate
	// limits it names, as in [VerifyOptions].
	Cost   int
	Limits []string
}

// Verdict is [Manager.VerifyFor]'s answer about a token: the key when it
// is valid, or why it is not.
type Verdict struct {
	// Key is the verified key; nil when Err is set.
	Key *Key
	// Err is nil for a valid token, or what [Manager.VerifyFrom] would
	// return for it (matching ErrMalformed, ErrInvalid, ErrExpired,
	// ErrRevoked, ErrDisabled, ErrUsageExhausted, ErrRateLimited as a
	// [*RateLimitError], ErrAddressDenied), or ErrForbidden when the key
	// lacks the permission asked about.
	Err error
	// Report is what the verification took from the key's limits and
	// balances, on success and on refusal alike (see [Manager.VerifyWith]).
	Report Report
}

// LogValue renders v for log/slog: the key (without hashes) or the
// error.
func (v Verdict) LogValue() slog.Value {
	if v.Err != nil {
		return slog.GroupValue(slog.Bool("valid", false), slog.String("error", v.Err.Error()))
	}
	if v.Key == nil {
		return slog.GroupValue(slog.Bool("valid", false))
	}
	return slog.GroupValue(slog.Bool("valid", true), slog.Any("key", v.Key.Key))
}

// VerifyFor verifies a token on behalf of by, a service that checks its
// own callers' keys against this Manager (the token service's POST
// /keys/verify, which package client's Verifier calls). It is a use of the
// key like any other: it counts against the key's rate and usage limits
// and records its last use.
//
// by needs apikey:verify ([PermissionVerifyKeys]), and sees only the keys
// of the workspaces where it holds it: a key of any other workspace gets
// the verdict of an unknown token, ErrInvalid, with no use taken, so that
// by learns nothing of keys it may not verify (no existence oracle). A
// principal without apikey:verify in any workspace is refused with a
// [*DeniedError].
//
// The verdict is the same, the time it takes is not: a caller that times
// its calls can tell, statistically, a key of another workspace from a
// made-up token, and whether the key was verified in the last 30 s
// (nothing else: not its workspace, permissions or limits). A key is
// cached for Config.CacheTTL (30 s) after any verification of it, by this
// caller, its owner or any other service, and an unknown token for
// Config.NegativeCacheTTL (5 s); a hit answers in under a microsecond, a
// miss takes a store lookup. On a miss, a key costs one lookup and the
// decoding of its record, an unknown token one lookup per pepper, and one
// more when there are older peppers: on PostgreSQL about 70 µs against
// 45 µs with one pepper, 45 µs against 135 µs (three lookups) with two. Making the costs equal would take a store lookup for
// every verification, a key's cache entry being shared with its own
// traffic, some hundred times the cached cost
// (BenchmarkVerifyForUnseen), so it is not done: the caller learns this
// only of a token it was given, which it could present to any service
// itself.
//
// The returned error is about the call, never the token: a [*DeniedError]
// (ErrForbidden), a request error wrapping [ErrInvalidRequest] (an invalid
// Permission or Workspace), or [ErrUnavailable] when the store fails, in
// which case there is no verdict and the token must be refused (fail
// closed).
func (m *Manager) VerifyFor(ctx context.Context, by Principal, req VerifyRequest) (Verdict, error) {
	if !by.SuperAdmin && !by.Permissions.Allows(m.verifyKeys) {
		return Verdict{}, &DeniedError{Actor: by.ID, Reason: DeniedPermission, Permission: PermissionVerifyKeys, Workspace: by.Workspace}
	}
	var perm permission.Permission
	if req.Permission != "" {
		p, err := permission.Parse(req.Permission)
		if err != nil {
			return Verdict{}, errorf("%w: %w: %w", ErrInvalidRequest, ErrInvalidScope, err)
		}
		perm = p
	}
	if err := validFilter("workspace", req.Workspace); err != nil {
		return Verdict{}, err
	}
	q, err := newQuery(req.Cost, req.Limits)
	if err != nil {
		return Verdict{}, err
	}
	rep := Report{Cost: int(q.cost)}
	q.report = &rep
	k, err := m.measuredVerify(ctx, req.Token, req.Address, &q, func(k *Key) bool {
		if !by.Allows(m.verifyKeys, k.Workspace) {
			return false
		}
		m.exercised(by.keyID, m.verifyKeys, k.Workspace)
		return true
	}, false)
	switch {
	case errors.Is(err, ErrUnavailable):
		return Verdict{}, err
	case err != nil:
		return Verdict{Err: err, Report: rep}, nil
	case req.Permission != "" && !k.Allows(perm, req.Workspace):
		m.countUse(k, m.now().UnixNano(), useInsufficientPermission)
		return Verdict{Err: errorf("%w: key %s lacks %s", ErrForbidden, k.ID, perm), Report: rep}, nil
	}
	m.countUse(k, m.now().UnixNano(), useValid)
	return Verdict{Key: k, Report: rep}, nil
}

// Authorize returns nil if k holds p in workspace ("" for a resource outside
// any workspace), and ErrForbidden otherwise. It allocates nothing.
func (m *Manager) Authorize(k *Key, p permission.Permission, workspace string) error {
	if k == nil || !k.Allows(p, workspace) {
		return ErrForbidden
	}
	return nil
}

// flight is one store lookup shared by concurrent verifications of the same
// token.
type flight struct {
	done chan struct{}
	// epoch is the cache epoch when the lookup started: a verification
	// that begins after an invalidation must not take its result.
	epoch uint64
	e     *cacheEntry
	err   error
}

// loadShared is load, coalescing concurrent misses for the same token into
// one store lookup, so a popular key whose cache entry expires causes one
// query, not one per request in flight. A request never joins a lookup that
// started before the latest invalidation (it could return the key as it was
// before a revocation that has already returned); it looks up afresh.
func (m *Manager) loadShared(ctx context.Context, tok apikey.Token, d *digest, now time.Time) (*cacheEntry, error) {
	epoch := m.cache.epoch.Load()
	m.flightMu.Lock()
	if f, ok := m.flights[*d]; ok && f.epoch == epoch {
		m.flightMu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, errorf("keygate: look up key: %w: %w", ErrUnavailable, ctx.Err())
		}
		if f.err != nil && ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
			// The leader's request was cancelled, not ours: look up again.
			return m.load(ctx, tok, d, now)
		}
		return f.e, f.err
	}
	// Waiters get ErrUnavailable should load panic (net/http recovers
	// handler panics, and the deferred cleanup still releases them).
	f := &flight{done: make(chan struct{}), epoch: epoch, err: errorf("keygate: look up key: %w", ErrUnavailable)}
	if m.flights == nil {
		m.flights = make(map[digest]*flight)
	}
	m.flights[*d] = f
	m.flightMu.Unlock()
	defer func() {
		m.flightMu.Lock()
		if m.flights[*d] == f {
			delete(m.flights, *d)
		}
		m.flightMu.Unlock()
		close(f.done)
	}()
	f.e, f.err = m.load(ctx, tok, d, now)
	return f.e, f.err
}

// findToken looks tok up in the store under every pepper (then by its
// SHA-256, with Config.ImportedSHA256), and returns its record (nil when
// no key has it), the pepper it was found under, and whether tok is the
// record's previous secret. It changes nothing, but for revoking a key
// found by tok's SHA-256 that turns out to be the shadow of a retired
// secret (see unshadow), which it answers as no key. Only a store failure
// is an error ([ErrUnavailable]).
func (m *Manager) findToken(ctx context.Context, tok apikey.Token) (_ *store.Key, pepperID string, viaPrev bool, _ error) {
	ids := m.hasher.PepperIDs()
	if m.digests {
		// Keys imported by their SHA-256 alone (Config.ImportedSHA256),
		// after every pepper: a key holding the token itself comes first.
		for _, p := range ids[:len(ids):len(ids)] {
			ids = append(ids, digestPepperID(p))
		}
		ids = append(ids, apikey.SHA256PepperID) // as earlier versions stored them
	}
	if len(ids) > 1 {
		// Another instance may re-hash the key from an older pepper (or an
		// imported SHA-256) to the current one between the lookups below,
		// so that it is found under neither: look under the current pepper
		// once more, last. (A key only ever moves to the current pepper.)
		ids = append(ids, ids[0])
	}
	for _, pepperID := range ids {
		hash, err := m.hashWith(pepperID, tok)
		if err != nil {
			return nil, "", false, errorf("keygate: hash token: %w", err)
		}
		rec, err := m.store.GetByHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, "", false, errorf("keygate: look up key: %w: %w", ErrUnavailable, err)
		}
		prev := false
		switch {
		case rec.PepperID == pepperID && apikey.Equal(rec.Hash, hash):
		case rec.PrevPepperID == pepperID && apikey.Equal(rec.PrevHash, hash):
			prev = true
		default:
			continue
		}
		if m.isDigestID(pepperID) {
			switch shadow, err := m.unshadow(ctx, rec, tok); {
			case err != nil:
				return nil, "", false, err
			case shadow:
				return nil, "", false, nil
			}
		}
		return rec, pepperID, prev, nil
	}
	return nil, "", false, nil
}

// shadowActor is the id of the principal that revokes a shadow of a
// retired secret: the Manager itself.
const shadowActor = "keygate"

// unshadow checks rec, found by the SHA-256 of tok (imported by
// ImportRequest.SHA256, and found only because no key holds tok itself):
// an import by digest cannot tell whether the token is another key's
// secret, since that key's hash needs the token. If tok's own hash under a
// held pepper is retired, it was: rec is the shadow of a secret since
// regenerated or deleted, which must not come back through it with rec's
// permissions. unshadow then revokes rec (an EventRevoked audit event
// with reason "shadow_of_retired_secret"), and returns true. The check
// runs only on a store lookup that finds a key by its digest: once per key
// in its life, unless it is a shadow. Only a store failure is an error
// ([ErrUnavailable]): fail closed.
func (m *Manager) unshadow(ctx context.Context, rec *store.Key, tok apikey.Token) (bool, error) {
	if m.retirer == nil {
		return false, nil // no tombstones: nothing is ever found retired
	}
	var forms []hashForm
	for _, p := range m.hasher.PepperIDs() {
		h, err := m.hasher.HashWith(p, tok)
		if err != nil {
			return false, errorf("keygate: hash token: %w", err)
		}
		forms = append(forms, hashForm{h, p})
	}
	retired, err := m.anyRetired(ctx, forms)
	if err != nil || !retired {
		return false, err
	}
	if rec.RevokedAt.IsZero() {
		if _, err := m.revoke(ctx, Principal{ID: shadowActor, SuperAdmin: true}, rec.ID, reasonShadow); err != nil && !errors.Is(err, ErrNotFound) {
			// Still answered as no key; the next lookup tries again.
			m.logger.WarnContext(ctx, "keygate: revoking the shadow of a retired secret failed", "key_id", rec.ID, "error", err)
		}
	}
	return true, nil
}

// reasonShadow is the audit reason of the revocation of a shadow of a
// retired secret (see unshadow).
const reasonShadow = "shadow_of_retired_secret"

// load finds the key of tok in the store and caches the result, a miss
// included (in the separate negative cache, so unknown tokens never evict
// known keys). Only store failures are errors here.
func (m *Manager) load(ctx context.Context, tok apikey.Token, d *digest, now time.Time) (*cacheEntry, error) {
	// Both epochs are read before the lookup: a key changed or created
	// (imported) meanwhile makes the result too old to cache.
	epoch, unknownEpoch := m.cache.epoch.Load(), m.unknown.epoch.Load()
	rec, pepperID, viaPrev, err := m.findToken(ctx, tok)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		ke := &keyEntry{}
		e := &ke.cacheEntry
		e.expires = now.Add(m.keyTTL()).UnixNano()
		if (pepperID != m.hasher.CurrentID() && !viaPrev) || m.staleDigest(rec) {
			m.rehash(ctx, rec, tok, viaPrev)
		}
		p, err := m.principalOf(rec)
		if err != nil {
			// The key no longer resolves (a role removed from the registry):
			// fail closed, and do not cache, so a fixed registry takes
			// effect at once.
			m.logger.WarnContext(ctx, "keygate: key does not resolve", "key_id", rec.ID, "error", err)
			return &cacheEntry{live: math.MinInt64}, nil
		}
		var ie *identEntry
		if rec.IdentityID != uuid.Nil && m.identities != nil {
			if ie, err = m.identEntry(ctx, rec.IdentityID, rec.ID, now); err != nil {
				return nil, err
			}
		}
		p.keyID, p.keyHash = rec.ID, rec.Hash
		if viaPrev {
			p.keyHash, p.oldSecret = rec.PrevHash, true
			if p.ExpiresAt.IsZero() || rec.PrevExpiresAt.Before(p.ExpiresAt) {
				// The old secret of a grace period acts only as long as it lives.
				p.ExpiresAt = rec.PrevExpiresAt
			}
		}
		m.initKey(&ke.key, rec, &p)
		ke.key.meter = m.meterOf(rec, ie)
		ke.key.usage = m.usage.counter(usageSubject{kindKey, rec.ID}, e.expires)
		ke.key.viaPrev = viaPrev
		e.key = &ke.key
		e.summarize()
		if m.cacheTTL > 0 {
			m.cache.put(d, e, epoch)
		}
		return e, nil
	}
	e := &cacheEntry{expires: now.Add(m.negativeTTL).UnixNano(), live: math.MinInt64}
	if m.negativeTTL > 0 {
		m.unknown.put(d, e, unknownEpoch)
	}
	return e, nil
}

// keyTTL is how long a key loaded now stays in the cache: CacheTTL, or
// less while the change feed is down (see Config.FeedOutageTTL).
func (m *Manager) keyTTL() time.Duration {
	if m.feedDown.Load() {
		return min(m.cacheTTL, m.outageTTL)
	}
	return m.cacheTTL
}

// rehash moves a key found under an older pepper, or by its SHA-256, to
// the current pepper, unless tok is its previous secret (viaPrev). A
// key found by its SHA-256 keeps that digest, HMAC'd under the current
// pepper, as a previous secret whose grace has ended (it never verifies:
// the same token matches the new hash first), so that its import row,
// sent again, is still found a duplicate; and a previous secret of tok's
// digest stored otherwise (the plain digest of an earlier version, or
// under an older pepper) is re-hashed so too. It is best effort: on
// failure the key keeps verifying as it was. When another instance
// re-hashed the key first (a version conflict), rec becomes the record as
// that instance stored it, if it holds the same new hash, so that the
// key's principal here is the key as stored.
//
// A re-hash is not published on the change feed: while a pepper change
// rolls out, an instance whose current pepper is the old one finds the key
// under the new one and re-hashes it back; publishing would make the
// instances undo each other's re-hash on every request, where unpublished
// each does so at most once per cache TTL. (Until then, management calls
// made on another instance with the principal of a key it cached before
// the re-hash are refused as inactive.) Nor is it a retirement: the
// token stays live.
func (m *Manager) rehash(ctx context.Context, rec *store.Key, tok apikey.Token, viaPrev bool) {
	next := rec.Clone()
	changed := false
	d := digestOf(tok.Reveal())
	marker, err := m.storedDigest(d[:])
	if err != nil {
		m.logger.WarnContext(ctx, "keygate: re-hash under the current pepper failed", "key_id", rec.ID, "error", err)
		return
	}
	if !viaPrev && rec.PepperID != m.hasher.CurrentID() {
		next.Hash, next.PepperID = m.hasher.Hash(tok)
		if next.Hint == "" {
			// A key imported by its SHA-256 gets its hint from its first use.
			next.Hint = tok.Hint()
		}
		if m.isDigestID(rec.PepperID) && len(rec.PrevHash) == 0 {
			next.PrevHash, next.PrevPepperID, next.PrevExpiresAt = marker.hash, marker.pepperID, canonicalTime(m.clock())
		}
		changed = true
	}
	if m.staleDigest(next) {
		if prev, err := m.hashWith(next.PrevPepperID, tok); err == nil && apikey.Equal(prev, next.PrevHash) {
			next.PrevHash, next.PrevPepperID = marker.hash, marker.pepperID
			changed = true
		}
	}
	if !changed {
		return
	}
	if err := m.store.Update(ctx, next); err != nil {
		if errors.Is(err, store.ErrConflict) {
			cur, gerr := m.store.Get(ctx, rec.ID)
			if gerr == nil && subtle.ConstantTimeCompare(cur.Hash, next.Hash) == 1 {
				*rec = *cur
				return
			}
		}
		m.logger.WarnContext(ctx, "keygate: re-hash under the current pepper failed", "key_id", rec.ID, "error", err)
		return
	}
	*rec = *next
}

// staleDigest reports whether rec's previous secret is a digest stored
// otherwise than under the current pepper: the plain digest an earlier
// version kept, or a digest under an older pepper. rehash re-hashes it
// when it is the digest of the token being verified.
func (m *Manager) staleDigest(rec *store.Key) bool {
	return m.keyed && len(rec.PrevHash) > 0 && m.isDigestID(rec.PrevPepperID) &&
		rec.PrevPepperID != digestPepperID(m.hasher.CurrentID())
}

// admit applies the per-request checks to a cached or loaded entry. On
// failure it returns the audit reason with the error. A key with nothing
// to check but its expiry is admitted from the entry's summary (see
// cacheEntry.summarize), without reading its record.
//
// The metering follows the checks of the key itself, in the order
// VerifyWith documents: the key's rate limits, its identity's, its uses,
// its identity's credits.
func (m *Manager) admit(ctx context.Context, e *cacheEntry, now time.Time, addr netip.Addr, q *verifyQuery) (*Key, string, error) {
	if now.UnixNano() < e.live && (q == nil || len(q.names) == 0) {
		m.touch(e.key, now)
		return e.key, "", nil
	}
	k := e.key
	switch {
	case k == nil:
		return nil, "invalid", ErrInvalid
	case !k.RevokedAt.IsZero():
		return nil, "revoked", ErrRevoked
	case !k.DisabledAt.IsZero():
		return nil, "disabled", ErrDisabled
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return nil, "expired", ErrExpired
	case k.viaPrev && !now.Before(k.PrevExpiresAt):
		return nil, "invalid", ErrInvalid
	case len(k.AllowedCIDRs) > 0 && !k.allowsAddr(addr):
		return nil, "address_denied", ErrAddressDenied
	}
	if q == nil {
		q = &verifyQuery{cost: 1} // Verify's: a cost of 1, no report
	}
	if k.RateLimit > 0 {
		if reason, err := m.allow(ctx, k, now, q); err != nil {
			return nil, reason, err
		}
	}
	km := k.meter
	if km != nil {
		for i := range km.own {
			if l := &km.own[i]; q.applies(&l.RateLimit) {
				if reason, err := m.allowLimit(ctx, k.ID, l.RateLimit, l.state, false, now, q); err != nil {
					return nil, reason, err
				}
			}
		}
		if ie := km.ident; ie != nil {
			for i := range ie.limits {
				if l := &ie.limits[i]; q.applies(&l.RateLimit) {
					if reason, err := m.allowLimit(ctx, ie.id, l.RateLimit, l.state, true, now, q); err != nil {
						return nil, reason, err
					}
				}
			}
		}
	}
	if k.RemainingUses != nil {
		left, reason, err := m.spendUses(ctx, k, now, q)
		if err != nil {
			return nil, reason, err
		}
		// This request's key carries what is left after its own use: a
		// principal taken from it bounds the keys it creates by that.
		k = k.withUses(left)
	}
	if km != nil && km.ident != nil && km.ident.hasCredits {
		if reason, err := m.spendCredits(ctx, k, km.ident, now, q); err != nil {
			return nil, reason, err
		}
	}
	// The cached key, not this request's copy, holds when its last use
	// was queued.
	m.touch(e.key, now)
	return k, "", nil
}

// allow takes q's cost from k's "default" rate limit, with the
// configured RateLimiter or in this process. On refusal it returns the
// audit reason and the error. A RateLimiter that is not a CostLimiter
// takes one request whatever the cost.
func (m *Manager) allow(ctx context.Context, k *Key, now time.Time, q *verifyQuery) (_ string, err error) {
	if q.cost > 1 || q.report != nil {
		// What is left is asked for: see allowLimit.
		return m.allowLimit(ctx, k.ID, RateLimit{Name: DefaultRateLimit, Requests: k.RateLimit, Window: k.RateWindow}, k.state, false, now, q)
	}
	defer func() { m.tel.rateDecision(ctx, err) }()
	limit := RateLimit{Requests: k.RateLimit, Window: k.RateWindow}
	if m.limiter == nil {
		if wait, ok := k.state.allow(k.RateLimit, k.RateWindow, now.UnixNano()); !ok {
			// The refused request's slot would have ended wait past the
			// window, so the booked slots end wait + window - interval
			// from now.
			reset := wait + k.RateWindow - k.RateWindow/time.Duration(k.RateLimit)
			return "rate_limited", &RateLimitError{RetryAfter: wait, Limit: limit, Reset: reset, Name: DefaultRateLimit}
		}
		return "", nil
	}
	wait, ok, err := m.limiter.Allow(ctx, k.ID, limit)
	switch {
	case err != nil:
		return "unavailable", errorf("keygate: rate limiter: %w: %w", ErrUnavailable, err)
	case !ok:
		// A shared limiter does not say when the limit is whole again, and
		// asking it would double its load from refused requests, which is
		// highest under abuse: Reset stays unknown.
		return "rate_limited", &RateLimitError{RetryAfter: wait, Limit: limit, Name: DefaultRateLimit}
	}
	return "", nil
}

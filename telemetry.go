package keygate

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/keygate/keygate/store"
)

// ScopeName is the OpenTelemetry instrumentation scope of a Manager's
// meter and tracer: the package's import path.
const ScopeName = "github.com/keygate/keygate"

// The attribute keys of keygate's telemetry. No attribute ever holds a
// token, a hash or a pepper; error messages are never recorded either (a
// driver's could quote a value), only the kind of failure.
const (
	// attrOutcome is a verification's outcome: "valid", or why the token
	// was refused ("malformed", "invalid", "expired", "revoked",
	// "usage_exhausted", "rate_limited", "address_denied", "disabled",
	// "unavailable").
	attrOutcome = attribute.Key("keygate.verification.outcome")
	// attrCache names the cache: "key" (verified keys) or "unknown"
	// (tokens that match no key).
	attrCache = attribute.Key("keygate.cache.name")
	// attrStoreOp is the store method called, in snake case.
	attrStoreOp = attribute.Key("keygate.store.operation")
	// attrDecision is a rate-limit decision: "allowed" or "refused".
	attrDecision = attribute.Key("keygate.rate_limit.decision")
	// attrKeyID is the id of the key a management operation or store call
	// is about (a UUID, not a secret).
	attrKeyID = attribute.Key("keygate.key.id")
	// attrErrorType is the semantic conventions' error.type: the kind of
	// failure, from a fixed vocabulary.
	attrErrorType = attribute.Key("error.type")
)

// outcome is a verification's outcome.
type outcome uint8

const (
	outcomeValid outcome = iota
	outcomeMalformed
	outcomeInvalid
	outcomeExpired
	outcomeRevoked
	outcomeUsageExhausted
	outcomeRateLimited
	outcomeAddressDenied
	outcomeUnavailable
	outcomeDisabled
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"valid", "malformed", "invalid", "expired", "revoked",
	"usage_exhausted", "rate_limited", "address_denied", "unavailable", "disabled",
}

// outcomeOf returns the outcome of a verification that returned err.
func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return outcomeValid
	case errors.Is(err, ErrMalformed):
		return outcomeMalformed
	case errors.Is(err, ErrUnavailable):
		return outcomeUnavailable
	case errors.Is(err, ErrRevoked):
		return outcomeRevoked
	case errors.Is(err, ErrExpired):
		return outcomeExpired
	case errors.Is(err, ErrUsageExhausted):
		return outcomeUsageExhausted
	case errors.Is(err, ErrRateLimited):
		return outcomeRateLimited
	case errors.Is(err, ErrAddressDenied):
		return outcomeAddressDenied
	case errors.Is(err, ErrDisabled):
		return outcomeDisabled
	}
	return outcomeInvalid
}

// The store operations, indexes of storeOps.
const (
	opCreate = iota
	opGet
	opGetByHash
	opList
	opUpdate
	opDelete
	opTouchLastUsed
	opConsumeUse
	opHealth
	opRevoke
	opRetire
	opRetired
	opRecordUsage
	opReadUsage
	opPurgeUsage
	opSpendUses
	opSpendCredits
	numStoreOps
)

// storeOps are the store operations' attribute values.
var storeOps = [numStoreOps]string{"create", "get", "get_by_hash", "list", "update", "delete", "touch_last_used", "consume_use", "health", "revoke", "retire", "retired", "record_usage", "read_usage", "purge_usage", "spend_uses", "spend_credits"}

// telemetry holds a Manager's instruments and tracer, resolved once by
// New, and the measurement options of every attribute value, built once so
// that recording allocates nothing. Instruments of a MeterProvider that
// records nothing (OpenTelemetry's global one until the application
// installs its own, or a no-op one) report Enabled false; the verification
// path then skips its instruments altogether (see recordGate).
type telemetry struct {
	tracer trace.Tracer
	// gate says whether the verification path's instruments record.
	gate recordGate

	verifications   metric.Int64Counter
	verifyDuration  metric.Float64Histogram
	outcomeAdd      [numOutcomes][]metric.AddOption
	outcomeRecord   [numOutcomes][]metric.RecordOption
	storeDuration   metric.Float64Histogram
	storeErrors     metric.Int64Counter
	storeRecord     [numStoreOps][]metric.RecordOption
	rateDecisions   metric.Int64Counter
	allowed         []metric.AddOption
	refused         []metric.AddOption
	registration    metric.Registration
	storeOpAttr     [numStoreOps]attribute.KeyValue
	spanStoreOpName [numStoreOps]string
}

// recheckPeriod is how often a recordGate that is off asks its
// instruments again whether they record.
const recheckPeriod = uint64(time.Second)

// recordGate tells the verification path whether its instruments (the
// verification counter and histogram, the caches' hit and miss counters)
// record anything, so that while none does (no provider installed) a
// verification makes no instrument call at all: each would be an
// interface call and an atomic load, which together cost about a tenth of
// a cached verification.
//
// It is computed at New from the instruments' Enabled. While it is off, it
// is asked again at most once per recheckPeriod of the Manager's clock, by
// the first verification after the period: OpenTelemetry's global
// MeterProvider (the default) starts recording when the application
// installs its own with otel.SetMeterProvider, which may come after New.
// Once on, it stays on (the instruments then decide themselves). Reading
// it costs one or two atomic loads, and writes nothing but once per
// period.
type recordGate struct {
	on atomic.Bool
	// asked is when, in Unix nanoseconds of the Manager's clock, the
	// instruments were last asked.
	asked atomic.Int64
	// enabled asks the instruments; nil is never.
	enabled func() bool
}

// init sets the gate from enabled at now, Unix nanoseconds.
func (g *recordGate) init(enabled func() bool, now int64) {
	g.enabled = enabled
	g.on.Store(enabled())
	g.asked.Store(now)
}

// idle reports that the instruments do not record and are not due to be
// asked again at now (Unix nanoseconds of the Manager's clock): two atomic
// loads and a comparison, inlined into the verification path.
func (g *recordGate) idle(now int64) bool {
	return !g.on.Load() && !due(now, g.asked.Load())
}

// due reports whether the instruments, last asked at asked, are to be
// asked again at now: a period later, or when the clock went back by more
// than a period (a caller whose clock reading is slightly older than the
// last asker's is not due). One comparison: now - asked is in
// [-period, period) exactly when now - asked + period is in [0, 2 period).
func due(now, asked int64) bool {
	return uint64(now-asked)+recheckPeriod >= 2*recheckPeriod
}

// recording reports whether the instruments record at now, asking them
// again if that is due.
func (g *recordGate) recording(now int64) bool {
	return !g.idle(now) && (g.on.Load() || g.recheck(now))
}

// recheck asks the instruments again, unless another verification has just
// done so.
func (g *recordGate) recheck(now int64) bool {
	last := g.asked.Load()
	if !due(now, last) || !g.asked.CompareAndSwap(last, now) {
		return g.on.Load()
	}
	if g.enabled == nil || !g.enabled() {
		return false
	}
	g.on.Store(true)
	return true
}

// cacheTelemetry counts a cache's hits and misses.
type cacheTelemetry struct {
	hits, misses metric.Int64Counter
	opts         []metric.AddOption
}

// lookup counts a lookup of the cache that found a live entry (hit) or
// not; t nil counts nothing.
func (t *cacheTelemetry) lookup(hit bool) {
	switch {
	case t == nil:
	case hit:
		t.hits.Add(context.Background(), 1, t.opts...)
	default:
		t.misses.Add(context.Background(), 1, t.opts...)
	}
}

// Bucket boundaries, in seconds: a cached verification takes well under a
// microsecond, a store call from microseconds (in memory) to seconds.
var (
	verifyBuckets = []float64{1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1}
	storeBuckets  = []float64{1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// initTelemetry resolves m's instruments from mp and its tracer from tp
// (the global providers when nil), and registers the observable gauges:
// cache sizes, and the change feed's state when m has one. It wraps m's
// store in an instrumentedStore.
func (m *Manager) initTelemetry(mp metric.MeterProvider, tp trace.TracerProvider, hasFeed bool) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t := &m.tel
	t.tracer = tp.Tracer(ScopeName)
	meter := mp.Meter(ScopeName)
	var err error
	try := func(e error) {
		err = errors.Join(err, e)
	}
	t.verifications, err = meter.Int64Counter("keygate.verifications",
		metric.WithUnit("{verification}"),
		metric.WithDescription("Token verifications, by outcome."))
	var e error
	t.verifyDuration, e = meter.Float64Histogram("keygate.verification.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of token verifications, cached or not, by outcome."),
		metric.WithExplicitBucketBoundaries(verifyBuckets...))
	try(e)
	for o := range numOutcomes {
		set := attribute.NewSet(attrOutcome.String(outcomeNames[o]))
		t.outcomeAdd[o] = []metric.AddOption{metric.WithAttributeSet(set)}
		t.outcomeRecord[o] = []metric.RecordOption{metric.WithAttributeSet(set)}
	}
	hits, e := meter.Int64Counter("keygate.cache.hits",
		metric.WithUnit("{lookup}"),
		metric.WithDescription("Lookups of the verification caches that found a live entry."))
	try(e)
	misses, e := meter.Int64Counter("keygate.cache.misses",
		metric.WithUnit("{lookup}"),
		metric.WithDescription("Lookups of the verification caches that found no live entry."))
	try(e)
	for _, c := range []struct {
		cache *cache
		name  string
	}{{m.cache, "key"}, {m.unknown, "unknown"}} {
		c.cache.tel = &cacheTelemetry{hits: hits, misses: misses,
			opts: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrCache.String(c.name)))}}
	}
	cacheSize, e := meter.Int64ObservableGauge("keygate.cache.size",
		metric.WithUnit("{entry}"),
		metric.WithDescription("Entries in the verification caches."))
	try(e)
	keyCache := metric.WithAttributeSet(attribute.NewSet(attrCache.String("key")))
	unknownCache := metric.WithAttributeSet(attribute.NewSet(attrCache.String("unknown")))
	observables := []metric.Observable{cacheSize}
	var feedUp metric.Int64ObservableGauge
	if hasFeed {
		feedUp, e = meter.Int64ObservableGauge("keygate.change_feed.up",
			metric.WithUnit("1"),
			metric.WithDescription("1 while the change feed is listening, 0 while it is down (the cache is then cleared and the feed re-established)."))
		try(e)
		observables = append(observables, feedUp)
	}
	t.registration, e = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(cacheSize, int64(m.cache.len()), keyCache)
		o.ObserveInt64(cacheSize, int64(m.unknown.len()), unknownCache)
		if hasFeed {
			up := int64(0)
			if m.feedState.get() == nil {
				up = 1
			}
			o.ObserveInt64(feedUp, up)
		}
		return nil
	}, observables...)
	try(e)
	t.storeDuration, e = meter.Float64Histogram("keygate.store.operation.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of calls to the key store, by operation; failed ones carry error.type."),
		metric.WithExplicitBucketBoundaries(storeBuckets...))
	try(e)
	t.storeErrors, e = meter.Int64Counter("keygate.store.errors",
		metric.WithUnit("{error}"),
		metric.WithDescription("Failed calls to the key store (a missing key, a version conflict or a duplicate are not failures), by operation and error.type."))
	try(e)
	for i, op := range storeOps {
		t.storeOpAttr[i] = attrStoreOp.String(op)
		t.storeRecord[i] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(t.storeOpAttr[i]))}
		t.spanStoreOpName[i] = "keygate.store." + op
	}
	t.rateDecisions, e = meter.Int64Counter("keygate.rate_limit.decisions",
		metric.WithUnit("{decision}"),
		metric.WithDescription("Rate-limit decisions on keys that have a rate limit."))
	try(e)
	t.allowed = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrDecision.String("allowed")))}
	t.refused = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrDecision.String("refused")))}
	if err != nil {
		return errors.Join(errors.New("keygate: telemetry"), err)
	}
	t.gate.init(func() bool {
		ctx := context.Background()
		return t.verifications.Enabled(ctx) || t.verifyDuration.Enabled(ctx) || hits.Enabled(ctx) || misses.Enabled(ctx)
	}, m.now().UnixNano())
	m.store = &instrumentedStore{store: m.store, tel: t}
	return nil
}

// closeTelemetry unregisters the observable gauges' callback.
func (m *Manager) closeTelemetry() {
	if m.tel.registration != nil {
		_ = m.tel.registration.Unregister()
	}
}

// measuredVerify is verify at the Manager's current time, counted by
// outcome and timed while the instruments record. While they do not, it
// makes no call but the clock's and verify. A verification that
// cachedOnly cut short (errNotCached) is not counted.
func (m *Manager) measuredVerify(ctx context.Context, token string, addr netip.Addr, q *verifyQuery, visible func(*Key) bool, cachedOnly bool) (*Key, error) {
	now := m.now()
	if n := now.UnixNano(); m.tel.gate.idle(n) || !m.tel.gate.recording(n) {
		return m.verify(ctx, now, false, token, addr, q, visible, cachedOnly)
	}
	return m.recordedVerify(ctx, now, token, addr, q, visible, cachedOnly)
}

// recordedVerify is verify at now, counted by outcome and timed.
func (m *Manager) recordedVerify(ctx context.Context, now time.Time, token string, addr netip.Addr, q *verifyQuery, visible func(*Key) bool, cachedOnly bool) (*Key, error) {
	t := &m.tel
	var start time.Time
	timed := t.verifyDuration.Enabled(ctx)
	if timed {
		start = time.Now()
	}
	k, err := m.verify(ctx, now, true, token, addr, q, visible, cachedOnly)
	if cachedOnly && errors.Is(err, errNotCached) {
		return k, err
	}
	o := outcomeOf(err)
	t.verifications.Add(ctx, 1, t.outcomeAdd[o]...)
	if timed {
		t.verifyDuration.Record(ctx, time.Since(start).Seconds(), t.outcomeRecord[o]...)
	}
	return k, err
}

// rateDecision counts the decision of a rate limit: err nil (allowed),
// ErrRateLimited (refused), or another error (the limiter failed: no
// decision).
func (t *telemetry) rateDecision(ctx context.Context, err error) {
	switch {
	case err == nil:
		t.rateDecisions.Add(ctx, 1, t.allowed...)
	case errors.Is(err, ErrRateLimited):
		t.rateDecisions.Add(ctx, 1, t.refused...)
	}
}

// errorType returns the error.type of a failed operation: a word from a
// fixed vocabulary, never the error's message.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrInvalidRequest):
		return "invalid_request"
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrConflict), errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, store.ErrDuplicate):
		return "duplicate"
	case errors.Is(err, ErrRevoked):
		return "revoked"
	case errors.Is(err, store.ErrUsageExhausted):
		return "usage_exhausted"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	}
	return "_OTHER"
}

// startSpan starts the span of a management operation named op, about key
// id when it is not the zero UUID. End it with endSpan.
func (m *Manager) startSpan(ctx context.Context, op string, id uuid.UUID) (context.Context, trace.Span) {
	ctx, span := m.tel.tracer.Start(ctx, "keygate.Manager."+op, trace.WithSpanKind(trace.SpanKindInternal))
	if id != uuid.Nil && span.IsRecording() {
		span.SetAttributes(attrKeyID.String(id.String()))
	}
	return ctx, span
}

// endSpan ends span, marking it failed with the kind of *err, if any.
func endSpan(span trace.Span, err *error) {
	if *err != nil && span.IsRecording() {
		typ := errorType(*err)
		span.SetAttributes(attrErrorType.String(typ))
		span.SetStatus(codes.Error, typ)
	}
	span.End()
}

// instrumentedStore is a store.Store that traces and measures every call
// to the Store it wraps.
type instrumentedStore struct {
	store store.Store
	tel   *telemetry
}

// storeFailure reports whether err from a store is a failure, rather than
// one of the answers of its contract.
func storeFailure(err error) bool {
	return err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) &&
		!errors.Is(err, store.ErrDuplicate) && !errors.Is(err, store.ErrUsageExhausted)
}

// storeCall is one call to the store under way.
type storeCall struct {
	tel   *telemetry
	op    int
	span  trace.Span
	start time.Time
	timed bool
}

// begin starts the span and the clock of a call of operation op (an index
// of storeOps) about key id, if not the zero UUID.
func (s *instrumentedStore) begin(ctx context.Context, op int, id uuid.UUID) (context.Context, storeCall) {
	t := s.tel
	ctx, span := t.tracer.Start(ctx, t.spanStoreOpName[op], trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(t.storeOpAttr[op])
		if id != uuid.Nil {
			span.SetAttributes(attrKeyID.String(id.String()))
		}
	}
	c := storeCall{tel: t, op: op, span: span, timed: t.storeDuration.Enabled(ctx)}
	if c.timed {
		c.start = time.Now()
	}
	return ctx, c
}

// end records the call's duration and failure, if any, and ends its span.
func (c *storeCall) end(ctx context.Context, err error) {
	t := c.tel
	failed := storeFailure(err)
	if failed {
		typ := errorType(err)
		attrs := metric.WithAttributes(t.storeOpAttr[c.op], attrErrorType.String(typ))
		t.storeErrors.Add(ctx, 1, attrs)
		if c.timed {
			t.storeDuration.Record(ctx, time.Since(c.start).Seconds(), attrs)
		}
		if c.span.IsRecording() {
			c.span.SetAttributes(attrErrorType.String(typ))
			c.span.SetStatus(codes.Error, typ)
		}
	} else if c.timed {
		t.storeDuration.Record(ctx, time.Since(c.start).Seconds(), t.storeRecord[c.op]...)
	}
	c.span.End()
}

func (s *instrumentedStore) Create(ctx context.Context, k *store.Key) error {
	ctx, c := s.begin(ctx, opCreate, k.ID)
	err := s.store.Create(ctx, k)
	c.end(ctx, err)
	return err
}

func (s *instrumentedStore) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	ctx, c := s.begin(ctx, opGet, id)
	k, err := s.store.Get(ctx, id)
	c.end(ctx, err)
	return k, err
}

func (s *instrumentedStore) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	ctx, c := s.begin(ctx, opGetByHash, uuid.Nil)
	k, err := s.store.GetByHash(ctx, hash)
	c.end(ctx, err)
	return k, err
}

func (s *instrumentedStore) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	ctx, c := s.begin(ctx, opList, uuid.Nil)
	p, err := s.store.List(ctx, opts)
	c.end(ctx, err)
	return p, err
}

func (s *instrumentedStore) Update(ctx context.Context, k *store.Key) error {
	ctx, c := s.begin(ctx, opUpdate, k.ID)
	err := s.store.Update(ctx, k)
	c.end(ctx, err)
	return err
}

func (s *instrumentedStore) Delete(ctx context.Context, id uuid.UUID) error {
	ctx, c := s.begin(ctx, opDelete, id)
	err := s.store.Delete(ctx, id)
	c.end(ctx, err)
	return err
}

func (s *instrumentedStore) TouchLastUsed(ctx context.Context, used map[uuid.UUID]time.Time) error {
	ctx, c := s.begin(ctx, opTouchLastUsed, uuid.Nil)
	err := s.store.TouchLastUsed(ctx, used)
	c.end(ctx, err)
	return err
}

func (s *instrumentedStore) ConsumeUse(ctx context.Context, id uuid.UUID) (int64, error) {
	ctx, c := s.begin(ctx, opConsumeUse, id)
	n, err := s.store.ConsumeUse(ctx, id)
	c.end(ctx, err)
	return n, err
}

// revoke calls rv, the wrapped store as a [store.Revoker], as
// Manager.Revoke would call it directly.
func (s *instrumentedStore) revoke(ctx context.Context, rv store.Revoker, id uuid.UUID, at time.Time) (*store.Key, error) {
	ctx, c := s.begin(ctx, opRevoke, id)
	k, err := rv.Revoke(ctx, id, at)
	c.end(ctx, err)
	return k, err
}

// retire calls r, the wrapped store as a [store.Retirer], as the Manager
// would call it directly.
func (s *instrumentedStore) retire(ctx context.Context, r store.Retirer, hashes []store.RetiredHash) error {
	ctx, c := s.begin(ctx, opRetire, uuid.Nil)
	err := r.Retire(ctx, hashes)
	c.end(ctx, err)
	return err
}

// retired calls r, the wrapped store as a [store.Retirer], as the Manager
// would call it directly.
func (s *instrumentedStore) retired(ctx context.Context, r store.Retirer, hashes ...[]byte) (bool, error) {
	ctx, c := s.begin(ctx, opRetired, uuid.Nil)
	ok, err := r.Retired(ctx, hashes...)
	c.end(ctx, err)
	return ok, err
}

// recordUsage, readUsage and purgeUsage call u, the wrapped store as a
// [store.UsageRecorder], as the Manager would call it directly.
func (s *instrumentedStore) recordUsage(ctx context.Context, u store.UsageRecorder, counts []store.UsageCount) error {
	ctx, c := s.begin(ctx, opRecordUsage, uuid.Nil)
	err := u.RecordUsage(ctx, counts)
	c.end(ctx, err)
	return err
}

func (s *instrumentedStore) readUsage(ctx context.Context, u store.UsageRecorder, q store.UsageQuery) ([]store.UsageCount, error) {
	ctx, c := s.begin(ctx, opReadUsage, uuid.Nil)
	counts, err := u.Usage(ctx, q)
	c.end(ctx, err)
	return counts, err
}

func (s *instrumentedStore) purgeUsage(ctx context.Context, u store.UsageRecorder, before time.Time) (int64, error) {
	ctx, c := s.begin(ctx, opPurgeUsage, uuid.Nil)
	n, err := u.PurgeUsage(ctx, before)
	c.end(ctx, err)
	return n, err
}

// spendUses and spendCredits call sp and cs, the wrapped store as a
// [store.UseSpender] and a [store.CreditSpender], as the Manager would
// call them directly.
func (s *instrumentedStore) spendUses(ctx context.Context, sp store.UseSpender, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	ctx, c := s.begin(ctx, opSpendUses, id)
	n, err := sp.SpendUses(ctx, id, cost, now)
	c.end(ctx, err)
	return n, err
}

func (s *instrumentedStore) spendCredits(ctx context.Context, cs store.CreditSpender, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	ctx, c := s.begin(ctx, opSpendCredits, uuid.Nil)
	n, err := cs.SpendCredits(ctx, id, cost, now)
	c.end(ctx, err)
	return n, err
}

// Health asks the wrapped store whether it works, as Manager.Health
// would ask it directly.
func (s *instrumentedStore) Health(ctx context.Context) error {
	ctx, c := s.begin(ctx, opHealth, uuid.Nil)
	err := storeHealth(ctx, s.store)
	c.end(ctx, err)
	return err
}

package keygate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// The outcomes usage history counts verifications by: "valid", and the
// codes with which package middleware and the token service refuse a
// token (package middleware's Code constants of the same values). Only
// verifications of a known key are counted, against that key: a malformed
// or unknown token has no key.
const (
	// OutcomeValid: the key was verified. A host's own permission check
	// after it (middleware.Require) is not known to the Manager: a request
	// it refuses counts as valid.
	OutcomeValid = "valid"
	// OutcomeInvalid: the key's previous secret, after its grace period;
	// or, for Manager.VerifyFor, a key of a workspace the caller may not
	// verify in (answered as an unknown token).
	OutcomeInvalid        = "invalid"
	OutcomeExpired        = "expired"
	OutcomeRevoked        = "revoked"
	OutcomeDisabled       = "disabled"
	OutcomeUsageExhausted = "usage_exhausted"
	OutcomeRateLimited    = "rate_limited"
	OutcomeAddressDenied  = "address_denied"
	// OutcomeInsufficientPermission: a verdict of Manager.VerifyFor on a
	// key that lacks the permission asked about (the key itself was
	// valid: its use was taken).
	OutcomeInsufficientPermission = "insufficient_permission"
	// OutcomeUnavailable: the key's usage limit or rate limiter could not
	// be checked (the store or the limiter failed); it was refused.
	OutcomeUnavailable = "unavailable"
)

// usageOutcome indexes the counters of an outcome.
type usageOutcome uint8

const (
	useValid usageOutcome = iota
	useInvalid
	useExpired
	useRevoked
	useDisabled
	useUsageExhausted
	useRateLimited
	useAddressDenied
	useInsufficientPermission
	useUnavailable
	numUsageOutcomes
)

// usageOutcomeNames are the names of the usage outcomes, by index.
var usageOutcomeNames = [numUsageOutcomes]string{
	OutcomeValid, OutcomeInvalid, OutcomeExpired, OutcomeRevoked, OutcomeDisabled,
	OutcomeUsageExhausted, OutcomeRateLimited, OutcomeAddressDenied,
	OutcomeInsufficientPermission, OutcomeUnavailable,
}

// UsageOutcomes returns the outcomes usage history counts, "valid" first.
func UsageOutcomes() []string {
	return append([]string(nil), usageOutcomeNames[:]...)
}

// usageOutcomeOf returns the outcome of a refusal by admit, from its audit
// reason.
func usageOutcomeOf(reason string) usageOutcome {
	switch reason {
	case "revoked":
		return useRevoked
	case "disabled":
		return useDisabled
	case "expired":
		return useExpired
	case "address_denied":
		return useAddressDenied
	case "rate_limited":
		return useRateLimited
	case "usage_exhausted":
		return useUsageExhausted
	case "unavailable":
		return useUnavailable
	}
	return useInvalid
}

// Defaults of usage recording.
const (
	// DefaultUsageInterval is how often usage counts are written to the
	// store when Config.UsageInterval is zero.
	DefaultUsageInterval = time.Minute
	// DefaultUsageRetention is how long usage history is kept when
	// Config.UsageRetention is zero.
	DefaultUsageRetention = 90 * 24 * time.Hour
	// usagePurgeEvery is how often, at most, the Manager purges usage
	// history older than the retention.
	usagePurgeEvery = time.Hour
)

// hourNanos is an hour in nanoseconds.
const hourNanos = int64(time.Hour)

// noHour marks a usage slot that holds no hour yet.
const noHour = math.MinInt64

// usageKind is the kind of a usage subject, an index of usageKinds.
type usageKind uint8

// The kinds of usage subjects: keys. Another kind (an identity's) is
// counted by the same machinery: its constant here and its store name in
// usageKinds, a counter from usage.counter(usageSubject{kind, id}, ...)
// held beside Key.usage and given to countUse's callers, and reports read
// with usageOf(ctx, its store name, ids, req).
const (
	kindKey usageKind = iota
	numUsageKinds
)

// usageKinds are the store's names of the kinds (store.UsageCount.Kind).
var usageKinds = [numUsageKinds]string{store.UsageKey}

// usageSubject names what usage counts are of: a kind and an id.
type usageSubject struct {
	kind usageKind
	id   uuid.UUID
}

// usageCell is one count waiting to be written: a subject's verifications
// with one outcome in one hour (Unix hours).
type usageCell struct {
	subject usageSubject
	hour    int64
	outcome usageOutcome
}

// usageCounter counts one subject's verifications in this process until
// the next flush, in two slots: the hours of each parity, so that the
// counts of the hour just ended and of the new one never mix. It is
// shared by every cached copy of the subject's key.
//
// A key verified on several cores at once would have them all write the
// cache line of its count of valid verifications, which then moves from
// core to core on every request: a cost of the order of the whole cached
// verification. So a counter whose counts meet another core's
// (stripeAfter failed compare-and-swaps within a flush interval) gets
// stripes: valid counts spread over cache lines by goroutine, so that
// each core mostly writes lines of its own. Only keys verified that hard
// pay the memory (64 bytes a stripe).
//
// It is 104 bytes, unpadded (with stripes, its lines are read by every
// core but written by the flush only; without, by one core at a time),
// and its refusals' counts are allocated at the first refusal.
type usageCounter struct {
	// cur is the slot of the latest hour counted, for the usual path of
	// add; nil once the counter has stripes (which only slowAdd uses).
	cur   atomic.Pointer[usageSlot]
	slots [2]usageSlot
	// stripes, once set, count the valid verifications (with the slots'
	// own count, which they take over from).
	stripes atomic.Pointer[usageStripes]
	// collisions counts the failed compare-and-swaps since the last
	// flush.
	collisions atomic.Int64
	subject    usageSubject
	// until is when, in Unix nanoseconds of the Manager's clock, the last
	// cache entry of a key counting here expires; guarded by usage.mu. A
	// flush forgets a counter with nothing counted once it is past (see
	// Manager.flushUsage).
	until int64
}

// usageSlot holds the counts of one hour: a valid verification reads its
// start and writes its count, beside it.
type usageSlot struct {
	// start is when the hour counted starts (Unix nanoseconds, a whole
	// hour), noHour when none yet.
	start atomic.Int64
	valid atomic.Int64
	// refused, allocated at the slot's first refusal and then kept,
	// counts the refusals by outcome (its useValid is unused).
	refused atomic.Pointer[[numUsageOutcomes]atomic.Int64]
}

// count returns the count of outcome o in s.
func (s *usageSlot) count(o usageOutcome) *atomic.Int64 {
	if o == useValid {
		return &s.valid
	}
	r := s.refused.Load()
	if r == nil {
		r = new([numUsageOutcomes]atomic.Int64)
		if !s.refused.CompareAndSwap(nil, r) {
			r = s.refused.Load()
		}
	}
	return &r[o]
}

// usage is a Manager's usage recording. It is safe for concurrent use.
type usage struct {
	// rec is where usage history is kept; nil when the store keeps none.
	rec store.UsageRecorder
	// interval is how often counts are written; <= 0 when this Manager
	// counts nothing (also when rec is nil).
	interval  time.Duration
	retention time.Duration // <= 0: kept forever

	mu       sync.Mutex
	counters map[usageSubject]*usageCounter
	// pending are the counts taken from the counters and not yet written.
	pending map[usageCell]int64
	// purged is when (Unix nanoseconds of the Manager's clock) usage was
	// last purged.
	purged int64
}

// counting reports whether verifications are counted.
func (u *usage) counting() bool {
	return u.rec != nil && u.interval > 0
}

// counter returns the counter of sub, creating it, for a cache entry that
// expires at until (Unix nanoseconds); nil when nothing is counted.
func (u *usage) counter(sub usageSubject, until int64) *usageCounter {
	if !u.counting() {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.counters[sub]
	if c == nil {
		if u.counters == nil {
			u.counters = make(map[usageSubject]*usageCounter)
		}
		c = &usageCounter{subject: sub, until: until}
		c.slots[0].start.Store(noHour)
		c.slots[1].start.Store(noHour)
		c.cur.Store(&c.slots[0])
		u.counters[sub] = c
	}
	c.until = max(c.until, until)
	return c
}

// stripeAfter is the number of collisions (failed compare-and-swaps of a
// count) within a flush interval that give a counter stripes.
const stripeAfter = 32

// usageStripes are the stripes of a counter: valid counts by hour parity,
// one cache line each.
type usageStripes struct {
	s []usageStripe // 7, 15, 31 or 63 of them
}

type usageStripe struct {
	valid [2]atomic.Int64
	_     [48]byte
}

// newUsageStripes returns stripes for this process: about four per core
// (as GOMAXPROCS says), 7, 15, 31 or 63.
func newUsageStripes() *usageStripes {
	n := 7
	for n < 4*runtime.GOMAXPROCS(0) && n < 63 {
		n = 2*n + 1
	}
	return &usageStripes{s: make([]usageStripe, n)}
}

// add counts one valid verification of hour parity p, in the stripe of
// the calling goroutine: the one its stack's address (a different one
// for each goroutine, that stays put while the goroutine runs) maps to.
func (st *usageStripes) add(p int64) {
	var here byte
	st.s[stripeOf(uintptr(unsafe.Pointer(&here)), len(st.s))].valid[p].Add(1)
}

// stripeOf maps the address of a variable on a goroutine's stack to one
// of n stripes (7, 15, 31 or 63). Stacks are at least 2 KiB and aligned to
// their size, so goroutines' stacks differ from the 11th bit up: the
// stripe is the 2 KiB block's number modulo n, an odd number, which no
// power of two divides, so that stacks a power of two apart (adjacent
// ones of any one size) never share a stripe, and others by chance, 1 in
// n. (The moduli are constants, so no division is made.)
func stripeOf(addr uintptr, n int) uint64 {
	x := uint64(addr) >> 11
	switch n {
	case 7:
		return x % 7
	case 15:
		return x % 15
	case 31:
		return x % 31
	}
	return x % 63
}

// add counts one verification with outcome o at n (Unix nanoseconds of the
// Manager's clock). Its usual path, a valid verification, is three atomic
// loads (plain loads on amd64 and arm64) and a compare-and-swap; a
// refusal, the first count of each hour, a collision with another core
// and a counter with stripes take slowAdd.
func (c *usageCounter) add(u *usage, n int64, o usageOutcome) {
	if s := c.cur.Load(); s != nil && o == useValid && uint64(n-s.start.Load()) < uint64(hourNanos) {
		if old := s.valid.Load(); s.valid.CompareAndSwap(old, old+1) {
			return
		}
	}
	c.slowAdd(u, n, o)
}

// slowAdd is add for all but its usual path: the first count of an hour
// (see roll), or of an hour before the latest, a count whose
// compare-and-swap failed, another core having counted at the same time
// (the stripeAfter-th such collision since the last flush gives c
// stripes), and a valid count of a counter with stripes. A time before
// 1970 is not counted.
func (c *usageCounter) slowAdd(u *usage, n int64, o usageOutcome) {
	if n < 0 {
		return
	}
	h := n / hourNanos
	s := &c.slots[h&1]
	switch st := c.stripes.Load(); {
	case s.start.Load() != h*hourNanos:
		u.roll(c, h, o)
	case o == useValid && st != nil:
		st.add(h & 1)
	case o != useValid:
		s.count(o).Add(1)
	default:
		s.valid.Add(1)
		if c.collisions.Add(1) == stripeAfter && st == nil {
			c.stripes.Store(newUsageStripes())
			c.cur.Store(nil)
		}
	}
}

// roll counts one verification with outcome o in hour h (Unix hours), in
// the slot of its parity, first making the slot count that hour: what it
// counted of an earlier hour (of the same parity, two or more hours ago)
// goes to the pending counts. The slot becomes the usual path's, unless
// the counter has stripes or counts a later hour already.
func (u *usage) roll(c *usageCounter, h int64, o usageOutcome) {
	s := &c.slots[h&1]
	u.mu.Lock()
	defer u.mu.Unlock()
	if s.start.Load() != h*hourNanos {
		u.drain(c, s)
		s.start.Store(h * hourNanos)
	}
	s.count(o).Add(1)
	if cur := c.cur.Load(); cur != nil && cur.start.Load() < h*hourNanos {
		c.cur.Store(s)
	}
}

// drain moves the counts of s, a slot of c, to the pending counts, with
// those of c's stripes of its hour, and reports whether there were any.
// The caller holds u.mu.
func (u *usage) drain(c *usageCounter, s *usageSlot) bool {
	start := s.start.Load()
	if start == noHour {
		return false
	}
	h := start / hourNanos
	n := s.valid.Swap(0)
	if st := c.stripes.Load(); st != nil {
		for i := range st.s {
			n += st.s[i].valid[h&1].Swap(0)
		}
	}
	counted := u.queue(c, h, useValid, n)
	if r := s.refused.Load(); r != nil {
		for o := range r {
			counted = u.queue(c, h, usageOutcome(o), r[o].Swap(0)) || counted
		}
	}
	return counted
}

// queue adds n counts of outcome o in hour h of c's subject to the pending
// counts, and reports whether n is not zero. The caller holds u.mu.
func (u *usage) queue(c *usageCounter, h int64, o usageOutcome, n int64) bool {
	if n == 0 {
		return false
	}
	if u.pending == nil {
		u.pending = make(map[usageCell]int64)
	}
	u.pending[usageCell{c.subject, h, o}] += n
	return true
}

// forget drops what is counted of sub and not yet written, and its
// counter: sub was deleted, with its history.
func (u *usage) forget(sub usageSubject) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.counters, sub)
	for cell := range u.pending {
		if cell.subject == sub {
			delete(u.pending, cell)
		}
	}
}

// countUse counts one verification of k with outcome o at n (Unix
// nanoseconds of the Manager's clock), when k counts (a key this Manager
// verified, with usage recording on).
func (m *Manager) countUse(k *Key, n int64, o usageOutcome) {
	if c := k.usage; c != nil {
		c.add(&m.usage, n, o)
	}
}

// flushUsage writes the counts made since the last flush to the store, in
// one batch, and keeps them for the next flush on a store error. It then
// purges the history older than the retention, when that was last done an
// hour ago or more. Counters with nothing counted whose keys are no longer
// in the cache (their last entry expired an interval ago) are forgotten.
func (m *Manager) flushUsage(ctx context.Context) error {
	u := &m.usage
	if !u.counting() {
		return nil // nothing counted, nor purged: Config.UsageRetention is for those that count
	}
	now := m.now().UnixNano()
	u.mu.Lock()
	for sub, c := range u.counters {
		c.collisions.Store(0)
		live := u.drain(c, &c.slots[0])
		live = u.drain(c, &c.slots[1]) || live
		if !live && c.until < now-int64(u.interval) {
			delete(u.counters, sub)
		}
	}
	batch := u.pending
	u.pending = nil
	u.mu.Unlock()
	var errs []error
	if len(batch) > 0 {
		counts := make([]store.UsageCount, 0, len(batch))
		for cell, n := range batch {
			counts = append(counts, store.UsageCount{Kind: usageKinds[cell.subject.kind], Subject: cell.subject.id,
				Hour: time.Unix(cell.hour*3600, 0).UTC(), Outcome: usageOutcomeNames[cell.outcome], Count: n})
		}
		if err := m.recordUsage(ctx, counts); err != nil {
			u.mu.Lock()
			if u.pending == nil {
				u.pending = batch
			} else {
				for cell, n := range batch {
					u.pending[cell] += n
				}
			}
			u.mu.Unlock()
			errs = append(errs, m.storeError("record usage", err))
		}
	}
	if u.retention > 0 {
		u.mu.Lock()
		due := u.purged == 0 || now-u.purged >= int64(usagePurgeEvery) || now < u.purged
		if due {
			u.purged = now
		}
		u.mu.Unlock()
		if due {
			// Whole hours: an hour is purged once all of it is past.
			if _, err := m.purgeUsage(ctx, time.Unix(0, now).Add(-u.retention).Truncate(time.Hour)); err != nil {
				u.mu.Lock()
				u.purged = 0 // try again at the next flush
				u.mu.Unlock()
				errs = append(errs, m.storeError("purge usage", err))
			}
		}
	}
	return errors.Join(errs...)
}

// usageLoop flushes usage every interval until ctx ends.
func (m *Manager) usageLoop(ctx context.Context) {
	t := time.NewTicker(m.usage.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := m.flushUsage(fctx); err != nil {
				m.logger.WarnContext(ctx, "keygate: recording usage failed; will retry", "error", err)
			}
			cancel()
		}
	}
}

// recordUsage, readUsage and purgeUsage call the store's UsageRecorder,
// through the telemetry's instruments.
func (m *Manager) recordUsage(ctx context.Context, counts []store.UsageCount) error {
	if is, ok := m.store.(*instrumentedStore); ok {
		return is.recordUsage(ctx, m.usage.rec, counts)
	}
	return m.usage.rec.RecordUsage(ctx, counts)
}

func (m *Manager) readUsage(ctx context.Context, q store.UsageQuery) ([]store.UsageCount, error) {
	if is, ok := m.store.(*instrumentedStore); ok {
		return is.readUsage(ctx, m.usage.rec, q)
	}
	return m.usage.rec.Usage(ctx, q)
}

func (m *Manager) purgeUsage(ctx context.Context, before time.Time) (int64, error) {
	if is, ok := m.store.(*instrumentedStore); ok {
		return is.purgeUsage(ctx, m.usage.rec, before)
	}
	return m.usage.rec.PurgeUsage(ctx, before)
}

// Bounds of a usage report ([UsageRequest]).
const (
	// MaxUsageHours is the most hourly buckets of one report: 90 days.
	MaxUsageHours = 90 * 24
	// MaxUsageDays is the most daily buckets of one report.
	MaxUsageDays = 366
	// DefaultUsageHours and DefaultUsageDays are the buckets of a report
	// without From: the last day of hours, the last 30 days.
	DefaultUsageHours = 24
	DefaultUsageDays  = 30
)

// UsageRequest asks for a usage report: the verifications in [From, To),
// counted in buckets of Bucket. Daily buckets are days in UTC.
type UsageRequest struct {
	// From and To bound the report: at most MaxUsageHours hours apart
	// for hourly buckets, MaxUsageDays days for daily ones, within the
	// years 1970 to 9999. The report then covers whole buckets: From
	// rounded down, To up (one bucket more than the limit at most). A zero
	// To is the end of the current bucket (so the report ends with the
	// bucket under way); a zero From is DefaultUsageHours or
	// DefaultUsageDays buckets before To.
	From, To time.Time
	// Bucket is time.Hour (the default, for zero) or 24 * time.Hour.
	Bucket time.Duration
}

// UsageCounts are verifications by outcome (see [UsageOutcomes]); an
// outcome without any is absent. Read it like any map: c["valid"].
type UsageCounts map[string]int64

// Total returns the number of verifications of every outcome.
func (c UsageCounts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Refused returns the number of verifications of every outcome but valid.
func (c UsageCounts) Refused() int64 {
	return c.Total() - c[OutcomeValid]
}

// UsageBucket is one bucket of a usage report.
type UsageBucket struct {
	// Start is when the bucket starts, in UTC; it ends a report's Bucket
	// later.
	Start time.Time
	// Counts are its verifications by outcome; nil for none.
	Counts UsageCounts
}

// Usage is a usage report: a subject's verifications by outcome over a
// time range, in buckets. Verifications reach the store in the batches of
// each instance, every Config.UsageInterval: the last minute (by default)
// may not be counted yet.
type Usage struct {
	// From and To are the range reported on, in whole buckets, in UTC.
	From, To time.Time
	// Bucket is the length of each bucket: an hour or a day.
	Bucket time.Duration
	// Buckets cover From to To, in order, each of them, empty ones
	// included.
	Buckets []UsageBucket
	// Totals are the counts of the whole range.
	Totals UsageCounts
}

// earliestUsage is the earliest time a usage report may cover.
var earliestUsage = time.Unix(0, 0).UTC()

// resolve returns r with its defaults applied and rounded to whole buckets
// at now, or an error wrapping ErrInvalidRequest.
func (r UsageRequest) resolve(now time.Time) (UsageRequest, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w: usage "+format, append([]any{ErrInvalidRequest, ErrInvalidField}, args...)...)
	}
	limit := MaxUsageHours
	switch r.Bucket {
	case 0, time.Hour:
		r.Bucket = time.Hour
	case 24 * time.Hour:
		limit = MaxUsageDays
	default:
		return r, bad("bucket must be an hour or a day")
	}
	if r.To.IsZero() {
		r.To = now.UTC().Truncate(r.Bucket).Add(r.Bucket)
	}
	if r.From.IsZero() {
		n := DefaultUsageHours
		if r.Bucket != time.Hour {
			n = DefaultUsageDays
		}
		r.From = ceilTime(r.To.UTC(), r.Bucket).Add(-time.Duration(n) * r.Bucket)
	}
	switch {
	case !r.From.Before(r.To):
		return r, bad("range is empty: from must be before to")
	case r.To.Sub(r.From) > time.Duration(limit)*r.Bucket:
		return r, bad("range is longer than %d buckets of %v", limit, r.Bucket)
	}
	// Rounded first: a range ending in the last hour of 9999 would end
	// in the year 10000, which JSON cannot write.
	r.From, r.To = r.From.UTC().Truncate(r.Bucket), ceilTime(r.To.UTC(), r.Bucket)
	if r.From.Before(earliestUsage) || r.To.After(MaxExpiry) {
		return r, bad("range must be within the years 1970 to 9999")
	}
	return r, nil
}

// ceilTime returns t rounded up to a multiple of d (since the zero time).
func ceilTime(t time.Time, d time.Duration) time.Time {
	if f := t.Truncate(d); !f.Equal(t) {
		return f.Add(d)
	}
	return t
}

// Usage reports key id's verifications by outcome over req's range: how
// much a key was used, and how often it was refused and why. by needs
// apikey:view in the key's workspace, as for [Manager.Get]: a key it may
// not see at all is [ErrNotFound]. The history is kept per hour, for
// Config.UsageRetention (90 days by default); a deleted key's goes with
// it. A store that keeps no usage history ([store.UsageRecorder]) is
// [ErrUnsupported]. An invalid request wraps [ErrInvalidRequest].
func (m *Manager) Usage(ctx context.Context, by Principal, id uuid.UUID, req UsageRequest) (_ *Usage, err error) {
	ctx, span := m.startSpan(ctx, "Usage", id)
	defer endSpan(span, &err)
	if req, err = req.resolve(m.clock()); err != nil {
		return nil, err
	}
	if _, err := m.Get(ctx, by, id); err != nil {
		return nil, err
	}
	reports, err := m.usageOf(ctx, store.UsageKey, []uuid.UUID{id}, req)
	if err != nil {
		return nil, err
	}
	return reports[id], nil
}

// KeysUsage is [Manager.Usage] for many keys at once, in one store query:
// for a page of keys as [Manager.List] returned it to by, such as the
// usage column of a list. Each key's report is keyed by its id; a key by
// may not view (apikey:view in its workspace) is left out, as are keys
// beyond the first store.MaxUsageSubjects. The records are taken as
// given: pass the records the Manager returned.
func (m *Manager) KeysUsage(ctx context.Context, by Principal, keys []*store.Key, req UsageRequest) (_ map[uuid.UUID]*Usage, err error) {
	ctx, span := m.startSpan(ctx, "KeysUsage", uuid.Nil)
	defer endSpan(span, &err)
	if req, err = req.resolve(m.clock()); err != nil {
		return nil, err
	}
	if by, err = m.actor(ctx, by, false); err != nil {
		return nil, err
	}
	var ids []uuid.UUID
	for _, k := range keys {
		if len(ids) < store.MaxUsageSubjects && by.Allows(m.viewKeys, k.Workspace) {
			ids = append(ids, k.ID)
			m.exercised(by.keyID, m.viewKeys, k.Workspace)
		}
	}
	if len(ids) == 0 {
		if m.usage.rec == nil {
			return nil, fmt.Errorf("keygate: usage: %w: the store keeps no usage history", ErrUnsupported)
		}
		return map[uuid.UUID]*Usage{}, nil
	}
	return m.usageOf(ctx, store.UsageKey, ids, req)
}

// usageOf reads the usage of the subjects ids of kind over req (resolved),
// one report per id.
func (m *Manager) usageOf(ctx context.Context, kind string, ids []uuid.UUID, req UsageRequest) (map[uuid.UUID]*Usage, error) {
	if m.usage.rec == nil {
		return nil, fmt.Errorf("keygate: usage: %w: the store keeps no usage history", ErrUnsupported)
	}
	counts, err := m.readUsage(ctx, store.UsageQuery{Kind: kind, Subjects: ids, From: req.From, To: req.To})
	if err != nil {
		return nil, m.storeError("read usage", err)
	}
	n := int(req.To.Sub(req.From) / req.Bucket)
	out := make(map[uuid.UUID]*Usage, len(ids))
	for _, id := range ids {
		u := &Usage{From: req.From, To: req.To, Bucket: req.Bucket, Buckets: make([]UsageBucket, n), Totals: UsageCounts{}}
		for i := range u.Buckets {
			u.Buckets[i].Start = req.From.Add(time.Duration(i) * req.Bucket)
		}
		out[id] = u
	}
	for _, c := range counts {
		u := out[c.Subject]
		at := c.Hour.UTC()
		if u == nil || c.Count <= 0 || at.Before(req.From) || !at.Before(req.To) {
			continue // not asked for: a store's mistake
		}
		b := &u.Buckets[at.Sub(req.From)/req.Bucket]
		if b.Counts == nil {
			b.Counts = UsageCounts{}
		}
		b.Counts[c.Outcome] += c.Count
		u.Totals[c.Outcome] += c.Count
	}
	return out, nil
}

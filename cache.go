package keygate

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/uuid"
)

// digest is the cache key of a token: its SHA-256. The store never sees it;
// it keeps only the peppered hash.
type digest [sha256.Size]byte

// equal reports whether d and o are the same digest, in four word
// compares (== on the arrays calls memequal).
func (d *digest) equal(o *digest) bool {
	le := binary.LittleEndian
	return le.Uint64(d[0:]) == le.Uint64(o[0:]) && le.Uint64(d[8:]) == le.Uint64(o[8:]) &&
		le.Uint64(d[16:]) == le.Uint64(o[16:]) && le.Uint64(d[24:]) == le.Uint64(o[24:])
}

// digestOf hashes token without copying it.
func digestOf(token string) digest {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// cacheEntry is a cached verification result: a key, or nil for a token
// that matches no key (the negative cache). An entry is never modified
// once it is in a cache, except for sameKey, which only writers read.
//
// It is 64 bytes, one cache line, and holds what a hit reads before the
// key: the digest, the entry's expiry and, in live, a summary of the
// checks of Manager.admit, so that a hit on a key with nothing to check
// but its expiry (no revocation, no allow-list, no rate or usage limit)
// reads only the first line of the Key (its grant and last use), and its
// workspace for Authorize.
type cacheEntry struct {
	// d is the entry's digest, set by put.
	d digest
	// expires is when the entry stops being used, in the manager's clock
	// (Unix nanoseconds).
	expires int64
	// live is set by summarize: before live (Unix nanoseconds of the
	// manager's clock) the key needs no check of admit's but this bound,
	// and is admitted without reading the rest of its record. MinInt64
	// (never) for a key that is revoked or disabled, has an allow-list, a
	// rate limit or a usage limit, or for no key.
	live int64
	key  *Key
	// sameKey links the entries of one key id within a shard, from the
	// shard's byID (guarded by the shard's mutex).
	sameKey *cacheEntry
}

// keyEntry is the entry of a key allocated with its Key, which follows it
// in memory: a hit reads the entry's line and the Key's first two (its last
// use, grant and workspace), adjacent, rather than lines of two objects
// anywhere in the heap. It costs no more heap than the two apart (576
// bytes, the size class of a 512-byte Key and a 64-byte entry together).
type keyEntry struct {
	cacheEntry
	key Key
}

// summarize sets e.live from e.key, which does not change afterwards.
// Before live, admit's full checks would pass: the key is neither revoked,
// disabled nor expired, the previous secret it was verified with (if so)
// is still in its grace period, and it has no allow-list, rate limit or
// usage limit, nor an always-on limit of its identity (on-demand limits
// apply only to verifications that name them, which admit checks in
// full). A record changes only through a new entry: every change
// invalidates the key's entries, and the next verification loads it again.
func (e *cacheEntry) summarize() {
	e.live = math.MinInt64
	k := e.key
	if k == nil || !k.RevokedAt.IsZero() || !k.DisabledAt.IsZero() || len(k.AllowedCIDRs) > 0 || k.RateLimit > 0 || k.RemainingUses != nil ||
		(k.meter != nil && k.meter.always) {
		return
	}
	e.live = math.MaxInt64
	if !k.ExpiresAt.IsZero() {
		e.live = unixNanoFloor(k.ExpiresAt)
	}
	if k.viaPrev {
		e.live = min(e.live, unixNanoFloor(k.PrevExpiresAt))
	}
}

// unixNanoFloor returns t in Unix nanoseconds, saturated: MaxInt64 for a
// time after 2262 (such as MaxExpiry), which no clock reading reaches,
// and MinInt64 for one before 1678. For t in range, a time now is before
// t exactly when now.UnixNano() < unixNanoFloor(t).
func unixNanoFloor(t time.Time) int64 {
	switch {
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	}
	return t.UnixNano()
}

const cacheShards = 16

// cache is a sharded, size-bounded map of verification results with a TTL
// per entry. It is safe for concurrent use.
//
// A lookup takes no lock and writes no shared memory, so that cores never
// fight over a cache line on a hit: each shard is an open-addressing table
// (linear probing on the digest, which is uniformly random) of atomic
// pointers to immutable entries. Writers (fills, evictions, invalidations)
// hold the shard's mutex, publish each slot with an atomic store and
// delete by shifting the following entries back, so that no tombstones
// accumulate. A reader racing with a writer may miss an entry that is being
// moved (a cache miss: the store is asked), never find one that an
// invalidation that returned before its lookup began has removed.
//
// When the cache is full, an arbitrary entry of the shard receiving the
// new one is evicted, which bounds memory at no cost to the hot path.
type cache struct {
	shards [cacheShards]cacheShard
	// limit bounds the number of entries, count is it.
	limit int64
	count atomic.Int64
	// epoch counts invalidations. A load that raced with one does not fill
	// the cache, so a stale record is never cached after its invalidation.
	epoch atomic.Uint64
	// tel counts hits and misses (counted by the caller of get, only
	// while the instruments record); nil counts nothing.
	tel *cacheTelemetry
}

type cacheShard struct {
	// table is read without a lock; replaced (never modified afterwards)
	// when it grows or is cleared.
	table atomic.Pointer[cacheTable]

	mu   sync.Mutex
	n    int                       // entries in table
	byID map[uuid.UUID]*cacheEntry // first entry of each key (linked by sameKey)

	_ [64]byte // keep shards' hot words on separate cache lines
}

// cacheTable is an open-addressing table; len(slots) is a power of two.
type cacheTable struct {
	slots []atomic.Pointer[cacheEntry]
	mask  uint64
}

// minTableSize is the number of slots of an empty shard.
const minTableSize = 8

func newTable(size int) *cacheTable {
	return &cacheTable{slots: make([]atomic.Pointer[cacheEntry], size), mask: uint64(size - 1)}
}

func newCache(size int) *cache {
	c := &cache{limit: int64(max(1, size))}
	for i := range c.shards {
		c.shards[i].table.Store(newTable(minTableSize))
		c.shards[i].byID = make(map[uuid.UUID]*cacheEntry)
	}
	return c
}

func (c *cache) shard(d *digest) *cacheShard {
	return &c.shards[d[0]%cacheShards]
}

// home is the first slot d probes in a table of mask+1 slots. It uses
// other bytes of the digest than the shard's.
func home(d *digest, mask uint64) uint64 {
	return binary.LittleEndian.Uint64(d[8:16]) & mask
}

// get returns the live entry for d at now, if any. It takes no lock and
// writes nothing; it counts nothing either (see cacheTelemetry.lookup).
func (c *cache) get(d *digest, now int64) (*cacheEntry, bool) {
	t := c.shard(d).table.Load()
	for i, n := home(d, t.mask), 0; n <= int(t.mask); i, n = (i+1)&t.mask, n+1 {
		e := t.slots[i].Load()
		if e == nil {
			break
		}
		if e.d.equal(d) {
			if now >= e.expires {
				break
			}
			return e, true
		}
	}
	return nil, false
}

// put stores e for d, unless an invalidation happened since epoch was read.
func (c *cache) put(d *digest, e *cacheEntry, epoch uint64) {
	s := c.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.epoch.Load() != epoch {
		return
	}
	e.d = *d
	t := s.table.Load()
	if i, ok := t.find(d); ok {
		old := t.slots[i].Load()
		s.unlink(old)
		s.link(e)
		t.slots[i].Store(e)
		return
	}
	if c.count.Load() >= c.limit {
		if s.n == 0 {
			return // full, and nothing of this shard's to give up
		}
		s.evictOne(c, t)
	} else if (s.n+1)*4 > len(t.slots)*3 {
		t = s.grow(t)
	}
	s.link(e)
	t.insert(e)
	s.n++
	c.count.Add(1)
}

// find returns the slot holding d.
func (t *cacheTable) find(d *digest) (uint64, bool) {
	for i, n := home(d, t.mask), 0; n <= int(t.mask); i, n = (i+1)&t.mask, n+1 {
		e := t.slots[i].Load()
		if e == nil {
			return 0, false
		}
		if e.d == *d {
			return i, true
		}
	}
	return 0, false
}

// insert puts e in the first free slot of its probe sequence. The table
// has one.
func (t *cacheTable) insert(e *cacheEntry) {
	i := home(&e.d, t.mask)
	for t.slots[i].Load() != nil {
		i = (i + 1) & t.mask
	}
	t.slots[i].Store(e)
}

// remove empties slot i, moving back the entries after it that would
// otherwise no longer be found (backward-shift deletion).
func (t *cacheTable) remove(i uint64) {
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		e := t.slots[j].Load()
		if e == nil {
			break
		}
		// e stays unless its home is cyclically outside (i, j].
		h := home(&e.d, t.mask)
		if (j-h)&t.mask >= (j-i)&t.mask {
			t.slots[i].Store(e)
			i = j
		}
	}
	t.slots[i].Store(nil)
}

// slotOf returns the slot holding e.
func (t *cacheTable) slotOf(e *cacheEntry) (uint64, bool) {
	for i, n := home(&e.d, t.mask), 0; n <= int(t.mask); i, n = (i+1)&t.mask, n+1 {
		x := t.slots[i].Load()
		if x == nil {
			return 0, false
		}
		if x == e {
			return i, true
		}
	}
	return 0, false
}

// grow replaces t with a table twice its size holding the same entries,
// and returns it. Readers still on t see it unchanged.
func (s *cacheShard) grow(t *cacheTable) *cacheTable {
	g := newTable(len(t.slots) * 2)
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil {
			g.insert(e)
		}
	}
	s.table.Store(g)
	return g
}

// evictOne removes an arbitrary entry of the shard, which has one.
func (s *cacheShard) evictOne(c *cache, t *cacheTable) {
	for i := rand.Uint64() & t.mask; ; i = (i + 1) & t.mask {
		if e := t.slots[i].Load(); e != nil {
			s.unlink(e)
			t.remove(i)
			s.n--
			c.count.Add(-1)
			return
		}
	}
}

// link adds e to the id index of its key.
func (s *cacheShard) link(e *cacheEntry) {
	if e.key == nil {
		return
	}
	e.sameKey = s.byID[e.key.ID]
	s.byID[e.key.ID] = e
}

// unlink removes e from the id index of its key.
func (s *cacheShard) unlink(e *cacheEntry) {
	if e.key == nil {
		return
	}
	id := e.key.ID
	for p, x := (**cacheEntry)(nil), s.byID[id]; x != nil; p, x = &x.sameKey, x.sameKey {
		if x != e {
			continue
		}
		switch {
		case p != nil:
			*p = x.sameKey
		case x.sameKey != nil:
			s.byID[id] = x.sameKey
		default:
			delete(s.byID, id)
		}
		return
	}
}

// invalidate drops every entry of key id, and makes loads already under way
// not fill the cache.
func (c *cache) invalidate(id uuid.UUID) {
	c.epoch.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		t := s.table.Load()
		for e := s.byID[id]; e != nil; e = e.sameKey {
			if j, ok := t.slotOf(e); ok {
				t.remove(j)
				s.n--
				c.count.Add(-1)
			}
		}
		delete(s.byID, id)
		s.mu.Unlock()
	}
}

// forget drops the entry of d, if any, and makes loads already under way
// not fill the cache.
func (c *cache) forget(d *digest) {
	c.epoch.Add(1)
	s := c.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table.Load()
	if i, ok := t.find(d); ok {
		s.unlink(t.slots[i].Load())
		t.remove(i)
		s.n--
		c.count.Add(-1)
	}
}

// clear drops every entry.
func (c *cache) clear() {
	c.epoch.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.table.Store(newTable(minTableSize))
		clear(s.byID)
		c.count.Add(int64(-s.n))
		s.n = 0
		s.mu.Unlock()
	}
}

// len returns the number of entries, live or expired.
func (c *cache) len() int {
	return int(c.count.Load())
}

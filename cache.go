package keygate

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/google/uuid"
)

// digest is the cache key of a token: its SHA-256. The store never sees it;
// it keeps only the peppered hash.
type digest [sha256.Size]byte

// digestOf hashes token without copying it.
func digestOf(token string) digest {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// cacheEntry is a cached verification result: a key, or nil for a token
// that matches no key (the negative cache).
type cacheEntry struct {
	key *Key
	// viaPrev records that the token is the key's previous secret, valid
	// until key.PrevExpiresAt.
	viaPrev bool
	// expires is when the entry stops being used, in the manager's clock
	// (Unix nanoseconds).
	expires int64
}

const cacheShards = 16

// cache is a sharded, size-bounded map of verification results with a TTL
// per entry. It is safe for concurrent use. When a shard is full, an
// arbitrary entry is evicted (Go's map iteration order), which bounds memory
// at no cost to the hot path.
type cache struct {
	shards   [cacheShards]cacheShard
	perShard int
	// epoch counts invalidations. A load that raced with one does not fill
	// the cache, so a stale record is never cached after its invalidation.
	epoch atomic.Uint64
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[digest]*cacheEntry
	byID    map[uuid.UUID][]digest
}

func newCache(size int) *cache {
	c := &cache{perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[digest]*cacheEntry)
		c.shards[i].byID = make(map[uuid.UUID][]digest)
	}
	return c
}

func (c *cache) shard(d *digest) *cacheShard {
	return &c.shards[d[0]%cacheShards]
}

// get returns the live entry for d at now, if any.
func (c *cache) get(d *digest, now int64) (*cacheEntry, bool) {
	s := c.shard(d)
	s.mu.RLock()
	e, ok := s.entries[*d]
	s.mu.RUnlock()
	if !ok || now >= e.expires {
		return nil, false
	}
	return e, true
}

// put stores e for d, unless an invalidation happened since epoch was read.
func (c *cache) put(d *digest, e *cacheEntry, epoch uint64) {
	s := c.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.epoch.Load() != epoch {
		return
	}
	if old, ok := s.entries[*d]; ok {
		s.unlink(d, old)
	} else if len(s.entries) >= c.perShard {
		for victim, ve := range s.entries {
			s.unlink(&victim, ve)
			delete(s.entries, victim)
			break
		}
	}
	s.entries[*d] = e
	if e.key != nil {
		s.byID[e.key.ID] = append(s.byID[e.key.ID], *d)
	}
}

// unlink removes d from the id index of e's key.
func (s *cacheShard) unlink(d *digest, e *cacheEntry) {
	if e.key == nil {
		return
	}
	ds := s.byID[e.key.ID]
	for i := range ds {
		if ds[i] == *d {
			ds = append(ds[:i], ds[i+1:]...)
			break
		}
	}
	if len(ds) == 0 {
		delete(s.byID, e.key.ID)
	} else {
		s.byID[e.key.ID] = ds
	}
}

// invalidate drops every entry of key id, and makes loads already under way
// not fill the cache.
func (c *cache) invalidate(id uuid.UUID) {
	c.epoch.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, d := range s.byID[id] {
			delete(s.entries, d)
		}
		delete(s.byID, id)
		s.mu.Unlock()
	}
}

// clear drops every entry.
func (c *cache) clear() {
	c.epoch.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.entries)
		clear(s.byID)
		s.mu.Unlock()
	}
}

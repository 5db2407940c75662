package keygate_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// Benchmarks of many keys, through the public API only: cached Verify +
// Authorize over N keys picked at random, next to the floor any
// verification cache pays at the same N (one SHA-256 of the token and one
// Go map lookup), and the heap a cached key costs.
//
// N = 1,000,000 takes a minute to set up and a few GB of memory, so it runs
// only with KEYGATE_BIG=1:
//
//	go test -run '^$' -bench ManyKeys -cpu 1,2 .
//	KEYGATE_BIG=1 go test -run '^$' -bench ManyKeys -timeout 60m .

// bigEnv enables the benchmarks over a million keys.
const bigEnv = "KEYGATE_BIG"

// manyKeyCounts returns the numbers of keys to benchmark.
func manyKeyCounts() []int {
	ns := []int{1_000, 10_000, 100_000}
	if os.Getenv(bigEnv) == "1" {
		ns = append(ns, 1_000_000)
	}
	return ns
}

// atomicClock is a settable clock that readers take without a lock or a
// write to shared memory.
type atomicClock struct{ ns atomic.Int64 }

func newAtomicClock() *atomicClock {
	c := &atomicClock{}
	c.ns.Store(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *atomicClock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// manyKeys is a memory store holding n verified keys, and their tokens,
// with two Managers whose caches hold every key: one on the default clock
// (time.Now), one on a Config.Now that costs one atomic load, as the other
// benchmarks' clocks.
type manyKeys struct {
	real, atomic *keygate.Manager
	tokens       []string
	// floor maps each token's SHA-256 to a value, as the cheapest cache
	// would.
	floor map[[sha256.Size]byte]*store.Key
}

var (
	manyKeysMu    sync.Mutex
	manyKeysCache = map[int]*manyKeys{}
)

// benchHasher returns the hasher of the scale benchmarks.
func benchHasher(tb testing.TB) *apikey.Hasher {
	tb.Helper()
	h, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: []byte("a benchmark pepper of at least 32 bytes")})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// newManyKeys returns (and keeps for the next runs of the benchmark, so
// that -count and -cpu do not build it again) n workspace-editor keys,
// each verified once by both Managers.
func newManyKeys(tb testing.TB, n int) *manyKeys {
	tb.Helper()
	manyKeysMu.Lock()
	defer manyKeysMu.Unlock()
	if mk, ok := manyKeysCache[n]; ok {
		return mk
	}
	st := memory.New()
	h := benchHasher(tb)
	newManager := func(now func() time.Time) *keygate.Manager {
		// Twice n: a cache sharded by token evicts before it holds
		// exactly its size.
		m, err := keygate.New(keygate.Config{Store: st, Hasher: h, Auditor: nopAuditor{}, CacheSize: 2 * n, CacheTTL: time.Hour, Now: now})
		if err != nil {
			tb.Fatal(err)
		}
		return m
	}
	mk := &manyKeys{real: newManager(nil), atomic: newManager(newAtomicClock().Now),
		tokens: make([]string, n), floor: make(map[[sha256.Size]byte]*store.Key, n)}
	ctx := context.Background()
	for i := range n {
		c, err := mk.real.Create(ctx, keygate.System(), keygate.CreateRequest{
			Name: "key-" + strconv.Itoa(i), Workspace: "tiger", Role: "editor",
			Scopes: []string{"billing:write"}, Expiry: keygate.NeverExpire(),
		})
		if err != nil {
			tb.Fatal(err)
		}
		tok := c.Token.Reveal()
		mk.tokens[i] = tok
		mk.floor[sha256.Sum256([]byte(tok))] = c.Key
	}
	for _, m := range []*keygate.Manager{mk.real, mk.atomic} {
		for _, tok := range mk.tokens {
			if _, err := m.Verify(ctx, tok); err != nil {
				tb.Fatal(err)
			}
		}
	}
	manyKeysCache[n] = mk
	return mk
}

// floorLookup is the floor of a cached verification: the SHA-256 of the
// token and one map lookup.
func (mk *manyKeys) floorLookup(tok string) bool {
	d := sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
	_, ok := mk.floor[d]
	return ok
}

// BenchmarkManyKeys compares cached Verify + Authorize of a key picked at
// random among N cached ones with the floor at the same N, serially and in
// parallel: "keygate" on the default clock (time.Now), "keygate-atomicclock"
// on a Config.Now that costs one atomic load.
func BenchmarkManyKeys(b *testing.B) {
	ctx := context.Background()
	perm := permission.MustParse("cluster:read")
	for _, n := range manyKeyCounts() {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			mk := newManyKeys(b, n)
			b.Run("floor", func(b *testing.B) {
				for b.Loop() {
					if !mk.floorLookup(mk.tokens[rand.IntN(n)]) {
						b.Fatal("missing")
					}
				}
			})
			b.Run("floor-parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if !mk.floorLookup(mk.tokens[rand.IntN(n)]) {
							b.Error("missing")
							return
						}
					}
				})
			})
			for _, c := range []struct {
				name string
				m    *keygate.Manager
			}{{"keygate", mk.real}, {"keygate-atomicclock", mk.atomic}} {
				b.Run(c.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						k, err := c.m.Verify(ctx, mk.tokens[rand.IntN(n)])
						if err != nil || c.m.Authorize(k, perm, "tiger") != nil {
							b.Fatal("denied", err)
						}
					}
				})
				b.Run(c.name+"-parallel", func(b *testing.B) {
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							k, err := c.m.Verify(ctx, mk.tokens[rand.IntN(n)])
							if err != nil || c.m.Authorize(k, perm, "tiger") != nil {
								b.Error("denied", err)
								return
							}
						}
					})
				})
			}
		})
	}
}

// recordStore is a store whose records are built before a measurement and
// handed out without a copy, so that the heap a Manager's cache keeps can
// be measured apart from the store's.
type recordStore struct {
	store.Store
	byHash map[string]*store.Key
}

// RecordUsage, Usage and PurgeUsage pass the memory store's
// store.UsageRecorder on, so that the keys count their use as by
// default.
func (s *recordStore) RecordUsage(ctx context.Context, cs []store.UsageCount) error {
	return s.Store.(store.UsageRecorder).RecordUsage(ctx, cs)
}

func (s *recordStore) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageCount, error) {
	return s.Store.(store.UsageRecorder).Usage(ctx, q)
}

func (s *recordStore) PurgeUsage(ctx context.Context, before time.Time) (int64, error) {
	return s.Store.(store.UsageRecorder).PurgeUsage(ctx, before)
}

func (s *recordStore) GetByHash(_ context.Context, hash []byte) (*store.Key, error) {
	if k, ok := s.byHash[string(hash)]; ok {
		return k, nil
	}
	return nil, store.ErrNotFound
}

// BenchmarkCachedKeyHeap reports the heap a Manager keeps per cached key
// ("B/key"): the heap after verifying N keys, less the heap before, with a
// store whose records are built beforehand (and so are not counted; the
// Manager keeps what it needs of them). Run it once per size:
//
//	go test -run '^$' -bench CachedKeyHeap -benchtime 1x -count 6 .
func BenchmarkCachedKeyHeap(b *testing.B) {
	for _, n := range manyKeyCounts() {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			h := benchHasher(b)
			format, err := apikey.NewFormat(apikey.DefaultPrefix)
			if err != nil {
				b.Fatal(err)
			}
			rs := &recordStore{Store: memory.New(), byHash: make(map[string]*store.Key, n)}
			tokens := make([]string, n)
			now := time.Now().UTC()
			for i := range n {
				tok, err := format.Generate()
				if err != nil {
					b.Fatal(err)
				}
				hash, pid := h.Hash(tok)
				rec := &store.Key{
					ID: mustV7(b), Name: "key-" + strconv.Itoa(i), Owner: "alice", Workspace: "tiger",
					Role: "editor", Scopes: []string{"billing:write"}, Hash: hash, PepperID: pid,
					Hint: tok.Hint(), CreatedAt: now, UpdatedAt: now, Version: 1,
				}
				rs.byHash[string(hash)] = rec
				tokens[i] = tok.Reveal()
			}
			m, err := keygate.New(keygate.Config{Store: rs, Hasher: h, Auditor: nopAuditor{}, CacheSize: 2 * n, CacheTTL: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			ctx := context.Background()
			before := heapInUse()
			for _, tok := range tokens {
				if _, err := m.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
			after := heapInUse()
			runtime.KeepAlive(rs)
			runtime.KeepAlive(tokens)
			b.ReportMetric(float64(after-before)/float64(n), "B/key")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// heapInUse returns the bytes of live heap objects after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func mustV7(tb testing.TB) uuid.UUID {
	tb.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store"
)

// addrEnv names the Redis the tests use; they skip when it is unset
// (.ci/run always sets it). Redis may be shared: every test uses names of
// its own (uniqueName) and removes what it wrote.
const addrEnv = "KEYGATE_TEST_REDIS_ADDR"

// redisAddr returns the test Redis's address, or skips t.
func redisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(addrEnv)
	if addr == "" {
		t.Skipf("%s is not set", addrEnv)
	}
	return addr
}

// newClient returns a client of addr, closed at cleanup.
func newClient(t testing.TB, addr string, edit ...func(*goredis.Options)) *goredis.Client {
	t.Helper()
	opts := &goredis.Options{Addr: addr}
	for _, e := range edit {
		e(opts)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniqueName returns a name no other test uses, such as "kgtest-1a2b3c4d5e".
func uniqueName(t testing.TB) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "kgtest-" + hex.EncodeToString(b)
}

// deleteKeysAtCleanup deletes every Redis key matching pattern when t ends.
func deleteKeysAtCleanup(t testing.TB, c *goredis.Client, pattern string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("delete %s: %v", iter.Val(), err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scan %s: %v", pattern, err)
		}
	})
}

// closedAddr returns a loopback address nothing listens on: connections
// to it are refused at once.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// countingHook counts the dials and commands of a client.
type countingHook struct {
	dials, commands atomic.Int64
}

func (h *countingHook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.dials.Add(1)
		return next(ctx, network, addr)
	}
}

func (h *countingHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.commands.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.commands.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func testHasher(t testing.TB) *apikey.Hasher {
	t.Helper()
	h, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: []byte("a test pepper of at least thirty-two bytes")})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type nopAuditor struct{}

func (nopAuditor) Audit(context.Context, keygate.Event) {}

// newManager returns a quiet Manager over st, closed at cleanup.
func newManager(t testing.TB, st store.Store, edit ...func(*keygate.Config)) *keygate.Manager {
	t.Helper()
	cfg := keygate.Config{
		Store:            st,
		Hasher:           testHasher(t),
		Auditor:          nopAuditor{},
		Logger:           slog.New(slog.DiscardHandler),
		LastUsedInterval: -1,
	}
	for _, e := range edit {
		e(&cfg)
	}
	m, err := keygate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// createKey creates an admin key with the given rate limit through m.
func createKey(t testing.TB, m *keygate.Manager, rate keygate.RateLimit) *keygate.Created {
	t.Helper()
	c, err := m.Create(context.Background(), keygate.System(), keygate.CreateRequest{
		Name: "key-" + uniqueName(t), Role: "admin", Expiry: keygate.NeverExpire(),
		Limits: keygate.Limits{Rate: rate},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// proxy is a TCP proxy to Redis whose connections a test can cut, refuse
// or freeze, for outages that go-redis cannot mend at once.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*proxied
	refuse bool
}

// proxied is one client connection and its upstream.
type proxied struct {
	client, upstream net.Conn
	frozen           atomic.Bool
}

// newProxy listens on a loopback port and forwards to target until t ends.
func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			refuse := p.refuse
			p.mu.Unlock()
			if refuse {
				c.Close()
				continue
			}
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			pc := &proxied{client: c, upstream: up}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			wg.Go(func() { pc.pipe(up, c) })
			wg.Go(func() { pc.pipe(c, up) })
		}
	})
	return p
}

// pipe copies from src to dst, dropping what it reads while frozen.
func (pc *proxied) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !pc.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// cut closes every connection; with refusing set, new ones are closed as
// soon as they are accepted.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.client.Close()
		pc.upstream.Close()
	}
	p.conns = nil
}

// setRefusing makes the proxy close (refusing) or forward (not refusing)
// new connections.
func (p *proxy) setRefusing(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	p.mu.Unlock()
}

// freeze makes every current connection silently drop what either side
// sends, as a dead peer or a lost route does, without closing it; new
// connections work.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.frozen.Store(true)
	}
}

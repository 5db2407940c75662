package redis_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate"
	kgredis "github.com/keygate/keygate/redis"
	"github.com/keygate/keygate/store/memory"
)

// redisServer is a redis-server process of the test's own, on a port of
// its own, so that it can be stopped and started without disturbing the
// Redis other tests share.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

// startRedisServer runs a new redis-server. It needs the redis-server
// binary, which .ci/services.sh installs with the shared Redis; it skips
// only when no Redis is configured for the tests at all.
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	redisAddr(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &redisServer{t: t, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start starts the server and waits until it answers.
func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not answer within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop stops the server (SIGTERM, as a service manager does) and waits
// for it to exit.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// TestRevocationAcrossRedisRestart stops and starts a real Redis under two
// instances sharing a store and the Redis change feed, configured as
// keygate serve configures them: a key revoked on one instance while Redis
// is down, and one revoked after Redis is back but before the other
// instance has re-subscribed, are refused by the other instance within
// about Config.FeedOutageTTL (1s), not its CacheTTL (1h here).
func TestRevocationAcrossRedisRestart(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	st := memory.New()
	channel := uniqueName(t) + ":changes"
	instance := func() *keygate.Manager {
		client := newClient(t, srv.addr(), func(o *goredis.Options) {
			o.MaxRetries, o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 1, time.Second, time.Second, time.Second
		})
		feed, err := kgredis.NewFeed(kgredis.FeedConfig{Client: client, Channel: channel, MaxBackoff: time.Second, PingInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		m := newManager(t, st, func(c *keygate.Config) { c.ChangeFeed, c.CacheTTL = feed, time.Hour })
		waitFor(t, "the feed to subscribe", func() bool { return m.Health(t.Context()) == nil })
		return m
	}
	a, b := instance(), instance()
	ctx := t.Context()
	// refusedWithin revokes key on a and returns how long b takes to
	// refuse it, failing t beyond limit.
	refusedWithin := func(what string, c *keygate.Created, limit time.Duration) time.Duration {
		t.Helper()
		if _, err := b.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatalf("%s: before the revocation: %v", what, err)
		}
		start := time.Now()
		if _, err := a.Revoke(ctx, keygate.System(), c.Key.ID); err != nil {
			t.Fatalf("%s: revoke: %v", what, err)
		}
		accepted := 0
		for {
			_, err := b.Verify(ctx, c.Token.Reveal())
			if errors.Is(err, keygate.ErrRevoked) {
				break
			}
			accepted++
			if time.Since(start) > limit {
				t.Fatalf("%s: still accepted %v after the revocation (%d times), want refused within %v", what, time.Since(start), accepted, limit)
			}
			time.Sleep(time.Millisecond)
		}
		took := time.Since(start)
		t.Logf("%s: refused by the other instance %v after the revocation (accepted %d times meanwhile)", what, took.Round(time.Millisecond), accepted)
		return took
	}

	refusedWithin("Redis up", createKey(t, a, keygate.RateLimit{}), time.Second)

	down := createKey(t, a, keygate.RateLimit{})
	downLate := createKey(t, a, keygate.RateLimit{})
	for _, c := range []*keygate.Created{down, downLate} {
		if _, err := b.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	srv.stop()
	refusedWithin("revoked at once as Redis stops", down, 2*time.Second)
	time.Sleep(1500 * time.Millisecond) // a while into the outage
	refusedWithin("revoked during the outage", downLate, 2*time.Second)

	back := createKey(t, a, keygate.RateLimit{})
	if _, err := b.Verify(ctx, back.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	srv.start()
	refusedWithin("revoked as Redis is back, before the feeds re-subscribe", back, 2*time.Second)
	waitFor(t, "both instances to re-subscribe", func() bool {
		return a.Health(ctx) == nil && b.Health(ctx) == nil
	})
	refusedWithin("Redis up again", createKey(t, a, keygate.RateLimit{}), time.Second)
}

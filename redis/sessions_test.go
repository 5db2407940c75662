package redis_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/console/sessiontest"
	kgredis "github.com/keygate/keygate/redis"
)

var _ console.SessionStore = (*kgredis.Sessions)(nil)

// TestSessionsConformance runs the console's session store suite against
// Redis, each case under a prefix of its own.
func TestSessionsConformance(t *testing.T) {
	t.Parallel()
	c := newClient(t, redisAddr(t))
	sessiontest.Run(t, func(t *testing.T) console.SessionStore {
		prefix := uniqueName(t) + ":"
		deleteKeysAtCleanup(t, c, prefix+"*")
		s, err := kgredis.NewSessions(kgredis.SessionsConfig{Client: c, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNewSessionsConfig(t *testing.T) {
	t.Parallel()
	if _, err := kgredis.NewSessions(kgredis.SessionsConfig{}); !errors.Is(err, kgredis.ErrConfig) {
		t.Errorf("NewSessions without a client: %v, want ErrConfig", err)
	}
}

// TestSessionsExpireInRedis: every key the store writes expires, so that
// nothing it writes stays in Redis after its session or nonce is over.
func TestSessionsExpireInRedis(t *testing.T) {
	t.Parallel()
	c := newClient(t, redisAddr(t))
	prefix := uniqueName(t) + ":"
	deleteKeysAtCleanup(t, c, prefix+"*")
	s, err := kgredis.NewSessions(kgredis.SessionsConfig{Client: c, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now()
	id := bytes.Repeat([]byte{1}, 32)
	if err := s.CreateSession(ctx, id, "key:k", []byte("d"), now, now.Add(time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx, id, "key:k", now.Add(time.Minute), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseNonce(ctx, bytes.Repeat([]byte{2}, 32), now, now.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("keys written: %v, want a session, an owner's set and a nonce", keys)
	}
	for _, k := range keys {
		d, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		limit := 2*time.Hour + 2*time.Second
		if strings.Contains(k, ":n:") {
			limit = 30 * time.Minute
		}
		if d <= 0 || d > limit {
			t.Errorf("%s expires in %v, want within %v", k, d, limit)
		}
		if strings.Contains(k, ":o:") && d < 2*time.Hour-time.Minute-time.Second {
			t.Errorf("the owner's set expires in %v, before its touched session", d)
		}
	}
}

// TestSessionsAcrossInstances runs the console end to end on two
// instances sharing their sessions through Redis.
func TestSessionsAcrossInstances(t *testing.T) {
	t.Parallel()
	c := newClient(t, redisAddr(t))
	sessiontest.RunInstances(t, func(t *testing.T) console.SessionStore {
		prefix := uniqueName(t) + ":"
		deleteKeysAtCleanup(t, c, prefix+"*")
		s, err := kgredis.NewSessions(kgredis.SessionsConfig{Client: c, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// BenchmarkSessions measures the console's session store in Redis.
func BenchmarkSessions(b *testing.B) {
	c := newClient(b, redisAddr(b))
	prefix := uniqueName(b) + ":"
	deleteKeysAtCleanup(b, c, prefix+"*")
	s, err := kgredis.NewSessions(kgredis.SessionsConfig{Client: c, Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	sessiontest.Benchmark(b, s)
}

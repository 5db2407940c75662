package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	kgredis "github.com/keygate/keygate/redis"
	"github.com/keygate/keygate/store/memory"
)

// Several instances of a service share one store and one Redis: the
// Limiter makes every key's rate limit exact across them, and the Feed
// makes a key revoked (or changed) through one instance refused by the
// others at once instead of after their cache TTL.
func Example() {
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()

	lim, err := kgredis.NewLimiter(kgredis.LimiterConfig{Client: rdb})
	if err != nil {
		panic(err)
	}
	feed, err := kgredis.NewFeed(kgredis.FeedConfig{Client: rdb})
	if err != nil {
		panic(err)
	}
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "2026-11", Key: []byte("an example pepper of at least 32 bytes")})
	if err != nil {
		panic(err)
	}
	m, err := keygate.New(keygate.Config{
		Store:       memory.New(), // in production, a store every instance shares
		Hasher:      hasher,
		RateLimiter: lim,
		ChangeFeed:  feed,
	})
	if err != nil {
		panic(err)
	}
	defer m.Close(ctx)

	// A readiness probe: nil once the feed is subscribed.
	if err := m.Health(ctx); err != nil {
		fmt.Println("not ready:", err)
	}
}

// By default a rate-limited key fails closed when Redis is down: the
// verification fails with keygate.ErrUnavailable (HTTP 503 from the
// middleware). Keys without a rate limit do not need Redis.
func ExampleNewLimiter() {
	ctx := context.Background()
	// Nothing listens there. Every verification of a rate-limited key waits
	// for Redis: give the client few retries and short timeouts.
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	defer down.Close()
	lim, err := kgredis.NewLimiter(kgredis.LimiterConfig{Client: down})
	if err != nil {
		panic(err)
	}
	m := exampleManager(lim)
	defer m.Close(ctx)

	limited := exampleKey(m, keygate.RateLimit{Requests: 100, Window: time.Minute})
	_, err = m.Verify(ctx, limited)
	fmt.Println("rate-limited key, Redis down:", errors.Is(err, keygate.ErrUnavailable))

	free := exampleKey(m, keygate.RateLimit{})
	_, err = m.Verify(ctx, free)
	fmt.Println("key without a rate limit, Redis down:", err)
	// Output:
	// rate-limited key, Redis down: true
	// key without a rate limit, Redis down: <nil>
}

// With FailOpen, a Redis outage lets rate-limited keys through, unlimited;
// OnFailOpen hears of each such request.
func ExampleLimiterConfig_failOpen() {
	ctx := context.Background()
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	defer down.Close()
	lim, err := kgredis.NewLimiter(kgredis.LimiterConfig{
		Client:   down,
		FailOpen: true,
		OnFailOpen: func(ctx context.Context, id uuid.UUID, err error) {
			// In production: count it, and log it at a bounded rate.
			fmt.Println("rate limit not enforced: Redis failed:", err != nil)
		},
	})
	if err != nil {
		panic(err)
	}
	m := exampleManager(lim)
	defer m.Close(ctx)

	_, err = m.Verify(ctx, exampleKey(m, keygate.RateLimit{Requests: 100, Window: time.Minute}))
	fmt.Println("rate-limited key, Redis down:", err)
	// Output:
	// rate limit not enforced: Redis failed: true
	// rate-limited key, Redis down: <nil>
}

func exampleManager(lim keygate.RateLimiter) *keygate.Manager {
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "2026-11", Key: []byte("an example pepper of at least 32 bytes")})
	if err != nil {
		panic(err)
	}
	m, err := keygate.New(keygate.Config{
		Store:       memory.New(),
		Hasher:      hasher,
		RateLimiter: lim,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		panic(err)
	}
	return m
}

// exampleKey creates a key with the given rate limit and returns its token.
func exampleKey(m *keygate.Manager, rate keygate.RateLimit) string {
	c, err := m.Create(context.Background(), keygate.System(), keygate.CreateRequest{
		Name: "k-" + uuid.NewString(), Role: "admin", Expiry: keygate.NeverExpire(), Limits: keygate.Limits{Rate: rate},
	})
	if err != nil {
		panic(err)
	}
	return c.Token.Reveal()
}

package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate"
)

// DefaultRatePrefix is the default [LimiterConfig.Prefix].
const DefaultRatePrefix = "keygate:rate:"

// LimiterConfig configures a [Limiter]. It is plain data, read once by
// [NewLimiter].
type LimiterConfig struct {
	// Client is the Redis client: a *goredis.Client, *goredis.ClusterClient
	// or *goredis.Ring (any goredis.UniversalClient). Required. Its
	// timeouts (DialTimeout, ReadTimeout, WriteTimeout, PoolTimeout) and
	// MaxRetries bound how long a verification waits for Redis.
	Client goredis.UniversalClient
	// Prefix starts the name of every Redis key the limiter writes, followed
	// by the key id. Empty means DefaultRatePrefix. redis_rate puts its own
	// "rate:" before it, so the default names are
	// "rate:keygate:rate:<key id>": grant those in Redis ACLs.
	Prefix string
	// FailOpen lets requests through when Redis fails (unreachable, timing
	// out, refusing the script), instead of failing their verification
	// with keygate.ErrUnavailable (HTTP 503), which is the default.
	//
	// It is a trade-off, not a fix: with FailOpen, a Redis outage turns
	// every rate limit off, on every instance, for as long as it lasts,
	// so a leaked or abusive key is unlimited exactly when nobody is
	// looking at Redis; without it, a Redis outage refuses every
	// rate-limited key (keys without a rate limit never touch Redis and
	// keep working). Choose FailOpen only where availability matters more
	// than the limit, and watch OnFailOpen.
	FailOpen bool
	// OnFailOpen, if not nil and FailOpen is set, is called each time a
	// request is let through because Redis failed, with the key id and
	// the Redis error, from the verifying goroutine. Use it to log (with
	// your own rate limit on the log) or count. It must be quick and safe
	// for concurrent use.
	OnFailOpen func(ctx context.Context, id uuid.UUID, err error)
}

// Limiter is a keygate.RateLimiter that keeps each key's rate limit in
// Redis, with the generic cell rate algorithm of go-redis/redis_rate (one
// script call per verification, run atomically by Redis on Redis's own
// clock), so that every instance sharing the Redis shares each key's
// limit exactly. It allows what keygate's in-process limiter allows:
// requests spaced Window/Requests apart on average, in bursts of up to
// Requests. A key's state expires from Redis by itself once the key is
// back at its full burst, at most Window after its last request.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	limiter    *redis_rate.Limiter
	prefix     string
	failOpen   bool
	onFailOpen func(context.Context, uuid.UUID, error)
}

var _ keygate.RateReporter = (*Limiter)(nil)

// NewLimiter returns a Limiter for cfg, or an error wrapping [ErrConfig]
// when cfg.Client is nil. It does not connect to Redis.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: LimiterConfig.Client is required", ErrConfig)
	}
	l := &Limiter{
		limiter:    redis_rate.NewLimiter(cfg.Client),
		prefix:     cfg.Prefix,
		failOpen:   cfg.FailOpen,
		onFailOpen: cfg.OnFailOpen,
	}
	if l.prefix == "" {
		l.prefix = DefaultRatePrefix
	}
	return l, nil
}

// Allow takes one request of key id under limit, in Redis, and reports
// whether it is allowed; when it is not, retryAfter says how long until
// one would be. It implements keygate.RateLimiter.
//
// The zero RateLimit means no limit: it is allowed without asking Redis.
// Any other limit with a request count or window that is not positive is
// an error wrapping [ErrInvalidLimit]. When Redis fails, Allow returns
// its error (the Manager then refuses the verification with
// keygate.ErrUnavailable), or, with [LimiterConfig.FailOpen], allows the
// request after calling OnFailOpen.
func (l *Limiter) Allow(ctx context.Context, id uuid.UUID, limit keygate.RateLimit) (retryAfter time.Duration, allowed bool, err error) {
	if limit == (keygate.RateLimit{}) {
		return 0, true, nil
	}
	if limit.Requests <= 0 || limit.Window <= 0 {
		return 0, false, fmt.Errorf("%w: %d requests per %v", ErrInvalidLimit, limit.Requests, limit.Window)
	}
	// Rate requests per Period, with a burst of Rate: the emission interval
	// is Window/Requests and a request is refused when it would put the
	// theoretical arrival time more than Window ahead of now, exactly as
	// keygate's in-process limiter does.
	res, err := l.limiter.Allow(ctx, l.prefix+id.String(), redis_rate.Limit{
		Rate:   limit.Requests,
		Burst:  limit.Requests,
		Period: limit.Window,
	})
	if err != nil {
		if l.failOpen {
			if l.onFailOpen != nil {
				l.onFailOpen(ctx, id, err)
			}
			return 0, true, nil
		}
		return 0, false, fmt.Errorf("keygate/redis: rate limit of key %s: %w", id, err)
	}
	if res.Allowed == 0 {
		return max(res.RetryAfter, 0), false, nil
	}
	return 0, true, nil
}

// Status reports how many requests key id may make now under limit, one
// after another, and how long until the whole limit is available again,
// as every instance sharing this Redis counts it, without taking a request
// (redis_rate's AllowN of zero). It implements keygate.RateReporter, for
// keygate.Manager.RateStatus and the middleware's RateLimit headers. It
// fails, whatever FailOpen says, when Redis does: there is then nothing
// true to report.
func (l *Limiter) Status(ctx context.Context, id uuid.UUID, limit keygate.RateLimit) (remaining int, reset time.Duration, err error) {
	if limit.Requests <= 0 || limit.Window <= 0 {
		return 0, 0, fmt.Errorf("%w: %d requests per %v", ErrInvalidLimit, limit.Requests, limit.Window)
	}
	res, err := l.limiter.AllowN(ctx, l.prefix+id.String(), redis_rate.Limit{
		Rate:   limit.Requests,
		Burst:  limit.Requests,
		Period: limit.Window,
	}, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("keygate/redis: rate limit status of key %s: %w", id, err)
	}
	return min(max(res.Remaining, 0), limit.Requests), max(res.ResetAfter, 0), nil
}

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
	// Prefix starts the name of every Redis key the limiter writes. Empty
	// means DefaultRatePrefix. redis_rate puts its own "rate:" before it,
	// so the default names are "rate:keygate:rate:<key id>" for a key's
	// own limit (the one Allow counts, named "default" by AllowN) and
	// "rate:keygate:rate:<id>:<name>" for any other named limit of a key
	// or identity: grant "rate:keygate:rate:*" in Redis ACLs.
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
	// request is let through because Redis failed, with the key id (or,
	// from AllowN, the key's or identity's id) and the Redis error, from the verifying goroutine. Use it to log (with
	// your own rate limit on the log) or count. It must be quick and safe
	// for concurrent use.
	OnFailOpen func(ctx context.Context, id uuid.UUID, err error)
}

// Limiter is a keygate.CostLimiter (and so a keygate.RateLimiter) that
// keeps rate limits in Redis, with the generic cell rate algorithm of
// go-redis/redis_rate (one script call per limit checked, run atomically
// by Redis on Redis's own clock), so that every instance sharing the
// Redis shares each limit exactly: a key's own limit ([Limiter.Allow]),
// and the named limits of keys and identities, each request taking a
// cost of one or more units ([Limiter.AllowN]). It allows what keygate's
// in-process limiter allows: units spaced Window/Requests apart on
// average, in bursts of up to Requests. A limit's state expires from
// Redis by itself once it is back at its full burst, at most Window after
// its last request.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	limiter    *redis_rate.Limiter
	prefix     string
	failOpen   bool
	onFailOpen func(context.Context, uuid.UUID, error)
}

var (
	_ keygate.RateReporter = (*Limiter)(nil)
	_ keygate.CostLimiter  = (*Limiter)(nil)
)

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
// one would be. It implements keygate.RateLimiter, and counts the limit
// that [Limiter.AllowN] calls "default" (keygate.DefaultRateLimit) for a
// key.
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
	d, err := l.take(ctx, id, keygate.DefaultRateLimit, limit, 1)
	return d.RetryAfter, d.Allowed, err
}

// AllowN takes cost units from the limit named name of subject (a key's
// id or an identity's id) in Redis, if that many are left, and reports
// what is left, as every instance sharing this Redis counts it. It
// implements keygate.CostLimiter. A refused request takes nothing; its
// RetryAfter is how long until cost units would be allowed, and its
// Remaining how many are left (fewer than cost).
//
// The limit named "default" (keygate.DefaultRateLimit) of a key is the
// one [Limiter.Allow] and [Limiter.Status] count: one Redis key,
// whichever method takes from it. Every other name has a Redis key of its
// own (see [LimiterConfig.Prefix]), so the named limits of one subject are
// independent of each other.
//
// A cost above limit.Requests could never be allowed: it is refused
// without asking Redis, with RetryAfter and Reset limit.Window and
// Remaining 0 (what is left is not known). A limit with a request count
// or window that is not positive (the zero RateLimit included), a cost
// below 1 or an empty name is an error wrapping [ErrInvalidLimit]. When
// Redis fails, AllowN returns its error, or, with
// [LimiterConfig.FailOpen], calls OnFailOpen with subject and allows the
// request (Remaining and Reset 0: nothing is known).
func (l *Limiter) AllowN(ctx context.Context, subject uuid.UUID, name string, limit keygate.RateLimit, cost int) (keygate.LimitDecision, error) {
	if name == "" {
		return keygate.LimitDecision{}, fmt.Errorf("%w: empty limit name", ErrInvalidLimit)
	}
	if cost < 1 {
		return keygate.LimitDecision{}, fmt.Errorf("%w: cost %d", ErrInvalidLimit, cost)
	}
	return l.take(ctx, subject, name, limit, cost)
}

// take takes cost (1 or more) units from the limit named name of subject,
// for Allow and AllowN.
func (l *Limiter) take(ctx context.Context, subject uuid.UUID, name string, limit keygate.RateLimit, cost int) (keygate.LimitDecision, error) {
	if err := validLimit(limit); err != nil {
		return keygate.LimitDecision{}, err
	}
	if cost > limit.Requests {
		// redis_rate would refuse it too, with a RetryAfter after which
		// it would still be refused.
		return keygate.LimitDecision{RetryAfter: limit.Window, Reset: limit.Window}, nil
	}
	res, err := l.limiter.AllowN(ctx, l.key(subject, name), gcra(limit), cost)
	if err != nil {
		if l.failOpen {
			if l.onFailOpen != nil {
				l.onFailOpen(ctx, subject, err)
			}
			return keygate.LimitDecision{Allowed: true}, nil
		}
		return keygate.LimitDecision{}, fmt.Errorf("keygate/redis: rate limit %q of %s: %w", name, subject, err)
	}
	reset := max(res.ResetAfter, 0)
	if res.Allowed == 0 {
		// redis_rate says 0 left when it refuses; what is left is what
		// the state (reset, how far it is booked ahead) leaves of the
		// window, fewer than cost.
		left := int(float64(limit.Window-reset) / float64(limit.Window) * float64(limit.Requests))
		return keygate.LimitDecision{
			Remaining:  min(max(left, 0), cost-1),
			RetryAfter: max(res.RetryAfter, 0),
			Reset:      reset,
		}, nil
	}
	return keygate.LimitDecision{Allowed: true, Remaining: min(max(res.Remaining, 0), limit.Requests), Reset: reset}, nil
}

// Status reports how many requests key id may make now under limit, one
// after another, and how long until the whole limit is available again,
// as every instance sharing this Redis counts it, without taking a request
// (redis_rate's AllowN of zero). It implements keygate.RateReporter, for
// keygate.Manager.RateStatus and the middleware's RateLimit headers. It
// fails, whatever FailOpen says, when Redis does: there is then nothing
// true to report.
func (l *Limiter) Status(ctx context.Context, id uuid.UUID, limit keygate.RateLimit) (remaining int, reset time.Duration, err error) {
	if err := validLimit(limit); err != nil {
		return 0, 0, err
	}
	res, err := l.limiter.AllowN(ctx, l.key(id, keygate.DefaultRateLimit), gcra(limit), 0)
	if err != nil {
		return 0, 0, fmt.Errorf("keygate/redis: rate limit status of key %s: %w", id, err)
	}
	return min(max(res.Remaining, 0), limit.Requests), max(res.ResetAfter, 0), nil
}

// key returns the name of the Redis key (before redis_rate's "rate:") of
// the limit named name of subject: Prefix and the subject's id for a
// "default" limit, as Allow has always named a key's limit; Prefix, the
// id, ":" and the name for any other. Ids are all 36 bytes long, so no
// two limits share a key.
func (l *Limiter) key(subject uuid.UUID, name string) string {
	if name == keygate.DefaultRateLimit {
		return l.prefix + subject.String()
	}
	return l.prefix + subject.String() + ":" + name
}

// validLimit returns an error wrapping ErrInvalidLimit unless limit's
// request count and window are positive.
func validLimit(limit keygate.RateLimit) error {
	if limit.Requests <= 0 || limit.Window <= 0 {
		return fmt.Errorf("%w: %d requests per %v", ErrInvalidLimit, limit.Requests, limit.Window)
	}
	return nil
}

// gcra returns redis_rate's limit for limit: Rate requests per Period,
// with a burst of Rate. The emission interval is Window/Requests and a
// request is refused when it would put the theoretical arrival time more
// than Window ahead of now, exactly as keygate's in-process limiter does.
func gcra(limit keygate.RateLimit) redis_rate.Limit {
	return redis_rate.Limit{Rate: limit.Requests, Burst: limit.Requests, Period: limit.Window}
}

package redis

import "errors"

// Errors of this package. Failures of Redis itself are returned wrapping
// the go-redis error, and are none of these.
var (
	// ErrConfig means [NewLimiter], [NewFeed] or [NewSessions] rejected its
	// config.
	ErrConfig = errors.New("keygate/redis: invalid config")
	// ErrInvalidLimit means [Limiter.Allow], [Limiter.AllowN] or
	// [Limiter.Status] was given a rate limit with a request count or
	// window that is not positive (other than the zero RateLimit given to
	// Allow, which means no limit and is always allowed), or AllowN a cost
	// below 1 or an empty limit name.
	ErrInvalidLimit = errors.New("keygate/redis: invalid rate limit")
	// ErrNotSubscribed is [Feed.Health]'s answer while a [Feed.Watch] is
	// not subscribed: subscribing for the first time, or re-subscribing
	// after a lost connection. Changes published meanwhile are missed.
	ErrNotSubscribed = errors.New("keygate/redis: change feed not subscribed")
)

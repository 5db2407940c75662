// Package redis shares keygate's per-key state across instances through
// Redis: a [Limiter] that makes rate limits exact across every instance,
// a [Feed] that tells every instance's verification cache of changed
// keys at once, and [Sessions], which keeps the admin console's sessions
// where every instance sees them. It is a module of its own
// (github.com/keygate/keygate/redis), so that programs that do not use
// Redis never download a Redis client.
//
// Its name is go-redis's too: import one of them under another name, such
// as kgredis or goredis.
//
// # Usage
//
//	rdb := goredis.NewClient(&goredis.Options{Addr: "redis:6379"})
//	lim, err := kgredis.NewLimiter(kgredis.LimiterConfig{Client: rdb})
//	...
//	feed, err := kgredis.NewFeed(kgredis.FeedConfig{Client: rdb})
//	...
//	m, err := keygate.New(keygate.Config{Store: st, Hasher: h, RateLimiter: lim, ChangeFeed: feed})
//
// # Rate limits
//
// Without a shared limiter each keygate Manager counts a key's requests
// in its own process, so N instances allow N times a key's limit. A
// [Limiter] keeps each key's state in Redis, with the generic cell rate
// algorithm of github.com/go-redis/redis_rate (a script that Redis runs
// atomically, on its own clock), so the limit is exact whatever the
// number of instances and goroutines: a key limited to R requests per
// window W gets R requests per W in all, spaced W/R apart on average, in
// bursts of up to R, exactly as keygate's in-process limiter allows in one
// process. Keys without a rate limit never touch Redis. The Limiter is a
// keygate.CostLimiter too: [Limiter.AllowN] takes a cost of one or more
// units from a named limit of a key or an identity, shared exactly by
// every instance in the same way; a key's limit named "default" is the
// one [Limiter.Allow] counts.
//
// When Redis fails, a rate-limited verification fails closed with
// keygate.ErrUnavailable (HTTP 503), unless [LimiterConfig.FailOpen] is
// set, which lets such requests through unlimited for as long as the
// outage lasts: see its documentation before choosing it. Every
// verification of a rate-limited key waits for Redis, so give the
// client short timeouts and few retries (the README has figures).
//
// # Console sessions
//
// [Sessions] implements console.SessionStore (by its methods; the package
// does not import the console): give it to console.Config.Sessions, and
// any instance serves any request of a console session, with no sticky
// sessions at the load balancer. Every key it writes expires with what it
// holds.
//
// # Change feed
//
// A [Feed] is a store.ChangeFeed and a store.ChangePublisher over Redis
// pub/sub, for stores that cannot notify other instances themselves
// (SQLite, MySQL/MariaDB, your own; on PostgreSQL, package
// store/sqlstore/pgnotify does it without Redis): the Manager publishes
// the id of each key it changes, after the store has the change, and
// every instance's [Feed.Watch] drops that key from its cache.
//
// Pub/sub delivers at most once, to subscribers connected at the time.
// [Feed.Watch] calls fn(uuid.Nil) once subscribed and again after every
// re-subscription following a lost connection, and the Manager answers
// by dropping its whole cache: a change missed while disconnected is
// never served from the cache afterwards. A change whose Publish fails
// while the other instances stay subscribed (a fault between this
// instance and Redis only) reaches them within their cache TTL, as
// without a feed. [Feed.Health]
// reports a Watch that is not subscribed, for Manager.Health and
// readiness probes.
package redis

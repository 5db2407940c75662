package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/store"
)

// The defaults of [FeedConfig].
const (
	DefaultChannel      = "keygate:changes"
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	DefaultPingInterval = 5 * time.Second
)

// FeedConfig configures a [Feed]. It is plain data, read once by
// [NewFeed].
type FeedConfig struct {
	// Client is the Redis client (any goredis.UniversalClient). Required.
	// Each Watch holds one connection of its own for its subscription,
	// outside the client's pool; Publish uses the pool.
	Client goredis.UniversalClient
	// Channel is the pub/sub channel every instance publishes to and
	// subscribes to. Empty means DefaultChannel. Instances that share a
	// store must share the channel; unrelated deployments on one Redis
	// must not.
	Channel string
	// MinBackoff and MaxBackoff bound the wait between attempts to
	// re-subscribe after the connection is lost: it doubles from
	// MinBackoff up to MaxBackoff, with jitter. Zero means the default.
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is how long a subscription may stay silent before the
	// Watch pings Redis on it; a ping not answered within another
	// PingInterval means the connection is dead (a half-open TCP
	// connection delivers nothing and reports no error), and it is
	// replaced. Zero means DefaultPingInterval.
	PingInterval time.Duration
	// OnSubscribe, if not nil, is called from the Watch goroutine each
	// time the subscription is confirmed by Redis: with resubscribed false
	// the first time, and true after every re-subscription (after Watch
	// has called fn(uuid.Nil) to say that changes may have been missed).
	// For monitoring; like fn of Watch, it must be quick.
	OnSubscribe func(resubscribed bool)
}

// Feed is a store.ChangeFeed, store.ChangePublisher and
// store.HealthChecker over Redis pub/sub, for stores that cannot tell other
// instances of their changes themselves (SQLite, MySQL/MariaDB, your own):
// the keygate Manager publishes the id of every key it changes, and every
// instance's Watch hears it and drops the key from its cache.
//
// A Feed is safe for concurrent use: each Watch call holds its own
// subscription.
type Feed struct {
	client       goredis.UniversalClient
	channel      string
	minBackoff   time.Duration
	maxBackoff   time.Duration
	pingInterval time.Duration
	onSubscribe  func(bool)
	// down counts the Watch calls in progress that are not subscribed.
	down atomic.Int64
}

var (
	_ store.ChangeFeed      = (*Feed)(nil)
	_ store.ChangePublisher = (*Feed)(nil)
	_ store.HealthChecker   = (*Feed)(nil)
)

// NewFeed returns a Feed for cfg. It does not connect to Redis. It returns
// an error wrapping [ErrConfig] if cfg.Client is nil, a duration is
// negative, or MinBackoff exceeds MaxBackoff.
func NewFeed(cfg FeedConfig) (*Feed, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: FeedConfig.Client is required", ErrConfig)
	}
	if cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 || cfg.PingInterval < 0 {
		return nil, fmt.Errorf("%w: negative duration", ErrConfig)
	}
	f := &Feed{
		client:       cfg.Client,
		channel:      cfg.Channel,
		minBackoff:   cfg.MinBackoff,
		maxBackoff:   cfg.MaxBackoff,
		pingInterval: cfg.PingInterval,
		onSubscribe:  cfg.OnSubscribe,
	}
	if f.channel == "" {
		f.channel = DefaultChannel
	}
	if f.minBackoff == 0 {
		f.minBackoff = DefaultMinBackoff
	}
	if f.maxBackoff == 0 {
		f.maxBackoff = max(DefaultMaxBackoff, f.minBackoff)
	}
	if f.minBackoff > f.maxBackoff {
		return nil, fmt.Errorf("%w: MinBackoff %v exceeds MaxBackoff %v", ErrConfig, f.minBackoff, f.maxBackoff)
	}
	if f.pingInterval == 0 {
		f.pingInterval = DefaultPingInterval
	}
	return f, nil
}

// Publish sends id on the channel, to the Watch of every instance (this
// one included). It implements store.ChangePublisher: the keygate Manager
// calls it after each change it stores. Delivery is at most once: an
// instance that is not subscribed at that moment never receives it (it
// will have dropped its whole cache when it re-subscribes).
func (f *Feed) Publish(ctx context.Context, id uuid.UUID) error {
	if err := f.client.Publish(ctx, f.channel, id.String()).Err(); err != nil {
		return fmt.Errorf("keygate/redis: publish change of key %s: %w", id, err)
	}
	return nil
}

// Watch subscribes to the channel and calls fn, from the calling
// goroutine, with the id of each key published by any instance, until ctx
// is done; it then returns an error wrapping ctx.Err(). Payloads that are
// not a UUID are ignored. An id may be delivered more than once.
//
// Once Redis confirms the subscription, Watch calls fn(uuid.Nil): changes
// published before were not seen. If the first subscription fails, Watch
// returns that error at once, so that a misconfiguration shows at
// start-up. A connection lost later is re-established (go-redis
// reconnects and re-subscribes by itself; Watch retries with backoff
// between MinBackoff and MaxBackoff while Redis is unreachable, and
// replaces a connection that stops answering pings), and on every
// re-subscription Watch calls fn(uuid.Nil) again, since messages
// published meanwhile are lost, then OnSubscribe(true). Watch keeps trying
// until ctx is done.
func (f *Feed) Watch(ctx context.Context, fn func(id uuid.UUID)) error {
	w := &watch{feed: f, fn: fn, backoff: f.minBackoff}
	f.down.Add(1)
	defer w.setSubscribed(true) // leave the count as it was

	sub := &subscription{client: f.client, channel: f.channel}
	defer sub.close()
	stop := context.AfterFunc(ctx, sub.close) // unblocks a receive
	defer stop()
	if err := sub.open(ctx); err != nil {
		return fmt.Errorf("keygate/redis: watch: subscribe: %w", err)
	}
	pinged := false // a ping is unanswered
	for {
		msg, err := sub.receive(ctx, f.pingInterval)
		if ctx.Err() != nil {
			return fmt.Errorf("keygate/redis: watch: %w", ctx.Err())
		}
		var redisErr goredis.Error
		switch {
		case err == nil:
		case !w.confirmed:
			// The first subscription failed: unreachable, refused (an ACL
			// without the channel), or no answer within PingInterval.
			return fmt.Errorf("keygate/redis: watch: subscribe: %w", err)
		case errors.As(err, &redisErr):
			// Redis answered with an error: the connection works and is
			// still subscribed.
			continue
		case isTimeout(err) && !pinged:
			// Silent for a PingInterval: ask. An answer (or any message)
			// within the next one shows that the connection lives. A
			// failed write makes go-redis reconnect.
			pinged = true
			_ = sub.ping(ctx)
			continue
		case isTimeout(err):
			// No answer: the connection is dead without knowing it (a
			// peer gone without closing). Replace it; the new
			// subscription's confirmation says when it works again.
			pinged = false
			w.setSubscribed(false)
			_ = sub.reopen(ctx)
			continue
		default:
			// The connection failed. go-redis has already reconnected
			// and re-subscribed if it could; if not, the next receive
			// dials again, after a backoff while Redis is unreachable.
			pinged = false
			w.setSubscribed(false)
			if err := sleep(ctx, jitter(w.backoff)); err != nil {
				return fmt.Errorf("keygate/redis: watch: %w", err)
			}
			w.backoff = min(2*w.backoff, f.maxBackoff)
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			// Redis confirms a SUBSCRIBE: the first, or go-redis's
			// re-subscription on a new connection. Either way, messages
			// published before it were not seen.
			if m.Kind == "subscribe" && m.Channel == f.channel {
				w.subscribedAgain()
			}
		case *goredis.Pong:
			// Only a live connection of this PubSub answers, and go-redis
			// subscribes every connection before anything else, so a pong
			// while not subscribed means an error left the connection in
			// place: it is subscribed, but a message may have been lost.
			if !w.subscribed {
				w.subscribedAgain()
			}
		case *goredis.Message:
			if m.Channel != f.channel {
				continue
			}
			if id, err := uuid.Parse(m.Payload); err == nil {
				fn(id)
			}
		}
	}
}

// watch is the state of one Watch call, used from its goroutine.
type watch struct {
	feed *Feed
	fn   func(uuid.UUID)
	// subscribed is whether the subscription is known to work; confirmed
	// whether it has ever been.
	subscribed, confirmed bool
	backoff               time.Duration
}

// setSubscribed records whether the subscription works, in the count that
// Health reads.
func (w *watch) setSubscribed(s bool) {
	switch {
	case s && !w.subscribed:
		w.feed.down.Add(-1)
	case !s && w.subscribed:
		w.feed.down.Add(1)
	}
	w.subscribed = s
}

// subscribedAgain records a confirmed subscription, and tells fn that
// changes published before it were missed.
func (w *watch) subscribedAgain() {
	w.setSubscribed(true)
	w.backoff = w.feed.minBackoff
	w.fn(uuid.Nil)
	if w.feed.onSubscribe != nil {
		w.feed.onSubscribe(w.confirmed)
	}
	w.confirmed = true
}

// Health reports nil when every Watch in progress is subscribed, and an
// error wrapping [ErrNotSubscribed] while one is subscribing or
// re-subscribing after a lost connection (changes are missed meanwhile).
// It implements store.HealthChecker, for keygate's Manager.Health and
// readiness probes; it does not touch Redis.
func (f *Feed) Health(context.Context) error {
	if n := f.down.Load(); n > 0 {
		return fmt.Errorf("%w: %d watch(es) subscribing", ErrNotSubscribed, n)
	}
	return nil
}

// subscription is the PubSub of one Watch. The Watch goroutine uses it;
// close may be called from any goroutine (when the Watch's context ends),
// and makes a blocked receive return.
type subscription struct {
	client  goredis.UniversalClient
	channel string
	mu      sync.Mutex
	ps      *goredis.PubSub
	closed  bool
}

// open subscribes on a new PubSub. On error the PubSub is kept, with the
// channel recorded: the next receive dials and subscribes again.
func (s *subscription) open(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return goredis.ErrClosed
	}
	// Subscribe without channels, then subscribe the channel: the client's
	// Subscribe(ctx, channels...) discards the error.
	s.ps = s.client.Subscribe(ctx)
	return s.ps.Subscribe(ctx, s.channel)
}

// reopen replaces the PubSub by a new one.
func (s *subscription) reopen(ctx context.Context) error {
	s.mu.Lock()
	if s.ps != nil {
		_ = s.ps.Close()
	}
	s.mu.Unlock()
	return s.open(ctx)
}

func (s *subscription) pubsub() *goredis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ps
}

// receive waits at most timeout for a message, subscription confirmation
// or pong.
func (s *subscription) receive(ctx context.Context, timeout time.Duration) (any, error) {
	return s.pubsub().ReceiveTimeout(ctx, timeout)
}

func (s *subscription) ping(ctx context.Context) error {
	return s.pubsub().Ping(ctx)
}

// close closes the PubSub for good.
func (s *subscription) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.ps != nil {
		_ = s.ps.Close()
	}
	s.closed = true
}

// isTimeout reports whether err is a read timing out: nothing arrived.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// jitter returns d scaled by a random factor in [0.5, 1.5).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

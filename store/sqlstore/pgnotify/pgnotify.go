package pgnotify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/store"
)

// Errors of this package; failures of the feed itself wrap the pgx error.
var (
	// ErrConfig means [New] rejected its [Config].
	ErrConfig = errors.New("pgnotify: invalid config")
	// ErrNotListening is [Feed.Health]'s answer while a Watch is not
	// listening: connecting, or re-establishing a lost connection.
	ErrNotListening = errors.New("pgnotify: not listening")
)

// The defaults of [Config].
const (
	DefaultChannel    = "keygate_changes"
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// Config configures a [Feed]. It is plain data, read once by [New].
type Config struct {
	// ConnString is the PostgreSQL connection string, in any form
	// pgx.ParseConfig accepts, of the database the sqlstore.Store writes
	// to; required. The feed holds one connection of its own per Watch.
	ConnString string
	// Channel is the notification channel: the Channel() of the
	// sqlstore.Store, which is its table prefix followed by "changes".
	// Empty means DefaultChannel.
	Channel string
	// MinBackoff and MaxBackoff bound the wait before each reconnection
	// attempt after the connection fails; the wait doubles from
	// MinBackoff up to MaxBackoff, with jitter. Zero means the default.
	MinBackoff, MaxBackoff time.Duration
	// OnListen, if not nil, is called from the Watch goroutine each time
	// the feed starts listening: with reconnected false the first time,
	// and true after a reconnection (after Watch has called fn(uuid.Nil)
	// to say that notifications may have been lost). For monitoring; like
	// fn of Watch, it must be quick.
	OnListen func(reconnected bool)
}

// Feed is a [store.ChangeFeed] over PostgreSQL LISTEN/NOTIFY. It is safe
// for concurrent use: each Watch call opens and owns one connection.
type Feed struct {
	connConfig *pgx.ConnConfig
	channel    string
	minBackoff time.Duration
	maxBackoff time.Duration
	onListen   func(bool)
	// down counts the Watch calls in progress that are not listening:
	// connecting for the first time or reconnecting.
	down atomic.Int64
}

var (
	_ store.ChangeFeed    = (*Feed)(nil)
	_ store.HealthChecker = (*Feed)(nil)
)

// New returns a Feed for cfg. It parses the connection string but does not
// connect. It returns an error wrapping [ErrConfig] if the connection
// string does not parse, the channel is not a valid identifier of at most
// 63 bytes, or MinBackoff exceeds MaxBackoff. The error never contains the
// connection string, which may hold a password.
func New(cfg Config) (*Feed, error) {
	connConfig, err := pgx.ParseConfig(cfg.ConnString)
	if err != nil {
		// pgx's parse errors redact the password; still, say no more than
		// that the string is invalid.
		return nil, fmt.Errorf("%w: connection string does not parse", ErrConfig)
	}
	f := &Feed{
		connConfig: connConfig,
		channel:    cfg.Channel,
		minBackoff: cfg.MinBackoff,
		maxBackoff: cfg.MaxBackoff,
		onListen:   cfg.OnListen,
	}
	if f.channel == "" {
		f.channel = DefaultChannel
	}
	if !validChannel(f.channel) {
		return nil, fmt.Errorf("%w: channel %q is not a lower-case identifier of at most 63 bytes", ErrConfig, f.channel)
	}
	if f.minBackoff <= 0 {
		f.minBackoff = DefaultMinBackoff
	}
	if f.maxBackoff <= 0 {
		f.maxBackoff = max(DefaultMaxBackoff, f.minBackoff)
	}
	if f.minBackoff > f.maxBackoff {
		return nil, fmt.Errorf("%w: MinBackoff %v exceeds MaxBackoff %v", ErrConfig, f.minBackoff, f.maxBackoff)
	}
	return f, nil
}

// validChannel reports whether c matches [a-z_][a-z0-9_]{0,62}, the
// channels sqlstore uses.
func validChannel(c string) bool {
	if c == "" || len(c) > 63 {
		return false
	}
	for i := 0; i < len(c); i++ {
		switch b := c[i]; {
		case b >= 'a' && b <= 'z', b == '_':
		case b >= '0' && b <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Watch connects, listens on the channel and calls fn, from the calling
// goroutine, with the id of each key a sqlstore.Store reports changed,
// until ctx is done; it then returns an error wrapping ctx.Err(). Once
// listening, first and after every reconnection, it calls fn(uuid.Nil):
// changes made before the LISTEN took effect were not seen.
//
// If the first connection fails, Watch returns that error at once, so that
// a misconfiguration shows at start-up. A connection lost later is
// re-established with exponential backoff, then fn(uuid.Nil) is called
// (changes may have been missed meanwhile) and OnListen(true); Watch keeps
// trying until ctx is done. Payloads that are not a UUID are
// ignored. An id may be delivered more than once.
func (f *Feed) Watch(ctx context.Context, fn func(id uuid.UUID)) error {
	f.down.Add(1)
	listening := false
	defer func() {
		if !listening {
			f.down.Add(-1)
		}
	}()
	conn, err := f.listen(ctx)
	if err != nil {
		return fmt.Errorf("pgnotify: watch: %w", err)
	}
	listening = true
	f.down.Add(-1)
	// Changes made before the LISTEN was active were not seen either.
	fn(uuid.Nil)
	if f.onListen != nil {
		f.onListen(false)
	}
	backoff := f.minBackoff
	for {
		err := f.receive(ctx, conn, fn)
		closeConn(ctx, conn)
		if ctx.Err() != nil {
			return fmt.Errorf("pgnotify: watch: %w", ctx.Err())
		}
		_ = err // The connection failed; reconnect below.
		listening = false
		f.down.Add(1)
		for {
			if err := sleep(ctx, jitter(backoff)); err != nil {
				return fmt.Errorf("pgnotify: watch: %w", err)
			}
			if conn, err = f.listen(ctx); err == nil {
				break
			}
			backoff = min(2*backoff, f.maxBackoff)
		}
		listening = true
		f.down.Add(-1)
		backoff = f.minBackoff
		// Notifications sent while disconnected are lost: tell the receiver
		// to treat every key as changed, as the store.ChangeFeed contract
		// says.
		fn(uuid.Nil)
		if f.onListen != nil {
			f.onListen(true)
		}
	}
}

// Health reports nil when every Watch in progress is listening, and
// [ErrNotListening] while one is connecting or re-establishing a lost
// connection (changes may be missed meanwhile). It implements
// store.HealthChecker, for keygate's Manager.Health and readiness probes.
func (f *Feed) Health(context.Context) error {
	if n := f.down.Load(); n > 0 {
		return fmt.Errorf("%w: %d watch(es) connecting", ErrNotListening, n)
	}
	return nil
}

// listen opens a connection and subscribes it to the channel.
func (f *Feed) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, f.connConfig)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{f.channel}.Sanitize()); err != nil {
		closeConn(ctx, conn)
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// receive delivers notifications until the connection or ctx fails.
func (f *Feed) receive(ctx context.Context, conn *pgx.Conn, fn func(uuid.UUID)) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel != f.channel {
			continue
		}
		if id, err := uuid.Parse(n.Payload); err == nil {
			fn(id)
		}
	}
}

// closeConn closes conn, giving it a moment even when ctx is done.
func closeConn(ctx context.Context, conn *pgx.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = conn.Close(cctx)
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

package redis_test

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate"
	kgredis "github.com/keygate/keygate/redis"
	"github.com/keygate/keygate/store/memory"
)

func TestNewFeedConfig(t *testing.T) {
	t.Parallel()
	c := goredis.NewClient(&goredis.Options{Addr: closedAddr(t)})
	defer c.Close()
	tests := []struct {
		name    string
		cfg     kgredis.FeedConfig
		wantErr bool
	}{
		{"defaults", kgredis.FeedConfig{Client: c}, false},
		{"channel and durations", kgredis.FeedConfig{Client: c, Channel: "app:changes", MinBackoff: time.Second, MaxBackoff: time.Minute, PingInterval: time.Second}, false},
		{"no client", kgredis.FeedConfig{}, true},
		{"backoff inverted", kgredis.FeedConfig{Client: c, MinBackoff: time.Minute, MaxBackoff: time.Second}, true},
		{"negative ping interval", kgredis.FeedConfig{Client: c, PingInterval: -time.Second}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kgredis.NewFeed(tc.cfg)
			if got := errors.Is(err, kgredis.ErrConfig); got != tc.wantErr {
				t.Fatalf("NewFeed: got error %v, want ErrConfig: %v", err, tc.wantErr)
			}
		})
	}
}

// TestWatchFirstSubscribeFails checks that a feed that cannot reach Redis
// at all says so at once instead of retrying forever.
func TestWatchFirstSubscribeFails(t *testing.T) {
	t.Parallel()
	c := goredis.NewClient(&goredis.Options{Addr: closedAddr(t)})
	defer c.Close()
	f, err := kgredis.NewFeed(kgredis.FeedConfig{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = f.Watch(ctx, func(uuid.UUID) { t.Error("fn called") })
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch with an unreachable Redis: got error %v, want the connection error", err)
	}
	if err := f.Health(t.Context()); err != nil {
		t.Errorf("Health after the Watch returned: %v, want nil", err)
	}
}

// watcher is a Watch running in the background for a test.
type watcher struct {
	ids        chan uuid.UUID
	subscribed chan bool // OnSubscribe's argument
	done       chan error
	cancel     context.CancelFunc
}

// startWatch starts f.Watch; it must have been built with w.onSubscribe.
// At cleanup it cancels the Watch and checks that it returns the
// context's error.
func startWatch(t *testing.T, f *kgredis.Feed, w *watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w.cancel = cancel
	go func() { w.done <- f.Watch(ctx, func(id uuid.UUID) { w.ids <- id }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Watch after cancel: got error %v, want one wrapping %v", err, context.Canceled)
			}
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return within 5s of its context's end")
		}
	})
}

func newWatcher() *watcher {
	return &watcher{ids: make(chan uuid.UUID, 64), subscribed: make(chan bool, 8), done: make(chan error, 1)}
}

func (w *watcher) onSubscribe(resubscribed bool) { w.subscribed <- resubscribed }

// waitSubscribed waits for OnSubscribe(resubscribed), and for the
// uuid.Nil that Watch sends just before it.
func (w *watcher) waitSubscribed(t *testing.T, resubscribed bool) {
	t.Helper()
	select {
	case got := <-w.subscribed:
		if got != resubscribed {
			t.Fatalf("OnSubscribe(resubscribed): got %v, want %v", got, resubscribed)
		}
	case err := <-w.done:
		t.Fatalf("Watch returned %v, want it subscribed", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("OnSubscribe(%v) not called within 10s", resubscribed)
	}
	w.expect(t, uuid.Nil, "reset on subscription")
}

// expect waits up to a second for id.
func (w *watcher) expect(t *testing.T, id uuid.UUID, what string) {
	t.Helper()
	select {
	case got := <-w.ids:
		if got != id {
			t.Fatalf("%s: got id %s, want %s", what, got, id)
		}
	case <-time.After(time.Second):
		t.Fatalf("%s: no id within 1s", what)
	}
}

// expectNone checks that no id arrives within 200ms.
func (w *watcher) expectNone(t *testing.T, what string) {
	t.Helper()
	select {
	case got := <-w.ids:
		t.Fatalf("%s: got id %s, want none", what, got)
	case <-time.After(200 * time.Millisecond):
	}
}

// newFeed returns a Feed on its own channel of the Redis at addr, with
// OnSubscribe reporting to w.
func newFeed(t *testing.T, client goredis.UniversalClient, channel string, w *watcher, edit ...func(*kgredis.FeedConfig)) *kgredis.Feed {
	t.Helper()
	cfg := kgredis.FeedConfig{Client: client, Channel: channel, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	if w != nil {
		cfg.OnSubscribe = w.onSubscribe
	}
	for _, e := range edit {
		e(&cfg)
	}
	f, err := kgredis.NewFeed(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFeedDelivers checks delivery between two feeds on one channel, what
// is ignored, and Health while subscribed.
func TestFeedDelivers(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	channel := uniqueName(t) + ":changes"
	direct := newClient(t, addr)
	w := newWatcher()
	watching := newFeed(t, newClient(t, addr), channel, w)
	publishing := newFeed(t, newClient(t, addr), channel, nil)
	startWatch(t, watching, w)
	w.waitSubscribed(t, false)
	if err := watching.Health(t.Context()); err != nil {
		t.Errorf("Health while subscribed: %v, want nil", err)
	}

	id := uuid.Must(uuid.NewV7())
	if err := publishing.Publish(t.Context(), id); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	w.expect(t, id, "published id")

	for _, junk := range []string{"", "hello", id.String() + "x", strings.Repeat("a", 1000)} {
		if err := direct.Publish(t.Context(), channel, junk).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := direct.Publish(t.Context(), channel+"-other", id.String()).Err(); err != nil {
		t.Fatal(err)
	}
	w.expectNone(t, "payloads that are not UUIDs, and another channel")

	// The nil UUID is a valid payload: every instance drops its cache.
	if err := direct.Publish(t.Context(), channel, uuid.Nil.String()).Err(); err != nil {
		t.Fatal(err)
	}
	w.expect(t, uuid.Nil, "published nil UUID")
}

// pubsubClientID returns the Redis client id of the pub/sub connection
// named name (there must be exactly one).
func pubsubClientID(t *testing.T, c *goredis.Client, name string) string {
	t.Helper()
	list, err := c.Do(t.Context(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		fields := map[string]string{}
		for f := range strings.FieldsSeq(sc.Text()) {
			if k, v, ok := strings.Cut(f, "="); ok {
				fields[k] = v
			}
		}
		if fields["name"] == name {
			ids = append(ids, fields["id"])
		}
	}
	if len(ids) != 1 {
		t.Fatalf("pub/sub connections named %s: %v, want one", name, ids)
	}
	return ids[0]
}

// TestWatchResubscribesAfterKill kills the feed's connection in Redis
// (CLIENT KILL, by id, so that other users of a shared Redis are left
// alone): go-redis reconnects and re-subscribes, Watch reports it with
// uuid.Nil, and a later Publish arrives.
func TestWatchResubscribesAfterKill(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	name := uniqueName(t)
	admin := newClient(t, addr)
	w := newWatcher()
	f := newFeed(t, newClient(t, addr, func(o *goredis.Options) { o.ClientName = name }), name+":changes", w)
	startWatch(t, f, w)
	w.waitSubscribed(t, false)

	for round := range 3 {
		id := pubsubClientID(t, admin, name)
		if n, err := admin.Do(t.Context(), "CLIENT", "KILL", "ID", id).Int(); err != nil || n != 1 {
			t.Fatalf("CLIENT KILL ID %s: %d, %v; want 1, nil", id, n, err)
		}
		start := time.Now()
		w.waitSubscribed(t, true)
		t.Logf("round %d: re-subscribed and reported after %v", round+1, time.Since(start))
		if err := f.Health(t.Context()); err != nil {
			t.Errorf("Health once re-subscribed: %v, want nil", err)
		}
		changed := uuid.Must(uuid.NewV7())
		if err := f.Publish(t.Context(), changed); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		w.expect(t, changed, "publish after the re-subscription")
	}
}

// TestHealthDuringOutage cuts the feeds' connections and refuses new ones
// (through a proxy) for a while: Health, the Feed's and the Manager's,
// reports the outage as long as it lasts, changes published meanwhile are
// lost, and once Redis is back each feed re-subscribes and says so with
// uuid.Nil, which drops the Manager's cache: a key revoked during the
// outage is refused.
func TestHealthDuringOutage(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	p := newProxy(t, addr)
	channel := uniqueName(t) + ":changes"
	client := newClient(t, p.addr(), func(o *goredis.Options) { o.MaxRetries = -1 })
	w := newWatcher()
	f := newFeed(t, client, channel, w)
	startWatch(t, f, w)
	w.waitSubscribed(t, false)

	// A Manager watching a feed of its own on the same connection path.
	mw := newWatcher()
	st := memory.New()
	m := newManager(t, st, func(c *keygate.Config) {
		c.ChangeFeed = newFeed(t, client, channel, mw)
		c.CacheTTL = time.Hour
	})
	select {
	case <-mw.subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("the Manager's feed did not subscribe")
	}
	if err := m.Health(t.Context()); err != nil {
		t.Fatalf("Manager.Health with the feed subscribed: %v, want nil", err)
	}
	tok := createKey(t, m, keygate.RateLimit{})
	if _, err := m.Verify(t.Context(), tok.Token.Reveal()); err != nil {
		t.Fatal(err)
	}

	p.setRefusing(true)
	p.cut()
	waitFor(t, "Feed.Health to report the outage", func() bool {
		return errors.Is(f.Health(t.Context()), kgredis.ErrNotSubscribed)
	})
	// The outage lasts: Health keeps saying so while Watch retries.
	for range 5 {
		if err := f.Health(t.Context()); !errors.Is(err, kgredis.ErrNotSubscribed) {
			t.Fatalf("Feed.Health during the outage: %v, want ErrNotSubscribed", err)
		}
		if err := m.Health(t.Context()); !errors.Is(err, keygate.ErrUnavailable) || !errors.Is(err, kgredis.ErrNotSubscribed) {
			t.Fatalf("Manager.Health during the outage: %v, want ErrUnavailable and ErrNotSubscribed", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Another instance, without the feed, revokes the key; its change
	// (had it been published) would be lost as this one is.
	other := newManager(t, st)
	if _, err := other.Revoke(t.Context(), keygate.System(), tok.Key.ID); err != nil {
		t.Fatal(err)
	}
	lost := uuid.Must(uuid.NewV7())
	if err := newClient(t, addr).Publish(t.Context(), channel, lost.String()).Err(); err != nil {
		t.Fatal(err)
	}
	// The Manager noticed the outage (m.Health says so) and no longer
	// trusts its cache beyond Config.FeedOutageTTL (1s by default).
	waitFor(t, "the Manager to refuse the key revoked elsewhere during the outage", func() bool {
		_, err := m.Verify(t.Context(), tok.Token.Reveal())
		return errors.Is(err, keygate.ErrRevoked)
	})

	p.setRefusing(false)
	w.waitSubscribed(t, true)
	select {
	case r := <-mw.subscribed:
		if !r {
			t.Fatal("the Manager's feed: OnSubscribe(false) after the outage, want true")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Manager's feed did not re-subscribe")
	}
	if err := f.Health(t.Context()); err != nil {
		t.Errorf("Feed.Health once re-subscribed: %v, want nil", err)
	}
	if err := m.Health(t.Context()); err != nil {
		t.Errorf("Manager.Health once re-subscribed: %v, want nil", err)
	}
	w.expectNone(t, "the change published during the outage (pub/sub is at most once)")
	if _, err := m.Verify(t.Context(), tok.Token.Reveal()); !errors.Is(err, keygate.ErrRevoked) {
		t.Errorf("Verify after the re-subscription: %v, want ErrRevoked (the cache dropped)", err)
	}
}

// TestDeadConnectionIsReplaced freezes the feed's connection (a dead peer
// that neither answers nor closes): the Watch's unanswered ping gives it
// away, and the feed re-subscribes on a new connection.
func TestDeadConnectionIsReplaced(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	p := newProxy(t, addr)
	channel := uniqueName(t) + ":changes"
	w := newWatcher()
	f := newFeed(t, newClient(t, p.addr()), channel, w, func(c *kgredis.FeedConfig) {
		c.PingInterval = 100 * time.Millisecond
	})
	startWatch(t, f, w)
	w.waitSubscribed(t, false)
	// Pings on a live connection do not disturb it.
	time.Sleep(300 * time.Millisecond)
	select {
	case r := <-w.subscribed:
		t.Fatalf("OnSubscribe(%v) on a live, idle connection", r)
	default:
	}

	p.freeze()
	start := time.Now()
	w.waitSubscribed(t, true)
	t.Logf("dead connection replaced after %v (PingInterval 100ms)", time.Since(start))
	changed := uuid.Must(uuid.NewV7())
	if err := newClient(t, addr).Publish(t.Context(), channel, changed.String()).Err(); err != nil {
		t.Fatal(err)
	}
	w.expect(t, changed, "publish on the new connection")
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

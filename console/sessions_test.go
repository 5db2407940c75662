package console_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/console/sessiontest"
)

// TestMemoryStoreConformance runs the session store suite against the
// default, in-memory store.
func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T) console.SessionStore { return console.NewMemoryStore(0) })
}

// downStore is a session store whose every call fails while down is set.
type downStore struct {
	console.SessionStore
	down atomic.Bool
}

var errSessionsDown = errors.New("dial tcp 10.9.8.7:6379: connection refused")

func (s *downStore) err() error {
	if s.down.Load() {
		return errSessionsDown
	}
	return nil
}

func (s *downStore) CreateSession(ctx context.Context, id []byte, owner string, data []byte, now, expires time.Time, perOwner int) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.SessionStore.CreateSession(ctx, id, owner, data, now, expires, perOwner)
}

func (s *downStore) Session(ctx context.Context, id []byte, now time.Time) ([]byte, string, time.Time, error) {
	if err := s.err(); err != nil {
		return nil, "", time.Time{}, err
	}
	return s.SessionStore.Session(ctx, id, now)
}

func (s *downStore) DeleteSession(ctx context.Context, id []byte) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.SessionStore.DeleteSession(ctx, id)
}

func (s *downStore) UseNonce(ctx context.Context, nonce []byte, now, expires time.Time) (bool, error) {
	if err := s.err(); err != nil {
		return false, err
	}
	return s.SessionStore.UseNonce(ctx, nonce, now, expires)
}

// TestSessionStoreFailure: when the session store fails, the console
// fails closed: no page, no sign-in, no sign-out that did not happen;
// nothing of the failure reaches the page. Once it is back, the session
// is there.
func TestSessionStoreFailure(t *testing.T) {
	t.Parallel()
	sessions := &downStore{SessionStore: console.NewMemoryStore(0)}
	e := newEnv(t, func(c *console.Config) { c.Sessions = sessions })
	b := e.signedIn(t, e.admin)
	list := b.get("/").want(http.StatusOK)
	sessions.down.Store(true)
	for _, p := range []*response{
		b.get("/"),
		b.post("/signout", url.Values{"csrf": {list.input("csrf")}}),
		e.browser(t).signIn(e.admin),
	} {
		p.want(http.StatusServiceUnavailable, "The session store is unavailable")
		if strings.Contains(p.body, errSessionsDown.Error()) {
			t.Error("the store's error reached the page")
		}
	}
	if !strings.Contains(e.logs.String(), errSessionsDown.Error()) {
		t.Error("the store's failure was not logged")
	}
	sessions.down.Store(false)
	b.get("/").want(http.StatusOK, "Signed in as admin")
}

// TestInstancesShareSessions runs the console end to end on two instances
// sharing one memory store; store/sqlstore and the redis module run it
// on their stores.
func TestInstancesShareSessions(t *testing.T) {
	t.Parallel()
	sessiontest.RunInstances(t, func(t *testing.T) console.SessionStore { return console.NewMemoryStore(0) })
}

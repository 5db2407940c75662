package secretscan

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memory"
)

// keyServer is a fake of GitHub's key list that counts its fetches. It
// serves keys while ok is set (500 otherwise), each fetch after gate, when
// set, lets it go.
type keyServer struct {
	*httptest.Server
	fetches atomic.Int64
	ok      atomic.Bool
	gate    chan struct{}
	arrived chan struct{} // gets a value as each fetch arrives, when set

	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey
}

// add publishes another key.
func (s *keyServer) add(id string, k *ecdsa.PublicKey) {
	s.mu.Lock()
	s.keys[id] = k
	s.mu.Unlock()
}

func newKeyServer(t *testing.T, keys map[string]*ecdsa.PublicKey) *keyServer {
	t.Helper()
	s := &keyServer{keys: keys}
	s.ok.Store(true)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		if s.arrived != nil {
			s.arrived <- struct{}{}
		}
		if s.gate != nil {
			<-s.gate
		}
		if !s.ok.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		var list []map[string]any
		s.mu.Lock()
		defer s.mu.Unlock()
		for id, k := range s.keys {
			der, err := x509.MarshalPKIXPublicKey(k)
			if err != nil {
				t.Error(err)
			}
			list = append(list, map[string]any{"key_identifier": id, "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"public_keys": list})
	}))
	t.Cleanup(s.Close)
	return s
}

// frozen is a settable clock.
type frozen struct {
	mu  sync.Mutex
	now time.Time
}

func (c *frozen) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *frozen) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeyFetchFailuresBounded: while GitHub's key list cannot be fetched,
// 50 concurrent reports that GitHub did not sign (any key id, any
// signature) make one fetch, not one each; the next fetch waits for a
// backoff that doubles from a second to a minute, whatever the rate of
// requests; a success resets it.
func TestKeyFetchFailuresBounded(t *testing.T) {
	t.Parallel()
	srv := newKeyServer(t, map[string]*ecdsa.PublicKey{"k1": &newKey(t).PublicKey})
	srv.ok.Store(false)
	clock := &frozen{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	g := NewGitHubKeys(&http.Client{Timeout: 10 * time.Second}, srv.URL)
	g.now = clock.Now

	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{5}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	h, err := New(Config{Manager: m, Keys: g, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	forger := newKey(t)
	body := []byte(`[{"token":"kg_x","type":"t","url":"u","source":"content"}]`)
	digest := sha256.Sum256(body)
	sig, _ := ecdsa.SignASN1(rand.Reader, forger, digest[:])
	post := func() int {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set(HeaderKeyID, "k1")
		r.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	var wg sync.WaitGroup
	var unavailable atomic.Int64
	for range 50 {
		wg.Go(func() {
			if post() == http.StatusServiceUnavailable {
				unavailable.Add(1)
			}
		})
	}
	wg.Wait()
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("50 concurrent reports while the keys cannot be fetched made %d fetches, want 1", n)
	}
	if n := unavailable.Load(); n != 50 {
		t.Errorf("%d of 50 answered 503, want all (the keys are unavailable, GitHub should retry)", n)
	}

	// The backoff doubles: 1 s, 2 s, 4 s, ... up to a minute.
	want := int64(1)
	for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		clock.Advance(wait - time.Nanosecond)
		post()
		if n := srv.fetches.Load(); n != want {
			t.Fatalf("before %v: %d fetches, want %d", wait, n, want)
		}
		clock.Advance(time.Nanosecond)
		post()
		post()
		if want++; srv.fetches.Load() != want {
			t.Fatalf("after %v: %d fetches, want %d", wait, srv.fetches.Load(), want)
		}
	}

	// Fetched at last: the key is known, a forged signature is 401, and
	// an unknown id refetches at most once a minute.
	srv.ok.Store(true)
	clock.Advance(time.Minute)
	if code := post(); code != http.StatusUnauthorized {
		t.Errorf("a forged report once the keys are fetched: %d, want 401", code)
	}
	want++
	clock.Advance(time.Minute)
	ctx := context.Background()
	for range 5 {
		if _, err := g.PublicKey(ctx, "k2"); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("unknown id: %v, want ErrUnknownKey", err)
		}
	}
	if n := srv.fetches.Load(); n != want+1 {
		t.Errorf("%d fetches, want %d (an unknown id refetches once, then not for a minute)", n, want+1)
	}
	// A failed refetch keeps the keys fetched before.
	srv.ok.Store(false)
	clock.Advance(time.Minute)
	if _, err := g.PublicKey(ctx, "k2"); err == nil || errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown id, refetch failing: %v, want the fetch error", err)
	}
	if _, err := g.PublicKey(ctx, "k1"); err != nil {
		t.Errorf("a known id while refetching fails: %v", err)
	}
}

// TestKeyFetchSingleFlight: concurrent lookups of an unknown id share one
// fetch; a known id is answered while it is under way, not behind it.
func TestKeyFetchSingleFlight(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	srv := newKeyServer(t, map[string]*ecdsa.PublicKey{"k1": &k1.PublicKey})
	g := NewGitHubKeys(&http.Client{Timeout: time.Minute}, srv.URL)
	ctx := context.Background()
	if _, err := g.PublicKey(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	// GitHub adds k2; reports signed by it arrive together, a minute
	// later (an unknown id may refetch).
	srv.add("k2", &k2.PublicKey)
	clock := &frozen{now: time.Now().Add(time.Minute)}
	g.now = clock.Now
	srv.gate, srv.arrived = make(chan struct{}), make(chan struct{}, 1)
	var wg sync.WaitGroup
	var found atomic.Int64
	for range 50 {
		wg.Go(func() {
			if pub, err := g.PublicKey(ctx, "k2"); err == nil && pub.Equal(&k2.PublicKey) {
				found.Add(1)
			}
		})
	}
	<-srv.arrived // the fetch is under way, held by the server
	known := make(chan error, 1)
	go func() {
		_, err := g.PublicKey(ctx, "k1")
		known <- err
	}()
	select {
	case err := <-known:
		if err != nil {
			t.Errorf("known id during a fetch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("a known id waited for the fetch of another")
	}
	close(srv.gate)
	wg.Wait()
	if n := found.Load(); n != 50 {
		t.Errorf("%d of 50 lookups found the new key", n)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2 (the first, and one for 50 lookups of a new id)", n)
	}
}

package secretscan_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/secretscan"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// recorder keeps audit events.
type recorder struct {
	mu     sync.Mutex
	events []keygate.Event
}

func (r *recorder) Audit(_ context.Context, e keygate.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) leaked() []keygate.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []keygate.Event
	for _, e := range r.events {
		if e.Type == keygate.EventLeaked {
			out = append(out, e)
		}
	}
	return out
}

// flakyStore is a memory store whose key lookups fail while down is set,
// and wait for gate, when set, before answering.
type flakyStore struct {
	*memory.Store
	down atomic.Bool
	gate chan struct{}
}

func (s *flakyStore) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	if s.gate != nil {
		<-s.gate
	}
	if s.down.Load() {
		return nil, errors.New("store down")
	}
	return s.Store.GetByHash(ctx, hash)
}

type env struct {
	m       *keygate.Manager
	store   *flakyStore
	audit   *recorder
	signer  *ecdsa.PrivateKey
	handler http.Handler
}

func setup(t *testing.T, edit ...func(*secretscan.Config)) *env {
	t.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{5}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{audit: &recorder{}, store: &flakyStore{Store: memory.New()}}
	e.m, err = keygate.New(keygate.Config{Store: e.store, Hasher: hasher, Auditor: e.audit, Prefix: "acme_live"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Close(context.Background()) })
	if e.signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	cfg := secretscan.Config{Manager: e.m, Keys: secretscan.StaticKeys{"key-1": &e.signer.PublicKey}, Logger: slog.New(slog.DiscardHandler)}
	for _, f := range edit {
		f(&cfg)
	}
	if e.handler, err = secretscan.New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// token creates a key and returns its token.
func (e *env) token(t *testing.T, name string) (string, *keygate.Created) {
	t.Helper()
	c, err := e.m.Create(context.Background(), keygate.System(), keygate.CreateRequest{Name: name, Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	return c.Token.Reveal(), c
}

// post sends body signed by key (nil: unsigned) as keyID.
func (e *env) post(t *testing.T, body []byte, key *ecdsa.PrivateKey, keyID string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/github/secret-scanning", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if key != nil {
		digest := sha256.Sum256(body)
		sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set(secretscan.HeaderKeyID, keyID)
		r.Header.Set(secretscan.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

func reportOf(tokens ...string) []byte {
	var b strings.Builder
	b.WriteString("[")
	for i, tok := range tokens {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"token":%q,"type":"acme_api_key","url":"https://github.com/o/r/blob/abc/config.yml","source":"content"}`, tok)
	}
	b.WriteString("]")
	return []byte(b.String())
}

func labels(t *testing.T, w *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d %s, want 200", w.Code, w.Body)
	}
	var out []secretscan.Label
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range out {
		if l.TokenType != "acme_api_key" {
			t.Errorf("token_type %q, want the one sent", l.TokenType)
		}
		m[l.TokenRaw] = l.Label
	}
	return m
}

// TestGoodBatch: a signed batch revokes exactly the live keys it names and
// labels every token.
func TestGoodBatch(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	live1, _ := e.token(t, "live-1")
	live2, _ := e.token(t, "live-2")
	bystander, _ := e.token(t, "bystander")
	revoked, rc := e.token(t, "revoked")
	if _, err := e.m.Revoke(ctx, keygate.System(), rc.Key.ID); err != nil {
		t.Fatal(err)
	}
	format, _ := apikey.NewFormat("acme_live")
	unknown, _ := format.Generate()
	// live1 with another last character: its checksum fails.
	last := "Z"
	if strings.HasSuffix(live1, last) {
		last = "Y"
	}
	garbage := []string{"", "acme_live_notatoken", "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", strings.Repeat("x", 300), live1[:len(live1)-1] + last}
	all := append([]string{live1, live2, revoked, unknown.Reveal()}, garbage...)

	got := labels(t, e.post(t, reportOf(all...), e.signer, "key-1"))
	want := map[string]string{live1: "true_positive", live2: "true_positive", revoked: "true_positive", unknown.Reveal(): "false_positive"}
	for _, g := range garbage {
		want[g] = "false_positive"
	}
	for tok, label := range want {
		if got[tok] != label {
			t.Errorf("label of %.12q: %q, want %q", tok, got[tok], label)
		}
	}
	for _, tok := range []string{live1, live2} {
		if _, err := e.m.Verify(ctx, tok); !errors.Is(err, keygate.ErrRevoked) {
			t.Errorf("a leaked key after the report: %v, want ErrRevoked", err)
		}
	}
	if _, err := e.m.Verify(ctx, bystander); err != nil {
		t.Errorf("a key the report does not name: %v", err)
	}
	events := e.audit.leaked()
	if len(events) != 3 {
		t.Fatalf("%d key.leaked events, want 3 (two revoked, one already revoked)", len(events))
	}
	for _, ev := range events {
		if ev.Location != "https://github.com/o/r/blob/abc/config.yml (content)" || ev.Actor != "scanner:github" {
			t.Errorf("event %+v lacks where the token was found", ev)
		}
	}
}

// TestRefusals: a bad signature, an unknown key, no signature, a replay,
// an oversized body or batch change nothing.
func TestRefusals(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *secretscan.Config) { c.MaxBatch = 3; c.MaxBodyBytes = 4096 })
	ctx := context.Background()
	live, _ := e.token(t, "live")
	body := reportOf(live)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, tc := range map[string]struct {
		w      *httptest.ResponseRecorder
		status int
	}{
		"signed by another key":   {e.post(t, body, other, "key-1"), 401},
		"an unknown key id":       {e.post(t, body, e.signer, "key-9"), 401},
		"unsigned":                {e.post(t, body, nil, ""), 401},
		"too many tokens":         {e.post(t, reportOf(live, live, live, live), e.signer, "key-1"), 413},
		"too large":               {e.post(t, reportOf(strings.Repeat("a", 5000)), e.signer, "key-1"), 413},
		"not JSON (signed)":       {e.post(t, []byte(`{"token":`), e.signer, "key-1"), 400},
		"an object, not an array": {e.post(t, []byte(`{"token":"x"}`), e.signer, "key-1"), 400},
	} {
		if tc.w.Code != tc.status || tc.w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem", name, tc.w.Code, tc.w.Body, tc.status)
		}
	}
	// A signature over another body does not carry over.
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	digest := sha256.Sum256(reportOf("something else"))
	sig, _ := ecdsa.SignASN1(rand.Reader, e.signer, digest[:])
	r.Header.Set(secretscan.HeaderKeyID, "key-1")
	r.Header.Set(secretscan.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("a signature of another body: %d, want 401", w.Code)
	}
	if _, err := e.m.Verify(ctx, live); err != nil {
		t.Fatalf("refused reports revoked the key: %v", err)
	}
	if n := len(e.audit.leaked()); n != 0 {
		t.Errorf("refused reports made %d key.leaked events", n)
	}
}

// acceptedHeaders returns the headers of a request carrying body signed
// by e's key, so that the same signed request can be sent twice.
func acceptedHeaders(t *testing.T, e *env, body []byte) http.Header {
	t.Helper()
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, e.signer, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(secretscan.HeaderKeyID, "key-1")
	h.Set(secretscan.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return h
}

// send posts body with the headers h (a copy) and returns the response.
func (e *env) send(body []byte, h http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	r.Header = h.Clone()
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

// twin returns the other valid spelling of an ECDSA signature of key:
// (r, n−s) for (r, s), which verifies as well.
func twin(t *testing.T, key *ecdsa.PrivateKey, sig []byte) []byte {
	t.Helper()
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 {
		t.Fatalf("signature: %v", err)
	}
	rs.S.Sub(key.Curve.Params().N, rs.S)
	out, err := asn1.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// respell returns another base64 spelling of sig, which decodes to the
// same bytes: the last character's unused bits set differently. sig's
// length must not be a multiple of 3.
func respell(t *testing.T, sig []byte) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	s := []byte(base64.StdEncoding.EncodeToString(sig))
	i := bytes.IndexByte(s, '=') - 1
	if i < 0 {
		t.Fatal("no unused bits to change")
	}
	s[i] = alphabet[strings.IndexByte(alphabet, s[i])^1]
	if got, err := base64.StdEncoding.DecodeString(string(s)); err != nil || !bytes.Equal(got, sig) {
		t.Fatalf("respelled signature decodes to %x, %v", got, err)
	}
	return string(s)
}

// TestReplay: a report sent again, within the replay window, however its
// signature is spelled (the same, its ECDSA twin (r, n−s), another base64
// spelling, a new signature), gets the first answer, labels and all, and
// changes nothing; GitHub's own retry after a timeout is one of these. A
// signature moved to another body is refused. After the window, the
// report is handled again.
func TestReplay(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	e := setup(t, func(c *secretscan.Config) {
		c.Policy = secretscan.ReportOnly
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	live, _ := e.token(t, "live")
	format, _ := apikey.NewFormat("acme_live")
	unknown, _ := format.Generate()
	body := reportOf(live, unknown.Reveal())

	// A signature whose base64 has unused bits (its length is not a
	// multiple of 3), so that it can be respelled.
	var sig []byte
	for len(sig)%3 == 0 {
		digest := sha256.Sum256(body)
		var err error
		if sig, err = ecdsa.SignASN1(rand.Reader, e.signer, digest[:]); err != nil {
			t.Fatal(err)
		}
	}
	headers := func(sig64 string) http.Header {
		h := http.Header{}
		h.Set(secretscan.HeaderKeyID, "key-1")
		h.Set(secretscan.HeaderSignature, sig64)
		return h
	}
	first := e.send(body, headers(base64.StdEncoding.EncodeToString(sig)))
	want := map[string]string{live: secretscan.TruePositive, unknown.Reveal(): secretscan.FalsePositive}
	if got := labels(t, first); got[live] != want[live] || got[unknown.Reveal()] != want[unknown.Reveal()] || len(got) != 2 {
		t.Fatalf("first answer %v, want %v", got, want)
	}
	tw := twin(t, e.signer, sig)
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(&e.signer.PublicKey, digest[:], tw) {
		t.Fatal("the twin signature does not verify: the case tests nothing")
	}
	for _, c := range []struct {
		name string
		h    http.Header
	}{
		{"the same request (GitHub's retry)", headers(base64.StdEncoding.EncodeToString(sig))},
		{"the twin signature (r, n-s)", headers(base64.StdEncoding.EncodeToString(tw))},
		{"another base64 spelling", headers(respell(t, sig))},
		{"a new signature", acceptedHeaders(t, e, body)},
	} {
		w := e.send(body, c.h)
		if w.Code != http.StatusOK || w.Body.String() != first.Body.String() {
			t.Errorf("%s: %d %s, want 200 with the first answer %s", c.name, w.Code, w.Body, first.Body)
		}
		if n := len(e.audit.leaked()); n != 1 {
			t.Errorf("%s: %d key.leaked events, want 1 (the report was handled again)", c.name, n)
		}
	}
	if w := e.send(reportOf(live), headers(base64.StdEncoding.EncodeToString(sig))); w.Code != http.StatusUnauthorized {
		t.Errorf("the signature on another body: %d, want 401", w.Code)
	}
	if n := len(e.audit.leaked()); n != 1 {
		t.Errorf("%d key.leaked events, want 1 (the signature was moved)", n)
	}
	// Report only: the key still works.
	if _, err := e.m.Verify(context.Background(), live); err != nil {
		t.Errorf("ReportOnly revoked the key: %v", err)
	}

	// After the window the same report is a new one.
	mu.Lock()
	now = now.Add(secretscan.DefaultReplayWindow)
	mu.Unlock()
	if w := e.send(body, acceptedHeaders(t, e, body)); w.Code != http.StatusOK || w.Body.String() != first.Body.String() {
		t.Errorf("after the window: %d %s, want 200 with the same labels", w.Code, w.Body)
	}
	if n := len(e.audit.leaked()); n != 2 {
		t.Errorf("%d key.leaked events after the window, want 2", n)
	}
}

// TestReplayConcurrent: copies of one report arriving together (GitHub
// retrying while the first is still being handled) are handled once, and
// each gets its answer.
func TestReplayConcurrent(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *secretscan.Config) { c.Policy = secretscan.ReportOnly })
	live, _ := e.token(t, "live")
	body := reportOf(live)
	const n = 20
	codes, bodies := make([]int, n), make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		h := acceptedHeaders(t, e, body)
		wg.Go(func() {
			w := e.send(body, h)
			codes[i], bodies[i] = w.Code, w.Body.String()
		})
	}
	wg.Wait()
	for i := range n {
		if codes[i] != http.StatusOK || bodies[i] != bodies[0] {
			t.Errorf("copy %d: %d %s, want 200 %s", i, codes[i], bodies[i], bodies[0])
		}
	}
	if got := labels(t, e.send(body, acceptedHeaders(t, e, body))); got[live] != secretscan.TruePositive {
		t.Errorf("label %q, want true_positive", got[live])
	}
	if n := len(e.audit.leaked()); n != 1 {
		t.Errorf("%d key.leaked events, want 1", n)
	}
}

// TestReplayAfterFailure: a report whose handling failed (503) is not
// remembered: sent again, it is handled; the copies that waited for the
// failed one get 503 too, so that GitHub sends them again.
func TestReplayAfterFailure(t *testing.T) {
	t.Parallel()
	e := setup(t)
	live, _ := e.token(t, "live")
	body := reportOf(live)
	e.store.down.Store(true)
	e.store.gate = make(chan struct{})
	firstDone := make(chan int)
	go func() { firstDone <- e.send(body, acceptedHeaders(t, e, body)).Code }()
	// A copy sent while the first is handled waits for its answer (or
	// arrives after it failed): 503 either way.
	copyDone := make(chan int)
	go func() { copyDone <- e.send(body, acceptedHeaders(t, e, body)).Code }()
	close(e.store.gate)
	if code := <-firstDone; code != http.StatusServiceUnavailable {
		t.Errorf("store down: %d, want 503", code)
	}
	if code := <-copyDone; code != http.StatusServiceUnavailable {
		t.Errorf("a copy while the store is down: %d, want 503", code)
	}
	e.store.down.Store(false)
	if got := labels(t, e.send(body, acceptedHeaders(t, e, body))); got[live] != secretscan.TruePositive {
		t.Errorf("sent again: label %q, want true_positive", got[live])
	}
	if _, err := e.m.Verify(context.Background(), live); !errors.Is(err, keygate.ErrRevoked) {
		t.Errorf("after the report was sent again: %v, want ErrRevoked", err)
	}
}

// TestGitHubKeys fetches keys in GitHub's published format, again for an
// unknown id at most once a minute.
func TestGitHubKeys(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	var fetches int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		fetches++
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"public_keys": []map[string]any{{"key_identifier": "abc123", "key": pemText, "is_current": true}}})
	}))
	defer srv.Close()
	g := secretscan.NewGitHubKeys(&http.Client{Timeout: 5 * time.Second}, srv.URL)
	ctx := context.Background()
	pub, err := g.PublicKey(ctx, "abc123")
	if err != nil || !pub.Equal(&key.PublicKey) {
		t.Fatalf("PublicKey: %v", err)
	}
	if _, err := g.PublicKey(ctx, "abc123"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.PublicKey(ctx, "nope"); !errors.Is(err, secretscan.ErrUnknownKey) {
		t.Errorf("unknown id: %v, want ErrUnknownKey", err)
	}
	if _, err := g.PublicKey(ctx, "nope"); !errors.Is(err, secretscan.ErrUnknownKey) {
		t.Errorf("unknown id again: %v", err)
	}
	if fetches != 1 {
		t.Errorf("%d fetches, want 1 (cached; an unknown id refetches at most once a minute)", fetches)
	}
	down := secretscan.NewGitHubKeys(nil, "http://127.0.0.1:1/keys")
	if _, err := down.PublicKey(ctx, "abc123"); err == nil || errors.Is(err, secretscan.ErrUnknownKey) {
		t.Errorf("keys unreachable: %v, want a fetch error", err)
	}
	// A handler whose keys cannot be fetched answers 503, so GitHub retries.
	e := setup(t, func(c *secretscan.Config) { c.Keys = down })
	if w := e.post(t, reportOf("x"), e.signer, "abc123"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("keys unreachable: %d, want 503", w.Code)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for name, cfg := range map[string]secretscan.Config{
		"no manager":     {Keys: secretscan.StaticKeys{}},
		"no keys":        {Manager: e.m},
		"negative batch": {Manager: e.m, Keys: secretscan.StaticKeys{}, MaxBatch: -1},
		"bad policy":     {Manager: e.m, Keys: secretscan.StaticKeys{}, Policy: 7},
	} {
		if _, err := secretscan.New(cfg); !errors.Is(err, secretscan.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

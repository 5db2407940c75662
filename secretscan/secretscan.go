package secretscan

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
)

// Errors of this package, checked with errors.Is.
var (
	// ErrInvalidConfig means [New] was given an unusable [Config].
	ErrInvalidConfig = errors.New("secretscan: invalid configuration")
	// ErrUnknownKey means a KeySource has no public key of the id asked.
	ErrUnknownKey = errors.New("secretscan: unknown signing key")
)

// The request headers that carry GitHub's signature.
const (
	HeaderKeyID     = "Github-Public-Key-Identifier"
	HeaderSignature = "Github-Public-Key-Signature"
)

// The defaults of [Config].
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxBatch     = 1000
	DefaultReplayWindow = 24 * time.Hour
)

// Policy says what the Handler does with a working key's leaked token.
type Policy int

const (
	// Revoke revokes the key at once (the default).
	Revoke Policy = iota
	// ReportOnly leaves the key working and only records the leak, for a
	// service that notifies the owner instead.
	ReportOnly
)

// KeySource returns the public key that signs reports, by its id. It is
// called concurrently and must be safe for concurrent use. An unknown id
// is [ErrUnknownKey]; any other error is a failure to fetch keys.
type KeySource interface {
	PublicKey(ctx context.Context, id string) (*ecdsa.PublicKey, error)
}

// StaticKeys is a KeySource of fixed keys by id, for tests and for
// services that pin GitHub's keys.
type StaticKeys map[string]*ecdsa.PublicKey

// PublicKey implements KeySource.
func (k StaticKeys) PublicKey(_ context.Context, id string) (*ecdsa.PublicKey, error) {
	if pub, ok := k[id]; ok {
		return pub, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
}

// Config configures a [Handler]. Manager and Keys are required.
type Config struct {
	// Manager handles each token (keygate.Manager.HandleLeak).
	Manager *keygate.Manager
	// Keys gives the public keys that sign reports.
	Keys KeySource
	// Policy is what is done with a working key's token. Default Revoke.
	Policy Policy
	// Reporter names the scanner in audit events. Default "github".
	Reporter string
	// MaxBodyBytes bounds a report's body. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxBatch bounds the tokens of one report. Default DefaultMaxBatch.
	MaxBatch int
	// ReplayWindow is how long a handled report is remembered, by the
	// SHA-256 of its body (what is signed), with its answer: the same body
	// sent again within it, however its signature is spelled, gets the
	// same labels and changes nothing (no second revocation or key.leaked
	// event); after it, the body is handled as new. Default 24 h. At most
	// 100 000 reports are remembered: past that, those older than the
	// window are forgotten first, then arbitrary ones.
	ReplayWindow time.Duration
	// Logger receives operational messages, never a token. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler serves GitHub's secret scanning reports; see the package
// documentation. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	replay replays
}

// New returns a Handler for cfg, or an error wrapping [ErrInvalidConfig].
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Manager == nil:
		return nil, fmt.Errorf("%w: Config.Manager is required", ErrInvalidConfig)
	case cfg.Keys == nil:
		return nil, fmt.Errorf("%w: Config.Keys is required", ErrInvalidConfig)
	case cfg.MaxBodyBytes < 0 || cfg.MaxBatch < 0 || cfg.ReplayWindow < 0:
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	case cfg.Policy != Revoke && cfg.Policy != ReportOnly:
		return nil, fmt.Errorf("%w: unknown policy %d", ErrInvalidConfig, cfg.Policy)
	}
	if cfg.Reporter == "" {
		cfg.Reporter = "github"
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.ReplayWindow == 0 {
		cfg.ReplayWindow = DefaultReplayWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg}
	h.replay.limit, h.replay.seen = maxReplays, map[[sha256.Size]byte]*handled{}
	return h, nil
}

// report is one token of a report, as GitHub sends it.
type report struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// Label is the answer for one token, in GitHub's format.
type Label struct {
	TokenRaw  string `json:"token_raw"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// The labels of a [Label].
const (
	TruePositive  = "true_positive"
	FalsePositive = "false_positive"
)

// ServeHTTP handles one report.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		problem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "Reports are POSTed.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		problem(w, r, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("A report may have at most %d bytes.", h.cfg.MaxBodyBytes))
		return
	}
	id, err := h.verify(r.Context(), r.Header, body)
	if err != nil {
		status, code, detail := http.StatusUnauthorized, "invalid_signature", "The report is not signed by a known key."
		if !errors.Is(err, ErrUnknownKey) && !errors.Is(err, errBadSignature) {
			status, code, detail = http.StatusServiceUnavailable, "unavailable", "The signing keys cannot be fetched; try again later."
		}
		h.cfg.Logger.WarnContext(r.Context(), "secretscan: report refused", "error", err)
		problem(w, r, status, code, detail)
		return
	}
	var reports []report
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&reports); err != nil || dec.More() {
		problem(w, r, http.StatusBadRequest, "invalid_json", "A report is a JSON array of {token, type, url, source}.")
		return
	}
	if len(reports) > h.cfg.MaxBatch {
		problem(w, r, http.StatusRequestEntityTooLarge, "batch_too_large", fmt.Sprintf("A report may hold at most %d tokens.", h.cfg.MaxBatch))
		return
	}
	a, first := h.replay.claim(id, h.cfg.Now(), h.cfg.ReplayWindow)
	if !first {
		// The same report again (GitHub's retry, or a replay however its
		// signature is spelled): the first answer, once it is known.
		select {
		case <-a.done:
		case <-r.Context().Done():
			problem(w, r, http.StatusServiceUnavailable, "unavailable", "The report is still being handled; send it again later.")
			return
		}
		if a.positive == nil {
			problem(w, r, http.StatusServiceUnavailable, "unavailable", "The key store is unavailable; send the report again later.")
			return
		}
		answer(w, reports, a.positive)
		return
	}
	positive := make([]byte, (len(reports)+7)/8)
	for i, rep := range reports {
		outcome, err := h.cfg.Manager.HandleLeak(r.Context(), keygate.Leak{Token: rep.Token, Reporter: h.cfg.Reporter, URL: rep.URL, Source: rep.Source}, h.cfg.Policy == Revoke)
		if err != nil {
			// Let the scanner send it again: forget that it was seen.
			h.replay.fail(id, a)
			h.cfg.Logger.ErrorContext(r.Context(), "secretscan: handling a report failed", "error", err)
			problem(w, r, http.StatusServiceUnavailable, "unavailable", "The key store is unavailable; send the report again later.")
			return
		}
		if outcome.Real() {
			positive[i/8] |= 1 << (i % 8)
		}
	}
	h.replay.done(a, positive)
	answer(w, reports, positive)
}

// answer writes the labels of reports: bit i of positive says whether
// token i is a true positive.
func answer(w http.ResponseWriter, reports []report, positive []byte) {
	labels := make([]Label, len(reports))
	for i, rep := range reports {
		labels[i] = Label{TokenRaw: rep.Token, TokenType: rep.Type, Label: FalsePositive}
		if positive[i/8]&(1<<(i%8)) != 0 {
			labels[i].Label = TruePositive
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(labels)
}

// errBadSignature means a report's signature is missing or wrong.
var errBadSignature = errors.New("secretscan: missing or invalid signature")

// verify checks body's signature, and returns body's SHA-256, which it
// signs.
func (h *Handler) verify(ctx context.Context, header http.Header, body []byte) (digest [sha256.Size]byte, _ error) {
	id, sig64 := header.Get(HeaderKeyID), header.Get(HeaderSignature)
	if id == "" || sig64 == "" {
		return digest, errBadSignature
	}
	sig, err := base64.StdEncoding.DecodeString(sig64)
	if err != nil {
		return digest, errBadSignature
	}
	pub, err := h.cfg.Keys.PublicKey(ctx, id)
	if err != nil {
		return digest, err
	}
	digest = sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return digest, errBadSignature
	}
	return digest, nil
}

// problem writes an RFC 9457 problem.
func problem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	middleware.WriteProblem(w, r, &middleware.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail})
}

// maxReplays bounds the reports remembered against replay.
const maxReplays = 100000

// replays remembers the reports handled recently, by the SHA-256 of their
// body (what GitHub signs: a report is the same however its signature is
// spelled), with their answer. It is safe for concurrent use.
//
// Each report takes about 250 bytes and one bit per token (at most
// Config.MaxBatch), so that maxReplays of them fit in some tens of MB.
type replays struct {
	mu    sync.Mutex
	limit int // maxReplays; smaller in tests
	seen  map[[sha256.Size]byte]*handled
}

// handled is one report, being handled until done is closed.
type handled struct {
	done chan struct{}
	at   time.Time // when it arrived
	// positive, set before done is closed, has bit i set when token i is
	// a true positive; nil when handling the report failed.
	positive []byte
}

// claim returns the report of id, and whether this call is its first
// within window of now: then the caller handles it and calls done or fail.
// When full, it forgets the handled reports older than window, then, if
// need be, arbitrary handled ones, down to 7/8 of the limit (so that the
// next ones do not each scan the whole map).
func (r *replays) claim(id [sha256.Size]byte, now time.Time, window time.Duration) (*handled, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.seen[id]; ok && (!closed(a.done) || now.Sub(a.at) < window) {
		return a, false
	}
	if len(r.seen) >= r.limit {
		for k, a := range r.seen {
			if closed(a.done) && now.Sub(a.at) >= window {
				delete(r.seen, k)
			}
		}
		for k, a := range r.seen {
			if len(r.seen) <= r.limit-r.limit/8 {
				break
			}
			if closed(a.done) {
				delete(r.seen, k)
			}
		}
	}
	a := &handled{done: make(chan struct{}), at: now}
	r.seen[id] = a
	return a, true
}

// done records the answer of a report claimed first.
func (r *replays) done(a *handled, positive []byte) {
	r.mu.Lock()
	a.positive = positive
	close(a.done)
	r.mu.Unlock()
}

// fail forgets a report claimed first whose handling failed, so that it
// can be sent again; the copies waiting for it fail too.
func (r *replays) fail(id [sha256.Size]byte, a *handled) {
	r.mu.Lock()
	if r.seen[id] == a {
		delete(r.seen, id)
	}
	close(a.done)
	r.mu.Unlock()
}

// closed reports whether c is closed.
func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// GitHubKeysURL is where GitHub publishes the keys that sign secret
// scanning reports.
const GitHubKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// GitHubKeys is a KeySource of the keys GitHub publishes, fetched over
// HTTPS on first use and again when a report names an unknown key id.
//
// Fetches are bounded whatever the rate of requests, so that reports
// GitHub did not sign cannot make this service hammer GitHub: one fetch
// at a time, shared by every lookup that needs it; after a successful
// one, at most one a minute; after a failed one, none for a backoff that
// doubles from a second to a minute, during which a lookup that needs one
// gets the failure again at once (503 from the [Handler], so GitHub
// retries). A lookup of a key already fetched never waits for a fetch.
// A fetch is bounded by 10 s, and by the http.Client's own timeout.
//
// It is safe for concurrent use.
type GitHubKeys struct {
	client *http.Client
	url    string
	now    func() time.Time

	mu sync.Mutex
	// keys are the keys of the last successful fetch.
	keys map[string]*ecdsa.PublicKey
	// next is when a fetch may start again.
	next time.Time
	// failures counts the fetches failed in a row, and err is the last
	// one's error (nil after a success).
	failures int
	err      error
	// flight is closed when the fetch under way ends; nil when none is.
	flight chan struct{}
}

// NewGitHubKeys returns a GitHubKeys fetching url (GitHubKeysURL when
// empty) with client (http.DefaultClient when nil; give it a timeout).
func NewGitHubKeys(client *http.Client, url string) *GitHubKeys {
	if client == nil {
		client = http.DefaultClient
	}
	if url == "" {
		url = GitHubKeysURL
	}
	return &GitHubKeys{client: client, url: url, now: time.Now}
}

// The bounds of GitHubKeys' fetches.
const (
	// refetchEvery bounds how often unknown key ids make GitHubKeys fetch,
	// and the backoff after failures.
	refetchEvery = time.Minute
	// firstBackoff is the wait after a failed fetch, doubled by each
	// further failure.
	firstBackoff = time.Second
	// fetchTimeout bounds one fetch.
	fetchTimeout = 10 * time.Second
)

// PublicKey implements KeySource.
func (g *GitHubKeys) PublicKey(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	for {
		g.mu.Lock()
		if pub, ok := g.keys[id]; ok {
			g.mu.Unlock()
			return pub, nil
		}
		flight := g.flight
		if flight == nil {
			if g.now().Before(g.next) {
				err := g.err
				g.mu.Unlock()
				if err == nil {
					err = fmt.Errorf("%w: %q", ErrUnknownKey, id)
				}
				return nil, err
			}
			flight = make(chan struct{})
			g.flight = flight
			g.mu.Unlock()
			g.refresh(ctx, flight)
			continue
		}
		g.mu.Unlock()
		select {
		case <-flight:
		case <-ctx.Done():
			return nil, fmt.Errorf("secretscan: fetch keys: %w", ctx.Err())
		}
	}
}

// refresh fetches the keys, records the outcome and ends flight. The
// fetch is not cancelled with ctx, the request of whichever lookup
// started it: the others wait for it too.
func (g *GitHubKeys) refresh(ctx context.Context, flight chan struct{}) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	keys, err := g.fetch(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if err != nil {
		g.failures++
		g.err = err
		g.next = now.Add(min(firstBackoff<<min(g.failures-1, 16), refetchEvery))
	} else {
		g.keys, g.failures, g.err = keys, 0, nil
		g.next = now.Add(refetchEvery)
	}
	g.flight = nil
	close(flight)
}

// fetch reads GitHub's key list.
func (g *GitHubKeys) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return nil, fmt.Errorf("secretscan: fetch keys: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("secretscan: fetch keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("secretscan: fetch keys: status %d", resp.StatusCode)
	}
	var doc struct {
		PublicKeys []struct {
			ID  string `json:"key_identifier"`
			Key string `json:"key"`
		} `json:"public_keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("secretscan: fetch keys: %w", err)
	}
	keys := make(map[string]*ecdsa.PublicKey, len(doc.PublicKeys))
	for _, k := range doc.PublicKeys {
		pub, err := ParsePublicKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("secretscan: fetch keys: key %q: %w", k.ID, err)
		}
		keys[k.ID] = pub
	}
	return keys, nil
}

// ParsePublicKey parses a PEM "PUBLIC KEY" block holding an ECDSA key, as
// GitHub publishes them.
func ParsePublicKey(pemText string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("secretscan: no PEM block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("secretscan: %w", err)
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("secretscan: not an ECDSA key")
	}
	return pub, nil
}

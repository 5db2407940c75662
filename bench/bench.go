package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store/memory"
)

// Case is one benchmark of the comparison.
type Case struct {
	// ID names the case as a sub-benchmark, e.g. "KeygateCached".
	ID string
	// Title describes it in the table.
	Title string
	// Parallel reports whether Run uses b.RunParallel.
	Parallel bool
	// Run is the benchmark.
	Run func(b *testing.B)
}

// Argon2id parameters: OWASP's recommended minimum (m=19 MiB, t=2, p=1),
// the cheapest common setting, so the comparison favours argon2id. RFC 9106's
// second recommendation (m=64 MiB, t=3, p=4) costs several times more.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
)

// BcryptCost is the bcrypt cost of the bcrypt key store: the library's
// default.
const BcryptCost = bcrypt.DefaultCost

// Cases returns every case, the keygate cached serial case first: the
// others are compared with it.
func Cases() []Case {
	return []Case{
		{ID: "KeygateCached", Title: "keygate Verify+Authorize, cached", Run: serial(keygateCached)},
		{ID: "KeygateCachedParallel", Title: "keygate Verify+Authorize, cached", Parallel: true, Run: parallel(keygateCached)},
		{ID: "KeygateMiddleware", Title: "keygate middleware Verify+Require, cached, per request¹", Run: serial(keygateMiddleware)},
		{ID: "KeygateMiddlewareParallel", Title: "keygate middleware Verify+Require, cached, per request¹", Parallel: true, Run: parallel(keygateMiddleware)},
		{ID: "KeygateUncached", Title: "keygate Verify, uncached (memory store lookup)", Run: serial(keygateUncached)},
		{ID: "SHA256", Title: "reference: one SHA-256 of a token", Run: serial(sha256Token)},
		{ID: "JWTHS256", Title: "golang-jwt v5 HS256 parse+validate", Run: serial(jwtHS256)},
		{ID: "JWTHS256Parallel", Title: "golang-jwt v5 HS256 parse+validate", Parallel: true, Run: parallel(jwtHS256)},
		{ID: "JWTEdDSA", Title: "golang-jwt v5 EdDSA (Ed25519) parse+validate", Run: serial(jwtEdDSA)},
		{ID: "JWTEdDSAParallel", Title: "golang-jwt v5 EdDSA (Ed25519) parse+validate", Parallel: true, Run: parallel(jwtEdDSA)},
		{ID: "Casbin", Title: "casbin v2 RBAC-with-domains Enforce, 100 policies", Run: serial(casbinEnforce)},
		{ID: "CasbinParallel", Title: "casbin v2 RBAC-with-domains Enforce, 100 policies (SyncedEnforcer)", Parallel: true, Run: parallel(casbinEnforce)},
		{ID: "Bcrypt", Title: fmt.Sprintf("bcrypt key store verify (cost %d)", BcryptCost), Run: serial(bcryptStore)},
		{ID: "Argon2id", Title: fmt.Sprintf("argon2id key store verify (m=%d MiB, t=%d, p=%d)", argonMemory/1024, argonTime, argonThreads), Run: serial(argon2Store)},
	}
}

// loop runs op b.N times, serially with b.Loop or with b.RunParallel,
// failing the benchmark on the first error.
func loop(b *testing.B, parallel bool, op func() error) {
	b.Helper()
	if err := op(); err != nil { // the path timed must be the success path
		b.Fatal(err)
	}
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// serial and parallel turn a case body into a serial or parallel benchmark.
func serial(run func(b *testing.B, parallel bool)) func(b *testing.B) {
	return func(b *testing.B) { run(b, false) }
}

func parallel(run func(b *testing.B, parallel bool)) func(b *testing.B) {
	return func(b *testing.B) { run(b, true) }
}

// keygateFixture is a Manager with one viewer key in workspace ws-7.
type keygateFixture struct {
	m     *keygate.Manager
	token string
}

// newKeygate returns a keygateFixture with the cache TTL given, its
// configuration changed by edit.
func newKeygate(b *testing.B, cacheTTL time.Duration, edit ...func(*keygate.Config)) *keygateFixture {
	b.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{0x5a}, 32)})
	if err != nil {
		b.Fatal(err)
	}
	cfg := keygate.Config{
		Store:    memory.New(),
		Hasher:   hasher,
		Logger:   slog.New(slog.DiscardHandler),
		CacheTTL: cacheTTL,
	}
	for _, e := range edit {
		e(&cfg)
	}
	m, err := keygate.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	created, err := m.Create(context.Background(), keygate.System(), keygate.CreateRequest{
		Name: "bench", Workspace: "ws-7", Role: "viewer", Expiry: keygate.ExpireAfterDays(90),
	})
	if err != nil {
		b.Fatal(err)
	}
	return &keygateFixture{m: m, token: created.Token.Reveal()}
}

func keygateCached(b *testing.B, par bool) {
	cachedVerifyAuthorize(b, par, newKeygate(b, 0)) // default TTL
}

// cachedVerifyAuthorize measures Verify+Authorize of f's key, cached
// unless f's Manager has no cache.
func cachedVerifyAuthorize(b *testing.B, par bool, f *keygateFixture) {
	ctx := context.Background()
	perm, err := permission.Parse("cluster:read")
	if err != nil {
		b.Fatal(err)
	}
	loop(b, par, func() error {
		k, err := f.m.Verify(ctx, f.token)
		if err != nil {
			return err
		}
		return f.m.Authorize(k, perm, "ws-7")
	})
}

func keygateUncached(b *testing.B, par bool) {
	f := newKeygate(b, -1) // negative disables the cache
	ctx := context.Background()
	loop(b, par, func() error {
		_, err := f.m.Verify(ctx, f.token)
		return err
	})
}

func keygateMiddleware(b *testing.B, par bool) {
	f := newKeygate(b, 0)
	mw, err := middleware.New(middleware.Config{Verifier: f.m})
	if err != nil {
		b.Fatal(err)
	}
	h := mw.Verify(mw.MustRequire(middleware.PathValue("workspace"), "cluster:read")(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })))
	req := httptest.NewRequest(http.MethodGet, "/workspaces/ws-7/clusters", nil)
	req.SetPathValue("workspace", "ws-7")
	req.Header.Set("Authorization", "Api-Key "+f.token)
	loop(b, par, func() error {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			return fmt.Errorf("middleware answered %d", w.Code)
		}
		return nil
	})
}

func sha256Token(b *testing.B, par bool) {
	f := newKeygate(b, 0)
	var sink [sha256.Size]byte
	token := []byte(f.token)
	loop(b, par, func() error {
		sink = sha256.Sum256(token)
		return nil
	})
	_ = sink
}

// jwtClaims are the claims an API would put in an access token, with the
// granted scopes.
type jwtClaims struct {
	Workspace string   `json:"ws"`
	Scopes    []string `json:"scp"`
	jwt.RegisteredClaims
}

func newClaims() jwtClaims {
	now := time.Now()
	return jwtClaims{
		Workspace: "ws-7",
		Scopes:    []string{"cluster:read", "app:read"},
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "https://auth.example.com",
			Subject:   "key-0123456789",
			Audience:  jwt.ClaimStrings{"https://api.example.com"},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        "01J00000000000000000000000",
		},
	}
}

// benchJWT parses and validates a token signed with method: signature,
// algorithm, issuer, audience, expiry (required), not-before.
func benchJWT(b *testing.B, par bool, method jwt.SigningMethod, signKey, verifyKey any) {
	b.Helper()
	signed, err := jwt.NewWithClaims(method, newClaims()).SignedString(signKey)
	if err != nil {
		b.Fatal(err)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{method.Alg()}),
		jwt.WithIssuer("https://auth.example.com"),
		jwt.WithAudience("https://api.example.com"),
		jwt.WithExpirationRequired(),
	)
	keyFunc := func(*jwt.Token) (any, error) { return verifyKey, nil }
	loop(b, par, func() error {
		var c jwtClaims
		tok, err := parser.ParseWithClaims(signed, &c, keyFunc)
		if err != nil {
			return err
		}
		if !tok.Valid || c.Workspace != "ws-7" {
			return errors.New("jwt: token not valid")
		}
		return nil
	})
}

func jwtHS256(b *testing.B, par bool) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	benchJWT(b, par, jwt.SigningMethodHS256, secret, secret)
}

func jwtEdDSA(b *testing.B, par bool) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	benchJWT(b, par, jwt.SigningMethodEdDSA, priv, pub)
}

// casbinModel is casbin's RBAC-with-domains model
// (examples/rbac_with_domains_model.conf).
const casbinModel = `
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
`

// casbinEnforcer is the enforcer interface both casbin enforcers implement.
type casbinEnforcer interface {
	AddPolicies(rules [][]string) (bool, error)
	AddGroupingPolicies(rules [][]string) (bool, error)
	Enforce(rvals ...any) (bool, error)
}

// casbinEnforce builds 10 workspaces, each with a viewer role (read on 5
// resources) and an editor role (write on them, inheriting viewer): 100
// policies, 10 role inheritances and 50 keys holding a role. It asks
// whether an editor key may read a cluster in its workspace, which
// resolves through the inheritance. The parallel case uses the
// SyncedEnforcer a concurrent server needs.
func casbinEnforce(b *testing.B, par bool) {
	m, err := model.NewModelFromString(casbinModel)
	if err != nil {
		b.Fatal(err)
	}
	var e casbinEnforcer
	if par {
		e, err = casbin.NewSyncedEnforcer(m)
	} else {
		e, err = casbin.NewEnforcer(m)
	}
	if err != nil {
		b.Fatal(err)
	}
	var policies, groups [][]string
	resources := []string{"cluster", "app", "node", "billing", "secret"}
	for d := range 10 {
		dom := fmt.Sprintf("ws-%d", d)
		for _, obj := range resources {
			policies = append(policies, []string{"viewer", dom, obj, "read"}, []string{"editor", dom, obj, "write"})
		}
		groups = append(groups, []string{"editor", "viewer", dom})
	}
	for k := range 50 {
		role := "viewer"
		if k%2 == 1 {
			role = "editor"
		}
		groups = append(groups, []string{fmt.Sprintf("key-%d", k), role, fmt.Sprintf("ws-%d", k%10)})
	}
	if _, err := e.AddPolicies(policies); err != nil {
		b.Fatal(err)
	}
	if _, err := e.AddGroupingPolicies(groups); err != nil {
		b.Fatal(err)
	}
	loop(b, par, func() error {
		ok, err := e.Enforce("key-7", "ws-7", "cluster", "read") // key-7 is an editor in ws-7
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("casbin: denied")
		}
		return nil
	})
}

// slowStore is a key store that keeps a salted slow hash of each key's
// secret. A salted hash cannot be looked up, so tokens carry the key id in
// clear: "<id>.<secret>"; verification finds the record by id and hashes the
// secret again.
type slowStore struct {
	records map[string][]byte
	verify  func(stored []byte, secret string) bool
}

func (s *slowStore) Verify(token string) error {
	id, secret, ok := strings.Cut(token, ".")
	if !ok {
		return errors.New("slowStore: malformed token")
	}
	stored, ok := s.records[id]
	if !ok || !s.verify(stored, secret) {
		return errors.New("slowStore: invalid token")
	}
	return nil
}

// newSecret returns a random 43-character base64url secret, like a keygate
// token's 256 bits.
func newSecret(b *testing.B) string {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		b.Fatal(err)
	}
	return fmt.Sprintf("%x", raw)[:43]
}

func bcryptStore(b *testing.B, par bool) {
	secret := newSecret(b)
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), BcryptCost)
	if err != nil {
		b.Fatal(err)
	}
	s := &slowStore{
		records: map[string][]byte{"key-7": hash},
		verify: func(stored []byte, secret string) bool {
			return bcrypt.CompareHashAndPassword(stored, []byte(secret)) == nil
		},
	}
	token := "key-7." + secret
	loop(b, par, func() error { return s.Verify(token) })
}

func argon2Store(b *testing.B, par bool) {
	secret := newSecret(b)
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		b.Fatal(err)
	}
	derive := func(salt []byte, secret string) []byte {
		return argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	}
	s := &slowStore{
		records: map[string][]byte{"key-7": append(salt, derive(salt, secret)...)},
		verify: func(stored []byte, secret string) bool {
			return subtle.ConstantTimeCompare(stored[16:], derive(stored[:16], secret)) == 1
		},
	}
	token := "key-7." + secret
	loop(b, par, func() error { return s.Verify(token) })
}

package keygate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
)

// clock is a settable test clock. Reading it is one atomic load: no lock,
// no write to shared memory, so that it does not limit the benchmarks'
// scaling with cores.
type clock struct {
	ns atomic.Int64 // Unix nanoseconds
}

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time {
	return time.Unix(0, c.ns.Load()).UTC()
}

func (c *clock) Advance(d time.Duration) {
	c.ns.Add(int64(d))
}

// recorder is an Auditor that keeps events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Audit(_ context.Context, e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) types() []EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []EventType
	for _, e := range r.events {
		ts = append(ts, e.Type)
	}
	return ts
}

func (r *recorder) last() Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return Event{}
	}
	return r.events[len(r.events)-1]
}

// countingStore counts calls and can be made to fail.
type countingStore struct {
	store.Store
	getByHash atomic.Int64
	touches   atomic.Int64
	fail      atomic.Bool
	// gate, when set, holds every GetByHash, after it has read the store,
	// until it is closed.
	gate chan struct{}
	// panicOnce makes the next GetByHash panic after the gate.
	panicOnce atomic.Bool
	// onUpdate, when set, is called after each successful Update.
	onUpdate func()
	// failRetire makes Retire fail.
	failRetire atomic.Bool
	// retiredChecks counts Retired calls; failRetiredCheck makes them fail.
	retiredChecks    atomic.Int64
	failRetiredCheck atomic.Bool
	// usageWrites counts RecordUsage calls.
	usageWrites atomic.Int64
}

// Retire and Retired pass the memory store's store.Retirer on.
func (s *countingStore) Retire(ctx context.Context, rs []store.RetiredHash) error {
	if s.fail.Load() || s.failRetire.Load() {
		return errStoreDown
	}
	return s.Store.(store.Retirer).Retire(ctx, rs)
}

func (s *countingStore) Retired(ctx context.Context, hashes ...[]byte) (bool, error) {
	s.retiredChecks.Add(1)
	if s.fail.Load() || s.failRetiredCheck.Load() {
		return false, errStoreDown
	}
	return s.Store.(store.Retirer).Retired(ctx, hashes...)
}

// RecordExercises and Exercises pass the memory store's capability on
// (Revoke is left out on purpose: the Manager's fallback for stores
// without store.Revoker is tested through this store).
func (s *countingStore) RecordExercises(ctx context.Context, es []store.Exercise) error {
	if s.fail.Load() {
		return errStoreDown
	}
	return s.Store.(store.ExerciseRecorder).RecordExercises(ctx, es)
}

func (s *countingStore) Exercises(ctx context.Context, id uuid.UUID) ([]store.Exercise, error) {
	return s.Store.(store.ExerciseRecorder).Exercises(ctx, id)
}

// RecordUsage, Usage and PurgeUsage pass the memory store's
// store.UsageRecorder on; recording fails while the store is down.
func (s *countingStore) RecordUsage(ctx context.Context, cs []store.UsageCount) error {
	s.usageWrites.Add(1)
	if s.fail.Load() {
		return errStoreDown
	}
	return s.Store.(store.UsageRecorder).RecordUsage(ctx, cs)
}

func (s *countingStore) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageCount, error) {
	if s.fail.Load() {
		return nil, errStoreDown
	}
	return s.Store.(store.UsageRecorder).Usage(ctx, q)
}

func (s *countingStore) PurgeUsage(ctx context.Context, before time.Time) (int64, error) {
	if s.fail.Load() {
		return 0, errStoreDown
	}
	return s.Store.(store.UsageRecorder).PurgeUsage(ctx, before)
}

func (s *countingStore) Update(ctx context.Context, k *store.Key) error {
	err := s.Store.Update(ctx, k)
	if err == nil && s.onUpdate != nil {
		s.onUpdate()
	}
	return err
}

var errStoreDown = errors.New("connection refused")

func (s *countingStore) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	s.getByHash.Add(1)
	if s.fail.Load() {
		return nil, errStoreDown
	}
	k, err := s.Store.GetByHash(ctx, hash)
	if s.gate != nil {
		<-s.gate // stall after reading, as a slow network would
	}
	if s.panicOnce.CompareAndSwap(true, false) {
		panic("store exploded")
	}
	return k, err
}

func (s *countingStore) ConsumeUse(ctx context.Context, id uuid.UUID) (int64, error) {
	if s.fail.Load() {
		return 0, errStoreDown
	}
	return s.Store.ConsumeUse(ctx, id)
}

// SpendUses and SpendCredits pass the memory store's on, failing as
// ConsumeUse does.
func (s *countingStore) SpendUses(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	if s.fail.Load() {
		return 0, errStoreDown
	}
	return s.Store.(store.UseSpender).SpendUses(ctx, id, cost, now)
}

func (s *countingStore) SpendCredits(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	if s.fail.Load() {
		return 0, errStoreDown
	}
	return s.Store.(store.CreditSpender).SpendCredits(ctx, id, cost, now)
}

func (s *countingStore) TouchLastUsed(ctx context.Context, used map[uuid.UUID]time.Time) error {
	s.touches.Add(1)
	if s.fail.Load() {
		return errStoreDown
	}
	return s.Store.TouchLastUsed(ctx, used)
}

func (s *countingStore) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	if s.fail.Load() {
		return nil, errStoreDown
	}
	return s.Store.Get(ctx, id)
}

type fixture struct {
	m     *Manager
	store *countingStore
	clock *clock
	audit *recorder
	cfg   Config
}

func testHasher(t testing.TB, ids ...string) *apikey.Hasher {
	t.Helper()
	if len(ids) == 0 {
		ids = []string{"p1"}
	}
	var peppers []apikey.Pepper
	for _, id := range ids {
		peppers = append(peppers, apikey.Pepper{ID: id, Key: bytes.Repeat([]byte(id), 32)})
	}
	h, err := apikey.NewHasher(peppers[0], peppers[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newFixture(t testing.TB, edit ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{store: &countingStore{Store: memory.New()}, clock: newClock(), audit: &recorder{}}
	f.cfg = Config{
		Store:            f.store,
		Hasher:           testHasher(t),
		Auditor:          f.audit,
		Now:              f.clock.Now,
		LastUsedInterval: -1,
	}
	for _, e := range edit {
		e(&f.cfg)
	}
	m, err := New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	f.m = m
	return f
}

func (f *fixture) create(t testing.TB, req CreateRequest) *Created {
	t.Helper()
	if req.Name == "" {
		req.Name = "key-" + uuid.NewString()
	}
	if req.Role == "" && req.Scopes == nil {
		req.Role = permission.RoleAdmin
	}
	if req.Expiry == (Expiry{}) {
		req.Expiry = ExpireAfterDays(30)
	}
	c, err := f.m.Create(context.Background(), System(), req)
	if err != nil {
		t.Fatalf("Create(%q): %v", req.Name, err)
	}
	return c
}

func mustPerm(t testing.TB, s string) permission.Permission {
	t.Helper()
	p, err := permission.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	h := testHasher(t)
	for name, cfg := range map[string]Config{
		"no store":  {Hasher: h},
		"no hasher": {Store: memory.New()},
		// The zero Hasher hashes every token to nil: its keys never verify.
		"zero hasher": {Store: memory.New(), Hasher: &apikey.Hasher{}},
		"bad prefix":  {Store: memory.New(), Hasher: h, Prefix: "Bad-Prefix"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%s) = nil error, want an error", name)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.create(t, CreateRequest{Name: "taken", Workspace: "tiger", Role: "editor"})
	past := f.clock.Now().Add(-time.Hour)
	long := strings.Repeat("x", MaxNameLength+1)
	neg := int64(-1)
	tests := []struct {
		name string
		req  CreateRequest
		want error
	}{
		{"no name", CreateRequest{Role: "admin", Expiry: NeverExpire()}, ErrNameRequired},
		{"no expiry", CreateRequest{Name: "a", Role: "admin"}, ErrInvalidExpiry},
		{"expiry in the past", CreateRequest{Name: "a", Role: "admin", Expiry: ExpireAt(past)}, ErrInvalidExpiry},
		{"expiry now", CreateRequest{Name: "a", Role: "admin", Expiry: ExpireAt(f.clock.Now())}, ErrInvalidExpiry},
		{"negative duration", CreateRequest{Name: "a", Role: "admin", Expiry: ExpireAfter(-time.Hour)}, ErrInvalidExpiry},
		{"editor without workspace", CreateRequest{Name: "a", Role: "Editor", Expiry: NeverExpire()}, ErrWorkspaceRequired},
		{"viewer without workspace", CreateRequest{Name: "a", Role: "viewer", Expiry: NeverExpire()}, ErrWorkspaceRequired},
		{"unknown role", CreateRequest{Name: "a", Role: "janitor", Expiry: NeverExpire()}, ErrUnknownRole},
		{"malformed scope", CreateRequest{Name: "a", Scopes: []string{"cluster read"}, Expiry: NeverExpire()}, ErrInvalidScope},
		{"no permissions", CreateRequest{Name: "a", Expiry: NeverExpire()}, ErrNoPermissions},
		{"duplicate name in workspace", CreateRequest{Name: "taken", Workspace: "tiger", Role: "viewer", Expiry: NeverExpire()}, ErrDuplicateName},
		{"name too long", CreateRequest{Name: long, Role: "admin", Expiry: NeverExpire()}, ErrInvalidField},
		{"name with trailing space", CreateRequest{Name: "taken ", Workspace: "tiger", Role: "viewer", Expiry: NeverExpire()}, ErrInvalidField},
		{"workspace with trailing space", CreateRequest{Name: "a", Workspace: "tiger ", Role: "viewer", Expiry: NeverExpire()}, ErrInvalidField},
		{"owner with a newline", CreateRequest{Name: "a", Owner: "al\nice", Role: "admin", Expiry: NeverExpire()}, ErrInvalidField},
		{"name not UTF-8", CreateRequest{Name: "\xff", Role: "admin", Expiry: NeverExpire()}, ErrInvalidField},
		{"too many metadata", CreateRequest{Name: "a", Role: "admin", Expiry: NeverExpire(), Metadata: bigMap(MaxMetadataEntries + 1)}, ErrInvalidField},
		{"negative uses", CreateRequest{Name: "a", Role: "admin", Expiry: NeverExpire(), Limits: Limits{Uses: &neg}}, ErrInvalidField},
		{"rate without window", CreateRequest{Name: "a", Role: "admin", Expiry: NeverExpire(), Limits: Limits{Rate: RateLimit{Requests: 5}}}, ErrInvalidField},
		{"invalid CIDR", CreateRequest{Name: "a", Role: "admin", Expiry: NeverExpire(), Limits: Limits{AllowedCIDRs: []netip.Prefix{{}}}}, ErrInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.m.Create(context.Background(), System(), tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Create: got %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("Create: %v does not wrap ErrInvalidRequest", err)
			}
		})
	}
	page, err := f.m.List(context.Background(), System(), ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Keys) != 1 {
		t.Errorf("after rejected creates: %d keys stored, want 1", len(page.Keys))
	}
}

func bigMap(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprint("k", i)] = "v"
	}
	return m
}

func TestCreateAndVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{
		Name: "ci", Description: "CI pipeline", Owner: "alice", Workspace: "tiger",
		Role: "Editor", Scopes: []string{"billing:write", "app/payments:deploy"},
		Metadata: map[string]string{"team": "infra"}, Expiry: ExpireAfterDays(7),
	})
	rec := c.Key
	if rec.Role != "editor" || rec.Workspace != "tiger" || rec.Owner != "alice" || rec.Version != 1 {
		t.Errorf("record = %+v", rec)
	}
	if want := f.clock.Now().Add(7 * 24 * time.Hour); !rec.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", rec.ExpiresAt, want)
	}
	if !strings.HasPrefix(c.Token.Reveal(), "kg_") || rec.Hint != c.Token.Hint() {
		t.Errorf("token %q, hint %q", c.Token.Hint(), rec.Hint)
	}
	if bytes.Contains(rec.Hash, []byte(c.Token.Reveal())) || len(rec.Hash) != 32 || rec.PepperID != "p1" {
		t.Errorf("stored hash %x under %q", rec.Hash, rec.PepperID)
	}
	if s := fmt.Sprintf("%v %+v %s", c, c, c.Token); strings.Contains(s, c.Token.Reveal()) {
		t.Errorf("printing a Created reveals the token: %s", s)
	}

	k, err := f.m.Verify(ctx, c.Token.Reveal())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if k.ID != rec.ID || k.Name != "ci" {
		t.Errorf("Verify returned %v, want key %v", k.ID, rec.ID)
	}
	checks := []struct {
		perm, ws string
		want     bool
	}{
		{"cluster:read", "tiger", true},
		{"cluster:write", "tiger", true},
		{"cluster:delete", "tiger", false},
		{"cluster:read", "lion", false},
		{"cluster:read", "", false},
		{"billing:write", "tiger", true},
		{"app/payments:deploy", "tiger", true},
		{"app/orders:deploy", "tiger", false},
		{"apikey:manage", "tiger", false},
		{"apikey:view", "tiger", false},
	}
	for _, c := range checks {
		p := mustPerm(t, c.perm)
		if got := k.Allows(p, c.ws); got != c.want {
			t.Errorf("Allows(%s, %q) = %v, want %v", c.perm, c.ws, got, c.want)
		}
		if err := f.m.Authorize(k, p, c.ws); (err == nil) != c.want || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("Authorize(%s, %q) = %v, want allowed=%v", c.perm, c.ws, err, c.want)
		}
	}
	if f.m.Authorize(nil, mustPerm(t, "cluster:read"), "tiger") == nil {
		t.Error("Authorize(nil key) allowed")
	}
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	good := f.create(t, CreateRequest{}).Token.Reveal()
	other, _ := apikey.NewFormat("other")
	foreign, _ := other.Generate()
	unknown, _ := f.m.format.Generate()
	typo := []byte(good)
	typo[10] = otherChar(typo[10])
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrMalformed},
		{"garbage", "not a token", ErrMalformed},
		{"typo", string(typo), apikey.ErrChecksum},
		{"foreign prefix", foreign.Reveal(), apikey.ErrPrefix},
		{"unknown", unknown.Reveal(), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.store.getByHash.Load()
			_, err := f.m.Verify(ctx, tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if tt.want != ErrInvalid && f.store.getByHash.Load() != before {
				t.Errorf("a malformed token reached the store")
			}
			if e := f.audit.last(); e.Type != EventVerificationFailed {
				t.Errorf("last audit event = %v, want %v", e.Type, EventVerificationFailed)
			}
		})
	}
}

func TestExpiryAndRevocation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{Expiry: ExpireAfterDays(7)})
	tok := c.Token.Reveal()
	if _, err := f.m.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(7*24*time.Hour - time.Second)
	if _, err := f.m.Verify(ctx, tok); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.m.Verify(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: got %v, want ErrExpired", err)
	}

	never := f.create(t, CreateRequest{Expiry: NeverExpire()})
	f.clock.Advance(100 * 365 * 24 * time.Hour)
	if _, err := f.m.Verify(ctx, never.Token.Reveal()); err != nil {
		t.Fatalf("never-expiring key after a century: %v", err)
	}
	// Revoke while the key is cached: the next request must fail.
	rec, err := f.m.Revoke(ctx, System(), never.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.RevokedAt.IsZero() {
		t.Error("Revoke returned a key without RevokedAt")
	}
	if _, err := f.m.Verify(ctx, never.Token.Reveal()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after revoke: got %v, want ErrRevoked", err)
	}
	again, err := f.m.Revoke(ctx, System(), never.Key.ID)
	if err != nil || !again.RevokedAt.Equal(rec.RevokedAt) {
		t.Errorf("second revoke = %v, %v; want no error and the first revocation time", again, err)
	}
	if _, err := f.m.Regenerate(ctx, System(), never.Key.ID, RegenerateRequest{Expiry: NeverExpire()}); !errors.Is(err, ErrRevoked) {
		t.Errorf("regenerate revoked key: got %v, want ErrRevoked", err)
	}
	if got := f.audit.types(); !contains(got, EventRevoked) {
		t.Errorf("audit events %v lack %v", got, EventRevoked)
	}
}

// otherChar returns a base62 character other than c, for typos the checksum
// must catch.
func otherChar(c byte) byte {
	if c == 'a' {
		return 'b'
	}
	return 'a'
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{Name: "gone", Workspace: "w", Role: "viewer"})
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Delete(ctx, System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); !errors.Is(err, ErrInvalid) {
		t.Errorf("after delete: got %v, want ErrInvalid", err)
	}
	if _, err := f.m.Get(ctx, System(), c.Key.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after delete: got %v, want ErrNotFound", err)
	}
	if err := f.m.Delete(ctx, System(), c.Key.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: got %v, want ErrNotFound", err)
	}
	f.create(t, CreateRequest{Name: "gone", Workspace: "w", Role: "viewer"})
}

func TestUpdateAppliesToNextRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{Name: "k", Workspace: "tiger", Role: "viewer"})
	tok := c.Token.Reveal()
	write := mustPerm(t, "cluster:write")
	k, err := f.m.Verify(ctx, tok)
	if err != nil || k.Allows(write, "tiger") {
		t.Fatalf("viewer: %v, allows write = %v", err, err == nil && k.Allows(write, "tiger"))
	}
	role, name, desc := "editor", "renamed", "now an editor"
	exp := ExpireAfterDays(90)
	rec, err := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Role: &role, Name: &name, Description: &desc, Expiry: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != 2 || rec.Name != name || rec.Description != desc || rec.Role != "editor" {
		t.Errorf("updated record = %+v", rec)
	}
	if want := f.clock.Now().Add(90 * 24 * time.Hour); !rec.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", rec.ExpiresAt, want)
	}
	k, err = f.m.Verify(ctx, tok)
	if err != nil || !k.Allows(write, "tiger") {
		t.Fatalf("after update to editor: %v, allows write = false", err)
	}
	// A stale expected version is a conflict and changes nothing.
	if _, err := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Version: 1, Name: &desc}); !errors.Is(err, ErrConflict) {
		t.Errorf("stale version: got %v, want ErrConflict", err)
	}
	// Invalid changes are rejected and nothing is written.
	bad := []string{"not a scope"}
	if _, err := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Scopes: &bad}); !errors.Is(err, ErrInvalidScope) {
		t.Errorf("bad scope: got %v, want ErrInvalidScope", err)
	}
	got, _ := f.m.Get(ctx, System(), c.Key.ID)
	if got.Version != 2 {
		t.Errorf("version after rejected updates = %d, want 2", got.Version)
	}
	if _, err := f.m.Update(ctx, System(), uuid.Must(uuid.NewV7()), UpdateRequest{Name: &name}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: got %v, want ErrNotFound", err)
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{})
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			md := map[string]string{"writer": fmt.Sprint(i)}
			_, err := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Metadata: &md})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	got, _ := f.m.Get(ctx, System(), c.Key.ID)
	if got.Version != 1+n {
		t.Errorf("version = %d, want %d (every update applied once)", got.Version, 1+n)
	}
}

func TestRegenerate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{Expiry: ExpireAfterDays(7)})
	old := c.Token.Reveal()
	if _, err := f.m.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	r, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(60)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Key.ID != c.Key.ID || r.Token.Reveal() == old || r.Key.Hint != r.Token.Hint() {
		t.Errorf("regenerated key %v hint %q", r.Key.ID, r.Key.Hint)
	}
	if want := f.clock.Now().Add(60 * 24 * time.Hour); !r.Key.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", r.Key.ExpiresAt, want)
	}
	if _, err := f.m.Verify(ctx, old); !errors.Is(err, ErrInvalid) {
		t.Errorf("old secret after regenerate: got %v, want ErrInvalid", err)
	}
	if _, err := f.m.Verify(ctx, r.Token.Reveal()); err != nil {
		t.Errorf("new secret: %v", err)
	}

	// With a grace period the old secret works until it ends.
	r2, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: NeverExpire(), GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{r.Token.Reveal(), r2.Token.Reveal()} {
		if _, err := f.m.Verify(ctx, tok); err != nil {
			t.Errorf("during grace: %v", err)
		}
	}
	f.clock.Advance(time.Hour)
	if _, err := f.m.Verify(ctx, r.Token.Reveal()); !errors.Is(err, ErrInvalid) {
		t.Errorf("old secret after grace: got %v, want ErrInvalid", err)
	}
	if _, err := f.m.Verify(ctx, r2.Token.Reveal()); err != nil {
		t.Errorf("new secret after grace: %v", err)
	}
	if _, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{}); !errors.Is(err, ErrInvalidExpiry) {
		t.Errorf("regenerate without expiry: got %v, want ErrInvalidExpiry", err)
	}
}

func TestNoPrivilegeEscalation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	principal := func(req CreateRequest) Principal {
		t.Helper()
		if req.Expiry == (Expiry{}) {
			req.Expiry = NeverExpire()
		}
		k, err := f.m.VerifyFrom(ctx, f.create(t, req).Token.Reveal(), netip.MustParseAddr("10.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		return k.Principal()
	}
	viewer := principal(CreateRequest{Workspace: "tiger", Role: "viewer"})
	editor := principal(CreateRequest{Workspace: "tiger", Role: "editor"}) // *:write does not include apikey:manage
	owner := principal(CreateRequest{Workspace: "tiger", Role: "owner"})
	scoped := principal(CreateRequest{Scopes: []string{"apikey:manage", "cluster:read"}})
	admin := principal(CreateRequest{Role: "admin"})
	user := Principal{ID: "user:bob", Permissions: mustSet(t, "apikey:*", "billing:*")}
	in30d := f.clock.Now().Add(30 * 24 * time.Hour)
	expiring := principal(CreateRequest{Role: "admin", Expiry: ExpireAt(in30d)})
	five, three, ten := int64(5), int64(3), int64(10)
	limited := principal(CreateRequest{Scopes: []string{"apikey:manage", "cluster:read"}, Limits: Limits{
		Uses:         &five,
		Rate:         RateLimit{Requests: 10, Window: time.Minute},
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}})
	tight := func(mod func(*Limits)) Limits {
		l := Limits{Uses: &three, Rate: RateLimit{Requests: 5, Window: time.Minute}, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
		mod(&l)
		return l
	}

	tests := []struct {
		name string
		by   Principal
		req  CreateRequest
		ok   bool
		// why and what are the expected refusal: its reason, and the
		// permission, workspace or limit it names.
		why  DenyReason
		what string
	}{
		{"viewer cannot manage keys", viewer, CreateRequest{Workspace: "tiger", Role: "viewer"}, false, DeniedPermission, "apikey:manage"},
		{"editor's *:write does not manage keys", editor, CreateRequest{Workspace: "tiger", Role: "viewer"}, false, DeniedPermission, "apikey:manage"},
		{"owner creates viewer in own workspace", owner, CreateRequest{Workspace: "tiger", Role: "viewer"}, true, "", ""},
		{"owner creates owner in own workspace", owner, CreateRequest{Workspace: "tiger", Role: "owner"}, true, "", ""},
		{"owner cannot create admin", owner, CreateRequest{Role: "admin"}, false, DeniedWorkspace, ""},
		{"owner cannot leave its workspace", owner, CreateRequest{Workspace: "lion", Role: "viewer"}, false, DeniedWorkspace, "lion"},
		{"owner cannot create unbound key", owner, CreateRequest{Scopes: []string{"cluster:read"}}, false, DeniedWorkspace, ""},
		{"scoped key creates narrower key", scoped, CreateRequest{Scopes: []string{"cluster:read"}}, true, "", ""},
		{"scoped key cannot widen", scoped, CreateRequest{Scopes: []string{"cluster:write"}}, false, DeniedPermission, "cluster:write"},
		{"scoped key cannot add wildcard", scoped, CreateRequest{Scopes: []string{"*:read"}}, false, DeniedPermission, "*:read"},
		{"scoped key cannot use a wider role", scoped, CreateRequest{Workspace: "tiger", Role: "viewer"}, false, DeniedPermission, "*:read"},
		{"user grants its billing scopes", user, CreateRequest{Scopes: []string{"billing:write"}}, true, "", ""},
		{"user cannot grant cluster", user, CreateRequest{Scopes: []string{"cluster:read"}}, false, DeniedPermission, "cluster:read"},
		{"admin creates admin", admin, CreateRequest{Role: "admin"}, true, "", ""},
		{"expiring admin cannot create a never-expiring key", expiring, CreateRequest{Role: "viewer", Workspace: "w"}, false, DeniedLifetime, ""},
		{"expiring admin cannot create a longer-lived key", expiring, CreateRequest{Role: "viewer", Workspace: "w", Expiry: ExpireAfterDays(31)}, false, DeniedLifetime, ""},
		{"expiring admin creates a shorter-lived key", expiring, CreateRequest{Role: "viewer", Workspace: "w", Expiry: ExpireAfterDays(7)}, true, "", ""},
		{"limited key creates a stricter key", limited, CreateRequest{Scopes: []string{"cluster:read"}, Limits: tight(func(*Limits) {})}, true, "", ""},
		{"limited key cannot drop the usage limit", limited, CreateRequest{Scopes: []string{"cluster:read"}, Limits: tight(func(l *Limits) { l.Uses = nil })}, false, DeniedLimit, LimitUses},
		{"limited key cannot grant more uses", limited, CreateRequest{Scopes: []string{"cluster:read"}, Limits: tight(func(l *Limits) { l.Uses = &ten })}, false, DeniedLimit, LimitUses},
		{"limited key cannot drop the rate limit", limited, CreateRequest{Scopes: []string{"cluster:read"}, Limits: tight(func(l *Limits) { l.Rate = RateLimit{} })}, false, DeniedLimit, LimitRate},
		{"limited key cannot raise the rate", limited, CreateRequest{Scopes: []string{"cluster:read"}, Limits: tight(func(l *Limits) { l.Rate = RateLimit{Requests: 10, Window: time.Second} })}, false, DeniedLimit, LimitRate},
		{"limited key cannot drop the allow-list", limited, CreateRequest{Scopes: []string{"cluster:read"}, Limits: tight(func(l *Limits) { l.AllowedCIDRs = nil })}, false, DeniedLimit, LimitAllowedCIDRs},
		{"limited key cannot allow other networks", limited, CreateRequest{Scopes: []string{"cluster:read"}, Limits: tight(func(l *Limits) {
			l.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}
		})}, false, DeniedLimit, LimitAllowedCIDRs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Name = "k-" + uuid.NewString()
			if tt.req.Expiry == (Expiry{}) {
				tt.req.Expiry = NeverExpire()
			}
			_, err := f.m.Create(ctx, tt.by, tt.req)
			if tt.ok && err != nil {
				t.Fatalf("Create: %v, want success", err)
			}
			if !tt.ok && !errors.Is(err, ErrForbidden) {
				t.Fatalf("Create: %v, want ErrForbidden", err)
			}
			var d *DeniedError
			if !tt.ok && (!errors.As(err, &d) || d.Reason != tt.why) {
				t.Fatalf("Create: %v, want a DeniedError with reason %q", err, tt.why)
			}
			if d == nil {
				return
			}
			var what string
			switch d.Reason {
			case DeniedPermission:
				what = d.Permission
			case DeniedWorkspace:
				what = d.Workspace
			case DeniedLimit:
				what = d.Limit
			case DeniedLifetime:
				if !d.LatestExpiry.Equal(tt.by.ExpiresAt) {
					t.Errorf("LatestExpiry = %v, want the principal's expiry %v", d.LatestExpiry, tt.by.ExpiresAt)
				}
			}
			if what != tt.what {
				t.Errorf("refusal %v names %q, want %q", d, what, tt.what)
			}
			if d.Actor != tt.by.ID || !strings.Contains(d.Error(), tt.what) {
				t.Errorf("refusal %q: want actor %q and %q in the message", d.Error(), tt.by.ID, tt.what)
			}
		})
	}

	// Widening an existing key, or touching a stronger one, is forbidden too.
	narrow := f.create(t, CreateRequest{Scopes: []string{"cluster:read"}})
	wider := []string{"cluster:read", "cluster:write"}
	if _, err := f.m.Update(ctx, scoped, narrow.Key.ID, UpdateRequest{Scopes: &wider}); !errors.Is(err, ErrForbidden) {
		t.Errorf("widen by update: got %v, want ErrForbidden", err)
	}
	strong := f.create(t, CreateRequest{Role: "admin"})
	if _, err := f.m.Revoke(ctx, scoped, strong.Key.ID); !errors.Is(err, ErrForbidden) {
		t.Errorf("revoke stronger key: got %v, want ErrForbidden", err)
	}
	if err := f.m.Delete(ctx, scoped, strong.Key.ID); !errors.Is(err, ErrForbidden) {
		t.Errorf("delete stronger key: got %v, want ErrForbidden", err)
	}
	if _, err := f.m.Regenerate(ctx, scoped, strong.Key.ID, RegenerateRequest{Expiry: NeverExpire()}); !errors.Is(err, ErrForbidden) {
		t.Errorf("regenerate stronger key: got %v, want ErrForbidden", err)
	}

	// A limited or expiring key cannot loosen its own limits or extend its
	// own life, but may change what does not widen it.
	self := f.create(t, CreateRequest{Scopes: []string{"apikey:manage", "cluster:read"}, Expiry: ExpireAt(in30d), Limits: Limits{Uses: &five}})
	sk, err := f.m.Verify(ctx, self.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	unlimited, never, name := int64(-1), NeverExpire(), "renamed"
	if _, err := f.m.Update(ctx, sk.Principal(), sk.ID, UpdateRequest{Uses: &unlimited}); !errors.Is(err, ErrForbidden) {
		t.Errorf("key removes its own usage limit: got %v, want ErrForbidden", err)
	}
	if _, err := f.m.Update(ctx, sk.Principal(), sk.ID, UpdateRequest{Expiry: &never}); !errors.Is(err, ErrForbidden) {
		t.Errorf("key removes its own expiry: got %v, want ErrForbidden", err)
	}
	if _, err := f.m.Regenerate(ctx, sk.Principal(), sk.ID, RegenerateRequest{Expiry: ExpireAfterDays(90)}); !errors.Is(err, ErrForbidden) {
		t.Errorf("key regenerates itself with a longer life: got %v, want ErrForbidden", err)
	}
	if _, err := f.m.Update(ctx, sk.Principal(), sk.ID, UpdateRequest{Name: &name}); err != nil {
		t.Errorf("key renames itself: %v", err)
	}
	if _, err := f.m.Revoke(ctx, limited, narrow.Key.ID); err != nil {
		t.Errorf("limited key revokes a narrower, unlimited key: %v", err)
	}
}

func TestBoundedPrincipalCannotLaunderAKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	three := int64(3)
	// P expires in an hour and has 3 uses; K is a viewer that never
	// expires and has no limits.
	pc := f.create(t, CreateRequest{Workspace: "tiger", Role: "owner", Expiry: ExpireAfter(time.Hour), Limits: Limits{Uses: &three}})
	pk, err := f.m.Verify(ctx, pc.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	p := pk.Principal()
	k := f.create(t, CreateRequest{Workspace: "tiger", Role: "viewer", Expiry: NeverExpire()})

	owner := "owner"
	if _, err := f.m.Update(ctx, p, k.Key.ID, UpdateRequest{Role: &owner}); !errors.Is(err, ErrForbidden) {
		t.Errorf("widening an unbounded key: got %v, want ErrForbidden", err)
	}
	if _, err := f.m.Regenerate(ctx, p, k.Key.ID, RegenerateRequest{Expiry: NeverExpire()}); !errors.Is(err, ErrForbidden) {
		t.Errorf("regenerating an unbounded key: got %v, want ErrForbidden", err)
	}
	if _, err := f.m.Regenerate(ctx, p, k.Key.ID, RegenerateRequest{Expiry: ExpireAfter(30 * time.Minute)}); !errors.Is(err, ErrForbidden) {
		t.Errorf("regenerating a key without the principal's usage limit: got %v, want ErrForbidden", err)
	}
	desc := "still fine"
	if _, err := f.m.Update(ctx, p, k.Key.ID, UpdateRequest{Description: &desc}); err != nil {
		t.Errorf("describing a covered key: %v", err)
	}

	// P took one use verifying; it cannot refill itself.
	if _, err := f.m.Update(ctx, p, pc.Key.ID, UpdateRequest{Uses: &three}); !errors.Is(err, ErrForbidden) {
		t.Errorf("refilling its own uses: got %v, want ErrForbidden", err)
	}
	one := int64(1)
	if _, err := f.m.Update(ctx, p, pc.Key.ID, UpdateRequest{Uses: &one}); err != nil {
		t.Errorf("lowering its own uses: %v", err)
	}
}

func TestOldSecretActsOnlyAsLongAsItLives(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{Workspace: "tiger", Role: "owner", Expiry: ExpireAfterDays(7)})
	r, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: ExpireAfterDays(90), GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	old, err := f.m.Verify(ctx, c.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clock.Now().Add(time.Hour); !old.Principal().ExpiresAt.Equal(want) {
		t.Errorf("old secret's principal expires %v, want the grace end %v", old.Principal().ExpiresAt, want)
	}
	if _, err := f.m.Create(ctx, old.Principal(), CreateRequest{Name: "child", Workspace: "tiger", Role: "viewer", Expiry: ExpireAfterDays(30)}); !errors.Is(err, ErrForbidden) {
		t.Errorf("old secret minting a 30-day key: got %v, want ErrForbidden", err)
	}
	cur, err := f.m.Verify(ctx, r.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Create(ctx, cur.Principal(), CreateRequest{Name: "child", Workspace: "tiger", Role: "viewer", Expiry: ExpireAfterDays(30)}); err != nil {
		t.Errorf("new secret minting a 30-day key: %v", err)
	}
	// A grace period never outlives the key.
	short, err := f.m.Regenerate(ctx, System(), c.Key.ID, RegenerateRequest{Expiry: ExpireAfter(time.Minute), GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !short.Key.PrevExpiresAt.Equal(short.Key.ExpiresAt) {
		t.Errorf("grace ends %v, after the key's expiry %v", short.Key.PrevExpiresAt, short.Key.ExpiresAt)
	}
}

func TestRemovedRoleFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	auditor := permission.Role{Name: "auditor", Permissions: mustSet(t, "*:read", "apikey:view")}
	withRole, err := permission.NewDefaultRegistry(auditor)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) { c.Roles = withRole })
	c := f.create(t, CreateRequest{Role: "auditor"})
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatal(err)
	}

	// The same store, read by a Manager whose registry no longer has the role.
	without, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, Now: f.clock.Now, Auditor: &recorder{}, Logger: slog.New(slog.DiscardHandler), LastUsedInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { without.Close(ctx) })
	if _, err := without.Verify(ctx, c.Token.Reveal()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("key with a removed role: got %v, want ErrInvalid", err)
	}
	owner := Principal{ID: "user:o", Permissions: mustSet(t, "*:*")}
	name := "x"
	if _, err := without.Update(ctx, owner, c.Key.ID, UpdateRequest{Name: &name}); !errors.Is(err, ErrForbidden) {
		t.Errorf("non-super-admin changing a key that no longer resolves: got %v, want ErrForbidden", err)
	}
	if _, err := without.Revoke(ctx, System(), c.Key.ID); err != nil {
		t.Errorf("super admin revoking a key that no longer resolves: %v", err)
	}
}

func TestSuperAdminCannotBeBoundToAWorkspace(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.m.Create(context.Background(), System(), CreateRequest{Name: "a", Role: "admin", Workspace: "tiger", Expiry: NeverExpire()})
	if !errors.Is(err, ErrInvalidField) || !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("admin bound to a workspace: got %v, want ErrInvalidField", err)
	}
}

func TestUnauthorizedCallerLearnsNoVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.create(t, CreateRequest{Role: "admin"})
	nobody := Principal{ID: "user:n", Permissions: mustSet(t, "cluster:read")}
	name := "x"
	_, err := f.m.Update(context.Background(), nobody, c.Key.ID, UpdateRequest{Version: 99, Name: &name})
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		t.Errorf("stale version from an unauthorized caller: got %v, want ErrNotFound only", err)
	}
	// One who may view but not manage the key is refused, still without
	// learning its version.
	viewer := Principal{ID: "user:v", Permissions: mustSet(t, "apikey:view")}
	_, err = f.m.Update(context.Background(), viewer, c.Key.ID, UpdateRequest{Version: 99, Name: &name})
	if !errors.Is(err, ErrForbidden) || errors.Is(err, ErrConflict) {
		t.Errorf("stale version from a viewer: got %v, want ErrForbidden only", err)
	}
}

func TestPanickingLookupReleasesWaiters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{})
	f.store.gate = make(chan struct{})
	f.store.panicOnce.Store(true)
	go func() {
		defer func() { recover() }()
		f.m.Verify(ctx, c.Token.Reveal())
	}()
	for f.store.getByHash.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	type result struct {
		err      error
		panicked any
	}
	follower := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				follower <- result{panicked: p}
			}
		}()
		_, err := f.m.Verify(ctx, c.Token.Reveal())
		follower <- result{err: err}
	}()
	time.Sleep(50 * time.Millisecond)
	close(f.store.gate)
	r := <-follower
	if r.panicked != nil {
		t.Fatalf("a request waiting on a lookup that panicked panicked too: %v", r.panicked)
	}
	// Joined the failed lookup: ErrUnavailable. Arrived after it: its own
	// lookup succeeds.
	if r.err != nil && !errors.Is(r.err, ErrUnavailable) {
		t.Errorf("follower: got %v, want ErrUnavailable or success", r.err)
	}
}

func mustSet(t testing.TB, ss ...string) permission.Set {
	t.Helper()
	s, err := permission.ParseSet(ss...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestListAndGetScoping(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for _, ws := range []string{"tiger", "tiger", "lion"} {
		f.create(t, CreateRequest{Workspace: ws, Role: "viewer"})
	}
	lionKey := f.create(t, CreateRequest{Workspace: "lion", Role: "viewer"})
	tigerReader := Principal{ID: "user:t", Workspace: "tiger", Permissions: mustSet(t, "apikey:view")}
	page, err := f.m.List(ctx, tigerReader, ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Keys) != 2 {
		t.Errorf("workspace-bound List returned %d keys, want 2", len(page.Keys))
	}
	for _, k := range page.Keys {
		if k.Workspace != "tiger" {
			t.Errorf("List leaked a key of workspace %q", k.Workspace)
		}
	}
	if _, err := f.m.List(ctx, tigerReader, ListRequest{Workspace: "lion"}); !errors.Is(err, ErrForbidden) {
		t.Errorf("List other workspace: got %v, want ErrForbidden", err)
	}
	// A key of another workspace is answered exactly as a missing one.
	tigerManager := Principal{ID: "user:m", Workspace: "tiger", Permissions: mustSet(t, "apikey:*", "*:*")}
	missing := uuid.Must(uuid.NewV7())
	name := "renamed"
	for op, call := range map[string]func(id uuid.UUID) error{
		"get": func(id uuid.UUID) error { _, err := f.m.Get(ctx, tigerReader, id); return err },
		"update": func(id uuid.UUID) error {
			_, err := f.m.Update(ctx, tigerManager, id, UpdateRequest{Name: &name})
			return err
		},
		"revoke": func(id uuid.UUID) error { _, err := f.m.Revoke(ctx, tigerManager, id); return err },
		"regenerate": func(id uuid.UUID) error {
			_, err := f.m.Regenerate(ctx, tigerManager, id, RegenerateRequest{Expiry: NeverExpire()})
			return err
		},
		"delete": func(id uuid.UUID) error { return f.m.Delete(ctx, tigerManager, id) },
	} {
		other, absent := call(lionKey.Key.ID), call(missing)
		if !errors.Is(other, ErrNotFound) || errors.Is(other, ErrForbidden) || other.Error() != absent.Error() {
			t.Errorf("%s of another workspace's key: %v; of a missing key: %v; want the same ErrNotFound", op, other, absent)
		}
	}
	if _, err := f.m.Get(ctx, System(), lionKey.Key.ID); err != nil {
		t.Errorf("the lion key was changed by a principal of tiger: %v", err)
	}
	nobody := Principal{ID: "user:n", Permissions: mustSet(t, "cluster:read")}
	if _, err := f.m.List(ctx, nobody, ListRequest{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("List without apikey:view: got %v, want ErrForbidden", err)
	}
	all, err := f.m.List(ctx, System(), ListRequest{Limit: 2})
	if err != nil || len(all.Keys) != 2 || all.Next == uuid.Nil {
		t.Fatalf("first page: %v keys, next %v, err %v", len(all.Keys), all.Next, err)
	}
	rest, err := f.m.List(ctx, System(), ListRequest{Limit: 2, After: all.Next})
	if err != nil || len(rest.Keys) != 2 {
		t.Fatalf("second page: %v keys, err %v", len(rest.Keys), err)
	}
}

func TestPepperRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memory.New()
	old, err := New(Config{Store: st, Hasher: testHasher(t, "p1"), LastUsedInterval: -1, Auditor: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := old.Create(ctx, System(), CreateRequest{Name: "k", Role: "admin", Expiry: NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := New(Config{Store: st, Hasher: testHasher(t, "p2", "p1"), LastUsedInterval: -1, Auditor: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatalf("verify under older pepper: %v", err)
	}
	rec, _ := st.Get(ctx, c.Key.ID)
	if rec.PepperID != "p2" {
		t.Errorf("after verification the key is hashed under %q, want p2", rec.PepperID)
	}
	onlyNew, err := New(Config{Store: st, Hasher: testHasher(t, "p2"), LastUsedInterval: -1, Auditor: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onlyNew.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Errorf("verify after re-hash with only the new pepper: %v", err)
	}
}

// managerWith returns a Manager over st hashing under peppers (the
// current one first), closed at the end of the test; cfg sets the rest.
func managerWith(t *testing.T, st store.Store, cfg Config, peppers ...string) *Manager {
	t.Helper()
	cfg.Store, cfg.Hasher, cfg.LastUsedInterval, cfg.Auditor = st, testHasher(t, peppers...), -1, &recorder{}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// TestRehashIsNotPublished: moving a key to the current pepper is not
// published, so that two instances with different current peppers (a
// pepper change rolling out) do not undo each other's re-hash on every
// request (see Manager.rehash).
func TestRehashIsNotPublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memory.New()
	feed := &publishingFeed{chanFeed: chanFeed{ids: make(chan uuid.UUID)}}
	oldFirst := managerWith(t, st, Config{ChangeFeed: feed}, "p1", "p2")
	newFirst := managerWith(t, st, Config{ChangeFeed: feed}, "p2", "p1")
	c, err := oldFirst.Create(ctx, System(), CreateRequest{Name: "k", Role: "admin", Expiry: NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	feed.mu.Lock()
	feed.published = nil // the creation's
	feed.mu.Unlock()
	for i, m := range []*Manager{newFirst, oldFirst, newFirst} {
		m.cache.clear()
		if _, err := m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatalf("verification %d: %v", i, err)
		}
		rec, err := st.Get(ctx, c.Key.ID)
		if want := []string{"p2", "p1", "p2"}[i]; err != nil || rec.PepperID != want {
			t.Fatalf("after verification %d: %v, pepper %q, want %q", i, err, rec.PepperID, want)
		}
	}
	feed.mu.Lock()
	defer feed.mu.Unlock()
	if len(feed.published) != 0 {
		t.Errorf("re-hashes published %v, want none", feed.published)
	}
}

// hookStore calls found once, with the first key GetByHash finds.
type hookStore struct {
	store.Store
	once  sync.Once
	found func(*store.Key)
}

func (s *hookStore) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	k, err := s.Store.GetByHash(ctx, hash)
	if err == nil {
		s.once.Do(func() { s.found(k) })
	}
	return k, err
}

// TestRehashRace: two instances find a key under its old pepper at once;
// the second to write its re-hash loses the version race. It takes the
// record as the first stored it, so the principal of the key it verified
// is the key's current one and may act (before: management calls with it
// were refused as "secret replaced" until the cache entry expired).
func TestRehashRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memory.New()
	c, err := managerWith(t, st, Config{}, "p1").Create(ctx, System(), CreateRequest{Name: "k", Role: "admin", Expiry: NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	first := managerWith(t, st, Config{}, "p2", "p1")
	var firstErr error
	hs := &hookStore{Store: st, found: func(k *store.Key) {
		if k.PepperID != "p1" {
			firstErr = fmt.Errorf("found under %q, want p1", k.PepperID)
			return
		}
		// The other instance verifies (and re-hashes) the key now.
		_, firstErr = first.Verify(ctx, c.Token.Reveal())
	}}
	second := managerWith(t, hs, Config{Logger: slog.New(slog.DiscardHandler)}, "p2", "p1")
	k, err := second.Verify(ctx, c.Token.Reveal())
	if err != nil || firstErr != nil {
		t.Fatalf("Verify: %v; the other instance's: %v", err, firstErr)
	}
	rec, err := st.Get(ctx, c.Key.ID)
	if err != nil || rec.PepperID != "p2" {
		t.Fatalf("stored key: %v, pepper %q, want p2", err, rec.PepperID)
	}
	if !bytes.Equal(k.Hash, rec.Hash) {
		t.Error("the verified key does not hold the stored hash")
	}
	if _, err := second.Get(ctx, k.Principal(), c.Key.ID); err != nil {
		t.Errorf("a management call with the key's principal: %v", err)
	}
}

func TestCacheAndNegativeCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{})
	for range 5 {
		if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.store.getByHash.Load(); n != 1 {
		t.Errorf("5 verifications made %d store lookups, want 1", n)
	}
	unknown, _ := f.m.format.Generate()
	for range 5 {
		if _, err := f.m.Verify(ctx, unknown.Reveal()); !errors.Is(err, ErrInvalid) {
			t.Fatal(err)
		}
	}
	if n := f.store.getByHash.Load(); n != 2 {
		t.Errorf("after 5 unknown-token verifications: %d store lookups, want 2", n)
	}
	f.clock.Advance(31 * time.Second)
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	if n := f.store.getByHash.Load(); n != 3 {
		t.Errorf("after the TTL: %d store lookups, want 3", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.CacheSize = 64 })
	ctx := context.Background()
	for range 500 {
		tok, _ := f.m.format.Generate()
		f.m.Verify(ctx, tok.Reveal())
	}
	if n := f.m.cache.len(); n > 64 {
		t.Errorf("cache holds %d entries, bound is 64", n)
	}
}

func TestUnknownTokensDoNotEvictKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.CacheSize = 64; c.Auditor = nopAuditor{} })
	ctx := context.Background()
	c := f.create(t, CreateRequest{})
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		tok, _ := f.m.format.Generate()
		f.m.Verify(ctx, tok.Reveal())
	}
	if n := f.m.unknown.len(); n > 16 {
		t.Errorf("negative cache holds %d entries, bound is 16", n)
	}
	before := f.store.getByHash.Load()
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	if f.store.getByHash.Load() != before {
		t.Error("a flood of unknown tokens evicted a verified key from the cache")
	}
}

func TestConcurrentMissesShareOneLookup(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{})
	f.store.gate = make(chan struct{})
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := f.m.Verify(ctx, c.Token.Reveal())
			errs <- err
		})
	}
	// Let the goroutines pile up behind the first lookup, then release it.
	for f.store.getByHash.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(f.store.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := f.store.getByHash.Load(); got != 1 {
		t.Errorf("%d concurrent verifications made %d store lookups, want 1", n, got)
	}

	// A follower whose own context ends stops waiting.
	f2 := newFixture(t)
	c2 := f2.create(t, CreateRequest{})
	f2.store.gate = make(chan struct{})
	defer close(f2.store.gate)
	go f2.m.Verify(ctx, c2.Token.Reveal())
	for f2.store.getByHash.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f2.m.Verify(cctx, c2.Token.Reveal()); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled follower: got %v, want ErrUnavailable wrapping context.Canceled", err)
	}
}

func TestRevokeWhileLookupInFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{})
	// A verification starts and stalls inside the store lookup.
	f.store.gate = make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := f.m.Verify(ctx, c.Token.Reveal())
		first <- err
	}()
	for f.store.getByHash.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Revoke returns; a verification that starts after it must not reuse
	// the stalled lookup, which may have read the key before revocation.
	if _, err := f.m.Revoke(ctx, System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := f.m.Verify(ctx, c.Token.Reveal())
		second <- err
	}()
	// It should make its own lookup; if it joined the stalled one instead,
	// release the stall after a while and let the assertion below fail.
	for deadline := time.Now().Add(time.Second); f.store.getByHash.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(f.store.gate)
	if err := <-second; !errors.Is(err, ErrRevoked) {
		t.Errorf("verification begun after Revoke returned: got %v, want ErrRevoked", err)
	}
	<-first // concurrent with the revocation: either outcome is correct
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); !errors.Is(err, ErrRevoked) {
		t.Errorf("after both: got %v, want ErrRevoked (the stale lookup must not be cached)", err)
	}
}

func TestOtherInstanceStalenessAndFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	feed := &chanFeed{ids: make(chan uuid.UUID, 1)}
	other, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, Now: f.clock.Now, LastUsedInterval: -1, Auditor: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close(ctx) })
	withFeed, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, Now: f.clock.Now, LastUsedInterval: -1, Auditor: &recorder{}, ChangeFeed: feed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { withFeed.Close(ctx) })

	c := f.create(t, CreateRequest{})
	tok := c.Token.Reveal()
	for _, m := range []*Manager{other, withFeed} {
		if _, err := m.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.Revoke(ctx, System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	// Without a feed, another instance serves its cached copy until the TTL.
	if _, err := other.Verify(ctx, tok); err != nil {
		t.Errorf("other instance within TTL: %v (expected the documented staleness)", err)
	}
	feed.ids <- c.Key.ID
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := withFeed.Verify(ctx, tok)
		if errors.Is(err, ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance with a feed still accepts a revoked key: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.clock.Advance(31 * time.Second)
	if _, err := other.Verify(ctx, tok); !errors.Is(err, ErrRevoked) {
		t.Errorf("other instance after TTL: got %v, want ErrRevoked", err)
	}
}

func TestFeedResetDropsWholeCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	feed := &chanFeed{ids: make(chan uuid.UUID, 1)}
	other, err := New(Config{Store: f.store, Hasher: f.cfg.Hasher, Now: f.clock.Now, LastUsedInterval: -1, Auditor: &recorder{}, ChangeFeed: feed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close(ctx) })
	c := f.create(t, CreateRequest{})
	if _, err := other.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Fatal(err)
	}
	// The revocation's notification is lost; the feed then reports a reset.
	if _, err := f.m.Revoke(ctx, System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	feed.ids <- uuid.Nil
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := other.Verify(ctx, c.Token.Reveal())
		if errors.Is(err, ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a feed reset the instance still accepts a revoked key: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type chanFeed struct{ ids chan uuid.UUID }

func (f *chanFeed) Watch(ctx context.Context, fn func(uuid.UUID)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case id := <-f.ids:
			fn(id)
		}
	}
}

func TestStoreFailureFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{})
	f.store.fail.Store(true)
	_, err := f.m.Verify(ctx, c.Token.Reveal())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errStoreDown) {
		t.Fatalf("Verify with store down: got %v, want ErrUnavailable wrapping the store error", err)
	}
	if _, err := f.m.Get(ctx, System(), c.Key.ID); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get with store down: got %v, want ErrUnavailable", err)
	}
	f.store.fail.Store(false)
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
		t.Errorf("after recovery (failure must not be cached): %v", err)
	}
}

func TestRateLimitExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{Limits: Limits{Rate: RateLimit{Requests: 10, Window: time.Minute}}})
	tok := c.Token.Reveal()
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := f.m.Verify(ctx, tok)
			var rl *RateLimitError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &rl) && errors.Is(err, ErrRateLimited) && rl.RetryAfter > 0 && rl.RetryAfter <= time.Minute:
				limited.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 10 || limited.Load() != 40 {
		t.Errorf("%d allowed, %d limited; want 10 and 40", ok.Load(), limited.Load())
	}
	f.clock.Advance(6 * time.Second) // one request's worth of a 10/min limit
	if _, err := f.m.Verify(ctx, tok); err != nil {
		t.Errorf("after one interval: %v", err)
	}
	if _, err := f.m.Verify(ctx, tok); !errors.Is(err, ErrRateLimited) {
		t.Errorf("second request after one interval: got %v, want ErrRateLimited", err)
	}
}

func TestUsageLimitExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	uses := int64(5)
	c := f.create(t, CreateRequest{Limits: Limits{Uses: &uses}})
	var ok, exhausted atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := f.m.Verify(ctx, c.Token.Reveal())
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrUsageExhausted):
				exhausted.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 5 || exhausted.Load() != 15 {
		t.Errorf("%d allowed, %d exhausted; want 5 and 15", ok.Load(), exhausted.Load())
	}
	rec, _ := f.m.Get(ctx, System(), c.Key.ID)
	if rec.RemainingUses == nil || *rec.RemainingUses != 0 {
		t.Errorf("remaining uses = %v, want 0", rec.RemainingUses)
	}
	f.store.fail.Store(true)
	if _, err := f.m.Verify(ctx, c.Token.Reveal()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("usage check with store down: got %v, want ErrUnavailable", err)
	}
}

func TestAllowedCIDRs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{Limits: Limits{AllowedCIDRs: []netip.Prefix{
		netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/32"),
	}}})
	tok := c.Token.Reveal()
	tests := []struct {
		addr string
		ok   bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"2001:db8::1", true},
		{"10.2.0.1", false},
		{"192.0.2.1", false},
	}
	for _, tt := range tests {
		_, err := f.m.VerifyFrom(ctx, tok, netip.MustParseAddr(tt.addr))
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrAddressDenied)) {
			t.Errorf("VerifyFrom(%s) = %v, want allowed=%v", tt.addr, err, tt.ok)
		}
	}
	if _, err := f.m.Verify(ctx, tok); !errors.Is(err, ErrAddressDenied) {
		t.Errorf("Verify with no address: got %v, want ErrAddressDenied", err)
	}
}

func TestLastUsedBatched(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.LastUsedInterval = time.Hour })
	ctx := context.Background()
	a := f.create(t, CreateRequest{})
	b := f.create(t, CreateRequest{})
	for range 100 {
		for _, c := range []*Created{a, b} {
			if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if p := f.m.pendingLastUsed(); len(p) != 2 {
		t.Fatalf("pending = %v, want one entry per key", p)
	}
	if n := f.store.touches.Load(); n != 0 {
		t.Errorf("%d store writes before any flush, want 0", n)
	}
	// A failed flush keeps the times for the next one.
	f.store.fail.Store(true)
	if err := f.m.Flush(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Flush with store down: got %v, want ErrUnavailable", err)
	}
	f.store.fail.Store(false)
	if err := f.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.store.touches.Load(); n != 2 {
		t.Errorf("%d TouchLastUsed calls, want 2 (the failed flush and Close)", n)
	}
	for _, c := range []*Created{a, b} {
		rec, _ := f.store.Get(ctx, c.Key.ID)
		if !rec.LastUsedAt.Equal(f.clock.Now()) {
			t.Errorf("LastUsedAt = %v, want %v", rec.LastUsedAt, f.clock.Now())
		}
	}
}

func TestAuditNeverLogsSecrets(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFixture(t, func(c *Config) { c.Auditor = nil; c.Logger = logger })
	ctx := context.Background()
	c := f.create(t, CreateRequest{Name: "logged"})
	f.m.Verify(ctx, c.Token.Reveal())
	typo := []byte(c.Token.Reveal())
	typo[5] = otherChar(typo[5])
	f.m.Verify(ctx, string(typo))
	f.m.Revoke(ctx, System(), c.Key.ID)
	f.m.Verify(ctx, c.Token.Reveal())
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{`"key.created"`, `"key.revoked"`, `"reason":"malformed"`, `"reason":"revoked"`, c.Key.ID.String()} {
		if !strings.Contains(out, want) {
			t.Errorf("audit log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, c.Token.Reveal()[3:]) || strings.Contains(out, string(typo[3:])) {
		t.Errorf("audit log contains a secret:\n%s", out)
	}
}

func TestSlogAuditorSamplesFailures(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	f := newFixture(t, func(c *Config) { c.Auditor = NewSlogAuditor(logger, 10) })
	ctx := context.Background()
	c := f.create(t, CreateRequest{Name: "k"})
	for range 1000 {
		f.m.Verify(ctx, "garbage")
	}
	f.clock.Advance(time.Second)
	f.m.Verify(ctx, "garbage")
	f.m.Revoke(ctx, System(), c.Key.ID)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, `"key.verification_failed"`); n != 11 {
		t.Errorf("%d failed verifications logged, want 10 in the first second and 1 in the next", n)
	}
	if !strings.Contains(out, `"suppressed":990`) {
		t.Errorf("the first failure of the next second does not report the 990 left out:\n%s", out)
	}
	for _, want := range []string{`"key.created"`, `"key.revoked"`} {
		if !strings.Contains(out, want) {
			t.Errorf("management event %s not logged", want)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestParseExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"never", time.Time{}, false},
		{"7d", now.AddDate(0, 0, 7), false},
		{"90d", now.AddDate(0, 0, 90), false},
		{"2025-12-31", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"2025-06-01T12:00:00Z", time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), false},
		{"2024-12-31", time.Time{}, true}, // in the past
		{"0d", time.Time{}, true},
		{"-3d", time.Time{}, true},
		{"soon", time.Time{}, true},
		{"", time.Time{}, true},
	}
	for _, tt := range tests {
		e, err := ParseExpiry(tt.in)
		var got time.Time
		if err == nil {
			got, err = e.resolve(now)
		}
		if tt.err {
			if !errors.Is(err, ErrInvalidExpiry) {
				t.Errorf("ParseExpiry(%q): got %v, want ErrInvalidExpiry", tt.in, err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseExpiry(%q) resolves to %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if back, err := ParseExpiry(e.String()); err != nil || back != e && !strings.HasSuffix(tt.in, "Z") && tt.in != "2025-12-31" {
			t.Errorf("ParseExpiry(%q).String() = %q does not round-trip", tt.in, e.String())
		}
	}
}

func TestAuthorizeAllocatesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, CreateRequest{Workspace: "tiger", Role: "editor", Scopes: []string{"billing:write"}})
	tok := c.Token.Reveal()
	p := mustPerm(t, "cluster:read")
	if _, err := f.m.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		k, err := f.m.Verify(ctx, tok)
		if err != nil || f.m.Authorize(k, p, "tiger") != nil {
			t.Fatal("cached verify failed")
		}
	})
	if allocs > 0 {
		t.Errorf("cached Verify + Authorize allocates %v times per call, want 0", allocs)
	}
}

func TestEmptyUpdateChangesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.create(t, CreateRequest{Name: "svc", Workspace: "tiger", Role: "viewer"})
	f.clock.Advance(time.Minute)
	events := len(f.audit.types())
	got, err := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != c.Key.Version || !got.UpdatedAt.Equal(c.Key.UpdatedAt) {
		t.Fatalf("empty update: version %d → %d, updated %v → %v", c.Key.Version, got.Version, c.Key.UpdatedAt, got.UpdatedAt)
	}
	if n := len(f.audit.types()); n != events {
		t.Fatalf("empty update sent %d audit events", n-events)
	}
	if _, err := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Version: c.Key.Version + 1}); !errors.Is(err, ErrConflict) {
		t.Fatalf("empty update at a wrong version: %v", err)
	}
	viewer := f.create(t, CreateRequest{Name: "viewer", Workspace: "tiger", Scopes: []string{"apikey:view", "*:read"}})
	k, err := f.m.Verify(ctx, viewer.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Update(ctx, k.Principal(), c.Key.ID, UpdateRequest{}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("empty update by a caller that may not change the key: %v", err)
	}
	desc := "changed"
	if got, err := f.m.Update(ctx, System(), c.Key.ID, UpdateRequest{Description: &desc}); err != nil || got.Version != c.Key.Version+1 {
		t.Fatalf("a real update: %v, %v", got, err)
	}
}

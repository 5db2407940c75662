package keygate

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// countingRecorder counts the exercises written.
type countingRecorder struct {
	*countingStore
	rows atomic.Int64
}

func (s *countingRecorder) RecordExercises(ctx context.Context, es []store.Exercise) error {
	s.rows.Add(int64(len(es)))
	return s.countingStore.RecordExercises(ctx, es)
}

func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.LastUsedInterval = time.Hour })
	rec := &countingRecorder{countingStore: f.store}
	m, err := New(Config{Store: rec, Hasher: f.cfg.Hasher, Now: f.clock.Now, Auditor: &recorder{}, LastUsedInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(ctx) })
	c, err := m.Create(ctx, System(), CreateRequest{Name: "grafana", Workspace: "tiger", Role: "editor", Scopes: []string{"billing:read", "audit:read"}, Expiry: NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Verify(ctx, c.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	clusterRead, billingRead := permission.MustParse("cluster:read"), permission.MustParse("billing:read")
	for range 100 {
		m.Exercised(k, clusterRead, "tiger")
		m.Exercised(k, billingRead, "tiger")
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rec.rows.Load(); n != 2 {
		t.Fatalf("200 exercises of 2 permissions wrote %d rows, want 2", n)
	}
	r, err := m.LeastPrivilege(ctx, System(), c.Key.ID, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Held, []string{"*:read", "*:write", "audit:read", "billing:read"}) {
		t.Errorf("held %v", r.Held)
	}
	if !slices.Equal(r.Unused, []string{"*:write", "audit:read"}) {
		t.Errorf("unused %v, want *:write and audit:read", r.Unused)
	}
	if !slices.Equal(r.Suggested, []string{"billing:read", "cluster:read"}) || r.SuggestedWorkspace != "tiger" {
		t.Errorf("suggested %v in %q, want billing:read cluster:read in tiger", r.Suggested, r.SuggestedWorkspace)
	}

	// Forty days on, only cluster:read is still exercised.
	f.clock.Advance(40 * 24 * time.Hour)
	m.Exercised(k, clusterRead, "tiger")
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m.Exercised(k, clusterRead, "tiger") // re-queued: the last one is over an hour old
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err = m.LeastPrivilege(ctx, System(), c.Key.ID, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Suggested, []string{"cluster:read"}) || !slices.Contains(r.Unused, "billing:read") {
		t.Errorf("after 40 days: suggested %v, unused %v; want cluster:read only, billing:read unused", r.Suggested, r.Unused)
	}
	if len(r.Exercised) != 2 {
		t.Errorf("exercised %v, want both, the old one too", r.Exercised)
	}

	// Who may read the report: those who may view the key.
	outsider := Principal{ID: "o", Workspace: "lion", Permissions: mustSet(t, "apikey:view")}
	if _, err := m.LeastPrivilege(ctx, outsider, c.Key.ID, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("a principal of another workspace: %v, want ErrNotFound", err)
	}
	if _, err := m.LeastPrivilege(ctx, System(), c.Key.ID, 0); !errors.Is(err, ErrInvalidField) {
		t.Errorf("a zero window: %v, want ErrInvalidField", err)
	}
	// A store that records nothing says so.
	if _, err := f.m.LeastPrivilege(ctx, System(), c.Key.ID, time.Hour); err != nil {
		t.Errorf("memory store: %v", err)
	}
	plain, err := New(Config{Store: hidden{f.store}, Hasher: f.cfg.Hasher, Auditor: &recorder{}, LastUsedInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close(ctx) })
	if _, err := plain.LeastPrivilege(ctx, System(), c.Key.ID, time.Hour); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a store without exercises: %v, want ErrUnsupported", err)
	}
}

// hidden hides every optional capability of a store.
type hidden struct{ store.Store }

// TestManagementIsExercised: a key that manages keys records apikey:manage
// and apikey:view in the workspace it acted in.
func TestManagementIsExercised(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.LastUsedInterval = time.Hour })
	c := f.create(t, CreateRequest{Workspace: "tiger", Role: "owner"})
	k, err := f.m.Verify(ctx, c.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Create(ctx, k.Principal(), CreateRequest{Name: "child", Workspace: "tiger", Role: "viewer", Expiry: ExpireAfterDays(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.List(ctx, k.Principal(), ListRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := f.m.LeastPrivilege(ctx, System(), c.Key.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Suggested, []string{"apikey:manage", "apikey:view"}) || r.SuggestedWorkspace != "tiger" {
		t.Errorf("suggested %v in %q, want apikey:manage and apikey:view in tiger", r.Suggested, r.SuggestedWorkspace)
	}
}

func TestExercisedAllocatesNothing(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LastUsedInterval = time.Hour })
	c := f.create(t, CreateRequest{})
	k, err := f.m.Verify(context.Background(), c.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	p := permission.MustParse("cluster:read")
	f.m.Exercised(k, p, "tiger")
	if n := testing.AllocsPerRun(1000, func() { f.m.Exercised(k, p, "tiger") }); n != 0 {
		t.Errorf("Exercised of a recorded permission allocates %v times, want 0", n)
	}
}

func BenchmarkExercised(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.LastUsedInterval = time.Hour })
	c := f.create(b, CreateRequest{})
	k, err := f.m.Verify(context.Background(), c.Token.Reveal())
	if err != nil {
		b.Fatal(err)
	}
	p := permission.MustParse("cluster:read")
	b.ReportAllocs()
	for b.Loop() {
		f.m.Exercised(k, p, "tiger")
	}
}

package keygate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/keygate/keygate/internal/oteltest"
)

// telemetryFixture is a fixture whose Manager reports to an in-memory
// metric and span recorder.
type telemetryFixture struct {
	*fixture
	meters *oteltest.MeterProvider
	spans  *oteltest.TracerProvider
}

func newTelemetryFixture(t *testing.T, edit ...func(*Config)) *telemetryFixture {
	t.Helper()
	mp := oteltest.NewMeterProvider()
	tp := oteltest.NewTracerProvider()
	f := newFixture(t, append([]func(*Config){func(c *Config) {
		c.MeterProvider = mp
		c.TracerProvider = tp
	}}, edit...)...)
	return &telemetryFixture{fixture: f, meters: mp, spans: tp}
}

// collect returns the metrics of the Manager's scope, by instrument name.
func (f *telemetryFixture) collect(t *testing.T) map[string]oteltest.Metric {
	t.Helper()
	ms, err := f.meters.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]oteltest.Metric{}
	for _, m := range ms {
		if m.Scope != ScopeName {
			t.Errorf("scope %q, want %q", m.Scope, ScopeName)
		}
		out[m.Name] = m
	}
	return out
}

// is reports whether m is an instrument of kind, of float64 values if
// float, else of int64 values.
func is(m oteltest.Metric, kind oteltest.Kind, float bool) bool {
	return m.Kind == kind && m.Float == float
}

// sumOf returns the value of the counter point whose attributes include
// key=value.
func sumOf(t *testing.T, m oteltest.Metric, key attribute.Key, value string) int64 {
	t.Helper()
	if !is(m, oteltest.Counter, false) {
		t.Fatalf("%s is a %v (float %v), not an int64 Counter", m.Name, m.Kind, m.Float)
	}
	var n int64
	for _, p := range m.Points {
		if v, ok := p.Attributes.Value(key); ok && v.AsString() == value {
			n += p.Int
		}
	}
	return n
}

// TestTelemetry drives every flow of a Manager with a provider installed
// and checks each instrument and span, and that no attribute, span name,
// status or event anywhere holds a token, a hash or a pepper.
func TestTelemetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feed := &chanFeed{ids: make(chan uuid.UUID, 1)}
	f := newTelemetryFixture(t, func(c *Config) { c.ChangeFeed = feed; c.LastUsedInterval = time.Hour })
	var secrets []string
	addSecret := func(b []byte) {
		secrets = append(secrets, string(b), hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b),
			base64.RawURLEncoding.EncodeToString(b), fmt.Sprintf("%v", b), fmt.Sprintf("%x", b))
	}
	for _, id := range f.cfg.Hasher.PepperIDs() {
		// The test hasher's pepper is its id repeated (testHasher).
		addSecret(bytes.Repeat([]byte(id), 32))
	}
	create := func(req CreateRequest) *Created {
		c := f.create(t, req)
		tok := c.Token.Reveal()
		secrets = append(secrets, tok)
		addSecret(c.Key.Hash)
		d := digestOf(tok)
		addSecret(d[:])
		return c
	}

	valid := create(CreateRequest{Workspace: "tiger", Role: "editor"})
	for range 3 {
		if _, err := f.m.Verify(ctx, valid.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.Verify(ctx, valid.Token.Reveal()[:20]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed: %v", err)
	}
	unknown, _ := f.m.format.Generate()
	secrets = append(secrets, unknown.Reveal())
	for range 2 {
		if _, err := f.m.Verify(ctx, unknown.Reveal()); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown: %v", err)
		}
	}
	expiring := create(CreateRequest{Expiry: ExpireAfter(time.Hour)})
	revoked := create(CreateRequest{})
	if _, err := f.m.Revoke(ctx, System(), revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	exhausted := create(CreateRequest{Limits: Limits{Uses: &zero}})
	limited := create(CreateRequest{Limits: Limits{Rate: RateLimit{Requests: 1, Window: time.Hour}}})
	fenced := create(CreateRequest{Limits: Limits{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	down := create(CreateRequest{})
	f.clock.Advance(2 * time.Hour)
	for _, c := range []struct {
		tok  string
		want error
	}{
		{expiring.Token.Reveal(), ErrExpired},
		{revoked.Token.Reveal(), ErrRevoked},
		{exhausted.Token.Reveal(), ErrUsageExhausted},
		{limited.Token.Reveal(), nil},
		{limited.Token.Reveal(), ErrRateLimited},
		{fenced.Token.Reveal(), ErrAddressDenied},
	} {
		if _, err := f.m.Verify(ctx, c.tok); c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Fatalf("Verify: %v, want %v", err, c.want)
		}
	}
	f.store.fail.Store(true)
	if _, err := f.m.Verify(ctx, down.Token.Reveal()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("store down: %v", err)
	}
	if _, err := f.m.Get(ctx, System(), down.Key.ID); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get, store down: %v", err)
	}
	f.store.fail.Store(false)

	// Management: every operation, a refused one included.
	updated, err := f.m.Update(ctx, System(), valid.Key.ID, UpdateRequest{Name: new("renamed")})
	if err != nil {
		t.Fatal(err)
	}
	regen, err := f.m.Regenerate(ctx, System(), updated.ID, RegenerateRequest{Expiry: ExpireAfterDays(1), GracePeriod: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, regen.Token.Reveal())
	addSecret(regen.Key.Hash)
	if _, err := f.m.Get(ctx, System(), updated.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.List(ctx, System(), ListRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Get(ctx, Principal{ID: "user:nobody"}, updated.ID); err == nil {
		t.Fatal("Get by nobody succeeded")
	}
	if err := f.m.Delete(ctx, System(), down.Key.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_ = f.m.Health(ctx) // the store's health is asked even if the feed is not yet up

	ms := f.collect(t)
	verifications := ms["keygate.verifications"]
	for outcome, want := range map[string]int64{
		"valid": 4, "malformed": 1, "invalid": 2, "expired": 1, "revoked": 1,
		"usage_exhausted": 1, "rate_limited": 1, "address_denied": 1, "unavailable": 1,
	} {
		if got := sumOf(t, verifications, attrOutcome, outcome); got != want {
			t.Errorf("verifications{outcome=%s} = %d, want %d", outcome, got, want)
		}
	}
	if h := ms["keygate.verification.duration"]; !is(h, oteltest.Histogram, true) || len(h.Points) == 0 {
		t.Error("no verification duration recorded")
	}
	if got := sumOf(t, ms["keygate.cache.hits"], attrCache, "key"); got < 3 {
		t.Errorf("key cache hits = %d, want at least 3", got)
	}
	if got := sumOf(t, ms["keygate.cache.hits"], attrCache, "unknown"); got != 1 {
		t.Errorf("unknown-token cache hits = %d, want 1", got)
	}
	if got := sumOf(t, ms["keygate.cache.misses"], attrCache, "key"); got == 0 {
		t.Error("no key cache miss counted")
	}
	if g := ms["keygate.cache.size"]; !is(g, oteltest.ObservableGauge, false) || len(g.Points) != 2 {
		t.Errorf("cache size: %+v, want a point per cache", g)
	}
	if got := sumOf(t, ms["keygate.rate_limit.decisions"], attrDecision, "allowed"); got != 1 {
		t.Errorf("rate-limit decisions allowed = %d, want 1", got)
	}
	if got := sumOf(t, ms["keygate.rate_limit.decisions"], attrDecision, "refused"); got != 1 {
		t.Errorf("rate-limit decisions refused = %d, want 1", got)
	}
	if got := sumOf(t, ms["keygate.store.errors"], attrStoreOp, "get_by_hash"); got != 1 {
		t.Errorf("store errors of get_by_hash = %d, want 1", got)
	}
	if got := sumOf(t, ms["keygate.store.errors"], attrErrorType, "_OTHER"); got != 2 {
		t.Errorf("store errors of type _OTHER = %d, want 2", got)
	}
	durations := ms["keygate.store.operation.duration"]
	if !is(durations, oteltest.Histogram, true) {
		t.Fatal("no store duration histogram")
	}
	ops := map[string]bool{}
	for _, p := range durations.Points {
		v, _ := p.Attributes.Value(attrStoreOp)
		ops[v.AsString()] = true
	}
	for _, op := range []string{"create", "get", "get_by_hash", "list", "update", "delete", "touch_last_used", "spend_uses", "health"} {
		if !ops[op] {
			t.Errorf("no store duration recorded for %s", op)
		}
	}
	if g := ms["keygate.change_feed.up"]; !is(g, oteltest.ObservableGauge, false) || len(g.Points) != 1 {
		t.Errorf("change feed state: %+v", g)
	}

	names := map[string]bool{}
	for _, s := range f.spans.Ended() {
		names[s.Name] = true
	}
	for _, n := range []string{"keygate.Manager.Create", "keygate.Manager.Get", "keygate.Manager.List", "keygate.Manager.Update",
		"keygate.Manager.Regenerate", "keygate.Manager.Revoke", "keygate.Manager.Delete",
		"keygate.store.get_by_hash", "keygate.store.create", "keygate.store.update", "keygate.store.spend_uses"} {
		if !names[n] {
			t.Errorf("no span %q", n)
		}
	}

	// Nothing anywhere holds a secret.
	check := func(where, s string) {
		for _, secret := range secrets {
			if len(secret) >= 8 && strings.Contains(s, secret) {
				t.Errorf("%s holds a secret: %q", where, s)
			}
		}
	}
	checkAttrs := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			check(where+" "+string(kv.Key), kv.Value.String())
		}
	}
	for _, s := range f.spans.Ended() {
		check("span name", s.Name)
		check("span status", s.Status.Description)
		checkAttrs("span "+s.Name, s.Attributes)
		for _, e := range s.Events {
			check("span event", e.Name)
			checkAttrs("span event "+e.Name, e.Attributes)
		}
	}
	for name, m := range ms {
		if !is(m, oteltest.Counter, false) && !is(m, oteltest.ObservableGauge, false) && !is(m, oteltest.Histogram, true) {
			t.Errorf("%s: unexpected %v (float %v)", name, m.Kind, m.Float)
		}
		for _, p := range m.Points {
			checkAttrs("metric "+name, p.Attributes.ToSlice())
		}
	}
	if len(secrets) < 20 {
		t.Fatalf("only %d secrets checked", len(secrets))
	}
}

// TestTelemetryFeedDown checks the change feed's gauge: 0 while the feed
// is down.
func TestTelemetryFeedDown(t *testing.T) {
	t.Parallel()
	f := newTelemetryFixture(t, func(c *Config) { c.ChangeFeed = brokenFeed{} })
	deadline := time.Now().Add(2 * time.Second)
	for {
		g := f.collect(t)["keygate.change_feed.up"]
		if !is(g, oteltest.ObservableGauge, false) {
			t.Fatalf("change feed gauge is a %v (float %v), not an int64 ObservableGauge", g.Kind, g.Float)
		}
		if len(g.Points) == 1 && g.Points[0].Int == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("change feed gauge %+v, want 0 for a failing feed", g.Points)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type brokenFeed struct{}

func (brokenFeed) Watch(context.Context, func(uuid.UUID)) error {
	return errors.New("feed down")
}

// BenchmarkTelemetryOverhead measures what the telemetry adds to a cached
// Verify + Authorize while no provider records (the global providers, as
// in an application that installs none): "telemetry=with" is Verify;
// "telemetry=without" is the same verification with the instruments
// bypassed, through verify, which Verify wraps with the verification
// counter and histogram, at the Manager's time and with the caches'
// lookups uncounted. Compare them with
// `benchstat -col /telemetry`.
func BenchmarkTelemetryOverhead(b *testing.B) {
	ctx := context.Background()
	p := mustPerm(b, "cluster:read")
	b.Run("telemetry=with", func(b *testing.B) {
		m, tok := benchKey(b)
		b.ReportAllocs()
		for b.Loop() {
			k, err := m.Verify(ctx, tok)
			if err != nil || m.Authorize(k, p, "tiger") != nil {
				b.Fatal("denied")
			}
		}
	})
	b.Run("telemetry=without", func(b *testing.B) {
		m, tok := benchKey(b)
		b.ReportAllocs()
		for b.Loop() {
			k, err := m.verify(ctx, m.now(), false, tok, netip.Addr{}, nil, nil, false)
			if err != nil || m.Authorize(k, p, "tiger") != nil {
				b.Fatal("denied")
			}
		}
	})
}

// TestTelemetryCountsEveryVerification checks that with a recording
// MeterProvider every verification is counted, and every cache lookup,
// from concurrent goroutines and without the clock moving (no recheck of
// the gate ever happens).
func TestTelemetryCountsEveryVerification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newTelemetryFixture(t)
	tok := f.create(t, CreateRequest{Workspace: "tiger", Role: "editor"}).Token.Reveal()
	unknown, _ := f.m.format.Generate()
	const workers, each = 4, 250
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range each {
				if i%5 == 4 {
					if _, err := f.m.Verify(ctx, unknown.Reveal()); !errors.Is(err, ErrInvalid) {
						t.Errorf("unknown token: %v", err)
					}
					continue
				}
				if _, err := f.m.Verify(ctx, tok); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	ms := f.collect(t)
	total := int64(workers * each)
	if got := sumOf(t, ms["keygate.verifications"], attrOutcome, "valid"); got != total*4/5 {
		t.Errorf("valid verifications = %d, want %d", got, total*4/5)
	}
	if got := sumOf(t, ms["keygate.verifications"], attrOutcome, "invalid"); got != total/5 {
		t.Errorf("invalid verifications = %d, want %d", got, total/5)
	}
	// Every verification looks the token up in the key cache; an unknown
	// token found nowhere there is then looked up in the unknown cache.
	keyLookups := sumOf(t, ms["keygate.cache.hits"], attrCache, "key") + sumOf(t, ms["keygate.cache.misses"], attrCache, "key")
	if keyLookups != total {
		t.Errorf("key cache lookups = %d, want %d", keyLookups, total)
	}
	unknownLookups := sumOf(t, ms["keygate.cache.hits"], attrCache, "unknown") + sumOf(t, ms["keygate.cache.misses"], attrCache, "unknown")
	if want := total / 5; unknownLookups < want {
		t.Errorf("unknown cache lookups = %d, want at least %d", unknownLookups, want)
	}
	h := ms["keygate.verification.duration"]
	if !is(h, oteltest.Histogram, true) {
		t.Fatal("no verification duration histogram")
	}
	var timed uint64
	for _, p := range h.Points {
		timed += p.Count
	}
	if timed != uint64(total) {
		t.Errorf("timed verifications = %d, want %d", timed, total)
	}
}

// switchMeterProvider is a MeterProvider whose counters count their Add
// calls and report Enabled as its enabled says, as a provider that starts
// recording after New does (OpenTelemetry's global one, once the
// application installs its own). Its histograms record nothing.
type switchMeterProvider struct {
	noop.MeterProvider
	enabled atomic.Bool
	adds    atomic.Int64
}

func (p *switchMeterProvider) Meter(string, ...metric.MeterOption) metric.Meter {
	return switchMeter{p: p}
}

// switchMeter is a switchMeterProvider's Meter.
type switchMeter struct {
	noop.Meter
	p *switchMeterProvider
}

func (m switchMeter) Int64Counter(string, ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return switchCounter{p: m.p}, nil
}

// switchCounter is a switchMeterProvider's counter.
type switchCounter struct {
	noop.Int64Counter
	p *switchMeterProvider
}

func (c switchCounter) Add(context.Context, int64, ...metric.AddOption) { c.p.adds.Add(1) }

func (c switchCounter) Enabled(context.Context) bool { return c.p.enabled.Load() }

// TestTelemetryGate checks that the verification path calls no instrument
// while none records, and that a provider that starts recording after New
// is asked again once per period of the Manager's clock, and then counts
// every verification.
func TestTelemetryGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mp := &switchMeterProvider{}
	f := newFixture(t, func(c *Config) { c.MeterProvider = mp })
	tok := f.create(t, CreateRequest{}).Token.Reveal()
	verify := func(n int) {
		t.Helper()
		for range n {
			if _, err := f.m.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	verify(10)
	if n := mp.adds.Load(); n != 0 {
		t.Fatalf("%d instrument calls while nothing records, want none", n)
	}
	mp.enabled.Store(true)
	f.clock.Advance(time.Duration(recheckPeriod) - 1)
	verify(10)
	if n := mp.adds.Load(); n != 0 {
		t.Fatalf("%d instrument calls before the recheck period, want none", n)
	}
	f.clock.Advance(1)
	verify(3)
	// Each verification adds to the verification counter and to the key
	// cache's hit counter.
	if n := mp.adds.Load(); n != 6 {
		t.Fatalf("%d instrument calls for 3 verifications after the recheck period, want 6", n)
	}
	// Once on, the gate stays on.
	mp.enabled.Store(false)
	f.clock.Advance(10 * time.Second)
	verify(1)
	if n := mp.adds.Load(); n != 8 {
		t.Fatalf("%d instrument calls, want 8", n)
	}
}

// TestRecordGate checks the gate's recheck: at most once per period,
// whatever the number of concurrent callers, and at once when the clock
// went back by more than a period.
func TestRecordGate(t *testing.T) {
	t.Parallel()
	var asked atomic.Int64
	var enabled atomic.Bool
	var g recordGate
	const t0 = int64(1_000_000_000_000)
	g.init(func() bool { asked.Add(1); return enabled.Load() }, t0)
	if g.recording(t0) || asked.Load() != 1 {
		t.Fatalf("recording %v after %d asks, want off after 1 (at init)", g.recording(t0), asked.Load())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range int64(1000) {
				g.recording(t0 + int64(recheckPeriod) + i)
			}
		})
	}
	wg.Wait()
	if n := asked.Load(); n != 2 {
		t.Fatalf("asked %d times over one period, want 2 (init and one recheck)", n)
	}
	// The clock went back two periods: due at once.
	if g.recording(t0 - int64(recheckPeriod)) {
		t.Fatal("on, want off")
	}
	if n := asked.Load(); n != 3 {
		t.Fatalf("asked %d times after the clock went back, want 3", n)
	}
	enabled.Store(true)
	if g.recording(t0 - 1) {
		t.Fatal("on before the period, want off")
	}
	if !g.recording(t0) {
		t.Fatal("off after the period, want on")
	}
	if !g.recording(t0-10*int64(recheckPeriod)) || asked.Load() != 4 {
		t.Fatalf("once on: asked %d times, want 4", asked.Load())
	}
	p := int64(recheckPeriod)
	for _, c := range []struct {
		now  int64
		want bool
	}{{t0, false}, {t0 + p - 1, false}, {t0 + p, true}, {t0 - p, false}, {t0 - p - 1, true},
		{math.MaxInt64, true}, {math.MinInt64, true}} {
		if got := due(c.now, t0); got != c.want {
			t.Errorf("due(t0%+d, t0) = %v, want %v", c.now-t0, got, c.want)
		}
	}
	var never recordGate
	never.init(func() bool { return false }, t0)
	never.enabled = nil
	if never.recording(t0 + 2*int64(recheckPeriod)) {
		t.Fatal("a gate without instruments is on")
	}
}

// TestTelemetryGlobalProviderLater checks that a Manager using
// OpenTelemetry's global MeterProvider (the default) starts counting
// verifications within a recheck period of the application installing its
// own provider after New. otel.SetMeterProvider changes the process's
// provider for good, so the test runs itself again in a child process.
func TestTelemetryGlobalProviderLater(t *testing.T) {
	if os.Getenv("KEYGATE_TEST_GLOBAL_METER") != "1" {
		t.Parallel()
		cmd := exec.Command(os.Args[0], "-test.run=^TestTelemetryGlobalProviderLater$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "KEYGATE_TEST_GLOBAL_METER=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestTelemetryGlobalProviderLater") {
			t.Fatalf("child process: %v\n%s", err, out)
		}
		return
	}
	ctx := context.Background()
	f := newFixture(t) // Config.MeterProvider nil: the global provider
	tok := f.create(t, CreateRequest{}).Token.Reveal()
	verify := func(n int) {
		t.Helper()
		for range n {
			if _, err := f.m.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	verify(10)
	mp := oteltest.NewMeterProvider()
	otel.SetMeterProvider(mp)
	tf := &telemetryFixture{fixture: f, meters: mp}
	verify(5)
	// Nothing recorded yet: the recorder reports no such metric at all.
	if m, ok := tf.collect(t)["keygate.verifications"]; ok {
		t.Fatalf("verifications counted within the recheck period: %+v, want none (rechecked at most once per period)", m.Points)
	}
	f.clock.Advance(time.Duration(recheckPeriod))
	verify(7)
	ms := tf.collect(t)
	if got := sumOf(t, ms["keygate.verifications"], attrOutcome, "valid"); got != 7 {
		t.Errorf("%d verifications counted after the recheck period, want 7", got)
	}
	if got := sumOf(t, ms["keygate.cache.hits"], attrCache, "key"); got != 7 {
		t.Errorf("%d cache hits counted after the recheck period, want 7", got)
	}
}

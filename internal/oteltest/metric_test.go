package oteltest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/keygate/keygate/internal/oteltest"
)

var (
	setA = attribute.NewSet(attribute.String("k", "a"))
	setB = attribute.NewSet(attribute.String("k", "b"))
)

// collect collects p, failing the test on an error, and returns the
// metrics by name.
func collect(t *testing.T, p *oteltest.MeterProvider) map[string]oteltest.Metric {
	t.Helper()
	ms, err := p.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]oteltest.Metric{}
	for _, m := range ms {
		if _, dup := out[m.Name]; dup {
			t.Fatalf("Collect returned %q twice", m.Name)
		}
		out[m.Name] = m
	}
	return out
}

// point returns m's point of set, failing the test if there is none.
func point(t *testing.T, m oteltest.Metric, set attribute.Set) oteltest.Point {
	t.Helper()
	for _, p := range m.Points {
		if p.Attributes.Equals(&set) {
			return p
		}
	}
	t.Fatalf("%s: no point with %v in %+v", m.Name, set.ToSlice(), m.Points)
	return oteltest.Point{}
}

// TestMeterProviderSync checks the aggregation of every synchronous
// instrument: sums for counters and histograms, the last value for
// gauges, a point per attribute set with its count, and the instrument's
// identity.
func TestMeterProviderSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := oteltest.NewMeterProvider()
	m := p.Meter("scope/one")
	a, b := metric.WithAttributeSet(setA), metric.WithAttributeSet(setB)

	ic, _ := m.Int64Counter("i.counter", metric.WithUnit("{x}"), metric.WithDescription("ints"))
	ic.Add(ctx, 2, a)
	ic.Add(ctx, 3, a)
	ic.Add(ctx, 7, b)
	iu, _ := m.Int64UpDownCounter("i.updown")
	iu.Add(ctx, 5, a)
	iu.Add(ctx, -8, a)
	ih, _ := m.Int64Histogram("i.histogram", metric.WithExplicitBucketBoundaries(1, 10))
	ih.Record(ctx, 4, a)
	ih.Record(ctx, 6, a)
	ig, _ := m.Int64Gauge("i.gauge")
	ig.Record(ctx, 9, a)
	ig.Record(ctx, 4, a)
	fc, _ := m.Float64Counter("f.counter")
	fc.Add(ctx, 0.5, b)
	fc.Add(ctx, 0.25, b)
	fu, _ := m.Float64UpDownCounter("f.updown")
	fu.Add(ctx, -1.5)
	fh, _ := m.Float64Histogram("f.histogram")
	fh.Record(ctx, 0.125, a)
	fh.Record(ctx, 0.25, b)
	fh.Record(ctx, 0.5, b)
	fg, _ := m.Float64Gauge("f.gauge")
	fg.Record(ctx, 2.5, b)
	fg.Record(ctx, 1.5, b)
	if _, err := m.Int64Counter("i.unused"); err != nil {
		t.Fatal(err)
	}
	for _, e := range []interface{ Enabled(context.Context) bool }{ic, iu, ih, ig, fc, fu, fh, fg} {
		if !e.Enabled(ctx) {
			t.Errorf("%T not enabled", e)
		}
	}

	ms, err := p.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
		if m.Scope != "scope/one" {
			t.Errorf("%s: scope %q, want scope/one", m.Name, m.Scope)
		}
	}
	if got, want := strings.Join(names, " "), "i.counter i.updown i.histogram i.gauge f.counter f.updown f.histogram f.gauge"; got != want {
		t.Fatalf("metrics %s, want %s (in creation order, none for an instrument never used)", got, want)
	}
	got := collect(t, p)
	c := got["i.counter"]
	if c.Kind != oteltest.Counter || c.Float || c.Unit != "{x}" || c.Description != "ints" || len(c.Points) != 2 {
		t.Fatalf("i.counter: %+v", c)
	}
	if !c.Points[0].Attributes.Equals(&setA) || !c.Points[1].Attributes.Equals(&setB) {
		t.Errorf("i.counter points not ordered by attributes: %+v", c.Points)
	}
	for _, tt := range []struct {
		metric string
		set    attribute.Set
		n      int64
		f      float64
		count  uint64
	}{
		{"i.counter", setA, 5, 0, 2},
		{"i.counter", setB, 7, 0, 1},
		{"i.updown", setA, -3, 0, 2},
		{"i.histogram", setA, 10, 0, 2},
		{"i.gauge", setA, 4, 0, 2},
		{"f.counter", setB, 0, 0.75, 2},
		{"f.updown", *attribute.EmptySet(), 0, -1.5, 1},
		{"f.histogram", setA, 0, 0.125, 1},
		{"f.histogram", setB, 0, 0.75, 2},
		{"f.gauge", setB, 0, 1.5, 2},
	} {
		pt := point(t, got[tt.metric], tt.set)
		if pt.Int != tt.n || pt.Float != tt.f || pt.Count != tt.count {
			t.Errorf("%s%v = {Int %d Float %g Count %d}, want {%d %g %d}", tt.metric, tt.set.ToSlice(), pt.Int, pt.Float, pt.Count, tt.n, tt.f, tt.count)
		}
	}
	for name, want := range map[string]oteltest.Kind{
		"i.updown": oteltest.UpDownCounter, "i.histogram": oteltest.Histogram, "i.gauge": oteltest.Gauge,
		"f.counter": oteltest.Counter, "f.updown": oteltest.UpDownCounter, "f.histogram": oteltest.Histogram, "f.gauge": oteltest.Gauge,
	} {
		if m := got[name]; m.Kind != want || m.Float != strings.HasPrefix(name, "f.") {
			t.Errorf("%s: kind %v float %v, want %v float %v", name, m.Kind, m.Float, want, strings.HasPrefix(name, "f."))
		}
	}
	if b := got["i.histogram"].Bounds; fmt.Sprint(b) != "[1 10]" {
		t.Errorf("i.histogram bounds %v, want [1 10]", b)
	}
	// Sync instruments keep their points from one Collect to the next.
	ic.Add(ctx, 1, a)
	if pt := point(t, collect(t, p)["i.counter"], setA); pt.Int != 6 || pt.Count != 3 {
		t.Errorf("i.counter{k=a} after another Add: %+v, want 6 after 3", pt)
	}
}

// TestMeterProviderObservable checks observable instruments: callbacks
// registered with RegisterCallback or given at creation run at every
// Collect, a Collect holds only its own observations, and unregistered
// callbacks, their errors and observations the API forbids are handled
// as the SDK does.
func TestMeterProviderObservable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := oteltest.NewMeterProvider()
	m := p.Meter("scope")
	gauge, _ := m.Int64ObservableGauge("o.gauge", metric.WithUnit("{entry}"))
	counter, _ := m.Float64ObservableCounter("o.counter")
	other, _ := m.Int64ObservableGauge("o.other")
	var runs int
	var fail error
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		runs++
		o.ObserveInt64(gauge, int64(10*runs), metric.WithAttributeSet(setA))
		if runs == 1 {
			o.ObserveInt64(gauge, 1, metric.WithAttributeSet(setB))
		}
		o.ObserveFloat64(counter, 2.5)
		return fail
	}, gauge, counter)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = m.Int64ObservableUpDownCounter("o.updown", metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(-4, metric.WithAttributeSet(setB))
		return nil
	}))
	_, _ = m.Float64ObservableGauge("o.fgauge", metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
		o.Observe(0.5)
		o.Observe(0.75)
		return nil
	}))
	_, _ = m.Int64ObservableCounter("o.icounter", metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(3)
		return nil
	}))
	_, _ = m.Float64ObservableUpDownCounter("o.fupdown", metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
		o.Observe(-0.5, metric.WithAttributeSet(setA))
		return nil
	}))

	first := collect(t, p)
	if g := first["o.gauge"]; g.Kind != oteltest.ObservableGauge || g.Float || g.Unit != "{entry}" || len(g.Points) != 2 ||
		point(t, g, setA).Int != 10 || point(t, g, setB).Int != 1 {
		t.Errorf("first o.gauge: %+v", g)
	}
	if _, ok := first["o.other"]; ok {
		t.Error("o.other, never observed, was collected")
	}
	for name, want := range map[string]oteltest.Point{
		"o.counter":  {Attributes: *attribute.EmptySet(), Float: 2.5, Count: 1},
		"o.updown":   {Attributes: setB, Int: -4, Count: 1},
		"o.fgauge":   {Attributes: *attribute.EmptySet(), Float: 0.75, Count: 2},
		"o.icounter": {Attributes: *attribute.EmptySet(), Int: 3, Count: 1},
		"o.fupdown":  {Attributes: setA, Float: -0.5, Count: 1},
	} {
		pt := point(t, first[name], want.Attributes)
		if pt.Int != want.Int || pt.Float != want.Float || pt.Count != want.Count || len(first[name].Points) != 1 {
			t.Errorf("%s: %+v, want the one point %+v", name, first[name].Points, want)
		}
	}
	second := collect(t, p)
	if g := second["o.gauge"]; len(g.Points) != 1 || point(t, g, setA).Int != 20 || point(t, g, setA).Count != 1 {
		t.Errorf("second o.gauge: %+v, want only {k=a} 20 (a Collect holds its own observations)", g.Points)
	}
	if runs != 2 {
		t.Fatalf("callback ran %d times for 2 Collects", runs)
	}

	fail = errors.New("callback failed")
	if _, err := p.Collect(ctx); !errors.Is(err, fail) {
		t.Errorf("Collect: %v, want the callback's error", err)
	}
	fail = nil
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	third := collect(t, p)
	if runs != 3 {
		t.Errorf("callback ran %d times, want 3 (none after Unregister)", runs)
	}
	if _, ok := third["o.gauge"]; ok {
		t.Error("o.gauge collected after its callback was unregistered")
	}
	if _, ok := third["o.updown"]; !ok {
		t.Error("o.updown's own callback stopped with another's Unregister")
	}

	// An observation of an instrument the callback was not registered for,
	// or of another implementation's, is refused and dropped.
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(other, 1)
		o.ObserveInt64(noopGauge(t), 1)
		return nil
	}, gauge)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.Collect(ctx)
	if err == nil || !strings.Contains(err.Error(), `"o.other" by a callback not registered for it`) || !strings.Contains(err.Error(), "not an instrument of this implementation") {
		t.Errorf("Collect: %v, want the two refused observations", err)
	}
	for _, m := range ms {
		if m.Name == "o.other" {
			t.Errorf("refused observation recorded: %+v", m)
		}
	}

	// RegisterCallback refuses instruments of another implementation or
	// of another Meter.
	if _, err := m.RegisterCallback(func(context.Context, metric.Observer) error { return nil }, noopGauge(t)); err == nil {
		t.Error("RegisterCallback took an instrument of another implementation")
	}
	if _, err := p.Meter("another").RegisterCallback(func(context.Context, metric.Observer) error { return nil }, gauge); err == nil {
		t.Error("RegisterCallback took an instrument of another Meter")
	}
	if _, err := oteltest.NewMeterProvider().Meter("scope").RegisterCallback(func(context.Context, metric.Observer) error { return nil }, gauge); err == nil {
		t.Error("RegisterCallback took an instrument of another MeterProvider")
	}
}

func noopGauge(t *testing.T) metric.Int64ObservableGauge {
	t.Helper()
	g, err := noop.NewMeterProvider().Meter("x").Int64ObservableGauge("noop")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestMeterProviderRefuses checks what the SDK refuses: invalid names,
// bucket boundaries that do not increase, and a name used for two kinds of
// instrument; and that an instrument created again is the same one.
func TestMeterProviderRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := oteltest.NewMeterProvider()
	m := p.Meter("scope")
	for _, name := range []string{"", "1x", "_x", ".x", "a b", "a:b", "é", strings.Repeat("a", 256)} {
		if _, err := m.Int64Counter(name); !errors.Is(err, oteltest.ErrInstrumentName) {
			t.Errorf("Int64Counter(%q): %v, want ErrInstrumentName", name, err)
		}
		if _, err := m.Float64ObservableGauge(name); !errors.Is(err, oteltest.ErrInstrumentName) {
			t.Errorf("Float64ObservableGauge(%q): %v, want ErrInstrumentName", name, err)
		}
	}
	for _, name := range []string{"a", "Z", "keygate.cache.hits", "a/b-c_d.e9", strings.Repeat("a", 255)} {
		if _, err := m.Int64Counter(name); err != nil {
			t.Errorf("Int64Counter(%q): %v", name, err)
		}
	}
	for _, bounds := range [][]float64{{1, 1}, {2, 1}, {0, 1, 0.5}} {
		h, err := m.Float64Histogram("h.bad", metric.WithExplicitBucketBoundaries(bounds...))
		if err == nil {
			t.Errorf("boundaries %v accepted", bounds)
		}
		h.Record(ctx, 1)
	}
	if _, err := m.Int64Histogram("h.good", metric.WithExplicitBucketBoundaries(-1, 0, 1e9)); err != nil {
		t.Errorf("increasing boundaries: %v", err)
	}
	if b := collect(t, p)["h.bad"].Bounds; b != nil {
		t.Errorf("invalid boundaries kept: %v", b)
	}

	// The same identity is the same instrument; another kind of the same
	// name is an error, and a separate instrument.
	c1, _ := m.Int64Counter("same")
	c2, err := m.Int64Counter("same")
	if err != nil {
		t.Fatal(err)
	}
	c1.Add(ctx, 1)
	c2.Add(ctx, 2)
	g, err := m.Int64Gauge("same")
	if err == nil || !strings.Contains(err.Error(), "created as a Counter and as a Gauge") {
		t.Errorf("a Gauge named as a Counter: %v", err)
	}
	g.Record(ctx, 40)
	ms, _ := p.Collect(ctx)
	var sums []string
	for _, m := range ms {
		if m.Name == "same" {
			sums = append(sums, fmt.Sprint(m.Kind, "=", m.Points[0].Int))
		}
	}
	if got := strings.Join(sums, " "); got != "Counter=3 Gauge=40" {
		t.Errorf("instruments named same: %s, want Counter=3 Gauge=40", got)
	}
	if got := oteltest.Kind(0).String() + " " + oteltest.Kind(99).String(); got != "Kind(0) Kind(99)" {
		t.Errorf("unknown kinds: %s", got)
	}
}

// TestMeterProviderConcurrent records and collects from many goroutines
// (run with -race) and checks that no measurement is lost.
func TestMeterProviderConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := oteltest.NewMeterProvider()
	m := p.Meter("scope")
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c, _ := m.Int64Counter("c")
			h, _ := m.Float64Histogram("h")
			g, _ := m.Int64ObservableGauge(fmt.Sprintf("g%d", w), metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(int64(w))
				return nil
			}))
			_ = g
			for i := range each {
				c.Add(ctx, 1, metric.WithAttributes(attribute.Int("w", w%2)))
				h.Record(ctx, 1)
				if i%100 == 0 {
					if _, err := p.Collect(ctx); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	got := collect(t, p)
	var total int64
	for _, pt := range got["c"].Points {
		total += pt.Int
	}
	if total != workers*each || point(t, got["h"], *attribute.EmptySet()).Count != workers*each {
		t.Errorf("counted %d and %d, want %d", total, point(t, got["h"], *attribute.EmptySet()).Count, workers*each)
	}
	for w := range workers {
		if pt := point(t, got[fmt.Sprintf("g%d", w)], *attribute.EmptySet()); pt.Int != int64(w) {
			t.Errorf("g%d = %d", w, pt.Int)
		}
	}
}

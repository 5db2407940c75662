package oteltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
)

// Kind is the kind of a metric instrument.
type Kind int

// The kinds of instrument, each for int64 and float64 values.
const (
	Counter Kind = iota + 1
	UpDownCounter
	Histogram
	Gauge
	ObservableCounter
	ObservableUpDownCounter
	ObservableGauge
)

var kindNames = [...]string{"Kind(0)", "Counter", "UpDownCounter", "Histogram", "Gauge",
	"ObservableCounter", "ObservableUpDownCounter", "ObservableGauge"}

// String returns the kind's name, such as "ObservableGauge".
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// observable reports whether instruments of kind k are observed by
// callbacks.
func (k Kind) observable() bool { return k >= ObservableCounter }

// Metric is what a [MeterProvider.Collect] found of one instrument.
type Metric struct {
	// Scope is the name of the Meter that created the instrument.
	Scope string
	// Name, Description and Unit are the instrument's.
	Name, Description, Unit string
	// Kind is the instrument's kind.
	Kind Kind
	// Float reports a Float64 instrument, whose values are in Point.Float;
	// those of an Int64 instrument are in Point.Int.
	Float bool
	// Bounds are a histogram's explicit bucket boundaries, if it was
	// given valid ones.
	Bounds []float64
	// Points holds a point per attribute set measured, ordered by the
	// sets' encoding.
	Points []Point
}

// Point aggregates the measurements of an instrument that carried one
// attribute set: for an observable instrument, those of the Collect that
// returned it; for the others, all of them since the instrument was
// created.
type Point struct {
	// Attributes is the measurements' attribute set.
	Attributes attribute.Set
	// Int, for an Int64 instrument, or Float, for a Float64 one, is the sum
	// of the measurements of a counter, an up-down counter or a histogram,
	// and the last one of a gauge.
	Int   int64
	Float float64
	// Count is the number of measurements: calls of Add, Record or Observe.
	Count uint64
}

// MeterProvider is a metric.MeterProvider that records every measurement
// in memory, for [MeterProvider.Collect]. Its instruments are always
// enabled. The zero value is not usable: call [NewMeterProvider]. A
// MeterProvider is safe for concurrent use, as are its Meters and
// instruments.
type MeterProvider struct {
	embedded.MeterProvider

	mu sync.Mutex
	// insts are the instruments, in the order of their creation.
	insts []*instrument
	// byID finds an instrument created again with the same identity.
	byID map[instrumentID]*instrument
	// regs are the registered callbacks, in the order of registration.
	regs []*registration
}

// NewMeterProvider returns a MeterProvider that has recorded nothing.
func NewMeterProvider() *MeterProvider {
	return &MeterProvider{byID: map[instrumentID]*instrument{}}
}

// Meter returns the Meter of the instrumentation scope name. Options are
// ignored: a [Metric]'s scope is only its name.
func (p *MeterProvider) Meter(name string, _ ...metric.MeterOption) metric.Meter {
	return &meter{p: p, scope: name}
}

// Collect runs the callbacks registered for the observable instruments, in
// the order of their registration, and returns a [Metric] for every
// instrument with at least one point, in the order of the instruments'
// creation. Its error joins those the callbacks returned and those of
// observations the API does not allow (of an instrument of another
// implementation, or of one the callback was not registered for, which
// are dropped). Callbacks run in the calling goroutine, with no lock held.
func (p *MeterProvider) Collect(ctx context.Context) ([]Metric, error) {
	p.mu.Lock()
	insts := slices.Clone(p.insts)
	regs := slices.Clone(p.regs)
	p.mu.Unlock()
	c := &collection{points: map[*instrument]map[attribute.Distinct]*Point{}}
	var errs []error
	for _, r := range regs {
		if err := r.run(ctx, c); err != nil {
			errs = append(errs, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	errs = append(errs, c.errs...)
	var out []Metric
	for _, i := range insts {
		var points []Point
		if i.kind.observable() {
			for _, pt := range c.points[i] {
				points = append(points, *pt)
			}
		} else {
			points = i.snapshot()
		}
		if len(points) == 0 {
			continue
		}
		enc := attribute.DefaultEncoder()
		slices.SortFunc(points, func(a, b Point) int {
			return strings.Compare(a.Attributes.Encoded(enc), b.Attributes.Encoded(enc))
		})
		out = append(out, Metric{Scope: i.scope, Name: i.name, Description: i.description, Unit: i.unit,
			Kind: i.kind, Float: i.float, Bounds: slices.Clone(i.bounds), Points: points})
	}
	return out, errors.Join(errs...)
}

// instrumentID is what makes two instruments the same: created again with
// the same identity, an instrument is the one created first, as with the
// SDK.
type instrumentID struct {
	scope, name string
	kind        Kind
	float       bool
}

// instrument holds the identity and, unless observable, the points of an
// instrument. Every API instrument type below embeds one.
type instrument struct {
	scope, name, description, unit string
	kind                           Kind
	float                          bool
	bounds                         []float64
	p                              *MeterProvider

	mu     sync.Mutex
	points map[attribute.Distinct]*Point
}

// self returns i, so that the observer finds an instrument's record behind
// an Observable.
func (i *instrument) self() *instrument { return i }

// Enabled reports true: every instrument records.
func (i *instrument) Enabled(context.Context) bool { return true }

// measure records a measurement, n or f, with set.
func (i *instrument) measure(set attribute.Set, n int64, f float64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.points == nil {
		i.points = map[attribute.Distinct]*Point{}
	}
	aggregate(i.points, i.kind, set, n, f)
}

// snapshot returns a copy of i's points.
func (i *instrument) snapshot() []Point {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]Point, 0, len(i.points))
	for _, pt := range i.points {
		out = append(out, *pt)
	}
	return out
}

// aggregate adds a measurement, n or f, with set, to points of an
// instrument of kind.
func aggregate(points map[attribute.Distinct]*Point, kind Kind, set attribute.Set, n int64, f float64) {
	pt, ok := points[set.Equivalent()]
	if !ok {
		pt = &Point{Attributes: set}
		points[set.Equivalent()] = pt
	}
	pt.Count++
	if kind == Gauge || kind == ObservableGauge {
		pt.Int, pt.Float = n, f
	} else {
		pt.Int += n
		pt.Float += f
	}
}

// ErrInstrumentName is the error of an instrument's creation with a name
// the SDK refuses: empty, longer than 255 characters, not starting with an
// ASCII letter, or with characters outside [A-Za-z0-9_.-/].
var ErrInstrumentName = errors.New("oteltest: invalid instrument name")

// validName returns an ErrInstrumentName error for a name the SDK refuses.
func validName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%w %q: empty or longer than 255 characters", ErrInstrumentName, name)
	}
	for k, c := range name {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if k == 0 && !letter || k > 0 && !letter && !('0' <= c && c <= '9') && !strings.ContainsRune("_.-/", c) {
			return fmt.Errorf("%w %q: must start with a letter and hold only [A-Za-z0-9_.-/]", ErrInstrumentName, name)
		}
	}
	return nil
}

// meter is a MeterProvider's Meter of one scope.
type meter struct {
	embedded.Meter
	p     *MeterProvider
	scope string
}

// instrument returns the instrument of this identity, created if new. Its
// error reports an invalid name or boundaries (ignored then, as the SDK
// does), or an instrument of the same name but another kind (the new one
// is then a separate instrument).
func (m *meter) instrument(name string, kind Kind, float bool, description, unit string, bounds []float64) (*instrument, error) {
	err := validName(name)
	for k := 1; k < len(bounds); k++ {
		if bounds[k-1] >= bounds[k] {
			err = errors.Join(err, fmt.Errorf("oteltest: instrument %q: bucket boundaries %v do not increase", name, bounds))
			bounds = nil
			break
		}
	}
	id := instrumentID{scope: m.scope, name: name, kind: kind, float: float}
	m.p.mu.Lock()
	defer m.p.mu.Unlock()
	if i, ok := m.p.byID[id]; ok {
		return i, err
	}
	for _, other := range m.p.insts {
		if other.scope == m.scope && other.name == name {
			err = errors.Join(err, fmt.Errorf("oteltest: instrument %q of scope %q created as a %v and as a %v", name, m.scope, other.kind, kind))
			break
		}
	}
	i := &instrument{scope: m.scope, name: name, description: description, unit: unit,
		kind: kind, float: float, bounds: slices.Clone(bounds), p: m.p}
	m.p.insts = append(m.p.insts, i)
	m.p.byID[id] = i
	return i, err
}

// register adds a callback, run by every Collect until unregistered.
func (m *meter) register(run func(context.Context, *collection) error) *registration {
	r := &registration{p: m.p, run: run}
	m.p.mu.Lock()
	m.p.regs = append(m.p.regs, r)
	m.p.mu.Unlock()
	return r
}

// int64Callbacks registers the callbacks an observable instrument was
// created with.
func (m *meter) int64Callbacks(i *instrument, cbs []metric.Int64Callback) {
	for _, cb := range cbs {
		m.register(func(ctx context.Context, c *collection) error { return cb(ctx, int64Observer{c: c, i: i}) })
	}
}

// float64Callbacks registers the callbacks an observable instrument was
// created with.
func (m *meter) float64Callbacks(i *instrument, cbs []metric.Float64Callback) {
	for _, cb := range cbs {
		m.register(func(ctx context.Context, c *collection) error { return cb(ctx, float64Observer{c: c, i: i}) })
	}
}

func (m *meter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	c := metric.NewInt64CounterConfig(opts...)
	i, err := m.instrument(name, Counter, false, c.Description(), c.Unit(), nil)
	return int64Counter{instrument: i}, err
}

func (m *meter) Int64UpDownCounter(name string, opts ...metric.Int64UpDownCounterOption) (metric.Int64UpDownCounter, error) {
	c := metric.NewInt64UpDownCounterConfig(opts...)
	i, err := m.instrument(name, UpDownCounter, false, c.Description(), c.Unit(), nil)
	return int64UpDownCounter{instrument: i}, err
}

func (m *meter) Int64Histogram(name string, opts ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	c := metric.NewInt64HistogramConfig(opts...)
	i, err := m.instrument(name, Histogram, false, c.Description(), c.Unit(), c.ExplicitBucketBoundaries())
	return int64Histogram{instrument: i}, err
}

func (m *meter) Int64Gauge(name string, opts ...metric.Int64GaugeOption) (metric.Int64Gauge, error) {
	c := metric.NewInt64GaugeConfig(opts...)
	i, err := m.instrument(name, Gauge, false, c.Description(), c.Unit(), nil)
	return int64Gauge{instrument: i}, err
}

func (m *meter) Int64ObservableCounter(name string, opts ...metric.Int64ObservableCounterOption) (metric.Int64ObservableCounter, error) {
	c := metric.NewInt64ObservableCounterConfig(opts...)
	i, err := m.instrument(name, ObservableCounter, false, c.Description(), c.Unit(), nil)
	m.int64Callbacks(i, c.Callbacks())
	return int64ObservableCounter{instrument: i}, err
}

func (m *meter) Int64ObservableUpDownCounter(name string, opts ...metric.Int64ObservableUpDownCounterOption) (metric.Int64ObservableUpDownCounter, error) {
	c := metric.NewInt64ObservableUpDownCounterConfig(opts...)
	i, err := m.instrument(name, ObservableUpDownCounter, false, c.Description(), c.Unit(), nil)
	m.int64Callbacks(i, c.Callbacks())
	return int64ObservableUpDownCounter{instrument: i}, err
}

func (m *meter) Int64ObservableGauge(name string, opts ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	c := metric.NewInt64ObservableGaugeConfig(opts...)
	i, err := m.instrument(name, ObservableGauge, false, c.Description(), c.Unit(), nil)
	m.int64Callbacks(i, c.Callbacks())
	return int64ObservableGauge{instrument: i}, err
}

func (m *meter) Float64Counter(name string, opts ...metric.Float64CounterOption) (metric.Float64Counter, error) {
	c := metric.NewFloat64CounterConfig(opts...)
	i, err := m.instrument(name, Counter, true, c.Description(), c.Unit(), nil)
	return float64Counter{instrument: i}, err
}

func (m *meter) Float64UpDownCounter(name string, opts ...metric.Float64UpDownCounterOption) (metric.Float64UpDownCounter, error) {
	c := metric.NewFloat64UpDownCounterConfig(opts...)
	i, err := m.instrument(name, UpDownCounter, true, c.Description(), c.Unit(), nil)
	return float64UpDownCounter{instrument: i}, err
}

func (m *meter) Float64Histogram(name string, opts ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	c := metric.NewFloat64HistogramConfig(opts...)
	i, err := m.instrument(name, Histogram, true, c.Description(), c.Unit(), c.ExplicitBucketBoundaries())
	return float64Histogram{instrument: i}, err
}

func (m *meter) Float64Gauge(name string, opts ...metric.Float64GaugeOption) (metric.Float64Gauge, error) {
	c := metric.NewFloat64GaugeConfig(opts...)
	i, err := m.instrument(name, Gauge, true, c.Description(), c.Unit(), nil)
	return float64Gauge{instrument: i}, err
}

func (m *meter) Float64ObservableCounter(name string, opts ...metric.Float64ObservableCounterOption) (metric.Float64ObservableCounter, error) {
	c := metric.NewFloat64ObservableCounterConfig(opts...)
	i, err := m.instrument(name, ObservableCounter, true, c.Description(), c.Unit(), nil)
	m.float64Callbacks(i, c.Callbacks())
	return float64ObservableCounter{instrument: i}, err
}

func (m *meter) Float64ObservableUpDownCounter(name string, opts ...metric.Float64ObservableUpDownCounterOption) (metric.Float64ObservableUpDownCounter, error) {
	c := metric.NewFloat64ObservableUpDownCounterConfig(opts...)
	i, err := m.instrument(name, ObservableUpDownCounter, true, c.Description(), c.Unit(), nil)
	m.float64Callbacks(i, c.Callbacks())
	return float64ObservableUpDownCounter{instrument: i}, err
}

func (m *meter) Float64ObservableGauge(name string, opts ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	c := metric.NewFloat64ObservableGaugeConfig(opts...)
	i, err := m.instrument(name, ObservableGauge, true, c.Description(), c.Unit(), nil)
	m.float64Callbacks(i, c.Callbacks())
	return float64ObservableGauge{instrument: i}, err
}

// RegisterCallback registers f, run by every Collect with an Observer of
// insts, until unregistered. Like the SDK's, it refuses instruments of
// another implementation or of another Meter, and registers nothing
// without instruments.
func (m *meter) RegisterCallback(f metric.Callback, insts ...metric.Observable) (metric.Registration, error) {
	if len(insts) == 0 {
		return &registration{}, nil
	}
	allowed := map[*instrument]bool{}
	for _, o := range insts {
		rec, ok := o.(interface{ self() *instrument })
		if !ok {
			return nil, fmt.Errorf("oteltest: RegisterCallback: a %T is not an instrument of this implementation", o)
		}
		i := rec.self()
		if i.p != m.p || i.scope != m.scope {
			return nil, fmt.Errorf("oteltest: RegisterCallback: instrument %q is of another Meter", i.name)
		}
		allowed[i] = true
	}
	return m.register(func(ctx context.Context, c *collection) error {
		return f(ctx, observer{c: c, allowed: allowed})
	}), nil
}

// registration is a registered callback.
type registration struct {
	embedded.Registration
	p   *MeterProvider // nil: registered nothing
	run func(context.Context, *collection) error
}

// Unregister removes the callback: later Collects no longer run it.
func (r *registration) Unregister() error {
	if r.p == nil {
		return nil
	}
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	r.p.regs = slices.DeleteFunc(r.p.regs, func(x *registration) bool { return x == r })
	return nil
}

// collection holds the observations of one Collect.
type collection struct {
	mu     sync.Mutex
	points map[*instrument]map[attribute.Distinct]*Point
	errs   []error
}

// observe records an observation, n or f, of i with the options' attributes.
func (c *collection) observe(i *instrument, n int64, f float64, opts []metric.ObserveOption) {
	set := metric.NewObserveConfig(opts).Attributes()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.points[i] == nil {
		c.points[i] = map[attribute.Distinct]*Point{}
	}
	aggregate(c.points[i], i.kind, set, n, f)
}

// fail records an observation the API does not allow.
func (c *collection) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
}

// observer is the Observer given to a callback registered with
// RegisterCallback: it observes the instruments of the registration only.
type observer struct {
	embedded.Observer
	c       *collection
	allowed map[*instrument]bool
}

func (o observer) ObserveInt64(obs metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
	o.observe(obs, v, 0, opts)
}

func (o observer) ObserveFloat64(obs metric.Float64Observable, v float64, opts ...metric.ObserveOption) {
	o.observe(obs, 0, v, opts)
}

func (o observer) observe(obs metric.Observable, n int64, f float64, opts []metric.ObserveOption) {
	rec, ok := obs.(interface{ self() *instrument })
	if !ok {
		o.c.fail(fmt.Errorf("oteltest: observation of a %T, not an instrument of this implementation", obs))
		return
	}
	i := rec.self()
	if !o.allowed[i] {
		o.c.fail(fmt.Errorf("oteltest: observation of %q by a callback not registered for it", i.name))
		return
	}
	o.c.observe(i, n, f, opts)
}

// int64Observer is the Observer of a callback an Int64 observable
// instrument was created with.
type int64Observer struct {
	embedded.Int64Observer
	c *collection
	i *instrument
}

func (o int64Observer) Observe(v int64, opts ...metric.ObserveOption) { o.c.observe(o.i, v, 0, opts) }

// float64Observer is the Observer of a callback a Float64 observable
// instrument was created with.
type float64Observer struct {
	embedded.Float64Observer
	c *collection
	i *instrument
}

func (o float64Observer) Observe(v float64, opts ...metric.ObserveOption) {
	o.c.observe(o.i, 0, v, opts)
}

// The instruments of the API, each an instrument with the methods of its
// interface.

type int64Counter struct {
	embedded.Int64Counter
	*instrument
}

func (c int64Counter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	c.measure(metric.NewAddConfig(opts).Attributes(), v, 0)
}

type int64UpDownCounter struct {
	embedded.Int64UpDownCounter
	*instrument
}

func (c int64UpDownCounter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	c.measure(metric.NewAddConfig(opts).Attributes(), v, 0)
}

type int64Histogram struct {
	embedded.Int64Histogram
	*instrument
}

func (h int64Histogram) Record(_ context.Context, v int64, opts ...metric.RecordOption) {
	h.measure(metric.NewRecordConfig(opts).Attributes(), v, 0)
}

type int64Gauge struct {
	embedded.Int64Gauge
	*instrument
}

func (g int64Gauge) Record(_ context.Context, v int64, opts ...metric.RecordOption) {
	g.measure(metric.NewRecordConfig(opts).Attributes(), v, 0)
}

type int64ObservableCounter struct {
	embedded.Int64ObservableCounter
	metric.Int64Observable
	*instrument
}

type int64ObservableUpDownCounter struct {
	embedded.Int64ObservableUpDownCounter
	metric.Int64Observable
	*instrument
}

type int64ObservableGauge struct {
	embedded.Int64ObservableGauge
	metric.Int64Observable
	*instrument
}

type float64Counter struct {
	embedded.Float64Counter
	*instrument
}

func (c float64Counter) Add(_ context.Context, v float64, opts ...metric.AddOption) {
	c.measure(metric.NewAddConfig(opts).Attributes(), 0, v)
}

type float64UpDownCounter struct {
	embedded.Float64UpDownCounter
	*instrument
}

func (c float64UpDownCounter) Add(_ context.Context, v float64, opts ...metric.AddOption) {
	c.measure(metric.NewAddConfig(opts).Attributes(), 0, v)
}

type float64Histogram struct {
	embedded.Float64Histogram
	*instrument
}

func (h float64Histogram) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	h.measure(metric.NewRecordConfig(opts).Attributes(), 0, v)
}

type float64Gauge struct {
	embedded.Float64Gauge
	*instrument
}

func (g float64Gauge) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	g.measure(metric.NewRecordConfig(opts).Attributes(), 0, v)
}

type float64ObservableCounter struct {
	embedded.Float64ObservableCounter
	metric.Float64Observable
	*instrument
}

type float64ObservableUpDownCounter struct {
	embedded.Float64ObservableUpDownCounter
	metric.Float64Observable
	*instrument
}

type float64ObservableGauge struct {
	embedded.Float64ObservableGauge
	metric.Float64Observable
	*instrument
}

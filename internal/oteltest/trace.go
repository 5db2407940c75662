package oteltest

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Span is a recorded span. Its slices are shared with the
// [TracerProvider]: do not modify them.
type Span struct {
	// Scope is the name of the Tracer that started the span.
	Scope string
	// Name is the span's name: Start's, or the last SetName's.
	Name string
	// Kind is the span's kind (SpanKindInternal unless set).
	Kind trace.SpanKind
	// SpanContext identifies the span; its trace is its parent's.
	SpanContext trace.SpanContext
	// Parent is the span context of the parent span, invalid for a root.
	Parent trace.SpanContext
	// Attributes are the span's attributes, in the order their keys were
	// first set, each with the last value set.
	Attributes []attribute.KeyValue
	// Events are the span's events, in the order they were added.
	Events []Event
	// Links are the span's links.
	Links []trace.Link
	// Status is the span's status.
	Status Status
	// Start and End are when the span started and ended.
	Start, End time.Time
}

// Event is an event of a recorded span.
type Event struct {
	// Name is the event's name ("exception" for RecordError's).
	Name string
	// Attributes are the event's attributes.
	Attributes []attribute.KeyValue
	// Time is when it happened.
	Time time.Time
}

// Status is a span's status.
type Status struct {
	// Code is Unset, Error or Ok.
	Code codes.Code
	// Description explains an Error; it is empty for the other codes.
	Description string
}

// TracerProvider is a trace.TracerProvider that records every span its
// Tracers start, for [TracerProvider.Ended]. The zero value is ready to
// use. A TracerProvider is safe for concurrent use, as are its Tracers and
// their spans.
type TracerProvider struct {
	embedded.TracerProvider

	// ids numbers the spans (and the traces of root spans) from 1.
	ids atomic.Uint64

	mu    sync.Mutex
	ended []Span
}

// NewTracerProvider returns a TracerProvider that has recorded nothing.
func NewTracerProvider() *TracerProvider { return &TracerProvider{} }

// Tracer returns the Tracer of the instrumentation scope name. Options are
// ignored: a [Span]'s scope is only its name.
func (p *TracerProvider) Tracer(name string, _ ...trace.TracerOption) trace.Tracer {
	return tracer{p: p, scope: name}
}

// Ended returns the spans ended so far, in the order they ended.
func (p *TracerProvider) Ended() []Span {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ended)
}

// tracer is a TracerProvider's Tracer of one scope.
type tracer struct {
	embedded.Tracer
	p     *TracerProvider
	scope string
}

// Start starts a span, the child of the span in ctx unless there is none
// or opts hold WithNewRoot, and returns it with a context holding it.
func (t tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	var parent trace.SpanContext
	if !cfg.NewRoot() {
		parent = trace.SpanContextFromContext(ctx)
	}
	n := t.p.ids.Add(1)
	var tid trace.TraceID
	if parent.IsValid() {
		tid = parent.TraceID()
	} else {
		binary.BigEndian.PutUint64(tid[8:], n)
	}
	var sid trace.SpanID
	binary.BigEndian.PutUint64(sid[:], n)
	start := cfg.Timestamp()
	if start.IsZero() {
		start = time.Now()
	}
	s := &span{p: t.p, data: Span{
		Scope: t.scope,
		Name:  name,
		Kind:  trace.ValidateSpanKind(cfg.SpanKind()),
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
		}),
		Parent: parent,
		Links:  slices.Clone(cfg.Links()),
		Start:  start,
	}}
	s.SetAttributes(cfg.Attributes()...)
	return trace.ContextWithSpan(ctx, s), s
}

// span is a span under way. Once ended, it changes no more.
type span struct {
	embedded.Span
	p *TracerProvider

	mu    sync.Mutex
	data  Span
	ended bool
}

// End ends the span and records it; calls after the first do nothing.
func (s *span) End(opts ...trace.SpanEndOption) {
	cfg := trace.NewSpanEndConfig(opts...)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.data.End = cfg.Timestamp()
	if s.data.End.IsZero() {
		s.data.End = time.Now()
	}
	data := s.data
	s.mu.Unlock()
	s.p.mu.Lock()
	s.p.ended = append(s.p.ended, data)
	s.p.mu.Unlock()
}

func (s *span) AddEvent(name string, opts ...trace.EventOption) {
	cfg := trace.NewEventConfig(opts...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.data.Events = append(s.data.Events, Event{Name: name, Attributes: slices.Clone(cfg.Attributes()), Time: cfg.Timestamp()})
	}
}

func (s *span) AddLink(link trace.Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.data.Links = append(s.data.Links, link)
	}
}

func (s *span) IsRecording() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended
}

// RecordError adds the "exception" event with err's type and message, as
// the SDK does (and its stack with WithStackTrace(true)).
func (s *span) RecordError(err error, opts ...trace.EventOption) {
	if err == nil {
		return
	}
	opts = append(opts, trace.WithAttributes(
		attribute.String("exception.type", typeName(err)),
		attribute.String("exception.message", err.Error())))
	if cfg := trace.NewEventConfig(opts...); cfg.StackTrace() {
		opts = append(opts, trace.WithAttributes(attribute.String("exception.stacktrace", string(debug.Stack()))))
	}
	s.AddEvent("exception", opts...)
}

// typeName is the exception.type of err, as the SDK writes it.
func typeName(err error) string {
	t := reflect.TypeOf(err)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return fmt.Sprintf("%s.%s", t.PkgPath(), t.Name())
}

func (s *span) SpanContext() trace.SpanContext { return s.data.SpanContext }

// SetStatus sets the status as the SDK does: an Ok status is final, an
// Error one is replaced by Ok only, and only an Error keeps its
// description.
func (s *span) SetStatus(code codes.Code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.data.Status.Code > code {
		return
	}
	st := Status{Code: code}
	if code == codes.Error {
		st.Description = description
	}
	s.data.Status = st
}

func (s *span) SetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.data.Name = name
	}
}

// SetAttributes sets attributes: a key set again keeps its place and takes
// the new value; invalid ones (an empty key, an invalid value) are dropped.
func (s *span) SetAttributes(kvs ...attribute.KeyValue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	for _, kv := range kvs {
		if !kv.Valid() {
			continue
		}
		if k := slices.IndexFunc(s.data.Attributes, func(a attribute.KeyValue) bool { return a.Key == kv.Key }); k >= 0 {
			s.data.Attributes[k] = kv
		} else {
			s.data.Attributes = append(s.data.Attributes, kv)
		}
	}
}

func (s *span) TracerProvider() trace.TracerProvider { return s.p }

package oteltest_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/keygate/keygate/internal/oteltest"
)

// TestTracerProviderSpans checks what a span records: scope, name, kind,
// parent, attributes, events, RecordError's event, links and timestamps;
// and that nothing changes it after End.
func TestTracerProviderSpans(t *testing.T) {
	t.Parallel()
	p := oteltest.NewTracerProvider()
	tr := p.Tracer("scope/x")
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx, root := tr.Start(context.Background(), "root", trace.WithTimestamp(start))
	_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("a", "1"), attribute.String("b", "2")))
	if !child.IsRecording() || child.TracerProvider() != p {
		t.Fatal("a new span does not record, or has another provider")
	}
	child.SetAttributes(attribute.String("a", "3"), attribute.String("c", "4"), attribute.String("", "dropped"))
	child.AddEvent("retry", trace.WithAttributes(attribute.Int("n", 2)))
	child.RecordError(errors.New("boom"))
	child.RecordError(nil)
	child.AddLink(trace.Link{SpanContext: root.SpanContext()})
	child.SetName("child2")
	_, other := tr.Start(ctx, "other", trace.WithNewRoot())
	if len(p.Ended()) != 0 {
		t.Fatal("spans listed before they ended")
	}
	child.End()
	// After End, nothing changes the span and it is not listed again.
	child.SetAttributes(attribute.String("a", "late"), attribute.String("late", "x"))
	child.AddEvent("late")
	child.SetStatus(codes.Error, "late")
	child.SetName("late")
	child.AddLink(trace.Link{})
	child.End()
	if child.IsRecording() {
		t.Error("an ended span records")
	}
	end := start.Add(time.Second)
	root.End(trace.WithTimestamp(end))
	other.End()

	spans := p.Ended()
	if len(spans) != 3 || spans[0].Name != "child2" || spans[1].Name != "root" || spans[2].Name != "other" {
		t.Fatalf("ended spans %+v, want child2, root, other in that order", spans)
	}
	c, r, o := spans[0], spans[1], spans[2]
	if c.Scope != "scope/x" || c.Kind != trace.SpanKindClient || r.Kind != trace.SpanKindInternal {
		t.Errorf("scope %q, kinds %v and %v", c.Scope, c.Kind, r.Kind)
	}
	if r.Parent.IsValid() || !r.SpanContext.IsValid() || !r.SpanContext.IsSampled() {
		t.Errorf("root: parent %v, context %v", r.Parent, r.SpanContext)
	}
	if !c.Parent.Equal(r.SpanContext) || c.SpanContext.TraceID() != r.SpanContext.TraceID() || c.SpanContext.SpanID() == r.SpanContext.SpanID() {
		t.Errorf("child's parent %v, trace %v, want root %v", c.Parent, c.SpanContext.TraceID(), r.SpanContext)
	}
	if o.Parent.IsValid() || o.SpanContext.TraceID() == r.SpanContext.TraceID() {
		t.Errorf("WithNewRoot: parent %v, trace %v", o.Parent, o.SpanContext.TraceID())
	}
	if want := []attribute.KeyValue{attribute.String("a", "3"), attribute.String("b", "2"), attribute.String("c", "4")}; !slices.Equal(c.Attributes, want) {
		t.Errorf("attributes %v, want %v", c.Attributes, want)
	}
	if len(c.Events) != 2 || c.Events[0].Name != "retry" || c.Events[0].Time.IsZero() ||
		!slices.Equal(c.Events[0].Attributes, []attribute.KeyValue{attribute.Int("n", 2)}) {
		t.Fatalf("events %+v", c.Events)
	}
	wantErr := []attribute.KeyValue{attribute.String("exception.type", "*errors.errorString"), attribute.String("exception.message", "boom")}
	if e := c.Events[1]; e.Name != "exception" || !slices.Equal(e.Attributes, wantErr) {
		t.Errorf("RecordError's event %+v, want exception %v", e, wantErr)
	}
	if len(c.Links) != 1 || !c.Links[0].SpanContext.Equal(r.SpanContext) {
		t.Errorf("links %+v", c.Links)
	}
	if c.Status != (oteltest.Status{}) {
		t.Errorf("status set after End: %+v", c.Status)
	}
	if !r.Start.Equal(start) || !r.End.Equal(end) || c.End.Before(c.Start) {
		t.Errorf("times: root %v–%v, child %v–%v", r.Start, r.End, c.Start, c.End)
	}
	if _, s := tr.Start(context.Background(), "x"); s.SpanContext().Equal(r.SpanContext) {
		t.Error("two spans share a span context")
	}
}

// TestTracerProviderStatus checks SetStatus's rules, the SDK's: Ok is
// final, Error is replaced by Ok only, and only Error keeps a description.
func TestTracerProviderStatus(t *testing.T) {
	t.Parallel()
	type set struct {
		code codes.Code
		desc string
	}
	for _, tt := range []struct {
		sets []set
		want oteltest.Status
	}{
		{nil, oteltest.Status{}},
		{[]set{{codes.Error, "kind"}}, oteltest.Status{Code: codes.Error, Description: "kind"}},
		{[]set{{codes.Error, "kind"}, {codes.Unset, "x"}}, oteltest.Status{Code: codes.Error, Description: "kind"}},
		{[]set{{codes.Error, "a"}, {codes.Error, "b"}}, oteltest.Status{Code: codes.Error, Description: "b"}},
		{[]set{{codes.Error, "kind"}, {codes.Ok, "fine"}}, oteltest.Status{Code: codes.Ok}},
		{[]set{{codes.Ok, "fine"}, {codes.Error, "kind"}}, oteltest.Status{Code: codes.Ok}},
	} {
		p := oteltest.NewTracerProvider()
		_, s := p.Tracer("x").Start(context.Background(), "s")
		for _, st := range tt.sets {
			s.SetStatus(st.code, st.desc)
		}
		s.End()
		if got := p.Ended()[0].Status; got != tt.want {
			t.Errorf("after %v: %+v, want %+v", tt.sets, got, tt.want)
		}
	}
}

// TestTracerProviderConcurrent starts and ends spans from many goroutines
// (run with -race): every span is listed once, with its own id.
func TestTracerProviderConcurrent(t *testing.T) {
	t.Parallel()
	p := oteltest.NewTracerProvider()
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			tr := p.Tracer("x")
			for i := range each {
				ctx, s := tr.Start(context.Background(), "parent")
				_, c := tr.Start(ctx, "child")
				c.SetAttributes(attribute.Bool("ok", true))
				c.End()
				s.End()
				if i%50 == 0 {
					_ = p.Ended()
				}
			}
		})
	}
	wg.Wait()
	spans := p.Ended()
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext.SpanID()] = true
	}
	if len(spans) != 2*workers*each || len(ids) != len(spans) {
		t.Errorf("%d spans with %d ids, want %d", len(spans), len(ids), 2*workers*each)
	}
}

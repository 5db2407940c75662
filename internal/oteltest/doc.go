// Package oteltest records what code reports through the OpenTelemetry API,
// for tests, without the OpenTelemetry SDK: a [MeterProvider] that keeps
// every measurement in memory and a [TracerProvider] that keeps every span.
// It depends on the API modules alone (go.opentelemetry.io/otel,
// .../metric and .../trace), which keygate requires anyway, so that the
// keygate module's tests add no module to an application's module graph.
//
// # Metrics
//
// A [MeterProvider] implements every instrument of the metric API. Its
// [MeterProvider.Collect] runs the callbacks of the observable instruments
// and returns a [Metric] per instrument with measurements: per attribute
// set, the sum of a counter's or a histogram's measurements, the last
// value of a gauge, and their count. Like the SDK, it refuses an invalid
// instrument name or histogram boundaries that do not increase, and a
// callback that observes an instrument it was not registered for.
//
// # Traces
//
// A [TracerProvider] records spans as the SDK does: name, kind, parent,
// attributes (a key set again keeps its last value), status (Error's
// description only; Ok is final), events (RecordError's is the
// "exception" event with exception.type and exception.message) and links,
// ignoring whatever comes after End. [TracerProvider.Ended] returns the
// ended spans.
//
// # Concurrency
//
// Both providers, and everything they return, are safe for concurrent use.
// Neither aggregates anything in the background: a Collect or an Ended
// sees every measurement and span that happened before it.
package oteltest

package bench

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/keygate/keygate"
)

// BenchmarkVerifyTelemetry is the KeygateCached case with the telemetry
// off (the global providers, which record nothing until an application
// installs its own) and on (the OpenTelemetry SDK's MeterProvider with a
// manual reader, and its TracerProvider): what recording costs a cached
// verification. It lives in this module so that the keygate module does
// not require the SDK; BenchmarkTelemetryOverhead, in the keygate module,
// measures what the instruments cost while nothing records.
func BenchmarkVerifyTelemetry(b *testing.B) {
	for _, c := range []struct {
		name string
		edit func(b *testing.B) func(*keygate.Config)
	}{
		{"off", func(*testing.B) func(*keygate.Config) { return func(*keygate.Config) {} }},
		{"sdk", sdkProviders},
	} {
		b.Run(c.name, func(b *testing.B) { cachedVerifyAuthorize(b, false, newKeygate(b, 0, c.edit(b))) })
		b.Run(c.name+"-parallel", func(b *testing.B) { cachedVerifyAuthorize(b, true, newKeygate(b, 0, c.edit(b))) })
	}
}

// sdkProviders returns a configuration change that installs the SDK's
// MeterProvider, with a manual reader, and TracerProvider, both shut down
// at the end of b.
func sdkProviders(b *testing.B) func(*keygate.Config) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	return func(c *keygate.Config) { c.MeterProvider, c.TracerProvider = mp, tp }
}

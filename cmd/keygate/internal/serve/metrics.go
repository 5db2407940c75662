package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/keygate/keygate/server"
)

// metrics serves, at /metrics on --metrics-addr, what operators'
// dashboards expect: keygate's own OpenTelemetry instruments (read by the
// Prometheus exporter), the Go runtime's and the process's metrics, and
// the HTTP server's requests by route and status with their latency. A
// route is the pattern that served the request, such as
// "/v1/keys/{id}": never a raw path, which would let any client add
// series at will.
type metrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	api      []route // the API's routes, from its OpenAPI document
}

// newMetrics returns the metrics over a registry of their own (not
// Prometheus's global one).
func newMetrics() (*metrics, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	m := &metrics{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)),
		handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_server_requests_total",
			Help: "HTTP requests served, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route and method.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	if m.api, err = apiRoutes(); err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// close shuts the provider down.
func (m *metrics) close(ctx context.Context) error {
	if m == nil {
		return nil
	}
	return m.provider.Shutdown(ctx)
}

// instrument counts and times the requests next serves, labelled by the
// route of mux that serves them.
func (m *metrics) instrument(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		next.ServeHTTP(sw, r)
		route := m.route(mux, r)
		method := methodLabel(r.Method)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

// route names the route of r: the API's path template under /v1/, the
// mux pattern elsewhere ("/console/" for every console page), "other"
// when nothing matched.
func (m *metrics) route(mux *http.ServeMux, r *http.Request) string {
	_, pattern := mux.Handler(r)
	if _, path, _ := strings.Cut(pattern, " "); path != "" {
		pattern = path // without the method: it is a label of its own
	}
	switch {
	case pattern == "":
		return "other"
	case pattern == "/v1/":
		rest := strings.TrimPrefix(r.URL.Path, "/v1")
		for _, rt := range m.api {
			if rt.match(rest) {
				return "/v1" + rt.template
			}
		}
		return "/v1/other"
	}
	return pattern
}

// methodLabel keeps the method label to the standard methods, so that a
// client cannot add series with made-up ones.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}

// route is a path template of the API, such as "/keys/{id}/revoke".
type route struct {
	template string
	segments []string // "" for a parameter
}

// match reports whether path fits the template: the same segments, a
// parameter matching any non-empty one.
func (rt route) match(path string) bool {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) != len(rt.segments) {
		return false
	}
	for i, s := range rt.segments {
		if s == "" && segs[i] == "" || s != "" && s != segs[i] {
			return false
		}
	}
	return true
}

// apiRoutes returns the paths of the API's OpenAPI document, literal
// ones before templates (so /keys/verify is not /keys/{id}).
func apiRoutes() ([]route, error) {
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(server.OpenAPI(), &doc); err != nil {
		return nil, err
	}
	var literal, templated []route
	for path := range doc.Paths {
		rt := route{template: path}
		for _, s := range strings.Split(strings.Trim(path, "/"), "/") {
			if strings.HasPrefix(s, "{") {
				s = ""
			}
			rt.segments = append(rt.segments, s)
		}
		if strings.Contains(path, "{") {
			templated = append(templated, rt)
		} else {
			literal = append(literal, rt)
		}
	}
	return append(literal, templated...), nil
}

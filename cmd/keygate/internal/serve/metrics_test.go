package serve

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keygate/keygate/cmd/keygate/internal/testenv"
)

// TestMetrics serves /metrics on --metrics-addr, apart from the API: after
// some requests it holds keygate's instruments, the Go runtime's and the
// process's metrics, and the HTTP requests by route template (never a raw
// path) and status; no token; and it parses as the Prometheus text
// format. Without the flag there is no /metrics anywhere.
func TestMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	metricsURL := "http://127.0.0.1:" + testenv.FreePort(t)
	in := start(t, nil, "--db", filepath.Join(dir, "keys.db"), "--admin-token-file", tokenFile,
		"--metrics-addr", strings.TrimPrefix(metricsURL, "http://"))
	admin := readToken(t, tokenFile)
	for range 3 {
		if status, body := call(t, "GET", in.url+"/v1/keys", admin, ""); status != 200 {
			t.Fatalf("GET /v1/keys = %d %s", status, body)
		}
	}
	// Another last character, so that the checksum fails (the token may
	// end with x: 1 run in 64 then sent the admin token itself).
	bad := admin[:len(admin)-1] + "x"
	if strings.HasSuffix(admin, "x") {
		bad = admin[:len(admin)-1] + "y"
	}
	if status, _ := call(t, "GET", in.url+"/v1/keys", bad, ""); status != 401 {
		t.Fatalf("a malformed token got %d, want 401", status)
	}
	// Made-up ids and paths: they must not become series of their own.
	for _, p := range []string{"/v1/keys/0190d5a2-7b3c-7def-8000-000000000001", "/v1/keys/anything-at-all", "/v1/nothing/here", "/made-up/path"} {
		call(t, "GET", in.url+p, admin, "")
	}
	if status, _ := call(t, "GET", in.url+"/metrics", "", ""); status != 404 {
		t.Errorf("GET /metrics on the API's address = %d, want 404", status)
	}
	status, body := call(t, "GET", metricsURL+"/metrics", "", "")
	if status != 200 {
		t.Fatalf("GET /metrics = %d %s", status, body)
	}
	for _, want := range []string{
		`keygate_verifications_total{keygate_verification_outcome="valid"`,
		`keygate_verifications_total{keygate_verification_outcome="malformed"`,
		`keygate_verification_duration_seconds_bucket{keygate_verification_outcome="valid"`,
		`keygate_cache_hits_total{keygate_cache_name="key"`,
		`keygate_store_operation_duration_seconds_bucket{keygate_store_operation="get_by_hash"`,
		`otel_scope_name="github.com/keygate/keygate"`,
		`go_goroutines `,
		`go_memstats_heap_alloc_bytes `,
		`process_resident_memory_bytes `,
		`process_open_fds `,
		`http_server_requests_total{code="200",method="GET",route="/v1/keys"} 3`,
		`http_server_requests_total{code="401",method="GET",route="/v1/keys"} 1`,
		`http_server_requests_total{code="404",method="GET",route="/v1/keys/{id}"} 2`,
		`http_server_requests_total{code="404",method="GET",route="/v1/other"} 1`,
		`http_server_requests_total{code="404",method="GET",route="other"} 2`, // /made-up/path and /metrics on the API,
		`http_server_request_duration_seconds_bucket{method="GET",route="/v1/keys",le="0.005"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range []string{admin, bad, "anything-at-all", "0190d5a2", "made-up", "nothing/here"} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics holds %q", leak)
		}
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := parser.TextToMetricFamilies(strings.NewReader(body)); err != nil {
		t.Errorf("/metrics does not parse as the Prometheus text format: %v", err)
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}

	plain := start(t, nil, "--db", filepath.Join(t.TempDir(), "keys.db"))
	if status, _ := call(t, "GET", plain.url+"/metrics", "", ""); status != 404 {
		t.Errorf("without --metrics-addr, GET /metrics = %d, want 404", status)
	}
}

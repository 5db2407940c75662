package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMetrics serves /metrics with -metrics: after some requests it holds
// keygate's instruments, and no token; without the flag there is no
// /metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	in := start(t, nil, "-db", filepath.Join(dir, "keys.db"), "-admin-token-file", tokenFile, "-metrics")
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
	status, body := call(t, "GET", in.url+"/metrics", "", "")
	if status != 200 {
		t.Fatalf("GET /metrics = %d %s", status, body)
	}
	for _, want := range []string{
		`keygate_verifications_total{keygate_verification_outcome="valid"`,
		`keygate_verifications_total{keygate_verification_outcome="malformed"`,
		`keygate_verification_duration_seconds_bucket{keygate_verification_outcome="valid"`,
		`keygate_cache_hits_total{keygate_cache_name="key"`,
		`keygate_cache_misses_total{keygate_cache_name="key"`,
		`keygate_cache_size{keygate_cache_name="key"`,
		`keygate_store_operation_duration_seconds_bucket{keygate_store_operation="get_by_hash"`,
		`otel_scope_name="github.com/keygate/keygate"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, admin) || strings.Contains(body, bad) {
		t.Error("/metrics holds a token")
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}

	plain := start(t, nil, "-db", filepath.Join(t.TempDir(), "keys.db"))
	if status, _ := call(t, "GET", plain.url+"/metrics", "", ""); status != 404 {
		t.Errorf("without -metrics, GET /metrics = %d, want 404", status)
	}
}

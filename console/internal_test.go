package console

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestRelative(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{-30 * time.Second, "just now"},
		{5 * time.Minute, "in 5 minutes"},
		{-1 * time.Hour, "1 hour ago"},
		{30 * time.Hour, "in 30 hours"},
		{-3 * 24 * time.Hour, "3 days ago"},
		{29 * 24 * time.Hour, "in 29 days"},
		{90 * 24 * time.Hour, "in 3 months"},
		{-800 * 24 * time.Hour, "2 years ago"},
	} {
		if got := relative(now.Add(tt.d), now); got != tt.want {
			t.Errorf("relative(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := relative(time.Time{}, now); got != "" {
		t.Errorf("relative(zero) = %q", got)
	}
}

func TestBasePath(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		uri, path, want string
	}{
		{"/console/", "/", "/console"},
		{"/console/keys/new?x=1", "/keys/new", "/console"},
		{"/a/b/c/keys/new", "/keys/new", "/a/b/c"},
		{"/", "/", ""},
		{"//evil.example/keys/new", "/keys/new", "/evil.example"},
		{"/other", "/keys/new", ""},
	} {
		r := httptest.NewRequest("GET", tt.uri, nil)
		r.URL.Path = tt.path
		if got := basePath(r); got != tt.want {
			t.Errorf("basePath(%q, %q) = %q, want %q", tt.uri, tt.path, got, tt.want)
		}
	}
}

func TestLatest(t *testing.T) {
	t.Parallel()
	if got := latest(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)); got != "2026-12-07" {
		t.Errorf("latest(midnight) = %q", got)
	}
	if got := latest(time.Date(2026, 12, 7, 14, 3, 0, 0, time.UTC)); got != "2026-12-07 14:03 UTC" {
		t.Errorf("latest(14:03) = %q", got)
	}
}

func TestFormatMidnight(t *testing.T) {
	t.Parallel()
	end := time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC) // a custom date of 2027-01-14
	if got := formatDate(end); got != "14 Jan 2027" {
		t.Errorf("formatDate = %q", got)
	}
	if got := formatDateTime(end); got != "14 Jan 2027, end of day UTC" {
		t.Errorf("formatDateTime = %q", got)
	}
	if got := formatDateTime(end.Add(90 * time.Minute)); got != "15 Jan 2027 01:30 UTC" {
		t.Errorf("formatDateTime = %q", got)
	}
}

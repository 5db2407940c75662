package console_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// TestKeyUsageChart: the key page charts the key's last 30 days in SVG
// (valid solid, refused hatched), with its figures in words and in a
// table, and no inline style.
func TestKeyUsageChart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	k := e.key(t, keygate.CreateRequest{Name: "metered", Workspace: "tiger", Role: "viewer"})
	idle := e.key(t, keygate.CreateRequest{Name: "idle", Workspace: "tiger", Role: "viewer"})
	verify := func(n int) {
		t.Helper()
		for range n {
			e.m.Verify(ctx, k.Token.Reveal()) //nolint:errcheck // counted either way
		}
	}
	verify(3) // 30 Nov
	e.clock.Add(2 * 24 * time.Hour)
	verify(5) // 2 Dec
	if _, err := e.m.Disable(ctx, keygate.System(), k.Key.ID); err != nil {
		t.Fatal(err)
	}
	verify(2)
	if err := e.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b := e.signedIn(t, e.admin)
	page := b.get("/keys/"+k.Key.ID.String()).want(http.StatusOK, "Usage, last 30 days",
		"Verifications 10", "Valid 8", "Refused 2 (2 disabled)",
		"10 verifications in the last 30 days: 8 valid, 2 refused (2 disabled). Busiest day: 2 Dec 2026, with 7.",
		"30 Nov 2026 3 0", "2 Dec 2026 5 2 (2 disabled)", "1 Dec 2026 0 0", "Valid (solid)", "Refused (hatched, stacked on top)")
	body := page.body
	if !strings.Contains(body, `<svg class="chart" viewBox="0 0 960 200" role="img" aria-labelledby="traffic-svg-title traffic-svg-desc">`) ||
		!strings.Contains(body, `<title id="traffic-svg-title">`) || !strings.Contains(body, `<desc id="traffic-svg-desc">`) {
		t.Errorf("the chart is not an image named by its title and description:\n%s", body)
	}
	if n := strings.Count(body, "<g><title>"); n != 30 {
		t.Errorf("%d bars, want one a day for 30 days", n)
	}
	if n := strings.Count(body, `<rect class="bar-refused" fill="url(#hatch-refused)"`); n != 2 { // the bar and the legend
		t.Errorf("%d hatched refused rectangles, want 2 (2 Dec's bar and the legend)", n)
	}
	if strings.Contains(body, "style=") {
		t.Error("the page has an inline style, which the CSP forbids")
	}
	// Bars are proportional: 2 Dec's valid part (5 of a scale of 8) is
	// 5/3 as tall as 30 Nov's (3).
	heights := regexp.MustCompile(`<rect class="bar-valid" x="[0-9.]+" y="[0-9.]+" width="[0-9.]+" height="([0-9.]+)"/>`).FindAllStringSubmatch(body, -1)
	if len(heights) != 2 || heights[0][1] != "61.5" || heights[1][1] != "102.5" {
		t.Errorf("valid bars %v, want 30 Nov's 61.5 high and 2 Dec's 102.5", heights)
	}
	b.get("/keys/"+idle.Key.ID.String()).want(http.StatusOK, "No verifications in the last 30 days.")
}

// TestListSparklines: the list shows each key's last 7 days as a
// sparkline with its figures in words, read in one store query for the
// whole page.
func TestListSparklines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	busy := e.key(t, keygate.CreateRequest{Name: "busy", Role: "viewer", Workspace: "tiger"})
	for range 4 {
		e.key(t, keygate.CreateRequest{Name: "quiet-" + time.Now().Format("150405.000000000"), Role: "viewer", Workspace: "tiger"})
	}
	for range 4 {
		if _, err := e.m.Verify(ctx, busy.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Add(24 * time.Hour)
	for range 2 {
		if _, err := e.m.Verify(ctx, busy.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b := e.signedIn(t, e.admin)
	before := e.store.usageReads.Load()
	list := b.get("/").want(http.StatusOK, "Last 7 days")
	if n := e.store.usageReads.Load() - before; n != 1 {
		t.Errorf("%d usage queries for a page of 6 keys, want 1", n)
	}
	row := list.row(t, "busy")
	if !strings.Contains(row, `aria-label="Verifications per day over the last 7 days, the oldest first: 0, 0, 0, 0, 0, 4, 2; 0 refused."`) {
		t.Errorf("busy's sparkline does not say its figures:\n%s", row)
	}
	if valid, zero := strings.Count(row, `<rect class="spark-valid"`), strings.Count(row, `<rect class="spark-zero"`); valid != 2 || zero != 5 {
		t.Errorf("busy's sparkline has %d bars and %d baselines, want 2 and 5 (one a day)", valid, zero)
	}
	if !strings.Contains(row, `<div class="sub">6</div>`) {
		t.Errorf("busy's row does not show its total:\n%s", row)
	}
	if n := strings.Count(list.body, `role="img" aria-label="Verifications per day`); n != 6 {
		t.Errorf("%d sparklines, want one for each of the 6 keys", n)
	}
}

// TestUsageWithoutHistory: with a store that keeps no usage history, the
// pages show no usage, and work.
func TestUsageWithoutHistory(t *testing.T) {
	t.Parallel()
	e := newEnvOver(t, func(s *failingStore) store.Store { return struct{ store.Store }{s} }, nil)
	k := e.key(t, keygate.CreateRequest{Name: "plain", Role: "viewer", Workspace: "tiger"})
	b := e.signedIn(t, e.admin)
	list := b.get("/").want(http.StatusOK, "plain")
	if strings.Contains(list.body, "Last 7 days") || strings.Contains(list.body, "spark") {
		t.Error("the list shows usage the store does not keep")
	}
	if page := b.get("/keys/"+k.Key.ID.String()).want(http.StatusOK, "plain"); strings.Contains(page.body, "Usage, last") {
		t.Error("the key page shows usage the store does not keep")
	}
}

// TestUsageStoreFailure: a failure to read usage fails the page (503), as
// any store failure does, rather than showing no usage as if there were
// none.
func TestUsageStoreFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	k := e.key(t, keygate.CreateRequest{Name: "metered", Role: "viewer", Workspace: "tiger"})
	b := e.signedIn(t, e.admin)
	e.store.usageDown.Store(true)
	defer e.store.usageDown.Store(false)
	b.get("/keys/"+k.Key.ID.String()).want(http.StatusServiceUnavailable, "Key store unavailable")
	b.get("/").want(http.StatusServiceUnavailable, "Key store unavailable")
	if !strings.Contains(e.logs.String(), "read usage") {
		t.Errorf("the failure is not logged:\n%s", e.logs.String())
	}
}

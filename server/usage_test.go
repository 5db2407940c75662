package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/server"
)

// TestUsageResponse: GET /keys/{id}/usage answers the key's counts by
// outcome, every bucket of the range (an empty one as {}), in the bucket
// asked for.
func TestUsageResponse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	ctx := context.Background()
	c := f.key(t, keygate.CreateRequest{Name: "metered", Workspace: "w", Role: "viewer"})
	for range 3 {
		if _, err := f.m.Verify(ctx, c.Token.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.Disable(ctx, keygate.System(), c.Key.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		f.m.Verify(ctx, c.Token.Reveal()) //nolint:errcheck // disabled: counted
	}
	if err := f.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	path := "/keys/" + c.Key.ID.String() + "/usage"
	auth := http.Header{"Authorization": {"Api-Key " + f.admin}}

	w := f.send(http.MethodGet, path, "bucket=1d", auth, "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s?bucket=1d = %d %s", path, w.Code, w.Body)
	}
	if body := w.Body.String(); !strings.Contains(body, `"counts":{}`) || strings.Contains(body, "null") {
		t.Errorf("empty buckets are not written as {}: %s", body)
	}
	var u server.Usage
	strict(t, "GET "+path, w.Body.Bytes(), &u)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if u.KeyID != c.Key.ID || u.Bucket != server.BucketDay || len(u.Buckets) != keygate.DefaultUsageDays ||
		!u.To.Equal(today.Add(24*time.Hour)) || !u.From.Equal(u.To.Add(-keygate.DefaultUsageDays*24*time.Hour)) {
		t.Errorf("report of %s by %s from %v to %v in %d buckets; want %d days to the end of today", u.KeyID, u.Bucket, u.From, u.To, len(u.Buckets), keygate.DefaultUsageDays)
	}
	want := map[string]int64{keygate.OutcomeValid: 3, keygate.OutcomeDisabled: 2}
	if len(u.Totals) != 2 || u.Totals["valid"] != 3 || u.Totals["disabled"] != 2 {
		t.Errorf("totals %v, want %v", u.Totals, want)
	}
	if last := u.Buckets[len(u.Buckets)-1]; !last.Start.Equal(today) || last.Counts["valid"] != 3 || last.Counts["disabled"] != 2 {
		t.Errorf("today's bucket %+v, want %v", last, want)
	}

	w = f.send(http.MethodGet, path, "from="+today.Format(time.DateOnly)+"&to="+today.Add(3*time.Hour).Format(time.RFC3339), auth, "")
	strict(t, "GET "+path, w.Body.Bytes(), &u)
	if w.Code != http.StatusOK || u.Bucket != server.BucketHour || len(u.Buckets) != 3 || !u.From.Equal(today) {
		t.Errorf("3 hours from midnight = %d, %s from %v in %d buckets", w.Code, u.Bucket, u.From, len(u.Buckets))
	}
}

package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/client"
)

func TestUsage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	tok := e.token(t, keygate.CreateRequest{Name: "metered", Workspace: "w", Role: "viewer"})
	k, err := e.m.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.m.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	u, resp, err := e.client.Usage(ctx, k.ID, client.UsageOptions{Bucket: client.BucketDay})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Usage = %v, %v", resp, err)
	}
	if u.Bucket != client.BucketDay || len(u.Buckets) != keygate.DefaultUsageDays || u.Totals[keygate.OutcomeValid] != 3 {
		t.Errorf("Usage by day = %s", jsonOf(u))
	}
	now := time.Now().UTC()
	from := now.Add(-3 * time.Hour)
	u, _, err = e.client.Usage(ctx, k.ID, client.UsageOptions{From: from.In(time.FixedZone("X", 3600)), To: now})
	if err != nil {
		t.Fatal(err)
	}
	if u.Bucket != client.BucketHour || !u.From.Equal(from.Truncate(time.Hour)) || len(u.Buckets) != 4 || u.Totals[keygate.OutcomeValid] != 3 {
		t.Errorf("Usage over 3 hours from %v = %s", from, jsonOf(u))
	}

	_, _, err = e.client.Usage(ctx, k.ID, client.UsageOptions{Bucket: "1w"})
	wantProblem(t, err, http.StatusBadRequest, "invalid_field", keygate.ErrInvalidRequest, keygate.ErrInvalidField)
	_, _, err = e.client.Usage(ctx, k.ID, client.UsageOptions{From: now, To: now.Add(-time.Hour)})
	wantProblem(t, err, http.StatusBadRequest, "invalid_field", keygate.ErrInvalidRequest)
	_, _, err = e.client.Usage(ctx, uuid.Must(uuid.NewV7()), client.UsageOptions{})
	wantProblem(t, err, http.StatusNotFound, "not_found", keygate.ErrNotFound)
}

// TestUsageInvalidResponse: a report of another key, or of buckets the
// API does not have, is not taken.
func TestUsageInvalidResponse(t *testing.T) {
	t.Parallel()
	id := uuid.Must(uuid.NewV7())
	for name, body := range map[string]string{
		"another key":      `{"key_id":"` + uuid.NewString() + `","from":"2026-11-01T00:00:00Z","to":"2026-11-02T00:00:00Z","bucket":"1d","totals":{},"buckets":[]}`,
		"buckets of weeks": `{"key_id":"` + id.String() + `","from":"2026-11-01T00:00:00Z","to":"2026-11-08T00:00:00Z","bucket":"1w","totals":{},"buckets":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var query string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				query = r.URL.RawQuery
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, body)
			}))
			t.Cleanup(srv.Close)
			c, err := client.New(srv.URL, client.WithToken(newToken(t)))
			if err != nil {
				t.Fatal(err)
			}
			from := time.Date(2026, 11, 1, 1, 2, 3, 4, time.FixedZone("X", -3600))
			if _, _, err := c.Usage(context.Background(), id, client.UsageOptions{Bucket: client.BucketDay, From: from}); !errors.Is(err, client.ErrInvalidResponse) {
				t.Errorf("Usage = %v, want ErrInvalidResponse", err)
			}
			if want := "bucket=1d&from=2026-11-01T02%3A02%3A03.000000004Z"; query != want {
				t.Errorf("query %q, want %q", query, want)
			}
			if strings.Contains(query, "to=") {
				t.Error("a zero To was sent")
			}
		})
	}
}

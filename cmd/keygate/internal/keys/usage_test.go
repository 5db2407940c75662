package keys_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdtest"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/store"
)

// TestUsageCommand shows a key's usage history as a table (a row per bucket, a
// column per outcome, the totals) and as JSON, for the range asked, and
// refuses a bad range before sending anything.
func TestUsageCommand(t *testing.T) {
	t.Parallel()
	s := newService(t)
	k, err := s.m.Create(context.Background(), keygate.System(), keygate.CreateRequest{Name: "used", Scopes: []string{"x:read"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	hour := today.Add(-24 * time.Hour).Add(9 * time.Hour) // yesterday, 09:00 UTC
	if err := s.store.RecordUsage(context.Background(), []store.UsageCount{
		{Kind: store.UsageKey, Subject: k.Key.ID, Hour: hour, Outcome: "valid", Count: 7},
		{Kind: store.UsageKey, Subject: k.Key.ID, Hour: hour.Add(time.Hour), Outcome: "valid", Count: 3},
		{Kind: store.UsageKey, Subject: k.Key.ID, Hour: hour.Add(time.Hour), Outcome: "rate_limited", Count: 2},
	}); err != nil {
		t.Fatal(err)
	}
	id := k.Key.ID.String()

	r := s.ok(t, "keys", "usage", id)
	lines := strings.Split(strings.TrimSpace(r.Out), "\n")
	if !strings.HasPrefix(lines[0], "START (UTC)") || !strings.Contains(lines[0], "VALID") || !strings.Contains(lines[0], "RATE_LIMITED") {
		t.Fatalf("table header:\n%s", r.Out)
	}
	if total := strings.Fields(lines[len(lines)-1]); len(total) != 3 || total[0] != "TOTAL" || total[1] != "10" || total[2] != "2" {
		t.Errorf("totals: %q\n%s", total, r.Out)
	}
	if !strings.Contains(r.Out, hour.Format(time.DateOnly)+"  ") {
		t.Errorf("no row for %s:\n%s", hour.Format(time.DateOnly), r.Out)
	}

	var u client.Usage
	s.ok(t, "keys", "usage", id, "--bucket", "1h", "--from", hour.Format(time.RFC3339), "--to", hour.Add(2*time.Hour).Format(time.RFC3339), "-o", "json").Decode(t, &u)
	if u.Bucket != "1h" || len(u.Buckets) != 2 || u.Buckets[0].Counts["valid"] != 7 || u.Buckets[1].Counts["rate_limited"] != 2 || u.Totals["valid"] != 10 {
		t.Errorf("-o json, two hours: %+v", u)
	}

	for _, args := range [][]string{
		{"keys", "usage", id, "--bucket", "1w"},
		{"keys", "usage", id, "--since", "soon"},
		{"keys", "usage", id, "--since", "0d"},
		{"keys", "usage", id, "--from", "yesterday"},
		{"keys", "usage", "not-an-id"},
	} {
		s.run(t, cmdtest.Invocation{}, args...).Want(t, cmdutil.ExitUsage)
	}
	s.run(t, cmdtest.Invocation{}, "keys", "usage", "0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e").Want(t, cmdutil.ExitRefused)
}

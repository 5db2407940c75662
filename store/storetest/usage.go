package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// usageTests check the optional store.UsageRecorder capability; a store
// without it skips them.
var usageTests = []namedTest{
	{"RecordAndRead", testUsageRecord},
	{"AddsUp", testUsageAddsUp},
	{"Range", testUsageRange},
	{"Purge", testUsagePurge},
	{"DeleteRemoves", testUsageDelete},
	{"LargeBatch", testUsageLarge},
	{"ManySubjects", testUsageManySubjects},
	{"Concurrent", testUsageConcurrent},
}

// usageRecorder returns s as a store.UsageRecorder, or skips the test.
func usageRecorder(t *testing.T, s store.Store) store.UsageRecorder {
	t.Helper()
	r, ok := s.(store.UsageRecorder)
	if !ok {
		t.Skip("the store does not implement store.UsageRecorder (optional)")
	}
	return r
}

// baseHour is a whole hour, the start of the hours of the usage tests.
func baseHour() time.Time {
	return now().Truncate(time.Hour).Add(-48 * time.Hour)
}

// usageStrings returns "kind/subject@hour outcome=count" for each count,
// sorted, failing the test on a count whose hour is not in UTC.
func usageStrings(t *testing.T, cs []store.UsageCount) []string {
	t.Helper()
	out := make([]string, len(cs))
	for i, c := range cs {
		if c.Hour.Location() != time.UTC {
			t.Errorf("count %+v: hour in %v, want UTC", c, c.Hour.Location())
		}
		out[i] = fmt.Sprintf("%s/%s@%s %s=%d", c.Kind, c.Subject, c.Hour.UTC().Format(time.RFC3339Nano), c.Outcome, c.Count)
	}
	slices.Sort(out)
	return out
}

// readUsage returns the counts q selects, as usageStrings, or ends the
// test.
func readUsage(t *testing.T, r store.UsageRecorder, q store.UsageQuery) []string {
	t.Helper()
	cs, err := r.Usage(t.Context(), q)
	if err != nil {
		t.Fatalf("Usage(%+v): %v", q, err)
	}
	for _, c := range cs {
		if c.Kind != q.Kind || !slices.Contains(q.Subjects, c.Subject) || c.Hour.Before(q.From) || !c.Hour.Before(q.To) {
			t.Errorf("Usage(%+v) returned %+v, which it does not select", q, c)
		}
	}
	return usageStrings(t, cs)
}

// mustRecordUsage records cs or ends the test.
func mustRecordUsage(t *testing.T, r store.UsageRecorder, cs ...store.UsageCount) {
	t.Helper()
	if err := r.RecordUsage(t.Context(), cs); err != nil {
		t.Fatalf("RecordUsage(%d counts): %v", len(cs), err)
	}
}

// keyCount is a count of key id.
func keyCount(id uuid.UUID, hour time.Time, outcome string, n int64) store.UsageCount {
	return store.UsageCount{Kind: store.UsageKey, Subject: id, Hour: hour, Outcome: outcome, Count: n}
}

// everything selects every hour of the tests' subjects ids of kind.
func everything(kind string, ids ...uuid.UUID) store.UsageQuery {
	h := baseHour()
	return store.UsageQuery{Kind: kind, Subjects: ids, From: h.Add(-1000 * time.Hour), To: h.Add(1000 * time.Hour)}
}

func testUsageRecord(t *testing.T, s store.Store) {
	r := usageRecorder(t, s)
	a, b := newKey(t, "w1", "a"), newKey(t, "w1", "b")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	h := baseHour()
	long := strings.Repeat("x", store.MaxUsageWord)
	in := []store.UsageCount{
		keyCount(a.ID, h, "valid", 7),
		keyCount(a.ID, h, "rate_limited", 2),
		keyCount(a.ID, h.Add(time.Hour), "valid", 1),
		keyCount(a.ID, h.Add(time.Hour), long, 3),
		keyCount(b.ID, h, "valid", 5),
		// Another kind of subject with the same id is another subject.
		{Kind: long, Subject: a.ID, Hour: h, Outcome: "valid", Count: 11},
	}
	mustRecordUsage(t, r, in...)
	if got, want := readUsage(t, r, everything(store.UsageKey, a.ID)), usageStrings(t, in[:4]); !slices.Equal(got, want) {
		t.Errorf("usage of a:\n got %v\nwant %v", got, want)
	}
	if got, want := readUsage(t, r, everything(store.UsageKey, a.ID, b.ID)), usageStrings(t, in[:5]); !slices.Equal(got, want) {
		t.Errorf("usage of a and b:\n got %v\nwant %v", got, want)
	}
	if got, want := readUsage(t, r, everything(long, a.ID)), usageStrings(t, in[5:]); !slices.Equal(got, want) {
		t.Errorf("usage of the other kind:\n got %v\nwant %v", got, want)
	}
	if got := readUsage(t, r, everything(store.UsageKey, newID())); len(got) != 0 {
		t.Errorf("usage of an unknown subject: %v, want none", got)
	}
	// An hour given in another zone is the same hour.
	mustRecordUsage(t, r, keyCount(b.ID, h.In(time.FixedZone("X", -5*3600)), "valid", 1))
	if got, want := readUsage(t, r, everything(store.UsageKey, b.ID)), usageStrings(t, []store.UsageCount{keyCount(b.ID, h, "valid", 6)}); !slices.Equal(got, want) {
		t.Errorf("usage of b after a count given in another zone:\n got %v\nwant %v", got, want)
	}
	if err := r.RecordUsage(t.Context(), nil); err != nil {
		t.Errorf("RecordUsage(nil): %v", err)
	}
	_, err := r.Usage(cancelled(t), everything(store.UsageKey, a.ID))
	assertErrorIs(t, "Usage(cancelled context)", err, context.Canceled)
	assertErrorIs(t, "RecordUsage(cancelled context)", r.RecordUsage(cancelled(t), in), context.Canceled)
	_, err = r.PurgeUsage(cancelled(t), h)
	assertErrorIs(t, "PurgeUsage(cancelled context)", err, context.Canceled)
	if got, want := readUsage(t, r, everything(store.UsageKey, a.ID)), usageStrings(t, in[:4]); !slices.Equal(got, want) {
		t.Errorf("usage of a after cancelled calls (which must change nothing):\n got %v\nwant %v", got, want)
	}
}

func testUsageAddsUp(t *testing.T, s store.Store) {
	r := usageRecorder(t, s)
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	h := baseHour()
	// Twice in one call, then again, with counts of nothing in between.
	mustRecordUsage(t, r, keyCount(k.ID, h, "valid", 3), keyCount(k.ID, h, "expired", 1), keyCount(k.ID, h, "valid", 4))
	mustRecordUsage(t, r, keyCount(k.ID, h, "valid", 10), keyCount(k.ID, h, "revoked", 0), keyCount(k.ID, h, "expired", -5))
	want := usageStrings(t, []store.UsageCount{keyCount(k.ID, h, "valid", 17), keyCount(k.ID, h, "expired", 1)})
	if got := readUsage(t, r, everything(store.UsageKey, k.ID)); !slices.Equal(got, want) {
		t.Errorf("got %v, want the sums %v (counts of zero or less ignored)", got, want)
	}
}

func testUsageRange(t *testing.T, s store.Store) {
	r := usageRecorder(t, s)
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	h := baseHour()
	var in []store.UsageCount
	for i := range 5 {
		in = append(in, keyCount(k.ID, h.Add(time.Duration(i)*time.Hour), "valid", int64(i+1)))
	}
	mustRecordUsage(t, r, in...)
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []store.UsageCount
	}{
		{"whole hours", h.Add(time.Hour), h.Add(3 * time.Hour), in[1:3]},
		{"from is inclusive, to exclusive", h, h.Add(time.Hour), in[:1]},
		{"within an hour", h.Add(time.Hour + time.Minute), h.Add(2 * time.Hour), nil},
		{"empty", h.Add(2 * time.Hour), h.Add(2 * time.Hour), nil},
		{"all", h.Add(-time.Hour), h.Add(5 * time.Hour), in},
	} {
		got := readUsage(t, r, store.UsageQuery{Kind: store.UsageKey, Subjects: []uuid.UUID{k.ID}, From: tc.from, To: tc.to})
		if want := usageStrings(t, tc.want); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, want)
		}
	}
}

func testUsagePurge(t *testing.T, s store.Store) {
	r := usageRecorder(t, s)
	a, b := newKey(t, "w1", "a"), newKey(t, "w1", "b")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	h := baseHour()
	mustRecordUsage(t, r,
		keyCount(a.ID, h, "valid", 1), keyCount(a.ID, h, "expired", 1), keyCount(a.ID, h.Add(time.Hour), "valid", 2),
		keyCount(b.ID, h, "valid", 3), keyCount(b.ID, h.Add(2*time.Hour), "valid", 4),
		store.UsageCount{Kind: "identity", Subject: a.ID, Hour: h, Outcome: "valid", Count: 5},
	)
	n, err := r.PurgeUsage(t.Context(), h.Add(time.Hour))
	if err != nil || n != 4 {
		t.Fatalf("PurgeUsage(the second hour) = %d, %v; want 4 counts of the first hour removed", n, err)
	}
	if got, want := readUsage(t, r, everything(store.UsageKey, a.ID, b.ID)), usageStrings(t, []store.UsageCount{
		keyCount(a.ID, h.Add(time.Hour), "valid", 2), keyCount(b.ID, h.Add(2*time.Hour), "valid", 4),
	}); !slices.Equal(got, want) {
		t.Errorf("after the purge: got %v, want %v", got, want)
	}
	if got := readUsage(t, r, everything("identity", a.ID)); len(got) != 0 {
		t.Errorf("counts of another kind before the purge: %v, want none", got)
	}
	if n, err := r.PurgeUsage(t.Context(), h.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("PurgeUsage again = %d, %v; want 0, nil", n, err)
	}
}

func testUsageDelete(t *testing.T, s store.Store) {
	r := usageRecorder(t, s)
	k, other := newKey(t, "w1", "a"), newKey(t, "w1", "b")
	mustCreate(t, s, k)
	mustCreate(t, s, other)
	h := baseHour()
	identity := store.UsageCount{Kind: "identity", Subject: k.ID, Hour: h, Outcome: "valid", Count: 2}
	mustRecordUsage(t, r, keyCount(k.ID, h, "valid", 1), keyCount(other.ID, h, "valid", 1), identity)
	if err := s.Delete(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	if got := readUsage(t, r, everything(store.UsageKey, k.ID)); len(got) != 0 {
		t.Errorf("usage of a deleted key: %v, want none", got)
	}
	if got := readUsage(t, r, everything(store.UsageKey, other.ID)); len(got) != 1 {
		t.Errorf("usage of another key after a delete: %v, want 1 count", got)
	}
	if got, want := readUsage(t, r, everything("identity", k.ID)), usageStrings(t, []store.UsageCount{identity}); !slices.Equal(got, want) {
		t.Errorf("counts of another kind with the deleted key's id: got %v, want them kept %v", got, want)
	}
}

func testUsageLarge(t *testing.T, s store.Store) {
	r := usageRecorder(t, s)
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	h := baseHour()
	outcomes := []string{"valid", "expired", "rate_limited"}
	var in []store.UsageCount
	want := map[string]int64{}
	for i := range 1300 {
		// 400 hours × 3 outcomes, and 100 repeats of the first cells.
		c := keyCount(k.ID, h.Add(-time.Duration(i/3%400)*time.Hour), outcomes[i%3], int64(i%5+1))
		in = append(in, c)
		want[c.Hour.UTC().Format(time.RFC3339)+" "+c.Outcome] += c.Count
	}
	mustRecordUsage(t, r, in...)
	cs, err := r.Usage(t.Context(), everything(store.UsageKey, k.ID))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range cs {
		got[c.Hour.UTC().Format(time.RFC3339)+" "+c.Outcome] += c.Count
	}
	if len(got) != len(want) || len(cs) != len(want) {
		t.Fatalf("got %d counts (%d cells), want %d cells", len(cs), len(got), len(want))
	}
	for cell, n := range want {
		if got[cell] != n {
			t.Errorf("%s: got %d, want %d", cell, got[cell], n)
		}
	}
}

func testUsageManySubjects(t *testing.T, s store.Store) {
	r := usageRecorder(t, s)
	h := baseHour()
	ids := make([]uuid.UUID, store.MaxUsageSubjects)
	var in []store.UsageCount
	for i := range ids {
		ids[i] = newID()
		if i%10 == 0 {
			in = append(in, keyCount(ids[i], h, "valid", int64(i+1)))
		}
	}
	mustRecordUsage(t, r, in...)
	if got, want := readUsage(t, r, everything(store.UsageKey, ids...)), usageStrings(t, in); !slices.Equal(got, want) {
		t.Errorf("usage of %d subjects: got %d counts, want %d", len(ids), len(got), len(want))
	}
}

func testUsageConcurrent(t *testing.T, s store.Store) {
	r := usageRecorder(t, s)
	a, b := newKey(t, "w1", "a"), newKey(t, "w1", "b")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	h := baseHour()
	const writers, rounds = 8, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range rounds {
				// Each writer sends the cells in another order, as several
				// instances would.
				cs := []store.UsageCount{keyCount(a.ID, h, "valid", 1), keyCount(b.ID, h, "valid", 2), keyCount(a.ID, h.Add(time.Hour), "expired", 3)}
				if w%2 == 1 {
					slices.Reverse(cs)
				}
				if err := r.RecordUsage(context.Background(), cs); err != nil {
					t.Errorf("RecordUsage: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := usageStrings(t, []store.UsageCount{
		keyCount(a.ID, h, "valid", writers*rounds), keyCount(b.ID, h, "valid", 2*writers*rounds),
		keyCount(a.ID, h.Add(time.Hour), "expired", 3*writers*rounds),
	})
	if got := readUsage(t, r, everything(store.UsageKey, a.ID, b.ID)); !slices.Equal(got, want) {
		t.Errorf("after concurrent writes: got %v, want %v", got, want)
	}
}

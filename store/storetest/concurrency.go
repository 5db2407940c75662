package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// The counts are modest so that the suite stays quick on a SQL backend
// and under the race detector, yet high enough to interleave.
const (
	goroutines  = 8
	perRoutine  = 5
	consumers   = 40
	usesToShare = 20
)

var concurrencyTests = []namedTest{
	{"ListDuringInserts", testConcurrentListDuringInserts},
	{"Update", testConcurrentUpdate},
	{"ConsumeUse", testConcurrentConsumeUse},
	{"CreateSameName", testConcurrentCreateSameName},
	{"TouchLastUsed", testConcurrentTouchLastUsed},
	{"SpendUses", testConcurrentSpendUses},
	{"SpendCredits", testConcurrentSpendCredits},
}

func testConcurrentListDuringInserts(t *testing.T, s store.Store) {
	pre := createMany(t, s, 60, "w1")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			<-start
			for i := range 10 {
				k := newKey(t, "w1", fmt.Sprintf("new-%d-%d", g, i))
				if err := s.Create(t.Context(), k); err != nil {
					t.Errorf("concurrent Create: got error %v, want nil", err)
					return
				}
			}
		})
	}
	close(start)

	seen := make(map[uuid.UUID]bool)
	var last uuid.UUID
	opts := store.ListOptions{Limit: 7}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Errorf("List: still paging after %d pages", pages)
			break
		}
		page, err := s.List(t.Context(), opts)
		if err != nil {
			t.Errorf("List: got error %v, want nil", err)
			break
		}
		for _, k := range page.Keys {
			if seen[k.ID] {
				t.Errorf("List: key %s seen twice", k.ID)
			}
			if compareIDs(k.ID, last) <= 0 {
				t.Errorf("List: key %s after %s, want ascending ids", k.ID, last)
			}
			seen[k.ID], last = true, k.ID
		}
		if page.Next == (uuid.UUID{}) {
			break
		}
		opts.After = page.Next
	}
	wg.Wait()
	for _, k := range pre {
		if !seen[k.ID] {
			t.Errorf("List: pre-existing key %s never seen", k.ID)
		}
	}
}

func testConcurrentUpdate(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "counter")
	k.Metadata = map[string]string{"counter": "0"}
	mustCreate(t, s, k)

	increment := func() error {
		for range 10 * goroutines * perRoutine {
			cur, err := s.Get(t.Context(), k.ID)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(cur.Metadata["counter"])
			if err != nil {
				return fmt.Errorf("counter %q: %w", cur.Metadata["counter"], err)
			}
			cur.Metadata["counter"] = strconv.Itoa(n + 1)
			err = s.Update(t.Context(), cur)
			if !errors.Is(err, store.ErrConflict) {
				return err
			}
		}
		return errors.New("too many conflicts in a row")
	}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perRoutine {
				if err := increment(); err != nil {
					t.Errorf("increment: got error %v, want nil", err)
					return
				}
			}
		})
	}
	wg.Wait()

	got := mustGet(t, s, k.ID)
	if want := strconv.Itoa(goroutines * perRoutine); got.Metadata["counter"] != want {
		t.Errorf("counter after concurrent updates: got %q, want %q", got.Metadata["counter"], want)
	}
	if want := int64(1 + goroutines*perRoutine); got.Version != want {
		t.Errorf("Version after concurrent updates: got %d, want %d", got.Version, want)
	}
}

func testConcurrentConsumeUse(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "limited")
	k.RemainingUses = int64p(usesToShare)
	mustCreate(t, s, k)

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		left      []int64 // the counts returned by successful calls
		exhausted atomic.Int64
	)
	start := make(chan struct{})
	for range consumers {
		wg.Go(func() {
			<-start
			n, err := s.ConsumeUse(t.Context(), k.ID)
			switch {
			case err == nil:
				mu.Lock()
				left = append(left, n)
				mu.Unlock()
			case errors.Is(err, store.ErrUsageExhausted):
				exhausted.Add(1)
			default:
				t.Errorf("ConsumeUse: got error %v, want nil or %v", err, store.ErrUsageExhausted)
			}
		})
	}
	close(start)
	wg.Wait()

	slices.Sort(left)
	want := make([]int64, usesToShare)
	for i := range want {
		want[i] = int64(i)
	}
	if !slices.Equal(left, want) {
		t.Errorf("uses left returned by successful calls: got %v, want each of %v once", left, want)
	}
	if got, want := exhausted.Load(), int64(consumers-usesToShare); got != want {
		t.Errorf("ErrUsageExhausted count: got %d, want %d", got, want)
	}
	got := mustGet(t, s, k.ID)
	if g := usesString(got.RemainingUses); g != "0" {
		t.Errorf("RemainingUses after concurrent consumers: got %s, want 0", g)
	}
	if want := int64(1 + usesToShare); got.Version != want {
		t.Errorf("Version after concurrent consumers: got %d, want %d", got.Version, want)
	}
}

func testConcurrentCreateSameName(t *testing.T, s store.Store) {
	var ok, dup atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range goroutines {
		k := newKey(t, "w1", "contested")
		wg.Go(func() {
			<-start
			err := s.Create(t.Context(), k)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrDuplicate):
				dup.Add(1)
			default:
				t.Errorf("Create: got error %v, want nil or %v", err, store.ErrDuplicate)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || dup.Load() != goroutines-1 {
		t.Errorf("concurrent creates of one name: got %d ok and %d ErrDuplicate, want 1 and %d", ok.Load(), dup.Load(), goroutines-1)
	}
	if all := listAll(t, s, store.ListOptions{Workspace: "w1"}); len(all) != 1 {
		t.Errorf("List after concurrent creates: got %d keys, want 1", len(all))
	}
}

func testConcurrentTouchLastUsed(t *testing.T, s store.Store) {
	k := newKey(t, "w1", "busy")
	k.LastUsedAt = time.Time{}
	mustCreate(t, s, k)
	base := now()
	times := make([]time.Time, goroutines*perRoutine)
	for i := range times {
		times[i] = base.Add(time.Duration(i) * time.Millisecond)
	}
	latest := times[len(times)-1]
	rand.Shuffle(len(times), func(i, j int) { times[i], times[j] = times[j], times[i] })

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for _, at := range times[g*perRoutine : (g+1)*perRoutine] {
				if err := s.TouchLastUsed(t.Context(), map[uuid.UUID]time.Time{k.ID: at}); err != nil {
					t.Errorf("TouchLastUsed: got error %v, want nil", err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := mustGet(t, s, k.ID)
	if !got.LastUsedAt.Equal(latest) {
		t.Errorf("LastUsedAt after concurrent touches: got %v, want the latest %v", got.LastUsedAt, latest)
	}
	if got.Version != 1 {
		t.Errorf("Version after concurrent touches: got %d, want 1", got.Version)
	}
}

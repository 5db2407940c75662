package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// exerciseTests check the optional store.ExerciseRecorder capability; a
// store without it skips them.
var exerciseTests = []namedTest{
	{"RecordAndRead", testExercisesRecord},
	{"LatestTimeWins", testExercisesLatest},
	{"DeleteRemoves", testExercisesDelete},
	{"LargeBatch", testExercisesLarge},
}

// recorder returns s as a store.ExerciseRecorder, or skips the test.
func recorder(t *testing.T, s store.Store) store.ExerciseRecorder {
	t.Helper()
	r, ok := s.(store.ExerciseRecorder)
	if !ok {
		t.Skip("the store does not implement store.ExerciseRecorder (optional)")
	}
	return r
}

// exerciseStrings returns "permission@workspace=time" for each exercise,
// sorted.
func exerciseStrings(es []store.Exercise) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Permission + "@" + e.Workspace + "=" + e.At.UTC().Format(time.RFC3339Nano)
	}
	slices.Sort(out)
	return out
}

// readExercises returns the exercises of id as strings, or ends the test.
func readExercises(t *testing.T, r store.ExerciseRecorder, id uuid.UUID) []string {
	t.Helper()
	es, err := r.Exercises(t.Context(), id)
	if err != nil {
		t.Fatalf("Exercises(%s): %v", id, err)
	}
	for _, e := range es {
		if e.KeyID != id {
			t.Errorf("Exercises(%s) returned one of key %s", id, e.KeyID)
		}
	}
	return exerciseStrings(es)
}

func testExercisesRecord(t *testing.T, s store.Store) {
	r := recorder(t, s)
	a, b := newKey(t, "w1", "a"), newKey(t, "w1", "b")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	at := now()
	in := []store.Exercise{
		{KeyID: a.ID, Permission: "cluster:read", Workspace: "w1", At: at},
		{KeyID: a.ID, Permission: "cluster:read", Workspace: "w2", At: at},
		{KeyID: a.ID, Permission: "billing:write", At: at},
		{KeyID: b.ID, Permission: "cluster:read", Workspace: "w1", At: at},
	}
	if err := r.RecordExercises(t.Context(), in); err != nil {
		t.Fatalf("RecordExercises: %v", err)
	}
	if got, want := readExercises(t, r, a.ID), exerciseStrings(in[:3]); !slices.Equal(got, want) {
		t.Errorf("exercises of a: got %v, want %v", got, want)
	}
	if got := readExercises(t, r, newID()); len(got) != 0 {
		t.Errorf("exercises of an unknown key: %v, want none", got)
	}
	if err := r.RecordExercises(t.Context(), nil); err != nil {
		t.Errorf("RecordExercises(nil): %v", err)
	}
	_, err := r.Exercises(cancelled(t), a.ID)
	assertErrorIs(t, "Exercises(cancelled context)", err, context.Canceled)
	assertErrorIs(t, "RecordExercises(cancelled context)", r.RecordExercises(cancelled(t), in), context.Canceled)
}

func testExercisesLatest(t *testing.T, s store.Store) {
	r := recorder(t, s)
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	base := now()
	e := func(at time.Time) store.Exercise {
		return store.Exercise{KeyID: k.ID, Permission: "cluster:read", Workspace: "w1", At: at}
	}
	// Twice in one batch, then an earlier time: the latest stays.
	if err := r.RecordExercises(t.Context(), []store.Exercise{e(base), e(base.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordExercises(t.Context(), []store.Exercise{e(base.Add(-time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if got, want := readExercises(t, r, k.ID), exerciseStrings([]store.Exercise{e(base.Add(time.Hour))}); !slices.Equal(got, want) {
		t.Errorf("got %v, want the latest time only %v", got, want)
	}
}

func testExercisesDelete(t *testing.T, s store.Store) {
	r := recorder(t, s)
	k, other := newKey(t, "w1", "a"), newKey(t, "w1", "b")
	mustCreate(t, s, k)
	mustCreate(t, s, other)
	at := now()
	if err := r.RecordExercises(t.Context(), []store.Exercise{
		{KeyID: k.ID, Permission: "cluster:read", At: at}, {KeyID: other.ID, Permission: "cluster:read", At: at},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	if got := readExercises(t, r, k.ID); len(got) != 0 {
		t.Errorf("exercises of a deleted key: %v, want none", got)
	}
	if got := readExercises(t, r, other.ID); len(got) != 1 {
		t.Errorf("exercises of another key after a delete: %v, want 1", got)
	}
}

func testExercisesLarge(t *testing.T, s store.Store) {
	r := recorder(t, s)
	k := newKey(t, "w1", "a")
	mustCreate(t, s, k)
	at := now()
	var in []store.Exercise
	for i := range 1200 {
		in = append(in, store.Exercise{KeyID: k.ID, Permission: "res" + strings.Repeat("x", i%7) + ":read", Workspace: "w" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)), At: at})
	}
	if err := r.RecordExercises(t.Context(), in); err != nil {
		t.Fatalf("RecordExercises(1200): %v", err)
	}
	want := map[string]bool{}
	for _, s := range exerciseStrings(in) {
		want[s] = true
	}
	if got := readExercises(t, r, k.ID); len(got) != len(want) {
		t.Errorf("got %d exercises, want %d distinct", len(got), len(want))
	}
}

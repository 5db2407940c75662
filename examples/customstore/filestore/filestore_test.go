package filestore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/examples/customstore/filestore"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/storetest"
)

// TestConformance runs the suite, then checks that whatever state each
// subtest left behind survives a reopen, and a compaction and a reopen,
// unchanged: replay rebuilds exactly what the live store held.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openReopenedAtCleanup(t, filestore.Config{})
	})
}

// TestConformanceCompactingAlways runs the suite with a store that
// compacts its log after almost every write, concurrent ones included.
func TestConformanceCompactingAlways(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openReopenedAtCleanup(t, filestore.Config{CompactAfter: 1})
	})
}

// openReopenedAtCleanup opens a store in a new directory and, at cleanup,
// compares its keys with those of the same file reopened, then compacted
// and reopened.
func openReopenedAtCleanup(t *testing.T, cfg filestore.Config) *filestore.Store {
	t.Helper()
	cfg.Path = filepath.Join(t.TempDir(), "keys.jsonl")
	s := mustOpen(t, cfg)
	t.Cleanup(func() {
		want := snapshot(t, s)
		mustClose(t, s)
		s := mustOpen(t, cfg)
		assertSameKeys(t, "after reopen", snapshot(t, s), want)
		// t.Context() is already cancelled when cleanups run.
		if err := s.Compact(context.Background()); err != nil {
			t.Fatalf("Compact: got error %v, want nil", err)
		}
		mustClose(t, s)
		s = mustOpen(t, cfg)
		assertSameKeys(t, "after compaction and reopen", snapshot(t, s), want)
		mustClose(t, s)
	})
	return s
}

func TestReopenKeepsEveryChange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl")}
	s := mustOpen(t, cfg)
	full := newKey("full", "w1")
	limited := newKey("limited", "w1")
	doomed := newKey("doomed", "w2")
	for _, k := range []*store.Key{full, limited, doomed} {
		mustCreate(t, s, k)
	}
	full.Description, full.PrevHash, full.Hash = "regenerated", full.Hash, randomHash()
	if err := s.Update(ctx, full); err != nil {
		t.Fatalf("Update: got error %v, want nil", err)
	}
	if _, err := s.ConsumeUse(ctx, limited.ID); err != nil {
		t.Fatalf("ConsumeUse: got error %v, want nil", err)
	}
	used := time.Now().Add(time.Hour)
	if err := s.TouchLastUsed(ctx, map[uuid.UUID]time.Time{full.ID: used, limited.ID: used}); err != nil {
		t.Fatalf("TouchLastUsed: got error %v, want nil", err)
	}
	if err := s.Delete(ctx, doomed.ID); err != nil {
		t.Fatalf("Delete: got error %v, want nil", err)
	}
	want := snapshot(t, s)
	wantStats := filestore.Stats{Keys: 2, Records: 7, Bytes: fileSize(t, cfg.Path)}
	if got := s.Stats(); got != wantStats {
		t.Errorf("Stats: got %+v, want %+v", got, wantStats)
	}
	mustClose(t, s)

	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	assertSameKeys(t, "after reopen", snapshot(t, s), want)
	if got := s.Stats(); got != wantStats {
		t.Errorf("Stats after reopen: got %+v, want %+v", got, wantStats)
	}
	byPrev, err := s.GetByHash(ctx, full.PrevHash)
	if err != nil || byPrev.ID != full.ID {
		t.Errorf("GetByHash(PrevHash) after reopen: got (%v, %v), want key %s", byPrev, err, full.ID)
	}
	if _, err := s.GetByHash(ctx, doomed.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetByHash(deleted key) after reopen: got error %v, want %v", err, store.ErrNotFound)
	}
	// The replayed versions go on from where they were.
	k := mustGet(t, s, full.ID)
	if err := s.Update(ctx, k); err != nil || k.Version != 3 {
		t.Errorf("Update after reopen: got (version %d, %v), want (3, nil)", k.Version, err)
	}
}

// TestTornLastRecord appends what a crash in the middle of a write may
// leave, and checks that Open drops it, says so, and that the store then
// works and reopens as before.
func TestTornLastRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tail func(nextRecord []byte) []byte
	}{
		{"half a record", func(r []byte) []byte { return r[:len(r)/2] }},
		{"whole record without its newline", func(r []byte) []byte { return r[:len(r)-1] }},
		{"one byte", func(r []byte) []byte { return r[:1] }},
		{"zeros ending in a newline", func([]byte) []byte { return []byte("\x00\x00\x00\x00\n") }},
		{"garbled record ending in a newline", func(r []byte) []byte {
			return append(bytes.Clone(r[:len(r)/3]), '\n')
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl")}
			s := mustOpen(t, cfg)
			kept := newKey("kept", "w1")
			mustCreate(t, s, kept)
			want := snapshot(t, s)
			mustClose(t, s)
			good := readFile(t, cfg.Path)

			// The record the crashed write was appending: a real one,
			// taken from another log.
			appendToFile(t, cfg.Path, tc.tail(recordLine(t, newKey("lost", "w1"))))

			var logs bytes.Buffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			s = mustOpen(t, cfg)
			if got := readFile(t, cfg.Path); !bytes.Equal(got, good) {
				t.Errorf("log after Open: got %q, want the %d bytes before the torn record", got, len(good))
			}
			if !strings.Contains(logs.String(), "dropped a torn last record") {
				t.Errorf("Open: got logs %q, want a warning about the torn record", logs.String())
			}
			assertSameKeys(t, "after Open", snapshot(t, s), want)
			after := newKey("after", "w1")
			mustCreate(t, s, after)
			want = snapshot(t, s)
			mustClose(t, s)

			s = mustOpen(t, filestore.Config{Path: cfg.Path})
			defer mustClose(t, s)
			assertSameKeys(t, "after a write and a reopen", snapshot(t, s), want)
		})
	}
}

// TestTornHeader checks that a log whose creation was cut short opens as
// an empty store.
func TestTornHeader(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.jsonl")
	s := mustOpen(t, filestore.Config{Path: path})
	mustClose(t, s)
	header := readFile(t, path)
	writeFile(t, path, header[:len(header)/2])

	s = mustOpen(t, filestore.Config{Path: path})
	defer mustClose(t, s)
	if got := readFile(t, path); !bytes.Equal(got, header) {
		t.Errorf("log after Open: got %q, want the header %q", got, header)
	}
	if got := snapshot(t, s); len(got) != 0 {
		t.Errorf("keys: got %d, want 0", len(got))
	}
	mustCreate(t, s, newKey("first", "w1"))
}

// TestCorruptLog checks that Open refuses a damaged log with ErrCorrupt,
// changing nothing in the file, and releases its lock.
func TestCorruptLog(t *testing.T) {
	t.Parallel()
	// A valid log: the header, then creates of a and b.
	dir := t.TempDir()
	s := mustOpen(t, filestore.Config{Path: filepath.Join(dir, "valid.jsonl")})
	a, b := newKey("a", "w1"), newKey("b", "w1")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	mustClose(t, s)
	lines := bytes.SplitAfter(readFile(t, filepath.Join(dir, "valid.jsonl")), []byte("\n"))
	header, putA, putB := lines[0], lines[1], lines[2]
	// putA under another id: the same name and hash as a.
	twinOfA := bytes.Replace(putA, []byte(a.ID.String()), []byte(uuid.Must(uuid.NewV7()).String()), 1)

	tests := []struct {
		name, content, wantInError string
	}{
		{"garbage between records", cat(header, putA, "not json\n", putB), "line 3"},
		{"unknown record", cat(header, `{"op":"frobnicate"}`+"\n", putA), "unknown op"},
		{"record repeated", cat(header, putA, putB, putB), "version 1 after 1"},
		{"delete of an unknown key", cat(header, putA, `{"op":"delete","id":"`+uuid.NewString()+`"}`+"\n"), "unknown key"},
		{"two keys with one name", cat(header, putA, twinOfA), "duplicate"},
		{"put without a key", cat(header, `{"op":"put"}`+"\n", putA), "without a key"},
		{"newer format", cat(`{"format":"keygate-filestore","version":2}`+"\n", putA), "version 2"},
		{"another program's file", "hello, world\n", "not a filestore log"},
		{"another program's file without a newline", "hello", "not a filestore log"},
		{"records without a header", cat(putA, putB), "not a filestore log"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "keys.jsonl")
			writeFile(t, path, []byte(tc.content))
			for range 2 { // the second Open would fail with ErrLocked if the first kept its lock
				s, err := filestore.Open(t.Context(), filestore.Config{Path: path})
				if !errors.Is(err, filestore.ErrCorrupt) {
					if err == nil {
						mustClose(t, s)
					}
					t.Fatalf("Open: got error %v, want %v", err, filestore.ErrCorrupt)
				}
				if !strings.Contains(err.Error(), tc.wantInError) {
					t.Errorf("Open: got error %q, want it to mention %q", err, tc.wantInError)
				}
			}
			if got := readFile(t, path); string(got) != tc.content {
				t.Errorf("file after a failed Open: got %q, want it unchanged %q", got, tc.content)
			}
		})
	}
}

func TestCompact(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl"), CompactAfter: -1}
	s := mustOpen(t, cfg)
	var keys []*store.Key
	for i := range 10 {
		k := newKey(fmt.Sprintf("k%d", i), "w1")
		mustCreate(t, s, k)
		keys = append(keys, k)
	}
	for _, k := range keys {
		for i := range 5 {
			k.Description = fmt.Sprint("update ", i)
			if err := s.Update(ctx, k); err != nil {
				t.Fatalf("Update: got error %v, want nil", err)
			}
		}
	}
	for _, k := range keys[:3] {
		if err := s.Delete(ctx, k.ID); err != nil {
			t.Fatalf("Delete: got error %v, want nil", err)
		}
	}
	want := snapshot(t, s)
	before := s.Stats()
	if wantBefore := (filestore.Stats{Keys: 7, Records: 63, Bytes: fileSize(t, cfg.Path)}); before != wantBefore {
		t.Errorf("Stats before Compact: got %+v, want %+v", before, wantBefore)
	}

	if err := s.Compact(ctx); err != nil {
		t.Fatalf("Compact: got error %v, want nil", err)
	}
	after := s.Stats()
	if after.Keys != 7 || after.Records != 7 || after.Bytes != fileSize(t, cfg.Path) || after.Bytes >= before.Bytes/5 {
		t.Errorf("Stats after Compact: got %+v, want 7 keys, 7 records, the file's size, under a fifth of %d bytes", after, before.Bytes)
	}
	if _, err := os.Stat(cfg.Path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(%s.compact) after Compact: got error %v, want %v", cfg.Path, err, os.ErrNotExist)
	}
	assertSameKeys(t, "after Compact", snapshot(t, s), want)
	// Writes go to the new file.
	mustCreate(t, s, newKey("after", "w1"))
	want = snapshot(t, s)
	mustClose(t, s)
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	assertSameKeys(t, "after Compact, a write and a reopen", snapshot(t, s), want)
}

// TestRetiredSurvive checks that the tombstones of retired secrets
// outlive the keys that held them, a reopen and a compaction, and that a
// retire record is written only for hashes not yet retired.
func TestRetiredSurvive(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl"), CompactAfter: -1}
	s := mustOpen(t, cfg)
	k := newKey("k", "w1")
	mustCreate(t, s, k)
	many := make([]store.RetiredHash, 1500) // two records once compacted
	for i := range many {
		many[i] = store.RetiredHash{Hash: randomHash(), PepperID: "p1", At: time.Now()}
	}
	many[0].Hash = k.Hash
	if err := s.Retire(ctx, many); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	before := s.Stats()
	if err := s.Retire(ctx, many[:10]); err != nil {
		t.Fatalf("Retire again: %v", err)
	}
	if after := s.Stats(); after != before {
		t.Errorf("retiring retired hashes wrote to the log: Stats %+v, then %+v", before, after)
	}
	if err := s.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	check := func(what string, s *filestore.Store) {
		t.Helper()
		for _, r := range []store.RetiredHash{many[0], many[999], many[1499]} {
			if ok, err := s.Retired(ctx, r.Hash); err != nil || !ok {
				t.Errorf("%s: Retired = %v, %v, want true", what, ok, err)
			}
		}
		if ok, err := s.Retired(ctx, randomHash()); err != nil || ok {
			t.Errorf("%s: Retired(a hash never retired) = %v, %v, want false", what, ok, err)
		}
	}
	check("after deleting the key", s)
	mustClose(t, s)
	s = mustOpen(t, cfg)
	check("after a reopen", s)
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Keys != 0 || st.Records != 2 {
		t.Errorf("Stats after Compact: %+v, want no key and 2 retire records", st)
	}
	mustClose(t, s)
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	check("after a compaction", s)
}

func TestCompactAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		compactAfter int
		maxRecords   int // at any point, with 1 key and 20 updates
	}{
		{"every 4 extra records", 4, 1 + 3},
		{"never", -1, 1 + 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustOpen(t, filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl"), CompactAfter: tc.compactAfter})
			defer mustClose(t, s)
			k := newKey("busy", "w1")
			mustCreate(t, s, k)
			most := 0
			for range 20 {
				if err := s.Update(t.Context(), k); err != nil {
					t.Fatalf("Update: got error %v, want nil", err)
				}
				most = max(most, s.Stats().Records)
			}
			if most != tc.maxRecords {
				t.Errorf("most records in the log: got %d, want %d", most, tc.maxRecords)
			}
		})
	}
}

// TestConcurrentWritersAndReaders mixes every kind of write from several
// goroutines with readers looking keys up by hash, then checks the counts
// and that a reopen rebuilds the same state.
func TestConcurrentWritersAndReaders(t *testing.T) {
	t.Parallel()
	const writers, perWriter = 6, 10
	ctx := t.Context()
	cfg := filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl"), CompactAfter: 25}
	s := mustOpen(t, cfg)
	seed := newKey("seed", "w0")
	mustCreate(t, s, seed)

	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.GetByHash(ctx, seed.Hash); err != nil {
					t.Errorf("GetByHash during writes: got error %v, want nil", err)
					return
				}
				if _, err := s.List(ctx, store.ListOptions{Limit: 5}); err != nil {
					t.Errorf("List during writes: got error %v, want nil", err)
					return
				}
			}
		})
	}
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Go(func() {
			for i := range perWriter {
				k := newKey(fmt.Sprintf("k-%d-%d", w, i), fmt.Sprint("w", w))
				if err := s.Create(ctx, k); err != nil {
					t.Errorf("Create: got error %v, want nil", err)
					return
				}
				k.Description = "updated"
				err := s.Update(ctx, k)
				if err == nil {
					_, err = s.ConsumeUse(ctx, k.ID)
				}
				if err == nil {
					err = s.TouchLastUsed(ctx, map[uuid.UUID]time.Time{k.ID: time.Now(), seed.ID: time.Now()})
				}
				if err == nil && i%2 == 0 {
					err = s.Delete(ctx, k.ID)
				}
				if err != nil {
					t.Errorf("writing key %s: got error %v, want nil", k.Name, err)
					return
				}
			}
		})
	}
	writersWG.Wait()
	close(done)
	readers.Wait()

	want := snapshot(t, s)
	if n := 1 + writers*perWriter/2; len(want) != n {
		t.Errorf("keys after concurrent writes: got %d, want %d", len(want), n)
	}
	for _, k := range want {
		if k.ID == seed.ID {
			continue
		}
		if k.Version != 3 || *k.RemainingUses != 99 || k.Description != "updated" {
			t.Errorf("key %s: got version %d, uses %d, description %q; want 3, 99, %q", k.Name, k.Version, *k.RemainingUses, k.Description, "updated")
		}
	}
	mustClose(t, s)
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	assertSameKeys(t, "after reopen", snapshot(t, s), want)
}

// TestFailedWrite checks what happens when the disk fails under a write:
// the write reports an error, memory is unchanged, reads go on, further
// writes are refused, and reopening the file recovers the last good state.
func TestFailedWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keys.jsonl")
	s := mustOpen(t, filestore.Config{Path: path})
	kept := newKey("kept", "w1")
	mustCreate(t, s, kept)
	want := snapshot(t, s)
	if err := s.BreakLogForTest(); err != nil {
		t.Fatalf("BreakLogForTest: %v", err)
	}

	lost := newKey("lost", "w1")
	err := s.Create(ctx, lost)
	if err == nil || errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Create on a failing disk: got error %v, want an I/O error", err)
	}
	if lost.Version != 0 {
		t.Errorf("Create failed: got k.Version %d, want 0 unchanged", lost.Version)
	}
	if _, err := s.Get(ctx, lost.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(key of the failed Create): got error %v, want %v", err, store.ErrNotFound)
	}
	assertSameKeys(t, "reads after the failure", snapshot(t, s), want)
	k := mustGet(t, s, kept.ID)
	if err := s.Update(ctx, k); err == nil || !strings.Contains(err.Error(), "reopen") {
		t.Errorf("Update after the failure: got error %v, want one saying to reopen", err)
	}
	_ = s.Close() // the log file is already closed: an error here is expected

	s = mustOpen(t, filestore.Config{Path: path})
	defer mustClose(t, s)
	assertSameKeys(t, "after reopen", snapshot(t, s), want)
}

// TestContextWhileWaitingForWriter checks that a write waiting for another
// one gives up when its context ends, and that reads do not wait at all.
func TestContextWhileWaitingForWriter(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl")})
	defer mustClose(t, s)
	k := newKey("a", "w1")
	mustCreate(t, s, k)
	release := s.HoldWriterForTest()
	defer release()

	writes := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Create", func(ctx context.Context) error { return s.Create(ctx, newKey("b", "w1")) }},
		{"Update", func(ctx context.Context) error { return s.Update(ctx, k.Clone()) }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, k.ID) }},
		{"TouchLastUsed", func(ctx context.Context) error {
			return s.TouchLastUsed(ctx, map[uuid.UUID]time.Time{k.ID: time.Now()})
		}},
		{"ConsumeUse", func(ctx context.Context) error { _, err := s.ConsumeUse(ctx, k.ID); return err }},
		{"Compact", s.Compact},
	}
	for _, w := range writes {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		err := w.call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while another write holds the writer: got error %v, want %v", w.name, err, context.DeadlineExceeded)
		}
	}
	if _, err := s.GetByHash(t.Context(), k.Hash); err != nil {
		t.Errorf("GetByHash while a write holds the writer: got error %v, want nil", err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl")})
	k := newKey("a", "w1")
	mustCreate(t, s, k)
	mustClose(t, s)
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"Create", func() error { return s.Create(ctx, newKey("b", "w1")) }},
		{"Get", func() error { _, err := s.Get(ctx, k.ID); return err }},
		{"GetByHash", func() error { _, err := s.GetByHash(ctx, k.Hash); return err }},
		{"List", func() error { _, err := s.List(ctx, store.ListOptions{}); return err }},
		{"Update", func() error { return s.Update(ctx, k) }},
		{"Delete", func() error { return s.Delete(ctx, k.ID) }},
		{"TouchLastUsed", func() error { return s.TouchLastUsed(ctx, map[uuid.UUID]time.Time{k.ID: time.Now()}) }},
		{"ConsumeUse", func() error { _, err := s.ConsumeUse(ctx, k.ID); return err }},
		{"Compact", func() error { return s.Compact(ctx) }},
		{"Close", s.Close},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, filestore.ErrClosed) {
			t.Errorf("%s after Close: got error %v, want %v", c.name, err, filestore.ErrClosed)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		cfg  filestore.Config
		want error
	}{
		{"no path", t.Context(), filestore.Config{}, nil},
		{"missing directory", t.Context(), filestore.Config{Path: filepath.Join(dir, "missing", "keys.jsonl")}, os.ErrNotExist},
		{"cancelled context", cancelled, filestore.Config{Path: filepath.Join(dir, "keys.jsonl")}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := filestore.Open(tc.ctx, tc.cfg)
			if err == nil {
				mustClose(t, s)
				t.Fatal("Open: got nil error, want one")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Open: got error %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "filestore: ") {
				t.Errorf("Open: got error %q, want prefix %q", err, "filestore: ")
			}
		})
	}
}

// TestErrorsOmitHash checks that no error carries a key's hash, in any
// common encoding, including the one the log file uses.
func TestErrorsOmitHash(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl")})
	defer mustClose(t, s)
	k := newKey("a", "w1")
	mustCreate(t, s, k)
	dup := newKey("b", "w1")
	dup.Hash = k.Hash
	missing := randomHash()
	_, errGet := s.GetByHash(t.Context(), missing)
	tests := []struct {
		name string
		err  error
		hash []byte
		want error
	}{
		{"GetByHash not found", errGet, missing, store.ErrNotFound},
		{"Create duplicate hash", s.Create(t.Context(), dup), k.Hash, store.ErrDuplicate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("got error %v, want %v", tc.err, tc.want)
			}
			msg := tc.err.Error()
			for _, enc := range []string{string(tc.hash), fmt.Sprintf("%x", tc.hash), fmt.Sprint(tc.hash), base64.StdEncoding.EncodeToString(tc.hash)} {
				if strings.Contains(msg, enc) {
					t.Errorf("error %q contains the hash as %q", msg, enc)
				}
			}
		})
	}
}

// --- helpers ---

func mustOpen(t testing.TB, cfg filestore.Config) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%s): got error %v, want nil", cfg.Path, err)
	}
	return s
}

func mustClose(t testing.TB, s *filestore.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("Close: got error %v, want nil", err)
	}
}

func mustCreate(t testing.TB, s store.Store, k *store.Key) {
	t.Helper()
	if err := s.Create(context.Background(), k); err != nil {
		t.Fatalf("Create(%q/%q): got error %v, want nil", k.Workspace, k.Name, err)
	}
}

func mustGet(t testing.TB, s store.Store, id uuid.UUID) *store.Key {
	t.Helper()
	k, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): got error %v, want nil", id, err)
	}
	return k
}

// snapshot returns every key of s, in id order, paging as a caller would.
func snapshot(t testing.TB, s store.Store) []*store.Key {
	t.Helper()
	var all []*store.Key
	opts := store.ListOptions{Limit: store.MaxListLimit}
	for {
		page, err := s.List(context.Background(), opts)
		if err != nil {
			t.Fatalf("List: got error %v, want nil", err)
		}
		all = append(all, page.Keys...)
		if page.Next == (uuid.UUID{}) {
			return all
		}
		opts.After = page.Next
	}
}

// assertSameKeys compares two snapshots key by key, every field.
func assertSameKeys(t testing.TB, what string, got, want []*store.Key) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d keys, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if g, w := normalize(got[i]), normalize(want[i]); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: key %d:\n got %+v\nwant %+v", what, i, g, w)
		}
	}
}

// normalize returns a copy of k in which equal keys are deeply equal: times
// in UTC without a monotonic reading, empty slices and maps as nil.
func normalize(k *store.Key) *store.Key {
	c := k.Clone()
	for _, tm := range []*time.Time{&c.PrevExpiresAt, &c.CreatedAt, &c.UpdatedAt, &c.ExpiresAt, &c.LastUsedAt, &c.RevokedAt} {
		*tm = tm.Round(0).UTC()
	}
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	if len(c.Metadata) == 0 {
		c.Metadata = nil
	}
	if len(c.Hash) == 0 {
		c.Hash = nil
	}
	if len(c.PrevHash) == 0 {
		c.PrevHash = nil
	}
	if len(c.AllowedCIDRs) == 0 {
		c.AllowedCIDRs = nil
	}
	return c
}

// newKey returns a key with every field set (but RevokedAt), in a local
// time zone, so a codec that loses a field or a time's instant shows.
func newKey(name, workspace string) *store.Key {
	base := time.Now().In(time.FixedZone("UTC+2", 2*60*60))
	uses := int64(100)
	return &store.Key{
		ID:            uuid.Must(uuid.NewV7()),
		Name:          name,
		Description:   "key " + name,
		Owner:         "owner-1",
		Workspace:     workspace,
		Role:          "viewer",
		Scopes:        []string{"billing:read", "cluster:read"},
		Metadata:      map[string]string{"team": "platform"},
		Hash:          randomHash(),
		PepperID:      "pepper-2",
		PrevHash:      randomHash(),
		PrevPepperID:  "pepper-1",
		PrevExpiresAt: base.Add(time.Hour),
		Hint:          "kg_7Gq2…",
		RateLimit:     10,
		RateWindow:    1500 * time.Millisecond,
		RemainingUses: &uses,
		AllowedCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		CreatedAt:     base.Add(-time.Hour),
		UpdatedAt:     base.Add(-time.Minute),
		ExpiresAt:     base.Add(24 * time.Hour),
		LastUsedAt:    base.Add(-2 * time.Minute),
	}
}

func randomHash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// recordLine returns the log line a store writes to create k.
func recordLine(t *testing.T, k *store.Key) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "other.jsonl")
	s := mustOpen(t, filestore.Config{Path: path})
	mustCreate(t, s, k)
	mustClose(t, s)
	lines := bytes.SplitAfter(readFile(t, path), []byte("\n"))
	return lines[1]
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
}

func appendToFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	return fi.Size()
}

// cat joins byte slices and strings into one string.
func cat(parts ...any) string {
	var b strings.Builder
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			b.Write(p)
		case string:
			b.WriteString(p)
		}
	}
	return b.String()
}

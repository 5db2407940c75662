//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package filestore_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/examples/customstore/filestore"
)

// TestLocked checks that one log is open in one Store at a time, also
// after a compaction has replaced the log file, and free again once the
// Store is closed.
func TestLocked(t *testing.T) {
	t.Parallel()
	cfg := filestore.Config{Path: filepath.Join(t.TempDir(), "keys.jsonl")}
	s := mustOpen(t, cfg)
	assertLocked := func(when string) {
		t.Helper()
		other, err := filestore.Open(t.Context(), cfg)
		if !errors.Is(err, filestore.ErrLocked) {
			if err == nil {
				mustClose(t, other)
			}
			t.Errorf("second Open %s: got error %v, want %v", when, err, filestore.ErrLocked)
		}
	}
	assertLocked("while the first is open")
	mustCreate(t, s, newKey("a", "w1"))
	if err := s.Compact(t.Context()); err != nil {
		t.Fatalf("Compact: got error %v, want nil", err)
	}
	assertLocked("after a compaction renamed the log")
	mustClose(t, s)

	s = mustOpen(t, cfg)
	mustClose(t, s)
}

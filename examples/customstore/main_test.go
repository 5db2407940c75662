package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRun runs the command twice on one log and checks the story each run
// tells: the second finds the first one's key, replayed from the log.
func TestRun(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.jsonl")
	for i, keys := range []int{0, 1} { // the second run finds the first one's key
		var out bytes.Buffer
		if err := run(t.Context(), &out, path); err != nil {
			t.Fatalf("run %d: got error %v, want nil; output:\n%s", i+1, err, &out)
		}
		if want := wantOutput(keys); !want.Match(out.Bytes()) {
			t.Errorf("run %d: output:\n%s\nwant it to match:\n%s", i+1, &out, want)
		}
	}
}

// wantOutput matches the output of a run on a log in which n earlier runs
// each left one revoked key, compacted, and the tombstone of its secret
// (written before the revocation).
func wantOutput(n int) *regexp.Regexp {
	var kept strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&kept, "  %d  put     \"grafana-%d\" version 2, revoked\n", i+1, i)
	}
	name := fmt.Sprintf("grafana-%d", n+1)
	return regexp.MustCompile(`(?s)^opened    .*keys\.jsonl: ` + fmt.Sprint(n) + ` keys
issued    kg_\S+, named "` + name + `"
verified  the new token
restarted ` + fmt.Sprint(n+1) + ` keys replayed; the same token verifies: "` + name + `", role viewer
revoked   next verification: ErrRevoked true
log:
  1  header  keygate-filestore version 1
.*  \d+  put     "` + name + `" version 1
  \d+  touch   last-used time of 1 key\(s\)
  \d+  retire  tombstones of 1 retired secret\(s\)
  \d+  put     "` + name + `" version 2, revoked
  \(\d+ bytes\)
log after Compact:
  1  header  keygate-filestore version 1
` + regexp.QuoteMeta(kept.String()) + `  ` + fmt.Sprint(n+2) + `  put     "` + name + `" version 2, revoked
  ` + fmt.Sprint(n+3) + `  retire  tombstones of ` + fmt.Sprint(n+1) + ` retired secret\(s\)
  \(\d+ bytes\)
$`)
}

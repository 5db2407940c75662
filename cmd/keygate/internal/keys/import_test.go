package keys_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdtest"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// importSummary is what keys import -o json prints.
type importSummary struct {
	Imported   int `json:"imported"`
	Duplicates int `json:"duplicates"`
	Failed     int `json:"failed"`
	Skipped    int `json:"skipped"`
	Failures   []struct {
		Line   int    `json:"line"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"failures"`
	DryRun bool `json:"dry_run"`
	Read   int  `json:"read"`
}

// legacy returns the n-th token of the other system.
func legacy(n int) string { return fmt.Sprintf("sk_live_%024d", n) }

// writeFile writes a file in a new temporary directory.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noSecrets fails if out holds one of the tokens or digests.
func noSecrets(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the output holds a token of the file:\n%s", out)
		}
	}
}

// TestImportCSV imports a CSV file: good rows, a row that cannot be read
// and one the API refuses, each failure with its line; importing again
// answers duplicates; no token is printed.
func TestImportCSV(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()
	digest := sha256.Sum256([]byte(legacy(5)))
	sha := hex.EncodeToString(digest[:])
	path := writeFile(t, "legacy.csv", "name,owner,workspace,role,scopes,expiry,rate,token,sha256,hint\n"+
		"billing,bob,,,billing:read cluster:read,90d,100/1m,"+legacy(1)+",,\n"+
		"bad-rate,bob,,,billing:read,90d,fast,"+legacy(2)+",,\n"+
		"bad-role,bob,acme,nosuch,,90d,,"+legacy(3)+",,\n"+
		"\"reports, for bi\",carol,,,reports:read,never,,,"+sha+",sk_live_rep\n")
	secrets := []string{legacy(1), legacy(2), legacy(3), legacy(5), sha}

	r := s.run(t, cmdtest.Invocation{}, "keys", "import", path)
	r.Want(t, cmdutil.ExitRefused)
	lines := strings.Split(strings.TrimSpace(r.Out), "\n")
	if len(lines) != 3 || lines[0] != "Imported 2, duplicates 0, failed 2." ||
		!strings.HasPrefix(lines[1], "line 3: invalid_row: rate: want REQUESTS/WINDOW") ||
		!strings.HasPrefix(lines[2], "line 4: unknown_role: ") {
		t.Errorf("stdout:\n%s", r.Out)
	}
	noSecrets(t, r.Out+r.Stderr, secrets...)
	for _, n := range []int{1, 5} {
		if _, err := s.m.Verify(ctx, legacy(n)); err != nil {
			t.Errorf("imported token %d: %v", n, err)
		}
	}
	if k := s.key(t, "billing"); k.RateLimit != 100 || k.Owner != "bob" || len(k.Scopes) != 2 {
		t.Errorf("billing: %+v", k)
	}
	s.key(t, "reports, for bi")

	var sum importSummary
	r = s.run(t, cmdtest.Invocation{}, "keys", "import", path, "-o", "json")
	r.Want(t, cmdutil.ExitRefused)
	r.Decode(t, &sum)
	if sum.Imported != 0 || sum.Duplicates != 2 || sum.Failed != 2 || len(sum.Failures) != 2 ||
		sum.Failures[0].Line != 3 || sum.Failures[0].Code != "invalid_row" || sum.Failures[1].Line != 4 || sum.Failures[1].Code != "unknown_role" {
		t.Errorf("again, -o json: %+v", sum)
	}
	noSecrets(t, r.Out+r.Stderr, secrets...)

	// A file that is not an import file: nothing is done.
	s.run(t, cmdtest.Invocation{}, "keys", "import", writeFile(t, "x.csv", legacy(9)+",grafana\n")).Want(t, cmdutil.ExitUsage, "not a column name")
	if _, err := s.m.Verify(ctx, legacy(9)); err == nil {
		t.Error("a header row was imported")
	}
}

// TestImportJSONLines imports JSON lines from standard input, giving rows
// without an expiry --expiry.
func TestImportJSONLines(t *testing.T) {
	t.Parallel()
	s := newService(t)
	stdin := fmt.Sprintf(`{"name":"a","scopes":["cluster:read"],"token":%q,"limits":{"uses_remaining":3}}`+"\n\n"+
		`{"name":"b","scopes":["cluster:read"],"expiry":"never","token":%q}`+"\n"+
		`{"name":"c","tokn":%q}`+"\n", legacy(1), legacy(2), legacy(3))
	r := s.run(t, cmdtest.Invocation{Stdin: stdin}, "keys", "import", "--expiry", "30d", "-")
	r.Want(t, cmdutil.ExitRefused)
	if !strings.HasPrefix(r.Out, "Imported 2, duplicates 0, failed 1.\nline 4: invalid_row: a field is not an import field") {
		t.Errorf("stdout:\n%s", r.Out)
	}
	noSecrets(t, r.Out+r.Stderr, legacy(1), legacy(2), legacy(3))
	if a, b := s.key(t, "a"), s.key(t, "b"); a.ExpiresAt.IsZero() || a.RemainingUses == nil || *a.RemainingUses != 3 || !b.ExpiresAt.IsZero() {
		t.Errorf("a %+v, b %+v", a, b)
	}
	// --format says what the extension does not.
	r = s.run(t, cmdtest.Invocation{}, "keys", "import", "--format", "jsonl", writeFile(t, "keys.txt", fmt.Sprintf(`{"name":"d","scopes":["x:read"],"expiry":"7d","token":%q}`, legacy(4))))
	r.Want(t, 0)
	if r.Out != "Imported 1, duplicates 0, failed 0.\n" {
		t.Errorf("stdout: %q", r.Out)
	}
}

// TestImportResume: an import the service stops answering exits 3 with
// the state recorded; run again with --resume, it goes on after the rows
// answered, retrying the failed ones.
func TestImportResume(t *testing.T) {
	t.Parallel()
	s := newService(t)
	var b strings.Builder
	b.WriteString("name,scopes,expiry,token\n")
	for i := 1; i <= 7; i++ {
		role := "cluster:read"
		if i == 2 {
			role = "bad scope!"
		}
		fmt.Fprintf(&b, "k%d,%s,30d,%s\n", i, role, legacy(i))
	}
	path := writeFile(t, "legacy.csv", b.String())
	state := filepath.Join(t.TempDir(), "legacy.state")

	s.importDown.Store(1) // the second batch gets 503
	r := s.run(t, cmdtest.Invocation{}, "keys", "import", "--batch", "2", "--resume", state, path)
	r.Want(t, cmdutil.ExitUnavailable, "import of the rows from line 4: 503 unavailable", "through line 3", "--resume "+state)
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	noSecrets(t, string(data), legacy(1), legacy(2), legacy(3))
	if abs, _ := filepath.Abs(path); string(data) != fmt.Sprintf(`{"source":%q,"through_line":3,"failed_lines":[3]}`+"\n", abs) {
		t.Errorf("state: %s", data)
	}

	s.importDown.Store(0)
	var sum importSummary
	r = s.run(t, cmdtest.Invocation{}, "keys", "import", "--batch", "2", "--resume", state, path, "-o", "json")
	r.Want(t, cmdutil.ExitRefused, "Resuming after line 3 (1 failed row(s) retried).")
	r.Decode(t, &sum)
	if sum.Imported != 5 || sum.Duplicates != 0 || sum.Skipped != 1 || sum.Failed != 1 || sum.Failures[0].Line != 3 {
		t.Errorf("resumed: %+v", sum)
	}
	r = s.run(t, cmdtest.Invocation{}, "keys", "import", "--resume", state, path)
	r.Want(t, cmdutil.ExitRefused)
	if !strings.HasPrefix(r.Out, "Imported 0, duplicates 0, failed 1, skipped 6 (done by an earlier run).\nline 3: invalid_scope") {
		t.Errorf("done: %s", r.Out)
	}
	// The state of one file is not another's.
	s.run(t, cmdtest.Invocation{}, "keys", "import", "--resume", state, writeFile(t, "other.csv", "name,token\n")).Want(t, cmdutil.ExitUsage, "not of")
	s.run(t, cmdtest.Invocation{}, "keys", "import", "--resume", writeFile(t, "bad.state", "{"), path).Want(t, cmdutil.ExitUsage, "not an import state file")
}

// TestImportSplitsLargeBatches: a batch the service finds too large is
// halved until it fits; a row too large alone fails with its line.
func TestImportSplitsLargeBatches(t *testing.T) {
	t.Parallel()
	s := newService(t, serviceConfig{maxBody: 2048})
	var b strings.Builder
	b.WriteString("name,scopes,expiry,description,token\n")
	for i := 1; i <= 20; i++ {
		desc := strings.Repeat("d", 100)
		if i == 7 {
			desc = strings.Repeat("d", 3000)
		}
		fmt.Fprintf(&b, "k%d,cluster:read,30d,%s,%s\n", i, desc, legacy(i))
	}
	var sum importSummary
	r := s.run(t, cmdtest.Invocation{}, "keys", "import", "-o", "json", writeFile(t, "big.csv", b.String()))
	r.Want(t, cmdutil.ExitRefused)
	r.Decode(t, &sum)
	if sum.Imported != 19 || sum.Failed != 1 || sum.Failures[0].Line != 8 || sum.Failures[0].Code != "body_too_large" {
		t.Errorf("summary: %+v", sum)
	}
	if calls := s.importCalls.Load(); calls < 4 {
		t.Errorf("%d calls: the batch was not split", calls)
	}
	// Each 413 halves the size of the batches that follow, the rows of the
	// refused one included: the whole file (6 KiB) is refused, then the
	// row too large alone, then a batch of 2.6 KiB; halving the refused
	// batch alone would take 6.
	if n := s.tooLarge.Load(); n != 3 {
		t.Errorf("%d answers 413, want 3", n)
	}
}

// TestImportProgress: a progress bar is drawn on a terminal only.
func TestImportProgress(t *testing.T) {
	t.Parallel()
	s := newService(t)
	path := writeFile(t, "k.csv", "name,scopes,expiry,token\na,x:read,7d,"+legacy(1)+"\nb,x:read,7d,"+legacy(2)+"\n")
	r := s.run(t, cmdtest.Invocation{ErrTTY: true}, "keys", "import", path)
	r.Want(t, 0)
	if !strings.Contains(r.Stderr, "\r\033[K[") || !strings.Contains(r.Stderr, "%  imported ") || !strings.HasSuffix(r.Stderr, "\r\033[K") {
		t.Errorf("no progress bar on a terminal: %q", r.Stderr)
	}
	r = s.run(t, cmdtest.Invocation{}, "keys", "import", path)
	r.Want(t, 0)
	if r.Stderr != "" {
		t.Errorf("a progress bar off a terminal: %q", r.Stderr)
	}
}

// TestImportDryRun reads the file, needing no token, and sends nothing.
func TestImportDryRun(t *testing.T) {
	t.Parallel()
	s := newService(t)
	path := writeFile(t, "k.jsonl", fmt.Sprintf(`{"name":"a","token":%q}`+"\nnot json\n", legacy(1)))
	r := s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_TOKEN": ""}}, "keys", "import", "--dry-run", path)
	r.Want(t, cmdutil.ExitRefused)
	if r.Out != "Dry run: 1 row(s) to send, 1 bad, 0 done by an earlier run; nothing sent.\nline 2: invalid_row: not a JSON object\n" {
		t.Errorf("stdout: %q", r.Out)
	}
	if s.importCalls.Load() != 0 || len(s.keys(t)) != 1 {
		t.Error("a dry run sent rows")
	}
}

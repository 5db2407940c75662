package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/testenv"
)

// expectation is a walk-through line's trailing "# → 200".
var expectation = regexp.MustCompile(`^(.*?)\s+# → (\d{3})\s*$`)

// walkthroughScript returns the README's walk-through as a bash script
// that fails at the first line whose HTTP status is not the one its
// comment says: continued lines are joined, and each line ending in
// "# → NNN" is checked.
func walkthroughScript(t *testing.T) string {
	t.Helper()
	blocks := testenv.CodeBlocks(testenv.ReadmeSection(t, "walkthrough"), "sh")
	if len(blocks) != 1 {
		t.Fatalf("README.md's walk-through has %d sh blocks, want 1", len(blocks))
	}
	block := blocks[0]
	var lines []string
	checks := 0
	pending := ""
	for _, line := range strings.Split(block, "\n") {
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\")
			continue
		}
		line, pending = pending+line, ""
		if m := expectation.FindStringSubmatch(line); m != nil {
			line = "expect " + m[2] + " " + strings.TrimSpace(m[1])
			checks++
		}
		lines = append(lines, line)
	}
	if checks < 10 {
		t.Fatalf("the walk-through checks %d statuses; the test expected many more", checks)
	}
	return `set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
expect() { want=$1; shift; got=$("$@"); if [ "$got" != "$want" ]; then echo "walkthrough: got $got, want $want: $*" >&2; exit 1; fi; }
go() { if [ "$1 $2 $3" = "run ./cmd/keygate serve" ]; then shift 3; exec "$KEYGATE_SERVER_BIN" serve --addr "127.0.0.1:$PORT" "$@"; fi; command go "$@"; }
` + strings.ReplaceAll(strings.Join(lines, "\n"), "localhost:8080", "localhost:$PORT")
}

// TestREADMEWalkthrough runs the README's curl walk-through as written,
// against this command built from source, and checks every status it
// shows, then that no token but the bootstrap admin's (in its banner)
// reached the output.
func TestREADMEWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the walk-through needs %s: %v", tool, err)
		}
	}
	bin := testenv.Binary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", walkthroughScript(t))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KEYGATE_SERVER_BIN="+bin, "PORT="+testenv.FreePort(t))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second // a server left running must not hang the test
	if err := cmd.Run(); err != nil {
		t.Fatalf("walk-through failed: %v\n%s", err, out.String())
	}
	admin, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Token string `json:"token"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "grafana.json"))
	if err != nil || json.Unmarshal(data, &created) != nil || created.Token == "" {
		t.Fatalf("grafana.json: %v %s", err, data)
	}
	text := out.String()
	if n := strings.Count(text, strings.TrimSpace(string(admin))); n != 1 {
		t.Errorf("the admin token appears %d times in the output, want once (the banner)", n)
	}
	if strings.Contains(text, created.Token) {
		t.Error("a key's token reached the output")
	}
	for _, want := range []string{"grafana kg_", `["cluster:read","cluster:write","organization:read"]`, `msg=request method=GET path=/api/v1/organizations/acme status=200`} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q:\n%s", want, text)
		}
	}
}

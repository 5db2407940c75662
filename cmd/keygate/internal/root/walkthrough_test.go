package root

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/testenv"
)

// exitExpectation is a walk-through line's trailing "# → exit N".
var exitExpectation = regexp.MustCompile(`^(.*?)\s+# → exit (\d+)\s*$`)

// cliWalkthrough returns the README's command-line walk-through as a bash
// script that fails at the first command that fails, or whose exit code
// is not the one its "# → exit N" comment says.
func cliWalkthrough(t *testing.T) string {
	t.Helper()
	blocks := testenv.CodeBlocks(testenv.ReadmeSection(t, "cli-walkthrough"), "sh")
	if len(blocks) != 1 {
		t.Fatalf("README.md's command-line walk-through has %d sh blocks, want 1", len(blocks))
	}
	block := blocks[0]
	var lines []string
	checks := 0
	for _, line := range strings.Split(block, "\n") {
		if m := exitExpectation.FindStringSubmatch(line); m != nil {
			cmd := strings.TrimSpace(m[1])
			if c, _, ok := strings.Cut(cmd, " #"); ok {
				cmd = strings.TrimSpace(c) // a comment of its own, before the expectation
			}
			// The message quotes the line as written, unexpanded.
			line = "if " + cmd + "; then rc=0; else rc=$?; fi; if [ $rc != " + m[2] + " ]; then echo \"walkthrough: exit $rc, want " +
				m[2] + ":\" '" + strings.ReplaceAll(cmd, "'", `'\''`) + "' >&2; exit 1; fi"
			checks++
		}
		lines = append(lines, line)
	}
	if checks < 5 {
		t.Fatalf("the walk-through checks %d exit codes; the test expected more", checks)
	}
	// go run ./cmd/keygate runs the binary built from source; serve, run
	// in the background, replaces its subshell, so that kill %1 stops it.
	return `set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
go() {
	if [ "$1 $2" = "run ./cmd/keygate" ]; then
		shift 2
		if [ "$1" = serve ]; then shift; exec "$KEYGATE_BIN" serve --addr "127.0.0.1:$PORT" "$@"; fi
		"$KEYGATE_BIN" "$@"
		return
	fi
	command go "$@"
}
` + strings.ReplaceAll(strings.Join(lines, "\n"), "localhost:8080", "localhost:$PORT")
}

// TestREADMECLIWalkthrough runs the README's command-line walk-through as
// written, with the command built from source, checking every exit code
// it shows, what it prints, and that no token reaches its output.
func TestREADMECLIWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the walk-through needs %s: %v", tool, err)
		}
	}
	bin := testenv.Binary(t)
	port := testenv.FreePort(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", cliWalkthrough(t))
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYGATE_") {
			env = append(env, kv) // the walk-through's environment is its own
		}
	}
	cmd.Env = append(env, "KEYGATE_BIN="+bin, "PORT="+port, "KEYGATE_URL=http://127.0.0.1:"+port+"/v1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second // a server left running must not hang the test
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
		t.Fatalf("walk-through failed: %v\n%s\nserve.log:\n%s", err, out.String(), log)
	}
	text := out.String()
	admin, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{strings.TrimSpace(string(admin)), "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_9fQ2mZ7pLkR3xVb8nT5wY1uA"} {
		if strings.Contains(text, secret) {
			t.Errorf("a token (%.10s…) reached the output:\n%s", secret, text)
		}
	}
	// Any keygate token, such as the one created, captured in $TOKEN (hints
	// are a few characters and an ellipsis).
	if tok := regexp.MustCompile(`kg_[0-9A-Za-z]{12,}`).FindString(text); tok != "" {
		t.Errorf("a token (%.10s…) reached the output:\n%s", tok, text)
	}
	for _, want := range []string{
		"Key grafana created: id ", "shown this once",
		"valid: key grafana", "permissions: cluster:read organization:read",
		"NAME     WORKSPACE  OWNER  PERMISSIONS", "grafana  -          alice  cluster:read,organization:read",
		") revoked.", "not valid: revoked",
		"Imported 2, duplicates 0, failed 0.", "Imported 0, duplicates 2, failed 0.", "valid: key reports",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q:\n%s", want, text)
		}
	}
}

package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// buildServer builds the keygate command into a temporary directory and
// returns the binary's path.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keygate")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/keygate/keygate/cmd/keygate").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// expectation is a walk-through line's trailing "# → 200".
var expectation = regexp.MustCompile(`^(.*?)\s+# → (\d{3})\s*$`)

// walkthroughScript returns the README's walk-through as a bash script
// that fails at the first line whose HTTP status is not the one its
// comment says: continued lines are joined, and each line ending in
// "# → NNN" is checked.
func walkthroughScript(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- walkthrough:start -->")
	section, _, ok2 := strings.Cut(rest, "<!-- walkthrough:end -->")
	_, block, ok3 := strings.Cut(section, "```sh\n")
	block, _, ok4 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 || !ok4 {
		t.Fatal("README.md has no walk-through between its markers")
	}
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
	bin := buildServer(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", walkthroughScript(t))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KEYGATE_SERVER_BIN="+bin, "PORT="+freePort(t))
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

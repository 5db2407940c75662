package serve

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/testenv"
)

// systemdSection returns the README's systemd unit and environment file,
// between its systemd markers.
func systemdSection(t *testing.T) (unit, envFile string) {
	t.Helper()
	section := testenv.ReadmeSection(t, "systemd")
	ini, sh := testenv.CodeBlocks(section, "ini"), testenv.CodeBlocks(section, "sh")
	if len(ini) != 1 || len(sh) != 1 {
		t.Fatalf("README.md's systemd section has %d ini and %d sh blocks, want one of each", len(ini), len(sh))
	}
	return ini[0], sh[0]
}

// TestSystemdUnit checks the README's systemd unit as written: systemd
// accepts it (systemd-analyze verify, with ExecStart pointing at the
// built binary), and the binary, started as the unit starts it (its
// environment file, its working directory, state under /var/lib/keygate
// moved to a temporary directory), serves, writes the bootstrap token
// file and the metrics, and stops within TimeoutStopSec on SIGTERM.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("the systemd test needs systemd-analyze (Debian's systemd package): %v", err)
	}
	unit, envFile := systemdSection(t)
	bin := testenv.Binary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "var-lib-keygate")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}

	// systemd-analyze verify: the unit's syntax and its ExecStart.
	unit = strings.ReplaceAll(unit, "/usr/local/bin/keygate", bin)
	unitFile := filepath.Join(dir, "keygate.service")
	if err := os.WriteFile(unitFile, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unitFile).CombinedOutput()
	if err != nil || strings.Contains(string(out), "keygate.service:") {
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, unit)
	}

	// The unit's settings the test relies on.
	var execStart, workDir, stopTimeout string
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch k {
		case "ExecStart":
			execStart = v
		case "WorkingDirectory":
			workDir = v
		case "TimeoutStopSec":
			stopTimeout = v
		}
	}
	if workDir != "/var/lib/keygate" || execStart == "" || stopTimeout == "" {
		t.Fatalf("the unit's ExecStart %q, WorkingDirectory %q, TimeoutStopSec %q", execStart, workDir, stopTimeout)
	}
	stop, err := time.ParseDuration(stopTimeout)
	if err != nil {
		t.Fatal(err)
	}

	// Start it as systemd would: ExecStart, with the environment file.
	apiPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	env := []string{"PATH=" + os.Getenv("PATH")}
	sc = bufio.NewScanner(strings.NewReader(envFile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.ReplaceAll(line, "/var/lib/keygate", state)
		line = strings.ReplaceAll(line, "127.0.0.1:8080", "127.0.0.1:"+apiPort)
		line = strings.ReplaceAll(line, "127.0.0.1:9090", "127.0.0.1:"+metricsPort)
		env = append(env, line)
	}
	args := strings.Fields(execStart)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env = state, env
	var log testenv.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://127.0.0.1:" + apiPort
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s, _ := tryCall(base + "/readyz"); s == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unit's service did not become ready:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	admin := readToken(t, filepath.Join(state, "admin.token"))
	if m := mode(t, filepath.Join(state, "admin.token")); m != 0o600 {
		t.Errorf("admin.token mode %o, want 600", m)
	}
	if s, body := call(t, "GET", base+"/v1/keys", admin, ""); s != 200 {
		t.Errorf("GET /v1/keys with the bootstrap token = %d %s", s, body)
	}
	if _, err := os.Stat(filepath.Join(state, "keys.db.pepper")); err != nil {
		t.Errorf("no pepper generated beside the database: %v", err)
	}
	if s, body := call(t, "GET", "http://127.0.0.1:"+metricsPort+"/metrics", "", ""); s != 200 || !strings.Contains(body, "http_server_requests_total") {
		t.Errorf("GET /metrics on KEYGATE_METRICS_ADDR = %d", s)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit status 0\n%s", err, log.String())
		}
	case <-time.After(stop):
		t.Errorf("still running %v after SIGTERM (TimeoutStopSec)", stop)
	}
}

// tryCall returns the status and body of GET url, or 0 when it cannot
// connect.
func tryCall(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

package root

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// run runs keygate with args and returns its exit code and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ios := &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }}
	code := Main(context.Background(), ios, args)
	return code, out.String(), errOut.String()
}

// TestUsageErrors: cobra's own errors are usage errors (exit 2), each
// saying once where to look.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"nosuch"},
		{"--nosuch"},
		{"version", "--nosuch"},
		{"version", "extra"},
		{"serve", "--nosuch"},
		{"keys", "get"},
		{"keys", "get", "a", "b"},
		{"keys", "create", "--nosuch"},
		{"keys", "create", "--token", "kg_x"},
	} {
		code, _, stderr := run(t, args...)
		if code != cmdutil.ExitUsage {
			t.Errorf("keygate %q: exit %d, want %d; stderr %q", args, code, cmdutil.ExitUsage, stderr)
		}
		if n := strings.Count(stderr, "--help'"); n != 1 {
			t.Errorf("keygate %q: stderr %q says %d times where to look, want once", args, stderr, n)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "keygate ") {
		t.Errorf("keygate version: %d %q", code, out)
	}
}

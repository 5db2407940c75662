// Package cmdtest runs the keygate command in tests, as the command line
// would but in process: with an environment, standard input and streams
// of the test's, and a database of each engine for the commands that open
// one (keygate admin, pepper, migrate).
package cmdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/root"
)

// Invocation is how keygate is run: its environment, standard input, and
// which streams are terminals.
type Invocation struct {
	Env           map[string]string
	Stdin         string
	InTTY, ErrTTY bool
}

// Result is what a run of keygate did.
type Result struct {
	Code        int
	Out, Stderr string
}

// Run runs keygate with args and returns what it did.
func Run(t testing.TB, inv Invocation, args ...string) Result {
	t.Helper()
	var out, errOut bytes.Buffer
	ios := &cmdutil.IOStreams{In: strings.NewReader(inv.Stdin), Out: &out, ErrOut: &errOut,
		Getenv: func(k string) string { return inv.Env[k] }, InTTY: inv.InTTY, ErrTTY: inv.ErrTTY}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Result{Code: root.Main(ctx, ios, args), Out: out.String(), Stderr: errOut.String()}
}

// Want checks r's exit code and that stderr says each of says.
func (r Result) Want(t testing.TB, code int, says ...string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, code, r.Out, r.Stderr)
	}
	for _, s := range says {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.Stderr)
		}
	}
}

// Decode decodes r's stdout, one JSON value with no unknown field, into v.
func (r Result) Decode(t testing.TB, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero() // decoding into a used value would keep what the JSON leaves out
	dec := json.NewDecoder(strings.NewReader(r.Out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not the JSON expected: %v\n%s", err, r.Out)
	}
}

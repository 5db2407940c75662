package cmdutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestGroupAs(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	server := fs.String("server", "http://127.0.0.1:8080/v1", "")
	other := fs.String("token-file", "", "")
	GroupAs(fs, "API", "server", "KEYGATE_URL")
	Group(fs, "API", "token-file")
	env := map[string]string{"KEYGATE_URL": "https://keys.example/v1", "KEYGATE_SERVER": "wrong", "KEYGATE_TOKEN_FILE": "t"}
	if err := BindEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *server != "https://keys.example/v1" || *other != "t" {
		t.Errorf("--server %q, --token-file %q", *server, *other)
	}
	var help bytes.Buffer
	PrintGroupedFlags(&help, fs, "API")
	if !strings.Contains(help.String(), "($KEYGATE_URL)") || strings.Contains(help.String(), "KEYGATE_SERVER") {
		t.Errorf("help:\n%s", help.String())
	}
}

func TestOutput(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	var o Output
	AddOutputFlag(fs, &o)
	if o.JSON() {
		t.Error("the default is json")
	}
	if err := fs.Parse([]string{"-o", "json"}); err != nil || !o.JSON() {
		t.Errorf("-o json: %v, %q", err, o)
	}
	if err := fs.Parse([]string{"-o", "yaml"}); err == nil {
		t.Error("-o yaml accepted")
	}
	if err := BindEnv(fs, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	fs2 := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddOutputFlag(fs2, &o)
	err := BindEnv(fs2, func(k string) string { return map[string]string{"KEYGATE_OUTPUT": "xml"}[k] })
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "$KEYGATE_OUTPUT") {
		t.Errorf("KEYGATE_OUTPUT=xml: %v", err)
	}
}

func TestConfirm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		tty  bool
		want bool
		code int
	}{
		{"y\n", true, true, ExitOK},
		{"YES\n", true, true, ExitOK},
		{"n\n", true, false, ExitOK},
		{"", true, false, ExitOK},
		{"y\n", false, false, ExitUsage}, // a pipe never confirms
	} {
		var errOut bytes.Buffer
		ios := &IOStreams{In: strings.NewReader(tc.in), ErrOut: &errOut, InTTY: tc.tty}
		got, err := Confirm(ios, "Delete it?", "--yes")
		if got != tc.want || ExitCode(err) != tc.code {
			t.Errorf("Confirm(%q, tty %v) = %v, %v; want %v, exit %d", tc.in, tc.tty, got, err, tc.want, tc.code)
		}
		if tc.tty && !strings.Contains(errOut.String(), "Delete it? [y/N]") {
			t.Errorf("prompt %q", errOut.String())
		}
	}
}

func TestReadSecret(t *testing.T) {
	t.Parallel()
	ios := &IOStreams{In: strings.NewReader("  kg_secret  \nsecond line\n")}
	if s, err := ReadSecret(ios, "Token: "); s != "kg_secret" || err != nil {
		t.Errorf("ReadSecret = %q, %v", s, err)
	}
	for _, in := range []string{"", "\n  \n", strings.Repeat("x", 5000)} {
		_, err := ReadSecret(&IOStreams{In: strings.NewReader(in)}, "")
		if ExitCode(err) != ExitUsage || strings.Contains(err.Error(), "xxx") {
			t.Errorf("ReadSecret(%.10q) = %v, want a usage error", in, err)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSecretFile(path, "kg_secret\n"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if s, err := ReadSecretFile(path); s != "kg_secret" || err != nil {
		t.Errorf("ReadSecretFile = %q, %v", s, err)
	}
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(path); err == nil {
		t.Error("an empty token file is accepted")
	}
	if _, err := ReadSecretFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"grafana":                   "grafana",
		"ünïcödé ✓ 日本":              "ünïcödé ✓ 日本",
		"red\x1b[31mtext":           `red\x1b[31mtext`,
		"two\nlines\tand a tab":     `two\nlines\tand a tab`,
		"bidi \u202egnp.exe":        `bidi \u202egnp.exe`,
		"c1 \u009b2J":               `c1 \x9b2J`,
		"bad \xff utf8":             `bad \ufffd utf8`,
		"del\x7f":                   `del\x7f`,
		"title \x1b]0;pwned\x07end": `title \x1b]0;pwned\x07end`,
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/pflag"
)

// Output is how a command prints its result, the -o flag: a table (or a
// few lines) for people, or one JSON value for scripts. Every command
// chooses between the two in one place, by [Output.JSON].
type Output string

// The values of -o.
const (
	OutputTable Output = "table"
	OutputJSON  Output = "json"
)

// String implements pflag.Value.
func (o *Output) String() string { return string(*o) }

// Set implements pflag.Value: "table" or "json".
func (o *Output) Set(s string) error {
	switch Output(s) {
	case OutputTable, OutputJSON:
		*o = Output(s)
		return nil
	}
	return fmt.Errorf("want table or json, not %q", s)
}

// Type implements pflag.Value.
func (o *Output) Type() string { return "format" }

// JSON reports whether the result is printed as JSON.
func (o Output) JSON() bool { return o == OutputJSON }

// AddOutputFlag adds -o/--output to fs, filed under "Output" and reading
// $KEYGATE_OUTPUT.
func AddOutputFlag(fs *pflag.FlagSet, o *Output) {
	*o = OutputTable
	fs.VarP(o, "output", "o", "how to print the result: table (for people) or json (one JSON value, for scripts)")
	Group(fs, "Output", "output")
}

// PrintJSON writes v to w as indented JSON and a newline, with <, > and &
// as they are.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// NewTable returns a writer aligning tab-separated columns; Flush it at
// the end.
func NewTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// Clean returns s fit for a terminal: control and format characters
// (escape sequences, tabs and newlines that would break a table, bidi
// overrides) written as Go escapes, such as \x1b or \u202e. Text from the
// API or the database goes through it before a table prints it, so that
// a hostile or broken server cannot drive the terminal.
func Clean(s string) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case unsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unsafeRune reports whether r is a control or format character, or stands
// for invalid UTF-8.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

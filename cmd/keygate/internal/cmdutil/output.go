package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

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

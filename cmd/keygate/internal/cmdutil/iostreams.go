package cmdutil

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the streams a command reads and writes, and the
// environment it reads: the real ones in main, buffers in tests.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// Getenv reads an environment variable.
	Getenv func(string) string
	// OutTTY and ErrTTY say whether Out and ErrOut are terminals (a
	// table is sized and a progress bar drawn only for people).
	OutTTY, ErrTTY bool
	// InTTY says whether In is a terminal: a command may then ask for a
	// confirmation, or read a secret without echoing it.
	InTTY bool
}

// System returns the process's streams and environment.
func System() *IOStreams {
	return &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		Getenv: os.Getenv,
		OutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		InTTY:  term.IsTerminal(int(os.Stdin.Fd())),
	}
}

package cmdutil

import (
	"errors"
	"fmt"
)

// Exit codes of the keygate command, for scripts to branch on.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitRefused: the request was understood and refused (a key not
	// found, a permission lacking, an invalid field, a conflict), or a
	// check failed (a token that does not verify, a refused start-up).
	ExitRefused = 1
	// ExitUsage: the command line is wrong (an unknown flag, a missing
	// argument, a malformed value); nothing was done.
	ExitUsage = 2
	// ExitUnavailable: the token service, the database or Redis could not
	// be reached or failed; trying again later may work.
	ExitUnavailable = 3
)

// ExitError is an error with the exit code the command ends with.
type ExitError struct {
	Code int
	Err  error
}

// Error returns the underlying error's message.
func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ExitError) Unwrap() error { return e.Err }

// Usagef returns an error that ends the command with [ExitUsage].
func Usagef(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Refused wraps err so that the command ends with [ExitRefused].
func Refused(err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: ExitRefused, Err: err}
}

// Unavailable wraps err so that the command ends with [ExitUnavailable].
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: ExitUnavailable, Err: err}
}

// ErrSilent ends a command with [ExitRefused] without printing anything
// more: the command already said why.
var ErrSilent = errors.New("keygate: (already reported)")

// ExitCode returns the exit code for err: its [ExitError]'s code, 0 for
// nil, [ExitRefused] otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if e, ok := errors.AsType[*ExitError](err); ok {
		return e.Code
	}
	return ExitRefused
}

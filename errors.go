package keygate

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by the [Manager]. They are wrapped with context and
// checked with [errors.Is]; request validation errors wrap both
// [ErrInvalidRequest] and the precise reason.
var (
	// ErrMalformed means the token is not a keygate token at all: bad
	// syntax, a wrong prefix, or a failed checksum. No storage was consulted.
	ErrMalformed = errors.New("keygate: malformed token")
	// ErrInvalid means the token is well formed but matches no key, or a key
	// whose role or scopes can no longer be resolved (fail closed).
	ErrInvalid = errors.New("keygate: invalid token")
	// ErrExpired means the key's expiry has passed.
	ErrExpired = errors.New("keygate: key expired")
	// ErrRevoked means the key was revoked.
	ErrRevoked = errors.New("keygate: key revoked")
	// ErrDisabled means the key is disabled: a reversible stop, lifted by
	// Manager.Enable.
	ErrDisabled = errors.New("keygate: key disabled")
	// ErrUsageExhausted means a usage-limited key has no uses left.
	ErrUsageExhausted = errors.New("keygate: key usage limit exhausted")
	// ErrUnavailable means the store could not be reached or failed. The
	// request must be refused (fail closed); the store's error is wrapped too.
	ErrUnavailable = errors.New("keygate: key store unavailable")

	// ErrForbidden means the key or principal lacks a permission, or would
	// create or widen a key beyond what it holds itself.
	ErrForbidden = errors.New("keygate: permission denied")
	// ErrNotFound means no key has the given id.
	ErrNotFound = errors.New("keygate: key not found")
	// ErrConflict means the key changed since the version the caller gave.
	ErrConflict = errors.New("keygate: key was modified concurrently")

	// ErrInvalidRequest is wrapped by every validation error below, so a
	// caller can map them all to a client error at once.
	ErrInvalidRequest = errors.New("keygate: invalid request")
	// ErrNameRequired means a key was given no name.
	ErrNameRequired = errors.New("keygate: name is required")
	// ErrDuplicateName means the name is already used in the workspace.
	ErrDuplicateName = errors.New("keygate: name already used in this workspace")
	// ErrInvalidExpiry means the expiry is missing, in the past, or unknown.
	ErrInvalidExpiry = errors.New("keygate: invalid expiry")
	// ErrWorkspaceRequired means the role needs a workspace and none was given.
	ErrWorkspaceRequired = errors.New("keygate: role requires a workspace")
	// ErrUnknownRole means the role is not in the registry.
	ErrUnknownRole = errors.New("keygate: unknown role")
	// ErrInvalidScope means a scope is not a valid permission.
	ErrInvalidScope = errors.New("keygate: invalid scope")
	// ErrNoPermissions means a key would be created with neither a role nor
	// scopes.
	ErrNoPermissions = errors.New("keygate: a role or at least one scope is required")
	// ErrInvalidField means a field is too long, or otherwise out of range
	// (metadata size, limits, CIDRs).
	ErrInvalidField = errors.New("keygate: invalid field")
)

// errorf is fmt.Errorf for the package's errors: the message says
// "keygate: " once, at its start, however many of the package's own
// errors it wraps ("keygate: create key: invalid request: name is
// required", not "keygate: create key: keygate: invalid request: keygate:
// name is required"), while errors.Is and errors.As see every wrapped
// error as they do through fmt.Errorf.
func errorf(format string, args ...any) error {
	return &prefixedError{fmt.Errorf(format, args...)}
}

// prefixedError is an error of errorf.
type prefixedError struct{ err error }

// Error returns the wrapped error's message with "keygate: " kept only
// where it first appears.
func (e *prefixedError) Error() string {
	const prefix = "keygate: "
	msg := e.err.Error()
	first := strings.Index(msg, prefix)
	if first < 0 {
		return msg
	}
	head, rest := msg[:first+len(prefix)], msg[first+len(prefix):]
	return head + strings.ReplaceAll(rest, prefix, "")
}

// Unwrap returns the error fmt.Errorf made.
func (e *prefixedError) Unwrap() error { return e.err }

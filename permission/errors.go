package permission

import "errors"

// Sentinel errors returned by this package. They are always wrapped with
// context (the offending input, quoted, and the reason); check them with
// [errors.Is].
var (
	// ErrInvalid means a string or a Permission value does not follow the
	// permission grammar. It is returned by [Parse], [ParseSet] and
	// [Permission.UnmarshalText], and wrapped by [NewRegistry] together with
	// [ErrInvalidRole] when a role holds an invalid permission.
	ErrInvalid = errors.New("permission: invalid permission")

	// ErrUnknownRole means a [Registry] holds no role of the given name.
	ErrUnknownRole = errors.New("permission: unknown role")

	// ErrInvalidRole means [NewRegistry] or [NewDefaultRegistry] was given a
	// role with an empty or invalid name, a name already used by another
	// role (names are case-insensitive), an invalid permission, or
	// contradictory flags.
	ErrInvalidRole = errors.New("permission: invalid role")
)

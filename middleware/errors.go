package middleware

import (
	"errors"
	"fmt"
)

// Errors of this package. Those about a request reach a [Problem] (in its
// Err field, never in the response body) and [ErrorFromContext]; check them
// with [errors.Is]. Errors from the [Verifier] are passed on as they are.
var (
	// ErrNoCredential means the request carries no credential that any
	// [Extractor] recognises. It becomes a 401 with code "missing".
	ErrNoCredential = errors.New("middleware: no API key in request")
	// ErrMalformedCredential means a credential is present but unusable:
	// an empty value, a character outside the token68 set (in
	// Authorization) or outside visible ASCII (in a header), a repeated
	// header field, or a scheme with nothing after it. It becomes a 401
	// with code "malformed".
	ErrMalformedCredential = errors.New("middleware: malformed credential")
	// ErrAmbiguousCredential means two extractors found two different
	// credentials in one request. It wraps [ErrMalformedCredential] and
	// becomes a 401 with code "malformed".
	ErrAmbiguousCredential = fmt.Errorf("%w: two different credentials", ErrMalformedCredential)
	// ErrInvalidConfig means [New] or [Middleware.Require] was given an
	// unusable configuration: no Verifier, a nil Extractor, an invalid
	// trusted proxy prefix, or a missing or invalid permission.
	ErrInvalidConfig = errors.New("middleware: invalid configuration")
)

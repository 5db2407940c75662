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
	// ErrInvalidConfig means [New], [Middleware.Require] or
	// [Middleware.Metered] was given an unusable configuration: no
	// Verifier, a nil Extractor, an invalid trusted proxy prefix, a
	// missing or invalid permission, or metering with a nil MeterFunc or a
	// Verifier that is not a [MeteredVerifier].
	ErrInvalidConfig = errors.New("middleware: invalid configuration")
	// ErrUnmetered means a metered route ([Middleware.Metered], or a
	// Middleware with [Config.Meter]) got a request that was verified
	// without its meter: by an unmetered Middleware's Verify in front of the
	// router, by another meter, or carrying a key from [NewContext]. The
	// request is refused 500 internal, never let through unmetered: mount
	// the metered middleware instead of (or before) the unmetered
	// verification of that route.
	ErrUnmetered = errors.New("middleware: request verified without its route's meter; mount the metered middleware instead of Verify in front of the route")
)

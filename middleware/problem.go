package middleware

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// The values of [Problem.Code]: why a request was refused. They are part of
// the API: clients may switch on them.
const (
	// CodeMissing (401): the request carries no API key.
	CodeMissing = "missing"
	// CodeMalformed (401): a credential is present but is not a well-formed
	// key of this service, or two different ones were sent.
	CodeMalformed = "malformed"
	// CodeInvalid (401): the key is well formed but unknown.
	CodeInvalid = "invalid"
	// CodeExpired (401): the key has expired.
	CodeExpired = "expired"
	// CodeRevoked (401): the key was revoked.
	CodeRevoked = "revoked"
	// CodeDisabled (401): the key is disabled, until it is enabled again.
	CodeDisabled = "disabled"
	// CodeInsufficientPermission (403): the key lacks a permission the
	// route requires; [Problem.Permissions] names them.
	CodeInsufficientPermission = "insufficient_permission"
	// CodeAddressDenied (403): the key is not accepted from the client's
	// address (its IP allow-list).
	CodeAddressDenied = "address_denied"
	// CodeRateLimited (429): the key sent too many requests; retry after
	// the Retry-After header.
	CodeRateLimited = "rate_limited"
	// CodeUsageExhausted (429): the key has used up its usage limit, or
	// its identity its credits; a metered request whose balance refills
	// has Retry-After until the refill.
	CodeUsageExhausted = "usage_exhausted"
	// CodeInvalidRequest (400): the request's metering is invalid, such as
	// a cost out of bounds (see [MeterFunc]); its key was not checked.
	CodeInvalidRequest = "invalid_request"
	// CodeTooManyFailures (429): the client's address sent too many bad
	// keys recently (see [Config.FailureLimit]); retry after the
	// Retry-After header.
	CodeTooManyFailures = "too_many_failures"
	// CodeUnavailable (503): keys cannot be checked right now; the request
	// was refused (fail closed).
	CodeUnavailable = "unavailable"
	// CodeInternal (500): verification failed for an unexpected reason;
	// the request was refused.
	CodeInternal = "internal"
)

// ProblemContentType is the media type of the default error bodies
// (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem describes a refused request as an RFC 9457 problem detail. The
// default [Config.ErrorHandler], [WriteProblem], writes it as JSON; a custom
// handler may write something else from it.
//
// Type, Title, Status, Detail, Code and Permissions are fixed texts chosen
// by this package and safe to show to a client. Err is the underlying
// error, for logging: it never holds a token, but it may hold internal
// details (a database error), so it is never serialised.
type Problem struct {
	// Type is "about:blank": the status code and Code say what happened.
	Type string `json:"type"`
	// Title is the HTTP status text, such as "Unauthorized".
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail is a sentence for people.
	Detail string `json:"detail,omitempty"`
	// Code is one of the Code constants, for programs.
	Code string `json:"code"`
	// Permissions, for CodeInsufficientPermission, are the permissions
	// the route requires (all of them), in canonical form. For package
	// server's "forbidden" with Reason "permission", it is the one
	// permission the caller lacks.
	Permissions []string `json:"permissions,omitempty"`
	// Reason, Workspace, LatestExpiry and Limit say why package server
	// refused a caller with "forbidden": Reason is a keygate.DenyReason
	// ("permission", "workspace", "super_admin", "lifetime", "limit",
	// "unresolved", "inactive", "old_secret"); Workspace the workspace of the refused action;
	// LatestExpiry, for "lifetime", the latest expiry the caller may give a
	// key; Limit, for "limit", the limit ("rate", "uses",
	// "allowed_cidrs"). Empty otherwise.
	Reason       string    `json:"reason,omitempty"`
	Workspace    string    `json:"workspace,omitempty"`
	LatestExpiry time.Time `json:"latest_expiry,omitzero"`
	Limit        string    `json:"limit,omitempty"`
	// RateLimit, for CodeRateLimited, names the rate limit that refused
	// the request when it is not the key's own single limit ("default"):
	// one of the key's named limits, or of its identity's, shared by the
	// identity's keys; RateLimitScope says which, "key" or "identity".
	// Empty otherwise.
	RateLimit      string `json:"rate_limit,omitempty"`
	RateLimitScope string `json:"rate_limit_scope,omitempty"`
	// RetryAfter is when the client may retry (429, 503); zero if unknown.
	// It is also sent as the Retry-After header, in whole seconds.
	RetryAfter time.Duration `json:"-"`
	// Err is the error behind the problem, nil for a missing permission.
	Err error `json:"-"`
}

// WriteProblem writes p as an application/problem+json response with
// status p.Status. It is the default [Config.ErrorHandler]; a custom
// handler may call it after logging or changing p. It is safe for
// concurrent use.
func WriteProblem(w http.ResponseWriter, _ *http.Request, p *Problem) {
	body, err := json.Marshal(p)
	if err != nil {
		// Problem holds only strings, ints and a string slice: this cannot
		// happen, but never write a half response.
		body = []byte(`{"type":"about:blank","status":500}`)
	}
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// reason is how one kind of failure is answered.
type reason struct {
	code   string
	status int
	detail string
	// challenge is the RFC 6750 error attribute of the 401 challenge ("" for
	// none), or -1 for a response that is not a 401.
	challenge challengeKind
}

type challengeKind int8

const (
	noChallenge challengeKind = iota - 1
	challengeBare
	challengeInvalidRequest
	challengeInvalidToken
	numChallenges = 3
)

// classify maps a verification error to its answer. Store failures are
// tested first, so that a failure never passes for a client error.
func classify(err error) reason {
	switch {
	case errors.Is(err, keygate.ErrUnavailable):
		return reason{CodeUnavailable, http.StatusServiceUnavailable, "API keys cannot be checked right now; try again later.", noChallenge}
	case errors.Is(err, keygate.ErrInvalidRequest):
		return reason{CodeInvalidRequest, http.StatusBadRequest, "The request's cost cannot be metered.", noChallenge}
	case errors.Is(err, ErrTooManyFailures):
		return reason{CodeTooManyFailures, http.StatusTooManyRequests, "Too many requests with bad API keys from this address; retry later.", noChallenge}
	case errors.Is(err, ErrNoCredential):
		return reason{CodeMissing, http.StatusUnauthorized, "This request needs an API key.", challengeBare}
	case errors.Is(err, ErrMalformedCredential), errors.Is(err, keygate.ErrMalformed):
		return reason{CodeMalformed, http.StatusUnauthorized, "The API key is malformed.", challengeInvalidRequest}
	case errors.Is(err, keygate.ErrInvalid):
		return reason{CodeInvalid, http.StatusUnauthorized, "The API key is not valid.", challengeInvalidToken}
	case errors.Is(err, keygate.ErrExpired):
		return reason{CodeExpired, http.StatusUnauthorized, "The API key has expired.", challengeInvalidToken}
	case errors.Is(err, keygate.ErrRevoked):
		return reason{CodeRevoked, http.StatusUnauthorized, "The API key has been revoked.", challengeInvalidToken}
	case errors.Is(err, keygate.ErrDisabled):
		return reason{CodeDisabled, http.StatusUnauthorized, "The API key is disabled.", challengeInvalidToken}
	case errors.Is(err, keygate.ErrAddressDenied):
		return reason{CodeAddressDenied, http.StatusForbidden, "The API key is not allowed from this address.", noChallenge}
	case errors.Is(err, keygate.ErrRateLimited):
		return reason{CodeRateLimited, http.StatusTooManyRequests, "Too many requests with this API key; retry later.", noChallenge}
	case errors.Is(err, keygate.ErrUsageExhausted):
		return reason{CodeUsageExhausted, http.StatusTooManyRequests, "The API key has reached its usage limit.", noChallenge}
	case errors.Is(err, keygate.ErrForbidden):
		return reason{CodeInsufficientPermission, http.StatusForbidden, "The API key lacks a permission this request needs.", noChallenge}
	}
	return reason{CodeInternal, http.StatusInternalServerError, "The API key could not be checked.", noChallenge}
}

// Code returns the code of the [Problem] that answers a verification
// that failed with err: [CodeMalformed] for an error matching
// keygate.ErrMalformed or [ErrMalformedCredential], [CodeInvalid] for
// keygate.ErrInvalid, and so on as documented at [Middleware];
// [CodeInsufficientPermission] for keygate.ErrForbidden, [CodeUnavailable]
// for keygate.ErrUnavailable, [CodeInvalidRequest] for
// keygate.ErrInvalidRequest, and [CodeInternal] for any other error.
// It lets a token service answer a remote verification with the codes the
// middleware would use.
func Code(err error) string {
	return classify(err).code
}

// retryAfter returns when a request refused with err may be retried, or 0:
// a *keygate.RateLimitError's RetryAfter, the throttle's wait, or what an
// error with a RetryAfter method (see [Verifier]) says.
func retryAfter(err error) time.Duration {
	var rl *keygate.RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter
	}
	var fe *failureError
	if errors.As(err, &fe) {
		return fe.wait
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

// seconds formats d as a Retry-After value: whole seconds, rounded up, at
// least 1.
func seconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	return strconv.FormatInt(max(s, 1), 10)
}

// challenges builds the WWW-Authenticate values of each challengeKind.
func challenges(schemes []string, realm string) [numChallenges][]string {
	var out [numChallenges][]string
	attrs := [numChallenges]string{"", `, error="invalid_request"`, `, error="invalid_token"`}
	for kind, attr := range attrs {
		for _, s := range schemes {
			out[kind] = append(out[kind], s+` realm="`+realm+`"`+attr)
		}
	}
	return out
}

// validRealm reports whether realm can be written inside a quoted-string
// without escapes.
func validRealm(realm string) bool {
	return !strings.ContainsFunc(realm, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r > 0x7e
	})
}

// validScheme reports whether s is an RFC 9110 token: letters, digits and
// "!#$%&'*+-.^_`|~".
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

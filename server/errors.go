package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
)

// Errors of this package, checked with [errors.Is].
var (
	// ErrInvalidConfig means [New] was given an unusable [Config]: no
	// Manager, no Middleware, or a negative MaxBodyBytes.
	ErrInvalidConfig = errors.New("server: invalid configuration")
	// ErrInvalidDuration means a JSON [Duration] is not a string that
	// time.ParseDuration reads. It is answered 400 invalid_field.
	ErrInvalidDuration = errors.New("server: invalid duration")
)

// The values of the "code" member of problem responses, in addition to
// those of package middleware (401 missing, malformed, invalid, expired,
// revoked; 403 address_denied; 429 rate_limited, usage_exhausted), which
// answer a caller whose own key fails. They are part of the API: clients may
// switch on them; [ErrorsFor] maps each to keygate's errors.
const (
	// CodeInvalidJSON (400): the body is not one JSON object of the
	// expected shape (syntax error, wrong type, unknown field, trailing
	// data, empty body).
	CodeInvalidJSON = "invalid_json"
	// CodeUnsupportedMediaType (415): the body is not application/json.
	CodeUnsupportedMediaType = "unsupported_media_type"
	// CodeBodyTooLarge (413): the body exceeds [Config.MaxBodyBytes].
	CodeBodyTooLarge = "body_too_large"
	// CodeRequestTimeout (408): the body did not arrive before the host's
	// http.Server read deadline (ReadTimeout); nothing was changed. Sending
	// the request again is safe.
	CodeRequestTimeout = "request_timeout"
	// CodeInvalidRequest (400): the request is invalid for a reason none
	// of the more precise codes below names.
	CodeInvalidRequest = "invalid_request"
	// CodeNameRequired (400): a key needs a name.
	CodeNameRequired = "name_required"
	// CodeDuplicateName (409): the name is already used in the workspace.
	CodeDuplicateName = "duplicate_name"
	// CodeInvalidExpiry (400): the expiry is missing, in the past or not in
	// a known form.
	CodeInvalidExpiry = "invalid_expiry"
	// CodeWorkspaceRequired (400): the role requires a workspace.
	CodeWorkspaceRequired = "workspace_required"
	// CodeUnknownRole (400): no role has that name.
	CodeUnknownRole = "unknown_role"
	// CodeInvalidScope (400): a scope is not a valid permission.
	CodeInvalidScope = "invalid_scope"
	// CodeNoPermissions (400): a key needs a role or at least one scope.
	CodeNoPermissions = "no_permissions"
	// CodeNotImportable (400 within an import's results): the token could
	// never verify on this server (keygate.ErrNotImportable).
	CodeNotImportable = "not_importable"
	// CodeRetired (409 within an import's results): the token is a
	// retired secret, of a key since regenerated or deleted, and is never
	// imported again (keygate.ErrRetired).
	CodeRetired = "retired"
	// CodeInvalidField (400): a field or query parameter is too long, out
	// of range or badly formed; the detail says which.
	CodeInvalidField = "invalid_field"
	// CodeForbidden (403): the caller may not do this to this key, lacking
	// apikey:view or apikey:manage in its workspace, or because the key
	// would hold more than the caller: permissions, lifetime or limits
	// (privilege escalation).
	CodeForbidden = "forbidden"
	// CodeNotFound (404): no key has that id (an id that is not a UUID
	// names no key).
	CodeNotFound = "not_found"
	// CodeIdentityNotFound (404): no identity has that id, or none the
	// caller may see (an id that is not a UUID names no identity).
	CodeIdentityNotFound = "identity_not_found"
	// CodeUnknownIdentity (400): a key's identity_id names no identity
	// the caller may manage.
	CodeUnknownIdentity = "unknown_identity"
	// CodeIdentityInUse (409): keys still belong to the identity to
	// delete; move them out of it or delete them first.
	CodeIdentityInUse = "identity_in_use"
	// CodeDuplicateExternalID (409): another identity of the workspace
	// has that external id.
	CodeDuplicateExternalID = "duplicate_external_id"
	// CodeNoRoute (404): no route has that path, often a wrong base URL.
	// It stands for no error of keygate: not keygate.ErrNotFound.
	CodeNoRoute = "no_route"
	// CodeMethodNotAllowed (405): the path exists, but not for this method;
	// the Allow header lists those that do.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeCrossOrigin (403): a browser sent an unsafe request (POST, PATCH,
	// DELETE) from another origin, refused against cross-site request
	// forgery whatever its credentials.
	CodeCrossOrigin = "cross_origin"
	// CodeConflict (409): the key's version is not the one given in
	// If-Match or "version".
	CodeConflict = "conflict"
	// CodeRevoked (409 here): a revoked key cannot be regenerated. It is
	// also middleware's 401 code for a caller whose own key is revoked.
	CodeRevoked = middleware.CodeRevoked
	// CodeUnauthenticated (401): [Config.Principal] found no principal in
	// a request whose key, if any, is valid.
	CodeUnauthenticated = "unauthenticated"
	// CodeUnsupported (501): the key store lacks what the request needs,
	// such as the exercised permissions of a least-privilege report.
	CodeUnsupported = "unsupported"
	// CodeUnavailable (503): the key store failed; nothing was done.
	CodeUnavailable = middleware.CodeUnavailable
	// CodeInternal (500): an unexpected failure; its details are not sent.
	CodeInternal = middleware.CodeInternal
)

// answer is how the errors matching err are answered, and what code stands
// for: err and, when set, also.
type answer struct {
	err    error
	also   error
	status int
	code   string
	detail string
}

// answers is the table of Manager errors, in the order they are tested:
// store failures first, so a failure never passes for a client error; the
// precise validation errors before ErrInvalidRequest, which they all wrap.
func answers() []answer {
	inv := keygate.ErrInvalidRequest
	return []answer{
		{keygate.ErrUnavailable, nil, http.StatusServiceUnavailable, CodeUnavailable, "The key store is unavailable; nothing was changed. Try again later."},
		{keygate.ErrUnsupported, nil, http.StatusNotImplemented, CodeUnsupported, "The key store does not support this request."},
		{keygate.ErrForbidden, nil, http.StatusForbidden, CodeForbidden, "The caller may not do this to this key: it lacks the permission to view or manage keys in the key's workspace, or the key would hold more than the caller (permissions, lifetime or limits)."},
		{keygate.ErrIdentityNotFound, keygate.ErrNotFound, http.StatusNotFound, CodeIdentityNotFound, identityNotFoundDetail},
		{keygate.ErrNotFound, nil, http.StatusNotFound, CodeNotFound, "No key has this id."},
		{keygate.ErrIdentityInUse, nil, http.StatusConflict, CodeIdentityInUse, "Keys still belong to this identity; move them out of it or delete them first."},
		{keygate.ErrConflict, nil, http.StatusConflict, CodeConflict, "The key has changed since the version given; read it again."},
		{keygate.ErrRevoked, nil, http.StatusConflict, CodeRevoked, "The key is revoked; a revoked key cannot be regenerated."},
		{keygate.ErrDuplicateName, inv, http.StatusConflict, CodeDuplicateName, "A key with this name already exists in the workspace."},
		{keygate.ErrDuplicateExternalID, inv, http.StatusConflict, CodeDuplicateExternalID, "An identity with this external id already exists in the workspace."},
		{keygate.ErrUnknownIdentity, inv, http.StatusBadRequest, CodeUnknownIdentity, "No identity the caller may manage has this id."},
		{keygate.ErrNameRequired, inv, http.StatusBadRequest, CodeNameRequired, "A key needs a name."},
		{keygate.ErrInvalidExpiry, inv, http.StatusBadRequest, CodeInvalidExpiry, `The expiry must be "never", a number of days such as "30d", a date such as "2026-12-31" or an RFC 3339 time, in the future.`},
		{keygate.ErrWorkspaceRequired, inv, http.StatusBadRequest, CodeWorkspaceRequired, "The role requires a workspace."},
		{keygate.ErrUnknownRole, inv, http.StatusBadRequest, CodeUnknownRole, "No role has this name."},
		{keygate.ErrInvalidScope, inv, http.StatusBadRequest, CodeInvalidScope, `A scope is not a permission of the form resource[/instance]:action, such as "billing:read".`},
		{keygate.ErrNoPermissions, inv, http.StatusBadRequest, CodeNoPermissions, "A key needs a role or at least one scope."},
		{keygate.ErrNotImportable, inv, http.StatusBadRequest, CodeNotImportable, "The token could never verify on this server: it is not of its format, nor of one it accepts from another system, or it is a SHA-256 the server does not look up."},
		{keygate.ErrRetired, inv, http.StatusConflict, CodeRetired, "The token is a retired secret, of a key since regenerated, or revoked and deleted: it is never imported again."},
		{keygate.ErrInvalidField, inv, http.StatusBadRequest, CodeInvalidField, "A field is too long or out of range."},
		{inv, nil, http.StatusBadRequest, CodeInvalidRequest, "The request is invalid."},
	}
}

// ErrorsFor returns the errors a problem code stands for, so that a client
// can test a remote failure with errors.Is as it would a local one: for
// example keygate.ErrForbidden for "forbidden" and "insufficient_permission",
// and keygate.ErrInvalidRequest with keygate.ErrUnknownRole for
// "unknown_role". It covers the codes of this package and of package
// middleware, and returns nil for codes that stand for no error of keygate
// or middleware (no_route, method_not_allowed, cross_origin,
// request_timeout, unauthenticated, internal, unknown codes). It is safe
// for concurrent use.
func ErrorsFor(code string) []error {
	for _, a := range answers() {
		if a.code == code {
			if a.also != nil {
				return []error{a.err, a.also}
			}
			return []error{a.err}
		}
	}
	switch code {
	case CodeInvalidJSON, CodeUnsupportedMediaType, CodeBodyTooLarge:
		return []error{keygate.ErrInvalidRequest}
	case middleware.CodeMissing:
		return []error{middleware.ErrNoCredential}
	case middleware.CodeMalformed:
		return []error{keygate.ErrMalformed}
	case middleware.CodeInvalid:
		return []error{keygate.ErrInvalid}
	case middleware.CodeExpired:
		return []error{keygate.ErrExpired}
	case middleware.CodeDisabled:
		return []error{keygate.ErrDisabled}
	case middleware.CodeInsufficientPermission:
		return []error{keygate.ErrForbidden}
	case middleware.CodeAddressDenied:
		return []error{keygate.ErrAddressDenied}
	case middleware.CodeRateLimited:
		return []error{keygate.ErrRateLimited}
	case middleware.CodeUsageExhausted:
		return []error{keygate.ErrUsageExhausted}
	case middleware.CodeTooManyFailures:
		return []error{middleware.ErrTooManyFailures}
	}
	return nil
}

// requestError is a refusal decided by the server itself (body, query,
// headers), with a detail safe to send: it never quotes the client's input.
type requestError struct {
	status int
	code   string
	detail string
}

func (e *requestError) Error() string { return "server: " + e.code + ": " + e.detail }

// invalidJSON returns a 400 invalid_json refusal.
func invalidJSON(detail string) error {
	return &requestError{http.StatusBadRequest, CodeInvalidJSON, detail}
}

// invalidField returns a 400 invalid_field refusal.
func invalidField(detail string) error {
	return &requestError{http.StatusBadRequest, CodeInvalidField, detail}
}

// identityNotFoundDetail is the detail of identity_not_found.
const identityNotFoundDetail = "No identity has this id."

// notFound is the refusal of an id that is not a UUID.
func notFound() error {
	return &requestError{http.StatusNotFound, CodeNotFound, "No key has this id."}
}

// problemFor returns the problem answering err. Its texts are fixed, never
// err's text (which may hold internal details or the client's input),
// except the reason of an invalid field, which keygate writes from
// constants only.
func problemFor(err error) *middleware.Problem {
	p := &middleware.Problem{Type: "about:blank", Err: err}
	var re *requestError
	if errors.As(err, &re) {
		p.Status, p.Code, p.Detail = re.status, re.code, re.detail
	} else {
		p.Status, p.Code, p.Detail = http.StatusInternalServerError, CodeInternal, "The request failed unexpectedly."
		if errors.Is(err, ErrInvalidDuration) {
			p.Status, p.Code, p.Detail = http.StatusBadRequest, CodeInvalidField, `A duration must be a string such as "90s" or "1h".`
		}
		for _, a := range answers() {
			if errors.Is(err, a.err) {
				p.Status, p.Code, p.Detail = a.status, a.code, a.detail
				if a.err == keygate.ErrInvalidField {
					p.Detail = fieldReason(err, p.Detail)
				}
				var denied *keygate.DeniedError
				if a.err == keygate.ErrForbidden && errors.As(err, &denied) {
					explainDenial(p, denied)
				}
				break
			}
		}
	}
	p.Title = http.StatusText(p.Status)
	return p
}

// explainDenial fills p with the bound that refused the caller: the
// permission it lacks, the workspace, the latest expiry it may give or the
// limit. These name only what the caller asked for and holds itself.
func explainDenial(p *middleware.Problem, d *keygate.DeniedError) {
	p.Reason, p.Workspace = string(d.Reason), d.Workspace
	in := ""
	if d.Workspace != "" {
		in = fmt.Sprintf(" in workspace %q", d.Workspace)
	}
	switch d.Reason {
	case keygate.DeniedPermission:
		p.Permissions = []string{d.Permission}
		p.Detail = fmt.Sprintf("The caller lacks the permission %s%s.", d.Permission, in)
	case keygate.DeniedWorkspace:
		p.Detail = "The caller is bound to another workspace and may not act" + in + "."
		if d.Workspace == "" {
			p.Detail = "The caller is bound to a workspace and may not act on keys outside it."
		}
	case keygate.DeniedSuperAdmin:
		p.Detail = "Only a super admin may create, change or hold a super-admin key."
	case keygate.DeniedLifetime:
		p.LatestExpiry = d.LatestExpiry
		p.Detail = fmt.Sprintf("The key would outlive the caller: the latest expiry the caller may give is %s.", d.LatestExpiry.UTC().Format(time.RFC3339))
	case keygate.DeniedLimit:
		p.Limit = d.Limit
		p.Detail = fmt.Sprintf("The key or identity would have a looser %s limit than the caller's own.", strings.ReplaceAll(d.Limit, "_", " "))
	case keygate.DeniedUnresolved:
		p.Detail = "The key's role or a scope no longer resolves; only a super admin may change it."
	case keygate.DeniedInactive:
		p.Detail = "The caller's key was revoked, deleted, regenerated or has expired since it was verified."
	case keygate.DeniedOldSecret:
		p.Detail = "The caller used its key's previous secret, which during a grace period may view keys but change none; use the new secret."
	}
}

// fieldReason returns what keygate wrote after ErrInvalidField in err,
// such as "name longer than 128 bytes" (always from constants), or def.
func fieldReason(err error, def string) string {
	// The keygate error names the package once, at its start, so the
	// field error's own text is found without its "keygate: ".
	_, reason, ok := strings.Cut(err.Error(), strings.TrimPrefix(keygate.ErrInvalidField.Error(), "keygate: ")+": ")
	if !ok || reason == "" {
		return def
	}
	return strings.ToUpper(reason[:1]) + reason[1:] + "."
}

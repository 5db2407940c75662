package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
)

// errRevokedKey refuses to edit a revoked key: the console keeps its
// record as it was, for audit.
var errRevokedKey = errors.New("console: the key is revoked")

// formError is a mistake in a submitted form, found before the Manager is
// asked: a field and what is wrong with it.
type formError struct {
	Field   string
	Message string
}

func (e *formError) Error() string { return "console: " + e.Field + ": " + e.Message }

// describe returns the status answering err and what went wrong in plain
// words, for the person q is. A refusal by the Manager names the bound
// that failed, from its [keygate.DeniedError].
func (c *Console) describe(q *request, err error) (int, string) {
	var fe *formError
	var denied *keygate.DeniedError
	switch {
	case errors.As(err, &fe):
		return http.StatusBadRequest, fe.Message
	case errors.Is(err, errSessions):
		return http.StatusServiceUnavailable, "The session store is unavailable, so nothing was changed. Try again in a moment."
	case errors.Is(err, keygate.ErrUnavailable):
		return http.StatusServiceUnavailable, "The key store is unavailable, so nothing was changed. Try again in a moment."
	case errors.As(err, &denied):
		return http.StatusForbidden, refusal(q, denied)
	case errors.Is(err, keygate.ErrUnsupported):
		return http.StatusNotImplemented, "The key store keeps no identities, so there are none to manage here."
	case errors.Is(err, keygate.ErrIdentityNotFound):
		return http.StatusNotFound, "No identity has this id, or you may not see it. It may have been deleted."
	case errors.Is(err, keygate.ErrIdentityInUse):
		return http.StatusConflict, "Tokens still belong to this identity: move them out of it (edit each token) or delete them first. Nothing was deleted."
	case errors.Is(err, keygate.ErrDuplicateExternalID):
		return http.StatusConflict, "An identity with this external id already exists in this workspace. Choose another."
	case errors.Is(err, keygate.ErrUnknownIdentity):
		return http.StatusBadRequest, "There is no such identity, or you may not manage it: choose another."
	case errors.Is(err, keygate.ErrNotFound):
		return http.StatusNotFound, "No token has this id, or you may not see it. It may have been deleted."
	case errors.Is(err, keygate.ErrConflict) && q != nil && q.subject == "identity":
		return http.StatusConflict, "Someone changed this identity since you opened the page. Review it and save again."
	case errors.Is(err, keygate.ErrConflict):
		return http.StatusConflict, "Someone changed this token since you opened the page. Review it and save again."
	case errors.Is(err, errRevokedKey):
		return http.StatusConflict, "This token is revoked: its record stays as it was, for audit. Delete it, or add a new token."
	case errors.Is(err, keygate.ErrRevoked):
		return http.StatusConflict, "This token is revoked, and a revoked token cannot be regenerated. Add a new token instead."
	case errors.Is(err, keygate.ErrDuplicateName):
		return http.StatusConflict, "A token with this name already exists in this workspace. Choose another name."
	case errors.Is(err, keygate.ErrNameRequired):
		return http.StatusBadRequest, "Give the token a name."
	case errors.Is(err, keygate.ErrInvalidExpiry):
		return http.StatusBadRequest, "Choose an expiry in the future."
	case errors.Is(err, keygate.ErrWorkspaceRequired):
		return http.StatusBadRequest, "This role works inside one workspace: enter a workspace."
	case errors.Is(err, keygate.ErrUnknownRole):
		return http.StatusBadRequest, "There is no such role."
	case errors.Is(err, keygate.ErrInvalidScope):
		return http.StatusBadRequest, "A permission is not valid."
	case errors.Is(err, keygate.ErrNoPermissions):
		return http.StatusBadRequest, "Give the token a role, or switch on at least one permission."
	case errors.Is(err, keygate.ErrInvalidRequest):
		return http.StatusBadRequest, "A field is too long or out of range: " + lastPart(err) + "."
	}
	return http.StatusInternalServerError, "The console failed to do this. Nothing is shown of the details here; they were logged."
}

// errorField names the form field an error is about, to mark it.
func errorField(err error) string {
	var fe *formError
	var denied *keygate.DeniedError
	switch {
	case errors.As(err, &fe):
		return fe.Field
	case errors.As(err, &denied):
		switch denied.Reason {
		case keygate.DeniedLifetime:
			return "expiry"
		case keygate.DeniedLimit:
			return "limits"
		case keygate.DeniedWorkspace:
			return "workspace"
		}
		return "permissions"
	case errors.Is(err, keygate.ErrDuplicateName), errors.Is(err, keygate.ErrNameRequired):
		return "name"
	case errors.Is(err, keygate.ErrDuplicateExternalID):
		return "external_id"
	case errors.Is(err, keygate.ErrUnknownIdentity):
		return "identity"
	case errors.Is(err, keygate.ErrInvalidExpiry):
		return "expiry"
	case errors.Is(err, keygate.ErrWorkspaceRequired):
		return "workspace"
	case errors.Is(err, keygate.ErrUnknownRole):
		return "role"
	case errors.Is(err, keygate.ErrNoPermissions), errors.Is(err, keygate.ErrInvalidScope):
		return "permissions"
	}
	return ""
}

// refusal says why the Manager refused q's principal, in plain words.
func refusal(q *request, d *keygate.DeniedError) string {
	you := "Your account"
	if q != nil && q.keyID != uuid.Nil {
		you = "Your key"
	}
	switch d.Reason {
	case keygate.DeniedPermission:
		s := fmt.Sprintf("%s lacks %s", you, d.Permission)
		if d.Workspace != "" {
			s += fmt.Sprintf(" in workspace %q", d.Workspace)
		}
		things := "tokens"
		if q != nil && q.subject == "identity" {
			things = "identities"
		}
		switch d.Permission {
		case keygate.PermissionManageKeys:
			s += ": you can see " + things + " here but not change them"
		case keygate.PermissionViewKeys:
			s += ": you cannot see these " + things
		default:
			s += ", so it cannot give that permission to a token"
		}
		return s + "."
	case keygate.DeniedWorkspace:
		if d.Workspace == "" {
			return you + " is bound to one workspace and cannot act on tokens outside it."
		}
		return fmt.Sprintf("%s cannot act in workspace %q.", you, d.Workspace)
	case keygate.DeniedSuperAdmin:
		return "Only a super admin can create or change a super-admin token."
	case keygate.DeniedLifetime:
		return "The token would outlive yours: latest expiry " + latest(d.LatestExpiry) + "."
	case keygate.DeniedLimit:
		name := map[string]string{keygate.LimitRate: "rate limit", keygate.LimitUses: "usage limit",
			keygate.LimitCredits: "credits", keygate.LimitAllowedCIDRs: "IP allow-list"}[d.Limit]
		if name == "" {
			name = "limit"
		}
		what := "token"
		if q != nil && q.subject == "identity" {
			what = "identity"
		}
		return fmt.Sprintf("The %s would have a looser %s than yours (your identity’s counted): give it limits at least as strict.", what, name)
	case keygate.DeniedUnresolved:
		return "This token's role no longer exists: only a super admin can change it."
	case keygate.DeniedOldSecret:
		return "You signed in with your key's previous token, which still works during its grace period but may change nothing. Sign in with the new token."
	case keygate.DeniedInactive:
		return "The key you signed in with was revoked, disabled, regenerated or has expired."
	}
	return you + " is not allowed to do this."
}

// latest writes an expiry bound: the day, with the time unless it is
// midnight UTC.
func latest(t time.Time) string {
	if midnight(t) {
		return t.UTC().Format(time.DateOnly)
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// lastPart returns the most precise part of a wrapped Manager error:
// what follows its last ": ".
func lastPart(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

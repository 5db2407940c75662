package keygate

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// DenyReason names the bound that made the [Manager] refuse a principal;
// see [DeniedError].
type DenyReason string

// The reasons of a [DeniedError].
const (
	// DeniedPermission: the principal lacks DeniedError.Permission, either
	// one that guards the call (apikey:view, apikey:manage, apikey:verify)
	// or one the key would hold.
	DeniedPermission DenyReason = "permission"
	// DeniedWorkspace: the principal is bound to another workspace than
	// DeniedError.Workspace, the key's ("" for a key bound to none).
	DeniedWorkspace DenyReason = "workspace"
	// DeniedSuperAdmin: the key is, or would be, a super admin and the
	// principal is not one.
	DeniedSuperAdmin DenyReason = "super_admin"
	// DeniedLifetime: the key would outlive the principal:
	// DeniedError.LatestExpiry is the latest expiry the principal may give.
	DeniedLifetime DenyReason = "lifetime"
	// DeniedLimit: the key or identity would have a looser limit than the
	// principal's own; DeniedError.Limit names it: "rate", "uses",
	// "credits" or "allowed_cidrs".
	DeniedLimit DenyReason = "limit"
	// DeniedUnresolved: the key's role or a scope no longer resolves, so
	// only a super admin may change it.
	DeniedUnresolved DenyReason = "unresolved"
	// DeniedInactive: the principal's own key was revoked, disabled,
	// deleted or regenerated, or expired, since it was verified (see
	// Key.Principal).
	DeniedInactive DenyReason = "inactive"
	// DeniedOldSecret: the principal acts with its key's previous secret,
	// in a regeneration's grace period, which may view and verify keys
	// but change none.
	DeniedOldSecret DenyReason = "old_secret"
)

// The limits named by [DeniedError.Limit].
const (
	LimitRate         = "rate"
	LimitUses         = "uses"
	LimitCredits      = "credits"
	LimitAllowedCIDRs = "allowed_cidrs"
)

// DeniedError is the Manager's refusal of a principal: it matches
// [ErrForbidden] with [errors.Is] and says precisely which bound failed,
// so that a caller, or a person reading a problem response, can tell why.
// It names only what the principal asked for, what it holds itself, or, for
// a key it may view or manage, a permission that key holds: never a secret,
// nor anything of a key out of its reach (those are ErrNotFound).
type DeniedError struct {
	// Actor is the ID of the principal refused.
	Actor string
	// KeyID is the key acted on; the zero UUID for a key being created.
	// Refusing a change of an identity's limits for want of rights over
	// one of its keys, it is that key.
	KeyID uuid.UUID
	// IdentityID is the identity acted on, if any.
	IdentityID uuid.UUID
	// Reason names the bound that failed.
	Reason DenyReason
	// Permission, for DeniedPermission, is the permission not held, in
	// canonical form, such as "billing:write".
	Permission string
	// Workspace is the workspace the refused action is in ("" for none).
	Workspace string
	// LatestExpiry, for DeniedLifetime, is the latest expiry the principal
	// may give a key: its own.
	LatestExpiry time.Time
	// Limit, for DeniedLimit, names the limit: LimitRate, LimitUses,
	// LimitCredits or LimitAllowedCIDRs.
	Limit string
}

// Error describes the refusal in one sentence.
func (e *DeniedError) Error() string {
	var b strings.Builder
	b.WriteString(ErrForbidden.Error() + ": " + e.Actor)
	switch e.Reason {
	case DeniedPermission:
		fmt.Fprintf(&b, " lacks %s", e.Permission)
		if e.Workspace != "" {
			fmt.Fprintf(&b, " in workspace %q", e.Workspace)
		}
	case DeniedWorkspace:
		if e.Workspace == "" {
			b.WriteString(" is bound to a workspace and may not act outside it")
		} else {
			fmt.Fprintf(&b, " may not act in workspace %q", e.Workspace)
		}
	case DeniedSuperAdmin:
		b.WriteString(" is not a super admin")
	case DeniedLifetime:
		fmt.Fprintf(&b, " may not give a key a life beyond its own (latest expiry %s)", e.LatestExpiry.UTC().Format(time.RFC3339))
	case DeniedLimit:
		fmt.Fprintf(&b, " may not give a key or identity a looser %s limit than its own", e.Limit)
	case DeniedUnresolved:
		b.WriteString(" may not change a key whose role no longer resolves (super admins only)")
	case DeniedInactive:
		b.WriteString(" acts with a key that was revoked, deleted, regenerated or has expired")
	case DeniedOldSecret:
		b.WriteString(" acts with its key's previous secret, which may change no key")
	default:
		b.WriteString(" is not allowed")
	}
	if e.KeyID != uuid.Nil {
		fmt.Fprintf(&b, " (key %s)", e.KeyID)
	}
	if e.IdentityID != uuid.Nil {
		fmt.Fprintf(&b, " (identity %s)", e.IdentityID)
	}
	return b.String()
}

// Is reports whether target is [ErrForbidden].
func (e *DeniedError) Is(target error) bool {
	return target == ErrForbidden
}

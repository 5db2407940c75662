package permission

import (
	"fmt"
	"slices"
	"strings"
)

// Names of the default roles returned by [DefaultRoles].
const (
	// RoleAdmin is the super admin: "*:*" in every workspace, including
	// managing keys. It is the Devtron "super admin" token.
	RoleAdmin = "admin"
	// RoleOwner holds "*:*". A key with this role may be bound to a
	// workspace, where it may do everything; unbound, it is not confined.
	RoleOwner = "owner"
	// RoleEditor holds "*:read" and "*:write" and requires a workspace.
	RoleEditor = "editor"
	// RoleViewer holds "*:read" and requires a workspace.
	RoleViewer = "viewer"
)

// Role is a named permission set, such as the KubeSlice Owner, Editor and
// Viewer roles. Role is a plain value; [Registry] hands out copies.
type Role struct {
	// Name identifies the role. It is case-insensitive and stored
	// lowercase by [NewRegistry]; it matches [a-zA-Z][a-zA-Z0-9_.-]* and is
	// at most [MaxNameLen] bytes.
	Name string
	// Description is free text for people; it is not interpreted.
	Description string
	// Permissions is what a key with this role is allowed, inside the
	// key's workspace when the key is bound to one.
	Permissions Set
	// RequiresWorkspace means a key with this role must be bound to a
	// workspace (as KubeSlice requires for Editor and Viewer). Enforcing it
	// is up to the code that issues keys.
	RequiresWorkspace bool
	// SuperAdmin means the role is allowed everything in every workspace,
	// including managing keys. A super admin role must hold "*:*" and
	// cannot require a workspace.
	SuperAdmin bool
}

// Registry is an immutable set of roles looked up by name. It is safe for
// concurrent use. The zero Registry and a nil *Registry hold no roles.
type Registry struct {
	roles []Role         // sorted by name
	index map[string]int // lowercase name -> position in roles
}

// NewRegistry returns a registry of the given roles. Each role's name is
// lowercased and its permissions are checked against the grammar, put in
// canonical form and order, and deduplicated; the roles given are not
// modified. It fails with an error wrapping [ErrInvalidRole] (and
// [ErrInvalid] for a bad permission) when a name is empty or invalid, two
// names are equal ignoring case, a permission is invalid, or a super admin
// role does not hold "*:*" or requires a workspace.
func NewRegistry(roles ...Role) (*Registry, error) {
	r := &Registry{
		roles: make([]Role, 0, len(roles)),
		index: make(map[string]int, len(roles)),
	}
	for _, role := range roles {
		role, err := normalizeRole(role)
		if err != nil {
			return nil, err
		}
		if _, dup := r.index[role.Name]; dup {
			return nil, fmt.Errorf("%w %s: duplicate name", ErrInvalidRole, quote(role.Name))
		}
		r.index[role.Name] = -1
		r.roles = append(r.roles, role)
	}
	slices.SortFunc(r.roles, func(a, b Role) int { return strings.Compare(a.Name, b.Name) })
	for i, role := range r.roles {
		r.index[role.Name] = i
	}
	return r, nil
}

// normalizeRole returns a copy of role with its name lowercased and its
// permissions canonical, or an error wrapping ErrInvalidRole.
func normalizeRole(role Role) (Role, error) {
	name, reason := parseName("role name", role.Name)
	if reason != "" {
		return Role{}, fmt.Errorf("%w %s: %s", ErrInvalidRole, quote(role.Name), reason)
	}
	perms := make(Set, len(role.Permissions))
	for i, p := range role.Permissions {
		c, reason := p.canonical()
		if reason != "" {
			return Role{}, fmt.Errorf("%w %s: permission %d: %w", ErrInvalidRole, quote(name), i, invalid(p.String(), reason))
		}
		perms[i] = c
	}
	role.Name, role.Permissions = name, perms.normalize()
	if role.SuperAdmin {
		if !role.Permissions.Allows(Permission{Resource: Wildcard, Action: Wildcard}) {
			return Role{}, fmt.Errorf("%w %s: a super admin role must hold \"*:*\"", ErrInvalidRole, quote(name))
		}
		if role.RequiresWorkspace {
			return Role{}, fmt.Errorf("%w %s: a super admin role cannot require a workspace", ErrInvalidRole, quote(name))
		}
	}
	return role, nil
}

// DefaultRoles returns the default roles, sorted by name: [RoleAdmin],
// [RoleEditor], [RoleOwner] and [RoleViewer]. Each call returns a fresh
// slice with fresh permission sets, which the caller may modify.
func DefaultRoles() []Role {
	all := Permission{Resource: Wildcard, Action: Wildcard}
	read := Permission{Resource: Wildcard, Action: "read"}
	write := Permission{Resource: Wildcard, Action: "write"}
	return []Role{
		{
			Name:        RoleAdmin,
			Description: "Super admin: everything in every workspace, including managing keys.",
			Permissions: Set{all},
			SuperAdmin:  true,
		},
		{
			Name:              RoleEditor,
			Description:       "Read and write inside one workspace.",
			Permissions:       Set{read, write},
			RequiresWorkspace: true,
		},
		{
			Name:        RoleOwner,
			Description: "Everything; inside its workspace when bound to one.",
			Permissions: Set{all},
		},
		{
			Name:              RoleViewer,
			Description:       "Read only, inside one workspace.",
			Permissions:       Set{read},
			RequiresWorkspace: true,
		},
	}
}

// NewDefaultRegistry returns a registry of [DefaultRoles] plus extra. An
// extra role named like a default role (ignoring case) replaces it. It
// fails like [NewRegistry], including when two extra roles share a name.
func NewDefaultRegistry(extra ...Role) (*Registry, error) {
	roles := DefaultRoles()
	defaults := len(roles)
	replaced := make([]bool, defaults)
	for _, e := range extra {
		name := lowerASCII(e.Name)
		i := slices.IndexFunc(roles[:defaults], func(d Role) bool { return d.Name == name })
		if i >= 0 && !replaced[i] {
			roles[i], replaced[i] = e, true
			continue
		}
		roles = append(roles, e)
	}
	return NewRegistry(roles...)
}

// Role returns the role of the given name, ignoring ASCII case, or an error
// wrapping [ErrUnknownRole]. The returned role is a copy: modifying it, its
// permissions included, does not affect the registry.
func (r *Registry) Role(name string) (Role, error) {
	if r != nil {
		if i, ok := r.index[lowerASCII(name)]; ok {
			return cloneRole(r.roles[i]), nil
		}
	}
	return Role{}, fmt.Errorf("%w %s", ErrUnknownRole, quote(name))
}

// Roles returns a copy of every role, sorted by name.
func (r *Registry) Roles() []Role {
	if r == nil {
		return nil
	}
	out := make([]Role, len(r.roles))
	for i, role := range r.roles {
		out[i] = cloneRole(role)
	}
	return out
}

// cloneRole copies role with its own permission set.
func cloneRole(role Role) Role {
	role.Permissions = slices.Clip(slices.Clone(role.Permissions))
	return role
}

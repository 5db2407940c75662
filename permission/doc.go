// Package permission defines what an API key may do: granular permissions
// ([Permission], [Set]) and named roles ([Role], [Registry]).
//
// # Grammar
//
// A permission is written resource[/instance]:action, for example
// "cluster:read", "api_key:write", "app/payments:deploy" or "*:read":
//
//	permission = resource [ "/" instance ] ":" action .
//	resource   = "*" | name .                   (at most 64 bytes)
//	action     = "*" | name .                   (at most 64 bytes)
//	instance   = "*" | ident .                  (at most 128 bytes)
//	name       = letter { letter | digit | "_" | "." | "-" } .
//	ident      = ( letter | digit ) { letter | digit | "_" | "." | "-" } .
//	letter     = "a" … "z" | "A" … "Z" .
//	digit      = "0" … "9" .
//
// No whitespace is allowed. Resource and action are ASCII
// case-insensitive: [Parse] lowercases them. The instance is
// case-sensitive. [Permission.String] gives the canonical form, which
// Parse reads back to an equal value.
//
// The grammar expresses the access controls of the platforms keygate was
// modelled on: Replex's per-category read/write toggles ("billing:read",
// "saml_integration:write"), Devtron's specific role over one application
// ("app/payments:deploy", "helm_app/grafana:read") and KubeSlice's
// Owner/Editor/Viewer roles (see below).
//
// # Wildcards
//
// "*" may stand for the whole of a part, never for a piece of one
// ("clu*:read" is invalid). A resource or action of "*" matches every
// resource or action. An omitted instance means every instance of the
// resource, so "app/*:deploy" is the same permission as "app:deploy" and
// prints as the latter.
//
// [Permission.Allows] compares part by part, and a wildcard on the
// requested side asks for everything: p allows q only when p is at least
// as wide as q in each part. "*:read" allows "cluster:read" and
// "app/payments:read", but "cluster:read" does not allow "*:read", and
// "app/payments:deploy" does not allow "app:deploy".
//
// [Set.Allows], which answers "may this key do that?" on every request,
// allocates nothing.
//
// # Roles and workspaces
//
// A [Role] is a named [Set] with two flags. RequiresWorkspace means a key
// holding the role must be bound to a workspace (a KubeSlice slice
// workspace, a tenant, a project); its permissions then apply inside that
// workspace only. SuperAdmin means the role is allowed everything in every
// workspace, including managing keys. Workspaces are not part of the
// permission grammar: code that confines keys to a workspace or guards key
// management checks the flags alongside the permissions.
//
// [DefaultRoles] are [RoleAdmin] (super admin), [RoleOwner] ("*:*", with
// or without a workspace), [RoleEditor] ("*:read", "*:write") and
// [RoleViewer] ("*:read"), the last two requiring a workspace. A
// [Registry] is an immutable set of roles; [NewDefaultRegistry] adds
// custom roles to the defaults or replaces them.
//
// # Privilege escalation
//
// Whoever grants permissions must not grant more than they hold. Before a
// key holding s creates a key, or assigns a role, with permissions t, check
// s.Covers(t) ([Set.Covers]): every element of t must be allowed by s.
// Because wildcards on the requested side count as requests for
// everything, {"cluster:read"} does not cover {"*:read"}, and a set of
// single instances never covers the whole resource. A role flagged
// SuperAdmin should be granted only by a super admin.
//
// # Concurrency
//
// [Permission] and [Set] are plain values and no method modifies them;
// [Registry] is immutable after [NewRegistry] and hands out copies. All are
// safe for concurrent use.
package permission

package permission_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/permission"
)

// mustRegistry builds a registry or fails the test.
func mustRegistry(t *testing.T, roles ...permission.Role) *permission.Registry {
	t.Helper()
	r, err := permission.NewRegistry(roles...)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return r
}

// roleNames returns the names of roles, in order.
func roleNames(roles []permission.Role) []string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.Name
	}
	return names
}

func TestDefaultRoles(t *testing.T) {
	t.Parallel()
	r, err := permission.NewDefaultRegistry()
	if err != nil {
		t.Fatalf("NewDefaultRegistry(): %v", err)
	}
	tests := []struct {
		name              string
		perms             string
		requiresWorkspace bool
		superAdmin        bool
	}{
		{permission.RoleAdmin, "*:*", false, true},
		{permission.RoleOwner, "*:*", false, false},
		{permission.RoleEditor, "*:read *:write", true, false},
		{permission.RoleViewer, "*:read", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			role, err := r.Role(tt.name)
			if err != nil {
				t.Fatalf("Role(%q): %v", tt.name, err)
			}
			if role.Name != tt.name {
				t.Errorf("Name = %q, want %q", role.Name, tt.name)
			}
			if got := role.Permissions.String(); got != tt.perms {
				t.Errorf("Permissions = %q, want %q", got, tt.perms)
			}
			if role.RequiresWorkspace != tt.requiresWorkspace {
				t.Errorf("RequiresWorkspace = %v, want %v", role.RequiresWorkspace, tt.requiresWorkspace)
			}
			if role.SuperAdmin != tt.superAdmin {
				t.Errorf("SuperAdmin = %v, want %v", role.SuperAdmin, tt.superAdmin)
			}
			if role.Description == "" {
				t.Error("Description is empty, want text")
			}
		})
	}
	want := []string{"admin", "editor", "owner", "viewer"}
	if got := roleNames(r.Roles()); !slices.Equal(got, want) {
		t.Errorf("Roles() names = %q, want %q", got, want)
	}
	if got := roleNames(permission.DefaultRoles()); !slices.Equal(got, want) {
		t.Errorf("DefaultRoles() names = %q, want %q", got, want)
	}
}

func TestDefaultRolesFresh(t *testing.T) {
	t.Parallel()
	a := permission.DefaultRoles()
	a[0].Name = "changed"
	a[1].Permissions[0] = permission.Permission{Resource: "x", Action: "y"}
	b := permission.DefaultRoles()
	if b[0].Name != permission.RoleAdmin {
		t.Errorf("after modifying a previous result, DefaultRoles()[0].Name = %q, want %q", b[0].Name, permission.RoleAdmin)
	}
	if got := b[1].Permissions.String(); got != "*:read *:write" {
		t.Errorf("after modifying a previous result, editor permissions = %q, want %q", got, "*:read *:write")
	}
}

func TestRegistryCustomRoles(t *testing.T) {
	t.Parallel()
	billing := permission.Role{
		Name:        "Billing-Manager",
		Description: "Replex-style granular token",
		Permissions: permission.Set{
			{Resource: "Billing", Action: "WRITE"},
			{Resource: "billing", Action: "read"},
			{Resource: "budget", Instance: "*", Action: "read"},
			{Resource: "billing", Action: "write"},
		},
	}
	deployer := permission.Role{
		Name:        "payments_deployer",
		Permissions: permission.Set{{Resource: "app", Instance: "payments", Action: "deploy"}},
	}
	r := mustRegistry(t, deployer, billing)

	got, err := r.Role("BILLING-manager")
	if err != nil {
		t.Fatalf("Role(%q): %v", "BILLING-manager", err)
	}
	if got.Name != "billing-manager" {
		t.Errorf("Name = %q, want %q", got.Name, "billing-manager")
	}
	if want := "billing:read billing:write budget:read"; got.Permissions.String() != want {
		t.Errorf("Permissions = %q, want canonical %q", got.Permissions.String(), want)
	}
	if got.Description != billing.Description {
		t.Errorf("Description = %q, want %q", got.Description, billing.Description)
	}
	if billing.Name != "Billing-Manager" || billing.Permissions[0].Resource != "Billing" {
		t.Errorf("NewRegistry modified its argument: %+v", billing)
	}
	if names := roleNames(r.Roles()); !slices.Equal(names, []string{"billing-manager", "payments_deployer"}) {
		t.Errorf("Roles() names = %q, want sorted", names)
	}
	if _, err := r.Role(permission.RoleAdmin); !errors.Is(err, permission.ErrUnknownRole) {
		t.Errorf("Role(admin) in a custom registry = %v, want ErrUnknownRole", err)
	}
	empty := mustRegistry(t, permission.Role{Name: "nobody"})
	if role, err := empty.Role("nobody"); err != nil || len(role.Permissions) != 0 {
		t.Errorf("Role(nobody) = %+v, %v; want a role with no permissions", role, err)
	}
}

func TestRegistryInvalid(t *testing.T) {
	t.Parallel()
	ok := permission.Set{{Resource: "cluster", Action: "read"}}
	tests := []struct {
		name    string
		roles   []permission.Role
		invalid bool // also wraps ErrInvalid
		reason  string
	}{
		{"empty name", []permission.Role{{Name: "", Permissions: ok}}, false, "empty role name"},
		{"name with space", []permission.Role{{Name: "bad name"}}, false, "invalid character ' ' in role name"},
		{"name is wildcard", []permission.Role{{Name: "*"}}, false, "invalid character '*' in role name"},
		{"name starts with digit", []permission.Role{{Name: "1st"}}, false, "must start with a letter"},
		{"name too long", []permission.Role{{Name: strings.Repeat("r", 65)}}, false, "longer than 64 bytes"},
		{"duplicate", []permission.Role{{Name: "ops"}, {Name: "ops"}}, false, "duplicate name"},
		{"duplicate ignoring case", []permission.Role{{Name: "ops"}, {Name: "OPS"}}, false, "duplicate name"},
		{"zero permission", []permission.Role{{Name: "ops", Permissions: permission.Set{{}}}}, true, "permission 0"},
		{"bad resource", []permission.Role{{Name: "ops", Permissions: permission.Set{
			{Resource: "cluster", Action: "read"}, {Resource: "clu ster", Action: "read"}}}}, true, "permission 1"},
		{"slash smuggled in resource", []permission.Role{{Name: "ops", Permissions: permission.Set{
			{Resource: "app/x", Action: "read"}}}}, true, "invalid character '/' in resource"},
		{"colon smuggled in action", []permission.Role{{Name: "ops", Permissions: permission.Set{
			{Resource: "app", Action: "read:write"}}}}, true, "invalid character ':' in action"},
		{"super admin without everything", []permission.Role{{Name: "root", Permissions: ok, SuperAdmin: true}}, false, `must hold "*:*"`},
		{"super admin in a workspace", []permission.Role{{Name: "root", SuperAdmin: true, RequiresWorkspace: true,
			Permissions: permission.Set{{Resource: "*", Action: "*"}}}}, false, "cannot require a workspace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := permission.NewRegistry(tt.roles...)
			if !errors.Is(err, permission.ErrInvalidRole) {
				t.Fatalf("NewRegistry = %v, %v; want ErrInvalidRole", r, err)
			}
			if r != nil {
				t.Errorf("NewRegistry on error = %v, want nil", r)
			}
			if got := errors.Is(err, permission.ErrInvalid); got != tt.invalid {
				t.Errorf("errors.Is(%v, ErrInvalid) = %v, want %v", err, got, tt.invalid)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q: want reason %q", err, tt.reason)
			}
		})
	}
}

func TestNewDefaultRegistryExtra(t *testing.T) {
	t.Parallel()
	auditor := permission.Role{Name: "auditor", Permissions: permission.Set{{Resource: "audit", Action: "read"}}}
	strictViewer := permission.Role{
		Name:              "VIEWER",
		Description:       "Viewer without billing",
		Permissions:       permission.Set{{Resource: "cluster", Action: "read"}},
		RequiresWorkspace: true,
	}
	r, err := permission.NewDefaultRegistry(auditor, strictViewer)
	if err != nil {
		t.Fatalf("NewDefaultRegistry: %v", err)
	}
	want := []string{"admin", "auditor", "editor", "owner", "viewer"}
	if got := roleNames(r.Roles()); !slices.Equal(got, want) {
		t.Errorf("Roles() names = %q, want %q", got, want)
	}
	v, err := r.Role("viewer")
	if err != nil {
		t.Fatalf("Role(viewer): %v", err)
	}
	if v.Description != strictViewer.Description || v.Permissions.String() != "cluster:read" {
		t.Errorf("viewer = %+v, want the replacement %+v", v, strictViewer)
	}

	_, err = permission.NewDefaultRegistry(auditor, auditor)
	if !errors.Is(err, permission.ErrInvalidRole) {
		t.Errorf("NewDefaultRegistry with two extra auditors = %v, want ErrInvalidRole", err)
	}
	_, err = permission.NewDefaultRegistry(strictViewer, strictViewer)
	if !errors.Is(err, permission.ErrInvalidRole) {
		t.Errorf("NewDefaultRegistry replacing viewer twice = %v, want ErrInvalidRole", err)
	}
	_, err = permission.NewDefaultRegistry(permission.Role{Name: "admin", SuperAdmin: true})
	if !errors.Is(err, permission.ErrInvalidRole) {
		t.Errorf("NewDefaultRegistry with an admin that holds nothing = %v, want ErrInvalidRole", err)
	}
}

func TestRegistryRole(t *testing.T) {
	t.Parallel()
	r, err := permission.NewDefaultRegistry()
	if err != nil {
		t.Fatalf("NewDefaultRegistry: %v", err)
	}
	tests := []struct {
		name string
		want string // "" means unknown
	}{
		{"editor", "editor"},
		{"Editor", "editor"},
		{"EDITOR", "editor"},
		{"ed\u0130tor", ""}, // non-ASCII capital I with dot is not 'i'
		{"editors", ""},
		{"", ""},
		{"*", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			role, err := r.Role(tt.name)
			if tt.want == "" {
				if !errors.Is(err, permission.ErrUnknownRole) {
					t.Fatalf("Role(%q) = %+v, %v; want ErrUnknownRole", tt.name, role, err)
				}
				if !strings.Contains(err.Error(), "permission: unknown role ") {
					t.Errorf("error %q: want the package prefix", err)
				}
				return
			}
			if err != nil || role.Name != tt.want {
				t.Errorf("Role(%q) = %q, %v; want %q", tt.name, role.Name, err, tt.want)
			}
		})
	}
}

func TestRegistryReturnsCopies(t *testing.T) {
	t.Parallel()
	r, err := permission.NewDefaultRegistry()
	if err != nil {
		t.Fatalf("NewDefaultRegistry: %v", err)
	}
	v, _ := r.Role("viewer")
	v.Permissions[0] = permission.Permission{Resource: "*", Action: "*"}
	_ = append(v.Permissions, permission.Permission{Resource: "*", Action: "write"})
	all := r.Roles()
	all[3].Permissions[0] = permission.Permission{Resource: "*", Action: "*"}
	all[3].SuperAdmin = true

	again, _ := r.Role("viewer")
	if got := again.Permissions.String(); got != "*:read" || again.SuperAdmin {
		t.Errorf("viewer after modifying copies = %q (super admin %v), want %q", got, again.SuperAdmin, "*:read")
	}
}

func TestRegistryNilAndZero(t *testing.T) {
	t.Parallel()
	for _, r := range []*permission.Registry{nil, {}} {
		if _, err := r.Role("admin"); !errors.Is(err, permission.ErrUnknownRole) {
			t.Errorf("(%v).Role(admin) = %v, want ErrUnknownRole", r, err)
		}
		if got := r.Roles(); len(got) != 0 {
			t.Errorf("(%v).Roles() = %v, want none", r, got)
		}
	}
	r := mustRegistry(t)
	if got := r.Roles(); len(got) != 0 {
		t.Errorf("NewRegistry().Roles() = %v, want none", got)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	r, err := permission.NewDefaultRegistry()
	if err != nil {
		t.Fatalf("NewDefaultRegistry: %v", err)
	}
	read := mustParse(t, "cluster:read")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				name := []string{"Admin", "editor", "OWNER", "viewer"}[(i+j)%4]
				role, err := r.Role(name)
				if err != nil {
					errs <- err
					return
				}
				if !role.Permissions.Allows(read) {
					errs <- errors.New(role.Name + " does not allow cluster:read")
					return
				}
				_ = r.Roles()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

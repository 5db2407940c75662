package permission_test

import (
	"errors"
	"fmt"

	"github.com/keygate/keygate/permission"
)

func ExampleParse() {
	for _, s := range []string{"Cluster:READ", "app/payments:deploy", "app/*:deploy", "billing write"} {
		p, err := permission.Parse(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(p)
	}
	// Output:
	// cluster:read
	// app/payments:deploy
	// app:deploy
	// permission: invalid permission "billing write": contains whitespace
}

func ExampleSet_Allows() {
	granted, err := permission.ParseSet("billing:read", "cluster/prod:*", "app/payments:deploy")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, want := range []string{"billing:read", "billing:write", "cluster/prod:delete", "app/orders:deploy", "*:read"} {
		p, err := permission.Parse(want)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%-20s %v\n", want, granted.Allows(p))
	}
	// Output:
	// billing:read         true
	// billing:write        false
	// cluster/prod:delete  true
	// app/orders:deploy    false
	// *:read               false
}

func ExampleSet_Covers() {
	editor, _ := permission.ParseSet("*:read", "*:write")
	asked, _ := permission.ParseSet("cluster:read", "billing:write")
	escalation, _ := permission.ParseSet("api_key:delete")
	fmt.Println(editor.Covers(asked))
	fmt.Println(editor.Covers(escalation))
	// Output:
	// true
	// false
}

func ExampleRegistry() {
	auditor := permission.Role{
		Name:              "Auditor",
		Description:       "Reads the audit log of one workspace.",
		Permissions:       permission.Set{{Resource: "audit", Action: "read"}},
		RequiresWorkspace: true,
	}
	reg, err := permission.NewDefaultRegistry(auditor)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range reg.Roles() {
		fmt.Printf("%-7s %-15s workspace=%-5v super=%v\n", r.Name, r.Permissions, r.RequiresWorkspace, r.SuperAdmin)
	}
	_, err = reg.Role("Operator")
	fmt.Println(errors.Is(err, permission.ErrUnknownRole), err)
	// Output:
	// admin   *:*             workspace=false super=true
	// auditor audit:read      workspace=true  super=false
	// editor  *:read *:write  workspace=true  super=false
	// owner   *:*             workspace=false super=false
	// viewer  *:read          workspace=true  super=false
	// true permission: unknown role "Operator"
}

// Package-level permissions, parsed once at start-up: MustParse panics on a
// typo, which a test or the first run shows at once.
var clusterRead = permission.MustParse("cluster:read")

func ExampleMustParse() {
	granted, _ := permission.ParseSet("cluster:*")
	fmt.Println(clusterRead, granted.Allows(clusterRead))
	// Output: cluster:read true
}

func ExampleSet_Missing() {
	holder, _ := permission.ParseSet("cluster:read", "billing:read")
	asked, _ := permission.ParseSet("billing:read", "billing:write")
	if p, ok := holder.Missing(asked); ok {
		fmt.Println("lacks", p)
	}
	// Output: lacks billing:write
}

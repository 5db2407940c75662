package permission_test

import (
	"testing"

	"github.com/keygate/keygate/permission"
)

// benchSet is a realistic set of eight granular permissions.
func benchSet(tb testing.TB) permission.Set {
	tb.Helper()
	return mustParseSet(tb,
		"agent:read", "api_key:read", "billing:read", "billing:write",
		"budget:read", "cluster:read", "cluster/prod-eu:write", "app/payments:deploy",
	)
}

func BenchmarkSetAllows(b *testing.B) {
	s := benchSet(b)
	for _, bc := range []struct {
		name, q string
		want    bool
	}{
		{"hit-first", "agent:read", true},
		{"hit-last", "cluster/prod-eu:write", true},
		{"miss", "user:write", false},
		{"miss-wildcard", "*:read", false},
	} {
		q := mustParse(b, bc.q)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s.Allows(q) != bc.want {
					b.Fatalf("Allows(%q) != %v", bc.q, bc.want)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"canonical", "cluster/prod-eu:write"},
		{"uppercase", "Cluster/prod-eu:WRITE"},
		{"invalid", "cluster prod:write"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = permission.Parse(bc.in)
			}
		})
	}
}

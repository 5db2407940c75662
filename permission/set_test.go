package permission_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/permission"
)

// mustParseSet parses ss or fails the test.
func mustParseSet(t testing.TB, ss ...string) permission.Set {
	t.Helper()
	s, err := permission.ParseSet(ss...)
	if err != nil {
		t.Fatalf("ParseSet(%q): %v", ss, err)
	}
	return s
}

func TestParseSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"none", nil, []string{}},
		{"one", []string{"cluster:read"}, []string{"cluster:read"}},
		{"sorted by resource, instance, action",
			[]string{"cluster:write", "app/payments:deploy", "cluster:read", "app:read", "*:read", "app-x:read"},
			[]string{"*:read", "app:read", "app/payments:deploy", "app-x:read", "cluster:read", "cluster:write"}},
		{"exact duplicates removed after canonicalisation",
			[]string{"Cluster:Read", "cluster:read", "app/*:deploy", "app:deploy", "cluster:read"},
			[]string{"app:deploy", "cluster:read"}},
		{"redundant but distinct kept",
			[]string{"*:*", "cluster:read"},
			[]string{"*:*", "cluster:read"}},
		{"instances are case-sensitive",
			[]string{"app/A:read", "app/a:read"},
			[]string{"app/A:read", "app/a:read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := permission.ParseSet(tt.in...)
			if err != nil {
				t.Fatalf("ParseSet(%q): %v", tt.in, err)
			}
			if got := s.Strings(); !slices.Equal(got, tt.want) {
				t.Errorf("ParseSet(%q).Strings() = %q, want %q", tt.in, got, tt.want)
			}
			if got, want := s.String(), strings.Join(tt.want, " "); got != want {
				t.Errorf("ParseSet(%q).String() = %q, want %q", tt.in, got, want)
			}
			if len(s) != cap(s) {
				t.Errorf("len %d != cap %d: an append by the caller could write into a shared array", len(s), cap(s))
			}
		})
	}
}

func TestParseSetError(t *testing.T) {
	t.Parallel()
	s, err := permission.ParseSet("cluster:read", "billing write", "x")
	if !errors.Is(err, permission.ErrInvalid) {
		t.Fatalf("ParseSet error = %v, want ErrInvalid", err)
	}
	if s != nil {
		t.Errorf("ParseSet on error = %v, want nil", s)
	}
	if !strings.Contains(err.Error(), `"billing write"`) {
		t.Errorf("error %q: want the first bad input quoted", err)
	}
}

func TestSetStringRoundTrip(t *testing.T) {
	t.Parallel()
	s := mustParseSet(t, "user:read", "*:read", "app/payments:deploy", "billing:*")
	back, err := permission.ParseSet(strings.Fields(s.String())...)
	if err != nil {
		t.Fatalf("ParseSet(Fields(%q)): %v", s.String(), err)
	}
	if !slices.Equal(back, s) {
		t.Errorf("round trip = %v, want %v", back, s)
	}
	if got := (permission.Set{}).String(); got != "" {
		t.Errorf("empty Set.String() = %q, want \"\"", got)
	}
}

func TestSetAllows(t *testing.T) {
	t.Parallel()
	s := mustParseSet(t, "billing:read", "billing:write", "cluster/prod:read", "app/payments:deploy", "*:list")
	tests := []struct {
		q    string
		want bool
	}{
		{"billing:read", true},
		{"billing/invoice-7:write", true},
		{"billing:delete", false},
		{"cluster/prod:read", true},
		{"cluster/dev:read", false},
		{"cluster:read", false},
		{"app/payments:deploy", true},
		{"app/orders:deploy", false},
		{"user:list", true},
		{"*:list", true},
		{"*:read", false},
		{"*:*", false},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			t.Parallel()
			if got := s.Allows(mustParse(t, tt.q)); got != tt.want {
				t.Errorf("%v.Allows(%q) = %v, want %v", s, tt.q, got, tt.want)
			}
		})
	}
	var empty permission.Set
	if empty.Allows(mustParse(t, "cluster:read")) {
		t.Error("nil Set allows cluster:read, want false")
	}
}

// TestSetAllowsAllocs is not parallel: AllocsPerRun counts every
// allocation in the process.
func TestSetAllowsAllocs(t *testing.T) {
	s := benchSet(t)
	for _, q := range []string{"cluster/prod-eu:write", "user:write", "*:read"} {
		p := mustParse(t, q)
		if n := testing.AllocsPerRun(100, func() { s.Allows(p) }); n != 0 {
			t.Errorf("Set.Allows(%q) allocates %v times per call, want 0", q, n)
		}
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s, t []string
		want bool
	}{
		{"empty covers empty", nil, nil, true},
		{"empty covers nothing else", nil, []string{"cluster:read"}, false},
		{"anything covers empty", []string{"cluster:read"}, nil, true},
		{"equal", []string{"cluster:read", "billing:write"}, []string{"billing:write", "cluster:read"}, true},
		{"subset", []string{"cluster:read", "billing:write"}, []string{"cluster:read"}, true},
		{"superset", []string{"cluster:read"}, []string{"cluster:read", "billing:write"}, false},
		{"wildcard covers specific", []string{"*:read"}, []string{"cluster:read", "app/x:read"}, true},
		{"specific does not cover wildcard resource", []string{"cluster:read"}, []string{"*:read"}, false},
		{"specific does not cover wildcard action", []string{"cluster:read", "cluster:write"}, []string{"cluster:*"}, false},
		{"instances do not cover the resource", []string{"app/a:deploy", "app/b:deploy"}, []string{"app:deploy"}, false},
		{"resource covers instances", []string{"app:deploy"}, []string{"app/a:deploy", "app/b:deploy"}, true},
		{"editor does not cover owner", []string{"*:read", "*:write"}, []string{"*:*"}, false},
		{"owner covers editor", []string{"*:*"}, []string{"*:read", "*:write"}, true},
		{"read does not cover write", []string{"*:read"}, []string{"billing:write"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, u := mustParseSet(t, tt.s...), mustParseSet(t, tt.t...)
			if got := s.Covers(u); got != tt.want {
				t.Errorf("%v.Covers(%v) = %v, want %v", s, u, got, tt.want)
			}
			// Missing agrees with Covers and names a permission of u
			// that s does not allow.
			missing, ok := s.Missing(u)
			if ok == tt.want {
				t.Errorf("%v.Missing(%v) ok = %v, want %v", s, u, ok, !tt.want)
			}
			if ok && (s.Allows(missing) || !slices.Contains(u, missing)) {
				t.Errorf("%v.Missing(%v) = %v: not an element of u that s lacks", s, u, missing)
			}
		})
	}
	if (permission.Set{{Resource: "*", Action: "*"}}).Covers(permission.Set{{}}) {
		t.Error("{*:*}.Covers({zero}) = true, want false")
	}
}

func TestUnion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s, t []string
		want []string
	}{
		{"both empty", nil, nil, []string{}},
		{"one empty", []string{"cluster:read"}, nil, []string{"cluster:read"}},
		{"disjoint", []string{"cluster:read"}, []string{"billing:write"}, []string{"billing:write", "cluster:read"}},
		{"overlap", []string{"cluster:read", "user:read"}, []string{"user:read", "app/x:deploy"},
			[]string{"app/x:deploy", "cluster:read", "user:read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, u := mustParseSet(t, tt.s...), mustParseSet(t, tt.t...)
			sBefore, uBefore := slices.Clone(s), slices.Clone(u)
			got := s.Union(u)
			if !slices.Equal(got.Strings(), tt.want) {
				t.Errorf("%v.Union(%v) = %q, want %q", s, u, got.Strings(), tt.want)
			}
			if !slices.Equal(s, sBefore) || !slices.Equal(u, uBefore) {
				t.Errorf("Union modified its operands: s=%v (was %v), t=%v (was %v)", s, sBefore, u, uBefore)
			}
		})
	}
}

func TestUnionHandBuilt(t *testing.T) {
	t.Parallel()
	s := permission.Set{
		{Resource: "user", Action: "read"},
		{Resource: "app", Instance: "*", Action: "deploy"},
	}
	before := slices.Clone(s)
	got := s.Union(permission.Set{{Resource: "app", Action: "deploy"}})
	if want := "app:deploy user:read"; got.String() != want {
		t.Errorf("Union = %q, want %q", got.String(), want)
	}
	if !slices.Equal(s, before) {
		t.Errorf("Union modified its receiver: %#v, was %#v", s, before)
	}
}

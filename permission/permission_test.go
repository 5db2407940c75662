package permission_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keygate/keygate/permission"
)

// mustParse parses s or fails the test.
func mustParse(t testing.TB, s string) permission.Permission {
	t.Helper()
	p, err := permission.Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return p
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		in        string
		want      permission.Permission
		canonical string
	}{
		{"cluster:read", permission.Permission{Resource: "cluster", Action: "read"}, "cluster:read"},
		{"api_key:write", permission.Permission{Resource: "api_key", Action: "write"}, "api_key:write"},
		{"saml-integration.v2:read", permission.Permission{Resource: "saml-integration.v2", Action: "read"}, "saml-integration.v2:read"},
		{"app/payments:deploy", permission.Permission{Resource: "app", Instance: "payments", Action: "deploy"}, "app/payments:deploy"},
		{"app/*:deploy", permission.Permission{Resource: "app", Action: "deploy"}, "app:deploy"},
		{"*:read", permission.Permission{Resource: "*", Action: "read"}, "*:read"},
		{"*:*", permission.Permission{Resource: "*", Action: "*"}, "*:*"},
		{"*/*:*", permission.Permission{Resource: "*", Action: "*"}, "*:*"},
		{"cluster:*", permission.Permission{Resource: "cluster", Action: "*"}, "cluster:*"},
		{"*/prod:read", permission.Permission{Resource: "*", Instance: "prod", Action: "read"}, "*/prod:read"},
		{"Cluster:READ", permission.Permission{Resource: "cluster", Action: "read"}, "cluster:read"},
		{"Helm_App/Grafana-01:Read", permission.Permission{Resource: "helm_app", Instance: "Grafana-01", Action: "read"}, "helm_app/Grafana-01:read"},
		{"app/0abc.Def_g-h:x9", permission.Permission{Resource: "app", Instance: "0abc.Def_g-h", Action: "x9"}, "app/0abc.Def_g-h:x9"},
		{long("r", 64) + "/" + long("I", 128) + ":" + long("a", 64),
			permission.Permission{Resource: long("r", 64), Instance: long("I", 128), Action: long("a", 64)},
			long("r", 64) + "/" + long("I", 128) + ":" + long("a", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := permission.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.canonical {
				t.Errorf("Parse(%q).String() = %q, want %q", tt.in, s, tt.canonical)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		reason string
	}{
		{"empty", "", "empty"},
		{"missing colon", "cluster", "missing ':'"},
		{"two colons", "cluster:read:write", "more than one ':'"},
		{"empty resource", ":read", "empty resource"},
		{"empty action", "cluster:", "empty action"},
		{"only colon", ":", "empty resource"},
		{"slash with empty instance", "app/:deploy", "empty instance after '/'"},
		{"empty resource before instance", "/x:read", "empty resource"},
		{"two slashes", "app/a/b:deploy", "invalid character '/' in instance"},
		{"slash in action", "app:de/ploy", "invalid character '/' in action"},
		{"space", "cluster: read", "whitespace"},
		{"tab", "cluster:\tread", "whitespace"},
		{"trailing newline", "cluster:read\n", "whitespace"},
		{"unicode space", "cluster:\u00a0read", "whitespace"},
		{"replex label with space", "Api Key:read", "whitespace"},
		{"bad character in resource", "clu$ter:read", "invalid character '$' in resource"},
		{"bad character in action", "cluster:re@d", "invalid character '@' in action"},
		{"bad character in instance", "app/pay#ments:read", "invalid character '#' in instance"},
		{"non-ASCII letter", "clüster:read", "invalid character 'ü' in resource"},
		{"kelvin sign", "\u212aey:read", "invalid character '\u212a' in resource"},
		{"invalid UTF-8", "clu\xffster:read", "invalid byte 0xff in resource"},
		{"resource starts with digit", "9lives:read", "resource must start with a letter"},
		{"action starts with dash", "cluster:-read", "action must start with a letter"},
		{"instance starts with dot", "app/.hidden:read", "instance must start with a letter or a digit"},
		{"partial wildcard resource", "clu*:read", "'*' must be the whole resource"},
		{"partial wildcard action", "cluster:re*", "'*' must be the whole action"},
		{"double wildcard", "**:read", "'*' must be the whole resource"},
		{"partial wildcard instance", "app/pay*:read", "'*' must be the whole instance"},
		{"resource too long", strings.Repeat("r", 65) + ":read", "resource longer than 64 bytes"},
		{"action too long", "cluster:" + strings.Repeat("a", 65), "action longer than 64 bytes"},
		{"instance too long", "app/" + strings.Repeat("i", 129) + ":read", "instance longer than 128 bytes"},
		{"whole too long", strings.Repeat("x", 10000), "longer than 258 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := permission.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want error", tt.in, got)
			}
			if !errors.Is(err, permission.ErrInvalid) {
				t.Errorf("Parse(%q) error = %v, want errors.Is ErrInvalid", tt.in, err)
			}
			if !got.IsZero() {
				t.Errorf("Parse(%q) = %#v on error, want zero Permission", tt.in, got)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "permission: invalid permission ") {
				t.Errorf("error %q: want prefix %q", msg, "permission: invalid permission ")
			}
			if !strings.Contains(msg, tt.reason) {
				t.Errorf("error %q: want reason %q", msg, tt.reason)
			}
			if len(msg) > 400 {
				t.Errorf("error message is %d bytes, want at most 400 (input must be cut)", len(msg))
			}
		})
	}
}

func TestParseErrorQuotesInput(t *testing.T) {
	t.Parallel()
	_, err := permission.Parse("Bad Perm")
	if err == nil {
		t.Fatal("Parse(\"Bad Perm\") = nil error, want error")
	}
	if want := `permission: invalid permission "Bad Perm": contains whitespace`; err.Error() != want {
		t.Errorf("error = %q, want %q", err.Error(), want)
	}
}

func TestPermissionString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    permission.Permission
		want string
	}{
		{"zero", permission.Permission{}, ""},
		{"resource wide", permission.Permission{Resource: "cluster", Action: "read"}, "cluster:read"},
		{"instance", permission.Permission{Resource: "app", Instance: "payments", Action: "deploy"}, "app/payments:deploy"},
		{"hand-built wildcard instance", permission.Permission{Resource: "app", Instance: "*", Action: "deploy"}, "app:deploy"},
		{"everything", permission.Permission{Resource: "*", Action: "*"}, "*:*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.String(); got != tt.want {
				t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
			}
		})
	}
}

func TestIsZero(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    permission.Permission
		want bool
	}{
		{permission.Permission{}, true},
		{permission.Permission{Resource: "x"}, false},
		{permission.Permission{Instance: "x"}, false},
		{permission.Permission{Action: "x"}, false},
		{mustParse(t, "*:*"), false},
	}
	for _, tt := range tests {
		if got := tt.p.IsZero(); got != tt.want {
			t.Errorf("%#v.IsZero() = %v, want %v", tt.p, got, tt.want)
		}
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p, q string
		want bool
	}{
		// Exact and resource-wide grants.
		{"cluster:read", "cluster:read", true},
		{"cluster:read", "cluster:write", false},
		{"cluster:read", "billing:read", false},
		{"cluster:read", "cluster/prod:read", true},
		{"app/payments:deploy", "app/payments:deploy", true},
		{"app/payments:deploy", "app/orders:deploy", false},
		{"app/payments:deploy", "app/Payments:deploy", false}, // instances are case-sensitive
		{"app/payments:deploy", "app:deploy", false},          // one instance does not grant all
		{"app/payments:deploy", "app/payments:read", false},
		// Wildcards on the granting side.
		{"*:read", "cluster:read", true},
		{"*:read", "app/payments:read", true},
		{"*:read", "cluster:write", false},
		{"cluster:*", "cluster:write", true},
		{"cluster:*", "cluster/prod:delete", true},
		{"cluster:*", "billing:read", false},
		{"*:*", "app/payments:deploy", true},
		{"*/prod:read", "cluster/prod:read", true},
		{"*/prod:read", "cluster/dev:read", false},
		{"*/prod:read", "cluster:read", false},
		// Wildcards on the requested side need a grant at least as wide.
		{"*:read", "*:read", true},
		{"cluster:read", "*:read", false},
		{"cluster:*", "cluster:*", true},
		{"cluster:read", "cluster:*", false},
		{"*:*", "*:*", true},
		{"*:read", "*:*", false},
		{"cluster:*", "*:*", false},
		{"*:*", "*:read", true},
		{"cluster:*", "cluster:read", true},
		{"*/prod:read", "*:read", false},
		{"*:read", "*/prod:read", true},
	}
	for _, tt := range tests {
		t.Run(tt.p+" allows "+tt.q, func(t *testing.T) {
			t.Parallel()
			p, q := mustParse(t, tt.p), mustParse(t, tt.q)
			if got := p.Allows(q); got != tt.want {
				t.Errorf("Parse(%q).Allows(Parse(%q)) = %v, want %v", tt.p, tt.q, got, tt.want)
			}
		})
	}
}

func TestAllowsHandBuilt(t *testing.T) {
	t.Parallel()
	all := permission.Permission{Resource: "*", Action: "*"}
	tests := []struct {
		name string
		p, q permission.Permission
		want bool
	}{
		{"zero allows nothing", permission.Permission{}, all, false},
		{"zero allows not zero", permission.Permission{}, permission.Permission{}, false},
		{"nothing allows zero", all, permission.Permission{}, false},
		{"empty action allows nothing", permission.Permission{Resource: "*"}, all, false},
		{"empty resource is not allowed", all, permission.Permission{Action: "read"}, false},
		{"wildcard instance grants every instance",
			permission.Permission{Resource: "app", Instance: "*", Action: "deploy"},
			permission.Permission{Resource: "app", Instance: "x", Action: "deploy"}, true},
		{"wildcard instance asked is every instance",
			permission.Permission{Resource: "app", Action: "deploy"},
			permission.Permission{Resource: "app", Instance: "*", Action: "deploy"}, true},
		{"one instance does not grant wildcard instance",
			permission.Permission{Resource: "app", Instance: "x", Action: "deploy"},
			permission.Permission{Resource: "app", Instance: "*", Action: "deploy"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.Allows(tt.q); got != tt.want {
				t.Errorf("%#v.Allows(%#v) = %v, want %v", tt.p, tt.q, got, tt.want)
			}
		})
	}
}

func TestTextRoundTrip(t *testing.T) {
	t.Parallel()
	type doc struct {
		Grant permission.Permission
		Set   permission.Set
	}
	in := doc{
		Grant: mustParse(t, "app/payments:deploy"),
		Set:   permission.Set{mustParse(t, "cluster:read"), mustParse(t, "*:write")},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if want := `{"Grant":"app/payments:deploy","Set":["cluster:read","*:write"]}`; string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	if out.Grant != in.Grant || out.Set.String() != in.Set.String() {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
}

func TestTextErrors(t *testing.T) {
	t.Parallel()
	bad := []permission.Permission{
		{},
		{Resource: "Cluster", Action: "re ad"},
		{Resource: "app/x", Action: "read"},
		{Resource: "a", Action: "b:c"},
	}
	for _, p := range bad {
		if b, err := p.MarshalText(); !errors.Is(err, permission.ErrInvalid) {
			t.Errorf("%#v.MarshalText() = %q, %v; want ErrInvalid", p, b, err)
		}
	}
	p := mustParse(t, "cluster:read")
	before := p
	if err := p.UnmarshalText([]byte("cluster read")); !errors.Is(err, permission.ErrInvalid) {
		t.Errorf("UnmarshalText(%q) = %v, want ErrInvalid", "cluster read", err)
	}
	if p != before {
		t.Errorf("after failed UnmarshalText p = %#v, want unchanged %#v", p, before)
	}
	// MarshalText writes the canonical form of a hand-built value.
	b, err := permission.Permission{Resource: "Cluster", Instance: "*", Action: "READ"}.MarshalText()
	if err != nil || string(b) != "cluster:read" {
		t.Errorf("MarshalText of hand-built = %q, %v; want %q, nil", b, err, "cluster:read")
	}
}

func TestMustParse(t *testing.T) {
	t.Parallel()
	if got := permission.MustParse("Cluster/Prod:READ"); got.String() != "cluster/Prod:read" {
		t.Errorf("MustParse = %v, want cluster/Prod:read", got)
	}
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, permission.ErrInvalid) {
			t.Errorf("MustParse(invalid) panicked with %v, want an error wrapping ErrInvalid", r)
		}
	}()
	permission.MustParse("no colon")
}

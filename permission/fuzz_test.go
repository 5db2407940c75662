package permission_test

import (
	"testing"

	"github.com/keygate/keygate/permission"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"cluster:read", "app/payments:deploy", "app/*:deploy", "*:*", "*:read", "*/prod:read",
		"Cluster:READ", "api_key:write", "Helm_App/Grafana-01:Read", "saml-integration.v2:x",
		"", ":", "cluster", "a:b:c", "app/:x", "/x:y", "a/b/c:d", "clu*:read", "a b:c",
		"\u212aey:read", "clu\xffster:read", "x/*a:y", "9a:b", "a:-b", "a/.b:c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := permission.Parse(s)
		if err != nil {
			if !p.IsZero() {
				t.Fatalf("Parse(%q) = %#v with error %v, want zero", s, p, err)
			}
			return
		}
		if p.IsZero() {
			t.Fatalf("Parse(%q) = zero Permission without error", s)
		}
		str := p.String()
		q, err := permission.Parse(str)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, str, err)
		}
		if q != p {
			t.Fatalf("Parse(%q) = %#v, Parse(String()=%q) = %#v; want equal", s, p, str, q)
		}
		if q.String() != str {
			t.Fatalf("String not canonical: %q then %q", str, q.String())
		}
		if p.Instance == "*" {
			t.Fatalf("Parse(%q).Instance = \"*\", want \"\"", s)
		}
		if !p.Allows(p) {
			t.Fatalf("Parse(%q) = %#v does not allow itself", s, p)
		}
		if !(permission.Set{p}).Covers(permission.Set{p}) {
			t.Fatalf("{%v} does not cover itself", p)
		}
		b, err := p.MarshalText()
		if err != nil || string(b) != str {
			t.Fatalf("MarshalText(%#v) = %q, %v; want %q", p, b, err, str)
		}
	})
}

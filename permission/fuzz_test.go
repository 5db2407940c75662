package permission_test

import (
	"cmp"
	"errors"
	"slices"
	"strings"
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

// FuzzParseSet parses a newline-separated list with ParseSet: it fails
// exactly when Parse fails on an element, with that element's error;
// otherwise it holds exactly the parsed elements, once each, in strict
// canonical order, without spare capacity, and its String parses back to
// the same set, as documented.
func FuzzParseSet(f *testing.F) {
	for _, s := range []string{
		"", "cluster:read", "cluster:read\ncluster:read", "b:x\na:y\na/i:y\na:x",
		"app/*:deploy\napp:deploy", "*:*\ncluster:read", "Cluster:READ\ncluster:read",
		"cluster:read\n", "\ncluster:read", "cluster:read\nbad\n:", "a/B:c\na/b:c",
		"x:y\n" + strings.Repeat("a", 65) + ":b", "z:z\ny:y\nx:x\nw:w\nv:v\nu:u",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		var ss []string
		if list != "" {
			ss = strings.Split(list, "\n")
		}
		set, err := permission.ParseSet(ss...)
		var parsed permission.Set
		var firstErr error
		for _, s := range ss {
			p, err := permission.Parse(s)
			if err != nil {
				firstErr = err
				break
			}
			parsed = append(parsed, p)
		}
		if firstErr != nil {
			if err == nil || !errors.Is(err, permission.ErrInvalid) || err.Error() != firstErr.Error() || set != nil {
				t.Fatalf("ParseSet(%q) = %v, %v; want nil and the first element's error %v", ss, set, err, firstErr)
			}
			return
		}
		if err != nil || set == nil {
			t.Fatalf("ParseSet(%q) = %v, %v; want a set", ss, set, err)
		}
		if cap(set) != len(set) {
			t.Fatalf("ParseSet(%q) has spare capacity %d > %d", ss, cap(set), len(set))
		}
		for i := 1; i < len(set); i++ {
			a, b := set[i-1], set[i]
			if cmp.Or(strings.Compare(a.Resource, b.Resource), strings.Compare(a.Instance, b.Instance), strings.Compare(a.Action, b.Action)) >= 0 {
				t.Fatalf("ParseSet(%q) = %v: %v and %v are not in strict canonical order", ss, set, a, b)
			}
		}
		for _, p := range parsed {
			if !slices.Contains(set, p) {
				t.Fatalf("ParseSet(%q) = %v lacks %v", ss, set, p)
			}
		}
		for _, p := range set {
			if !slices.Contains(parsed, p) {
				t.Fatalf("ParseSet(%q) = %v holds %v, which no element parses to", ss, set, p)
			}
		}
		if !set.Covers(parsed) || !set.Union(set).Covers(set) || len(set.Union(set)) != len(set) {
			t.Fatalf("ParseSet(%q) = %v does not cover its elements or is not its own union", ss, set)
		}
		for _, back := range [][]string{strings.Fields(set.String()), set.Strings()} {
			again, err := permission.ParseSet(back...)
			if err != nil || !slices.Equal(again, set) {
				t.Fatalf("ParseSet(%q) = %v; ParseSet(%q) = %v, %v; want the same set", ss, set, back, again, err)
			}
		}
	})
}

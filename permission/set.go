package permission

import (
	"cmp"
	"slices"
	"strings"
)

// Set is a list of permissions, granted together: it allows whatever any
// of its elements allows. [ParseSet] and [Set.Union] return sets in
// canonical order (by resource, then instance, then action) without exact
// duplicates; a Set built by hand may be in any order and behaves the same.
//
// No method modifies the set, so a Set that nobody writes to is safe for
// concurrent use.
type Set []Permission

// ParseSet parses each string with [Parse] and returns the permissions in
// canonical order with exact duplicates removed. It fails with the first
// error, which wraps [ErrInvalid]. With no arguments it returns an empty
// set. The inverse of [Set.String] is ParseSet(strings.Fields(s)...).
func ParseSet(ss ...string) (Set, error) {
	s := make(Set, 0, len(ss))
	for _, str := range ss {
		p, err := Parse(str)
		if err != nil {
			return nil, err
		}
		s = append(s, p)
	}
	return s.normalize(), nil
}

// Allows reports whether some element of s allows p (see
// [Permission.Allows]). It allocates nothing and is meant for the
// verification of every request.
func (s Set) Allows(p Permission) bool {
	for _, g := range s {
		if g.Allows(p) {
			return true
		}
	}
	return false
}

// Covers reports whether s allows every element of t. Before a holder of s
// grants t to someone else (creates a key, assigns a role), Covers guards
// against privilege escalation: {"cluster:read"} does not cover
// {"*:read"}, and {"app/a:deploy", "app/b:deploy"} does not cover
// {"app:deploy"}. Every set covers the empty set; no set covers a set that
// holds the zero Permission.
func (s Set) Covers(t Set) bool {
	for _, q := range t {
		if !s.Allows(q) {
			return false
		}
	}
	return true
}

// Missing returns the first element of t, in t's order, that s does not
// allow, and true; or the zero Permission and false when s covers t. It
// names what a holder of s lacks to grant t.
func (s Set) Missing(t Set) (Permission, bool) {
	for _, q := range t {
		if !s.Allows(q) {
			return q, true
		}
	}
	return Permission{}, false
}

// Union returns a new set holding the elements of s and t, in canonical
// order without exact duplicates. Permissions that another element makes
// redundant are kept. Neither s nor t is modified.
func (s Set) Union(t Set) Set {
	u := make(Set, 0, len(s)+len(t))
	u = append(u, s...)
	u = append(u, t...)
	return u.normalize()
}

// Strings returns the canonical string of each element, in the set's order.
func (s Set) Strings() []string {
	out := make([]string, len(s))
	for i, p := range s {
		out[i] = p.String()
	}
	return out
}

// String returns the canonical strings of the elements, in the set's
// order, separated by single spaces; the empty set prints as "".
func (s Set) String() string {
	return strings.Join(s.Strings(), " ")
}

// normalize sorts s in place into canonical order, removes exact
// duplicates and returns the result with no spare capacity, so that an
// append by the caller never writes into a shared array. A hand-built
// instance of "*" is first rewritten as "", its canonical form.
func (s Set) normalize() Set {
	for i := range s {
		if s[i].Instance == Wildcard {
			s[i].Instance = ""
		}
	}
	slices.SortFunc(s, compare)
	return slices.Clip(slices.Compact(s))
}

// compare orders permissions by resource, then instance, then action.
func compare(a, b Permission) int {
	return cmp.Or(
		strings.Compare(a.Resource, b.Resource),
		strings.Compare(a.Instance, b.Instance),
		strings.Compare(a.Action, b.Action),
	)
}

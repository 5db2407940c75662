package bench_test

import (
	"testing"

	"github.com/keygate/keygate/bench"
)

// BenchmarkCompare runs every case of [bench.Cases] as a sub-benchmark.
func BenchmarkCompare(b *testing.B) {
	for _, c := range bench.Cases() {
		b.Run(c.ID, c.Run)
	}
}

// TestCases checks the case list that benchtable relies on: unique IDs,
// titles and bodies, and the baseline first. (Each case checks its own
// fixture by running its operation once, untimed, before measuring.)
func TestCases(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range bench.Cases() {
		if seen[c.ID] {
			t.Errorf("duplicate case ID %q", c.ID)
		}
		seen[c.ID] = true
		if c.Title == "" || c.Run == nil {
			t.Errorf("case %q has no title or no Run", c.ID)
		}
	}
	if got := bench.Cases()[0].ID; got != "KeygateCached" {
		t.Errorf("first case = %q, want KeygateCached (the baseline)", got)
	}
}

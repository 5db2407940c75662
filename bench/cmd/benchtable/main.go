// Command benchtable runs every case of package bench with
// testing.Benchmark and prints a Markdown table: ns/op, B/op, allocs/op,
// and how many times slower than keygate's cached Verify+Authorize each
// case is (serial cases against the serial baseline, parallel against the
// parallel one), followed by the performance targets and whether this run
// meets them.
//
// Usage:
//
//	go run ./cmd/benchtable [-run regexp] [-count n] [-test.benchtime 1s]
//
// With -count n each case runs n times and the run with the median ns/op
// is shown, which steadies figures on a busy machine. To see the figures
// of a machine without SHA instructions on one that has them, run with
// GODEBUG=cpu.sha=off,cpu.avx2=off (Go then uses its generic SHA-256).
package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/bench"
)

func main() {
	testing.Init() // registers -test.benchtime, which testing.Benchmark reads
	run := flag.String("run", "", "run only the cases whose ID matches this regular expression (the baselines always run)")
	count := flag.Int("count", 1, "run each case this many times and show the median")
	flag.Parse()
	if err := table(os.Stdout, *run, max(*count, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// result is one measured case.
type result struct {
	bench.Case
	r testing.BenchmarkResult
}

func (r result) nsPerOp() float64 {
	if r.r.N == 0 {
		return 0
	}
	return float64(r.r.T.Nanoseconds()) / float64(r.r.N)
}

func table(w io.Writer, pattern string, count int) error {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return err
	}
	var results []result
	baseline := map[bool]float64{} // by Parallel
	for _, c := range bench.Cases() {
		isBaseline := c.ID == "KeygateCached" || c.ID == "KeygateCachedParallel"
		if !isBaseline && !re.MatchString(c.ID) {
			continue
		}
		fmt.Fprintf(os.Stderr, "running %s...\n", c.ID)
		runs := make([]result, count)
		for i := range runs {
			runs[i] = result{Case: c, r: testing.Benchmark(c.Run)}
			if runs[i].r.N == 0 {
				return fmt.Errorf("case %s failed", c.ID)
			}
		}
		slices.SortFunc(runs, func(a, b result) int { return cmp.Compare(a.nsPerOp(), b.nsPerOp()) })
		r := runs[count/2]
		if isBaseline {
			baseline[c.Parallel] = r.nsPerOp()
		}
		results = append(results, r)
	}

	fmt.Fprintf(w, "%s, GOMAXPROCS=%d, %s %s/%s, GODEBUG=%q, median of %d\n\n",
		cpuInfo(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, os.Getenv("GODEBUG"), count)
	fmt.Fprintln(w, "| Case | Mode | ns/op | B/op | allocs/op | × keygate cached |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|")
	byID := map[string]result{}
	for _, r := range results {
		byID[r.ID] = r
		mode := "serial"
		if r.Parallel {
			mode = "parallel"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s |\n", r.Title, mode, ns(r.nsPerOp()),
			r.r.AllocedBytesPerOp(), r.r.AllocsPerOp(), ratio(r.nsPerOp(), baseline[r.Parallel]))
	}
	if _, ok := byID["KeygateMiddleware"]; ok {
		fmt.Fprintln(w, "\n¹ A whole request through httptest.NewRecorder, a bare handler included.")
	}

	fmt.Fprintln(w, "\nTargets (serial):")
	base := byID["KeygateCached"]
	check(w, fmt.Sprintf("cached Verify+Authorize under 600 ns with at most 1 alloc: %s, %d allocs", ns(base.nsPerOp()), base.r.AllocsPerOp()),
		base.nsPerOp() < 600 && base.r.AllocsPerOp() <= 1)
	for _, t := range []struct {
		id  string
		min float64
	}{{"JWTHS256", 20}, {"Casbin", 50}} {
		if r, ok := byID[t.id]; ok {
			x := r.nsPerOp() / base.nsPerOp()
			check(w, fmt.Sprintf("at least %.0f× faster than %s: %.0f×", t.min, r.Title, x), x >= t.min)
		}
	}
	return nil
}

// cpuInfo describes the CPU from /proc/cpuinfo, where there is one: its
// model and whether it has the SHA extensions.
func cpuInfo() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "CPU unknown"
	}
	model, sha := "CPU unknown", "without SHA-NI"
	for line := range strings.Lines(string(data)) {
		name, value, ok := strings.Cut(line, ":")
		switch name = strings.TrimSpace(name); {
		case !ok:
		case name == "model name" && model == "CPU unknown":
			model = strings.TrimSpace(value)
		case name == "flags" && slices.Contains(strings.Fields(value), "sha_ni"):
			sha = "with SHA-NI"
		}
	}
	return model + " " + sha
}

func check(w io.Writer, what string, ok bool) {
	mark := "met"
	if !ok {
		mark = "NOT MET"
	}
	fmt.Fprintf(w, "- %s — %s\n", what, mark)
}

// ns formats nanoseconds with a unit that keeps 3 significant digits.
func ns(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1f ms", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1f µs", v/1e3)
	}
	return fmt.Sprintf("%.0f ns", v)
}

func ratio(v, base float64) string {
	if base == 0 {
		return "–"
	}
	x := v / base
	if x < 10 {
		return fmt.Sprintf("%.1f×", x)
	}
	return fmt.Sprintf("%.0f×", x)
}

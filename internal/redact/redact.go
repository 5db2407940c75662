// Package redact decides whether text that came from a request or a
// configuration may be repeated in an error message or a response: never
// a token, nor a fragment of one long enough to matter.
package redact

import (
	"strconv"
)

// MaxQuoted is the longest text Quote repeats.
const MaxQuoted = 64

// maxRun is the longest run of letters and digits Quote repeats: a
// token's secret is 43 of them, and a fragment of 15 leaves more than 160
// bits unknown.
const maxRun = 15

// Safe reports whether s may be repeated: at most MaxQuoted bytes, with
// no run of more than 15 ASCII letters and digits (so no token, nor a
// fragment of one worth having, whatever its prefix).
func Safe(s string) bool {
	return len(s) <= MaxQuoted && shortRuns(s)
}

// shortRuns reports whether s has no run of more than maxRun ASCII
// letters and digits.
func shortRuns(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			if run++; run > maxRun {
				return false
			}
		} else {
			run = 0
		}
	}
	return true
}

// Quote returns s quoted (strconv.Quote) when it is Safe and its quoted
// form holds no long run either (an escape such as \xa3 adds letters and
// digits), and otherwise a placeholder that says only how long it is, such
// as "(a 52-byte value)".
func Quote(s string) string {
	if Safe(s) {
		if q := strconv.Quote(s); shortRuns(q) {
			return q
		}
	}
	return "(a " + strconv.Itoa(len(s)) + "-byte value)"
}

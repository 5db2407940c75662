package apicmd_test

import (
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
)

// FuzzParseNamedRate: ParseNamedRate never panics, and what it accepts is
// a rate limit the API accepts the name of, with a positive rate.
func FuzzParseNamedRate(f *testing.F) {
	for _, s := range []string{"requests=100/1s", "tokens=5/h", "a.b-c_d=1/30d", "=1/1s", "R=1/1s", "r=0/1s", "r=1/0s", "r", "r=", "r=1/", strings.Repeat("r", 33) + "=1/1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := apicmd.ParseNamedRate(s)
		if err != nil {
			return
		}
		if r.Name == "" || len(r.Name) > keygate.MaxRateLimitName || strings.ToLower(r.Name) != r.Name || r.Requests < 1 || r.Window <= 0 || r.OnDemand {
			t.Fatalf("ParseNamedRate(%q) = %+v", s, r)
		}
	})
}

// FuzzParseRefill: ParseRefill never panics, and what it accepts is a
// refill the API accepts.
func FuzzParseRefill(f *testing.F) {
	for _, s := range []string{"1000/day", "1000/month", "1000/month:31", "1/month:0", "1/month:32", "1/month:01", "0/day", "-1/day", "1/week", "1000000000000001/day", "x/day", "/day", "1/", "1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := apicmd.ParseRefill(s)
		if err != nil {
			return
		}
		ok := r.Amount >= 1 && r.Amount <= keygate.MaxCredits &&
			(r.Every == "day" && r.Day == 0 || r.Every == "month" && r.Day >= 1 && r.Day <= 31)
		if !ok {
			t.Fatalf("ParseRefill(%q) = %+v", s, r)
		}
	})
}

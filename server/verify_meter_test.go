package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
)

// TestVerifyMetering: POST /keys/verify takes the cost asked from the
// key's limits and balances, applies the on-demand limits named, and
// reports what is left of each.
func TestVerifyMetering(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	ctx := t.Context()
	verifier := f.token(t, keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}})
	ten := int64(10)
	uses := f.token(t, keygate.CreateRequest{Name: "uses", Scopes: []string{"cluster:read"}, Limits: keygate.Limits{Uses: &ten}})
	exports := keygate.RateLimit{Name: "exports", Requests: 2, Window: time.Hour, OnDemand: true}
	named := f.token(t, keygate.CreateRequest{Name: "named", Scopes: []string{"cluster:read"},
		Limits: keygate.Limits{RateLimits: []keygate.RateLimit{exports}}})
	id, err := f.m.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{ExternalID: "acme",
		Limits: keygate.IdentityLimits{
			RateLimits: []keygate.RateLimit{{Name: "tokens", Requests: 100, Window: time.Hour, OnDemand: true}},
			Credits:    &keygate.Credits{Remaining: 50, Refill: &keygate.Refill{Amount: 50, Every: "day"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	member := f.token(t, keygate.CreateRequest{Name: "member", Scopes: []string{"cluster:read"}, IdentityID: id.ID})
	plain := f.token(t, keygate.CreateRequest{Name: "plain", Scopes: []string{"cluster:read"}})

	// The cost is taken from the key's uses.
	_, v := verify(t, f, verifier, `{"token":"`+uses+`","cost":3}`)
	if !v.Valid || v.Report == nil || v.Report.Cost != 3 || v.Report.Uses == nil || v.Report.Uses.Remaining != 7 || !v.Report.Uses.NextRefill.IsZero() {
		t.Fatalf("uses 10, cost 3: valid=%v report %+v, want valid with 7 uses left, no refill", v.Valid, v.Report)
	}
	if got := *v.Key.Limits.UsesRemaining; got != 7 {
		t.Errorf("uses 10, cost 3: key's uses_remaining %d, want 7", got)
	}
	if _, v = verify(t, f, verifier, `{"token":"`+uses+`","cost":8}`); v.Valid || v.Code != middleware.CodeUsageExhausted ||
		v.Report == nil || v.Report.Uses == nil || v.Report.Uses.Remaining != 7 {
		t.Errorf("7 uses left, cost 8: valid=%v code %q report %+v, want usage_exhausted with 7 left", v.Valid, v.Code, v.Report)
	}

	// An on-demand limit applies only when named, and its refusal names it.
	if _, v = verify(t, f, verifier, `{"token":"`+named+`"}`); !v.Valid || v.Report != nil {
		t.Errorf("on-demand limit not named: valid=%v report %+v, want valid, no report", v.Valid, v.Report)
	}
	_, v = verify(t, f, verifier, `{"token":"`+named+`","limits":["exports","unheard-of"]}`)
	if !v.Valid || v.Report == nil || len(v.Report.Limits) != 1 {
		t.Fatalf("exports named: valid=%v report %+v, want one limit", v.Valid, v.Report)
	}
	want := server.LimitReport{Name: "exports", Requests: 2, Window: server.Duration(time.Hour), OnDemand: true, Allowed: true, Remaining: 1}
	if got := v.Report.Limits[0]; got.Reset <= 0 {
		t.Errorf("exports: reset %v, want some", got.Reset)
	} else if got.Reset = 0; got != want {
		t.Errorf("exports: %+v, want %+v", got, want)
	}
	_, v = verify(t, f, verifier, `{"token":"`+named+`","limits":["exports"],"cost":2}`)
	if v.Valid || v.Code != middleware.CodeRateLimited || v.RetryAfter < 1 {
		t.Fatalf("exports over its limit: valid=%v code %q retry_after %d, want rate_limited", v.Valid, v.Code, v.RetryAfter)
	}
	if rl := v.RateLimit; rl == nil || rl.Name != "exports" || rl.Identity || rl.Requests != 2 || rl.Remaining != 0 {
		t.Errorf("exports over its limit: rate_limit %+v, want exports, the key's, 2 requests, none left", rl)
	}
	if r := v.Report; r == nil || r.Cost != 2 || len(r.Limits) != 1 || r.Limits[0].Allowed || r.Limits[0].RetryAfter <= 0 {
		t.Errorf("exports over its limit: report %+v, want the refusing limit with a retry_after", r)
	}

	// An identity's credits and on-demand limit.
	for i, left := range []int64{46, 42} {
		_, v = verify(t, f, verifier, `{"token":"`+member+`","cost":4,"limits":["tokens"]}`)
		r := v.Report
		if !v.Valid || r == nil || r.Credits == nil || r.Credits.Remaining != left || r.Credits.NextRefill.IsZero() || r.Uses != nil {
			t.Fatalf("identity's credits, verification %d: valid=%v report %+v, want %d credits left with a next refill", i+1, v.Valid, r, left)
		}
		if len(r.Limits) != 1 || r.Limits[0].Name != "tokens" || !r.Limits[0].Identity || r.Limits[0].Remaining != 100-4*(i+1) {
			t.Errorf("identity's limit, verification %d: %+v, want tokens, the identity's, %d left", i+1, r.Limits, 100-4*(i+1))
		}
	}
	_, v = verify(t, f, verifier, `{"token":"`+member+`","cost":50}`)
	if v.Valid || v.Code != middleware.CodeUsageExhausted || v.Report == nil || v.Report.Credits == nil || v.Report.Credits.Remaining != 42 {
		t.Errorf("42 credits, cost 50: valid=%v code %q report %+v, want usage_exhausted with 42 left", v.Valid, v.Code, v.Report)
	}

	// Bad costs and limits are refused before anything is verified.
	many := strings.Repeat(`"a",`, server.MaxVerifyLimits) + `"a"`
	for _, tt := range []struct {
		name, more, code string
	}{
		{"negative cost", `,"cost":-1`, server.CodeInvalidField},
		{"cost too high", fmt.Sprintf(`,"cost":%d`, keygate.MaxCost+1), server.CodeInvalidField},
		{"fractional cost", `,"cost":1.5`, server.CodeInvalidJSON},
		{"cost as a string", `,"cost":"3"`, server.CodeInvalidJSON},
		{"limits not an array", `,"limits":"exports"`, server.CodeInvalidJSON},
		{"a limit not a string", `,"limits":[1]`, server.CodeInvalidJSON},
		{"a bad limit name", `,"limits":["exports","Exports"]`, server.CodeInvalidField},
		{"an empty limit name", `,"limits":[""]`, server.CodeInvalidField},
		{"a limit name too long", `,"limits":["` + strings.Repeat("a", keygate.MaxRateLimitName+1) + `"]`, server.CodeInvalidField},
		{"too many limits", `,"limits":[` + many + `]`, server.CodeInvalidField},
	} {
		w := f.do(t, request{method: "POST", path: "/keys/verify", token: verifier, contentType: "application/json",
			body: `{"token":"` + uses + `"` + tt.more + `}`})
		p := problem(t, w)
		if w.Code != http.StatusBadRequest || p.Code != tt.code || p.Type != "about:blank" {
			t.Errorf("%s: %d %q %q (%s), want 400 about:blank %q", tt.name, w.Code, p.Type, p.Code, p.Detail, tt.code)
		}
		if strings.Contains(p.Detail, "Exports") {
			t.Errorf("%s: the detail %q quotes the request", tt.name, p.Detail)
		}
	}
	if _, v = verify(t, f, verifier, `{"token":"`+uses+`","cost":1}`); v.Report == nil || v.Report.Uses.Remaining != 6 {
		t.Errorf("after the refused requests: report %+v, want 6 uses left (none taken by them)", v.Report)
	}
	many = strings.TrimSuffix(strings.Repeat(`"a",`, server.MaxVerifyLimits), ",")
	if _, v = verify(t, f, verifier, `{"token":"`+plain+`","cost":`+fmt.Sprint(keygate.MaxCost)+`,"limits":[`+many+`]}`); !v.Valid || v.Report != nil {
		t.Errorf("the most limits and the highest cost, for a key without limits: valid=%v report %+v, want valid, no report", v.Valid, v.Report)
	}
}

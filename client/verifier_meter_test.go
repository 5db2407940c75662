package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/store"
)

// meteredVerifier is what a Manager and a Verifier both are: middleware
// can meter through either.
type meteredVerifier interface {
	VerifyWith(ctx context.Context, token string, opts keygate.VerifyOptions) (*keygate.Key, keygate.Report, error)
}

var (
	_ meteredVerifier = (*keygate.Manager)(nil)
	_ meteredVerifier = (*client.Verifier)(nil)
)

// meteredTokens creates a key with uses, a rate limit and an on-demand
// named one, and a key of a new identity with credits and an on-demand
// limit, named after suffix, and returns their tokens.
func meteredTokens(t *testing.T, e *env, suffix string) (limited, member string) {
	t.Helper()
	ten := int64(10)
	limited = e.token(t, keygate.CreateRequest{Name: "limited-" + suffix, Scopes: []string{"cluster:read"}, Limits: keygate.Limits{
		Uses:       &ten,
		Rate:       keygate.RateLimit{Requests: 100, Window: time.Minute},
		RateLimits: []keygate.RateLimit{{Name: "exports", Requests: 2, Window: time.Hour, OnDemand: true}},
	}})
	id, err := e.m.CreateIdentity(ctx(t), keygate.System(), keygate.CreateIdentityRequest{ExternalID: "acme-" + suffix, Limits: keygate.IdentityLimits{
		RateLimits: []keygate.RateLimit{{Name: "tokens", Requests: 100, Window: time.Hour, OnDemand: true}},
		Credits:    &keygate.Credits{Remaining: 50, Refill: &keygate.Refill{Amount: 50, Every: store.PeriodDay}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	member = e.token(t, keygate.CreateRequest{Name: "member-" + suffix, Scopes: []string{"cluster:read"}, IdentityID: id.ID})
	return limited, member
}

// TestVerifierVerifyWithAsLocal: a Verifier's VerifyWith takes and reports
// exactly what a local Manager's does, verification after verification,
// refusals included: twin keys, one verified remotely, the other locally.
func TestVerifierVerifyWithAsLocal(t *testing.T) {
	t.Parallel()
	e := setup(t)
	remote, _ := verifierFor(t, e, client.VerifierConfig{Now: time.Now})
	rLimited, rMember := meteredTokens(t, e, "remote")
	lLimited, lMember := meteredTokens(t, e, "local")
	for i, step := range []struct {
		member bool
		opts   keygate.VerifyOptions
	}{
		{false, keygate.VerifyOptions{Cost: 3}},
		{false, keygate.VerifyOptions{Cost: 2, Limits: []string{"exports", "tokens"}}},
		{false, keygate.VerifyOptions{Limits: []string{"exports"}}}, // refused by exports
		{false, keygate.VerifyOptions{Cost: 6}},                     // 5 uses left
		{false, keygate.VerifyOptions{}},
		{true, keygate.VerifyOptions{Cost: 4, Limits: []string{"tokens"}}},
		{true, keygate.VerifyOptions{Cost: 1}},
		{true, keygate.VerifyOptions{Cost: 97, Limits: []string{"tokens"}}}, // refused by tokens
		{true, keygate.VerifyOptions{Cost: 46}},                             // 45 credits left
		{true, keygate.VerifyOptions{}},
	} {
		rTok, lTok := rLimited, lLimited
		if step.member {
			rTok, lTok = rMember, lMember
		}
		what := fmt.Sprintf("step %d (%+v)", i+1, step.opts)
		rk, rRep, rErr := remote.VerifyWith(ctx(t), rTok, step.opts)
		lk, lRep, lErr := e.m.VerifyWith(ctx(t), lTok, step.opts)
		if (rk == nil) != (lk == nil) || (rErr == nil) != (lErr == nil) {
			t.Fatalf("%s: remote %v %v, local %v %v", what, rk != nil, rErr, lk != nil, lErr)
		}
		for _, target := range []error{keygate.ErrRateLimited, keygate.ErrUsageExhausted} {
			if errors.Is(rErr, target) != errors.Is(lErr, target) {
				t.Errorf("%s: remote error %v, local %v", what, rErr, lErr)
			}
		}
		var rRL, lRL *keygate.RateLimitError
		if errors.As(lErr, &lRL) {
			if !errors.As(rErr, &rRL) {
				t.Fatalf("%s: remote error %v, want a *RateLimitError", what, rErr)
			}
			if rRL.Name != lRL.Name || rRL.Identity != lRL.Identity || rRL.Limit != lRL.Limit {
				t.Errorf("%s: remote refusal %q identity=%v limit %+v, local %q identity=%v limit %+v",
					what, rRL.Name, rRL.Identity, rRL.Limit, lRL.Name, lRL.Identity, lRL.Limit)
			}
		}
		// Reset and RetryAfter are durations from two moments apart.
		for _, rep := range []*keygate.Report{&rRep, &lRep} {
			for j := range rep.Limits {
				l := &rep.Limits[j]
				if l.Reset < 0 || l.Reset > l.Limit.Window || l.RetryAfter < 0 || l.RetryAfter > l.Limit.Window {
					t.Errorf("%s: limit %q: reset %v, retry after %v, want within its window", what, l.Limit.Name, l.Reset, l.RetryAfter)
				}
				l.Reset, l.RetryAfter = l.Reset.Round(time.Minute), l.RetryAfter.Round(time.Minute)
			}
		}
		if !reflect.DeepEqual(rRep, lRep) {
			t.Errorf("%s: remote report %+v, local %+v", what, rRep, lRep)
		}
		if rRep.Cost != max(step.opts.Cost, 1) {
			t.Errorf("%s: report's cost %d, want %d", what, rRep.Cost, max(step.opts.Cost, 1))
		}
	}
}

// TestVerifierCacheMeters: the cache never hides metering. A key whose
// identity has credits is never cached (each verification spends); a
// verification with a cost or limits always reaches the server and fills
// no cache; a key with only named limits is not cached either.
func TestVerifierCacheMeters(t *testing.T) {
	t.Parallel()
	e := setup(t)
	v, _ := verifierFor(t, e, client.VerifierConfig{})
	_, member := meteredTokens(t, e, "cache")
	plain := e.token(t, keygate.CreateRequest{Name: "plain", Scopes: []string{"cluster:read"}})
	onDemand := e.token(t, keygate.CreateRequest{Name: "on-demand", Scopes: []string{"cluster:read"},
		Limits: keygate.Limits{RateLimits: []keygate.RateLimit{{Name: "exports", Requests: 5, Window: time.Hour, OnDemand: true}}}})
	calls := func(t *testing.T, want int64, what string, f func() error) {
		t.Helper()
		before := e.verifyCalls.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := e.verifyCalls.Load() - before; got != want {
			t.Errorf("%s: %d calls to the server, want %d", what, got, want)
		}
	}

	// Two plain verifications of an identity-credits key both spend.
	for i, left := range []int64{49, 48} {
		calls(t, 1, fmt.Sprintf("identity-credits key, verification %d", i+1), func() error {
			_, rep, err := v.VerifyWith(ctx(t), member, keygate.VerifyOptions{})
			if err == nil && (rep.Credits == nil || rep.Credits.Remaining != left) {
				t.Errorf("credits %+v, want %d left", rep.Credits, left)
			}
			return err
		})
	}
	calls(t, 1, "identity-credits key through VerifyFrom", func() error {
		_, err := v.VerifyFrom(ctx(t), member, netip.Addr{})
		return err
	})

	// A plain key is cached, and answered with an empty report of cost 1.
	calls(t, 1, "plain key, first", func() error { _, err := v.VerifyFrom(ctx(t), plain, netip.Addr{}); return err })
	calls(t, 0, "plain key, cached", func() error {
		_, rep, err := v.VerifyWith(ctx(t), plain, keygate.VerifyOptions{Cost: 1})
		if !reflect.DeepEqual(rep, keygate.Report{Cost: 1}) {
			t.Errorf("cached verdict's report %+v, want cost 1 and nothing else", rep)
		}
		return err
	})
	// With a cost or limits, it reaches the server every time.
	for i, opts := range []keygate.VerifyOptions{{Cost: 2}, {Cost: 2}, {Limits: []string{"exports"}}, {Limits: []string{"exports"}}} {
		calls(t, 1, fmt.Sprintf("plain key with %+v, %d", opts, i), func() error {
			_, rep, err := v.VerifyWith(ctx(t), plain, opts)
			if rep.Cost != max(opts.Cost, 1) {
				t.Errorf("report's cost %d, want %d", rep.Cost, max(opts.Cost, 1))
			}
			return err
		})
	}
	// A key with named limits, even on-demand ones, is never cached, and
	// its named limit counts every remote verification naming it.
	for i := range 3 {
		calls(t, 1, fmt.Sprintf("key with an on-demand limit, %d", i+1), func() error { _, err := v.VerifyFrom(ctx(t), onDemand, netip.Addr{}); return err })
	}
	for i := range 6 {
		_, rep, err := v.VerifyWith(ctx(t), onDemand, keygate.VerifyOptions{Limits: []string{"exports"}})
		var rl *keygate.RateLimitError
		switch {
		case i < 5 && (err != nil || len(rep.Limits) != 1 || rep.Limits[0].Remaining != 4-i):
			t.Errorf("exports, verification %d: %v, report %+v, want %d left", i+1, err, rep, 4-i)
		case i == 5 && (!errors.As(err, &rl) || rl.Name != "exports" || rl.Identity || rl.Limit.Name != "exports" || rl.Limit.Requests != 5):
			t.Errorf("exports, verification 6: %v (%+v), want refused by the key's exports", err, rl)
		}
	}
}

// TestVerifierVerifyWithBadOptions: options the server refuses are a
// request error, as with a Manager, never an outage.
func TestVerifierVerifyWithBadOptions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	v, _ := verifierFor(t, e, client.VerifierConfig{})
	plain := e.token(t, keygate.CreateRequest{Name: "plain", Scopes: []string{"cluster:read"}})
	for _, opts := range []keygate.VerifyOptions{
		{Cost: -1}, {Cost: keygate.MaxCost + 1}, {Limits: []string{"Exports"}}, {Limits: []string{""}},
		{Limits: strings.Split(strings.Repeat("a ", 33), " ")[:33]},
	} {
		_, _, remoteErr := v.VerifyWith(ctx(t), plain, opts)
		_, _, localErr := e.m.VerifyWith(ctx(t), plain, opts)
		for _, target := range []error{keygate.ErrInvalidRequest, keygate.ErrInvalidField} {
			if !errors.Is(remoteErr, target) || !errors.Is(localErr, target) {
				t.Errorf("%+v: remote %v, local %v, want both %v", opts, remoteErr, localErr, target)
			}
		}
		if errors.Is(remoteErr, keygate.ErrUnavailable) {
			t.Errorf("%+v: remote %v, an outage", opts, remoteErr)
		}
	}
}

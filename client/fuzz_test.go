package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/server"
)

// sentinels are the errors an ErrorResponse may stand for.
var sentinels = []error{
	keygate.ErrUnavailable, keygate.ErrForbidden, keygate.ErrNotFound, keygate.ErrConflict, keygate.ErrRevoked,
	keygate.ErrInvalidRequest, keygate.ErrDuplicateName, keygate.ErrInvalidExpiry, keygate.ErrInvalidField,
	keygate.ErrMalformed, keygate.ErrInvalid, keygate.ErrExpired, keygate.ErrAddressDenied, keygate.ErrRateLimited,
	keygate.ErrUsageExhausted, middleware.ErrNoCredential,
}

// FuzzCheckResponse gives CheckResponse responses of any status, body and
// Retry-After: nil for exactly the 2xx; otherwise an *ErrorResponse of
// that response whose problem is the body's when it is a JSON problem
// (else empty), filled with the status and status text, a Retry-After
// never negative, errors.Is true for exactly the errors its code stands
// for (and ErrUnavailable for a 503 without a code), and an Error that
// never shows the URL's query.
func FuzzCheckResponse(f *testing.F) {
	for _, s := range []struct {
		status     uint16
		body       string
		retryAfter string
	}{
		{200, `{}`, ""}, {204, ``, ""}, {299, `x`, ""}, {300, ``, ""},
		{400, `{"type":"about:blank","title":"Bad Request","status":400,"detail":"d","code":"invalid_field"}`, ""},
		{403, `{"status":403,"code":"forbidden","reason":"permission","permissions":["apikey:manage"]}`, ""},
		{409, `{"status":409,"code":"duplicate_name"}`, ""}, {404, `{"code":"no_route"}`, ""},
		{429, `{"status":429,"code":"rate_limited"}`, "3"}, {429, `{"code":"usage_exhausted"}`, "-1"},
		{503, ``, "120"}, {503, `<html>Service Unavailable</html>`, "Wed, 21 Oct 2015 07:28:00 GMT"},
		{503, `{"status":200}`, ""}, {503, `{"status":"503"}`, ""}, {502, `{"code":"unavailable"}`, ""},
		{500, `{"code":"internal","latest_expiry":"soon"}`, ""}, {401, `null`, ""}, {401, `[]`, ""},
		{418, `{"title":"","status":0}`, "99999999999999999999"}, {599, `{"code":"x"}`, "9223372037"},
		{999, `{"status":-1}`, "1e3"}, {100, `{}`, " 5"},
	} {
		f.Add(s.status, []byte(s.body), s.retryAfter)
	}
	req, err := http.NewRequest(http.MethodGet, "https://keys.example.com/api/v1/keys?owner=secret-owner&after=x", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status uint16, body []byte, retryAfter string) {
		code := int(status)
		if code < 100 || code > 999 {
			code = 100 + code%900
		}
		r := &http.Response{
			StatusCode: code,
			Header:     http.Header{"Retry-After": {retryAfter}},
			Body:       io.NopCloser(bytes.NewReader(body)),
			Request:    req,
		}
		err := client.CheckResponse(r)
		if (err == nil) != (code >= 200 && code <= 299) {
			t.Fatalf("CheckResponse(%d) = %v", code, err)
		}
		if err == nil {
			return
		}
		var er *client.ErrorResponse
		if !errors.As(err, &er) || er.Response != r {
			t.Fatalf("CheckResponse(%d) = %T, want an *ErrorResponse of the response", code, err)
		}
		var want middleware.Problem
		if len(body) == 0 || json.Unmarshal(body, &want) != nil {
			want = middleware.Problem{}
		}
		if want.Status == 0 {
			want.Status = code
		}
		if want.Title == "" {
			want.Title = http.StatusText(code)
		}
		got := er.Problem
		got.RetryAfter = 0
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		if !bytes.Equal(gotJSON, wantJSON) || got.Err != nil {
			t.Fatalf("CheckResponse(%d, %q): problem %s, want %s", code, body, gotJSON, wantJSON)
		}
		if ra := er.Problem.RetryAfter; ra < 0 {
			t.Fatalf("Retry-After %q: RetryAfter %v is negative", retryAfter, ra)
		} else if n, err := strconv.ParseInt(retryAfter, 10, 64); err == nil && n >= 0 && n < 1e9 && ra != time.Duration(n)*time.Second {
			t.Fatalf("Retry-After %q: RetryAfter %v", retryAfter, ra)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "client: GET https://keys.example.com/api/v1/keys: ") || strings.Contains(msg, "secret-owner") {
			t.Fatalf("Error() = %q, want the method and URL without the query", msg)
		}
		stands := server.ErrorsFor(got.Code)
		for _, target := range sentinels {
			want := slices.Contains(stands, target) ||
				target == keygate.ErrUnavailable && got.Code == "" && code == http.StatusServiceUnavailable
			if errors.Is(err, target) != want {
				t.Fatalf("%d %s: errors.Is(err, %v) = %v, want %v", code, body, target, !want, want)
			}
		}
	})
}

// verifyServer is a token service that answers every verification with
// the status and body of the current fuzz input.
type verifyServer struct {
	mu     sync.Mutex
	status int
	body   []byte
}

func (s *verifyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	status, body := s.status, s.body
	s.mu.Unlock()
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// decodeVerdict decodes a verify response's body as the one JSON value it
// must be, or reports false.
func decodeVerdict(body []byte) (*server.VerifyResponse, bool) {
	var res server.VerifyResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&res) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return &res, true
}

// FuzzVerifierResponse makes a token service answer a Verifier with any
// status and body. The Verifier must fail closed: it returns a key only
// for a 2xx whose body is one JSON verdict, valid, without a code, with a
// key that has an id and permissions and allowed CIDRs that parse, and
// then that key, unexpired and allowing the client's address; a refusal
// other than ErrUnavailable only for such a verdict (expired, address
// denied) or for an invalid verdict with a known code; ErrUnavailable
// for everything else, every non-2xx status included. No error shows a
// token.
func FuzzVerifierResponse(f *testing.F) {
	id := "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	key := `{"id":"` + id + `","name":"svc","workspace":"w1","hint":"kg_AbCd…","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","version":1`
	for _, s := range []struct {
		status uint16
		body   string
	}{
		{200, `{"valid":true,"key":` + key + `},"permissions":["billing:read"]}`},
		{200, `{"valid":true,"key":` + key + `},"permissions":["*:*"],"super_admin":true}`},
		{200, `{"valid":true,"key":` + key + `,"expires_at":"2026-03-01T00:00:00Z"},"permissions":[]}`},
		{200, `{"valid":true,"key":` + key + `,"limits":{"allowed_cidrs":["192.0.2.0/24"]}}}`},
		{200, `{"valid":true,"key":` + key + `,"limits":{"allowed_cidrs":["10.0.0.0/8"]}}}`},
		{200, `{"valid":true,"key":` + key + `,"limits":{"allowed_cidrs":["bad"]}}}`},
		{200, `{"valid":true,"key":` + key + `,"limits":{"rate":{"requests":5,"window":"1s"},"uses_remaining":2}}}`},
		{200, `{"valid":true,"key":` + key + `,"limits":{"rate":{"requests":5,"window":"1m"}}},"rate_limit":{"requests":5,"window":"1m0s","remaining":3,"reset":"24s"}}`},
		{200, `{"valid":true,"key":` + key + `},"rate_limit":{"requests":5,"window":"1m0s","remaining":9,"reset":"-24s"}}`},
		{200, `{"valid":false,"code":"rate_limited","retry_after":12,"rate_limit":{"requests":5,"window":"1m0s","remaining":0}}`},
		{200, `{"valid":false,"code":"rate_limited","retry_after":12,"rate_limit":{"requests":5,"window":"1m0s","remaining":0,"name":"tokens","identity":true}}`},
		{200, `{"valid":false,"code":"rate_limited","retry_after":12,"rate_limit":{"requests":5,"window":"1m0s","remaining":0,"name":"tokens","identity":true},` +
			`"report":{"cost":2,"limits":[{"name":"tokens","identity":true,"requests":5,"window":"1m0s","on_demand":true,"allowed":false,"remaining":0,"retry_after":"12s"}]}}`},
		{200, `{"valid":true,"key":` + key + `},"report":{"cost":2,"limits":[{"name":"default","requests":5,"window":"1m0s","allowed":true,"remaining":-1,"reset":"-3s"}],` +
			`"uses":{"remaining":3},"credits":{"remaining":-7,"next_refill":"2026-03-01T00:00:00Z"}}}`},
		{200, `{"valid":false,"code":"usage_exhausted","report":{"cost":9,"credits":{"remaining":4}}}`}, {200, `{"valid":true,"key":` + key + `},"report":{}}`},
		{400, `{"type":"about:blank","title":"Bad Request","status":400,"code":"invalid_field","detail":"The cost field must be an integer from 1 to 1000000000."}`},
		{400, `{"code":"invalid_json"}`},
		{200, `{"valid":true,"key":` + key + `},"permissions":["not a permission"]}`},
		{200, `{"valid":true,"key":` + key + `},"code":"revoked"}`},
		{200, `{"valid":true,"key":` + key + `}}{"valid":false,"code":"revoked"}`},
		{200, `{"valid":true,"key":{}}`}, {200, `{"valid":true}`}, {200, `{"valid":true,"key":null}`},
		{200, `{"valid":false,"code":"revoked"}`}, {200, `{"valid":false,"code":"invalid"}`}, {200, `{"valid":false,"code":"expired"}`},
		{200, `{"valid":false,"code":"disabled"}`},
		{200, `{"valid":false,"code":"rate_limited","retry_after":3}`}, {200, `{"valid":false,"code":"rate_limited","retry_after":-3}`},
		{200, `{"valid":false,"code":"rate_limited","retry_after":9223372036854775807}`},
		{200, `{"valid":false,"code":"usage_exhausted"}`}, {200, `{"valid":false,"code":"address_denied"}`},
		{200, `{"valid":false,"code":"insufficient_permission"}`}, {200, `{"valid":false,"code":"no_route"}`},
		{200, `{"valid":false,"code":"unavailable"}`}, {200, `{"valid":false,"code":"not_found"}`}, {200, `{"valid":false,"code":"forbidden"}`}, {200, `{"valid":false}`}, {200, `{"valid":false,"code":"made_up"}`},
		{200, `{"VALID":true,"KEY":` + key + `}}`}, {200, `{"valid":"true"}`}, {200, `{}`}, {200, `null`}, {200, `[]`}, {200, ``},
		{200, `<html>ok</html>`}, {201, `{"valid":false,"code":"invalid"}`}, {204, ``}, {302, `{"valid":true,"key":` + key + `}}`},
		{401, `{"code":"invalid"}`}, {403, `{"valid":true,"key":` + key + `}}`}, {429, `{"code":"rate_limited"}`},
		{500, `{"valid":false,"code":"invalid"}`}, {503, ``},
	} {
		f.Add(s.status, []byte(s.body))
	}
	vs := &verifyServer{}
	srv := httptest.NewServer(vs)
	f.Cleanup(srv.Close)
	format, err := apikey.NewFormat("kg")
	if err != nil {
		f.Fatal(err)
	}
	own, err := format.Generate()
	if err != nil {
		f.Fatal(err)
	}
	presented, err := format.Generate()
	if err != nil {
		f.Fatal(err)
	}
	c, err := client.New(srv.URL+"/api/v1/", client.WithToken(own.Reveal()))
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	v := c.NewVerifier(client.VerifierConfig{CacheTTL: -1, NegativeCacheTTL: -1, Now: func() time.Time { return now }})
	addr := netip.MustParseAddr("192.0.2.7")
	verdictCodes := map[string]bool{}
	for _, code := range documentedVerdictCodes(f) {
		verdictCodes[code] = true
	}
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		code := int(status)
		if code < 200 || code > 599 {
			code = 200 + code%400
		}
		vs.mu.Lock()
		vs.status, vs.body = code, body
		vs.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Verifications with a cost (odd bodies) or without, alike.
		cost := 1 + len(body)%2
		k, rep, err := v.VerifyWith(ctx, presented.Reveal(), keygate.VerifyOptions{Address: addr, Cost: cost})
		if (k == nil) == (err == nil) {
			t.Fatalf("VerifyWith = %v, %v; want a key or an error", k, err)
		}
		if err != nil && (strings.Contains(err.Error(), own.Reveal()) || strings.Contains(err.Error(), presented.Reveal())) {
			t.Fatalf("error %q shows a token", err)
		}
		if code == http.StatusNoContent || code == http.StatusNotModified {
			body = nil // net/http sends no body with these
		}
		res, ok := decodeVerdict(body)
		ok = ok && code >= 200 && code <= 299
		var perms permission.Set
		var cidrs []netip.Prefix
		valid := ok && res.Valid && res.Code == "" && res.Key != nil && res.Key.ID != uuid.Nil
		if valid {
			var err error
			if perms, err = permission.ParseSet(res.Permissions...); err != nil {
				valid = false
			}
			for _, s := range res.Key.Limits.AllowedCIDRs {
				p, err := netip.ParsePrefix(s)
				valid = valid && err == nil
				cidrs = append(cidrs, p)
			}
		}
		verdict := ok && !res.Valid && verdictCodes[res.Code]
		expired := valid && !res.Key.ExpiresAt.IsZero() && !now.Before(res.Key.ExpiresAt)
		denied := valid && len(cidrs) > 0 && !slices.ContainsFunc(cidrs, func(p netip.Prefix) bool { return p.Contains(addr) })
		switch {
		case k != nil:
			if !valid || expired || denied {
				t.Fatalf("%d %q: the Verifier returned key %v", code, body, k.ID)
			}
			if k.ID != res.Key.ID || !slices.Equal(k.Permissions(), perms) || k.SuperAdmin() != res.SuperAdmin || k.Workspace != res.Key.Workspace {
				t.Fatalf("%d %q: the Verifier returned key %v with %v, not the verdict's", code, body, k.ID, k.Permissions())
			}
			if st, ok := v.RateStatus(ctx, k); ok && (res.RateLimit == nil || st.Requests < 1 || st.Window <= 0 ||
				st.Remaining < 0 || st.Remaining > st.Requests || st.Reset < 0) {
				t.Fatalf("%d %q: the key reports the rate status %+v", code, body, st)
			}
		case errors.Is(err, keygate.ErrUnavailable):
			if valid && !expired && !denied || verdict {
				t.Fatalf("%d %q: ErrUnavailable (%v) for a good verdict", code, body, err)
			}
		case expired:
			if !errors.Is(err, keygate.ErrExpired) {
				t.Fatalf("%d %q: %v, want ErrExpired", code, body, err)
			}
		case denied:
			if !errors.Is(err, keygate.ErrAddressDenied) {
				t.Fatalf("%d %q: %v, want ErrAddressDenied", code, body, err)
			}
		case verdict:
			var rl *keygate.RateLimitError
			if res.Code == middleware.CodeRateLimited {
				if !errors.As(err, &rl) || rl.RetryAfter < 0 || rl.Name == "" {
					t.Fatalf("%d %q: %v, want a RateLimitError that is not negative and names its limit", code, body, err)
				}
				if res.RateLimit != nil && res.RateLimit.Name != "" && (res.Report == nil || len(res.Report.Limits) == 0) &&
					(rl.Name != res.RateLimit.Name || rl.Identity != res.RateLimit.Identity) {
					t.Fatalf("%d %q: refused by %q (identity %v), not the verdict's limit", code, body, rl.Name, rl.Identity)
				}
			} else if !errors.Is(err, server.ErrorsFor(res.Code)[0]) {
				t.Fatalf("%d %q: %v, want %v", code, body, err, server.ErrorsFor(res.Code)[0])
			}
		case cost > 1 && code == http.StatusBadRequest && errors.Is(err, keygate.ErrInvalidRequest):
			// The server refused the cost: the caller's mistake.
		default:
			t.Fatalf("%d %q: %v, want ErrUnavailable for a response that is no verdict", code, body, err)
		}
		if valid || verdict {
			want := cost
			if res.Report != nil {
				want = res.Report.Cost
			}
			if rep.Cost != want {
				t.Fatalf("%d %q: report's cost %d, want %d", code, body, rep.Cost, want)
			}
			for _, l := range rep.Limits {
				if l.Reset < 0 || l.RetryAfter < 0 {
					t.Fatalf("%d %q: report's limit %+v has a negative duration", code, body, l)
				}
			}
		}
	})
}

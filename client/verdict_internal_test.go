package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzParseVerdict holds parseVerdict to encoding/json: whatever body it
// accepts, json.Unmarshal accepts too (one value, nothing after it) with
// the very same result; and do answers any body, read whole or failing
// part way, exactly as decoding it with encoding/json answers.
func FuzzParseVerdict(f *testing.F) {
	key := `{"id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","name":"svc","workspace":"w1","role":"viewer","scopes":["billing:write"],` +
		`"metadata":{"team":"a","x":""},"hint":"kg_AbCd…","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T10:00:00.123456+02:00",` +
		`"expires_at":"2027-01-01T00:00:00Z","version":3,"limits":{"rate":{"requests":5,"window":"1m0s"},"uses_remaining":2,"allowed_cidrs":["10.0.0.0/8"]}}`
	for _, body := range []string{
		`{"valid":true,"key":` + key + `,"permissions":["*:read","billing:write"],"super_admin":true,"rate_limit":{"requests":5,"window":"1m0s","remaining":3,"reset":"24s"}}`,
		` {"valid" : false , "code":"revoked"} ` + "\n", `{"valid":false,"code":"rate_limited","retry_after":12,"rate_limit":{"requests":5,"window":"1m0s","remaining":0}}`,
		`{}`, `{"valid":true,"key":{}}`, `{"valid":true,"key":null}`, `{"valid":true,"valid":false}`, `{"Valid":true}`, `{"valid":"true"}`,
		`{"valid":true}x`, `{"valid":true}{}`, `{"permissions":[]}`, `{"permissions":[""]}`, `{"permissions":["a\u0041"]}`, `{"code":"\xff"}`,
		`{"retry_after":01}`, `{"retry_after":-0}`, `{"retry_after":1.5}`, `{"retry_after":1e3}`, `{"retry_after":99999999999999999999}`,
		`{"rate_limit":{"requests":1,"window":"1x"}}`, `{"key":{"id":""}}`, `{"key":{"id":"0193a1b20c3d47e5f8a9b0c1d2e3f4a5b"}}`,
		`{"key":{"created_at":"2026-01-01"}}`, `{"key":{"metadata":{"a":"1","a":"2"}}}`, `{"key":{"limits":{}}}`, `{"valid":tru}`, `{"valid":truex}`,
		`[]`, `null`, ``, `{"valid":true,}`, `{"valid":true "code":"x"}`, `{"code":"a<b>&c"}`, "{\"code\":\"a\tb\"}", `{"new_member":1}`,
		`{"valid":true,"key":{"limits":{"rate_limits":[{"name":"tokens","requests":100000,"window":"1h0m0s"},{"name":"exports","requests":5,"window":"24h0m0s","on_demand":true}],` +
			`"uses_remaining":7,"uses_refill":{"amount":500,"every":"month","day":31},"uses_refilled_at":"2026-03-01T00:00:00Z"}}}`,
		`{"key":{"limits":{"rate_limits":[]}}}`, `{"key":{"limits":{"rate_limits":[{}]}}}`, `{"key":{"limits":{"rate_limits":null}}}`,
		`{"key":{"limits":{"rate_limits":[{"name":"a","name":"b"}]}}}`, `{"key":{"limits":{"rate_limits":[{"on_demand":1}]}}}`,
		`{"key":{"limits":{"uses_refill":{}}}}`, `{"key":{"limits":{"uses_refill":null}}}`, `{"key":{"limits":{"uses_refill":{"day":1.5}}}}`,
		`{"key":{"limits":{"uses_refilled_at":"yesterday"}}}`, `{"key":{"limits":{"rate_limits":[{"name":"a"},]}}}`,
		`{"valid":true,"key":` + key + `,"report":{"cost":3,"limits":[{"name":"default","requests":5,"window":"1m0s","allowed":true,"remaining":2,"reset":"36s"},` +
			`{"name":"tokens","identity":true,"requests":100,"window":"1h0m0s","on_demand":true,"allowed":true,"remaining":-1}],` +
			`"uses":{"remaining":7},"credits":{"remaining":4997,"next_refill":"2026-08-01T00:00:00Z"}}}`,
		`{"valid":false,"code":"rate_limited","retry_after":36,"rate_limit":{"requests":2,"window":"1h0m0s","remaining":0,"name":"exports","identity":true},` +
			`"report":{"cost":2,"limits":[{"name":"exports","requests":2,"window":"1h0m0s","on_demand":true,"allowed":false,"remaining":0,"retry_after":"35m0.5s"}]}}`,
		`{"report":{}}`, `{"report":null}`, `{"report":{"limits":[]}}`, `{"report":{"limits":null}}`, `{"report":{"limits":[{}],"uses":{},"credits":null}}`,
		`{"report":{"cost":1.5}}`, `{"report":{"cost":1,"cost":2}}`, `{"report":{"limits":[{"reset":"soon"}]}}`, `{"report":{"limits":[{"allowed":1}]}}`,
		`{"report":{"uses":{"next_refill":"2026-02-30T00:00:00Z"}}}`, `{"report":{"credits":{"remaining":99999999999999999999}}}`,
		`{"rate_limit":{"name":"x","identity":false}}`, `{"rate_limit":{"identity":"true"}}`,
	} {
		f.Add([]byte(body), -1)
		f.Add([]byte(body), len(body)/2)
	}
	req, err := http.NewRequest(http.MethodPost, "https://keys.example.com/v1/keys/verify?secret=x", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, failAt int) {
		var want VerifyResponse
		dec := json.NewDecoder(bytes.NewReader(body))
		wantErr := dec.Decode(&want)
		if wantErr == nil {
			if _, end := dec.Token(); end != io.EOF {
				wantErr = errors.New("data after the JSON value")
			}
		}
		var got VerifyResponse
		if parseVerdict(bytes.Clone(body), &got) {
			if wantErr != nil {
				t.Fatalf("parseVerdict accepted %q, which encoding/json refuses: %v", body, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("parseVerdict(%q) = %+v, encoding/json %+v", body, got, want)
			}
		}

		// Through do's reading: whole, or failing at failAt.
		var rd io.Reader = bytes.NewReader(body)
		if failAt >= 0 && failAt <= len(body) {
			rd = io.MultiReader(bytes.NewReader(body[:failAt]), iotest.ErrReader(errors.New("connection reset")))
		}
		rd = iotest.OneByteReader(rd)
		var viaDo VerifyResponse
		_, doErr := decodeVerdict(req, rd, int64(len(body)), &viaDo)
		var wantDo VerifyResponse
		rd = bytes.NewReader(body)
		if failAt >= 0 && failAt <= len(body) {
			rd = io.MultiReader(bytes.NewReader(body[:failAt]), iotest.ErrReader(errors.New("connection reset")))
		}
		wantDoErr := decode(req, rd, &wantDo)
		if (doErr == nil) != (wantDoErr == nil) || doErr != nil && doErr.Error() != wantDoErr.Error() {
			t.Fatalf("body %q: read as a verdict: %v; decoded: %v", body, doErr, wantDoErr)
		}
		if doErr == nil && !reflect.DeepEqual(viaDo, wantDo) {
			t.Fatalf("body %q: read as a verdict %+v; decoded %+v", body, viaDo, wantDo)
		}
		if doErr != nil && (strings.Contains(doErr.Error(), "secret=x") || !errors.Is(doErr, ErrInvalidResponse)) {
			t.Fatalf("error %v: want ErrInvalidResponse without the query", doErr)
		}
	})
}

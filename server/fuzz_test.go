package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/server"
)

// FuzzCreateRequest sends arbitrary bodies to POST /keys as a super admin,
// with a healthy store: the server must never fail (5xx) nor panic, must
// answer every refusal with a problem, and must never echo a token.
func FuzzCreateRequest(f *testing.F) {
	for _, seed := range []string{
		`{"name":"k","workspace":"w","role":"viewer","expiry":"30d"}`,
		`{"name":"k","role":"admin","expiry":"never","limits":{"rate":{"requests":5,"window":"1s"},"uses_remaining":3,"allowed_cidrs":["10.0.0.0/8"]}}`,
		`{"name":"k","scopes":["billing:read","app/x:deploy"],"expiry":"2099-01-01","metadata":{"a":"b"}}`,
		`{"name":"k","expiry":"2099-01-01T00:00:00Z","owner":"o","description":"d"}`,
		`{"name":"k","limits":{"rate":{"window":"-5s","requests":-1}},"expiry":"1d"}`,
		`{"name":` + "\x00" + `}`,
		`{}`, `[]`, `null`, `""`, `{"name":"a"}{}`, `{"name":"\ud800"}`, `{"limits":{"uses_remaining":-1}}`,
	} {
		f.Add(seed)
	}
	fx := newFixture(f, server.Config{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, body string) {
		w := fx.do(t, request{method: "POST", path: "/keys", token: fx.admin, contentType: "application/json", body: body})
		if w.Code >= 500 {
			t.Fatalf("POST /keys %q = %d %s", body, w.Code, w.Body)
		}
		if w.Code == http.StatusCreated {
			return
		}
		p := problem(t, w)
		if p.Code == "" || p.Detail == "" {
			t.Errorf("POST /keys %q: problem without a code or detail: %s", body, w.Body)
		}
		if strings.Contains(w.Body.String(), fx.admin) {
			t.Errorf("POST /keys %q echoes the caller's token", body)
		}
	})
}

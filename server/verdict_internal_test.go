package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/permission"
)

// FuzzVerdictEncoding holds appendVerdict to json.Marshal: the same bytes
// for any verdict (strings of any bytes, times of any year and offset,
// every optional member present or not), or an error exactly when
// json.Marshal fails; and, with a permission set, the bytes of the verdict
// whose permissions are the set's strings.
func FuzzVerdictEncoding(f *testing.F) {
	f.Add(true, "bench", "", "tiger", "viewer", "kg_AbCd…", "billing:write", "", int64(1767225600), int64(0), int64(0), int64(3), 0, int64(0), "*:read cluster/prod:write", "", int64(0), false)
	f.Add(false, "", "", "", "", "", "", "", int64(0), int64(0), int64(0), int64(0), 0, int64(0), "", "rate_limited", int64(12), true)
	f.Add(true, "<script>&\"\\\x00\x1f\x7f", "é\u2028\u2029\xff\xfe", "w", "r", "h", "a b", "k=v k2=\xff", int64(-62135596800), int64(253402300799), int64(-1), int64(-7), 5, int64(90e9), "app/x:deploy *:* ", "", int64(0), false)
	f.Add(true, "n", "d", "o", "", "", "", "=", int64(253402300800), int64(-62135596801), int64(1), int64(1)<<62, -1, int64(-1), "", "", int64(-3), true)
	f.Add(true, "in an identity", "acme", "tiger", "viewer", "kg_AbCd…", "", "plan=pro", int64(1767225600), int64(0), int64(0), int64(4), 0, int64(0), "*:read", "", int64(0), false)
	f.Add(true, "named limits", "acme", "month", "tokens", "kg_AbCd…", "", "exports \"<x>\"", int64(1767225600), int64(0), int64(0), int64(6), 31, int64(3600e9), "*:read", "", int64(0), true)
	f.Add(true, "metered", "acme", "tiger", "default tokens", "kg_AbCd…", "", "", int64(1767225600), int64(7), int64(1767225600), int64(9), 3, int64(60e9), "*:read", "", int64(5), false)
	f.Add(false, "refused", "", "month", "tokens", "", "", "", int64(1767225600), int64(0), int64(0), int64(10), 100, int64(3600e9), "", "rate_limited", int64(30), true)
	f.Fuzz(func(t *testing.T, valid bool, name, desc, workspace, role, hint, scopes, metadata string,
		created, expires, lastUsed, version int64, uses int, window int64, perms, code string, retry int64, withRate bool) {
		var v VerifyResponse
		v.Valid, v.Code, v.RetryAfter, v.SuperAdmin = valid, code, retry, len(name)%2 == 1
		if valid || len(hint) > 0 {
			k := &Key{ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)), Name: name, Description: desc, Owner: desc + name,
				Workspace: workspace, Role: role, Hint: hint, Version: version,
				CreatedAt: time.Unix(created, version%1e9).UTC(), UpdatedAt: time.Unix(created, 0).In(time.FixedZone("x", int(version%200000))),
				ExpiresAt: time.Unix(expires, 0), LastUsedAt: time.Unix(lastUsed, 0)}
			if expires == 0 {
				k.ExpiresAt = time.Time{}
			}
			if lastUsed == 0 {
				k.LastUsedAt = time.Time{}
			}
			if version%3 == 0 {
				k.RevokedAt, k.DisabledAt = k.CreatedAt, k.UpdatedAt
			}
			if version%2 == 0 {
				k.IdentityID = uuid.NewSHA1(uuid.NameSpaceURL, []byte(desc))
			}
			if scopes != "" {
				k.Scopes = strings.Split(scopes, " ")
			}
			if metadata != "" {
				k.Metadata = map[string]string{}
				for kv := range strings.FieldsSeq(metadata) {
					a, b, _ := strings.Cut(kv, "=")
					k.Metadata[a] = b
				}
			}
			switch uses % 4 {
			case 1:
				n := int64(uses)
				k.Limits.UsesRemaining = &n
			case 2:
				k.Limits.AllowedCIDRs = []string{}
			case 3:
				k.Limits.AllowedCIDRs = strings.Fields(scopes)
			}
			if window != 0 {
				k.Limits.Rate = RateLimit{Requests: uses, Window: Duration(window)}
			}
			if version%5 == 1 {
				// Named rate limits and uses that refill, their strings
				// drawn as any other.
				for i, name := range strings.Fields(metadata + " " + role) {
					k.Limits.RateLimits = append(k.Limits.RateLimits, NamedRateLimit{Name: name, Requests: uses + i, Window: Duration(window * int64(i)), OnDemand: i%2 == 1})
				}
				k.Limits.UsesRefill = &Refill{Amount: int64(uses) * 7, Every: workspace, Day: uses % 32}
				k.Limits.UsesRefilledAt = k.UpdatedAt
			}
			v.Key = k
		}
		if withRate {
			reset := Duration(window / 3)
			v.RateLimit = &RateStatus{Requests: uses, Window: Duration(window), Remaining: int(retry)}
			if retry%2 == 0 {
				v.RateLimit.Reset = &reset
			}
		}
		if version%7 == 2 || version%7 == 3 {
			// A report, its strings and numbers drawn as any other.
			r := &VerifyReport{Cost: uses}
			for i, name := range strings.Fields(role + " " + workspace) {
				r.Limits = append(r.Limits, LimitReport{Name: name, Identity: i%2 == 1, Requests: uses + i, Window: Duration(window),
					OnDemand: i%3 == 1, Allowed: i%2 == 0, Remaining: int(retry) - i, Reset: Duration(window / int64(i+2)), RetryAfter: Duration(retry * int64(i))})
			}
			if expires != 0 {
				r.Uses = &Balance{Remaining: expires, NextRefill: time.Unix(lastUsed, 0)}
				if lastUsed == 0 {
					r.Uses.NextRefill = time.Time{}
				}
			}
			if version%7 == 3 {
				r.Credits = &Balance{Remaining: created, NextRefill: time.Unix(created, 0).In(time.FixedZone("y", int(retry%100000)))}
			}
			v.Report = r
		}
		if withRate && len(role)%2 == 1 {
			v.RateLimit.Name, v.RateLimit.Identity = role, len(workspace)%2 == 1
		}
		v.Permissions = strings.Fields(perms)
		check := func(got []byte, gotErr error, want *VerifyResponse) {
			t.Helper()
			wantJSON, wantErr := json.Marshal(want)
			if (gotErr != nil) != (wantErr != nil) || gotErr == nil && !bytes.Equal(got, wantJSON) {
				t.Fatalf("appendVerdict:\n%s (%v)\njson.Marshal:\n%s (%v)", got, gotErr, wantJSON, wantErr)
			}
		}
		got, err := appendVerdict([]byte("prefix"), &v, nil)
		if err == nil && !bytes.HasPrefix(got, []byte("prefix")) {
			t.Fatalf("appendVerdict overwrote what it appends to: %s", got)
		}
		if err == nil {
			got = got[len("prefix"):]
		}
		check(got, err, &v)
		set, err := permission.ParseSet(strings.Fields(perms)...)
		if err != nil {
			set = permission.Set{{Resource: "app", Instance: "*", Action: "deploy"}, {Resource: "*", Action: "*"}, {}}
		}
		got, err = appendVerdict(nil, &v, set)
		w := v
		w.Permissions = set.Strings()
		check(got, err, &w)
	})
}

// FuzzVerifyRequestDecoding holds decodeVerify to decode: for any body,
// under any limit, read whole or failing part way, the same request or the
// same refusal.
func FuzzVerifyRequestDecoding(f *testing.F) {
	tok := "kg_" + strings.Repeat("A", 49)
	for _, body := range []string{
		`{"token":"` + tok + `"}`, ` { "token" : "` + tok + `" , "address":"203.0.113.7","permission":"cluster:read","workspace":"tiger" } ` + "\n",
		`{}`, ``, ` `, `{"token":"a","token":"b"}`, `{"Token":"a"}`, `{"tok\u0065n":"a"}`, `{"token":"\u0041"}`, `{"token":"é"}`,
		`{"token":"a\xff"}`, `{"token":null}`, `{"token":1}`, `{"token":"a",}`, `{"token":"a"}x`, `{"token":"a"}{}`, `[]`, `null`,
		`{"token":"a","extra":"b"}`, `{"token":"a"` + strings.Repeat(" ", 2000) + `}`, `{"token":"` + strings.Repeat("x", 1100) + `"}`,
		`{"token":"a"}` + strings.Repeat(" ", 70<<10), `{"address":"::1","workspace":""}`, `{"token":"a\tb"}`, "{\"token\":\"a\"}\x00",
		`{"token":"a","cost":3,"limits":["tokens","exports"]}`, `{"token":"a","cost":0,"limits":[]}`, `{"token":"a","cost":1.5}`, `{"token":"a","limits":"x"}`,
	} {
		f.Add([]byte(body), int64(0), -1)
		f.Add([]byte(body), int64(16), 5)
	}
	f.Fuzz(func(t *testing.T, body []byte, limit int64, failAt int) {
		if limit <= 0 {
			limit = DefaultMaxBodyBytes
		}
		s := &Server{maxBody: limit}
		s.buffers.New = func() any {
			b := make([]byte, 0, verifyBuffer)
			return &b
		}
		request := func() *http.Request {
			var rd io.Reader = bytes.NewReader(body)
			if failAt >= 0 && failAt <= len(body) {
				rd = io.MultiReader(bytes.NewReader(body[:failAt]), errReader{errors.New("connection reset")})
			}
			r := httptest.NewRequest(http.MethodPost, "/keys/verify", rd)
			r.Header.Set("Content-Type", "application/json")
			return r
		}
		var want, got VerifyRequest
		wantErr := s.decode(httptest.NewRecorder(), request(), &want)
		gotErr := s.decodeVerify(httptest.NewRecorder(), request(), &got)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("body %q: decodeVerify gave %+v, decode %+v", body, got, want)
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("body %q: decodeVerify: %v, decode: %v", body, gotErr, wantErr)
		}
		if gotErr != nil {
			gp, wp := problemFor(gotErr), problemFor(wantErr)
			if gp.Status != wp.Status || gp.Code != wp.Code || gp.Detail != wp.Detail {
				t.Fatalf("body %q: decodeVerify refused %d %s %q, decode %d %s %q", body, gp.Status, gp.Code, gp.Detail, wp.Status, wp.Code, wp.Detail)
			}
		}
	})
}

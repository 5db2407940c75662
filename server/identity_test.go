package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
)

// TestIdentityRoutes drives the identity routes and a key's identity_id
// through the REST API: what each answers, its headers, and what the
// Manager then holds.
func TestIdentityRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	send := func(method, path, body string, header http.Header) (int, []byte, http.Header) {
		t.Helper()
		req := request{method: method, path: path, token: f.admin, body: body, header: header}
		if body != "" {
			req.contentType = "application/json"
		}
		w := f.do(t, req)
		return w.Code, w.Body.Bytes(), w.Header()
	}
	decode := func(body []byte, v any) {
		t.Helper()
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
	}

	code, body, h := send("POST", "/identities", `{"external_id":"acme","workspace":"w","metadata":{"plan":"pro"},"limits":{`+
		`"rate_limits":[{"name":"requests","requests":100,"window":"1s"},{"name":"tokens","requests":5000,"window":"1h","on_demand":true}],`+
		`"credits":{"remaining":500,"refill":{"amount":1000,"every":"month","day":31}}}}`, nil)
	if code != http.StatusCreated {
		t.Fatalf("POST /identities = %d %s", code, body)
	}
	var id server.Identity
	decode(body, &id)
	if h.Get("Location") != "identities/"+id.ID.String() || h.Get("ETag") != `"1"` || id.ExternalID != "acme" || id.Workspace != "w" ||
		len(id.Limits.RateLimits) != 2 || !id.Limits.RateLimits[1].OnDemand || id.Limits.Credits == nil || id.Limits.Credits.Remaining != 500 ||
		id.Limits.Credits.Refill.Day != 31 || id.Limits.Credits.RefilledAt.IsZero() || id.Version != 1 {
		t.Fatalf("created %s with Location %q and ETag %q", body, h.Get("Location"), h.Get("ETag"))
	}
	path := "/identities/" + id.ID.String()
	code, body, _ = send("GET", path, "", nil)
	var got server.Identity
	decode(body, &got)
	if code != http.StatusOK || got.ID != id.ID || got.Limits.Credits.Remaining != 500 {
		t.Fatalf("GET = %d %s", code, body)
	}
	code, body, _ = send("GET", "/identities?workspace=w&external_id=acme", "", nil)
	var list server.IdentityList
	decode(body, &list)
	if code != http.StatusOK || len(list.Identities) != 1 || list.Identities[0].ID != id.ID || list.Next != "" {
		t.Fatalf("GET /identities = %d %s", code, body)
	}

	// PATCH: the refill alone keeps the balance; If-Match guards the
	// version; an absent member changes nothing.
	code, body, h = send("PATCH", path, `{"limits":{"credits":{"refill":{"amount":20,"every":"day"}}}}`, http.Header{"If-Match": {`"1"`}})
	decode(body, &got)
	if code != http.StatusOK || got.Version != 2 || h.Get("ETag") != `"2"` || got.Limits.Credits.Remaining != 500 || got.Limits.Credits.Refill.Every != "day" {
		t.Fatalf("PATCH the refill = %d %s", code, body)
	}
	if code, body, _ = send("PATCH", path, `{"external_id":"x"}`, http.Header{"If-Match": {`"1"`}}); code != http.StatusConflict {
		t.Errorf("PATCH at a stale version = %d %s, want 409", code, body)
	}
	if code, body, _ = send("PATCH", path, `{"version":2}`, http.Header{"If-Match": {`"1"`}}); code != http.StatusBadRequest {
		t.Errorf("PATCH with disagreeing versions = %d %s, want 400", code, body)
	}
	code, body, _ = send("PATCH", path, `{"limits":{"credits":{"remaining":7,"refill":{}}}}`, nil)
	got = server.Identity{}
	decode(body, &got)
	if code != http.StatusOK || got.Limits.Credits.Remaining != 7 || got.Limits.Credits.Refill != nil {
		t.Fatalf("PATCH the balance, no refill = %d %s", code, body)
	}

	// A key in it shows its identity_id everywhere, the verdict included.
	code, body, _ = send("POST", "/keys", `{"name":"k","workspace":"w","role":"viewer","expiry":"30d","identity_id":"`+id.ID.String()+`"}`, nil)
	var created struct {
		Key   server.Key `json:"key"`
		Token string     `json:"token"`
	}
	decode(body, &created)
	if code != http.StatusCreated || created.Key.IdentityID != id.ID {
		t.Fatalf("POST /keys in the identity = %d %s", code, body)
	}
	verifier := f.token(t, keygate.CreateRequest{Name: "verifier", Scopes: []string{"apikey:verify"}})
	w := f.do(t, request{method: "POST", path: "/keys/verify", token: verifier, contentType: "application/json", body: `{"token":"` + created.Token + `"}`})
	var v server.VerifyResponse
	decode(w.Body.Bytes(), &v)
	if !v.Valid || v.Key.IdentityID != id.ID {
		t.Errorf("verify = %s, want the key with its identity_id", w.Body)
	}
	code, body, _ = send("GET", "/keys?identity_id="+id.ID.String(), "", nil)
	var keys server.KeyList
	decode(body, &keys)
	if code != http.StatusOK || len(keys.Keys) != 1 || keys.Keys[0].ID != created.Key.ID {
		t.Errorf("GET /keys?identity_id = %d %s", code, body)
	}
	code, body, _ = send("DELETE", path, "", nil)
	if p := problemOf(t, code, body); code != http.StatusConflict || p.Code != server.CodeIdentityInUse {
		t.Errorf("DELETE in use = %d %s", code, body)
	}
	code, body, _ = send("PATCH", "/keys/"+created.Key.ID.String(), `{"identity_id":""}`, nil)
	var k server.Key
	decode(body, &k)
	if code != http.StatusOK || k.IdentityID != uuid.Nil {
		t.Fatalf("PATCH identity_id \"\" = %d %s", code, body)
	}
	if code, body, _ = send("DELETE", path, "", nil); code != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("DELETE = %d %s", code, body)
	}
	code, body, _ = send("GET", path, "", nil)
	if p := problemOf(t, code, body); code != http.StatusNotFound || p.Code != server.CodeIdentityNotFound || p.Detail != "No identity has this id." {
		t.Errorf("GET a deleted identity = %d %s", code, body)
	}
	code, body, _ = send("POST", "/keys", `{"name":"k2","workspace":"w","role":"viewer","expiry":"30d","identity_id":"`+id.ID.String()+`"}`, nil)
	if p := problemOf(t, code, body); code != http.StatusBadRequest || p.Code != server.CodeUnknownIdentity {
		t.Errorf("POST /keys in a deleted identity = %d %s", code, body)
	}
}

// problemOf decodes a problem body.
func problemOf(t *testing.T, code int, body []byte) middleware.Problem {
	t.Helper()
	var p middleware.Problem
	if code >= 400 {
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("decode problem %s: %v", body, err)
		}
	}
	return p
}

// TestIdentityErrorsFor: a client maps each identity code to the errors
// the Manager returns, so errors.Is works the same remotely.
func TestIdentityErrorsFor(t *testing.T) {
	t.Parallel()
	for code, want := range map[string][]error{
		server.CodeIdentityNotFound:    {keygate.ErrIdentityNotFound, keygate.ErrNotFound},
		server.CodeUnknownIdentity:     {keygate.ErrUnknownIdentity, keygate.ErrInvalidRequest},
		server.CodeIdentityInUse:       {keygate.ErrIdentityInUse},
		server.CodeDuplicateExternalID: {keygate.ErrDuplicateExternalID, keygate.ErrInvalidRequest},
	} {
		got := server.ErrorsFor(code)
		if len(got) != len(want) {
			t.Errorf("ErrorsFor(%q) = %v, want %v", code, got, want)
			continue
		}
		for i := range want {
			if !errors.Is(got[i], want[i]) {
				t.Errorf("ErrorsFor(%q) = %v, want %v", code, got, want)
			}
		}
	}
	// A key's not_found stays a key's.
	if got := server.ErrorsFor(server.CodeNotFound); len(got) != 1 || got[0] != keygate.ErrNotFound {
		t.Errorf("ErrorsFor(not_found) = %v, want ErrNotFound alone", got)
	}
}

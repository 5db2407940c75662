package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
)

// removeIdentity deletes identity id, whatever the test did to the store.
func (f *fixture) removeIdentity(t testing.TB, id uuid.UUID) {
	t.Helper()
	f.store.Down.Store(false)
	if err := f.m.DeleteIdentity(context.Background(), keygate.System(), id); err != nil && !errors.Is(err, keygate.ErrIdentityNotFound) {
		t.Fatalf("DeleteIdentity: %v", err)
	}
}

// checkIdentity checks that body is an identity exactly as GET then
// answers it, with its version as ETag.
func (f *fixture) checkIdentity(t *testing.T, what string, w interface {
	Header() http.Header
}, body []byte) server.Identity {
	t.Helper()
	var got server.Identity
	strict(t, what, body, &got)
	if got.ID == uuid.Nil || got.ExternalID == "" || got.Version < 1 {
		t.Fatalf("%s: %s is no identity", what, body)
	}
	if etag := w.Header().Get("ETag"); etag != `"`+strconv.FormatInt(got.Version, 10)+`"` {
		t.Fatalf("%s: ETag %q for version %d", what, etag, got.Version)
	}
	again := f.send(http.MethodGet, "/identities/"+got.ID.String(), "", jsonHeader(f.admin), "")
	if again.Code != http.StatusOK || again.Body.String() != string(body) {
		t.Fatalf("%s answered %s, GET then answers %d %s", what, body, again.Code, again.Body)
	}
	return got
}

// FuzzCreateIdentityRequest sends arbitrary bodies to POST /identities as
// a super admin, with the store up or down. Beyond the answer's
// invariants: a 201 is an identity stored as answered, at its Location,
// never while the store is down, within the bounds the Manager enforces.
func FuzzCreateIdentityRequest(f *testing.F) {
	for _, seed := range []string{
		`{"external_id":"acme"}`,
		`{"external_id":"acme","workspace":"w1","metadata":{"plan":"pro"}}`,
		`{"external_id":"a","limits":{"rate_limits":[{"name":"requests","requests":100,"window":"1s"},{"name":"tokens","requests":9,"window":"1h","on_demand":true}]}}`,
		`{"external_id":"a","limits":{"credits":{"remaining":5,"refill":{"amount":10,"every":"month","day":31}}}}`,
		`{"external_id":"a","limits":{"credits":{"remaining":5,"refill":{"amount":10,"every":"day"}}}}`,
		`{"external_id":"a","limits":{"credits":{"remaining":1000000000000000,"refilled_at":"2020-01-01T00:00:00Z"}}}`,
		`{"external_id":"a","limits":{"credits":{"remaining":-1}}}`,
		`{"external_id":"a","limits":{"credits":{"remaining":1,"refill":{"amount":1,"every":"week"}}}}`,
		`{"external_id":"a","limits":{"credits":{"remaining":1,"refill":{"amount":1,"every":"month","day":0}}}}`,
		`{"external_id":"a","limits":{"rate_limits":[{"name":"r","requests":1,"window":"1s"},{"name":"r","requests":1,"window":"1s"}]}}`,
		`{"external_id":"a","limits":{"rate_limits":[{"name":"R","requests":1,"window":"1ns"}]}}`,
		`{"external_id":"a","limits":{"rate_limits":[{"name":"r","requests":1000000001,"window":"8784h"}]}}`,
		`{"external_id":"a","limits":{"rate_limits":[{"name":"r","requests":2,"window":"1ns"}]}}`,
		`{"external_id":" a"}`, `{"external_id":"a\u0000"}`, `{"external_id":""}`, `{"workspace":"w1"}`,
		`{"external_id":"a","workspace":"w1","id":"x"}`, `{"external_id":5}`, `{}`, `[]`, `null`, ``, `{"external_id":"a"}{}`,
	} {
		f.Add(seed, false)
	}
	f.Add(`{"external_id":"acme"}`, true)
	fx := newFixture(f, server.Config{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, body string, down bool) {
		fx.store.Down.Store(down)
		w := fx.send(http.MethodPost, "/identities", "", jsonHeader(fx.admin), body)
		fx.store.Down.Store(false)
		fx.check(t, "POST /identities", w, down, "")
		if w.Code != http.StatusCreated {
			return
		}
		if down {
			t.Fatalf("POST /identities = 201 while the store is down")
		}
		got := fx.checkIdentity(t, "POST /identities", w, w.Body.Bytes())
		defer fx.removeIdentity(t, got.ID)
		if loc := w.Header().Get("Location"); loc != "identities/"+got.ID.String() {
			t.Errorf("Location %q, want identities/%s", loc, got.ID)
		}
		var sent server.CreateIdentityRequest
		strict(t, "the request", []byte(body), &sent)
		if got.ExternalID != sent.ExternalID || got.Workspace != sent.Workspace || got.Version != 1 {
			t.Fatalf("created %+v from %s", got, body)
		}
		checkBounds(t, got.Limits)
	})
}

// checkBounds fails unless l is within the Manager's bounds.
func checkBounds(t *testing.T, l server.IdentityLimits) {
	t.Helper()
	names := map[string]bool{}
	for _, r := range l.RateLimits {
		if names[r.Name] || r.Requests < 1 || r.Requests > keygate.MaxRateRequests || r.Window <= 0 || time.Duration(r.Window) > keygate.MaxRateWindow ||
			int64(r.Window) < int64(r.Requests) || len(r.Name) > keygate.MaxRateLimitName || strings.ToLower(r.Name) != r.Name {
			t.Fatalf("stored a rate limit out of bounds: %+v", r)
		}
		names[r.Name] = true
	}
	if c := l.Credits; c != nil {
		if c.Remaining < 0 || c.Remaining > keygate.MaxCredits {
			t.Fatalf("stored credits out of bounds: %+v", c)
		}
		if r := c.Refill; r != nil && (r.Amount < 1 || r.Amount > keygate.MaxCredits ||
			!(r.Every == string(store.PeriodDay) && r.Day == 0 || r.Every == string(store.PeriodMonth) && r.Day >= 1 && r.Day <= 31)) {
			t.Fatalf("stored a refill out of bounds: %+v", r)
		}
	}
}

// FuzzUpdateIdentityRequest sends arbitrary If-Match headers and bodies to
// PATCH /identities/{id}, on a fresh identity each time, with the store up
// or down. Beyond the answer's invariants: an update goes through only
// when If-Match (and the body's version) allows the identity's version,
// never while the store is down; it answers the identity as GET then
// shows it; a body changing nothing leaves the version; the balance
// changes only when the body sets it.
func FuzzUpdateIdentityRequest(f *testing.F) {
	bodies := []string{
		`{}`, `{"external_id":"renamed"}`, `{"version":1,"metadata":{"k":"v"}}`, `{"version":2,"external_id":"x"}`,
		`{"limits":{"rate_limits":[]}}`, `{"limits":{"rate_limits":[{"name":"r","requests":5,"window":"1m"}]}}`,
		`{"limits":{"credits":{"remaining":3}}}`, `{"limits":{"credits":{"remaining":-1}}}`, `{"limits":{"credits":{"refill":{}}}}`,
		`{"limits":{"credits":{"refill":{"amount":5,"every":"day"}}}}`, `{"limits":{"credits":{"remaining":-1,"refill":{"amount":5,"every":"day"}}}}`,
		`{"limits":{"credits":null,"rate_limits":null}}`, `{"external_id":null,"metadata":null,"limits":null}`,
		`{"external_id":""}`, `{"workspace":"w2"}`, `{"version":"1"}`, `[]`, ``,
	}
	for i, b := range bodies {
		f.Add(ifMatchSeeds[i%len(ifMatchSeeds)], b, false)
	}
	f.Add(`"1"`, `{"external_id":"x"}`, true)
	fx := newFixture(f, server.Config{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, ifMatch, body string, down bool) {
		before, err := fx.m.CreateIdentity(context.Background(), keygate.System(), keygate.CreateIdentityRequest{
			ExternalID: "target-" + uuid.NewString(), Workspace: "w1", Metadata: map[string]string{"team": "a"},
			Limits: keygate.IdentityLimits{
				RateLimits: []keygate.RateLimit{{Name: "requests", Requests: 100, Window: time.Second}},
				Credits:    &keygate.Credits{Remaining: 50, Refill: &keygate.Refill{Amount: 100, Every: store.PeriodMonth, Day: 1}},
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer fx.removeIdentity(t, before.ID)
		path := "/identities/" + before.ID.String()
		h := jsonHeader(fx.admin)
		var lines []string
		if ifMatch != "" {
			lines = strings.Split(ifMatch, "\n")
			h["If-Match"] = lines
		}
		fx.store.Down.Store(down)
		w := fx.send(http.MethodPatch, path, "", h, body)
		fx.store.Down.Store(false)
		fx.check(t, "PATCH "+path, w, down, "")
		if w.Code != http.StatusOK {
			return
		}
		if down {
			t.Fatalf("PATCH = 200 while the store is down")
		}
		if !acceptsVersion(lines, before.Version) {
			t.Fatalf("PATCH with If-Match %q of an identity at version %d = 200", lines, before.Version)
		}
		var sent server.UpdateIdentityRequest
		strict(t, "the request", []byte(body), &sent)
		if sent.Version != 0 && sent.Version != before.Version {
			t.Fatalf("PATCH with version %d of an identity at version %d = 200", sent.Version, before.Version)
		}
		got := fx.checkIdentity(t, "PATCH", w, w.Body.Bytes())
		empty := sent.ExternalID == nil && sent.Metadata == nil && (sent.Limits == nil || *sent.Limits == server.IdentityLimitsUpdate{})
		if got.ID != before.ID || empty != (got.Version == before.Version) || got.Workspace != before.Workspace {
			t.Fatalf("PATCH %s = %+v, from version %d (a body changing nothing: %v)", body, got, before.Version, empty)
		}
		setsBalance := sent.Limits != nil && sent.Limits.Credits != nil && sent.Limits.Credits.Remaining != nil
		if !setsBalance && (got.Limits.Credits == nil || got.Limits.Credits.Remaining != 50) {
			t.Fatalf("PATCH %s changed the balance: %+v", body, got.Limits.Credits)
		}
		checkBounds(t, got.Limits)
		if js, _ := json.Marshal(got); strings.Contains(string(js), fx.admin) {
			t.Fatal("the identity shows the caller's token")
		}
	})
}

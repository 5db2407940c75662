package client_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
)

// The failingStore's identity calls fail while it is down, as its key
// calls do.

func (s *failingStore) CreateIdentity(ctx context.Context, id *store.Identity) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.CreateIdentity(ctx, id)
}

func (s *failingStore) ListIdentities(ctx context.Context, opts store.IdentityListOptions) (*store.IdentityPage, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.ListIdentities(ctx, opts)
}

func TestIdentities(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	ids := e.client.Identities()

	id, resp, err := ids.Create(ctx, client.CreateIdentityRequest{ExternalID: "acme", Workspace: "w", Metadata: map[string]string{"plan": "pro"},
		Limits: &client.IdentityLimits{
			RateLimits: []client.NamedRateLimit{{Name: "requests", Requests: 100, Window: client.Duration(time.Second)}},
			Credits:    &client.Credits{Remaining: 500, Refill: &client.Refill{Amount: 1000, Every: "month", Day: 1}},
		}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("ETag") != `"1"` || id.ExternalID != "acme" || id.Limits.Credits.Remaining != 500 {
		t.Fatalf("Create = %d %s (ETag %q)", resp.StatusCode, jsonOf(id), resp.Header.Get("ETag"))
	}
	if got, _, err := ids.Get(ctx, id.ID); err != nil || got.ID != id.ID || len(got.Limits.RateLimits) != 1 {
		t.Fatalf("Get = %s, %v", jsonOf(got), err)
	}

	// A key joins it, and is listed as its.
	k, _, err := e.client.Create(ctx, client.CreateRequest{Name: "k", Workspace: "w", Role: "viewer", Expiry: "7d", IdentityID: id.ID.String()})
	if err != nil || k.Key.IdentityID != id.ID {
		t.Fatalf("Create a key in it: %v, %v", k, err)
	}
	keys, _, err := e.client.List(ctx, client.ListOptions{IdentityID: id.ID})
	if err != nil || len(keys.Keys) != 1 || keys.Keys[0].ID != k.Key.ID {
		t.Fatalf("List its keys: %s, %v", jsonOf(keys), err)
	}
	_, err = ids.Delete(ctx, id.ID)
	wantProblem(t, err, http.StatusConflict, server.CodeIdentityInUse, keygate.ErrIdentityInUse)
	if _, _, err := e.client.Update(ctx, k.Key.ID, client.UpdateRequest{IdentityID: new("")}); err != nil {
		t.Fatalf("take the key out: %v", err)
	}

	// Update: a version sent as If-Match, conflicts, the balance kept.
	up, resp, err := ids.Update(ctx, id.ID, client.UpdateIdentityRequest{Version: 1, ExternalID: new("acme-2"),
		Limits: &client.IdentityLimitsUpdate{Credits: &client.CreditsUpdate{Refill: &client.Refill{}}}})
	if err != nil || up.Version != 2 || up.ExternalID != "acme-2" || up.Limits.Credits.Remaining != 500 || up.Limits.Credits.Refill != nil ||
		resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("Update = %s, %v", jsonOf(up), err)
	}
	_, _, err = ids.Update(ctx, id.ID, client.UpdateIdentityRequest{Version: 1, ExternalID: new("lost")})
	wantProblem(t, err, http.StatusConflict, server.CodeConflict, keygate.ErrConflict)
	_, _, err = ids.Create(ctx, client.CreateIdentityRequest{ExternalID: "acme-2", Workspace: "w"})
	wantProblem(t, err, http.StatusConflict, server.CodeDuplicateExternalID, keygate.ErrDuplicateExternalID, keygate.ErrInvalidRequest)
	_, _, err = e.client.Create(ctx, client.CreateRequest{Name: "k2", Workspace: "w", Role: "viewer", Expiry: "7d", IdentityID: uuid.NewString()})
	wantProblem(t, err, http.StatusBadRequest, server.CodeUnknownIdentity, keygate.ErrUnknownIdentity, keygate.ErrInvalidRequest)

	if _, err := ids.Delete(ctx, id.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, _, err = ids.Get(ctx, id.ID)
	wantProblem(t, err, http.StatusNotFound, server.CodeIdentityNotFound, keygate.ErrIdentityNotFound, keygate.ErrNotFound)

	// The store down: unavailable.
	e.store.down.Store(true)
	_, _, err = ids.Create(ctx, client.CreateIdentityRequest{ExternalID: "down"})
	e.store.down.Store(false)
	wantProblem(t, err, http.StatusServiceUnavailable, server.CodeUnavailable, keygate.ErrUnavailable)
}

func TestIdentitiesPages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	ids := e.client.Identities()
	var want []uuid.UUID
	for _, ext := range []string{"a", "b", "c", "d", "e"} {
		id, _, err := ids.Create(ctx, client.CreateIdentityRequest{ExternalID: ext, Workspace: "w"})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id.ID)
	}
	if _, _, err := ids.Create(ctx, client.CreateIdentityRequest{ExternalID: "a", Workspace: "v"}); err != nil {
		t.Fatal(err)
	}
	list, resp, err := ids.List(ctx, client.IdentityListOptions{Workspace: "w", Limit: 2})
	if err != nil || len(list.Identities) != 2 || resp.Next == "" || resp.Next != list.Next {
		t.Fatalf("List(limit 2) = %s, next %q, %v", jsonOf(list), resp.Next, err)
	}
	var got []uuid.UUID
	for id, err := range ids.All(ctx, client.IdentityListOptions{Workspace: "w", Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id.ID)
	}
	if len(got) != len(want) {
		t.Fatalf("All = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("All = %v, want %v in order", got, want)
		}
	}
	byExt, _, err := ids.List(ctx, client.IdentityListOptions{ExternalID: "a"})
	if err != nil || len(byExt.Identities) != 2 {
		t.Errorf("List(external id a) = %s, %v; want both", jsonOf(byExt), err)
	}
	// All stops at a failure, once.
	e.store.down.Store(true)
	n := 0
	for _, err := range ids.All(ctx, client.IdentityListOptions{}) {
		n++
		if !errors.Is(err, keygate.ErrUnavailable) {
			t.Errorf("All while down: %v, want ErrUnavailable", err)
		}
	}
	e.store.down.Store(false)
	if n != 1 {
		t.Errorf("All while down yielded %d times, want once", n)
	}
}

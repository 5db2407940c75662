package client_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
)

// jsonOf renders v for failure messages.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCreateAndGet(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	req := client.CreateRequest{
		Name:        "grafana",
		Description: "dashboards",
		Owner:       "alice",
		Workspace:   "tiger",
		Role:        "editor",
		Scopes:      []string{"billing:read"},
		Metadata:    map[string]string{"team": "obs"},
		Expiry:      "30d",
		Limits: &client.Limits{
			Rate:          client.RateLimit{Requests: 10, Window: client.Duration(time.Minute)},
			UsesRemaining: new(int64(5)),
			AllowedCIDRs:  []string{"10.0.0.0/8"},
		},
	}
	before := time.Now()
	created, resp, err := e.client.Create(ctx, req)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("status = %d, want 201", resp.StatusCode)
	}
	k := created.Key
	if want := "keys/" + k.ID.String(); resp.Header.Get("Location") != want {
		t.Errorf("Location = %q, want %q", resp.Header.Get("Location"), want)
	}
	got := []any{k.Name, k.Description, k.Owner, k.Workspace, k.Role, k.Scopes, k.Metadata, k.Version, k.Limits.Rate, *k.Limits.UsesRemaining, k.Limits.AllowedCIDRs}
	want := []any{req.Name, req.Description, req.Owner, req.Workspace, req.Role, req.Scopes, req.Metadata, int64(1), req.Limits.Rate, int64(5), req.Limits.AllowedCIDRs}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("created key = %v, want %v", got, want)
	}
	if exp := k.ExpiresAt.Sub(before); exp < 30*24*time.Hour-time.Minute || exp > 30*24*time.Hour+time.Minute {
		t.Errorf("ExpiresAt = %v, want about 30 days after %v", k.ExpiresAt, before)
	}
	if !k.RevokedAt.IsZero() || !k.LastUsedAt.IsZero() {
		t.Errorf("RevokedAt, LastUsedAt = %v, %v; want zero", k.RevokedAt, k.LastUsedAt)
	}
	tok := created.Token.Reveal()
	if !strings.HasPrefix(tok, "kg_") || !strings.HasPrefix(tok, strings.TrimSuffix(k.Hint, "…")) {
		t.Errorf("token does not start with kg_ and its hint %q", k.Hint)
	}
	if printed := fmt.Sprintf("%v %+v %#v", created, *created, created.Token); strings.Contains(printed, tok) {
		t.Errorf("printing a CreatedKey shows the token: %s", printed)
	}
	if _, err := e.m.VerifyFrom(ctx, tok, netip.MustParseAddr("10.1.2.3")); err != nil {
		t.Errorf("Verify(new token): %v", err)
	}

	got2, resp, err := e.client.Get(ctx, k.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	// The verification above used one of the five uses, a new version.
	if want := `"2"`; resp.Header.Get("ETag") != want || got2.Version != 2 {
		t.Errorf("ETag, Version = %q, %d; want %q, 2", resp.Header.Get("ETag"), got2.Version, want)
	}
	k.Version, *k.Limits.UsesRemaining = 2, 4
	got2.LastUsedAt = time.Time{}
	if !reflect.DeepEqual(got2, k) {
		t.Errorf("Get = %s\nwant  %s", jsonOf(got2), jsonOf(k))
	}
}

func TestListPages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	var ids []uuid.UUID
	for i := range 7 {
		c, _, err := e.client.Create(ctx, client.CreateRequest{
			Name: "k" + strconv.Itoa(i), Workspace: "paging", Owner: []string{"bob", "carol"}[i%2],
			Role: "viewer", Expiry: "never",
		})
		if err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
		ids = append(ids, c.Key.ID)
	}
	if _, _, err := e.client.Revoke(ctx, ids[6]); err != nil {
		t.Fatalf("Revoke: %v", err)
	}

	var got []uuid.UUID
	var sizes []int
	opts := client.ListOptions{Workspace: "paging", Limit: 3}
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("List never returned an empty cursor")
		}
		list, resp, err := e.client.List(ctx, opts)
		if err != nil {
			t.Fatalf("List page %d: %v", page, err)
		}
		if resp.Next != list.Next {
			t.Errorf("Response.Next = %q, KeyList.Next = %q; want equal", resp.Next, list.Next)
		}
		sizes = append(sizes, len(list.Keys))
		for _, k := range list.Keys {
			got = append(got, k.ID)
		}
		if list.Next == "" {
			break
		}
		opts.After = list.Next
	}
	if !reflect.DeepEqual(got, ids) || !reflect.DeepEqual(sizes, []int{3, 3, 1}) {
		t.Errorf("pages of sizes %v hold %v, want sizes [3 3 1] holding %v", sizes, got, ids)
	}

	tests := []struct {
		name string
		opts client.ListOptions
		want []uuid.UUID
	}{
		{"owner", client.ListOptions{Workspace: "paging", Owner: "carol"}, []uuid.UUID{ids[1], ids[3], ids[5]}},
		{"revoked", client.ListOptions{Workspace: "paging", Revoked: client.RevokedOnly}, ids[6:]},
		{"active", client.ListOptions{Workspace: "paging", Revoked: client.RevokedActive, Limit: 2}, ids[:6]},
		{"after", client.ListOptions{Workspace: "paging", After: ids[4].String()}, ids[5:]},
		{"other workspace", client.ListOptions{Workspace: "nothing"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uuid.UUID
			for k, err := range e.client.All(ctx, tt.opts) {
				if err != nil {
					t.Fatalf("All: %v", err)
				}
				got = append(got, k.ID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("All(%+v) = %v, want %v", tt.opts, got, tt.want)
			}
		})
	}
}

func TestAllStopsOnError(t *testing.T) {
	t.Parallel()
	e := setup(t)
	n := 0
	for k, err := range e.client.All(ctx(t), client.ListOptions{Limit: -1}) {
		n++
		if k != nil || !errors.Is(err, keygate.ErrInvalidRequest) {
			t.Errorf("All yielded (%v, %v), want (nil, an invalid request)", k, err)
		}
	}
	if n != 1 {
		t.Errorf("All yielded %d times, want once", n)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	c, _, err := e.client.Create(ctx, client.CreateRequest{Name: "ci", Workspace: "w", Role: "viewer", Scopes: []string{"billing:write"}, Expiry: "7d"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	id := c.Key.ID

	k, resp, err := e.client.Update(ctx, id, client.UpdateRequest{
		Version:  1,
		Name:     new("ci-2"),
		Role:     new("editor"),
		Scopes:   new([]string{}),
		Metadata: new(map[string]string{"a": "b"}),
		Expiry:   new("never"),
		Limits:   &client.LimitsUpdate{Rate: &client.RateLimit{Requests: 5, Window: client.Duration(time.Second)}},
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	got := []any{k.Name, k.Description, k.Role, len(k.Scopes), k.Metadata, k.ExpiresAt.IsZero(), k.Limits.Rate.Requests, k.Version, resp.Header.Get("ETag")}
	want := []any{"ci-2", "", "editor", 0, map[string]string{"a": "b"}, true, 5, int64(2), `"2"`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("updated key = %v, want %v", got, want)
	}

	// Absent fields stay; a stale version is a conflict and changes nothing.
	k, _, err = e.client.Update(ctx, id, client.UpdateRequest{Description: new("x")})
	if err != nil || k.Name != "ci-2" || k.Role != "editor" || k.Description != "x" || k.Version != 3 {
		t.Fatalf("Update(description) = %s, %v; want name, role kept, version 3", jsonOf(k), err)
	}
	_, _, err = e.client.Update(ctx, id, client.UpdateRequest{Version: 2, Name: new("lost")})
	wantProblem(t, err, http.StatusConflict, server.CodeConflict, keygate.ErrConflict)
	if k, _, _ := e.client.Get(ctx, id); k == nil || k.Name != "ci-2" {
		t.Errorf("after a conflict the key is %s, want it unchanged", jsonOf(k))
	}
}

func TestRegenerate(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	c, _, err := e.client.Create(ctx, client.CreateRequest{Name: "ci", Workspace: "w", Role: "viewer", Expiry: "7d"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	old := c.Token.Reveal()

	r, resp, err := e.client.Regenerate(ctx, c.Key.ID, client.RegenerateRequest{Expiry: "2099-12-31"})
	if err != nil {
		t.Fatalf("Regenerate: %v", err)
	}
	if resp.StatusCode != http.StatusOK || r.Key.ID != c.Key.ID || r.Token.Reveal() == old {
		t.Errorf("Regenerate = %d, id %v, same token %v; want 200, id %v, a new token", resp.StatusCode, r.Key.ID, r.Token.Reveal() == old, c.Key.ID)
	}
	if want := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC); !r.Key.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", r.Key.ExpiresAt, want)
	}
	if _, err := e.m.Verify(ctx, old); !errors.Is(err, keygate.ErrInvalid) {
		t.Errorf("Verify(old token) = %v, want ErrInvalid", err)
	}
	if _, err := e.m.Verify(ctx, r.Token.Reveal()); err != nil {
		t.Errorf("Verify(new token) = %v, want nil", err)
	}

	// With a grace period the previous token keeps working.
	r2, _, err := e.client.Regenerate(ctx, c.Key.ID, client.RegenerateRequest{Expiry: "30d", GracePeriod: client.Duration(time.Hour)})
	if err != nil {
		t.Fatalf("Regenerate with grace: %v", err)
	}
	for _, tok := range []string{r.Token.Reveal(), r2.Token.Reveal()} {
		if _, err := e.m.Verify(ctx, tok); err != nil {
			t.Errorf("Verify during the grace period = %v, want nil", err)
		}
	}

	if _, _, err := e.client.Revoke(ctx, c.Key.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	_, _, err = e.client.Regenerate(ctx, c.Key.ID, client.RegenerateRequest{Expiry: "30d"})
	wantProblem(t, err, http.StatusConflict, server.CodeRevoked, keygate.ErrRevoked)
}

func TestRevokeStopsTheKey(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	// A workspace owner: it may read keys, its own included.
	c, _, err := e.client.Create(ctx, client.CreateRequest{Name: "owner", Workspace: "w", Role: "owner", Expiry: "never"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	own := e.clientFor(t, c.Token.Reveal())
	if _, _, err := own.Get(ctx, c.Key.ID); err != nil {
		t.Fatalf("Get with the key itself: %v", err)
	}
	k, _, err := e.client.Revoke(ctx, c.Key.ID)
	if err != nil || k.RevokedAt.IsZero() {
		t.Fatalf("Revoke = %s, %v; want a revoked key", jsonOf(k), err)
	}
	_, resp, err := own.Get(ctx, c.Key.ID)
	wantProblem(t, err, http.StatusUnauthorized, middleware.CodeRevoked, keygate.ErrRevoked)
	if resp == nil || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("401 response %v lacks WWW-Authenticate", resp)
	}
	if resp.Request == nil || resp.Request.Header.Get("Authorization") != "" {
		t.Errorf("Response.Request holds the token, want the request without it")
	}
	// Revoking again changes nothing.
	k2, _, err := e.client.Revoke(ctx, c.Key.ID)
	if err != nil || k2.Version != k.Version {
		t.Errorf("Revoke again = version %v, %v; want version %d, nil", k2, err, k.Version)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	c, _, err := e.client.Create(ctx, client.CreateRequest{Name: "gone", Workspace: "w", Role: "viewer", Expiry: "never"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	resp, err := e.client.Delete(ctx, c.Key.ID)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("Delete = %v, %v; want 204", resp, err)
	}
	_, _, err = e.client.Get(ctx, c.Key.ID)
	wantProblem(t, err, http.StatusNotFound, server.CodeNotFound, keygate.ErrNotFound)
	_, err = e.client.Delete(ctx, c.Key.ID)
	wantProblem(t, err, http.StatusNotFound, server.CodeNotFound, keygate.ErrNotFound)
	if _, err := e.m.Verify(ctx, c.Token.Reveal()); !errors.Is(err, keygate.ErrInvalid) {
		t.Errorf("Verify(deleted key) = %v, want ErrInvalid", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := setup(t)
	viewer := e.clientFor(t, e.token(t, keygate.CreateRequest{Name: "viewer", Workspace: "w", Role: "viewer"}))
	// An editor of w that may also manage keys there.
	editor := e.clientFor(t, e.token(t, keygate.CreateRequest{Name: "editor", Workspace: "w", Role: "editor",
		Scopes: []string{keygate.PermissionViewKeys, keygate.PermissionManageKeys}}))
	if _, _, err := editor.Create(ctx(t), client.CreateRequest{Name: "by-editor", Workspace: "w", Role: "viewer", Expiry: "7d"}); err != nil {
		t.Fatalf("editor creating a viewer key: %v", err)
	}
	anonymous := e.clientFor(t, "")
	// A well-formed token of no key.
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	unknownTok, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	unknown := e.clientFor(t, unknownTok.Reveal())
	if _, _, err := e.client.Create(ctx(t), client.CreateRequest{Name: "taken", Workspace: "w", Role: "viewer", Expiry: "never"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	valid := func(mod func(*client.CreateRequest)) client.CreateRequest {
		r := client.CreateRequest{Name: "n", Workspace: "w", Role: "viewer", Expiry: "30d"}
		mod(&r)
		return r
	}
	inv := keygate.ErrInvalidRequest
	tests := []struct {
		name   string
		c      *client.Client
		req    client.CreateRequest
		status int
		code   string
		is     []error
	}{
		{"viewer may not create", viewer, valid(func(*client.CreateRequest) {}), 403, server.CodeForbidden, []error{keygate.ErrForbidden}},
		{"editor may not create an owner", editor, valid(func(r *client.CreateRequest) { r.Role = "owner" }), 403, server.CodeForbidden, []error{keygate.ErrForbidden}},
		{"editor may not create a super admin", editor, valid(func(r *client.CreateRequest) { r.Role, r.Workspace = "admin", "" }), 403, server.CodeForbidden, []error{keygate.ErrForbidden}},
		{"super admin bound to a workspace", e.client, valid(func(r *client.CreateRequest) { r.Role = "admin" }), 400, server.CodeInvalidField, []error{inv, keygate.ErrInvalidField}},
		{"editor may not leave its workspace", editor, valid(func(r *client.CreateRequest) { r.Workspace = "x" }), 403, server.CodeForbidden, []error{keygate.ErrForbidden}},
		{"invalid expiry", e.client, valid(func(r *client.CreateRequest) { r.Expiry = "tomorrow" }), 400, server.CodeInvalidExpiry, []error{inv, keygate.ErrInvalidExpiry}},
		{"missing expiry", e.client, valid(func(r *client.CreateRequest) { r.Expiry = "" }), 400, server.CodeInvalidExpiry, []error{inv, keygate.ErrInvalidExpiry}},
		{"past expiry", e.client, valid(func(r *client.CreateRequest) { r.Expiry = "2001-01-01" }), 400, server.CodeInvalidExpiry, []error{inv, keygate.ErrInvalidExpiry}},
		{"unknown role", e.client, valid(func(r *client.CreateRequest) { r.Role = "root" }), 400, server.CodeUnknownRole, []error{inv, keygate.ErrUnknownRole}},
		{"duplicate name", e.client, valid(func(r *client.CreateRequest) { r.Name = "taken" }), 409, server.CodeDuplicateName, []error{inv, keygate.ErrDuplicateName}},
		{"name required", e.client, valid(func(r *client.CreateRequest) { r.Name = "" }), 400, server.CodeNameRequired, []error{inv, keygate.ErrNameRequired}},
		{"workspace required", e.client, valid(func(r *client.CreateRequest) { r.Workspace = "" }), 400, server.CodeWorkspaceRequired, []error{inv, keygate.ErrWorkspaceRequired}},
		{"invalid scope", e.client, valid(func(r *client.CreateRequest) { r.Scopes = []string{"no scope"} }), 400, server.CodeInvalidScope, []error{inv, keygate.ErrInvalidScope}},
		{"no permissions", e.client, valid(func(r *client.CreateRequest) { r.Role = "" }), 400, server.CodeNoPermissions, []error{inv, keygate.ErrNoPermissions}},
		{"name too long", e.client, valid(func(r *client.CreateRequest) { r.Name = strings.Repeat("n", 200) }), 400, server.CodeInvalidField, []error{inv, keygate.ErrInvalidField}},
		{"invalid CIDR", e.client, valid(func(r *client.CreateRequest) { r.Limits = &client.Limits{AllowedCIDRs: []string{"10.0.0.1"}} }), 400, server.CodeInvalidField, []error{inv}},
		{"oversized body", e.client, valid(func(r *client.CreateRequest) { r.Description = strings.Repeat("d", server.DefaultMaxBodyBytes) }), 413, server.CodeBodyTooLarge, []error{inv}},
		{"missing key", anonymous, valid(func(*client.CreateRequest) {}), 401, middleware.CodeMissing, []error{middleware.ErrNoCredential}},
		{"unknown key", unknown, valid(func(*client.CreateRequest) {}), 401, middleware.CodeInvalid, []error{keygate.ErrInvalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, resp, err := tt.c.Create(ctx(t), tt.req)
			wantProblem(t, err, tt.status, tt.code, tt.is...)
			if resp == nil || resp.StatusCode != tt.status {
				t.Errorf("Response = %v, want one with status %d", resp, tt.status)
			}
			if errors.Is(err, keygate.ErrUnavailable) {
				t.Errorf("errors.Is(%v, ErrUnavailable) = true, want false", err)
			}
		})
	}
}

func TestStoreDown(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctx(t)
	c, _, err := e.client.Create(ctx, client.CreateRequest{Name: "k", Workspace: "w", Role: "viewer", Expiry: "never"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	e.store.down.Store(true)
	calls := map[string]func() error{
		"create": func() error {
			_, _, err := e.client.Create(ctx, client.CreateRequest{Name: "k2", Workspace: "w", Role: "viewer", Expiry: "never"})
			return err
		},
		"get":  func() error { _, _, err := e.client.Get(ctx, c.Key.ID); return err },
		"list": func() error { _, _, err := e.client.List(ctx, client.ListOptions{}); return err },
		"update": func() error {
			_, _, err := e.client.Update(ctx, c.Key.ID, client.UpdateRequest{Name: new("x")})
			return err
		},
		"revoke": func() error { _, _, err := e.client.Revoke(ctx, c.Key.ID); return err },
		"delete": func() error { _, err := e.client.Delete(ctx, c.Key.ID); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			wantProblem(t, err, http.StatusServiceUnavailable, server.CodeUnavailable, keygate.ErrUnavailable)
			if strings.Contains(err.Error(), "10.9.8.7") || strings.Contains(err.Error(), "keygate_internal") {
				t.Errorf("error %q shows the store's internal error", err)
			}
		})
	}
}

func TestAllStopsOnRepeatedCursor(t *testing.T) {
	t.Parallel()
	a, b := uuid.NewString(), uuid.NewString()
	tests := []struct {
		name  string
		after string            // ListOptions.After
		next  map[string]string // the server's next cursor for each after
		keys  int               // keys yielded before the error
	}{
		{"same cursor again", "", map[string]string{"": a, a: a}, 2},
		{"cycle", "", map[string]string{"": a, a: b, b: a}, 3},
		{"back to the first cursor", a, map[string]string{a: b, b: a}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				next := tt.next[r.URL.Query().Get("after")]
				_, _ = fmt.Fprintf(w, `{"keys":[{"id":%q,"name":"k"}],"next":%q}`, uuid.NewString(), next)
			}))
			t.Cleanup(srv.Close)
			c, err := client.New(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			keys, calls := 0, 0
			var last error
			for k, err := range c.All(ctx(t), client.ListOptions{After: tt.after}) {
				if calls++; calls > 50 {
					t.Fatal("All kept going after 50 yields, want it to stop at the repeated cursor")
				}
				if err != nil {
					last = err
					continue
				}
				if k != nil {
					keys++
				}
			}
			if keys != tt.keys || !errors.Is(last, client.ErrInvalidResponse) {
				t.Errorf("All yielded %d keys, then %v; want %d keys, then ErrInvalidResponse", keys, last, tt.keys)
			}
		})
	}
}

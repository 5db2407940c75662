package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store"
)

// The authorization matrix of identities: every route of /identities, and
// POST /keys putting a key in an identity, × the principals of the key
// matrix (authz_test.go) × the targets below, each cell with the answer the
// documented rules give, written out by hand:
//
//   - keygate.Manager: managing an identity needs apikey:manage in its
//     workspace, viewing it apikey:view; an identity the caller may neither
//     view nor manage is answered identity_not_found, as a missing one; a
//     bound principal lists only its workspace.
//   - Principal.IdentityLimits and Manager.CreateIdentity/UpdateIdentity: a
//     principal gives no identity, and puts no key in one with, looser
//     limits than its own and its identity's (an identity holds no IP
//     allow-list), so a key holder cannot widen its identity's limits.
//
// A refused cell leaves its target as it was and creates nothing.

// The routes of identities.
const (
	rICreate = "POST /identities"
	rIList   = "GET /identities"
	rIGet    = "GET /identities/{id}"
	rIUpdate = "PATCH /identities/{id}"
	rIDelete = "DELETE /identities/{id}"
	// rILink is POST /keys of a key of the target identity's workspace
	// (scope cluster:read, a day, 5 uses) in the target identity.
	rILink = "POST /keys in an identity"
)

// The identity targets: tOwn, tOther and tUnbound are identities of
// tiger, lion and none limited to 10 requests a second and 100 credits
// (within pIdentity's and pUses' limits); for POST /identities, such an
// identity to create; for GET /identities, ?workspace=tiger or lion; tAll,
// no filter. tWide is, for POST, an identity of tiger without limits to
// create or put a key in; for PATCH, taking every limit from a tOwn. tHome
// is PATCH raising the rate of an identity limited as pIdentity's is
// (pIdentity's own, for pIdentity) to 1000 a second.
const tHome = "home"

// strictLimits is the JSON of tOwn's limits.
const strictLimits = `{"rate_limits":[{"name":"requests","requests":10,"window":"1s"}],"credits":{"remaining":100}}`

var is404Identity = outcome{status: 404, code: server.CodeIdentityNotFound}

// identityMatrix is the matrix of identities: one row per route,
// principal and target.
var identityMatrix = []cell{
	// admin, and an unbound owner: everything, everywhere.
	{rICreate, pAdmin, tOwn, is201}, {rICreate, pAdmin, tOther, is201}, {rICreate, pAdmin, tUnbound, is201}, {rICreate, pAdmin, tWide, is201},
	{rIList, pAdmin, tOwn, lists("tiger")}, {rIList, pAdmin, tOther, lists("lion")}, {rIList, pAdmin, tAll, lists(tAll)},
	{rIGet, pAdmin, tOwn, is200}, {rIGet, pAdmin, tOther, is200}, {rIGet, pAdmin, tUnbound, is200},
	{rIUpdate, pAdmin, tOwn, is200}, {rIUpdate, pAdmin, tOther, is200}, {rIUpdate, pAdmin, tUnbound, is200}, {rIUpdate, pAdmin, tWide, is200}, {rIUpdate, pAdmin, tHome, is200},
	{rIDelete, pAdmin, tOwn, is204}, {rIDelete, pAdmin, tOther, is204}, {rIDelete, pAdmin, tUnbound, is204},
	{rILink, pAdmin, tOwn, is201}, {rILink, pAdmin, tOther, is201}, {rILink, pAdmin, tWide, is201},

	{rICreate, pOwner, tOwn, is201}, {rICreate, pOwner, tOther, is201}, {rICreate, pOwner, tUnbound, is201}, {rICreate, pOwner, tWide, is201},
	{rIList, pOwner, tOwn, lists("tiger")}, {rIList, pOwner, tOther, lists("lion")}, {rIList, pOwner, tAll, lists(tAll)},
	{rIGet, pOwner, tOwn, is200}, {rIGet, pOwner, tOther, is200}, {rIGet, pOwner, tUnbound, is200},
	{rIUpdate, pOwner, tOwn, is200}, {rIUpdate, pOwner, tOther, is200}, {rIUpdate, pOwner, tUnbound, is200}, {rIUpdate, pOwner, tWide, is200}, {rIUpdate, pOwner, tHome, is200},
	{rIDelete, pOwner, tOwn, is204}, {rIDelete, pOwner, tOther, is204}, {rIDelete, pOwner, tUnbound, is204},
	{rILink, pOwner, tOwn, is201}, {rILink, pOwner, tOther, is201}, {rILink, pOwner, tWide, is201},

	// owner bound to tiger: everything in tiger; identities elsewhere do
	// not exist for it.
	{rICreate, pOwnerTiger, tOwn, is201}, {rICreate, pOwnerTiger, tOther, outside("lion")}, {rICreate, pOwnerTiger, tUnbound, outside("")}, {rICreate, pOwnerTiger, tWide, is201},
	{rIList, pOwnerTiger, tOwn, lists("tiger")}, {rIList, pOwnerTiger, tOther, outside("lion")}, {rIList, pOwnerTiger, tAll, lists("tiger")},
	{rIGet, pOwnerTiger, tOwn, is200}, {rIGet, pOwnerTiger, tOther, is404Identity}, {rIGet, pOwnerTiger, tUnbound, is404Identity},
	{rIUpdate, pOwnerTiger, tOwn, is200}, {rIUpdate, pOwnerTiger, tOther, is404Identity}, {rIUpdate, pOwnerTiger, tUnbound, is404Identity}, {rIUpdate, pOwnerTiger, tWide, is200}, {rIUpdate, pOwnerTiger, tHome, is200},
	{rIDelete, pOwnerTiger, tOwn, is204}, {rIDelete, pOwnerTiger, tOther, is404Identity}, {rIDelete, pOwnerTiger, tUnbound, is404Identity},
	{rILink, pOwnerTiger, tOwn, is201}, {rILink, pOwnerTiger, tOther, outside("lion")}, {rILink, pOwnerTiger, tWide, is201},

	// editor and viewer: no apikey:view nor apikey:manage; no identity
	// exists for them.
	{rICreate, pEditor, tOwn, lacks("apikey:manage")}, {rICreate, pEditor, tOther, outside("lion")}, {rICreate, pEditor, tUnbound, outside("")}, {rICreate, pEditor, tWide, lacks("apikey:manage")},
	{rIList, pEditor, tOwn, lacks("apikey:view")}, {rIList, pEditor, tOther, outside("lion")}, {rIList, pEditor, tAll, lacks("apikey:view")},
	{rIGet, pEditor, tOwn, is404Identity}, {rIGet, pEditor, tOther, is404Identity}, {rIGet, pEditor, tUnbound, is404Identity},
	{rIUpdate, pEditor, tOwn, is404Identity}, {rIUpdate, pEditor, tOther, is404Identity}, {rIUpdate, pEditor, tUnbound, is404Identity}, {rIUpdate, pEditor, tWide, is404Identity}, {rIUpdate, pEditor, tHome, is404Identity},
	{rIDelete, pEditor, tOwn, is404Identity}, {rIDelete, pEditor, tOther, is404Identity}, {rIDelete, pEditor, tUnbound, is404Identity},
	{rILink, pEditor, tOwn, lacks("apikey:manage")}, {rILink, pEditor, tOther, outside("lion")}, {rILink, pEditor, tWide, lacks("apikey:manage")},

	{rICreate, pViewer, tOwn, lacks("apikey:manage")}, {rICreate, pViewer, tOther, outside("lion")}, {rICreate, pViewer, tUnbound, outside("")}, {rICreate, pViewer, tWide, lacks("apikey:manage")},
	{rIList, pViewer, tOwn, lacks("apikey:view")}, {rIList, pViewer, tOther, outside("lion")}, {rIList, pViewer, tAll, lacks("apikey:view")},
	{rIGet, pViewer, tOwn, is404Identity}, {rIGet, pViewer, tOther, is404Identity}, {rIGet, pViewer, tUnbound, is404Identity},
	{rIUpdate, pViewer, tOwn, is404Identity}, {rIUpdate, pViewer, tOther, is404Identity}, {rIUpdate, pViewer, tUnbound, is404Identity}, {rIUpdate, pViewer, tWide, is404Identity}, {rIUpdate, pViewer, tHome, is404Identity},
	{rIDelete, pViewer, tOwn, is404Identity}, {rIDelete, pViewer, tOther, is404Identity}, {rIDelete, pViewer, tUnbound, is404Identity},
	{rILink, pViewer, tOwn, lacks("apikey:manage")}, {rILink, pViewer, tOther, outside("lion")}, {rILink, pViewer, tWide, lacks("apikey:manage")},

	// apikey:view in tiger: sees tiger's identities, changes none.
	{rICreate, pView, tOwn, lacks("apikey:manage")}, {rICreate, pView, tOther, outside("lion")}, {rICreate, pView, tUnbound, outside("")}, {rICreate, pView, tWide, lacks("apikey:manage")},
	{rIList, pView, tOwn, lists("tiger")}, {rIList, pView, tOther, outside("lion")}, {rIList, pView, tAll, lists("tiger")},
	{rIGet, pView, tOwn, is200}, {rIGet, pView, tOther, is404Identity}, {rIGet, pView, tUnbound, is404Identity},
	{rIUpdate, pView, tOwn, lacks("apikey:manage")}, {rIUpdate, pView, tOther, is404Identity}, {rIUpdate, pView, tUnbound, is404Identity}, {rIUpdate, pView, tWide, lacks("apikey:manage")}, {rIUpdate, pView, tHome, lacks("apikey:manage")},
	{rIDelete, pView, tOwn, lacks("apikey:manage")}, {rIDelete, pView, tOther, is404Identity}, {rIDelete, pView, tUnbound, is404Identity},
	{rILink, pView, tOwn, lacks("apikey:manage")}, {rILink, pView, tOther, outside("lion")}, {rILink, pView, tWide, lacks("apikey:manage")},

	// apikey:manage alone in tiger: manages tiger's identities (they hold
	// no permission, and the targets no key), sees none; a key it would
	// create holds cluster:read, which it lacks.
	{rICreate, pManage, tOwn, is201}, {rICreate, pManage, tOther, outside("lion")}, {rICreate, pManage, tUnbound, outside("")}, {rICreate, pManage, tWide, is201},
	{rIList, pManage, tOwn, lacks("apikey:view")}, {rIList, pManage, tOther, outside("lion")}, {rIList, pManage, tAll, lacks("apikey:view")},
	{rIGet, pManage, tOwn, lacks("apikey:view")}, {rIGet, pManage, tOther, is404Identity}, {rIGet, pManage, tUnbound, is404Identity},
	{rIUpdate, pManage, tOwn, is200}, {rIUpdate, pManage, tOther, is404Identity}, {rIUpdate, pManage, tUnbound, is404Identity}, {rIUpdate, pManage, tWide, is200}, {rIUpdate, pManage, tHome, is200},
	{rIDelete, pManage, tOwn, is204}, {rIDelete, pManage, tOther, is404Identity}, {rIDelete, pManage, tUnbound, is404Identity},
	{rILink, pManage, tOwn, lacks("cluster:read")}, {rILink, pManage, tOther, outside("lion")}, {rILink, pManage, tWide, lacks("cluster:read")},

	{rICreate, pManageRead, tOwn, is201}, {rICreate, pManageRead, tOther, outside("lion")}, {rICreate, pManageRead, tUnbound, outside("")}, {rICreate, pManageRead, tWide, is201},
	{rIList, pManageRead, tOwn, lacks("apikey:view")}, {rIList, pManageRead, tOther, outside("lion")}, {rIList, pManageRead, tAll, lacks("apikey:view")},
	{rIGet, pManageRead, tOwn, lacks("apikey:view")}, {rIGet, pManageRead, tOther, is404Identity}, {rIGet, pManageRead, tUnbound, is404Identity},
	{rIUpdate, pManageRead, tOwn, is200}, {rIUpdate, pManageRead, tOther, is404Identity}, {rIUpdate, pManageRead, tUnbound, is404Identity}, {rIUpdate, pManageRead, tWide, is200}, {rIUpdate, pManageRead, tHome, is200},
	{rIDelete, pManageRead, tOwn, is204}, {rIDelete, pManageRead, tOther, is404Identity}, {rIDelete, pManageRead, tUnbound, is404Identity},
	{rILink, pManageRead, tOwn, is201}, {rILink, pManageRead, tOther, outside("lion")}, {rILink, pManageRead, tWide, is201},

	// apikey:verify in tiger: no identity exists for it.
	{rICreate, pVerify, tOwn, lacks("apikey:manage")}, {rICreate, pVerify, tOther, outside("lion")}, {rICreate, pVerify, tUnbound, outside("")}, {rICreate, pVerify, tWide, lacks("apikey:manage")},
	{rIList, pVerify, tOwn, lacks("apikey:view")}, {rIList, pVerify, tOther, outside("lion")}, {rIList, pVerify, tAll, lacks("apikey:view")},
	{rIGet, pVerify, tOwn, is404Identity}, {rIGet, pVerify, tOther, is404Identity}, {rIGet, pVerify, tUnbound, is404Identity},
	{rIUpdate, pVerify, tOwn, is404Identity}, {rIUpdate, pVerify, tOther, is404Identity}, {rIUpdate, pVerify, tUnbound, is404Identity}, {rIUpdate, pVerify, tWide, is404Identity}, {rIUpdate, pVerify, tHome, is404Identity},
	{rIDelete, pVerify, tOwn, is404Identity}, {rIDelete, pVerify, tOther, is404Identity}, {rIDelete, pVerify, tUnbound, is404Identity},
	{rILink, pVerify, tOwn, lacks("apikey:manage")}, {rILink, pVerify, tOther, outside("lion")}, {rILink, pVerify, tWide, lacks("apikey:manage")},

	// owner of tiger with 1000 uses: its identities need credits within
	// them (never refilled: uses never are), its keys uses within them.
	{rICreate, pUses, tOwn, is201}, {rICreate, pUses, tOther, outside("lion")}, {rICreate, pUses, tUnbound, outside("")}, {rICreate, pUses, tWide, looser("uses")},
	{rIList, pUses, tOwn, lists("tiger")}, {rIList, pUses, tOther, outside("lion")}, {rIList, pUses, tAll, lists("tiger")},
	{rIGet, pUses, tOwn, is200}, {rIGet, pUses, tOther, is404Identity}, {rIGet, pUses, tUnbound, is404Identity},
	{rIUpdate, pUses, tOwn, is200}, {rIUpdate, pUses, tOther, is404Identity}, {rIUpdate, pUses, tUnbound, is404Identity}, {rIUpdate, pUses, tWide, looser("uses")}, {rIUpdate, pUses, tHome, looser("uses")},
	{rIDelete, pUses, tOwn, is204}, {rIDelete, pUses, tOther, is404Identity}, {rIDelete, pUses, tUnbound, is404Identity},
	{rILink, pUses, tOwn, is201}, {rILink, pUses, tOther, outside("lion")}, {rILink, pUses, tWide, is201},

	// owner of tiger expiring in 7 days: identities do not expire; its
	// keys do, within a day.
	{rICreate, pSevenDays, tOwn, is201}, {rICreate, pSevenDays, tOther, outside("lion")}, {rICreate, pSevenDays, tUnbound, outside("")}, {rICreate, pSevenDays, tWide, is201},
	{rIList, pSevenDays, tOwn, lists("tiger")}, {rIList, pSevenDays, tOther, outside("lion")}, {rIList, pSevenDays, tAll, lists("tiger")},
	{rIGet, pSevenDays, tOwn, is200}, {rIGet, pSevenDays, tOther, is404Identity}, {rIGet, pSevenDays, tUnbound, is404Identity},
	{rIUpdate, pSevenDays, tOwn, is200}, {rIUpdate, pSevenDays, tOther, is404Identity}, {rIUpdate, pSevenDays, tUnbound, is404Identity}, {rIUpdate, pSevenDays, tWide, is200}, {rIUpdate, pSevenDays, tHome, is200},
	{rIDelete, pSevenDays, tOwn, is204}, {rIDelete, pSevenDays, tOther, is404Identity}, {rIDelete, pSevenDays, tUnbound, is404Identity},
	{rILink, pSevenDays, tOwn, is201}, {rILink, pSevenDays, tOther, outside("lion")}, {rILink, pSevenDays, tWide, is201},

	// the previous token of a regenerated owner: views, changes nothing.
	{rICreate, pOldSecret, tOwn, oldSecret}, {rICreate, pOldSecret, tOther, oldSecret}, {rICreate, pOldSecret, tUnbound, oldSecret}, {rICreate, pOldSecret, tWide, oldSecret},
	{rIList, pOldSecret, tOwn, lists("tiger")}, {rIList, pOldSecret, tOther, outside("lion")}, {rIList, pOldSecret, tAll, lists("tiger")},
	{rIGet, pOldSecret, tOwn, is200}, {rIGet, pOldSecret, tOther, is404Identity}, {rIGet, pOldSecret, tUnbound, is404Identity},
	{rIUpdate, pOldSecret, tOwn, oldSecret}, {rIUpdate, pOldSecret, tOther, oldSecret}, {rIUpdate, pOldSecret, tUnbound, oldSecret}, {rIUpdate, pOldSecret, tWide, oldSecret}, {rIUpdate, pOldSecret, tHome, oldSecret},
	{rIDelete, pOldSecret, tOwn, oldSecret}, {rIDelete, pOldSecret, tOther, oldSecret}, {rIDelete, pOldSecret, tUnbound, oldSecret},
	{rILink, pOldSecret, tOwn, oldSecret}, {rILink, pOldSecret, tOther, oldSecret}, {rILink, pOldSecret, tWide, oldSecret},

	// a revoked owner's token: refused by the middleware everywhere.
	{rICreate, pRevoked, tOwn, is401Revoked}, {rICreate, pRevoked, tOther, is401Revoked}, {rICreate, pRevoked, tUnbound, is401Revoked}, {rICreate, pRevoked, tWide, is401Revoked},
	{rIList, pRevoked, tOwn, is401Revoked}, {rIList, pRevoked, tOther, is401Revoked}, {rIList, pRevoked, tAll, is401Revoked},
	{rIGet, pRevoked, tOwn, is401Revoked}, {rIGet, pRevoked, tOther, is401Revoked}, {rIGet, pRevoked, tUnbound, is401Revoked},
	{rIUpdate, pRevoked, tOwn, is401Revoked}, {rIUpdate, pRevoked, tOther, is401Revoked}, {rIUpdate, pRevoked, tUnbound, is401Revoked}, {rIUpdate, pRevoked, tWide, is401Revoked}, {rIUpdate, pRevoked, tHome, is401Revoked},
	{rIDelete, pRevoked, tOwn, is401Revoked}, {rIDelete, pRevoked, tOther, is401Revoked}, {rIDelete, pRevoked, tUnbound, is401Revoked},
	{rILink, pRevoked, tOwn, is401Revoked}, {rILink, pRevoked, tOther, is401Revoked}, {rILink, pRevoked, tWide, is401Revoked},

	// owner of tiger in an identity of 100 requests a second and 1000
	// credits a month: its identities and its keys' need limits within
	// those; it cannot widen its own identity, nor any it manages.
	{rICreate, pIdentity, tOwn, is201}, {rICreate, pIdentity, tOther, outside("lion")}, {rICreate, pIdentity, tUnbound, outside("")}, {rICreate, pIdentity, tWide, looser("rate")},
	{rIList, pIdentity, tOwn, lists("tiger")}, {rIList, pIdentity, tOther, outside("lion")}, {rIList, pIdentity, tAll, lists("tiger")},
	{rIGet, pIdentity, tOwn, is200}, {rIGet, pIdentity, tOther, is404Identity}, {rIGet, pIdentity, tUnbound, is404Identity},
	{rIUpdate, pIdentity, tOwn, is200}, {rIUpdate, pIdentity, tOther, is404Identity}, {rIUpdate, pIdentity, tUnbound, is404Identity}, {rIUpdate, pIdentity, tWide, looser("rate")}, {rIUpdate, pIdentity, tHome, looser("rate")},
	{rIDelete, pIdentity, tOwn, is204}, {rIDelete, pIdentity, tOther, is404Identity}, {rIDelete, pIdentity, tUnbound, is404Identity},
	{rILink, pIdentity, tOwn, is201}, {rILink, pIdentity, tOther, outside("lion")}, {rILink, pIdentity, tWide, looser("rate")},
}

// homeLimits are pIdentity's identity's limits.
var homeLimits = keygate.IdentityLimits{
	RateLimits: []keygate.RateLimit{{Name: "requests", Requests: 100, Window: time.Second}},
	Credits:    &keygate.Credits{Remaining: 1000, Refill: &keygate.Refill{Amount: 1000, Every: store.PeriodMonth, Day: 1}},
}

// homeIdentity creates pIdentity's identity, once per fixture.
func homeIdentity(t *testing.T, f *fixture) *store.Identity {
	t.Helper()
	id, err := f.m.CreateIdentity(context.Background(), keygate.System(), keygate.CreateIdentityRequest{
		ExternalID: "home of " + pIdentity, Workspace: "tiger", Limits: homeLimits})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestIdentityAuthorizationMatrix runs every cell of identityMatrix over
// the REST API.
func TestIdentityAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	tokens, reach := matrixPrincipals(t, f)
	ctx := context.Background()
	// Identities of every workspace, for the lists.
	for _, ws := range []string{"tiger", "lion", ""} {
		if _, err := f.m.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{ExternalID: "seed", Workspace: ws}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	perPrincipal := map[string]int{}
	for _, c := range identityMatrix {
		if seen[c.name()] {
			t.Errorf("row %s appears twice", c.name())
		}
		seen[c.name()] = true
		perPrincipal[c.as]++
	}
	for p := range tokens {
		if perPrincipal[p] != 21 {
			t.Errorf("principal %s has %d identity rows, want 21", p, perPrincipal[p])
		}
	}
	homeID := principalIdentity(t, f, tokens[pIdentity])
	for i, c := range identityMatrix {
		t.Run(c.name(), func(t *testing.T) {
			runIdentityCell(t, f, i, c, tokens[c.as], reach[c.as], homeID)
		})
	}
	// No cell changed pIdentity's own identity.
	after, err := f.m.GetIdentity(ctx, keygate.System(), homeID)
	if err != nil || after.Version != 1 || !slices.Equal(after.RateLimits, homeLimits.RateLimits) {
		t.Errorf("pIdentity's identity after the matrix: %+v, %v; want it as it was", after, err)
	}
}

// principalIdentity returns the identity of the key whose token is tok.
func principalIdentity(t *testing.T, f *fixture, tok string) uuid.UUID {
	t.Helper()
	k, err := f.m.Verify(context.Background(), tok)
	if err != nil || k.IdentityID == uuid.Nil {
		t.Fatalf("the identity principal's key: %+v, %v", k, err)
	}
	return k.IdentityID
}

// identityTarget creates the target identity of a cell in ws.
func identityTarget(t *testing.T, f *fixture, name, ws string, limits keygate.IdentityLimits) *store.Identity {
	t.Helper()
	id, err := f.m.CreateIdentity(context.Background(), keygate.System(), keygate.CreateIdentityRequest{ExternalID: name, Workspace: ws, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// strictIdentity are tOwn's limits.
var strictIdentity = keygate.IdentityLimits{
	RateLimits: []keygate.RateLimit{{Name: "requests", Requests: 10, Window: time.Second}},
	Credits:    &keygate.Credits{Remaining: 100},
}

// runIdentityCell runs cell c, the i-th, as the principal of token, which
// may view or manage the workspaces reach; homeID is pIdentity's identity.
func runIdentityCell(t *testing.T, f *fixture, i int, c cell, token string, reach []string, homeID uuid.UUID) {
	ctx := context.Background()
	ws := targetWorkspace(c.target)
	name := fmt.Sprintf("identity-cell-%d", i)
	var req request
	var target *store.Identity
	switch c.route {
	case rICreate:
		body := map[string]any{"external_id": name}
		if c.target != tWide {
			body["limits"] = json.RawMessage(strictLimits)
		}
		if ws != "" {
			body["workspace"] = ws
		}
		req = request{method: "POST", path: "/identities", contentType: "application/json", body: mustJSON(t, body)}
	case rIList:
		req = request{method: "GET", path: "/identities?limit=1000"}
		if c.target != tAll {
			req.path += "&workspace=" + ws
		}
	case rILink:
		idWS := ws
		limits := strictIdentity
		if c.target == tWide {
			limits = keygate.IdentityLimits{}
		}
		target = identityTarget(t, f, name, idWS, limits)
		body := map[string]any{"name": name, "scopes": []string{"cluster:read"}, "expiry": "1d", "limits": map[string]any{"uses_remaining": 5},
			"identity_id": target.ID.String()}
		if ws != "" {
			body["workspace"] = ws
		}
		req = request{method: "POST", path: "/keys", contentType: "application/json", body: mustJSON(t, body)}
	default:
		limits := strictIdentity
		if c.target == tHome {
			limits = homeLimits
		}
		target = identityTarget(t, f, name, ws, limits)
		if c.target == tHome && c.as == pIdentity {
			var err error
			if target, err = f.m.GetIdentity(ctx, keygate.System(), homeID); err != nil {
				t.Fatal(err)
			}
		}
		path := "/identities/" + target.ID.String()
		switch c.route {
		case rIGet:
			req = request{method: "GET", path: path}
		case rIUpdate:
			body := `{"metadata":{"changed":"yes"}}`
			switch c.target {
			case tWide:
				body = `{"limits":{"rate_limits":[],"credits":{"remaining":-1}}}`
			case tHome:
				body = `{"limits":{"rate_limits":[{"name":"requests","requests":1000,"window":"1s"}]}}`
			}
			req = request{method: "PATCH", path: path, contentType: "application/json", body: body}
		case rIDelete:
			req = request{method: "DELETE", path: path}
		default:
			t.Fatalf("unknown route %q", c.route)
		}
	}
	req.token = token
	w := f.do(t, req)

	// The existence oracle: an identity the principal may neither view
	// nor manage is answered exactly as one that does not exist.
	if target != nil && c.route != rILink && !slices.Contains(reach, ws) {
		r := req
		r.path = strings.Replace(r.path, target.ID.String(), uuid.NewString(), 1)
		sameAnswer(t, w, f.do(t, r))
	}

	want := c.want
	want.lists = ""
	checkOutcome(t, w, want)
	if t.Failed() {
		return
	}

	switch {
	case c.route == rIList && c.want.lists != "":
		var list server.IdentityList
		if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
			t.Fatalf("decode list %s: %v", w.Body, err)
		}
		workspaces := map[string]bool{}
		for _, id := range list.Identities {
			workspaces[id.Workspace] = true
		}
		switch {
		case c.want.lists == tAll:
			if !workspaces["tiger"] || !workspaces["lion"] || !workspaces[""] {
				t.Errorf("listed identities of %v, want every workspace", workspaces)
			}
		case len(workspaces) != 1 || !workspaces[c.want.lists]:
			t.Errorf("listed identities of %v, want only and some of %q", workspaces, c.want.lists)
		}
	case c.route == rICreate:
		page, err := f.m.ListIdentities(ctx, keygate.System(), keygate.IdentityListRequest{ExternalID: name})
		if err != nil {
			t.Fatal(err)
		}
		created := c.want.status == http.StatusCreated
		if got := len(page.Identities); got != map[bool]int{true: 1, false: 0}[created] {
			t.Errorf("%d identities %q stored, want created: %v", got, name, created)
		}
		if created && (page.Identities[0].Workspace != ws || w.Header().Get("Location") != "identities/"+page.Identities[0].ID.String()) {
			t.Errorf("created %+v at %q, want it in %q at its Location", page.Identities[0], w.Header().Get("Location"), ws)
		}
	case c.route == rILink:
		page, err := f.m.List(ctx, keygate.System(), keygate.ListRequest{IdentityID: target.ID})
		if err != nil {
			t.Fatal(err)
		}
		created := c.want.status == http.StatusCreated
		if got := len(page.Keys); got != map[bool]int{true: 1, false: 0}[created] || created && page.Keys[0].Name != name {
			t.Errorf("%d keys in the identity, want created: %v", got, created)
		}
	case target != nil:
		after, err := f.m.GetIdentity(ctx, keygate.System(), target.ID)
		switch {
		case c.route == rIDelete && c.want.status == http.StatusNoContent:
			if !errors.Is(err, keygate.ErrIdentityNotFound) {
				t.Errorf("after DELETE: %v, %v; want ErrIdentityNotFound", after, err)
			}
		case err != nil:
			t.Fatalf("the target is gone: %v", err)
		case c.route == rIUpdate && c.want.status == http.StatusOK:
			if after.Version != target.Version+1 {
				t.Errorf("after PATCH: version %d, want %d", after.Version, target.Version+1)
			}
		default:
			if after.Version != target.Version || after.ExternalID != target.ExternalID || !slices.Equal(after.RateLimits, target.RateLimits) {
				t.Errorf("the target changed: %+v, was %+v", after, target)
			}
		}
	}
}

package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/server"
)

// The authorization matrix (issue 8, part 2; OWASP API1 object-level and
// API5 function-level authorization): every route of the API × the
// principals below × the targets below, each cell with the exact answer
// the documented rules give. The expectations are written out by hand
// from the documentation, never computed by the code under test's logic:
//
//   - README "Permissions": admin is a super admin (everything, every
//     workspace); owner holds "*:*", in its workspace if bound; editor
//     "*:read" and "*:write"; viewer "*:read". Seeing keys needs
//     apikey:view, managing them apikey:manage; "*:read" and "*:write" do
//     not include them. No key may create or widen a key beyond what it
//     holds: permissions, workspace, lifetime, limits.
//   - keygate.Manager: Create, Update, Regenerate, Revoke and Delete need
//     apikey:manage in the key's workspace and every permission the key
//     holds (a super-admin key: only a super admin); Get and List need
//     apikey:view; a key the caller may neither view nor manage is
//     answered not_found, as a key that does not exist (lookup); a bound
//     principal lists only its workspace and asking for another is 403
//     workspace (List); ListRoles needs apikey:view; VerifyFor needs
//     apikey:verify and answers a key of a workspace where the caller
//     lacks it as an unknown token, with no use taken.
//   - Key.Principal: a principal acting with a previous secret, during a
//     regeneration's grace period, may view and verify but change nothing
//     (old_secret); a revoked key's token is refused by the middleware
//     (401 revoked).
//   - server/doc.go: the statuses, codes and reasons of each refusal.
//
// Every cell runs against fresh targets, so no change leaks into another
// cell; a refused cell must leave its target exactly as it was, and a
// refused create must store nothing.

// The principals: keys whose tokens call the API. "tiger" is the
// workspace every bound principal is bound to.
const (
	pAdmin      = "admin"                            // role admin (super admin)
	pOwner      = "owner"                            // role owner, unbound
	pOwnerTiger = "owner@tiger"                      // role owner, bound to tiger
	pEditor     = "editor@tiger"                     // role editor
	pViewer     = "viewer@tiger"                     // role viewer
	pView       = "apikey:view@tiger"                // scope apikey:view only
	pManage     = "apikey:manage@tiger"              // scope apikey:manage only
	pManageRead = "apikey:manage+cluster:read@tiger" // apikey:manage and cluster:read, which every target key holds
	pVerify     = "apikey:verify@tiger"              // scope apikey:verify only
	pUses       = "owner@tiger,1000-uses"            // role owner, limited to 1000 uses
	pSevenDays  = "owner@tiger,7-days"               // role owner, expiring in 7 days
	pOldSecret  = "owner@tiger,old-secret"           // role owner, regenerated: its previous token in a 1h grace period
	pRevoked    = "owner@tiger,revoked"              // role owner, revoked
	pIdentity   = "owner@tiger,in-identity"          // role owner, in an identity of 100 requests a second and 1000 credits a month
)

// The routes.
const (
	rCreate = "POST /keys"
	rList   = "GET /keys"
	rGet    = "GET /keys/{id}"
	rUpdate = "PATCH /keys/{id}"
	rRegen  = "POST /keys/{id}/regenerate"
	rRevoke = "POST /keys/{id}/revoke"
	rDelete = "DELETE /keys/{id}"
	rVerify = "POST /keys/verify"
	rRoles  = "GET /roles"
)

// The targets. A target key holds the scope cluster:read, expires in a
// day and has 5 uses left, unless said otherwise.
const (
	// tOwn: a key of tiger; for POST /keys, a key to create in tiger; for
	// GET /keys, ?workspace=tiger; for POST /keys/verify, the token of a
	// key of tiger.
	tOwn = "own"
	// tOther: the same in workspace lion.
	tOther = "other"
	// tUnbound: the same with no workspace.
	tUnbound = "unbound"
	// tWide: for POST /keys, a key of tiger that never expires and has no
	// usage limit; for regenerate, such a key regenerated to never expire.
	tWide = "own,unlimited"
	// tSuper: an unbound admin key: for POST /keys, creating one; for
	// revoke, revoking one.
	tSuper = "admin-key"
	// tAll: GET /keys without a workspace filter.
	tAll = "no-filter"
	// tNone: GET /roles has no target.
	tNone = "-"
)

// outcome is the answer a cell expects.
type outcome struct {
	status int
	// code is the problem's code for an error status.
	code string
	// reason is a 403 forbidden's reason; about is what it names: the
	// permission lacked ("permission"), the workspace ("workspace") or the
	// limit ("limit").
	reason, about string
	// verdict, for POST /keys/verify's 200: "valid" or the code of an
	// invalid token.
	verdict string
	// lists, for GET /keys's 200: the workspace of every key listed, or
	// tAll for keys of every workspace (tiger, lion and none).
	lists string
}

var (
	is200        = outcome{status: 200}
	is201        = outcome{status: 201}
	is204        = outcome{status: 204}
	is404        = outcome{status: 404, code: server.CodeNotFound}
	is401Revoked = outcome{status: 401, code: server.CodeRevoked}
	oldSecret    = outcome{status: 403, code: server.CodeForbidden, reason: "old_secret"}
	outlives     = outcome{status: 403, code: server.CodeForbidden, reason: "lifetime"}
	notSuper     = outcome{status: 403, code: server.CodeForbidden, reason: "super_admin"}
	validToken   = outcome{status: 200, verdict: "valid"}
	unknownToken = outcome{status: 200, verdict: "invalid"}
)

// lacks is a 403 forbidden for want of permission perm.
func lacks(perm string) outcome {
	return outcome{status: 403, code: server.CodeForbidden, reason: "permission", about: perm}
}

// outside is a 403 forbidden for acting outside the caller's workspace, in
// workspace ws.
func outside(ws string) outcome {
	return outcome{status: 403, code: server.CodeForbidden, reason: "workspace", about: ws}
}

// looser is a 403 forbidden for giving a key a looser limit than the
// caller's own.
func looser(limit string) outcome {
	return outcome{status: 403, code: server.CodeForbidden, reason: "limit", about: limit}
}

// lists is GET /keys's 200 listing the keys of ws (or tAll).
func lists(ws string) outcome { return outcome{status: 200, lists: ws} }

// cell is one row of the matrix.
type cell struct {
	route, as, target string
	want              outcome
}

// authzMatrix is the matrix: one row per route, principal and target.
var authzMatrix = []cell{
	// admin: a super admin may do everything, everywhere.
	{rCreate, pAdmin, tOwn, is201},
	{rCreate, pAdmin, tOther, is201},
	{rCreate, pAdmin, tUnbound, is201},
	{rCreate, pAdmin, tWide, is201},
	{rCreate, pAdmin, tSuper, is201},
	{rList, pAdmin, tOwn, lists("tiger")},
	{rList, pAdmin, tOther, lists("lion")},
	{rList, pAdmin, tAll, lists(tAll)},
	{rGet, pAdmin, tOwn, is200},
	{rGet, pAdmin, tOther, is200},
	{rGet, pAdmin, tUnbound, is200},
	{rUpdate, pAdmin, tOwn, is200},
	{rUpdate, pAdmin, tOther, is200},
	{rUpdate, pAdmin, tUnbound, is200},
	{rRegen, pAdmin, tOwn, is200},
	{rRegen, pAdmin, tOther, is200},
	{rRegen, pAdmin, tUnbound, is200},
	{rRegen, pAdmin, tWide, is200},
	{rRevoke, pAdmin, tOwn, is200},
	{rRevoke, pAdmin, tOther, is200},
	{rRevoke, pAdmin, tUnbound, is200},
	{rRevoke, pAdmin, tSuper, is200},
	{rDelete, pAdmin, tOwn, is204},
	{rDelete, pAdmin, tOther, is204},
	{rDelete, pAdmin, tUnbound, is204},
	{rVerify, pAdmin, tOwn, validToken},
	{rVerify, pAdmin, tOther, validToken},
	{rVerify, pAdmin, tUnbound, validToken},
	{rRoles, pAdmin, tNone, is200},

	// owner, unbound: "*:*" in every workspace, but not a super admin.
	{rCreate, pOwner, tOwn, is201},
	{rCreate, pOwner, tOther, is201},
	{rCreate, pOwner, tUnbound, is201},
	{rCreate, pOwner, tWide, is201},
	{rCreate, pOwner, tSuper, notSuper},
	{rList, pOwner, tOwn, lists("tiger")},
	{rList, pOwner, tOther, lists("lion")},
	{rList, pOwner, tAll, lists(tAll)},
	{rGet, pOwner, tOwn, is200},
	{rGet, pOwner, tOther, is200},
	{rGet, pOwner, tUnbound, is200},
	{rUpdate, pOwner, tOwn, is200},
	{rUpdate, pOwner, tOther, is200},
	{rUpdate, pOwner, tUnbound, is200},
	{rRegen, pOwner, tOwn, is200},
	{rRegen, pOwner, tOther, is200},
	{rRegen, pOwner, tUnbound, is200},
	{rRegen, pOwner, tWide, is200},
	{rRevoke, pOwner, tOwn, is200},
	{rRevoke, pOwner, tOther, is200},
	{rRevoke, pOwner, tUnbound, is200},
	{rRevoke, pOwner, tSuper, notSuper},
	{rDelete, pOwner, tOwn, is204},
	{rDelete, pOwner, tOther, is204},
	{rDelete, pOwner, tUnbound, is204},
	{rVerify, pOwner, tOwn, validToken},
	{rVerify, pOwner, tOther, validToken},
	{rVerify, pOwner, tUnbound, validToken},
	{rRoles, pOwner, tNone, is200},

	// owner bound to tiger: everything in tiger, nothing elsewhere; keys
	// elsewhere do not exist for it.
	{rCreate, pOwnerTiger, tOwn, is201},
	{rCreate, pOwnerTiger, tOther, outside("lion")},
	{rCreate, pOwnerTiger, tUnbound, outside("")},
	{rCreate, pOwnerTiger, tWide, is201},
	{rCreate, pOwnerTiger, tSuper, outside("")},
	{rList, pOwnerTiger, tOwn, lists("tiger")},
	{rList, pOwnerTiger, tOther, outside("lion")},
	{rList, pOwnerTiger, tAll, lists("tiger")},
	{rGet, pOwnerTiger, tOwn, is200},
	{rGet, pOwnerTiger, tOther, is404},
	{rGet, pOwnerTiger, tUnbound, is404},
	{rUpdate, pOwnerTiger, tOwn, is200},
	{rUpdate, pOwnerTiger, tOther, is404},
	{rUpdate, pOwnerTiger, tUnbound, is404},
	{rRegen, pOwnerTiger, tOwn, is200},
	{rRegen, pOwnerTiger, tOther, is404},
	{rRegen, pOwnerTiger, tUnbound, is404},
	{rRegen, pOwnerTiger, tWide, is200},
	{rRevoke, pOwnerTiger, tOwn, is200},
	{rRevoke, pOwnerTiger, tOther, is404},
	{rRevoke, pOwnerTiger, tUnbound, is404},
	{rRevoke, pOwnerTiger, tSuper, is404},
	{rDelete, pOwnerTiger, tOwn, is204},
	{rDelete, pOwnerTiger, tOther, is404},
	{rDelete, pOwnerTiger, tUnbound, is404},
	{rVerify, pOwnerTiger, tOwn, validToken},
	{rVerify, pOwnerTiger, tOther, unknownToken},
	{rVerify, pOwnerTiger, tUnbound, unknownToken},
	{rRoles, pOwnerTiger, tNone, is200},

	// editor: "*:read" and "*:write" hold none of apikey:view,
	// apikey:manage, apikey:verify; it sees no key, even in tiger.
	{rCreate, pEditor, tOwn, lacks("apikey:manage")},
	{rCreate, pEditor, tOther, outside("lion")},
	{rCreate, pEditor, tUnbound, outside("")},
	{rCreate, pEditor, tWide, lacks("apikey:manage")},
	{rCreate, pEditor, tSuper, outside("")},
	{rList, pEditor, tOwn, lacks("apikey:view")},
	{rList, pEditor, tOther, outside("lion")},
	{rList, pEditor, tAll, lacks("apikey:view")},
	{rGet, pEditor, tOwn, is404},
	{rGet, pEditor, tOther, is404},
	{rGet, pEditor, tUnbound, is404},
	{rUpdate, pEditor, tOwn, is404},
	{rUpdate, pEditor, tOther, is404},
	{rUpdate, pEditor, tUnbound, is404},
	{rRegen, pEditor, tOwn, is404},
	{rRegen, pEditor, tOther, is404},
	{rRegen, pEditor, tUnbound, is404},
	{rRegen, pEditor, tWide, is404},
	{rRevoke, pEditor, tOwn, is404},
	{rRevoke, pEditor, tOther, is404},
	{rRevoke, pEditor, tUnbound, is404},
	{rRevoke, pEditor, tSuper, is404},
	{rDelete, pEditor, tOwn, is404},
	{rDelete, pEditor, tOther, is404},
	{rDelete, pEditor, tUnbound, is404},
	{rVerify, pEditor, tOwn, lacks("apikey:verify")},
	{rVerify, pEditor, tOther, lacks("apikey:verify")},
	{rVerify, pEditor, tUnbound, lacks("apikey:verify")},
	{rRoles, pEditor, tNone, lacks("apikey:view")},

	// viewer: "*:read", the same as the editor.
	{rCreate, pViewer, tOwn, lacks("apikey:manage")},
	{rCreate, pViewer, tOther, outside("lion")},
	{rCreate, pViewer, tUnbound, outside("")},
	{rCreate, pViewer, tWide, lacks("apikey:manage")},
	{rCreate, pViewer, tSuper, outside("")},
	{rList, pViewer, tOwn, lacks("apikey:view")},
	{rList, pViewer, tOther, outside("lion")},
	{rList, pViewer, tAll, lacks("apikey:view")},
	{rGet, pViewer, tOwn, is404},
	{rGet, pViewer, tOther, is404},
	{rGet, pViewer, tUnbound, is404},
	{rUpdate, pViewer, tOwn, is404},
	{rUpdate, pViewer, tOther, is404},
	{rUpdate, pViewer, tUnbound, is404},
	{rRegen, pViewer, tOwn, is404},
	{rRegen, pViewer, tOther, is404},
	{rRegen, pViewer, tUnbound, is404},
	{rRegen, pViewer, tWide, is404},
	{rRevoke, pViewer, tOwn, is404},
	{rRevoke, pViewer, tOther, is404},
	{rRevoke, pViewer, tUnbound, is404},
	{rRevoke, pViewer, tSuper, is404},
	{rDelete, pViewer, tOwn, is404},
	{rDelete, pViewer, tOther, is404},
	{rDelete, pViewer, tUnbound, is404},
	{rVerify, pViewer, tOwn, lacks("apikey:verify")},
	{rVerify, pViewer, tOther, lacks("apikey:verify")},
	{rVerify, pViewer, tUnbound, lacks("apikey:verify")},
	{rRoles, pViewer, tNone, lacks("apikey:view")},

	// apikey:view in tiger: sees tiger's keys and changes none.
	{rCreate, pView, tOwn, lacks("apikey:manage")},
	{rCreate, pView, tOther, outside("lion")},
	{rCreate, pView, tUnbound, outside("")},
	{rCreate, pView, tWide, lacks("apikey:manage")},
	{rCreate, pView, tSuper, outside("")},
	{rList, pView, tOwn, lists("tiger")},
	{rList, pView, tOther, outside("lion")},
	{rList, pView, tAll, lists("tiger")},
	{rGet, pView, tOwn, is200},
	{rGet, pView, tOther, is404},
	{rGet, pView, tUnbound, is404},
	{rUpdate, pView, tOwn, lacks("apikey:manage")},
	{rUpdate, pView, tOther, is404},
	{rUpdate, pView, tUnbound, is404},
	{rRegen, pView, tOwn, lacks("apikey:manage")},
	{rRegen, pView, tOther, is404},
	{rRegen, pView, tUnbound, is404},
	{rRegen, pView, tWide, lacks("apikey:manage")},
	{rRevoke, pView, tOwn, lacks("apikey:manage")},
	{rRevoke, pView, tOther, is404},
	{rRevoke, pView, tUnbound, is404},
	{rRevoke, pView, tSuper, is404},
	{rDelete, pView, tOwn, lacks("apikey:manage")},
	{rDelete, pView, tOther, is404},
	{rDelete, pView, tUnbound, is404},
	{rVerify, pView, tOwn, lacks("apikey:verify")},
	{rVerify, pView, tOther, lacks("apikey:verify")},
	{rVerify, pView, tUnbound, lacks("apikey:verify")},
	{rRoles, pView, tNone, is200},

	// apikey:manage alone in tiger: may manage only keys holding nothing
	// more than itself; every target holds cluster:read. It lacks
	// apikey:view, yet tiger's keys exist for it (it may manage them).
	{rCreate, pManage, tOwn, lacks("cluster:read")},
	{rCreate, pManage, tOther, outside("lion")},
	{rCreate, pManage, tUnbound, outside("")},
	{rCreate, pManage, tWide, lacks("cluster:read")},
	{rCreate, pManage, tSuper, outside("")},
	{rList, pManage, tOwn, lacks("apikey:view")},
	{rList, pManage, tOther, outside("lion")},
	{rList, pManage, tAll, lacks("apikey:view")},
	{rGet, pManage, tOwn, lacks("apikey:view")},
	{rGet, pManage, tOther, is404},
	{rGet, pManage, tUnbound, is404},
	{rUpdate, pManage, tOwn, lacks("cluster:read")},
	{rUpdate, pManage, tOther, is404},
	{rUpdate, pManage, tUnbound, is404},
	{rRegen, pManage, tOwn, lacks("cluster:read")},
	{rRegen, pManage, tOther, is404},
	{rRegen, pManage, tUnbound, is404},
	{rRegen, pManage, tWide, lacks("cluster:read")},
	{rRevoke, pManage, tOwn, lacks("cluster:read")},
	{rRevoke, pManage, tOther, is404},
	{rRevoke, pManage, tUnbound, is404},
	{rRevoke, pManage, tSuper, is404},
	{rDelete, pManage, tOwn, lacks("cluster:read")},
	{rDelete, pManage, tOther, is404},
	{rDelete, pManage, tUnbound, is404},
	{rVerify, pManage, tOwn, lacks("apikey:verify")},
	{rVerify, pManage, tOther, lacks("apikey:verify")},
	{rVerify, pManage, tUnbound, lacks("apikey:verify")},
	{rRoles, pManage, tNone, lacks("apikey:view")},

	// apikey:manage and cluster:read in tiger: manages tiger's keys
	// without apikey:view (GET and GET /keys refused; the changes answer
	// the key).
	{rCreate, pManageRead, tOwn, is201},
	{rCreate, pManageRead, tOther, outside("lion")},
	{rCreate, pManageRead, tUnbound, outside("")},
	{rCreate, pManageRead, tWide, is201},
	{rCreate, pManageRead, tSuper, outside("")},
	{rList, pManageRead, tOwn, lacks("apikey:view")},
	{rList, pManageRead, tOther, outside("lion")},
	{rList, pManageRead, tAll, lacks("apikey:view")},
	{rGet, pManageRead, tOwn, lacks("apikey:view")},
	{rGet, pManageRead, tOther, is404},
	{rGet, pManageRead, tUnbound, is404},
	{rUpdate, pManageRead, tOwn, is200},
	{rUpdate, pManageRead, tOther, is404},
	{rUpdate, pManageRead, tUnbound, is404},
	{rRegen, pManageRead, tOwn, is200},
	{rRegen, pManageRead, tOther, is404},
	{rRegen, pManageRead, tUnbound, is404},
	{rRegen, pManageRead, tWide, is200},
	{rRevoke, pManageRead, tOwn, is200},
	{rRevoke, pManageRead, tOther, is404},
	{rRevoke, pManageRead, tUnbound, is404},
	{rRevoke, pManageRead, tSuper, is404},
	{rDelete, pManageRead, tOwn, is204},
	{rDelete, pManageRead, tOther, is404},
	{rDelete, pManageRead, tUnbound, is404},
	{rVerify, pManageRead, tOwn, lacks("apikey:verify")},
	{rVerify, pManageRead, tOther, lacks("apikey:verify")},
	{rVerify, pManageRead, tUnbound, lacks("apikey:verify")},
	{rRoles, pManageRead, tNone, lacks("apikey:view")},

	// apikey:verify in tiger: verifies tiger's tokens; any other token is
	// unknown to it; sees and manages no key.
	{rCreate, pVerify, tOwn, lacks("apikey:manage")},
	{rCreate, pVerify, tOther, outside("lion")},
	{rCreate, pVerify, tUnbound, outside("")},
	{rCreate, pVerify, tWide, lacks("apikey:manage")},
	{rCreate, pVerify, tSuper, outside("")},
	{rList, pVerify, tOwn, lacks("apikey:view")},
	{rList, pVerify, tOther, outside("lion")},
	{rList, pVerify, tAll, lacks("apikey:view")},
	{rGet, pVerify, tOwn, is404},
	{rGet, pVerify, tOther, is404},
	{rGet, pVerify, tUnbound, is404},
	{rUpdate, pVerify, tOwn, is404},
	{rUpdate, pVerify, tOther, is404},
	{rUpdate, pVerify, tUnbound, is404},
	{rRegen, pVerify, tOwn, is404},
	{rRegen, pVerify, tOther, is404},
	{rRegen, pVerify, tUnbound, is404},
	{rRegen, pVerify, tWide, is404},
	{rRevoke, pVerify, tOwn, is404},
	{rRevoke, pVerify, tOther, is404},
	{rRevoke, pVerify, tUnbound, is404},
	{rRevoke, pVerify, tSuper, is404},
	{rDelete, pVerify, tOwn, is404},
	{rDelete, pVerify, tOther, is404},
	{rDelete, pVerify, tUnbound, is404},
	{rVerify, pVerify, tOwn, validToken},
	{rVerify, pVerify, tOther, unknownToken},
	{rVerify, pVerify, tUnbound, unknownToken},
	{rRoles, pVerify, tNone, lacks("apikey:view")},

	// owner of tiger limited to 1000 uses: as owner@tiger, but every key
	// it creates or regenerates must have a usage limit of at most its
	// uses left.
	{rCreate, pUses, tOwn, is201},
	{rCreate, pUses, tOther, outside("lion")},
	{rCreate, pUses, tUnbound, outside("")},
	{rCreate, pUses, tWide, looser("uses")},
	{rCreate, pUses, tSuper, outside("")},
	{rList, pUses, tOwn, lists("tiger")},
	{rList, pUses, tOther, outside("lion")},
	{rList, pUses, tAll, lists("tiger")},
	{rGet, pUses, tOwn, is200},
	{rGet, pUses, tOther, is404},
	{rGet, pUses, tUnbound, is404},
	{rUpdate, pUses, tOwn, is200},
	{rUpdate, pUses, tOther, is404},
	{rUpdate, pUses, tUnbound, is404},
	{rRegen, pUses, tOwn, is200},
	{rRegen, pUses, tOther, is404},
	{rRegen, pUses, tUnbound, is404},
	{rRegen, pUses, tWide, looser("uses")},
	{rRevoke, pUses, tOwn, is200},
	{rRevoke, pUses, tOther, is404},
	{rRevoke, pUses, tUnbound, is404},
	{rRevoke, pUses, tSuper, is404},
	{rDelete, pUses, tOwn, is204},
	{rDelete, pUses, tOther, is404},
	{rDelete, pUses, tUnbound, is404},
	{rVerify, pUses, tOwn, validToken},
	{rVerify, pUses, tOther, unknownToken},
	{rVerify, pUses, tUnbound, unknownToken},
	{rRoles, pUses, tNone, is200},

	// owner of tiger expiring in 7 days: as owner@tiger, but every key it
	// creates or regenerates must expire no later than itself.
	{rCreate, pSevenDays, tOwn, is201},
	{rCreate, pSevenDays, tOther, outside("lion")},
	{rCreate, pSevenDays, tUnbound, outside("")},
	{rCreate, pSevenDays, tWide, outlives},
	{rCreate, pSevenDays, tSuper, outside("")},
	{rList, pSevenDays, tOwn, lists("tiger")},
	{rList, pSevenDays, tOther, outside("lion")},
	{rList, pSevenDays, tAll, lists("tiger")},
	{rGet, pSevenDays, tOwn, is200},
	{rGet, pSevenDays, tOther, is404},
	{rGet, pSevenDays, tUnbound, is404},
	{rUpdate, pSevenDays, tOwn, is200},
	{rUpdate, pSevenDays, tOther, is404},
	{rUpdate, pSevenDays, tUnbound, is404},
	{rRegen, pSevenDays, tOwn, is200},
	{rRegen, pSevenDays, tOther, is404},
	{rRegen, pSevenDays, tUnbound, is404},
	{rRegen, pSevenDays, tWide, outlives},
	{rRevoke, pSevenDays, tOwn, is200},
	{rRevoke, pSevenDays, tOther, is404},
	{rRevoke, pSevenDays, tUnbound, is404},
	{rRevoke, pSevenDays, tSuper, is404},
	{rDelete, pSevenDays, tOwn, is204},
	{rDelete, pSevenDays, tOther, is404},
	{rDelete, pSevenDays, tUnbound, is404},
	{rVerify, pSevenDays, tOwn, validToken},
	{rVerify, pSevenDays, tOther, unknownToken},
	{rVerify, pSevenDays, tUnbound, unknownToken},
	{rRoles, pSevenDays, tNone, is200},

	// the previous token of a regenerated owner of tiger, in its grace
	// period: views and verifies as owner@tiger, changes nothing (and is
	// refused before any key is read, so refusals say nothing of keys).
	{rCreate, pOldSecret, tOwn, oldSecret},
	{rCreate, pOldSecret, tOther, oldSecret},
	{rCreate, pOldSecret, tUnbound, oldSecret},
	{rCreate, pOldSecret, tWide, oldSecret},
	{rCreate, pOldSecret, tSuper, oldSecret},
	{rList, pOldSecret, tOwn, lists("tiger")},
	{rList, pOldSecret, tOther, outside("lion")},
	{rList, pOldSecret, tAll, lists("tiger")},
	{rGet, pOldSecret, tOwn, is200},
	{rGet, pOldSecret, tOther, is404},
	{rGet, pOldSecret, tUnbound, is404},
	{rUpdate, pOldSecret, tOwn, oldSecret},
	{rUpdate, pOldSecret, tOther, oldSecret},
	{rUpdate, pOldSecret, tUnbound, oldSecret},
	{rRegen, pOldSecret, tOwn, oldSecret},
	{rRegen, pOldSecret, tOther, oldSecret},
	{rRegen, pOldSecret, tUnbound, oldSecret},
	{rRegen, pOldSecret, tWide, oldSecret},
	{rRevoke, pOldSecret, tOwn, oldSecret},
	{rRevoke, pOldSecret, tOther, oldSecret},
	{rRevoke, pOldSecret, tUnbound, oldSecret},
	{rRevoke, pOldSecret, tSuper, oldSecret},
	{rDelete, pOldSecret, tOwn, oldSecret},
	{rDelete, pOldSecret, tOther, oldSecret},
	{rDelete, pOldSecret, tUnbound, oldSecret},
	{rVerify, pOldSecret, tOwn, validToken},
	{rVerify, pOldSecret, tOther, unknownToken},
	{rVerify, pOldSecret, tUnbound, unknownToken},
	{rRoles, pOldSecret, tNone, is200},

	// a revoked owner's token: refused by the middleware everywhere.
	{rCreate, pRevoked, tOwn, is401Revoked},
	{rCreate, pRevoked, tOther, is401Revoked},
	{rCreate, pRevoked, tUnbound, is401Revoked},
	{rCreate, pRevoked, tWide, is401Revoked},
	{rCreate, pRevoked, tSuper, is401Revoked},
	{rList, pRevoked, tOwn, is401Revoked},
	{rList, pRevoked, tOther, is401Revoked},
	{rList, pRevoked, tAll, is401Revoked},
	{rGet, pRevoked, tOwn, is401Revoked},
	{rGet, pRevoked, tOther, is401Revoked},
	{rGet, pRevoked, tUnbound, is401Revoked},
	{rUpdate, pRevoked, tOwn, is401Revoked},
	{rUpdate, pRevoked, tOther, is401Revoked},
	{rUpdate, pRevoked, tUnbound, is401Revoked},
	{rRegen, pRevoked, tOwn, is401Revoked},
	{rRegen, pRevoked, tOther, is401Revoked},
	{rRegen, pRevoked, tUnbound, is401Revoked},
	{rRegen, pRevoked, tWide, is401Revoked},
	{rRevoke, pRevoked, tOwn, is401Revoked},
	{rRevoke, pRevoked, tOther, is401Revoked},
	{rRevoke, pRevoked, tUnbound, is401Revoked},
	{rRevoke, pRevoked, tSuper, is401Revoked},
	{rDelete, pRevoked, tOwn, is401Revoked},
	{rDelete, pRevoked, tOther, is401Revoked},
	{rDelete, pRevoked, tUnbound, is401Revoked},
	{rVerify, pRevoked, tOwn, is401Revoked},
	{rVerify, pRevoked, tOther, is401Revoked},
	{rVerify, pRevoked, tUnbound, is401Revoked},
	{rRoles, pRevoked, tNone, is401Revoked},

	// owner of tiger in an identity limited to 100 requests a second and
	// 1000 credits refilled monthly: as owner@tiger, but the identity's
	// limits bind it as its own would: a key it creates or regenerates
	// needs a rate limit within them (the targets have none).
	{rCreate, pIdentity, tOwn, looser("rate")},
	{rCreate, pIdentity, tOther, outside("lion")},
	{rCreate, pIdentity, tUnbound, outside("")},
	{rCreate, pIdentity, tWide, looser("rate")},
	{rCreate, pIdentity, tSuper, outside("")},
	{rList, pIdentity, tOwn, lists("tiger")},
	{rList, pIdentity, tOther, outside("lion")},
	{rList, pIdentity, tAll, lists("tiger")},
	{rGet, pIdentity, tOwn, is200},
	{rGet, pIdentity, tOther, is404},
	{rGet, pIdentity, tUnbound, is404},
	{rUpdate, pIdentity, tOwn, is200},
	{rUpdate, pIdentity, tOther, is404},
	{rUpdate, pIdentity, tUnbound, is404},
	{rRegen, pIdentity, tOwn, looser("rate")},
	{rRegen, pIdentity, tOther, is404},
	{rRegen, pIdentity, tUnbound, is404},
	{rRegen, pIdentity, tWide, looser("rate")},
	{rRevoke, pIdentity, tOwn, is200},
	{rRevoke, pIdentity, tOther, is404},
	{rRevoke, pIdentity, tUnbound, is404},
	{rRevoke, pIdentity, tSuper, is404},
	{rDelete, pIdentity, tOwn, is204},
	{rDelete, pIdentity, tOther, is404},
	{rDelete, pIdentity, tUnbound, is404},
	{rVerify, pIdentity, tOwn, validToken},
	{rVerify, pIdentity, tOther, unknownToken},
	{rVerify, pIdentity, tUnbound, unknownToken},
	{rRoles, pIdentity, tNone, is200},
}

// matrixPrincipals creates the principals and returns their tokens and
// reach: the workspaces whose keys each may view or manage ("" for keys
// of none), where the existence oracle does not apply.
func matrixPrincipals(t *testing.T, f *fixture) (tokens map[string]string, reach map[string][]string) {
	t.Helper()
	uses := int64(1000)
	all := []string{"tiger", "lion", ""}
	tiger := []string{"tiger"}
	defs := []struct {
		name  string
		req   keygate.CreateRequest
		reach []string
	}{
		{pAdmin, keygate.CreateRequest{Role: "admin"}, all},
		{pOwner, keygate.CreateRequest{Role: "owner"}, all},
		{pOwnerTiger, keygate.CreateRequest{Role: "owner", Workspace: "tiger"}, tiger},
		{pEditor, keygate.CreateRequest{Role: "editor", Workspace: "tiger"}, nil},
		{pViewer, keygate.CreateRequest{Role: "viewer", Workspace: "tiger"}, nil},
		{pView, keygate.CreateRequest{Scopes: []string{"apikey:view"}, Workspace: "tiger"}, tiger},
		{pManage, keygate.CreateRequest{Scopes: []string{"apikey:manage"}, Workspace: "tiger"}, tiger},
		{pManageRead, keygate.CreateRequest{Scopes: []string{"apikey:manage", "cluster:read"}, Workspace: "tiger"}, tiger},
		{pVerify, keygate.CreateRequest{Scopes: []string{"apikey:verify"}, Workspace: "tiger"}, nil},
		{pUses, keygate.CreateRequest{Role: "owner", Workspace: "tiger", Limits: keygate.Limits{Uses: &uses}}, tiger},
		{pSevenDays, keygate.CreateRequest{Role: "owner", Workspace: "tiger", Expiry: keygate.ExpireAfterDays(7)}, tiger},
		{pOldSecret, keygate.CreateRequest{Role: "owner", Workspace: "tiger"}, tiger},
		{pRevoked, keygate.CreateRequest{Role: "owner", Workspace: "tiger"}, nil},
		{pIdentity, keygate.CreateRequest{Role: "owner", Workspace: "tiger", IdentityID: homeIdentity(t, f).ID}, tiger},
	}
	ctx := context.Background()
	tokens, reach = map[string]string{}, map[string][]string{}
	for _, d := range defs {
		d.req.Name = "principal " + d.name
		c := f.key(t, d.req)
		tokens[d.name], reach[d.name] = c.Token.Reveal(), d.reach
		switch d.name {
		case pOldSecret:
			if _, err := f.m.Regenerate(ctx, keygate.System(), c.Key.ID, keygate.RegenerateRequest{Expiry: keygate.NeverExpire(), GracePeriod: time.Hour}); err != nil {
				t.Fatal(err)
			}
		case pRevoked:
			if _, err := f.m.Revoke(ctx, keygate.System(), c.Key.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tokens, reach
}

// TestAuthorizationMatrix runs every cell of authzMatrix over the REST API.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	f := newFixture(t, server.Config{})
	tokens, reach := matrixPrincipals(t, f)
	// Keys of every workspace, for the lists.
	for _, ws := range []string{"tiger", "lion", ""} {
		f.key(t, keygate.CreateRequest{Name: "seed", Workspace: ws, Scopes: []string{"cluster:read"}})
	}
	// Every cell is in the matrix once, and every principal has a row for
	// every route and target.
	seen := map[string]bool{}
	perPrincipal := map[string]int{}
	for _, c := range authzMatrix {
		name := c.name()
		if seen[name] {
			t.Errorf("row %s appears twice", name)
		}
		seen[name] = true
		perPrincipal[c.as]++
		if _, ok := tokens[c.as]; !ok {
			t.Errorf("row %s: no principal %q", name, c.as)
		}
	}
	for p := range tokens {
		if perPrincipal[p] != 29 {
			t.Errorf("principal %s has %d rows, want 29", p, perPrincipal[p])
		}
	}
	for i, c := range authzMatrix {
		t.Run(c.name(), func(t *testing.T) {
			runCell(t, f, i, c, tokens[c.as], reach[c.as])
		})
	}
}

func (c cell) name() string { return c.route + " as " + c.as + " on " + c.target }

// targetWorkspace is the workspace of a cell's target.
func targetWorkspace(target string) string {
	switch target {
	case tOther:
		return "lion"
	case tUnbound, tSuper, tAll:
		return ""
	}
	return "tiger"
}

// runCell runs cell c, the i-th, as the principal of token, which may view
// or manage the keys of the workspaces reach.
func runCell(t *testing.T, f *fixture, i int, c cell, token string, reach []string) {
	ctx := context.Background()
	ws := targetWorkspace(c.target)
	name := fmt.Sprintf("cell-%d", i)
	var req request
	var target *keygate.Created
	switch c.route {
	case rCreate:
		body := map[string]any{"name": name, "scopes": []string{"cluster:read"}, "expiry": "1d", "limits": map[string]any{"uses_remaining": 5}}
		switch c.target {
		case tWide:
			body = map[string]any{"name": name, "scopes": []string{"cluster:read"}, "expiry": "never"}
		case tSuper:
			body = map[string]any{"name": name, "role": "admin", "expiry": "1d"}
		}
		if ws != "" {
			body["workspace"] = ws
		}
		req = request{method: "POST", path: "/keys", contentType: "application/json", body: mustJSON(t, body)}
	case rList:
		req = request{method: "GET", path: "/keys?limit=1000"}
		if c.target != tAll {
			req.path += "&workspace=" + ws
		}
	case rRoles:
		req = request{method: "GET", path: "/roles"}
	default:
		target = matrixTarget(t, f, name, c.target)
		id := target.Key.ID.String()
		switch c.route {
		case rGet:
			req = request{method: "GET", path: "/keys/" + id}
		case rUpdate:
			req = request{method: "PATCH", path: "/keys/" + id, contentType: "application/json", body: `{"description":"changed"}`}
		case rRegen:
			expiry := "1d"
			if c.target == tWide {
				expiry = "never"
			}
			req = request{method: "POST", path: "/keys/" + id + "/regenerate", contentType: "application/json", body: `{"expiry":"` + expiry + `"}`}
		case rRevoke:
			req = request{method: "POST", path: "/keys/" + id + "/revoke"}
		case rDelete:
			req = request{method: "DELETE", path: "/keys/" + id}
		case rVerify:
			req = request{method: "POST", path: "/keys/verify", contentType: "application/json", body: `{"token":"` + target.Token.Reveal() + `"}`}
		default:
			t.Fatalf("unknown route %q", c.route)
		}
	}
	req.token = token
	w := f.do(t, req)

	// The existence oracle: a key the principal may neither view nor
	// manage is answered exactly as a key that does not exist, and a token
	// it may not verify exactly as an unknown token.
	switch {
	case c.route == rVerify && c.want.verdict == "invalid":
		format, _ := apikey.NewFormat(apikey.DefaultPrefix)
		unknown, err := format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		r := req
		r.body = `{"token":"` + unknown.Reveal() + `"}`
		sameAnswer(t, w, f.do(t, r))
	case target != nil && c.route != rVerify && !slices.Contains(reach, ws):
		r := req
		r.path = strings.Replace(r.path, target.Key.ID.String(), uuid.NewString(), 1)
		sameAnswer(t, w, f.do(t, r))
	}

	checkOutcome(t, w, c.want)
	if t.Failed() {
		return
	}

	// The effect, or its absence.
	switch {
	case c.route == rCreate:
		checkCreated(t, f, w, name, ws, c.want.status == http.StatusCreated)
	case c.route == rRoles && c.want.status == http.StatusOK:
		var roles server.RoleList
		if err := json.Unmarshal(w.Body.Bytes(), &roles); err != nil || len(roles.Roles) != 4 {
			t.Errorf("GET /roles answered %s (%v), want the 4 default roles", w.Body, err)
		}
	case c.route == rVerify:
		// A verification takes a use; one answered as an unknown token,
		// or refused, takes none.
		left := int64(5)
		if c.want.verdict == "valid" {
			left = 4
		}
		rec, err := f.m.Get(ctx, keygate.System(), target.Key.ID)
		if err != nil || rec.RemainingUses == nil || *rec.RemainingUses != left {
			t.Errorf("after the verification: %v, %v; want %d uses left", rec, err, left)
		}
	case target != nil:
		checkTargetAfter(t, f, c, w, target)
	}

}

// matrixTarget creates the target key of a cell.
func matrixTarget(t *testing.T, f *fixture, name, target string) *keygate.Created {
	t.Helper()
	five := int64(5)
	req := keygate.CreateRequest{Name: name, Workspace: targetWorkspace(target), Scopes: []string{"cluster:read"},
		Expiry: keygate.ExpireAfterDays(1), Limits: keygate.Limits{Uses: &five}}
	switch target {
	case tWide:
		req.Expiry, req.Limits = keygate.NeverExpire(), keygate.Limits{}
	case tSuper:
		req = keygate.CreateRequest{Name: name, Role: "admin"}
	}
	return f.key(t, req)
}

// checkOutcome checks w against want.
func checkOutcome(t *testing.T, w *httptest.ResponseRecorder, want outcome) {
	t.Helper()
	if w.Code != want.status {
		t.Fatalf("status %d, want %d; body %s", w.Code, want.status, w.Body)
	}
	switch {
	case want.status >= 400:
		p := problem(t, w)
		if p.Code != want.code || p.Reason != want.reason {
			t.Errorf("code %q reason %q, want %q %q (%s)", p.Code, p.Reason, want.code, want.reason, p.Detail)
		}
		var about string
		switch want.reason {
		case "permission":
			if len(p.Permissions) == 1 {
				about = p.Permissions[0]
			}
		case "workspace":
			about = p.Workspace
		case "limit":
			about = p.Limit
		case "lifetime":
			if p.LatestExpiry.IsZero() {
				t.Errorf("lifetime refusal without latest_expiry: %s", w.Body)
			}
		}
		if about != want.about {
			t.Errorf("%s refusal names %q, want %q: %s", want.reason, about, want.about, w.Body)
		}
	case want.verdict != "":
		var v server.VerifyResponse
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("decode verdict %s: %v", w.Body, err)
		}
		got := v.Code
		if v.Valid {
			got = "valid"
		}
		if got != want.verdict || v.Valid != (v.Key != nil) {
			t.Errorf("verdict %s, want %s", w.Body, want.verdict)
		}
	case want.lists != "":
		var list server.KeyList
		if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
			t.Fatalf("decode list %s: %v", w.Body, err)
		}
		workspaces := map[string]bool{}
		for _, k := range list.Keys {
			workspaces[k.Workspace] = true
		}
		switch {
		case want.lists == tAll:
			if !workspaces["tiger"] || !workspaces["lion"] || !workspaces[""] {
				t.Errorf("listed keys of %v, want keys of every workspace", workspaces)
			}
		case len(workspaces) != 1 || !workspaces[want.lists]:
			t.Errorf("listed keys of %v, want only and some of %q", workspaces, want.lists)
		}
	}
}

// checkCreated checks that POST /keys created the key name in ws, if
// created, and otherwise stored nothing.
func checkCreated(t *testing.T, f *fixture, w *httptest.ResponseRecorder, name, ws string, created bool) {
	t.Helper()
	if created {
		var out struct {
			Key   server.Key `json:"key"`
			Token string     `json:"token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Key.Name != name || out.Key.Workspace != ws || out.Token == "" {
			t.Errorf("created %s (%v), want key %q in %q with a token", w.Body, err, name, ws)
		}
	}
	page, err := f.m.List(context.Background(), keygate.System(), keygate.ListRequest{Workspace: ws, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range page.Keys {
		if k.Name == name {
			n++
		}
	}
	if want := map[bool]int{true: 1, false: 0}[created]; n != want {
		t.Errorf("%d keys named %q stored, want %d", n, name, want)
	}
}

// checkTargetAfter checks a cell's target after the request: changed as
// the route says when it succeeded, exactly as it was when refused.
func checkTargetAfter(t *testing.T, f *fixture, c cell, w *httptest.ResponseRecorder, target *keygate.Created) {
	t.Helper()
	before := target.Key
	rec, err := f.m.Get(context.Background(), keygate.System(), before.ID)
	if c.want.status >= 400 || c.route == rGet {
		if err != nil || rec.Version != before.Version || !rec.RevokedAt.IsZero() || rec.Description != before.Description ||
			!bytes.Equal(rec.Hash, before.Hash) || !rec.ExpiresAt.Equal(before.ExpiresAt) {
			t.Errorf("the target changed: %+v (%v), was %+v", rec, err, before)
		}
		if c.route == rGet && c.want.status == 200 {
			var k server.Key
			if err := json.Unmarshal(w.Body.Bytes(), &k); err != nil || k.ID != before.ID {
				t.Errorf("GET answered %s (%v), want key %s", w.Body, err, before.ID)
			}
		}
		return
	}
	var answered server.Key
	switch c.route {
	case rRegen:
		var out struct {
			Key   server.Key `json:"key"`
			Token string     `json:"token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Token == "" || out.Token == target.Token.Reveal() {
			t.Errorf("regenerate answered %s (%v), want a new token", w.Body, err)
		}
		answered = out.Key
		if err == nil && bytes.Equal(rec.Hash, before.Hash) {
			t.Error("regenerate left the key's secret as it was")
		}
	case rDelete:
		if !errors.Is(err, keygate.ErrNotFound) {
			t.Errorf("after DELETE: %v, %v; want ErrNotFound", rec, err)
		}
		return
	default:
		if err := json.Unmarshal(w.Body.Bytes(), &answered); err != nil {
			t.Errorf("decode %s: %v", w.Body, err)
		}
	}
	if err != nil {
		t.Fatalf("the target is gone: %v", err)
	}
	if answered.ID != before.ID || rec.Version <= before.Version {
		t.Errorf("answered key %s, stored version %d (was %d); want key %s changed", answered.ID, rec.Version, before.Version, before.ID)
	}
	switch c.route {
	case rUpdate:
		if rec.Description != "changed" {
			t.Errorf("after PATCH the description is %q", rec.Description)
		}
	case rRevoke:
		if rec.RevokedAt.IsZero() {
			t.Error("after revoke the key is not revoked")
		}
	}
}

// sameAnswer fails unless got and want are the same answer: status,
// content type and body, byte for byte.
func sameAnswer(t *testing.T, got, want *httptest.ResponseRecorder) {
	t.Helper()
	if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
		t.Errorf("existence oracle: the key answers %d %s, a missing one %d %s", got.Code, got.Body, want.Code, want.Body)
	}
}

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

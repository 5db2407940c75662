// Package server is the REST API for managing keygate API keys: an
// http.Handler over a keygate.Manager. Package client is its typed Go
// client.
//
// # Routes
//
// [New] returns a [Server] serving, relative to its root (mount it under a
// prefix with http.StripPrefix):
//
//	POST   /keys                  create             201 {"key": Key, "token": "..."} + Location
//	GET    /keys                  list one page      200 KeyList {"keys": [...], "next": "..."}
//	GET    /keys/{id}             read               200 Key + ETag
//	PATCH  /keys/{id}             update             200 Key + ETag
//	POST   /keys/{id}/regenerate  new token, expiry  200 {"key": Key, "token": "..."}
//	POST   /keys/{id}/revoke      revoke             200 Key + ETag
//	GET    /keys/{id}/privileges  least privilege    200 PrivilegeReport (?unused_for=30d)
//	GET    /keys/{id}/usage       usage history      200 Usage (?bucket=1h|1d&from=&to=)
//	POST   /keys/{id}/disable     disable (reversible) 200 Key + ETag
//	POST   /keys/{id}/enable      enable again       200 Key + ETag
//	DELETE /keys/{id}             delete             204
//	POST   /keys/verify           verify a token     200 VerifyResponse {"valid": ..., "key"|"code": ...}
//	GET    /roles                 list roles         200 RoleList {"roles": [...]}
//	POST   /identities            create an identity 201 Identity + Location + ETag
//	GET    /identities            list one page      200 IdentityList {"identities": [...], "next": "..."}
//	GET    /identities/{id}       read               200 Identity + ETag
//	PATCH  /identities/{id}       update             200 Identity + ETag
//	DELETE /identities/{id}       delete             204 (409 identity_in_use while keys are in it)
//
// Bodies are [CreateRequest], [UpdateRequest], [RegenerateRequest],
// [VerifyRequest], [CreateIdentityRequest] and [UpdateIdentityRequest];
// responses hold [Key], [KeyList], [VerifyResponse], [RoleList],
// [Identity] and [IdentityList]. The create and regenerate responses
// are the only ones that ever hold a token, and only the new one; no
// response holds a key's hash or pepper id. Expiries are written as
// keygate.ParseExpiry reads them ("never", "30d", "2026-12-31", an RFC 3339
// time) and durations as time.ParseDuration does ("1h"); see [Duration].
//
// GET /keys takes the query parameters workspace, owner, revoked
// ([RevokedAny], [RevokedActive] or [RevokedOnly]), expiring_within ("7d",
// "12h": the keys that expire within that window), identity_id (the keys
// of an identity), limit (1 to 1000, default 50) and after (the "next"
// cursor of the previous page). GET /identities takes workspace,
// external_id, limit and after.
//
// # Identities
//
// An identity is an owner of keys with limits they all share: named rate
// limits ([NamedRateLimit]) and credits with a refill ([Credits],
// [Refill]). A key joins one with "identity_id" in POST /keys or PATCH
// /keys/{id} ("" takes it out); it shows its "identity_id". PATCH
// /identities/{id} sets the credits' balance only with
// limits.credits.remaining, so that it never writes back a balance read
// before the keys drew on it. Codes of their own: identity_not_found
// (404), unknown_identity (400: a key's identity_id names no identity the
// caller may manage), duplicate_external_id and identity_in_use (409). A
// store without identities answers 501 unsupported.
//
// GET /keys/{id}/usage reports how many times the key was verified, by
// outcome ("valid" or the refusal's code), in hourly (bucket=1h, the
// default) or daily (bucket=1d, days in UTC) buckets from "from" to "to"
// (RFC 3339 times or dates; by default the last 24 hours or 30 days), at
// most 90 days of hours or 366 days, answered as [Usage] with every
// bucket of the range. A store that keeps no usage history answers 501
// unsupported.
//
// PATCH changes only the fields present. To update only the version you
// read, send it as If-Match: "<version>" (the ETag of the key) or as
// "version" in the body: another version is answered 409 conflict.
//
// # Authentication and authorization
//
// Every request, unknown and unclean paths included, is verified by the
// [Config.Middleware] and needs a principal, by default the verified key's
// ([Config.Principal] may supply a user session instead); otherwise it is
// refused with the middleware's 401 problem. A path that is not clean
// ("//keys", "/keys/", "/keys/../keys") is never redirected: it names no
// route (404 no_route). Authorization is the
// Manager's: viewing keys needs apikey:view and changing them apikey:manage
// in the key's workspace (an identity's, for identities), and no caller
// may create or widen a key beyond what it holds (permissions, lifetime,
// limits), nor give an identity looser limits than its own.
//
// # Remote verification
//
// POST /keys/verify lets a service that holds neither the database nor the
// pepper check its callers' keys (package client's Verifier calls it). The
// caller needs apikey:verify (keygate.PermissionVerifyKeys), which "*:read"
// and "*:write" do not include, and sees only the keys of the workspaces
// where it holds it: any other key gets the verdict of an unknown token
// ("invalid"), with no use taken, so it learns nothing of keys outside its
// reach. The verdict, valid or not, is a 200 with the middleware's codes
// (malformed, invalid, expired, revoked, usage_exhausted, rate_limited with
// retry_after, address_denied, insufficient_permission); an error status is
// only ever about the caller, the body or the store. A verification is a
// use of the key like any other: limits, last used.
//
// A verification may have a cost ([VerifyRequest].Cost, 1 to
// keygate.MaxCost) and name on-demand rate limits (Limits): the verdict's
// [VerifyReport] then says what it took from each rate limit checked and
// what is left of them, of the key's uses and of its identity's credits
// (keygate.Manager.VerifyWith's Report), and a rate_limited verdict's
// rate_limit names the limit that refused ("name", "identity"). A bad
// cost or limit name is a 400 invalid_field.
//
// # Refusals that say why
//
// A 403 forbidden names the bound that refused the caller (from
// keygate.DeniedError): "reason" is "permission" (with the permission it
// lacks in "permissions"), "workspace", "super_admin", "lifetime" (with
// "latest_expiry", the latest expiry the caller may give), "limit" (with
// "limit": "rate", "uses", "credits" or "allowed_cidrs") or "unresolved".
// A key the caller may neither view nor manage is answered 404 not_found,
// exactly as a key that does not exist; an identity, 404
// identity_not_found.
//
// # Cross-site request forgery
//
// A [Config.Principal] may read a browser's cookie session, which the
// browser also sends with a form posted by another site: POST
// /keys/{id}/revoke, which takes no body, could then be forged. The server
// therefore refuses unsafe requests (POST, PATCH, DELETE) that a browser
// marks as cross-origin, by their Sec-Fetch-Site or Origin header, with
// 403 cross_origin ([CodeCrossOrigin]) before authenticating them, as
// http.CrossOriginProtection does. Requests without those headers, such as
// those of package client and other non-browser clients, are not affected.
// A browser front end served from another origin is allowed by listing its
// origin in [Config.TrustedOrigins].
//
// # Requests
//
// Bodies must be application/json (else 415), at most
// [Config.MaxBodyBytes] (else 413), and exactly one JSON object with no
// unknown field (else 400 invalid_json with a precise detail that never
// quotes the body). An {id} that is not a UUID names no key: 404 not_found.
//
// # Errors
//
// Failures are RFC 9457 problem responses (middleware.Problem, written by
// [Config.ErrorHandler], middleware.WriteProblem by default) whose code is
// one of the Code constants, such as [CodeUnknownRole]; [ErrorsFor] maps a
// code back to keygate's errors:
//
//	400 invalid_json, invalid_request, name_required, invalid_expiry,
//	    workspace_required, unknown_role, invalid_scope, no_permissions, invalid_field
//	401 (middleware codes), unauthenticated
//	403 forbidden, cross_origin
//	404 not_found (no such key), no_route (no such path: check the base URL)
//	405 method_not_allowed (+ Allow)
//	408 request_timeout (the body did not arrive before the host's ReadTimeout)
//	409 conflict, duplicate_name, revoked (regenerating a revoked key)
//	413 body_too_large
//	415 unsupported_media_type
//	501 unsupported (the store lacks what the request needs: exercises, usage history, tombstones)
//	503 unavailable (the store failed: nothing was done)
//	500 internal
//
// Texts are fixed: the text of an internal error never reaches a client.
// Every response, success or not, carries Cache-Control: no-store.
//
// # OpenAPI
//
// [OpenAPI] returns the OpenAPI 3.1 document of the API: every route, body,
// header, security scheme and problem code, the contract clients read.
// [OpenAPIHandler] serves it without authentication, for the host to mount
// beside the Server, for example at GET /v1/openapi.json. Conformance
// tests drive every route through a server and check each request and
// response against the document, so that the two cannot drift apart; they
// are a module of their own, server/openapitest, so that keygate does not
// require their OpenAPI validator.
//
// # Concurrency
//
// A Server is immutable after New and safe for concurrent use.
package server

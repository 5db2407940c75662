// Package console is an admin console for keygate API keys: the pages
// the Replex and Devtron docs describe (list, add with an expiry and a
// grid of permission switches, a one-time token panel, edit, regenerate,
// revoke, delete), as an http.Handler over a [keygate.Manager].
//
// It is server-rendered with html/template from embedded templates and
// assets: no build step, no CDN, no inline script or style; it works
// offline and without JavaScript (a small script adds the copy button and
// moves focus; nothing needs it).
//
// # Mounting
//
// [New] returns a [Console] serving its pages relative to its root; mount
// it under any prefix with http.StripPrefix, without a trailing slash on
// the prefix (links are built from the part of the path it strips):
//
//	con, err := console.New(console.Config{
//		Manager:    m,
//		Categories: console.Categories("Agent", "Billing", "Cluster", "Organization"),
//	})
//	mux.Handle("/console/", http.StripPrefix("/console", con))
//
// # Pages
//
//	GET  /                       the list: filters (workspace, owner, status), pages by the store's cursor,
//	                             each key's last 7 days of use as a sparkline
//	GET  /keys/new               the add form; POST creates the key and answers with its token, once
//	GET  /keys/{id}              a key's details (never its token), its last 30 days of use charted
//	GET  /keys/{id}/edit         the edit form (name, description, role, permissions, limits); POST saves;
//	                             a revoked key is not edited (409): its record stays as it was, for audit
//	GET  /keys/{id}/regenerate   new expiry and grace period; POST answers with the new token, once
//	GET  /keys/{id}/revoke       confirmation; POST revokes
//	GET  /keys/{id}/delete       confirmation; POST deletes
//	GET  /signin, POST /signin   sign in with an API key; POST /signout ends the session
//	GET  /identities             the identities (owners of keys with shared limits): filters (workspace, external id), pages
//	GET  /identities/new         the add form (external id, workspace, metadata, rate limits, credits and refill); POST creates
//	GET  /identities/{id}        an identity's details, limits and keys
//	GET  /identities/{id}/edit   the edit form, at the version shown (409 if it changed since); POST saves only what
//	                             changed, and the credits' balance only when it was typed
//	GET  /identities/{id}/delete confirmation; POST deletes, refused (409) while keys belong to it
//
// The identity pages, a key's identity on its page and the identity
// choice of the key forms show only when the Manager's store keeps
// identities (keygate.Manager.SupportsIdentities).
//
// # Usage
//
// With a store that keeps usage history (keygate.Manager.Usage), a key's
// page charts its verifications of the last 30 days by day, and the list
// shows each key's last 7 days as a sparkline, read for the whole page in
// one store query (keygate.Manager.KeysUsage). The charts are SVG drawn on
// the server: no script, their geometry in SVG attributes and their
// colours in the stylesheet, so the CSP holds. Valid verifications are
// solid, refused ones hatched and stacked on them, so the two differ in
// grey and for people who do not tell colours apart; each chart is an
// image named by a text alternative giving its figures, and the key
// page's figures are also a table. A store without usage history shows
// neither; a store failure while reading it fails the page, as any other.
//
// Every action goes through the Manager, which authorizes it: seeing keys
// needs apikey:view, changing them apikey:manage in the key's workspace,
// and nobody gives a key more than they hold (permissions, workspace,
// lifetime, limits). A refusal is shown in plain words from the
// [keygate.DeniedError], such as "Your key lacks billing:write" or "The
// token would outlive yours: latest expiry 2026-12-07". A principal
// without apikey:manage sees the pages without their change controls,
// and its changes are refused anyway.
//
// # Sign-in and sessions
//
// With [Config.Principal], the host application supplies the principal
// from its own session; otherwise a person signs in with an API key that
// holds apikey:view. The token is verified once, at sign-in (a use of the
// key like any other), and kept nowhere: not in the cookie, not in the
// session. The session holds the key's id and the stored hash of the
// secret presented (the one the key store holds too,
// [keygate.Principal.Binding]), and the cookie only a random session id
// (HttpOnly, SameSite=Strict, Secure over TLS or with
// [Config.SecureCookies], scoped to the console's path).
//
// On every request the console reads the key's record again, as
// [keygate.System], and rebuilds its principal from it
// ([keygate.Manager.Refresh]): a key revoked, disabled, deleted, expired,
// regenerated (once the old secret's grace period is over), moved off the
// client's allowed addresses, or stripped of apikey:view ends its session
// at the next request, on every instance, with no cache in between.
// Verifying a kept token on each request instead would take a use of a
// usage-limited key per page viewed, count against its rate limit, and
// keep a live secret for the session's life. A session also ends after
// [Config.SessionTTL] without a request and [Config.SessionMaxAge] after
// sign-in.
//
// A key holds at most [Config.SessionsPerKey] sessions (10): signing in
// once more ends its oldest, never another key's, so that no key can
// sign anybody else out by signing in over and over.
//
// # Several instances
//
// Sessions are kept in a [SessionStore]: by default a [MemoryStore], in
// the process. Behind a load balancer without sticky sessions, give every
// instance one they share ([Config.Sessions]): store/sqlstore's
// Store.Sessions keeps them in the key store's database (SQLite,
// PostgreSQL, MySQL/MariaDB), the redis module's NewSessions in Redis.
// Then everything a session carries works from any instance: its
// anti-forgery token, its one-time form nonces (a form sent to one
// instance is refused when sent again to another), its flash message,
// its expiry, sign-out, and the bound per key. The store sees only
// SHA-256 digests of session ids and nonces.
//
// # Security
//
// Failed sign-ins (a malformed, unknown, expired, revoked or disabled
// token) count against the client's address as bad keys sent to the API
// do ([Config.Throttle]): past the budget, sign-in answers 429 without
// looking the token up.
//
// Every state change is a POST carrying the session's synchronizer token
// (the sign-in form, before any session, the value of a random cookie,
// good for one sign-in within an hour), and
// every unsafe request passes http.CrossOriginProtection (Sec-Fetch-Site,
// Origin) first. Every response carries a Content-Security-Policy without
// inline script or style and with frame-ancestors 'none', and
// Cache-Control: no-store. A token appears in exactly one response: the
// one answering the POST that made it, never in a URL, a redirect, a log
// or a later page. The add and regenerate forms carry a one-time nonce,
// so that sending one again (a reload of the token page, the back button)
// makes no second token and shows none; the nonce is recorded as used in
// the session store, so that no instance takes it twice.
//
// # Accessibility
//
// The pages aim at WCAG 2.1 AA, and the browser tests hold them to it:
// axe-core's WCAG 2.0 and 2.1 A and AA rules find nothing on any page.
// Every control has a label; the permission switches are checkboxes
// (role="switch") with their category and action as label; everything is
// reachable by keyboard (Tab reaches every switch, Space turns it), with
// a solid focus ring of 3:1 or more against the unfocused look; text is
// at least 4.5:1 against its background; the key page's grid says
// "allowed" or "not allowed" in text, its marks hidden from screen
// readers; a form's errors are summarized at its top, which gets the
// focus, and marked on their fields; focus moves to the one-time token
// panel. What is hidden (the custom date until "Custom date" is chosen,
// the copy button without JavaScript) is hidden from sight too.
package console

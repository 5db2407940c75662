// Package middleware authenticates HTTP requests by keygate API key, as
// net/http middleware of type func(http.Handler) http.Handler, for
// http.ServeMux, chi and any router of that convention.
//
// # Verify, then enforce
//
// A [Middleware], built once by [New] around a *keygate.Manager (any
// [Verifier]), splits the work as go-chi/jwtauth does:
//
//   - [Middleware.Verify] finds the token, verifies it and puts the outcome
//     in the request context: the key for [FromContext], or the reason for
//     [ErrorFromContext]. It refuses nothing, so public routes keep working.
//   - [Middleware.RequireKey] refuses requests without a valid key.
//   - [Middleware.Require] refuses requests whose key lacks permissions in
//     the request's workspace, read by a [WorkspaceFunc] such as
//     [PathValue]("workspace") for a pattern "/workspaces/{workspace}/...".
//
// Require and RequireKey verify the request themselves when Verify has not,
// and a request is verified once however many of them it passes:
//
//	mw, err := middleware.New(middleware.Config{Verifier: manager})
//	...
//	read := mw.MustRequire(middleware.PathValue("workspace"), "cluster:read")
//	mux.Handle("GET /workspaces/{workspace}/clusters", read(listClusters))
//	handler := mw.Verify(mux)
//
// With chi, the same middleware mounts on the router and per route, the
// workspace read from chi's URL parameter (chi v5 also sets path values,
// so [PathValue] works as well):
//
//	workspace := func(r *http.Request) string { return chi.URLParam(r, "workspace") }
//	router := chi.NewRouter()
//	router.Use(mw.Verify)
//	router.With(mw.MustRequire(workspace, "cluster:read")).
//		Get("/workspaces/{workspace}/clusters", listClusters.ServeHTTP)
//
// The repository's middleware/chitest module tests this under chi; it is a
// module of its own so that keygate does not require chi.
//
// # Finding the token
//
// [Extractor] functions find the token. [DefaultExtractors] tries, in this
// order, "Authorization: Api-Key <token>", "Authorization: Bearer <token>"
// and "X-API-Key: <token>". [AuthorizationScheme], [Header] and [Query]
// build others; query strings are never read unless [Query] is configured,
// because URLs leak into logs. Every extractor runs on every request: a
// malformed credential anywhere (an empty value, a repeated Authorization
// field, a character outside token68 in Authorization or outside visible
// ASCII in a header), or two different credentials, make
// the request malformed instead of letting one win. See
// [Config.Extractors].
//
// # Client address
//
// The Verifier receives the client address for keys with an IP allow-list:
// the connection's peer, or, when that peer is one of
// [Config.TrustedProxies], the rightmost untrusted X-Forwarded-For entry.
//
// # Responses
//
// Refused requests get an RFC 9457 application/problem+json body ([Problem],
// written by [WriteProblem]) whose code says why (the Code constants, such
// as [CodeExpired]), with Cache-Control: no-store:
//
//	401 missing, malformed, invalid, expired, revoked   + WWW-Authenticate
//	403 insufficient_permission                        + X-Accepted-Permissions
//	403 address_denied
//	429 rate_limited                                   + Retry-After (seconds)
//	429 usage_exhausted                                + Retry-After when the balance refills (metered)
//	400 invalid_request (a metered request's cost is out of bounds)
//	503 unavailable (the key store failed: fail closed)
//	500 internal (any other verifier error)
//
// The 401 challenges are "Api-Key realm=..." and "Bearer realm=..." (see
// [Config.Schemes]) with the RFC 6750 error attribute: none when no key was
// sent, invalid_request for a malformed one, invalid_token otherwise.
// [Config.ErrorHandler] can replace the body. The text of an internal error
// never reaches the client, nor does a token reach an error message.
//
// With [Config.RateLimitHeaders], responses to requests whose key has a
// rate limit carry RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset
// and RateLimit-Policy, so that clients slow down before a 429.
//
// # Metering
//
// A verification can take a cost other than 1 from the key's rate limits,
// its uses and its identity's credits, and apply on-demand rate limits
// that only some routes name (keygate.Manager.VerifyWith). A [MeterFunc]
// says what each request takes, as a [Metering]: [Config.Meter] for every
// request of a Middleware, or [Middleware.Metered] for one route:
//
//	chat, err := mw.Metered(func(r *http.Request) middleware.Metering {
//		tokens, err := strconv.Atoi(r.Header.Get("X-Max-Tokens"))
//		if err != nil {
//			tokens = -1 // refused: 400 invalid_request
//		}
//		return middleware.Metering{Cost: tokens}
//	})
//	...
//	mux.Handle("POST /v1/chat", chat(mw.MustRequire(nil, "llm:invoke")(chatHandler)))
//
// The Verifier must then be a [MeteredVerifier] (*keygate.Manager and
// package client's remote Verifier are). The handler reads what the
// request took with [ReportFromContext]. With [Config.RateLimitHeaders],
// a metered response carries the RateLimit fields of the tightest limit
// checked (the refusing one on a 429) and the balances drawn from:
//
//	Keygate-Uses-Remaining: 748                   the key's uses left
//	Keygate-Uses-Refill: 2030-02-01T00:00:00Z     their next refill, if any
//	Keygate-Credits-Remaining: 9000               its identity's credits left
//	Keygate-Credits-Refill: 2030-02-01T00:00:00Z  their next refill, if any
//
// A 429 rate_limited by a named limit names it in [Problem.RateLimit],
// with [Problem.RateLimitScope] "key" or "identity" (a limit shared by
// the identity's keys). A request is metered once, by the first metered
// middleware it passes: one verified before without that meter, by an
// unmetered Verify in front of the router say, is refused 500 with
// [ErrUnmetered] rather than let through uncharged.
//
// # Throttling bad keys
//
// With [Config.FailureLimit], a client that sends too many bad keys gets
// 429 too_many_failures, unverified, until its budget refills, except for
// a key the [Verifier] holds in its cache (see [CachedVerifier]). A
// [Throttle] does the same for another door where tokens are presented,
// such as a sign-in form.
//
// # Concurrency and cost
//
// A Middleware is immutable and safe for concurrent use. On the success
// path it allocates only the request copy and context value that carry the
// key (and, with RateLimitHeaders, the fields it sets for a rate-limited
// key); permission checks allocate nothing. A metered request also
// allocates its report and its fields; an unmetered one pays nothing for
// metering.
package middleware

// Package client is a typed Go client of the keygate key management API
// served by package server, in the style of google/go-github.
//
// # Using it
//
//	c, err := client.New("https://keys.example.com/v1/", client.WithToken(adminToken)) // where keygate serve mounts the API
//	created, _, err := c.Create(ctx, client.CreateRequest{
//		Name: "grafana", Workspace: "tiger", Role: "viewer", Expiry: "30d",
//	})
//	fmt.Println(created.Token)          // redacted: kg_3Xk9…[REDACTED]
//	deliver(created.Token.Reveal())     // the only copy of the token
//
// [New] takes the base URL and options ([WithToken], [WithHTTPClient],
// [WithUserAgent]), checked at once. Paths are resolved relative to the base
// URL, so the API may be mounted under any prefix.
//
// # Endpoints
//
//	Client.Create      POST   /keys                  → *CreatedKey
//	Client.List        GET    /keys?workspace=...    → *KeyList (Next cursor); Client.All iterates
//	Client.Get         GET    /keys/{id}             → *Key
//	Client.Update      PATCH  /keys/{id}             → *Key (Version sent as If-Match)
//	Client.Regenerate  POST   /keys/{id}/regenerate  → *CreatedKey
//	Client.Revoke      POST   /keys/{id}/revoke      → *Key
//	Client.Privileges  GET    /keys/{id}/privileges  → *PrivilegeReport
//	Client.Usage       GET    /keys/{id}/usage       → *Usage (verifications by outcome, in hourly or daily buckets)
//	Client.Disable     POST   /keys/{id}/disable     → *Key
//	Client.Enable      POST   /keys/{id}/enable      → *Key
//	Client.Delete      DELETE /keys/{id}             → (no body)
//	Client.Verify      POST   /keys/verify           → *VerifyResponse (the verdict about a token)
//	Client.Roles       GET    /roles                 → []Role
//
// Identities, owners of keys whose limits their keys share, are behind
// [Client.Identities]:
//
//	Identities.Create  POST   /identities            → *Identity
//	Identities.List    GET    /identities?...        → *IdentityList; Identities.All iterates
//	Identities.Get     GET    /identities/{id}       → *Identity
//	Identities.Update  PATCH  /identities/{id}       → *Identity (Version sent as If-Match)
//	Identities.Delete  DELETE /identities/{id}       → (no body; keygate.ErrIdentityInUse while keys are in it)
//
// A key joins one with CreateRequest.IdentityID or UpdateRequest.IdentityID
// ("" takes it out), and ListOptions.IdentityID lists its keys.
//
// # Remote verification
//
// [Client.NewVerifier] returns a [Verifier], which implements
// middleware.Verifier over POST /keys/verify, so that a service holding
// neither the database nor the pepper protects its routes with
// middleware.New(middleware.Config{Verifier: v}) exactly as with a local
// Manager: same errors, same problem responses, and Require works on the
// keys it returns. It caches valid keys for a short, documented TTL (never
// keys with usage or rate limits), remembers refusals briefly and apart,
// coalesces concurrent misses, and fails closed (keygate.ErrUnavailable: a
// 503 with Retry-After), telling its Logger when the server cannot be
// used.
//
// [Verifier.VerifyWith] has keygate.Manager.VerifyWith's signature: a
// verification with a cost and named on-demand rate limits, returning the
// keygate.Report of what the server took, the same as a local Manager's.
// Nothing metered is cached: verifications with a cost or limits, and
// verdicts that checked a limit or drew from uses or credits, always reach
// the server.
//
// Every method takes a context first and returns a [*Response] (the
// *http.Response plus [Response.Next] and [Response.RetryAfter]) whenever
// the server answered, even with an error.
//
// # Errors
//
// A non-2xx answer is an [*ErrorResponse] holding the decoded RFC 9457
// problem ([CheckResponse]; error bodies are read through a 1 MiB limit).
// It matches keygate's errors with errors.Is, as a local Manager's error
// would, through server.ErrorsFor:
//
//	_, _, err := c.Create(ctx, req)
//	switch {
//	case errors.Is(err, keygate.ErrForbidden):      // 403
//	case errors.Is(err, keygate.ErrDuplicateName):  // 409
//	case errors.Is(err, keygate.ErrInvalidRequest): // any 400
//	case errors.Is(err, keygate.ErrUnavailable):    // 503: retry later
//	}
//	var er *client.ErrorResponse
//	if errors.As(err, &er) { log.Print(er.Problem.Code) }
//
// Transport failures are returned wrapped, and undecodable successful
// responses wrap [ErrInvalidResponse], as do those larger than 32 MiB
// (successful bodies are read through that limit) and, in [Client.All], a
// page cursor the server already gave, which would otherwise loop forever.
//
// # Secrets
//
// [WithToken] adds "Authorization: Api-Key <token>" to a clone of each
// request to the base URL's host only, never to another host (a redirect
// elsewhere gets no token); [WithImportedToken] does the same for a token
// imported from another system ("X-API-Key: <token>" when it is not
// token68). Tokens travel only in that header and in
// [CreatedKey.Token], an apikey.Token that prints redacted; no error,
// printed value or URL in an error holds one.
//
// # Concurrency
//
// A [Client] is immutable after New and safe for concurrent use.
package client

// Package keygate issues, stores, verifies and manages API keys.
//
// A [Manager] ties the pieces together: tokens from package apikey,
// permissions and roles from package permission, and records in a
// [store.Store] (package store/memory, or store/sqlstore for SQLite,
// PostgreSQL and MySQL/MariaDB). Package middleware puts it in front of a
// net/http handler.
//
// # Issuing keys
//
// [Manager.Create] takes a name, a description, an owner, a workspace, a role
// and/or granular scopes, metadata, limits and an explicit [Expiry] (7, 30,
// 60 or 90 days with [ExpireAfterDays], a custom time with [ExpireAt], or
// [NeverExpire]). It returns the plaintext token once; only a peppered
// HMAC-SHA256 of it is stored.
//
// # Verifying keys
//
// [Manager.Verify] (or [Manager.VerifyFrom], with the client address) checks a
// token on each request: its checksum first, so garbage never reaches the
// store; then the verification cache, keyed by the token's SHA-256; then the
// store, by peppered hash, compared in constant time. Revocation, expiry, the
// IP allow-list, the rate limit and the usage limit are checked on every
// call. [Manager.Authorize] and [Key.Allows] then check a permission in a
// workspace without allocating.
//
// Errors are sentinels to test with [errors.Is]: [ErrMalformed], [ErrInvalid],
// [ErrExpired], [ErrRevoked], [ErrUsageExhausted], [ErrRateLimited] (a
// [*RateLimitError] with RetryAfter), [ErrAddressDenied] and [ErrUnavailable]
// when the store fails: callers must refuse the request (fail closed).
// [Manager.RateStatus] tells what is left of a key's rate limit, for
// headers that let clients slow down before they are refused.
//
// # Cache consistency
//
// Update, Regenerate, Revoke and Delete through a Manager take effect on that
// Manager's next verification. Another process sharing the store may serve
// its cached copy for up to [Config.CacheTTL] (30 s by default), unless a
// [store.ChangeFeed] (for example PostgreSQL LISTEN/NOTIFY) tells it sooner.
// Rate limits are kept per process, unless [Config.RateLimiter] shares them
// (package github.com/keygate/keygate/redis).
//
// # Acting on behalf of a principal
//
// Every management call names the [Principal] acting: a verified key
// ([Key.Principal]), a user with a permission set, or [System] for the
// application itself. Seeing keys needs apikey:view, and managing them
// apikey:manage, in the key's workspace (the wildcard actions "*:read" and
// "*:write" do not include them). A principal can never create, widen,
// regenerate, revoke or delete a key that holds more than it holds itself,
// nor give a key a longer life or looser limits than its own (see
// Identities for theirs).
//
// # Identities
//
// An identity is an owner of keys (a customer, a user, a service), known
// by the application's own external id, whose limits all its keys share:
// named rate limits ([RateLimit], some applied only on demand) and credits
// with a refill schedule ([Credits], [Refill]). [Manager.CreateIdentity],
// [Manager.GetIdentity], [Manager.ListIdentities] (by workspace and
// external id), [Manager.UpdateIdentity] (with an optimistic version) and
// [Manager.DeleteIdentity] manage them, under the rules of keys: apikey:view
// to see one, apikey:manage in its workspace to change one, and one out of
// reach answered as missing ([ErrIdentityNotFound]). A key belongs to at
// most one identity, of its workspace ([CreateRequest.IdentityID],
// [UpdateRequest.IdentityID]; [ListRequest.IdentityID] lists an identity's
// keys). An identity that keys belong to is not deleted
// ([ErrIdentityInUse]): that would lift its limits from them. Identities
// need a store that is a [store.IdentityStore] (store/memory and
// store/sqlstore are); with another, the calls are [ErrUnsupported].
//
// A key holds the same kinds of limits of its own ([Limits]): its rate
// limit (Limits.Rate, named "default"), other named rate limits
// (Limits.RateLimits) and uses that may refill (Limits.Uses,
// Limits.Refill).
//
// # Metering
//
// Every verification applies a key's limits and its identity's: the
// always-on rate limits, the on-demand ones the verification names, the
// key's uses and the identity's credits, each taking the verification's
// cost ([Manager.VerifyWith] with [VerifyOptions]; 1 for Verify), and
// reports what is left of each ([Report]). Rate limits count in the
// process, exact there, or, with a [CostLimiter] such as package
// github.com/keygate/keygate/redis's, across every instance; uses and
// credits are spent atomically in the store (a [store.UseSpender] and
// [store.CreditSpender]), so they are exact across instances on every
// engine, and refill once per period at the first verification after
// its boundary (daily, or monthly on a day clamped to the month's end,
// UTC). A key with none of these is verified from the cache as before,
// allocating nothing. An identity's limits are loaded with the first of
// its keys and reloaded when it changes: at once on the instance that
// changed it and on those that hear of it on the change feed, within
// Config.CacheTTL elsewhere.
//
// A principal's identity limits bind it like its own ([Principal]
// IdentityLimits): it gives no identity, and puts no key in one with,
// looser limits than its own and its identity's together; it never raises
// an identity's balance while it draws on credits itself; and changing an
// identity's limits needs the rights to change every key in it.
//
// # Usage history
//
// A Manager counts every verification of a known key by outcome: "valid",
// or the code it was refused with (expired, revoked, disabled,
// rate_limited, usage_exhausted, address_denied, unavailable; invalid for a
// previous secret past its grace period; insufficient_permission for a
// verdict of [Manager.VerifyFor]); see [UsageOutcomes]. A malformed or
// unknown token has no key and counts nowhere. The counts are kept in
// memory, a compare-and-swap on a cached verification, and added to the
// store's hourly counts in one batch every [Config.UsageInterval] (1
// minute), by a store that is a [store.UsageRecorder] (those of this
// module are): no store write per request. [Manager.Close] writes what is
// left; a process that crashes loses at most the counts of its last
// interval (or, while the store fails, those kept since it began failing),
// and a failed write is tried again at the next (a write whose outcome
// the store could not tell, such as a commit whose connection dropped,
// may then count twice). History is kept [Config.UsageRetention]
// (90 days), and a key's is deleted with the key.
//
// [Manager.Usage] reports a key's verifications over a range, in hourly
// or daily (UTC) buckets, to a principal that may view the key;
// [Manager.KeysUsage] does so for a page of keys in one store query.
//
// # Audit
//
// Created, updated, regenerated, revoked, deleted and failed-verification
// events go to an [Auditor]; [SlogAuditor] over log/slog is the default, as
// do identity.created, identity.updated and identity.deleted. No event
// carries a secret.
//
// # Telemetry
//
// A Manager reports OpenTelemetry metrics to [Config.MeterProvider] and spans
// to [Config.TracerProvider], by default the global providers, which record
// nothing until the application installs its own (otel.SetMeterProvider,
// otel.SetTracerProvider). The instrumentation scope is [ScopeName].
//
// Metrics: keygate.verifications (counter, by keygate.verification.outcome:
// valid, malformed, invalid, expired, revoked, usage_exhausted,
// rate_limited, address_denied, disabled, unavailable); keygate.verification.duration
// (histogram, seconds, by outcome); keygate.cache.hits and
// keygate.cache.misses (counters) and keygate.cache.size (gauge), by
// keygate.cache.name ("key" for verified keys, "unknown" for tokens that
// match none); keygate.store.operation.duration (histogram, seconds) and
// keygate.store.errors (counter), by keygate.store.operation and, for a
// failure, error.type; keygate.change_feed.up (gauge, 1 or 0, with a
// [Config.ChangeFeed]); keygate.rate_limit.decisions (counter, by
// keygate.rate_limit.decision: allowed or refused).
//
// Spans: one per store call (keygate.store.get_by_hash, ...) and per
// management operation (keygate.Manager.Create, Get, List, Update,
// Regenerate, Revoke, Delete), with keygate.key.id when there is one and
// error.type on failure. A cached verification makes no span. No attribute
// ever holds a token, a hash or a pepper, and no error message is recorded.
//
// With no provider installed, a verification calls no instrument at all
// (its counters, histogram and the cache's hit and miss counters are
// skipped) and is not timed; other instruments cost one atomic load each.
// Whether the verification instruments record is decided at [New] and,
// while they do not, asked again at most once per second of [Config.Now]:
// a provider the application installs after New (otel.SetMeterProvider
// with the default global provider) is counting within a second.
package keygate

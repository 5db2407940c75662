package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store"
)

// The JSON bodies of the API. They are plain values, safe for concurrent
// reads; package client uses the same types, so the server and the client
// cannot disagree on a field.

// Key is the JSON view of an API key. It never holds the token, its hash or
// the pepper id; Hint tells keys apart. ExpiresAt, LastUsedAt and RevokedAt
// are omitted when zero (never expires, never used, not revoked). Like every
// body type of this package it is a plain value, safe for concurrent reads.
type Key struct {
	ID          uuid.UUID         `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Workspace   string            `json:"workspace,omitempty"`
	Role        string            `json:"role,omitempty"`
	Scopes      []string          `json:"scopes,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// IdentityID is the identity the key belongs to, whose limits it
	// shares; omitted when it belongs to none.
	IdentityID uuid.UUID `json:"identity_id,omitzero"`
	Hint       string    `json:"hint"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	// DisabledAt is when the key was disabled; omitted while it is
	// enabled.
	DisabledAt time.Time `json:"disabled_at,omitzero"`
	// Version changes with every update; send it back in If-Match (or
	// UpdateRequest.Version) to update only the version you saw.
	Version int64  `json:"version"`
	Limits  Limits `json:"limits,omitzero"`
}

// Limits restricts how a key may be used. In a request it replaces the
// key's limits as a whole; the zero Limits means no limits.
type Limits struct {
	// Rate limits the requests per window: the key's rate limit named
	// "default", always applied.
	Rate RateLimit `json:"rate,omitzero"`
	// RateLimits are the key's other named rate limits, each counted per
	// key and name (none named "default"); an on-demand one applies only
	// to the verifications that name it.
	RateLimits []NamedRateLimit `json:"rate_limits,omitempty"`
	// UsesRemaining, when set, is the number of verifications (or, with a
	// cost, units) the key still allows; nil means unlimited.
	UsesRemaining *int64 `json:"uses_remaining,omitempty"`
	// UsesRefill, when set, resets UsesRemaining to its amount on a
	// schedule, as an identity's credits refill; it needs UsesRemaining.
	UsesRefill *Refill `json:"uses_refill,omitempty"`
	// UsesRefilledAt, in responses, is when UsesRemaining was last set, by
	// a refill or by a request; the server sets it (it is read-only).
	UsesRefilledAt time.Time `json:"uses_refilled_at,omitzero"`
	// AllowedCIDRs, when not empty, are the client address prefixes the key
	// is accepted from, such as "10.0.0.0/8" or "2001:db8::/32".
	AllowedCIDRs []string `json:"allowed_cidrs,omitempty"`
}

// RateLimit allows Requests per Window; the zero RateLimit means none.
type RateLimit struct {
	Requests int      `json:"requests"`
	Window   Duration `json:"window"`
}

// Duration is a time.Duration written in JSON as a string in the form
// time.ParseDuration reads and time.Duration.String writes, such as "90s"
// or "1h0m0s". Decoding anything else fails with [ErrInvalidDuration];
// null leaves the value unchanged.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// UnmarshalJSON implements json.Unmarshaler. Its errors never quote the
// input.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return ErrInvalidDuration
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return ErrInvalidDuration
	}
	*d = Duration(v)
	return nil
}

// CreateRequest is the body of POST /keys. Name and Expiry are required,
// and a Role, Scopes or both.
type CreateRequest struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Workspace   string            `json:"workspace,omitempty"`
	Role        string            `json:"role,omitempty"`
	Scopes      []string          `json:"scopes,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Expiry is "never", a number of days such as "30d", a date such as
	// "2026-12-31" (the key works through that day, UTC) or an RFC 3339
	// time: see keygate.ParseExpiry.
	Expiry string  `json:"expiry"`
	Limits *Limits `json:"limits,omitempty"`
	// IdentityID, when set, puts the key in that identity (of its
	// workspace), sharing its limits.
	IdentityID string `json:"identity_id,omitempty"`
}

// ImportRequest is the body of POST /keys/import: keys issued by another
// system, to keep working without reissue. It holds 1 to
// keygate.MaxImportBatch rows, within [Config.MaxBodyBytes].
type ImportRequest struct {
	Keys []ImportRow `json:"keys"`
}

// ImportRow is one key of an [ImportRequest]: the fields of a
// [CreateRequest], and exactly one of Token and SHA256 (see
// keygate.ImportRequest).
type ImportRow struct {
	CreateRequest
	// Token is the key's plaintext: 16 to 256 printable ASCII characters
	// without spaces. It is hashed on the way in and never stored or sent
	// back.
	Token string `json:"token,omitempty"`
	// SHA256 is the hex SHA-256 of the key's plaintext, when the other
	// system kept only that.
	SHA256 string `json:"sha256,omitempty"`
	// Hint is shown for a SHA256 row until the key's first use.
	Hint string `json:"hint,omitempty"`
}

// importRowView is an ImportRow without its methods, for printing.
type importRowView ImportRow

// redacted returns r with Token and SHA256 as "[REDACTED]" when set.
func (r ImportRow) redacted() importRowView {
	v := importRowView(r)
	if v.Token != "" {
		v.Token = "[REDACTED]"
	}
	if v.SHA256 != "" {
		v.SHA256 = "[REDACTED]"
	}
	return v
}

// Format implements [fmt.Formatter]: every verb prints r with Token and
// SHA256 as "[REDACTED]" when set.
func (r ImportRow) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), r.redacted())
}

// MarshalJSON encodes r with Token and SHA256 as "[REDACTED]" when set,
// so that rows logged or dumped as JSON show neither; it is therefore not
// how rows travel: package client sends them in their wire form itself,
// and the server decodes them with the default decoding.
func (r ImportRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(r.redacted())
}

// LogValue renders r for log/slog: its name and workspace, whether it
// has a token or a SHA-256, and its hint.
func (r ImportRow) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", r.Name), slog.String("workspace", r.Workspace),
		slog.Bool("token", r.Token != ""), slog.Bool("sha256", r.SHA256 != ""), slog.String("hint", r.Hint))
}

// ImportResponse is the body of a POST /keys/import response: one result
// per row, in order, and their counts.
type ImportResponse struct {
	Imported   int            `json:"imported"`
	Duplicates int            `json:"duplicates"`
	Failed     int            `json:"failed"`
	Results    []ImportResult `json:"results"`
}

// ImportResult is what was done with one [ImportRow]: Status "imported"
// (Key is the new key), "duplicate" (the token is already stored; Key is
// that key when the caller may view it) or "failed" (Error says why, as
// the problem the same refusal of POST /keys would answer).
type ImportResult struct {
	Status string              `json:"status"`
	Key    *Key                `json:"key,omitempty"`
	Error  *middleware.Problem `json:"error,omitempty"`
}

// UpdateRequest is the body of PATCH /keys/{id}. Nil (absent or null)
// fields leave the key as it is; a present field replaces its value, so
// "scopes": [] removes every scope. A body with no field set writes
// nothing and leaves the key at its version.
type UpdateRequest struct {
	// Version, when not zero, must equal the key's version or the update
	// fails with 409 conflict; the If-Match header does the same.
	Version     int64              `json:"version,omitempty"`
	Name        *string            `json:"name,omitempty"`
	Description *string            `json:"description,omitempty"`
	Role        *string            `json:"role,omitempty"`
	Scopes      *[]string          `json:"scopes,omitempty"`
	Metadata    *map[string]string `json:"metadata,omitempty"`
	// Expiry is a new expiry in the forms of [CreateRequest.Expiry],
	// counted from now.
	Expiry *string `json:"expiry,omitempty"`
	// Limits changes the limits it names, and only those.
	Limits *LimitsUpdate `json:"limits,omitempty"`
	// IdentityID moves the key to that identity; "" takes it out of its
	// identity.
	IdentityID *string `json:"identity_id,omitempty"`
}

// LimitsUpdate changes a key's limits in an [UpdateRequest]: each non-nil
// field replaces that limit; nil fields leave theirs as they are.
type LimitsUpdate struct {
	// Rate replaces the rate limit; {"requests": 0} removes it.
	Rate *RateLimit `json:"rate,omitempty"`
	// RateLimits replaces the key's named rate limits besides "rate";
	// [] removes them.
	RateLimits *[]NamedRateLimit `json:"rate_limits,omitempty"`
	// UsesRemaining sets the number of uses left; a negative number
	// removes the usage limit, and its refill.
	UsesRemaining *int64 `json:"uses_remaining,omitempty"`
	// UsesRefill replaces the refill of the uses; {} removes it.
	UsesRefill *Refill `json:"uses_refill,omitempty"`
	// AllowedCIDRs replaces the IP allow-list; [] removes it.
	AllowedCIDRs *[]string `json:"allowed_cidrs,omitempty"`
}

// RegenerateRequest is the body of POST /keys/{id}/regenerate.
type RegenerateRequest struct {
	// Expiry is required, in the forms of [CreateRequest.Expiry].
	Expiry string `json:"expiry"`
	// GracePeriod keeps the old token working for this long, such as "1h";
	// zero stops it at once.
	GracePeriod Duration `json:"grace_period,omitzero"`
}

// VerifyRequest is the body of POST /keys/verify: a token presented to
// another service, to verify on its behalf.
type VerifyRequest struct {
	// Token is the token to verify; required.
	Token string `json:"token"`
	// Permission, when set, such as "cluster:read", must be held by the
	// key in Workspace for the token to be valid.
	Permission string `json:"permission,omitempty"`
	// Workspace is where Permission is checked.
	Workspace string `json:"workspace,omitempty"`
	// Address is the client address the token came from, such as
	// "203.0.113.7", checked against the key's IP allow-list; a key with
	// one is not valid without it.
	Address string `json:"address,omitempty"`
	// Cost is what the verification takes from each rate limit it is
	// checked against, from the key's uses and from its identity's
	// credits: 1 to keygate.MaxCost; 0 (absent) means 1.
	Cost int `json:"cost,omitempty"`
	// Limits names the on-demand rate limits, of the key and of its
	// identity, that apply to this verification besides the always-on
	// ones: at most [MaxVerifyLimits] rate limit names. A name neither has
	// is ignored.
	Limits []string `json:"limits,omitempty"`
}

// MaxVerifyLimits is keygate.MaxVerifyLimits: the most on-demand rate limits one verification may
// name in [VerifyRequest].Limits (keygate.VerifyOptions' bound).
const MaxVerifyLimits = keygate.MaxVerifyLimits

// VerifyResponse is the body of a POST /keys/verify response: the verdict
// about the token, and the Report of what it took. A valid token has Valid,
// Key, Permissions and SuperAdmin; another has Code (one of package middleware's: malformed,
// invalid, expired, revoked, disabled, usage_exhausted, rate_limited with
// RetryAfter, address_denied, insufficient_permission). A key the caller
// may not verify is answered as an unknown token, "invalid".
type VerifyResponse struct {
	Valid bool `json:"valid"`
	// Key is the verified key. For the previous secret of a
	// regeneration's grace period, its ExpiresAt is the end of that grace
	// period when sooner than the key's expiry: when the verified secret
	// stops working.
	Key *Key `json:"key,omitempty"`
	// Permissions are the key's effective permissions: its role's and its
	// scopes', in canonical form.
	Permissions []string `json:"permissions,omitempty"`
	// SuperAdmin reports whether the key's role is a super admin's.
	SuperAdmin bool `json:"super_admin,omitempty"`
	// Code says why the token is not valid.
	Code string `json:"code,omitempty"`
	// RetryAfter, for "rate_limited", is how many seconds to wait.
	RetryAfter int64 `json:"retry_after,omitempty"`
	// RateLimit, for a key with a rate limit, is what is left of it after
	// this use (a valid verdict) or the limit that refused it
	// ("rate_limited", with Remaining 0).
	RateLimit *RateStatus `json:"rate_limit,omitempty"`
	// Report is what the verification took from the limits it was
	// checked against and the balances it drew from, with what is left of
	// each, on success and on refusal alike (keygate.Report); omitted when
	// it checked no rate limit and drew from no balance.
	Report *VerifyReport `json:"report,omitempty"`
}

// VerifyReport is what a verification took, in a [VerifyResponse]: its
// cost, the rate limits it was checked against, in the order they were
// (the key's, then its identity's; a refusing one last), and what is left
// of the key's uses and of its identity's credits.
type VerifyReport struct {
	Cost   int           `json:"cost"`
	Limits []LimitReport `json:"limits,omitempty"`
	// Uses is the key's balance of uses; omitted when it has no usage
	// limit.
	Uses *Balance `json:"uses,omitempty"`
	// Credits is the key's identity's balance of credits; omitted when it
	// has none.
	Credits *Balance `json:"credits,omitempty"`
}

// LimitReport is what is left of one rate limit after a verification
// (keygate.LimitReport).
type LimitReport struct {
	// Name is the limit's name: "default" for a key's own (Limits.Rate).
	Name string `json:"name"`
	// Identity says that the limit is the key's identity's, shared by its
	// keys, rather than the key's own.
	Identity bool `json:"identity,omitempty"`
	// Requests per Window is the limit.
	Requests int      `json:"requests"`
	Window   Duration `json:"window"`
	OnDemand bool     `json:"on_demand,omitempty"`
	// Allowed says whether the verification's cost was taken from it.
	Allowed bool `json:"allowed"`
	// Remaining is how many units the limit has left now, one request
	// after another; -1 when the server's rate limiter cannot tell.
	Remaining int `json:"remaining"`
	// Reset is how long until the whole limit is available again (omitted
	// when it is, or when unknown); RetryAfter, for the limit that refused
	// the verification, how long until its cost would be allowed.
	Reset      Duration `json:"reset,omitzero"`
	RetryAfter Duration `json:"retry_after,omitzero"`
}

// Balance is what is left of a key's uses or an identity's credits after
// a verification (keygate.Balance).
type Balance struct {
	Remaining int64 `json:"remaining"`
	// NextRefill is when the balance is next set to its refill's amount;
	// omitted when it never refills.
	NextRefill time.Time `json:"next_refill,omitzero"`
}

// RateStatus is what is left of a key's rate limit, in a [VerifyResponse].
type RateStatus struct {
	// Requests per Window is the key's limit.
	Requests int      `json:"requests"`
	Window   Duration `json:"window"`
	// Remaining is how many requests the key may make now.
	Remaining int `json:"remaining"`
	// Reset is how long until the whole limit is available again; nil when
	// the server does not know it (a refusal by a shared rate limiter).
	Reset *Duration `json:"reset,omitempty"`
	// Name and Identity, for "rate_limited", say which limit refused:
	// Name is "default" for a key's own, or one of its or its identity's
	// named limits, and Identity says it is the identity's, shared by its
	// keys. Both are omitted in a valid verdict, about the key's own.
	Name     string `json:"name,omitempty"`
	Identity bool   `json:"identity,omitempty"`
}

// Role is a role keys may be given, in the body of GET /roles.
type Role struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Permissions []string `json:"permissions"`
	// RequiresWorkspace means a key with this role must have a workspace.
	RequiresWorkspace bool `json:"requires_workspace"`
	// SuperAdmin means the role is allowed everything in every workspace.
	SuperAdmin bool `json:"super_admin"`
}

// RoleList is the body of a GET /roles response, in name order.
type RoleList struct {
	Roles []Role `json:"roles"`
}

// PrivilegeReport is the body of a GET /keys/{id}/privileges response:
// what a key holds against what it exercised (keygate.PrivilegeReport).
type PrivilegeReport struct {
	KeyID uuid.UUID `json:"key_id"`
	// Since is the start of the window looked at (unused_for ago).
	Since time.Time `json:"since"`
	// Held are the key's effective permissions.
	Held []string `json:"held"`
	// Exercised is every exercise recorded, the old ones too.
	Exercised []Exercise `json:"exercised"`
	// Unused are the held permissions that allowed nothing since Since.
	Unused []string `json:"unused"`
	// Suggested are the narrowest scopes that would have allowed every
	// exercise since Since.
	Suggested []string `json:"suggested"`
	// SuggestedWorkspace is the one workspace of every exercise since
	// Since, when there is one.
	SuggestedWorkspace string `json:"suggested_workspace,omitempty"`
}

// Usage is the body of a GET /keys/{id}/usage response: a key's
// verifications by outcome over a time range, in buckets
// (keygate.Usage).
type Usage struct {
	KeyID uuid.UUID `json:"key_id"`
	// From and To are the range reported on, in whole buckets.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Bucket is "1h" or "1d" (days in UTC).
	Bucket string `json:"bucket"`
	// Totals are the verifications of the whole range by outcome: "valid"
	// or a refusal code (keygate.UsageOutcomes); an outcome without any is
	// absent.
	Totals map[string]int64 `json:"totals"`
	// Buckets cover From to To, in order, each of them.
	Buckets []UsageBucket `json:"buckets"`
}

// UsageBucket is one bucket of a [Usage].
type UsageBucket struct {
	// Start is when the bucket starts; it lasts the report's Bucket.
	Start time.Time `json:"start"`
	// Counts are its verifications by outcome, as Usage.Totals.
	Counts map[string]int64 `json:"counts"`
}

// Values of the bucket query parameter of GET /keys/{id}/usage and of
// [Usage].Bucket.
const (
	BucketHour = "1h"
	BucketDay  = "1d"
)

// Exercise is a permission a key was let through for, in a workspace,
// and when it last was (to the hour).
type Exercise struct {
	Permission string    `json:"permission"`
	Workspace  string    `json:"workspace,omitempty"`
	At         time.Time `json:"at"`
}

// KeyList is the body of a GET /keys response: one page of keys in
// creation order. Next is the cursor of the following page, to send as the
// "after" query parameter, or "" on the last page.
type KeyList struct {
	Keys []*Key `json:"keys"`
	Next string `json:"next"`
}

// created is the body of the create and regenerate responses: the only
// responses that hold a token. It is unexported so that nothing else ever
// marshals a plaintext token.
type created struct {
	Key   *Key   `json:"key"`
	Token string `json:"token"`
}

// Values of the "revoked" query parameter of GET /keys.
const (
	RevokedAny    = "any"     // revoked and active keys (the default)
	RevokedActive = "active"  // keys not revoked, expired ones included
	RevokedOnly   = "revoked" // revoked keys only
)

// newKey returns the JSON view of rec.
func newKey(rec *store.Key) *Key {
	k := new(Key)
	k.fill(rec)
	return k
}

// fill makes k the JSON view of rec.
func (k *Key) fill(rec *store.Key) {
	*k = Key{
		ID:          rec.ID,
		Name:        rec.Name,
		Description: rec.Description,
		Owner:       rec.Owner,
		Workspace:   rec.Workspace,
		Role:        rec.Role,
		Scopes:      rec.Scopes,
		Metadata:    rec.Metadata,
		IdentityID:  rec.IdentityID,
		Hint:        rec.Hint,
		CreatedAt:   rec.CreatedAt,
		UpdatedAt:   rec.UpdatedAt,
		ExpiresAt:   rec.ExpiresAt,
		LastUsedAt:  rec.LastUsedAt,
		RevokedAt:   rec.RevokedAt,
		DisabledAt:  rec.DisabledAt,
		Version:     rec.Version,
		Limits: Limits{
			Rate:          RateLimit{Requests: rec.RateLimit, Window: Duration(rec.RateWindow)},
			RateLimits:    namedRateLimits(rec.RateLimits),
			UsesRemaining: rec.RemainingUses,
			UsesRefill:    newRefill(rec.Refill),
		},
	}
	if rec.RemainingUses != nil && rec.Refill != nil {
		k.Limits.UsesRefilledAt = rec.RefilledAt
	}
	for _, p := range rec.AllowedCIDRs {
		k.Limits.AllowedCIDRs = append(k.Limits.AllowedCIDRs, p.String())
	}
}

// limits converts l to the Manager's form.
func (l *Limits) limits() (keygate.Limits, error) {
	cidrs, err := parseCIDRs(l.AllowedCIDRs)
	out := keygate.Limits{
		Rate:         keygate.RateLimit{Requests: l.Rate.Requests, Window: time.Duration(l.Rate.Window)},
		Uses:         l.UsesRemaining,
		Refill:       l.UsesRefill.refill(),
		AllowedCIDRs: cidrs,
	}
	if len(l.RateLimits) > 0 {
		out.RateLimits = rateLimits(l.RateLimits)
	}
	return out, err
}

// parseCIDRs parses the prefixes of limits.allowed_cidrs.
func parseCIDRs(cidrs []string) ([]netip.Prefix, error) {
	if len(cidrs) > keygate.MaxAllowedCIDRs {
		return nil, invalidField(fmt.Sprintf("limits.allowed_cidrs holds more than %d prefixes.", keygate.MaxAllowedCIDRs))
	}
	out := make([]netip.Prefix, 0, len(cidrs))
	for i, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, invalidField(fmt.Sprintf("limits.allowed_cidrs[%d] is not a CIDR prefix such as 10.0.0.0/8.", i))
		}
		out = append(out, p)
	}
	return out, nil
}

// request converts r to the Manager's form.
func (r *CreateRequest) request() (keygate.CreateRequest, error) {
	out := keygate.CreateRequest{
		Name:        r.Name,
		Description: r.Description,
		Owner:       r.Owner,
		Workspace:   r.Workspace,
		Role:        r.Role,
		Scopes:      r.Scopes,
		Metadata:    r.Metadata,
	}
	var err error
	if out.Expiry, err = keygate.ParseExpiry(r.Expiry); err != nil {
		return out, err
	}
	if r.Limits != nil {
		if out.Limits, err = r.Limits.limits(); err != nil {
			return out, err
		}
	}
	if r.IdentityID != "" {
		if out.IdentityID, err = identityRef(r.IdentityID); err != nil {
			return out, err
		}
	}
	return out, nil
}

// request converts r to the Manager's form.
func (r *ImportRow) request() (keygate.ImportRequest, error) {
	req, err := r.CreateRequest.request()
	out := keygate.ImportRequest{CreateRequest: req, SHA256: r.SHA256, Hint: r.Hint}
	if err != nil {
		return out, err
	}
	if r.Token != "" {
		if out.Token, err = apikey.ParseImported(r.Token); err != nil {
			return out, invalidField(fmt.Sprintf("The token must be %d to %d printable ASCII characters without spaces.",
				apikey.MinImportedLength, apikey.MaxImportedLength))
		}
	}
	return out, nil
}

// request converts r to the Manager's form.
func (r *UpdateRequest) request() (keygate.UpdateRequest, error) {
	out := keygate.UpdateRequest{
		Version:     r.Version,
		Name:        r.Name,
		Description: r.Description,
		Role:        r.Role,
		Scopes:      r.Scopes,
		Metadata:    r.Metadata,
	}
	if r.Expiry != nil {
		e, err := keygate.ParseExpiry(*r.Expiry)
		if err != nil {
			return out, err
		}
		out.Expiry = &e
	}
	if l := r.Limits; l != nil {
		if l.Rate != nil {
			out.Rate = &keygate.RateLimit{Requests: l.Rate.Requests, Window: time.Duration(l.Rate.Window)}
		}
		if l.RateLimits != nil {
			rls := rateLimits(*l.RateLimits)
			out.RateLimits = &rls
		}
		out.Uses = l.UsesRemaining
		out.Refill = l.UsesRefill.refill()
		if l.AllowedCIDRs != nil {
			cidrs, err := parseCIDRs(*l.AllowedCIDRs)
			if err != nil {
				return out, err
			}
			out.AllowedCIDRs = &cidrs
		}
	}
	if r.IdentityID != nil {
		id := uuid.Nil
		if *r.IdentityID != "" {
			var err error
			if id, err = identityRef(*r.IdentityID); err != nil {
				return out, err
			}
		}
		out.IdentityID = &id
	}
	return out, nil
}

// request converts r to the Manager's form.
func (r *RegenerateRequest) request() (keygate.RegenerateRequest, error) {
	e, err := keygate.ParseExpiry(r.Expiry)
	return keygate.RegenerateRequest{Expiry: e, GracePeriod: time.Duration(r.GracePeriod)}, err
}

package server

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// Identity is the JSON view of an identity: an owner of keys, known by the
// application's own external id, whose limits all its keys share.
type Identity struct {
	ID uuid.UUID `json:"id"`
	// ExternalID is the application's own id of the owner, unique in the
	// workspace.
	ExternalID string            `json:"external_id"`
	Workspace  string            `json:"workspace,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	// Limits are shared by all the identity's keys; omitted when it has
	// none.
	Limits    IdentityLimits `json:"limits,omitzero"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	// Version changes with every change of the identity (not with the
	// credits its keys draw); send it back in If-Match (or
	// UpdateIdentityRequest.Version) to update only the version you saw.
	Version int64 `json:"version"`
}

// IdentityLimits are an identity's limits. In a create request, the zero
// IdentityLimits means none.
type IdentityLimits struct {
	// RateLimits are named rate limits, counted for the identity as a
	// whole.
	RateLimits []NamedRateLimit `json:"rate_limits,omitempty"`
	// Credits, when set, are drawn from by every verification of the
	// identity's keys.
	Credits *Credits `json:"credits,omitempty"`
}

// NamedRateLimit allows Requests per Window under a Name; an on-demand one
// applies only to the verifications that name it.
type NamedRateLimit struct {
	Name     string   `json:"name"`
	Requests int      `json:"requests"`
	Window   Duration `json:"window"`
	OnDemand bool     `json:"on_demand,omitempty"`
}

// Credits is a balance that verifications draw from, and its refill.
type Credits struct {
	// Remaining is the balance.
	Remaining int64 `json:"remaining"`
	// Refill, when set, resets the balance on a schedule.
	Refill *Refill `json:"refill,omitempty"`
	// RefilledAt, in responses, is when the balance was last set, by a
	// refill or by a request; the server sets it (it is read-only).
	RefilledAt time.Time `json:"refilled_at,omitzero"`
}

// Refill sets a balance to Amount at every boundary of its period, in
// UTC: Every "day" (midnight), or "month" on Day 1 to 31 (the month's last
// day when it has fewer days).
type Refill struct {
	Amount int64  `json:"amount"`
	Every  string `json:"every"`
	Day    int    `json:"day,omitempty"`
}

// CreateIdentityRequest is the body of POST /identities. ExternalID is
// required.
type CreateIdentityRequest struct {
	ExternalID string            `json:"external_id"`
	Workspace  string            `json:"workspace,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Limits     *IdentityLimits   `json:"limits,omitempty"`
}

// UpdateIdentityRequest is the body of PATCH /identities/{id}. Nil (absent
// or null) fields leave the identity as it is; a body with no field set
// writes nothing.
type UpdateIdentityRequest struct {
	// Version, when not zero, must equal the identity's version or the
	// update fails with 409 conflict; the If-Match header does the same.
	Version    int64              `json:"version,omitempty"`
	ExternalID *string            `json:"external_id,omitempty"`
	Metadata   *map[string]string `json:"metadata,omitempty"`
	// Limits changes the limits it names, and only those.
	Limits *IdentityLimitsUpdate `json:"limits,omitempty"`
}

// IdentityLimitsUpdate changes an identity's limits: each non-nil field
// replaces what it names.
type IdentityLimitsUpdate struct {
	// RateLimits replaces every rate limit; [] removes them.
	RateLimits *[]NamedRateLimit `json:"rate_limits,omitempty"`
	// Credits changes the credits.
	Credits *CreditsUpdate `json:"credits,omitempty"`
}

// CreditsUpdate changes an identity's credits. An identity without
// credits gets them only with Remaining.
type CreditsUpdate struct {
	// Remaining sets the balance; a negative number removes the credits.
	// Absent, the balance stays what verifications left of it.
	Remaining *int64 `json:"remaining,omitempty"`
	// Refill replaces the refill; {} removes it.
	Refill *Refill `json:"refill,omitempty"`
}

// IdentityList is the body of a GET /identities response: one page in
// creation order, Next the cursor of the following page ("after"), "" on
// the last page.
type IdentityList struct {
	Identities []*Identity `json:"identities"`
	Next       string      `json:"next"`
}

// newIdentity returns the JSON view of rec.
func newIdentity(rec *store.Identity) *Identity {
	out := &Identity{
		ID:         rec.ID,
		ExternalID: rec.ExternalID,
		Workspace:  rec.Workspace,
		Metadata:   rec.Metadata,
		CreatedAt:  rec.CreatedAt,
		UpdatedAt:  rec.UpdatedAt,
		Version:    rec.Version,
	}
	out.Limits.RateLimits = namedRateLimits(rec.RateLimits)
	if c := rec.Credits; c != nil {
		out.Limits.Credits = &Credits{Remaining: c.Remaining, RefilledAt: c.RefilledAt, Refill: newRefill(c.Refill)}
	}
	return out
}

// namedRateLimits returns the JSON view of rls; nil for none.
func namedRateLimits(rls []keygate.RateLimit) []NamedRateLimit {
	var out []NamedRateLimit
	for _, r := range rls {
		out = append(out, NamedRateLimit{Name: r.Name, Requests: r.Requests, Window: Duration(r.Window), OnDemand: r.OnDemand})
	}
	return out
}

// newRefill returns the JSON view of r; nil stays nil.
func newRefill(r *keygate.Refill) *Refill {
	if r == nil {
		return nil
	}
	return &Refill{Amount: r.Amount, Every: string(r.Every), Day: r.Day}
}

// rateLimits converts rls to the Manager's form.
func rateLimits(rls []NamedRateLimit) []keygate.RateLimit {
	out := make([]keygate.RateLimit, len(rls))
	for i, r := range rls {
		out[i] = keygate.RateLimit{Name: r.Name, Requests: r.Requests, Window: time.Duration(r.Window), OnDemand: r.OnDemand}
	}
	return out
}

// refill converts r to the Manager's form; nil stays nil.
func (r *Refill) refill() *keygate.Refill {
	if r == nil {
		return nil
	}
	return &keygate.Refill{Amount: r.Amount, Every: store.Period(r.Every), Day: r.Day}
}

// limits converts l to the Manager's form.
func (l *IdentityLimits) limits() keygate.IdentityLimits {
	out := keygate.IdentityLimits{RateLimits: rateLimits(l.RateLimits)}
	if c := l.Credits; c != nil {
		out.Credits = &keygate.Credits{Remaining: c.Remaining, Refill: c.Refill.refill()}
	}
	return out
}

// request converts r to the Manager's form.
func (r *CreateIdentityRequest) request() keygate.CreateIdentityRequest {
	out := keygate.CreateIdentityRequest{ExternalID: r.ExternalID, Workspace: r.Workspace, Metadata: r.Metadata}
	if r.Limits != nil {
		out.Limits = r.Limits.limits()
	}
	return out
}

// request converts r to the Manager's form.
func (r *UpdateIdentityRequest) request() keygate.UpdateIdentityRequest {
	out := keygate.UpdateIdentityRequest{Version: r.Version, ExternalID: r.ExternalID, Metadata: r.Metadata}
	if l := r.Limits; l != nil {
		if l.RateLimits != nil {
			rls := rateLimits(*l.RateLimits)
			out.RateLimits = &rls
		}
		if c := l.Credits; c != nil {
			out.Credits = &keygate.CreditsUpdate{Remaining: c.Remaining, Refill: c.Refill.refill()}
		}
	}
	return out
}

// identityRef parses the identity_id of a key's request.
func identityRef(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, invalidField(fmt.Sprintf("The identity_id field must be an identity's id, a UUID such as %s.", uuid.Nil))
	}
	return id, nil
}

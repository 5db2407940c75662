package store

import (
	"context"
	"maps"
	"time"

	"github.com/google/uuid"
)

// Identity is the stored record of an identity: an owner of keys (a
// customer, a user, a service), known by the application's own id for it,
// with the limits that all its keys share: named rate limits and credits.
// A key belongs to at most one identity ([Key.IdentityID]), in the same
// workspace.
//
// Like a Key, an Identity is a plain value; a store copies it on the way in
// and out.
type Identity struct {
	// ID is a UUIDv7, so ids sort in creation order.
	ID uuid.UUID
	// ExternalID is the application's own id of the owner, such as a
	// customer id: required, and unique within the Workspace ("" is a
	// workspace too).
	ExternalID string
	// Workspace is the workspace of the identity and of all its keys; ""
	// means none. It never changes.
	Workspace string
	// Metadata is a small string map the application attaches to the
	// identity.
	Metadata map[string]string
	// RateLimits are the identity's named rate limits, shared by all its
	// keys (each counted per identity and name), names unique; none means
	// no rate limit of the identity's own.
	RateLimits []RateLimit
	// Credits, when set, are the identity's credits, shared by all its
	// keys; nil means none.
	Credits *Credits

	// CreatedAt and UpdatedAt are set by the caller (the manager owns the
	// clock).
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version is the optimistic-concurrency counter of the identity's
	// configuration: CreateIdentity stores 1, each successful
	// UpdateIdentity adds one. Taking credits does not change it.
	Version int64
}

// RateLimit is a named rate limit: Requests per Window, with bursts of up
// to Requests. An always-on limit (OnDemand false) applies to every
// verification; an on-demand one only to the verifications that name it
// (such as the calls of an expensive endpoint).
//
// A key's own single rate limit ([Key.RateLimit], [Key.RateWindow]) is
// its limit named "default", always on.
type RateLimit struct {
	// Name tells the limits of one owner apart, such as "default",
	// "requests" or "tokens".
	Name string
	// Requests is the number of requests (or, with a cost, units) allowed
	// per Window.
	Requests int
	// Window is the period the limit is counted over.
	Window time.Duration
	// OnDemand makes the limit apply only to verifications that name it.
	OnDemand bool
}

// Credits is a balance that verifications draw from: each takes its cost,
// atomically in the store, and none is allowed once the balance cannot
// pay. A Refill, when set, tops the balance up on a schedule.
type Credits struct {
	// Remaining is what is left to spend, 0 or more.
	Remaining int64
	// Refill, when set, resets Remaining on a schedule; nil means never.
	Refill *Refill
	// RefilledAt is when Remaining was last set: by a refill, or by the
	// write that set the balance (creation, or an update that set it).
	// The next refill is due at the first boundary of Refill's period
	// after it.
	RefilledAt time.Time
}

// Period is how often a [Refill] happens.
type Period string

// The periods of a refill, in UTC.
const (
	// PeriodDay refills at every midnight, UTC.
	PeriodDay Period = "day"
	// PeriodMonth refills at midnight UTC starting day Refill.Day of each
	// month, or the month's last day when it has fewer days (day 31 is
	// February's 28th, or 29th in a leap year).
	PeriodMonth Period = "month"
)

// Refill is the schedule of [Credits]: at each boundary of its period,
// the balance is set to Amount (what was left is not carried over). A
// store applies a refill when the credits are next drawn from after the
// boundary, once however many instances draw at once.
type Refill struct {
	// Amount is the balance after a refill, 1 or more.
	Amount int64
	// Every is the period: PeriodDay or PeriodMonth.
	Every Period
	// Day, for PeriodMonth, is the day of the month of the refill, 1 to
	// 31; 0 for PeriodDay.
	Day int
}

// Clone returns a deep copy of id.
func (id *Identity) Clone() *Identity {
	if id == nil {
		return nil
	}
	c := *id
	c.Metadata = maps.Clone(id.Metadata)
	c.RateLimits = cloneSlice(id.RateLimits)
	if id.Credits != nil {
		cr := *id.Credits
		if cr.Refill != nil {
			r := *cr.Refill
			cr.Refill = &r
		}
		c.Credits = &cr
	}
	return &c
}

// IdentityListOptions filters and pages [IdentityStore.ListIdentities].
// Empty strings match anything.
type IdentityListOptions struct {
	// Workspace and ExternalID, when set, match exactly.
	Workspace  string
	ExternalID string
	// Limit is the page size: 0 means DefaultListLimit; above
	// MaxListLimit it is clamped.
	Limit int
	// After is the cursor: the id of the last identity of the previous
	// page, or the zero UUID for the first page.
	After uuid.UUID
}

// Matches reports whether id passes the filters of o (workspace, external
// id), the cursor and limit aside: the filters ListIdentities applies, for
// backends that filter in Go.
func (o *IdentityListOptions) Matches(id *Identity) bool {
	return (o.Workspace == "" || id.Workspace == o.Workspace) && (o.ExternalID == "" || id.ExternalID == o.ExternalID)
}

// IdentityPage is one page of [IdentityStore.ListIdentities] results, in
// ascending id (so creation) order, as [Page] is for keys.
type IdentityPage struct {
	// Identities are the identities of this page.
	Identities []*Identity
	// Next is the cursor of the following page (the id of this page's
	// last identity), or the zero UUID when none matches after this page.
	Next uuid.UUID
}

// IdentityStore is an optional interface of a [Store] that keeps
// identities, so that keys can belong to one and share its limits. The
// keygate Manager manages identities, and links keys to them, only when
// its store has it (else ErrUnsupported); the stores of this module
// implement it, and storetest checks it when a store does.
//
// Its methods follow the contract of [Store]: a context first, the
// sentinel errors wrapped, nothing written on a sentinel error, and a
// write that fails otherwise happened entirely or not at all.
//
// A store that has it also keeps [Key.IdentityID], and keeps keys and
// identities consistent: no key ever names an identity the store does not
// hold, whatever keys are created, updated and identities deleted at the
// same time. Store.Create and Store.Update refuse a key naming an identity
// that does not exist with [ErrUnknownIdentity]; DeleteIdentity refuses
// an identity that keys name with [ErrIdentityInUse].
type IdentityStore interface {
	// CreateIdentity stores a new identity with Version 1 (it sets
	// id.Version to 1). It returns ErrDuplicate if the id or the
	// (Workspace, ExternalID) pair is already used; nothing is written
	// then, and id.Version is unchanged on any error. The id must not be
	// the zero UUID.
	CreateIdentity(ctx context.Context, id *Identity) error

	// GetIdentity returns the identity with the given id, or ErrNotFound.
	GetIdentity(ctx context.Context, id uuid.UUID) (*Identity, error)

	// ListIdentities returns the identities matching opts in ascending id
	// order, at most opts.Limit of them (zero or negative means
	// DefaultListLimit, more than MaxListLimit means MaxListLimit),
	// starting after opts.After, as Store.List pages keys.
	ListIdentities(ctx context.Context, opts IdentityListOptions) (*IdentityPage, error)

	// UpdateIdentity replaces the stored identity id.ID with id, if the
	// stored version equals id.Version; it then stores and sets
	// id.Version+1. A stale version returns ErrConflict, a missing
	// identity ErrNotFound, an ExternalID another identity of the
	// workspace holds ErrDuplicate; nothing is written then and id.Version
	// is unchanged. CreatedAt and Workspace are not changed.
	//
	// Credits drawn by verifications change the balance without changing
	// the version, so an update must not write back a balance read
	// earlier: unless balance is true, the stored Credits.Remaining and
	// Credits.RefilledAt are kept (only the Refill is replaced). With
	// balance true, or when the stored identity has no credits, id's are
	// written. A nil id.Credits removes the credits, whatever balance.
	UpdateIdentity(ctx context.Context, id *Identity, balance bool) error

	// DeleteIdentity removes the identity with the given id. It returns
	// ErrNotFound if there is none, and ErrIdentityInUse if keys still
	// name it: unlink or delete them first.
	DeleteIdentity(ctx context.Context, id uuid.UUID) error
}

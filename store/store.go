package store

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// Errors returned by every [Store]. Backends wrap them with %w so callers
// test them with [errors.Is]; a backend's own failures (a lost connection, a
// driver error) are returned wrapped but are none of these.
var (
	// ErrNotFound means no key (or, for an [IdentityStore]'s methods, no
	// identity) matches the id or hash asked for. It is not a system
	// failure.
	ErrNotFound = errors.New("store: key not found")
	// ErrConflict means an update carried a stale version: the key changed
	// since it was read. Nothing was written; read it again and retry.
	ErrConflict = errors.New("store: version conflict")
	// ErrDuplicate means a create would repeat an id, a hash, or a name
	// already used in the same workspace. Nothing was written.
	ErrDuplicate = errors.New("store: duplicate key")
	// ErrUsageExhausted means a usage-limited key has no uses left.
	ErrUsageExhausted = errors.New("store: usage limit exhausted")
	// ErrUnknownIdentity means a key was to be created or updated with an
	// IdentityID that names no identity of an [IdentityStore]. Nothing was
	// written.
	ErrUnknownIdentity = errors.New("store: unknown identity")
	// ErrIdentityInUse means an identity was to be deleted while keys
	// still name it (see [IdentityStore.DeleteIdentity]). Nothing was
	// written.
	ErrIdentityInUse = errors.New("store: identity in use by keys")
)

// Key is the stored record of one API key. It never holds the secret: only
// Hash, a keyed digest of the token computed by [apikey.Hasher], under the
// pepper named by PepperID.
//
// A Key is a plain value; a Store copies it on the way in and out, so a
// caller may change a Key it holds without affecting the store.
//
// [apikey.Hasher]: https://pkg.go.dev/github.com/keygate/keygate/apikey#Hasher
type Key struct {
	// ID is a UUIDv7, so ids sort in creation order.
	ID uuid.UUID
	// Name is required and unique within a Workspace ("" is a workspace too).
	Name        string
	Description string
	// Owner names the user or service the key belongs to.
	Owner string
	// Workspace binds the key to one workspace; "" means none.
	Workspace string
	// Role is the name of a role in a permission.Registry; "" means none.
	Role string
	// Scopes are granular permissions in their canonical string form.
	Scopes []string
	// Metadata is a small string map the application attaches to the key.
	Metadata map[string]string
	// IdentityID names the [Identity] the key belongs to, whose limits
	// all its keys share; the zero UUID means none. A store that is an
	// [IdentityStore] keeps it and refuses one naming no identity it holds
	// ([ErrUnknownIdentity]); other stores never see it set (the keygate
	// Manager links no key without an IdentityStore) and need not keep it.
	IdentityID uuid.UUID

	// Hash is the digest of the current token; PepperID names the pepper
	// it was computed under.
	Hash     []byte
	PepperID string
	// PrevHash and PrevPepperID hold the digest of the token replaced by the
	// last regeneration; it still verifies until PrevExpiresAt (a grace
	// period). Empty when there is none.
	PrevHash      []byte
	PrevPepperID  string
	PrevExpiresAt time.Time
	// Hint is a short non-secret display form of the token, such as
	// "kg_7Gq2…".
	Hint string

	// RateLimit is the number of requests allowed per RateWindow; 0 means
	// no rate limit. It is the key's own rate limit named "default",
	// always applied.
	RateLimit  int
	RateWindow time.Duration
	// RateLimits are the key's named rate limits besides its "default"
	// (RateLimit and RateWindow), each counted per key and name: names
	// unique and none "default"; an on-demand one applies only to the
	// verifications that name it. None (nil) means no other.
	RateLimits []RateLimit
	// RemainingUses is the number of verifications (or, with a cost,
	// units) left, the key's own credits; nil means unlimited. It is
	// decremented with [Store.ConsumeUse].
	RemainingUses *int64
	// Refill, when set, resets RemainingUses to Refill.Amount at each
	// boundary of its period, as an identity's credits refill; nil means
	// never (the balance only goes down). Set only with RemainingUses.
	Refill *Refill
	// RefilledAt is when RemainingUses was last set: by a refill, or by
	// the write that set the balance; the next refill is due at the first
	// boundary of Refill's period after it.
	RefilledAt time.Time
	// AllowedCIDRs restricts the client addresses the key is accepted
	// from; empty means any address.
	AllowedCIDRs []netip.Prefix

	// CreatedAt and UpdatedAt are set by the caller (the manager owns the
	// clock). ExpiresAt, LastUsedAt and RevokedAt are zero when unset.
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
	// DisabledAt, when set, is when the key was disabled: a reversible
	// stop, unlike a revocation. Zero means enabled.
	DisabledAt time.Time
	// ExpiryNotified is the expiry for which an "expiring soon" notice
	// was sent, so that it is sent once per key and expiry; zero when none
	// was.
	ExpiryNotified time.Time

	// Version is the optimistic-concurrency counter. Create stores 1;
	// each successful Update or ConsumeUse adds one.
	Version int64
}

// Clone returns a deep copy of k.
func (k *Key) Clone() *Key {
	if k == nil {
		return nil
	}
	c := *k
	c.Scopes = cloneSlice(k.Scopes)
	c.Hash = cloneSlice(k.Hash)
	c.PrevHash = cloneSlice(k.PrevHash)
	c.AllowedCIDRs = cloneSlice(k.AllowedCIDRs)
	c.Metadata = maps.Clone(k.Metadata)
	c.RateLimits = cloneSlice(k.RateLimits)
	if k.RemainingUses != nil {
		n := *k.RemainingUses
		c.RemainingUses = &n
	}
	if k.Refill != nil {
		r := *k.Refill
		c.Refill = &r
	}
	return &c
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// RevokedFilter selects keys by revocation state in [ListOptions].
type RevokedFilter int

const (
	// AnyRevoked lists revoked and active keys alike.
	AnyRevoked RevokedFilter = iota
	// OnlyActive lists keys that are not revoked (expired ones included).
	OnlyActive
	// OnlyRevoked lists revoked keys.
	OnlyRevoked
)

// DefaultListLimit is the page size used when [ListOptions.Limit] is zero,
// and MaxListLimit the largest a store accepts; larger limits are clamped.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// ListOptions filters and pages [Store.List]. Empty strings match anything.
type ListOptions struct {
	// Workspace and Owner, when set, match exactly.
	Workspace string
	Owner     string
	// Revoked selects by revocation state.
	Revoked RevokedFilter
	// Limit is the page size: 0 means DefaultListLimit; above
	// MaxListLimit it is clamped.
	Limit int
	// After is the cursor: the id of the last key of the previous page, or
	// the zero UUID for the first page.
	After uuid.UUID
	// ExpiresAfter and ExpiresBefore, when set, select the keys that
	// expire (a non-zero ExpiresAt) after ExpiresAfter and at or before
	// ExpiresBefore: for example, those expiring within a week.
	ExpiresAfter, ExpiresBefore time.Time
	// IdentityID, when not the zero UUID, selects the keys of that
	// identity. A store that is no [IdentityStore] holds no such key, and
	// lists none.
	IdentityID uuid.UUID
}

// Matches reports whether k passes the filters of o (workspace, owner,
// identity, revocation state, expiry bounds), the cursor and limit aside: the
// filters a Store's List applies, for backends that filter in Go.
func (o *ListOptions) Matches(k *Key) bool {
	switch {
	case o.Workspace != "" && k.Workspace != o.Workspace,
		o.Owner != "" && k.Owner != o.Owner,
		o.IdentityID != uuid.Nil && k.IdentityID != o.IdentityID,
		o.Revoked == OnlyActive && !k.RevokedAt.IsZero(),
		o.Revoked == OnlyRevoked && k.RevokedAt.IsZero(),
		!o.ExpiresAfter.IsZero() && (k.ExpiresAt.IsZero() || !k.ExpiresAt.After(o.ExpiresAfter)),
		!o.ExpiresBefore.IsZero() && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(o.ExpiresBefore)):
		return false
	}
	return true
}

// Page is one page of [Store.List] results, in ascending id (so creation)
// order. Next is the cursor for the following page (the id of this page's
// last key), or the zero UUID when no key matches after this page: a store
// fetches one row more than the limit to know.
type Page struct {
	// Keys are the keys of this page.
	Keys []*Key
	// Next is the cursor of the following page: pass it as
	// ListOptions.After.
	Next uuid.UUID
}

// Store persists API key records. Implementations must be safe for
// concurrent use by multiple goroutines, and must pass the conformance
// suite in package storetest.
//
// Every method takes a context first and stops early when it is done,
// returning an error that wraps ctx.Err().
//
// When a method returns one of this package's sentinel errors, it wrote
// nothing. When it fails otherwise (a lost connection, a failed commit or
// fsync, a context ended during the write), the write happened entirely or
// not at all, never in part, and the caller cannot tell which: it may read
// the key again. A store may keep times at microsecond precision; callers
// compare them with time.Time.Equal.
type Store interface {
	// Create stores a new key with Version 1 (it sets k.Version to 1).
	// It returns ErrDuplicate if the id, the Hash (against other keys'
	// Hash; equal to another key's PrevHash is allowed), or the
	// (Workspace, Name) pair is already used; nothing is written then, and
	// k.Version is unchanged on any error. The id must not be the zero
	// UUID, which List and ChangeFeed give a meaning of their own; the
	// Manager never creates one.
	Create(ctx context.Context, k *Key) error

	// Get returns the key with the given id, or ErrNotFound.
	Get(ctx context.Context, id uuid.UUID) (*Key, error)

	// GetByHash returns the key whose Hash, or whose PrevHash, equals hash,
	// or ErrNotFound. A key whose Hash equals it is preferred over one
	// whose PrevHash does (one key's Hash may equal another's PrevHash);
	// of several keys sharing a PrevHash, any one is returned, and another
	// still is once that one is deleted or changed. An empty or nil hash
	// matches no key. It does not check expiry or revocation; the caller
	// does, and compares hashes again in constant time.
	GetByHash(ctx context.Context, hash []byte) (*Key, error)

	// List returns the keys matching opts in ascending id order, at most
	// opts.Limit of them (zero or negative means DefaultListLimit, more
	// than MaxListLimit means MaxListLimit), starting after opts.After.
	// Keys created while a caller pages through never cause a key to be
	// skipped or repeated. A revoked key is one with a non-zero RevokedAt.
	List(ctx context.Context, opts ListOptions) (*Page, error)

	// Update replaces the stored key k.ID with k, if the stored version
	// equals k.Version; it then stores and sets k.Version+1. A stale
	// version returns ErrConflict and writes nothing; a missing key returns
	// ErrNotFound; a name taken in the workspace, or a hash another key
	// holds, returns ErrDuplicate. On any error k.Version is unchanged.
	// LastUsedAt and CreatedAt are not changed by Update.
	Update(ctx context.Context, k *Key) error

	// Delete removes the key with the given id. It returns ErrNotFound if
	// there is none.
	Delete(ctx context.Context, id uuid.UUID) error

	// TouchLastUsed records last-used times for many keys in one call, as
	// one write where the backend allows. A time earlier than the stored
	// one is ignored (last-used only moves forward); unknown ids are
	// ignored. It does not change versions.
	TouchLastUsed(ctx context.Context, used map[uuid.UUID]time.Time) error

	// ConsumeUse atomically takes one use from a usage-limited key and
	// returns the uses left after it. It returns ErrUsageExhausted when
	// none are left (the count never goes below zero), ErrNotFound for a
	// missing key, and (-1, nil) for a key with no usage limit, which it
	// leaves unchanged. With any error it returns 0. A successful
	// decrement adds one to the version.
	ConsumeUse(ctx context.Context, id uuid.UUID) (int64, error)
}

// ChangeFeed reports keys changed by any instance sharing a store, so that
// caches elsewhere can drop them sooner than their TTL. It is an optional
// capability, implemented for example by package store/sqlstore/pgnotify
// over PostgreSQL LISTEN/NOTIFY.
type ChangeFeed interface {
	// Watch calls fn, from one goroutine, with the id of each key updated or
	// deleted through any instance (and, as the keygate Manager needs to
	// forget tokens it remembered as unknown, of each key imported, or
	// created), until ctx is done or the feed fails. It
	// returns ctx.Err() (wrapped) when ctx ends, or the failure. A feed may
	// deliver an id more than once; fn must be quick and must not block.
	//
	// When the feed may have missed changes (it lost its connection and has
	// just re-established it), it calls fn(uuid.Nil): the receiver must
	// then treat every key as changed.
	Watch(ctx context.Context, fn func(id uuid.UUID)) error
}

// HealthChecker is an optional interface of a [Store] or a [ChangeFeed]
// that can tell whether it works, for readiness probes: Health returns nil
// when it does, or an error saying why not. keygate's Manager.Health uses
// it when present. It must be safe for concurrent use and quick.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// ChangePublisher is an optional interface of a [ChangeFeed] that other
// instances do not hear of changes from the database itself, such as a
// feed over a message bus: the keygate Manager calls Publish with the id of
// every key it changes, deletes or imports, after the store has the
// change, and the feed delivers it to the Watch of every instance (its own
// included, which is harmless). A failed Publish is logged; the change is
// stored, and other instances see it within their cache TTL (or, for an
// imported key whose token they remembered as unknown, within their
// NegativeCacheTTL). It must be safe for concurrent use.
type ChangePublisher interface {
	Publish(ctx context.Context, id uuid.UUID) error
}

// Revoker is an optional interface of a [Store] that revokes a key in one
// atomic write, whatever its version. Revoke sets RevokedAt to at unless it
// is already set (the first revocation time is kept), clears PrevHash,
// PrevPepperID and PrevExpiresAt (so the old secret of a grace period dies
// with the key), sets UpdatedAt to at, adds one to Version, and returns the
// key as stored. It returns ErrNotFound for a missing key, and writes
// nothing on any error. Like Update, it notifies a change feed the store
// feeds itself.
//
// The keygate Manager revokes through it when the store has it, so that
// revoking a key in heavy use succeeds at once: without it, Revoke is a
// read-modify-write guarded by the version, which a stream of ConsumeUse
// calls (each adding one to the version) can keep failing with
// ErrConflict. The stores of this module implement it, and storetest
// checks it when a store does.
type Revoker interface {
	Revoke(ctx context.Context, id uuid.UUID, at time.Time) (*Key, error)
}

// Exercise is a permission a key was let through for, in a workspace
// ("" for none), and when it last was, at the granularity the caller
// batches them (the keygate Manager records each at most once an hour).
type Exercise struct {
	KeyID      uuid.UUID
	Permission string
	Workspace  string
	At         time.Time
}

// ExerciseRecorder is an optional interface of a [Store] that keeps which
// permissions each key actually exercised, for least-privilege reports.
// The keygate Manager records exercises through it when the store has
// it; the stores of this module implement it, and storetest checks it when
// a store does.
type ExerciseRecorder interface {
	// RecordExercises stores each exercise, one row per key, permission and
	// workspace, keeping the latest time: a time earlier than the stored
	// one is ignored. It writes all or nothing.
	RecordExercises(ctx context.Context, exercises []Exercise) error
	// Exercises returns the exercises recorded for key id, in no
	// particular order; none for an unknown key. Delete removes a key's
	// exercises with it.
	Exercises(ctx context.Context, id uuid.UUID) ([]Exercise, error)
}

// RetiredHash is the stored hash of a secret that has left its key's
// record for good: the current secret replaced by a regeneration without
// a grace period, the previous secret of a grace period when it is
// replaced or cleared (by another regeneration or a revocation), and both
// when the key is deleted. (A re-hash of a live secret under a new pepper
// retires nothing.) See [Retirer].
type RetiredHash struct {
	// Hash is the hash as the key held it: a keyed digest, never a token.
	Hash []byte
	// PepperID names the pepper Hash was computed under.
	PepperID string
	// At is when it was retired.
	At time.Time
}

// Retirer is an optional interface of a [Store] that keeps the hashes of
// retired secrets (tombstones), so that a retired secret stays retired:
// the keygate Manager refuses to import a token whose hash was retired,
// and refuses a key imported by SHA-256 whose token turns out, at its
// first use, to be a retired secret (a shadow of a key since regenerated
// or deleted). The Manager writes a tombstone before the write that
// removes the hash from its record, so that an import running at the same
// time finds either the key or the tombstone. The stores of this module
// implement it, and storetest checks it when a store does; a Manager
// whose store lacks it refuses to import.
//
// Tombstones are kept for as long as the store exists (nothing deletes
// them; deleting a key leaves them), and are independent of the keys
// table: their hashes need not belong to any key, and a key may hold a
// hash that is also a tombstone (a write that failed after its tombstone).
type Retirer interface {
	// Retire records each hash as retired, in one write: all or nothing.
	// Retiring a hash already retired keeps the first record and is not
	// an error, so it is safe to retry. Empty hashes are ignored; an empty
	// slice writes nothing.
	Retire(ctx context.Context, hashes []RetiredHash) error
	// Retired reports whether any of hashes has been retired. An empty or
	// nil hash matches nothing, and so does a call without hashes.
	Retired(ctx context.Context, hashes ...[]byte) (bool, error)
}

package keygate

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/keygate/keygate/store"
)

// Errors of identities, in addition to the Manager's others (see
// errors.go). Each is wrapped with context; test with [errors.Is].
var (
	// ErrIdentityNotFound means no identity has the given id, or none the
	// principal may view or manage (no existence oracle). It comes
	// wrapped with [ErrNotFound].
	ErrIdentityNotFound = errors.New("keygate: identity not found")
	// ErrUnknownIdentity means a key was to be put in an identity that does
	// not exist, or that the principal may not manage. It comes wrapped
	// with [ErrInvalidRequest].
	ErrUnknownIdentity = errors.New("keygate: unknown identity")
	// ErrIdentityInUse means an identity was to be deleted while keys still
	// belong to it: move them out of it (UpdateRequest.IdentityID) or
	// delete them first. Deleting it quietly would lift its limits from
	// them.
	ErrIdentityInUse = errors.New("keygate: identity in use by keys")
	// ErrDuplicateExternalID means another identity of the workspace has
	// the external id. It comes wrapped with [ErrInvalidRequest].
	ErrDuplicateExternalID = errors.New("keygate: external id already used in this workspace")
)

// The audit events of identities; [Event.IdentityID] names the identity.
const (
	EventIdentityCreated EventType = "identity.created"
	EventIdentityUpdated EventType = "identity.updated"
	EventIdentityDeleted EventType = "identity.deleted"
)

// DefaultRateLimit is the name of a key's own rate limit ([Limits.Rate]).
const DefaultRateLimit = "default"

// Bounds of an identity's limits, with those of a key (see MaxRateRequests
// and MaxRateWindow, which bound each rate limit too).
const (
	// MaxRateLimits is the most named rate limits an identity holds, and
	// a key besides its own "default".
	MaxRateLimits = 16
	// MaxRateLimitName is the longest name of a rate limit, in bytes.
	MaxRateLimitName = 32
	// MaxCredits is the largest balance or refill amount of credits,
	// below 2^53 so that JSON numbers carry it exactly.
	MaxCredits = 1_000_000_000_000_000
)

// attrIdentityID is the span attribute naming the identity a management
// operation is about.
var attrIdentityID = attribute.Key("keygate.identity.id")

// Refill is the schedule of [Credits]: at each boundary of its period
// (UTC), the balance is set to Amount. Every is [store.PeriodDay] (Day 0)
// or [store.PeriodMonth] (Day 1 to 31; a day past the month's end is its
// last day).
type Refill = store.Refill

// Credits is a balance that verifications of an identity's keys draw
// from, and its refill schedule.
type Credits struct {
	// Remaining is the balance, 0 to MaxCredits.
	Remaining int64
	// Refill, when set, resets the balance on a schedule; nil never does.
	Refill *Refill
}

// IdentityLimits are the limits an identity holds, shared by all its
// keys, which are also bound by their own (a key's Limits).
type IdentityLimits struct {
	// RateLimits are named rate limits, each counted for the identity as a
	// whole: at most MaxRateLimits, names unique, each 1 to
	// MaxRateLimitName bytes of lowercase letters, digits, '_', '-' and '.',
	// starting with a letter. An on-demand one applies only to the
	// verifications that name it.
	RateLimits []RateLimit
	// Credits, when set, are drawn from by every verification of the
	// identity's keys.
	Credits *Credits
}

// empty reports whether l holds no limit.
func (l *IdentityLimits) empty() bool {
	return len(l.RateLimits) == 0 && l.Credits == nil
}

// limitsOfIdentity returns the limits kept in id.
func limitsOfIdentity(id *store.Identity) IdentityLimits {
	l := IdentityLimits{RateLimits: id.RateLimits}
	if id.Credits != nil {
		l.Credits = &Credits{Remaining: id.Credits.Remaining, Refill: id.Credits.Refill}
	}
	return l
}

// sameIdentityLimits reports whether a and b are the same limits.
func sameIdentityLimits(a, b IdentityLimits) bool {
	if !slices.Equal(a.RateLimits, b.RateLimits) || (a.Credits == nil) != (b.Credits == nil) {
		return false
	}
	if a.Credits == nil {
		return true
	}
	ra, rb := a.Credits.Refill, b.Credits.Refill
	return a.Credits.Remaining == b.Credits.Remaining && (ra == nil) == (rb == nil) && (ra == nil || *ra == *rb)
}

// CreateIdentityRequest describes a new identity.
type CreateIdentityRequest struct {
	// ExternalID is the application's own id of the owner, such as a
	// customer id: required, unique within the workspace, at most
	// MaxIdentLength bytes without surrounding spaces or control
	// characters.
	ExternalID string
	// Workspace is the workspace of the identity and of every key put in
	// it; "" for none. It never changes.
	Workspace string
	// Metadata is a small map kept with the identity, bounded as a key's.
	Metadata map[string]string
	// Limits are shared by all the identity's keys.
	Limits IdentityLimits
}

// UpdateIdentityRequest changes an identity; nil fields are left as they
// are.
type UpdateIdentityRequest struct {
	// Version, when not zero, must equal the identity's current version,
	// or the update fails with ErrConflict; when zero, the update is
	// retried on concurrent changes.
	Version int64
	// ExternalID and Metadata replace the identity's.
	ExternalID *string
	Metadata   *map[string]string
	// RateLimits replaces every named rate limit; an empty list removes
	// them all.
	RateLimits *[]RateLimit
	// Credits changes the credits.
	Credits *CreditsUpdate
}

// CreditsUpdate changes an identity's credits in an
// [UpdateIdentityRequest]. An identity without credits gets them only with
// a Remaining.
type CreditsUpdate struct {
	// Remaining sets the balance; a negative value removes the credits
	// (Refill must then be nil). Left nil, the balance stays what
	// verifications have left of it.
	Remaining *int64
	// Refill replaces the refill schedule; the zero Refill removes it.
	Refill *Refill
}

// IdentityListRequest filters and pages [Manager.ListIdentities]; see
// [store.IdentityListOptions].
type IdentityListRequest = store.IdentityListOptions

// CreateIdentity creates an identity on behalf of by, which must hold
// apikey:manage in its workspace, and may not give it looser limits than
// its own (a rate-limited principal creates rate-limited identities).
// Validation errors wrap [ErrInvalidRequest]; an external id already used
// in the workspace is [ErrDuplicateExternalID]; a store without
// identities is [ErrUnsupported].
func (m *Manager) CreateIdentity(ctx context.Context, by Principal, req CreateIdentityRequest) (_ *store.Identity, err error) {
	ctx, span := m.startSpan(ctx, "CreateIdentity", uuid.Nil)
	defer endSpan(span, &err)
	by, err = m.actor(ctx, by, true)
	if err != nil {
		return nil, err
	}
	if err := m.identitiesSupported("create identity"); err != nil {
		return nil, err
	}
	if err := validIdentityFields(req.ExternalID, req.Workspace, req.Metadata); err != nil {
		return nil, err
	}
	if err := validIdentityLimits(&req.Limits); err != nil {
		return nil, err
	}
	if d := firstDenial(by.deny(m.manageKeys, req.Workspace), by.identityBounds(nil, req.Limits)); d != nil {
		return nil, d
	}
	m.exercised(by.keyID, m.manageKeys, req.Workspace)
	id, err := uuid.NewV7()
	if err != nil {
		return nil, errorf("keygate: new identity id: %w", err)
	}
	now := m.clock()
	rec := &store.Identity{
		ID:         id,
		ExternalID: req.ExternalID,
		Workspace:  req.Workspace,
		Metadata:   maps.Clone(req.Metadata),
		RateLimits: slices.Clone(req.Limits.RateLimits),
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	setCredits(rec, req.Limits.Credits, now)
	if err := m.identities.CreateIdentity(ctx, rec); err != nil {
		return nil, m.identityError("create identity", err)
	}
	m.auditIdentity(ctx, EventIdentityCreated, rec, by.ID)
	return rec.Clone(), nil
}

// GetIdentity returns the identity with the given id, if by holds
// apikey:view in its workspace. One that by may neither view nor manage
// is [ErrIdentityNotFound], as one that does not exist.
func (m *Manager) GetIdentity(ctx context.Context, by Principal, id uuid.UUID) (_ *store.Identity, err error) {
	ctx, span := m.identitySpan(ctx, "GetIdentity", id)
	defer endSpan(span, &err)
	by, err = m.actor(ctx, by, false)
	if err != nil {
		return nil, err
	}
	rec, err := m.lookupIdentity(ctx, &by, id, "get identity")
	if err != nil {
		return nil, err
	}
	if d := by.deny(m.viewKeys, rec.Workspace); d != nil {
		d.IdentityID = id
		return nil, d
	}
	m.exercised(by.keyID, m.viewKeys, rec.Workspace)
	identityAsDue(rec, m.clock())
	return rec, nil
}

// ListIdentities returns one page of identities, under the rules of
// [Manager.List]: a principal bound to a workspace lists only that
// workspace (asking for another is [ErrForbidden]); others need
// apikey:view outside any workspace to list across workspaces.
func (m *Manager) ListIdentities(ctx context.Context, by Principal, req IdentityListRequest) (_ *store.IdentityPage, err error) {
	ctx, span := m.startSpan(ctx, "ListIdentities", uuid.Nil)
	defer endSpan(span, &err)
	by, err = m.actor(ctx, by, false)
	if err != nil {
		return nil, err
	}
	if err := m.identitiesSupported("list identities"); err != nil {
		return nil, err
	}
	if err := validFilter("workspace", req.Workspace); err != nil {
		return nil, err
	}
	if err := validFilter("external id", req.ExternalID); err != nil {
		return nil, err
	}
	if req.Workspace, err = m.listScope(&by, req.Workspace); err != nil {
		return nil, err
	}
	page, err := m.identities.ListIdentities(ctx, req)
	if err != nil {
		return nil, m.identityError("list identities", err)
	}
	now := m.clock()
	for _, id := range page.Identities {
		identityAsDue(id, now)
	}
	return page, nil
}

// UpdateIdentity changes an identity on behalf of by, which must hold
// apikey:manage in its workspace. A change of its limits must leave them
// no looser than by's own (a principal drawing on credits or uses never
// raises an identity's balance), and needs by to cover every key of the
// identity as changing that key would ([Manager.Update]): the limits bind
// them all. The keys are checked as they are when the change is made. A
// request that changes nothing writes nothing and returns the identity as
// it is. The identity returned is as stored after the change, its balance
// included.
func (m *Manager) UpdateIdentity(ctx context.Context, by Principal, id uuid.UUID, req UpdateIdentityRequest) (_ *store.Identity, err error) {
	ctx, span := m.identitySpan(ctx, "UpdateIdentity", id)
	defer endSpan(span, &err)
	by, err = m.actor(ctx, by, true)
	if err != nil {
		return nil, err
	}
	empty := req == UpdateIdentityRequest{Version: req.Version}
	for attempt := 1; ; attempt++ {
		rec, err := m.lookupIdentity(ctx, &by, id, "update identity")
		if err != nil {
			return nil, err
		}
		if d := by.deny(m.manageKeys, rec.Workspace); d != nil {
			d.IdentityID = id
			return nil, d
		}
		if req.Version != 0 && rec.Version != req.Version {
			return nil, errorf("%w: identity %s is at version %d, not %d", ErrConflict, id, rec.Version, req.Version)
		}
		if empty {
			return rec, nil
		}
		before := limitsOfIdentity(rec)
		now := m.clock()
		balance, err := applyIdentityUpdate(rec, &req, now)
		if err != nil {
			return nil, err
		}
		after := limitsOfIdentity(rec)
		if !sameIdentityLimits(before, after) {
			if d := by.identityBounds(&before, after); d != nil {
				d.IdentityID = id
				return nil, d
			}
			if err := m.coverIdentityKeys(ctx, &by, rec); err != nil {
				return nil, err
			}
		}
		m.exercised(by.keyID, m.manageKeys, rec.Workspace)
		rec.UpdatedAt = now
		err = m.identities.UpdateIdentity(ctx, rec, balance)
		if errors.Is(err, store.ErrConflict) && req.Version == 0 && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return nil, m.identityError("update identity", err)
		}
		m.identChanged(id)
		m.publish(ctx, id)
		m.auditIdentity(ctx, EventIdentityUpdated, rec, by.ID)
		if !balance && rec.Credits != nil {
			// The balance written was kept as stored: read it.
			if stored, err := m.identities.GetIdentity(ctx, id); err == nil {
				return stored, nil
			}
		}
		return rec.Clone(), nil
	}
}

// DeleteIdentity deletes an identity on behalf of by, which must hold
// apikey:manage in its workspace. An identity that keys still belong to
// is not deleted: [ErrIdentityInUse] (deleting it would lift its limits
// from them without a word); move them out or delete them first.
func (m *Manager) DeleteIdentity(ctx context.Context, by Principal, id uuid.UUID) (err error) {
	ctx, span := m.identitySpan(ctx, "DeleteIdentity", id)
	defer endSpan(span, &err)
	by, err = m.actor(ctx, by, true)
	if err != nil {
		return err
	}
	rec, err := m.lookupIdentity(ctx, &by, id, "delete identity")
	if err != nil {
		return err
	}
	if d := by.deny(m.manageKeys, rec.Workspace); d != nil {
		d.IdentityID = id
		return d
	}
	m.exercised(by.keyID, m.manageKeys, rec.Workspace)
	if err := m.identities.DeleteIdentity(ctx, id); err != nil {
		return m.identityError("delete identity", err)
	}
	m.identChanged(id)
	m.states.drop(id)
	m.publish(ctx, id)
	m.auditIdentity(ctx, EventIdentityDeleted, rec, by.ID)
	return nil
}

// SupportsIdentities reports whether the Manager's store keeps identities
// (a [store.IdentityStore]): without one, the identity calls, and a key's
// IdentityID, are [ErrUnsupported]. A user interface asks it to offer
// identities only where they work.
func (m *Manager) SupportsIdentities() bool {
	return m.identities != nil
}

// identitySpan starts the span of a management operation on identity id.
func (m *Manager) identitySpan(ctx context.Context, op string, id uuid.UUID) (context.Context, trace.Span) {
	ctx, span := m.startSpan(ctx, op, uuid.Nil)
	if span.IsRecording() {
		span.SetAttributes(attrIdentityID.String(id.String()))
	}
	return ctx, span
}

// identitiesSupported returns ErrUnsupported, for op, when the store keeps
// no identities.
func (m *Manager) identitiesSupported(op string) error {
	if m.identities == nil {
		return errorf("keygate: %s: %w: the store keeps no identities (store.IdentityStore)", op, ErrUnsupported)
	}
	return nil
}

// lookupIdentity reads identity id for by. One that by may neither view
// nor manage is ErrIdentityNotFound, exactly as one that does not exist.
func (m *Manager) lookupIdentity(ctx context.Context, by *Principal, id uuid.UUID, op string) (*store.Identity, error) {
	if err := m.identitiesSupported(op); err != nil {
		return nil, err
	}
	rec, err := m.identities.GetIdentity(ctx, id)
	if err != nil {
		return nil, m.identityError(op, err)
	}
	if !by.Allows(m.viewKeys, rec.Workspace) && !by.Allows(m.manageKeys, rec.Workspace) {
		return nil, errorf("keygate: %s: %w: %w", op, ErrNotFound, ErrIdentityNotFound)
	}
	return rec, nil
}

// identityError maps a store error of an identity operation to the
// Manager's errors.
func (m *Manager) identityError(op string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf("keygate: %s: %w: %w", op, ErrNotFound, ErrIdentityNotFound)
	case errors.Is(err, store.ErrDuplicate):
		return errorf("keygate: %s: %w: %w", op, ErrInvalidRequest, ErrDuplicateExternalID)
	case errors.Is(err, store.ErrIdentityInUse):
		return errorf("keygate: %s: %w", op, ErrIdentityInUse)
	}
	return m.storeError(op, err)
}

// auditIdentity sends an event about identity rec to the auditor.
func (m *Manager) auditIdentity(ctx context.Context, t EventType, rec *store.Identity, actor string) {
	m.auditor.Audit(ctx, Event{Type: t, Time: m.now(), Actor: actor, IdentityID: rec.ID, Workspace: rec.Workspace})
}

// coverIdentityKeys checks that by may change every key of identity rec:
// apikey:manage in its workspace and every permission the key holds (a
// super-admin key: only a super admin), as Update would need.
func (m *Manager) coverIdentityKeys(ctx context.Context, by *Principal, rec *store.Identity) error {
	if by.SuperAdmin {
		return nil
	}
	opts := store.ListOptions{IdentityID: rec.ID, Limit: store.MaxListLimit}
	for {
		page, err := m.store.List(ctx, opts)
		if err != nil {
			return m.storeError("list the identity's keys", err)
		}
		for _, k := range page.Keys {
			if err := m.authorizeChange(by, k); err != nil {
				var d *DeniedError
				if errors.As(err, &d) {
					d.IdentityID = rec.ID
				}
				return err
			}
		}
		if page.Next == uuid.Nil {
			return nil
		}
		opts.After = page.Next
	}
}

// linkIdentity puts rec, a key being created by by, in identity id (none
// for the zero UUID) and returns the identity's limits. The identity must
// exist and be within by's reach (else ErrUnknownIdentity), in rec's
// workspace.
func (m *Manager) linkIdentity(ctx context.Context, by *Principal, rec *store.Key, id uuid.UUID) (IdentityLimits, error) {
	rec.IdentityID = uuid.Nil
	if id == uuid.Nil {
		return IdentityLimits{}, nil
	}
	if err := m.identitiesSupported("put a key in an identity"); err != nil {
		return IdentityLimits{}, err
	}
	ident, err := m.identities.GetIdentity(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return IdentityLimits{}, errorf("keygate: %w: %w: %s", ErrInvalidRequest, ErrUnknownIdentity, id)
	case err != nil:
		return IdentityLimits{}, m.storeError("read the key's identity", err)
	case !by.Allows(m.viewKeys, ident.Workspace) && !by.Allows(m.manageKeys, ident.Workspace):
		return IdentityLimits{}, errorf("keygate: %w: %w: %s", ErrInvalidRequest, ErrUnknownIdentity, id)
	case ident.Workspace != rec.Workspace:
		return IdentityLimits{}, errorf("keygate: %w: %w: the identity is of another workspace than the key", ErrInvalidRequest, ErrInvalidField)
	}
	rec.IdentityID = id
	return limitsOfIdentity(ident), nil
}

// keyBounds checks, in Manager.mutate, that by may give key after (before
// before the change) its identity, lifetime and limits (see
// Principal.bounds): a new identity is checked as linkIdentity checks it,
// and the key's identity is read when its limits are needed.
func (m *Manager) keyBounds(ctx context.Context, by *Principal, before, after *store.Key, full bool) error {
	var limits IdentityLimits
	deny := func(d *DeniedError) error {
		d.KeyID = after.ID
		return d
	}
	switch {
	case after.IdentityID != before.IdentityID:
		want := after.IdentityID
		var err error
		if limits, err = m.linkIdentity(ctx, by, after, want); err != nil {
			return err
		}
		full = true
	case after.IdentityID != uuid.Nil && by.limited() && (full || !sameLimits(limitsOf(before), limitsOf(after))):
		ident, err := m.identities.GetIdentity(ctx, after.IdentityID)
		if err != nil {
			return m.storeError("read the key's identity", err)
		}
		limits = limitsOfIdentity(ident)
	}
	if d := by.bounds(before, after, limits, full); d != nil {
		return deny(d)
	}
	return nil
}

// validIdentityFields checks an identity's external id, workspace and
// metadata: identifiers as a key's owner and workspace are.
func validIdentityFields(externalID, workspace string, md map[string]string) error {
	switch {
	case externalID == "":
		return errorf("%w: %w: an identity needs an external id", ErrInvalidRequest, ErrInvalidField)
	case len(externalID) > MaxIdentLength || !cleanIdent(externalID):
		return errorf("%w: %w: external id longer than %d bytes or with surrounding spaces, control characters or invalid UTF-8",
			ErrInvalidRequest, ErrInvalidField, MaxIdentLength)
	case len(workspace) > MaxIdentLength || !cleanIdent(workspace):
		return errorf("%w: %w: workspace longer than %d bytes or with surrounding spaces, control characters or invalid UTF-8",
			ErrInvalidRequest, ErrInvalidField, MaxIdentLength)
	}
	return validMetadata(md)
}

// validIdentityLimits checks l: the rate limits' names and bounds, and the
// credits' balance and refill.
func validIdentityLimits(l *IdentityLimits) error {
	bad := func(format string, args ...any) error {
		return errorf("%w: %w: "+format, append([]any{ErrInvalidRequest, ErrInvalidField}, args...)...)
	}
	if err := validRateLimits(l.RateLimits); err != nil {
		return err
	}
	if c := l.Credits; c != nil {
		if c.Remaining < 0 || c.Remaining > MaxCredits {
			return bad("credits must be 0 to %d", int64(MaxCredits))
		}
		if err := validRefill(c.Refill); err != nil {
			return err
		}
	}
	return nil
}

// validRateLimits checks named rate limits, an identity's or a key's:
// their number, names and bounds.
func validRateLimits(rls []RateLimit) error {
	bad := func(format string, args ...any) error {
		return errorf("%w: %w: "+format, append([]any{ErrInvalidRequest, ErrInvalidField}, args...)...)
	}
	if len(rls) > MaxRateLimits {
		return bad("more than %d rate limits", MaxRateLimits)
	}
	for i, r := range rls {
		if !ValidLimitName(r.Name) {
			return bad("a rate limit's name must be 1 to %d lowercase letters, digits, '_', '-' or '.', starting with a letter", MaxRateLimitName)
		}
		if slices.ContainsFunc(rls[:i], func(o RateLimit) bool { return o.Name == r.Name }) {
			return bad("two rate limits have one name")
		}
		if r.Requests < 1 || r.Window <= 0 || r.Requests > MaxRateRequests || r.Window > MaxRateWindow || int64(r.Window) < int64(r.Requests) {
			return bad("a rate limit must be 1 to %d requests per window of at most %v, and at most one request per nanosecond",
				MaxRateRequests, MaxRateWindow)
		}
	}
	return nil
}

// validRefill checks a refill schedule; nil is none.
func validRefill(r *Refill) error {
	if r == nil {
		return nil
	}
	bad := func(format string, args ...any) error {
		return errorf("%w: %w: "+format, append([]any{ErrInvalidRequest, ErrInvalidField}, args...)...)
	}
	switch {
	case r.Amount < 1 || r.Amount > MaxCredits:
		return bad("a refill's amount must be 1 to %d", int64(MaxCredits))
	case r.Every == store.PeriodDay && r.Day != 0:
		return bad("a daily refill has no day of the month")
	case r.Every == store.PeriodMonth && (r.Day < 1 || r.Day > 31):
		return bad("a monthly refill's day must be 1 to 31")
	case r.Every != store.PeriodDay && r.Every != store.PeriodMonth:
		return bad(`a refill happens every "day" or "month"`)
	}
	return nil
}

// ValidLimitName reports whether s may name a rate limit: 1 to
// MaxRateLimitName bytes of lowercase letters, digits, '_', '-' and '.',
// starting with a letter.
func ValidLimitName(s string) bool {
	if s == "" || len(s) > MaxRateLimitName || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// setCredits stores c in rec as set at now: its balance counted from now.
func setCredits(rec *store.Identity, c *Credits, now time.Time) {
	rec.Credits = nil
	if c != nil {
		rec.Credits = &store.Credits{Remaining: c.Remaining, RefilledAt: now}
		if c.Refill != nil {
			r := *c.Refill
			rec.Credits.Refill = &r
		}
	}
}

// applyIdentityUpdate applies req to rec at now, validated, and reports
// whether the update sets the credit balance.
func applyIdentityUpdate(rec *store.Identity, req *UpdateIdentityRequest, now time.Time) (balance bool, err error) {
	if req.ExternalID != nil {
		rec.ExternalID = *req.ExternalID
	}
	if req.Metadata != nil {
		rec.Metadata = maps.Clone(*req.Metadata)
	}
	if err := validIdentityFields(rec.ExternalID, rec.Workspace, rec.Metadata); err != nil {
		return false, err
	}
	limits := limitsOfIdentity(rec)
	if req.RateLimits != nil {
		limits.RateLimits = slices.Clone(*req.RateLimits)
	}
	if cu := req.Credits; cu != nil {
		switch {
		case cu.Remaining != nil && *cu.Remaining < 0:
			if cu.Refill != nil {
				return false, errorf("%w: %w: credits being removed take no refill", ErrInvalidRequest, ErrInvalidField)
			}
			limits.Credits, balance = nil, true
		case limits.Credits == nil && cu.Remaining == nil:
			return false, errorf("%w: %w: an identity without credits gets them with a remaining balance", ErrInvalidRequest, ErrInvalidField)
		default:
			c := Credits{}
			if limits.Credits != nil {
				c = *limits.Credits
			}
			if cu.Remaining != nil {
				c.Remaining, balance = *cu.Remaining, true
			}
			if cu.Refill != nil {
				c.Refill = nil
				if *cu.Refill != (Refill{}) {
					r := *cu.Refill
					c.Refill = &r
				}
			}
			limits.Credits = &c
		}
	}
	if err := validIdentityLimits(&limits); err != nil {
		return false, err
	}
	rec.RateLimits = limits.RateLimits
	if balance || limits.Credits == nil {
		setCredits(rec, limits.Credits, now)
	} else {
		rec.Credits.Refill = limits.Credits.Refill
	}
	return balance, nil
}

// withIdentityLimits sets p's IdentityLimits to those of the identity of
// rec, p's own key, if it has one: they bind p too. A key naming an
// identity the store no longer holds (which a store keeping its contract
// never lets happen) makes p inactive, failing closed.
func (m *Manager) withIdentityLimits(ctx context.Context, p *Principal, rec *store.Key) error {
	if rec.IdentityID == uuid.Nil || m.identities == nil {
		return nil
	}
	ident, err := m.identities.GetIdentity(ctx, rec.IdentityID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &DeniedError{Actor: p.ID, Reason: DeniedInactive, Workspace: rec.Workspace}
	case err != nil:
		return m.storeError("read the acting key's identity", err)
	}
	p.IdentityLimits = limitsOfIdentity(ident)
	return nil
}

package keygate

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/redact"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// Config configures a [Manager]. Store and Hasher are required; every other
// field has a documented default.
type Config struct {
	// Store keeps the key records. Required.
	Store store.Store
	// Hasher computes the peppered storage hash of tokens. Required: build
	// it with apikey.NewHasher from a pepper kept outside the database.
	//
	// To rotate peppers across several instances, deploy in two steps:
	// first add the new pepper as an older one everywhere, then make it
	// the current one. A Manager re-hashes a key found under an older
	// pepper with its current one, and an instance that does not yet hold
	// the new pepper would then no longer find that key.
	Hasher *apikey.Hasher
	// Prefix is the token prefix, e.g. "acme_live". Default "kg".
	Prefix string
	// Roles resolves role names. Default: permission.NewDefaultRegistry().
	Roles *permission.Registry
	// Auditor receives audit events. Default: NewSlogAuditor(Logger,
	// DefaultFailureLogsPerSecond).
	Auditor Auditor
	// Logger receives operational messages (never secrets). Default:
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time

	// CacheTTL is how long a verified key is served from the in-process
	// cache. Changes made through this Manager take effect at the next
	// request regardless; changes made by other instances are seen within
	// CacheTTL, or sooner with a ChangeFeed. Default 30s; negative disables
	// the cache.
	CacheTTL time.Duration
	// NegativeCacheTTL is how long a well-formed token that matches no key
	// is remembered as unknown. Default 5s; negative disables it. A key
	// imported for such a token (Manager.Import) verifies at once all the
	// same: the importing instance forgets the token, and so do the others
	// that hear of the new key through a ChangeFeed (which makes them
	// forget every unknown token on every change they hear of); others
	// within NegativeCacheTTL.
	NegativeCacheTTL time.Duration
	// CacheSize bounds the number of cached keys. Default 10000. Unknown
	// tokens are cached apart, in at most CacheSize/4 entries, so a flood of
	// made-up tokens never evicts known keys.
	CacheSize int
	// ChangeFeed, when set, tells this Manager about keys changed by other
	// instances, so their cache entries are dropped at once. A feed that
	// also implements [store.ChangePublisher] (as a feed over a message
	// bus does, unlike one the database itself feeds) is told of every
	// change made through this Manager.
	ChangeFeed store.ChangeFeed
	// FeedOutageTTL is how long a verified key is served from the cache
	// while the ChangeFeed is down (its Watch failed, or its Health, when
	// it is a [store.HealthChecker], reports a failure), instead of
	// CacheTTL: a key changed or revoked by another instance meanwhile,
	// whose change this Manager cannot hear of, is still accepted here for
	// at most FeedOutageTTL after the outage is noticed. When the feed
	// goes down, every cached key is dropped; when it is back, the feed
	// says that changes may have been missed and every cached key is
	// dropped again. The cost is a store lookup per key per FeedOutageTTL
	// for as long as the outage lasts. Default 1s; negative keeps CacheTTL
	// (a change made elsewhere during an outage then takes up to CacheTTL).
	FeedOutageTTL time.Duration
	// ExpiryNotice, when positive, makes the Manager send an
	// EventExpiringSoon audit event once for each key that expires within
	// ExpiryNotice, for reminding owners (see Manager.NotifyExpiring).
	// Default zero: no notices.
	ExpiryNotice time.Duration
	// ExpiryNoticeInterval is how often keys are checked for notices.
	// Default ExpiryNotice/24, at least a minute and at most an hour.
	ExpiryNoticeInterval time.Duration
	// MaxLifetime, when positive, is the longest life any key may be
	// given: a new or regenerated key, or a changed expiry, must expire
	// within MaxLifetime of now (so "never" is refused), else
	// ErrInvalidExpiry. Keys created before it was set are not changed.
	// Default zero: no ceiling.
	MaxLifetime time.Duration
	// RateLimiter, when set, enforces keys' rate limits, for example across
	// every instance sharing a Redis; see [RateLimiter]. A [CostLimiter]
	// (the Redis one is) also counts named limits, keys' and identities',
	// with a cost; a plain RateLimiter counts only keys' "default" limits,
	// the others being counted in the process. Default: an exact limiter
	// per process.
	RateLimiter RateLimiter
	// ImportedTokens, when set, lets keys imported from another system
	// with [Manager.Import] by their plaintext verify: it reports whether
	// a token that is not of this Manager's format may be one of them, for
	// example strings.HasPrefix(token, "sk_live_"). Such a token carries
	// no checksum, so nothing but a store lookup tells a real one from
	// garbage: keep the predicate as narrow as the other system's format
	// allows, since every token it accepts that is not cached is looked up
	// (unknown ones are then remembered for NegativeCacheTTL). Tokens it
	// accepts must also pass [apikey.ParseImported]. Default nil: only
	// this Manager's own tokens verify, and Import refuses others.
	ImportedTokens func(token string) bool
	// ImportedSHA256 makes the Manager also look tokens up by their
	// SHA-256, so that keys imported by their SHA-256 digest alone
	// (ImportRequest.SHA256) verify: stored as the digest HMAC'd under the
	// pepper (never the plain digest), each is re-hashed under the current
	// pepper on its first use, after which it is looked up like any
	// other. It costs a store lookup more per pepper, and one for the
	// plain digests earlier versions stored, for a token that matches no
	// key (before the negative cache remembers it), none for a known or
	// cached one. Default false: Import refuses SHA-256 rows (a Manager
	// whose Hasher is apikey.NewSHA256Hasher takes them anyway: its
	// tokens' hashes are their SHA-256).
	ImportedSHA256 bool
	// LastUsedInterval is how often last-used times are written to the
	// store, in one batch: at most one write per key per interval,
	// whatever the request rate. Default 1m; negative disables recording.
	LastUsedInterval time.Duration
	// UsageInterval is how often usage history (the verifications of each
	// key per hour and outcome, see [Manager.Usage]) is written to the
	// store, in one batch of the counts made since the last: no store
	// write per request. A process that crashes loses at most the counts
	// of the last interval, or those kept while the store was failing
	// (Close writes them). Counting costs a cached
	// verification a compare-and-swap. Default 1m; negative disables counting
	// (Usage still reads what the store holds). It needs a store that is a
	// [store.UsageRecorder]; with any other, nothing is counted.
	UsageInterval time.Duration
	// UsageRetention is how long usage history is kept: older hours are
	// purged, by each Manager that counts, at most once an hour. Default
	// 90 days; negative keeps it for ever.
	UsageRetention time.Duration

	// MeterProvider receives the Manager's OpenTelemetry metrics, under the
	// instrumentation scope [ScopeName]: verifications by outcome and
	// their duration, cache hits, misses and size, store call durations
	// and failures, the change feed's state and rate-limit decisions (see
	// the package documentation). Default: otel.GetMeterProvider() at New,
	// which records nothing until the application installs a provider.
	MeterProvider metric.MeterProvider
	// TracerProvider receives the Manager's spans: one per store call and
	// per management operation (Create, Get, List, Update, Regenerate,
	// Revoke, Delete), none for a cached verification. Default:
	// otel.GetTracerProvider() at New.
	TracerProvider trace.TracerProvider
}

// Manager issues, verifies and manages API keys. It is safe for concurrent
// use by multiple goroutines.
type Manager struct {
	store   store.Store
	hasher  *apikey.Hasher
	format  apikey.Format
	roles   *permission.Registry
	auditor Auditor
	logger  *slog.Logger
	now     func() time.Time

	viewKeys   permission.Permission
	manageKeys permission.Permission
	verifyKeys permission.Permission

	cache       *cache // verified keys
	unknown     *cache // well-formed tokens that match no key
	cacheTTL    time.Duration
	negativeTTL time.Duration
	states      states
	grants      grants
	tel         telemetry
	lastUsed    lastUsed
	flightMu    sync.Mutex
	flights     map[digest]*flight
	feed        store.ChangeFeed
	feedState   feedState
	outageTTL   time.Duration // the cache TTL while feedDown
	feedDown    atomic.Bool   // the change feed is down: cache keys for outageTTL
	publisher   store.ChangePublisher
	revoker     store.Revoker
	retirer     store.Retirer          // nil: no tombstones, and Import refuses to run
	useSpender  store.UseSpender       // nil: uses taken one at a time with ConsumeUse, never refilled
	creditSpend store.CreditSpender    // nil: identities' credits cannot be spent (verifications fail closed)
	identities  store.IdentityStore    // nil: no identities (ErrUnsupported)
	idents      idents                 // identities' limits, as cached keys apply them
	exerciseRec store.ExerciseRecorder // nil: exercises are not recorded
	exercises   exercises
	usage       usage
	limiter     RateLimiter
	maxLifetime time.Duration
	imported    func(string) bool // nil: imported plaintext tokens are refused
	keyed       bool              // the Hasher has peppers (not apikey.NewSHA256Hasher)
	digests     bool              // look tokens up by their SHA-256 too (Config.ImportedSHA256, keyed)

	stop      context.CancelFunc
	done      sync.WaitGroup
	closeOnce sync.Once
}

// New returns a Manager for cfg, or an error if cfg is incomplete or
// invalid.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("keygate: Config.Store is required")
	}
	if cfg.Hasher == nil || cfg.Hasher.CurrentID() == "" {
		// The zero Hasher hashes every token to nil: keys would be created
		// that never verify.
		return nil, errors.New("keygate: Config.Hasher is required: build it with apikey.NewHasher or apikey.NewSHA256Hasher")
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = apikey.DefaultPrefix
	}
	format, err := apikey.NewFormat(prefix)
	if err != nil {
		return nil, errorf("keygate: %w", err)
	}
	m := &Manager{
		store:   cfg.Store,
		hasher:  cfg.Hasher,
		format:  format,
		roles:   cfg.Roles,
		auditor: cfg.Auditor,
		logger:  cfg.Logger,
		now:     cfg.Now,
	}
	m.viewKeys = permission.MustParse(PermissionViewKeys)
	m.manageKeys = permission.MustParse(PermissionManageKeys)
	m.verifyKeys = permission.MustParse(PermissionVerifyKeys)
	if m.roles == nil {
		if m.roles, err = permission.NewDefaultRegistry(); err != nil {
			return nil, errorf("keygate: %w", err)
		}
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	if m.auditor == nil {
		m.auditor = NewSlogAuditor(m.logger, DefaultFailureLogsPerSecond)
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.cacheTTL = durationOr(cfg.CacheTTL, 30*time.Second)
	m.negativeTTL = durationOr(cfg.NegativeCacheTTL, 5*time.Second)
	size := cfg.CacheSize
	if size <= 0 {
		size = 10000
	}
	m.cache = newCache(size)
	m.unknown = newCache(max(size/4, cacheShards))
	if err := m.initTelemetry(cfg.MeterProvider, cfg.TracerProvider, cfg.ChangeFeed != nil); err != nil {
		return nil, err
	}
	m.lastUsed.interval = durationOr(cfg.LastUsedInterval, time.Minute)
	m.limiter = cfg.RateLimiter
	m.exerciseRec, _ = cfg.Store.(store.ExerciseRecorder)
	m.usage.rec, _ = cfg.Store.(store.UsageRecorder)
	m.usage.interval = durationOr(cfg.UsageInterval, DefaultUsageInterval)
	m.usage.retention = durationOr(cfg.UsageRetention, DefaultUsageRetention)
	m.revoker, _ = cfg.Store.(store.Revoker) // cfg.Store itself: m.store is wrapped for telemetry
	m.retirer, _ = cfg.Store.(store.Retirer)
	m.useSpender, _ = cfg.Store.(store.UseSpender)
	m.creditSpend, _ = cfg.Store.(store.CreditSpender)
	if cfg.MaxLifetime < 0 || cfg.ExpiryNotice < 0 || cfg.ExpiryNoticeInterval < 0 {
		return nil, errors.New("keygate: Config.MaxLifetime, ExpiryNotice and ExpiryNoticeInterval may not be negative")
	}
	m.maxLifetime = cfg.MaxLifetime
	m.identities, _ = cfg.Store.(store.IdentityStore)
	m.imported = cfg.ImportedTokens
	// A Manager hashing with apikey.NewSHA256Hasher already looks up SHA-256.
	m.keyed = cfg.Hasher.CurrentID() != apikey.SHA256PepperID
	m.digests = cfg.ImportedSHA256 && m.keyed
	// The background work starts last: New returns no error after it.
	var ctx context.Context
	ctx, m.stop = context.WithCancel(context.Background())
	if m.lastUsed.interval > 0 {
		m.done.Go(func() { m.flushLoop(ctx) })
	}
	if m.usage.counting() {
		m.done.Go(func() { m.usageLoop(ctx) })
	}
	if cfg.ExpiryNotice > 0 {
		interval := cfg.ExpiryNoticeInterval
		if interval == 0 {
			interval = min(max(cfg.ExpiryNotice/24, time.Minute), time.Hour)
		}
		m.done.Go(func() { m.noticeLoop(ctx, cfg.ExpiryNotice, interval) })
	}
	if cfg.ChangeFeed != nil {
		m.feed = cfg.ChangeFeed
		m.publisher, _ = cfg.ChangeFeed.(store.ChangePublisher)
		m.feedState.set(errFeedNotStarted)
		m.outageTTL = durationOr(cfg.FeedOutageTTL, time.Second)
		if cfg.FeedOutageTTL < 0 {
			m.outageTTL = m.cacheTTL
		}
		m.done.Go(func() { m.watch(ctx, cfg.ChangeFeed) })
		m.done.Go(func() { m.monitorFeed(ctx) })
	}
	return m, nil
}

// durationOr returns d, or def when d is zero; a negative d stays negative
// (disabled).
func durationOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return max(d, 0)
}

// Roles returns the manager's role registry.
func (m *Manager) Roles() *permission.Registry {
	return m.roles
}

// expiry resolves e for a key given it at now, within the maximum
// lifetime when one is configured.
func (m *Manager) expiry(e Expiry, now time.Time) (time.Time, error) {
	at, err := e.resolve(now)
	if err != nil || m.maxLifetime <= 0 {
		return at, err
	}
	if latest := canonicalTime(now.Add(m.maxLifetime)); at.IsZero() || at.After(latest) {
		return time.Time{}, errorf("%w: %w: keys live at most %v here, so they must expire by %s",
			ErrInvalidRequest, ErrInvalidExpiry, m.maxLifetime, latest.Format(time.RFC3339))
	}
	return at, nil
}

// ListRoles returns the roles keys may be given, from the Manager's
// registry, to a principal that may view keys: one holding apikey:view
// (in its workspace, if bound to one), or a super admin. Anyone else gets
// a [*DeniedError].
func (m *Manager) ListRoles(by Principal) ([]permission.Role, error) {
	if !by.SuperAdmin && !by.Permissions.Allows(m.viewKeys) {
		return nil, &DeniedError{Actor: by.ID, Reason: DeniedPermission, Permission: PermissionViewKeys, Workspace: by.Workspace}
	}
	m.exercised(by.keyID, m.viewKeys, by.Workspace)
	return m.roles.Roles(), nil
}

// clock returns the current time in the canonical stored form.
func (m *Manager) clock() time.Time {
	return canonicalTime(m.now())
}

// The permissions that guard key management, for building roles and
// scopes: viewing keys (Get, List), managing them (Create, Update,
// Regenerate, Revoke, Delete) and verifying other callers' tokens on
// their behalf ([Manager.VerifyFor], the remote verification of a token
// service). Their actions are deliberately not "read" and "write", so that
// wildcard grants such as the viewer's "*:read" and the editor's "*:write"
// do not include them: only "*:*" (owner, admin) or an explicit grant lets
// a principal see, manage or verify keys.
const (
	PermissionViewKeys   = "apikey:view"
	PermissionManageKeys = "apikey:manage"
	PermissionVerifyKeys = "apikey:verify"
)

// DefaultFailureLogsPerSecond is how many failed verifications per second
// the default auditor writes to the log; see [SlogAuditor].
const DefaultFailureLogsPerSecond = 100

// Field limits enforced on every key.
const (
	MaxNameLength        = 128
	MaxDescriptionLength = 1024
	MaxIdentLength       = 128 // owner, workspace
	MaxScopes            = 64
	MaxMetadataEntries   = 32
	MaxMetadataKeyLength = 64
	MaxMetadataValueLen  = 512
	MaxAllowedCIDRs      = 64
)

// Bounds of the numbers and times a key may hold, within what every
// storage engine keeps: MySQL's DATETIME ends with the year 9999.
const (
	// MaxRateRequests is the largest request count of a rate limit.
	MaxRateRequests = 1_000_000_000
	// MaxRateWindow is the longest window of a rate limit.
	MaxRateWindow = 366 * 24 * time.Hour
	// MaxGracePeriod is the longest an old secret may keep working
	// after a regeneration.
	MaxGracePeriod = 90 * 24 * time.Hour
)

// MaxExpiry is the latest expiry a key may have, the last second of the
// year 9999; later ones are [ErrInvalidExpiry] (a date of 9999-12-31 means
// the end of that day, which is already in the year 10000).
var MaxExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// RateLimit allows Requests per Window, with bursts of up to Requests;
// the zero RateLimit means no limit. A key's own rate limit (Limits.Rate)
// is its limit named "default", always applied: its Name is "" or
// DefaultRateLimit and it is not OnDemand. An identity holds named ones,
// shared by its keys ([IdentityLimits]). See [store.RateLimit] for its
// fields.
type RateLimit = store.RateLimit

// Limits restricts how a key may be used.
type Limits struct {
	// Rate limits requests per window, per key: the key's rate limit
	// named "default", always applied.
	Rate RateLimit
	// RateLimits are the key's other named rate limits, each counted per
	// key and name, as an identity's are ([IdentityLimits.RateLimits]):
	// at most MaxRateLimits, names unique and none "default". An
	// on-demand one applies only to the verifications that name it.
	RateLimits []RateLimit
	// Uses, when set, is the number of successful verifications (or, with
	// a cost, units) the key allows, its own credits; each verification
	// takes its cost, atomically in the store.
	Uses *int64
	// Refill, when set, resets Uses to Refill.Amount at each boundary of
	// its period (UTC), as an identity's credits refill; nil never does.
	// It needs Uses.
	Refill *Refill
	// AllowedCIDRs, when not empty, restricts the client addresses a key
	// is accepted from.
	AllowedCIDRs []netip.Prefix
}

// CreateRequest describes a new key.
type CreateRequest struct {
	// Name is required, and unique within the workspace.
	Name        string
	Description string
	// Owner names the user or service the key belongs to.
	Owner string
	// Workspace binds the key to one workspace; required by roles such as
	// editor and viewer.
	Workspace string
	// Role is a role name in the registry, e.g. "viewer".
	Role string
	// Scopes are extra granular permissions such as "billing:write".
	// A key needs a role, scopes, or both.
	Scopes []string
	// Metadata is a small map kept with the key.
	Metadata map[string]string
	// Expiry is required: see ExpireAfterDays, ExpireAt, NeverExpire.
	Expiry Expiry
	// Limits restricts the key's use.
	Limits Limits
	// IdentityID, when not the zero UUID, makes the key one of that
	// identity's, sharing its limits (see [Manager.CreateIdentity]): an
	// identity of the key's workspace that by may manage; else
	// [ErrUnknownIdentity]. It needs a store that is a
	// [store.IdentityStore] ([ErrUnsupported]).
	IdentityID uuid.UUID
}

// Created is the result of creating or regenerating a key: show its Token
// to its user once; it cannot be recovered.
type Created struct {
	// Token is the plaintext key; it redacts itself when printed.
	Token apikey.Token
	// Key is the stored record.
	Key *store.Key
}

// MarshalJSON encodes c with its token redacted and its key without
// hashes: the plaintext token is only ever had through c.Token.Reveal.
func (c Created) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Token apikey.Token
		Key   *store.Key
	}{c.Token, c.Key})
}

// LogValue renders c for log/slog: the key (without hashes) and the token
// redacted.
func (c Created) LogValue() slog.Value {
	v := []slog.Attr{slog.Any("token", c.Token)}
	if c.Key != nil {
		v = append(v, slog.Any("key", *c.Key))
	}
	return slog.GroupValue(v...)
}

// Create issues a key on behalf of by, which must hold apikey:manage in the
// key's workspace and every permission the new key would hold, and may not
// give it a longer life or looser limits than its own (its identity's
// limits counted with its own, on both sides). It returns
// the plaintext token exactly once. Validation errors wrap
// [ErrInvalidRequest]; a name already used in the workspace is
// [ErrDuplicateName]; a store failure is [ErrUnavailable].
func (m *Manager) Create(ctx context.Context, by Principal, req CreateRequest) (_ *Created, err error) {
	ctx, span := m.startSpan(ctx, "Create", uuid.Nil)
	defer endSpan(span, &err)
	by, err = m.actor(ctx, by, true)
	if err != nil {
		return nil, err
	}
	rec, err := m.newRecord(ctx, &by, &req, m.clock())
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, errorf("keygate: new key id: %w", err)
	}
	rec.ID = id
	tok, err := m.format.Generate()
	if err != nil {
		return nil, errorf("keygate: generate token: %w", err)
	}
	rec.Hash, rec.PepperID = m.hasher.Hash(tok)
	rec.Hint = tok.Hint()
	if err := m.store.Create(ctx, rec); err != nil {
		return nil, m.storeError("create key", err)
	}
	m.audit(ctx, EventCreated, rec, by.ID, "")
	return &Created{Token: tok, Key: rec.Clone()}, nil
}

// newRecord validates req and returns the record of a new key made from
// it at now, without id or hash, if by may create it: by must hold
// apikey:manage in its workspace and every permission the key would hold,
// and may not give it a longer life or looser limits than its own. The
// key's identity, if any, is read for the limits it adds.
func (m *Manager) newRecord(ctx context.Context, by *Principal, req *CreateRequest, now time.Time) (*store.Key, error) {
	rec := &store.Key{
		Name:        req.Name,
		Description: req.Description,
		Owner:       req.Owner,
		Workspace:   req.Workspace,
		Metadata:    maps.Clone(req.Metadata),
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if err := m.applyGrant(rec, req.Role, req.Scopes); err != nil {
		return nil, err
	}
	if err := applyLimits(rec, req.Limits, now); err != nil {
		return nil, err
	}
	if err := validateFields(rec); err != nil {
		return nil, err
	}
	expires, err := m.expiry(req.Expiry, now)
	if err != nil {
		return nil, err
	}
	rec.ExpiresAt = expires
	granted, err := m.principalOf(rec)
	if err != nil {
		return nil, err
	}
	if d := firstDenial(by.deny(m.manageKeys, rec.Workspace), by.coverage(&granted)); d != nil {
		return nil, d
	}
	identity, err := m.linkIdentity(ctx, by, rec, req.IdentityID)
	if err != nil {
		return nil, err
	}
	if d := by.bounds(nil, rec, identity, true); d != nil {
		return nil, d
	}
	m.exercised(by.keyID, m.manageKeys, rec.Workspace)
	return rec, nil
}

// Get returns the key with the given id, if by holds apikey:view in its
// workspace. Uses whose refill is due are shown refilled, as the next
// verification finds them (it writes the refill); so are they by
// [Manager.List], and an identity's credits by [Manager.GetIdentity] and
// [Manager.ListIdentities].
func (m *Manager) Get(ctx context.Context, by Principal, id uuid.UUID) (_ *store.Key, err error) {
	ctx, span := m.startSpan(ctx, "Get", id)
	defer endSpan(span, &err)
	by, err = m.actor(ctx, by, false)
	if err != nil {
		return nil, err
	}
	rec, err := m.lookup(ctx, &by, id, "get key")
	if err != nil {
		return nil, err
	}
	if d := by.deny(m.viewKeys, rec.Workspace); d != nil {
		d.KeyID = id
		return nil, d
	}
	m.exercised(by.keyID, m.viewKeys, rec.Workspace)
	keyAsDue(rec, m.clock())
	return rec, nil
}

// Refresh returns by as it may act now: a principal taken from a verified
// key ([Key.Principal]) is checked against the key's current record and
// rebuilt from it, as every management call does (see Key.Principal): a
// [*DeniedError] with reason [DeniedInactive] once the key is revoked,
// disabled, deleted, expired or its secret replaced, [ErrUnavailable] when
// the store fails. Any other principal is returned as it is. A session
// that keeps a principal instead of a token (package console's) calls it
// on every request; it makes one store read and takes no use of the key.
func (m *Manager) Refresh(ctx context.Context, by Principal) (Principal, error) {
	return m.actor(ctx, by, false)
}

// actor returns by as it may act now. A principal taken from a verified
// key is checked against the key's current record and rebuilt from it
// (see Key.Principal): refused once the key is revoked, deleted, expired
// or its secret replaced, and, for a change, when it acts with a previous
// secret. Other principals are returned as they are.
func (m *Manager) actor(ctx context.Context, by Principal, change bool) (Principal, error) {
	if by.keyID == uuid.Nil {
		return by, nil
	}
	inactive := &DeniedError{Actor: by.ID, Reason: DeniedInactive, Workspace: by.Workspace}
	rec, err := m.store.Get(ctx, by.keyID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, inactive
	case err != nil:
		return Principal{}, m.storeError("check the acting key", err)
	}
	now := m.clock()
	old := false
	switch {
	case !rec.RevokedAt.IsZero(), !rec.DisabledAt.IsZero(), !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt):
		return Principal{}, inactive
	case apikey.Equal(rec.Hash, by.keyHash):
	case apikey.Equal(rec.PrevHash, by.keyHash) && now.Before(rec.PrevExpiresAt):
		old = true
	default:
		return Principal{}, inactive // its secret was replaced
	}
	p, err := m.principalOf(rec)
	if err != nil {
		return Principal{}, inactive
	}
	if err := m.withIdentityLimits(ctx, &p, rec); err != nil {
		return Principal{}, err
	}
	p.keyID, p.keyHash, p.oldSecret = rec.ID, by.keyHash, old
	if old {
		if change {
			return Principal{}, &DeniedError{Actor: by.ID, Reason: DeniedOldSecret, Workspace: rec.Workspace}
		}
		if p.ExpiresAt.IsZero() || rec.PrevExpiresAt.Before(p.ExpiresAt) {
			p.ExpiresAt = rec.PrevExpiresAt
		}
	}
	return p, nil
}

// lookup reads key id for by. A key that by may neither view nor manage
// (it lacks apikey:view and apikey:manage in the key's workspace) is
// answered [ErrNotFound], exactly as a key that does not exist, so that
// nobody learns of keys outside their reach (no existence oracle).
func (m *Manager) lookup(ctx context.Context, by *Principal, id uuid.UUID, op string) (*store.Key, error) {
	rec, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, m.storeError(op, err)
	}
	if !by.Allows(m.viewKeys, rec.Workspace) && !by.Allows(m.manageKeys, rec.Workspace) {
		return nil, errorf("keygate: %s: %w", op, ErrNotFound)
	}
	return rec, nil
}

// ListRequest filters and pages [Manager.List]; see [store.ListOptions].
type ListRequest = store.ListOptions

// List returns one page of keys. A principal bound to a workspace lists
// only that workspace (asking for another is [ErrForbidden]); others need
// apikey:view outside any workspace to list across workspaces.
func (m *Manager) List(ctx context.Context, by Principal, req ListRequest) (_ *store.Page, err error) {
	ctx, span := m.startSpan(ctx, "List", uuid.Nil)
	defer endSpan(span, &err)
	by, err = m.actor(ctx, by, false)
	if err != nil {
		return nil, err
	}
	if err := validFilter("workspace", req.Workspace); err != nil {
		return nil, err
	}
	if err := validFilter("owner", req.Owner); err != nil {
		return nil, err
	}
	if req.Workspace, err = m.listScope(&by, req.Workspace); err != nil {
		return nil, err
	}
	page, err := m.store.List(ctx, req)
	if err != nil {
		return nil, m.storeError("list keys", err)
	}
	now := m.clock()
	for _, k := range page.Keys {
		keyAsDue(k, now)
	}
	return page, nil
}

// listScope returns the workspace by may list (keys or identities) when
// it asks for workspace ("" for every one): a principal bound to a
// workspace lists only its own (asking for another is a [*DeniedError]
// with DeniedWorkspace); any lister needs apikey:view there, or outside
// any workspace to list across them.
func (m *Manager) listScope(by *Principal, workspace string) (string, error) {
	if by.Workspace != "" && !by.SuperAdmin {
		if workspace != "" && workspace != by.Workspace {
			return "", &DeniedError{Actor: by.ID, Reason: DeniedWorkspace, Workspace: workspace}
		}
		workspace = by.Workspace
	}
	if d := by.deny(m.viewKeys, workspace); d != nil {
		return "", d
	}
	m.exercised(by.keyID, m.viewKeys, workspace)
	return workspace, nil
}

// UpdateRequest changes a key; nil fields are left as they are. A change of
// permissions or expiry applies from the next verification.
type UpdateRequest struct {
	// Version, when not zero, must equal the key's current version, or the
	// update fails with ErrConflict (optimistic concurrency for callers
	// that showed the key to a user). When zero, the update is retried on
	// concurrent changes.
	Version int64
	// Name, Description, Role, Scopes and Metadata replace the key's.
	Name        *string
	Description *string
	Role        *string
	Scopes      *[]string
	Metadata    *map[string]string
	// Expiry sets a new expiry, counted from now.
	Expiry *Expiry
	// Rate replaces the rate limit; a zero RateLimit removes it.
	Rate *RateLimit
	// RateLimits replaces the key's other named rate limits
	// (Limits.RateLimits); an empty list removes them all.
	RateLimits *[]RateLimit
	// Uses sets the number of uses left; a negative value removes the
	// usage limit, and its refill with it (Refill must then be nil).
	// Left nil, the balance stays what verifications left of it.
	Uses *int64
	// Refill replaces the refill of the uses (Limits.Refill); the zero
	// Refill removes it. The key must have uses, or get them with Uses.
	Refill *Refill
	// AllowedCIDRs replaces the IP allow-list; an empty list removes it.
	AllowedCIDRs *[]netip.Prefix
	// IdentityID moves the key to that identity, as in
	// [CreateRequest.IdentityID]; the zero UUID takes it out of its
	// identity.
	IdentityID *uuid.UUID
}

// Update changes a key on behalf of by, which must hold apikey:manage in the
// key's workspace and cover the key both before and after the change. A
// request that changes no field (every one nil) writes nothing: it returns
// the key as it is, with its version, and sends no audit event, once by is
// found to be allowed to change it (and Version, when set, matches).
func (m *Manager) Update(ctx context.Context, by Principal, id uuid.UUID, req UpdateRequest) (_ *store.Key, err error) {
	ctx, span := m.startSpan(ctx, "Update", id)
	defer endSpan(span, &err)
	regrant := req.Role != nil || req.Scopes != nil
	empty := req == UpdateRequest{Version: req.Version}
	return m.mutate(ctx, by, id, req.Version, EventUpdated, "", regrant, func(rec *store.Key, now time.Time) error {
		if empty {
			return errUnchanged
		}
		if req.Name != nil {
			rec.Name = *req.Name
		}
		if req.Description != nil {
			rec.Description = *req.Description
		}
		if req.Metadata != nil {
			rec.Metadata = maps.Clone(*req.Metadata)
		}
		if req.Role != nil || req.Scopes != nil {
			role, scopes := rec.Role, rec.Scopes
			if req.Role != nil {
				role = *req.Role
			}
			if req.Scopes != nil {
				scopes = *req.Scopes
			}
			if err := m.applyGrant(rec, role, scopes); err != nil {
				return err
			}
		}
		if req.Rate != nil {
			if err := setRate(rec, *req.Rate); err != nil {
				return err
			}
		}
		if req.RateLimits != nil {
			if err := setRateLimits(rec, *req.RateLimits); err != nil {
				return err
			}
		}
		if req.Uses != nil || req.Refill != nil {
			if err := updateUses(rec, req.Uses, req.Refill, now); err != nil {
				return err
			}
		}
		if req.AllowedCIDRs != nil {
			if err := setAllowedCIDRs(rec, *req.AllowedCIDRs); err != nil {
				return err
			}
		}
		if req.Expiry != nil {
			expires, err := m.expiry(*req.Expiry, now)
			if err != nil {
				return err
			}
			rec.ExpiresAt = expires
		}
		if req.IdentityID != nil {
			rec.IdentityID = *req.IdentityID
		}
		return validateFields(rec)
	})
}

// RegenerateRequest sets the expiry of a regenerated key and how long its
// old secret keeps working.
type RegenerateRequest struct {
	// Expiry is required, as for a new key.
	Expiry Expiry
	// GracePeriod keeps the old secret working for this long; zero stops
	// it at once.
	GracePeriod time.Duration
}

// Regenerate gives a key a new secret and expiry, keeping its id, name and
// permissions. The old secret stops working at once, or after
// req.GracePeriod. A revoked key cannot be regenerated ([ErrRevoked]).
//
// The secret it replaces for good (the old one without a grace period,
// or the previous one of an earlier grace period) is retired: with a
// store that implements [store.Retirer] its hash is recorded first, and
// [Manager.Import] never brings it back. When that record cannot be
// written, Regenerate changes nothing and fails with [ErrUnavailable].
func (m *Manager) Regenerate(ctx context.Context, by Principal, id uuid.UUID, req RegenerateRequest) (_ *Created, err error) {
	ctx, span := m.startSpan(ctx, "Regenerate", id)
	defer endSpan(span, &err)
	if req.GracePeriod < 0 || req.GracePeriod > MaxGracePeriod {
		return nil, errorf("%w: %w: grace period must be from 0 to %v", ErrInvalidRequest, ErrInvalidField, MaxGracePeriod)
	}
	tok, err := m.format.Generate()
	if err != nil {
		return nil, errorf("keygate: generate token: %w", err)
	}
	hash, pepperID := m.hasher.Hash(tok)
	rec, err := m.mutate(ctx, by, id, 0, EventRegenerated, "", true, func(rec *store.Key, now time.Time) error {
		if !rec.RevokedAt.IsZero() {
			return errorf("%w: cannot regenerate key %s", ErrRevoked, rec.ID)
		}
		expires, err := m.expiry(req.Expiry, now)
		if err != nil {
			return err
		}
		rec.PrevHash, rec.PrevPepperID, rec.PrevExpiresAt = nil, "", time.Time{}
		// The old secret keeps working for the grace period, but never
		// beyond the new expiry nor its own: an expired secret stays dead.
		graceEnd := canonicalTime(now.Add(req.GracePeriod))
		for _, end := range []time.Time{expires, rec.ExpiresAt} {
			if !end.IsZero() && end.Before(graceEnd) {
				graceEnd = end
			}
		}
		if req.GracePeriod > 0 && graceEnd.After(now) {
			rec.PrevHash, rec.PrevPepperID, rec.PrevExpiresAt = rec.Hash, rec.PepperID, graceEnd
		}
		rec.Hash, rec.PepperID, rec.Hint = hash, pepperID, tok.Hint()
		rec.ExpiresAt = expires
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Created{Token: tok, Key: rec}, nil
}

// Revoke stops a key from working, at once, keeping its record for audit.
// Revoking a revoked key changes nothing and is not an error. The old
// secret of a grace period goes with it and is retired (see
// [Manager.Regenerate]); should that record fail, the revocation goes
// ahead all the same, and the failure is logged. With a store
// that implements [store.Revoker] (every store of this module does), the
// revocation is one atomic write that no concurrent use of the key can
// make fail; by's rights are checked on the key as it was read just
// before.
func (m *Manager) Revoke(ctx context.Context, by Principal, id uuid.UUID) (_ *store.Key, err error) {
	ctx, span := m.startSpan(ctx, "Revoke", id)
	defer endSpan(span, &err)
	return m.revoke(ctx, by, id, "")
}

// revoke is Revoke, with the reason its audit event gives ("" for none).
func (m *Manager) revoke(ctx context.Context, by Principal, id uuid.UUID, reason string) (_ *store.Key, err error) {
	if m.revoker == nil {
		return m.revokeGuarded(ctx, by, id, reason)
	}
	by, err = m.actor(ctx, by, true)
	if err != nil {
		return nil, err
	}
	rec, err := m.lookup(ctx, &by, id, string(EventRevoked))
	if err != nil {
		return nil, err
	}
	if err := m.authorizeChange(&by, rec); err != nil {
		return nil, err
	}
	if !rec.RevokedAt.IsZero() {
		return rec, nil
	}
	// The previous secret goes (and the current one, which the record
	// keeps, is retired too: a regeneration racing this revocation may
	// have just made it the previous secret that the revocation clears).
	m.retireOrLog(ctx, rec, nil)
	if is, ok := m.store.(*instrumentedStore); ok {
		rec, err = is.revoke(ctx, m.revoker, id, m.clock())
	} else {
		rec, err = m.revoker.Revoke(ctx, id, m.clock())
	}
	if err != nil {
		return nil, m.storeError(string(EventRevoked), err)
	}
	m.invalidate(ctx, rec)
	m.audit(ctx, EventRevoked, rec, by.ID, reason)
	return rec, nil
}

// Disable stops a key from working until [Manager.Enable] lifts it: a
// reversible stop, unlike Revoke. Verification answers [ErrDisabled] from
// the next request (on other instances within their cache TTL or change
// feed). Disabling a disabled key changes nothing. by needs what Revoke
// needs.
func (m *Manager) Disable(ctx context.Context, by Principal, id uuid.UUID) (_ *store.Key, err error) {
	ctx, span := m.startSpan(ctx, "Disable", id)
	defer endSpan(span, &err)
	return m.mutate(ctx, by, id, 0, EventDisabled, "", false, func(rec *store.Key, now time.Time) error {
		if !rec.DisabledAt.IsZero() {
			return errUnchanged
		}
		rec.DisabledAt = now
		return nil
	})
}

// Enable lets a disabled key work again, from the next request. Enabling
// an enabled key changes nothing; a revoked key stays revoked.
func (m *Manager) Enable(ctx context.Context, by Principal, id uuid.UUID) (_ *store.Key, err error) {
	ctx, span := m.startSpan(ctx, "Enable", id)
	defer endSpan(span, &err)
	return m.mutate(ctx, by, id, 0, EventEnabled, "", false, func(rec *store.Key, _ time.Time) error {
		if rec.DisabledAt.IsZero() {
			return errUnchanged
		}
		rec.DisabledAt = time.Time{}
		return nil
	})
}

// revokeGuarded revokes key id with a read-modify-write guarded by its
// version, for stores without store.Revoker; reason is its audit event's.
func (m *Manager) revokeGuarded(ctx context.Context, by Principal, id uuid.UUID, reason string) (*store.Key, error) {
	return m.mutate(ctx, by, id, 0, EventRevoked, reason, false, func(rec *store.Key, now time.Time) error {
		if !rec.RevokedAt.IsZero() {
			return errUnchanged
		}
		rec.RevokedAt = now
		rec.PrevHash, rec.PrevPepperID, rec.PrevExpiresAt = nil, "", time.Time{}
		return nil
	})
}

// Delete removes a key and its record. Applications and scripts using it
// stop working at once. Its secrets are retired first (see
// [Manager.Regenerate]); when that record cannot be written, Delete
// changes nothing and fails with [ErrUnavailable].
func (m *Manager) Delete(ctx context.Context, by Principal, id uuid.UUID) (err error) {
	ctx, span := m.startSpan(ctx, "Delete", id)
	defer endSpan(span, &err)
	by, err = m.actor(ctx, by, true)
	if err != nil {
		return err
	}
	rec, err := m.lookup(ctx, &by, id, "delete key")
	if err != nil {
		return err
	}
	if err := m.authorizeChange(&by, rec); err != nil {
		return err
	}
	if err := m.retire(ctx, rec, nil); err != nil {
		return err
	}
	if err := m.store.Delete(ctx, id); err != nil {
		return m.storeError("delete key", err)
	}
	m.invalidate(ctx, rec)
	m.states.drop(id)
	m.usage.forget(usageSubject{kindKey, id})
	m.audit(ctx, EventDeleted, rec, by.ID, "")
	return nil
}

// errUnchanged tells mutate that fn left the key as it was.
var errUnchanged = errors.New("keygate: unchanged")

// maxUpdateAttempts bounds the retries of a read-modify-write that keeps
// meeting concurrent changes.
const maxUpdateAttempts = 8

// mutate reads key id, checks that by may change it, applies fn, checks that
// by covers the result (permissions, and the lifetime and limits that
// changed, or all of them with full; see Principal.bounds), and stores it
// guarded by version, retrying on a concurrent change unless the caller
// gave an expected version. The change is audited as event, with reason
// ("" for none).
func (m *Manager) mutate(ctx context.Context, by Principal, id uuid.UUID, version int64, event EventType, reason string, full bool, fn func(rec *store.Key, now time.Time) error) (*store.Key, error) {
	by, err := m.actor(ctx, by, true)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		rec, err := m.lookup(ctx, &by, id, string(event))
		if err != nil {
			return nil, err
		}
		// Authorize before comparing versions, so that a caller without
		// rights learns nothing of the key.
		if err := m.authorizeChange(&by, rec); err != nil {
			return nil, err
		}
		if version != 0 && rec.Version != version {
			return nil, errorf("%w: key %s is at version %d, not %d", ErrConflict, id, rec.Version, version)
		}
		now := m.clock()
		before := rec.Clone()
		if err := fn(rec, now); err != nil {
			if errors.Is(err, errUnchanged) {
				return rec, nil
			}
			return nil, err
		}
		if err := m.authorizeChange(&by, rec); err != nil {
			return nil, err
		}
		if err := m.keyBounds(ctx, &by, before, rec, full); err != nil {
			return nil, err
		}
		if m.retirer != nil {
			// Tombstones of the secrets this change removes, first. A
			// change that only takes secrets away (a revocation, a leaked
			// grace period ended) goes ahead without them.
			if apikey.Equal(rec.Hash, before.Hash) {
				m.retireOrLog(ctx, before, rec)
			} else if err := m.retire(ctx, before, rec); err != nil {
				return nil, err
			}
		}
		rec.UpdatedAt = now
		err = m.store.Update(ctx, rec)
		if errors.Is(err, store.ErrConflict) && version == 0 && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return nil, m.storeError(string(event), err)
		}
		m.invalidate(ctx, rec)
		m.audit(ctx, event, rec, by.ID, reason)
		return rec.Clone(), nil
	}
}

// authorizeChange checks that by may change rec: apikey:manage in its
// workspace and every permission rec holds.
func (m *Manager) authorizeChange(by *Principal, rec *store.Key) error {
	target, err := m.principalOf(rec)
	if err != nil && !by.SuperAdmin {
		// A key whose role no longer resolves can be changed (fixed,
		// revoked, deleted) only by a super admin.
		return &DeniedError{Actor: by.ID, KeyID: rec.ID, Reason: DeniedUnresolved, Workspace: rec.Workspace}
	}
	d := by.deny(m.manageKeys, rec.Workspace)
	if d == nil {
		d = by.coverage(&target)
	}
	if d != nil {
		d.KeyID = rec.ID
		return d
	}
	m.exercised(by.keyID, m.manageKeys, rec.Workspace)
	return nil
}

// firstDenial returns the first non-nil refusal of ds, as an error, or nil.
// (Returning a nil *DeniedError as an error would make a non-nil error.)
func firstDenial(ds ...*DeniedError) error {
	for _, d := range ds {
		if d != nil {
			return d
		}
	}
	return nil
}

// applyGrant validates role and scopes for rec's workspace and stores them
// in canonical form.
func (m *Manager) applyGrant(rec *store.Key, roleName string, scopes []string) error {
	if roleName == "" && len(scopes) == 0 {
		return errorf("%w: %w", ErrInvalidRequest, ErrNoPermissions)
	}
	rec.Role = ""
	if roleName != "" {
		role, err := m.roles.Role(roleName)
		if err != nil {
			return errorf("%w: %w: %s", ErrInvalidRequest, ErrUnknownRole, redact.Quote(roleName))
		}
		if role.RequiresWorkspace && rec.Workspace == "" {
			return errorf("%w: %w: role %q", ErrInvalidRequest, ErrWorkspaceRequired, role.Name)
		}
		if role.SuperAdmin && rec.Workspace != "" {
			// A super admin is allowed everything everywhere: binding it to a
			// workspace would only mislead.
			return errorf("%w: %w: super-admin role %q cannot be bound to a workspace", ErrInvalidRequest, ErrInvalidField, role.Name)
		}
		rec.Role = role.Name
	}
	if len(scopes) > MaxScopes {
		return errorf("%w: %w: more than %d scopes", ErrInvalidRequest, ErrInvalidField, MaxScopes)
	}
	set, err := permission.ParseSet(scopes...)
	if err != nil {
		return errorf("%w: %w: %w", ErrInvalidRequest, ErrInvalidScope, err)
	}
	rec.Scopes = set.Strings()
	return nil
}

// principalOf resolves what rec grants: its role's permissions and its
// scopes, in its workspace. It fails closed when the role or a scope no
// longer resolves.
func (m *Manager) principalOf(rec *store.Key) (Principal, error) {
	p := Principal{ID: keyActor(rec.ID), Workspace: rec.Workspace, ExpiresAt: rec.ExpiresAt, Limits: limitsOf(rec)}
	set, err := permission.ParseSet(rec.Scopes...)
	if err != nil {
		return Principal{}, errorf("%w: key %s has an invalid scope: %w", ErrInvalid, rec.ID, err)
	}
	if rec.Role != "" {
		role, err := m.roles.Role(rec.Role)
		if err != nil {
			return Principal{}, errorf("%w: key %s has an unknown role %q", ErrInvalid, rec.ID, rec.Role)
		}
		set = set.Union(role.Permissions)
		p.SuperAdmin = role.SuperAdmin
	}
	p.Permissions = set
	return p, nil
}

// applyLimits validates l and stores it in rec, a new key, at now.
func applyLimits(rec *store.Key, l Limits, now time.Time) error {
	if err := setRate(rec, l.Rate); err != nil {
		return err
	}
	if err := setRateLimits(rec, l.RateLimits); err != nil {
		return err
	}
	if l.Refill != nil && l.Uses == nil {
		return errorf("%w: %w: a refill refills uses: set Uses too", ErrInvalidRequest, ErrInvalidField)
	}
	if err := setUses(rec, l.Uses, now); err != nil {
		return err
	}
	if err := setRefill(rec, l.Refill); err != nil {
		return err
	}
	return setAllowedCIDRs(rec, l.AllowedCIDRs)
}

// setRateLimits validates and stores a key's named rate limits besides its
// "default"; none removes them.
func setRateLimits(rec *store.Key, rls []RateLimit) error {
	if err := validRateLimits(rls); err != nil {
		return err
	}
	if slices.ContainsFunc(rls, func(r RateLimit) bool { return r.Name == DefaultRateLimit }) {
		return errorf("%w: %w: a key's rate limit named %q is its own rate limit (Limits.Rate)", ErrInvalidRequest, ErrInvalidField, DefaultRateLimit)
	}
	rec.RateLimits = nil
	if len(rls) > 0 {
		rec.RateLimits = slices.Clone(rls)
	}
	return nil
}

// updateUses applies an update of a key's uses and their refill at now:
// uses, when set, sets the balance (negative: removes it and its refill);
// refill, when set, replaces the refill (the zero Refill removes it).
func updateUses(rec *store.Key, uses *int64, refill *Refill, now time.Time) error {
	if uses != nil && *uses < 0 {
		if refill != nil && *refill != (Refill{}) {
			return errorf("%w: %w: uses being removed take no refill", ErrInvalidRequest, ErrInvalidField)
		}
		rec.RemainingUses, rec.Refill, rec.RefilledAt = nil, nil, time.Time{}
		return nil
	}
	if uses != nil {
		if err := setUses(rec, uses, now); err != nil {
			return err
		}
	}
	if refill != nil {
		r := refill
		if *r == (Refill{}) {
			r = nil
		}
		if r != nil && rec.RemainingUses == nil {
			return errorf("%w: %w: a refill refills uses: the key has none, set them too", ErrInvalidRequest, ErrInvalidField)
		}
		if err := setRefill(rec, r); err != nil {
			return err
		}
		if r != nil && rec.RefilledAt.IsZero() {
			// Uses set before refills existed: count the first period from
			// now, not from the zero time (which would refill at once).
			rec.RefilledAt = canonicalTime(now)
		}
	}
	return nil
}

// setRefill validates and stores the refill of a key's uses; nil removes
// it.
func setRefill(rec *store.Key, r *Refill) error {
	if err := validRefill(r); err != nil {
		return err
	}
	rec.Refill = nil
	if r != nil {
		c := *r
		rec.Refill = &c
	}
	return nil
}

// setRate validates and stores a key's own rate limit, its "default"; the
// zero RateLimit removes it.
func setRate(rec *store.Key, r RateLimit) error {
	if (r.Name != "" && r.Name != DefaultRateLimit) || r.OnDemand {
		return errorf("%w: %w: a key's own rate limit is its %q limit, always applied", ErrInvalidRequest, ErrInvalidField, DefaultRateLimit)
	}
	if r.Requests < 0 || (r.Requests > 0 && r.Window <= 0) {
		return errorf("%w: %w: rate limit needs a positive request count and window", ErrInvalidRequest, ErrInvalidField)
	}
	if r.Requests > MaxRateRequests || r.Window > MaxRateWindow || (r.Requests > 0 && int64(r.Window) < int64(r.Requests)) {
		return errorf("%w: %w: rate limit must be at most %d requests per window of at most %v, and at most one request per nanosecond",
			ErrInvalidRequest, ErrInvalidField, MaxRateRequests, MaxRateWindow)
	}
	rec.RateLimit, rec.RateWindow = r.Requests, r.Window
	if r.Requests == 0 {
		rec.RateWindow = 0
	}
	return nil
}

// setUses validates and stores a usage limit, as set at now (when the
// next refill counts from); nil removes it.
func setUses(rec *store.Key, uses *int64, now time.Time) error {
	rec.RemainingUses, rec.RefilledAt = nil, time.Time{}
	if uses != nil {
		if *uses < 0 {
			return errorf("%w: %w: usage limit is negative", ErrInvalidRequest, ErrInvalidField)
		}
		n := *uses
		rec.RemainingUses, rec.RefilledAt = &n, canonicalTime(now)
	}
	return nil
}

// setAllowedCIDRs validates and stores an IP allow-list, masked.
func setAllowedCIDRs(rec *store.Key, cidrs []netip.Prefix) error {
	if len(cidrs) > MaxAllowedCIDRs {
		return errorf("%w: %w: more than %d allowed CIDRs", ErrInvalidRequest, ErrInvalidField, MaxAllowedCIDRs)
	}
	rec.AllowedCIDRs = nil
	for _, p := range cidrs {
		if !p.IsValid() {
			return errorf("%w: %w: invalid CIDR", ErrInvalidRequest, ErrInvalidField)
		}
		rec.AllowedCIDRs = append(rec.AllowedCIDRs, p.Masked())
	}
	return nil
}

// validateFields checks the free-text fields of rec. Names, owners and
// workspaces are identifiers: no leading or trailing space and no control
// characters, so that no two of them differ only in ways a database
// collation may ignore (MySQL compares 'tiger ' equal to 'tiger').
func validateFields(rec *store.Key) error {
	bad := func(format string, args ...any) error {
		return errorf("%w: %w: "+format, append([]any{ErrInvalidRequest, ErrInvalidField}, args...)...)
	}
	if rec.Name == "" {
		return errorf("%w: %w", ErrInvalidRequest, ErrNameRequired)
	}
	for _, f := range []struct {
		what, value string
		max         int
	}{
		{"name", rec.Name, MaxNameLength},
		{"owner", rec.Owner, MaxIdentLength},
		{"workspace", rec.Workspace, MaxIdentLength},
	} {
		if len(f.value) > f.max {
			return bad("%s longer than %d bytes", f.what, f.max)
		}
		if !cleanIdent(f.value) {
			return bad("%s has surrounding spaces, control characters or invalid UTF-8", f.what)
		}
	}
	switch {
	case len(rec.Description) > MaxDescriptionLength:
		return bad("description longer than %d bytes", MaxDescriptionLength)
	case !cleanText(rec.Description):
		return bad("description has control characters (other than tab and newline) or invalid UTF-8")
	}
	return validMetadata(rec.Metadata)
}

// validMetadata checks the metadata of a key or an identity.
func validMetadata(md map[string]string) error {
	bad := func(format string, args ...any) error {
		return errorf("%w: %w: "+format, append([]any{ErrInvalidRequest, ErrInvalidField}, args...)...)
	}
	if len(md) > MaxMetadataEntries {
		return bad("more than %d metadata entries", MaxMetadataEntries)
	}
	for k, v := range md {
		if k == "" || len(k) > MaxMetadataKeyLength || len(v) > MaxMetadataValueLen {
			return bad("metadata keys must be 1 to %d bytes and values at most %d", MaxMetadataKeyLength, MaxMetadataValueLen)
		}
		if !cleanIdent(k) || !cleanText(v) {
			return bad("metadata keys must have no surrounding spaces, control characters or invalid UTF-8, and values no control characters (other than tab and newline) or invalid UTF-8")
		}
	}
	return nil
}

// cleanText reports whether s is valid UTF-8 without control characters
// other than tab, newline and carriage return: free text that every
// engine stores as it is (PostgreSQL refuses NUL in text).
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
	})
}

// validFilter checks a workspace or owner given as a filter: "" or an
// identifier as keys hold them.
func validFilter(what, value string) error {
	if len(value) > MaxIdentLength || !cleanIdent(value) {
		return errorf("%w: %w: %s filter is longer than %d bytes or has surrounding spaces, control characters or invalid UTF-8",
			ErrInvalidRequest, ErrInvalidField, what, MaxIdentLength)
	}
	return nil
}

// cleanIdent reports whether s is valid UTF-8 without control characters
// or leading or trailing white space.
func cleanIdent(s string) bool {
	if !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// storeError maps a store error to the manager's errors.
func (m *Manager) storeError(op string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf("keygate: %s: %w", op, ErrNotFound)
	case errors.Is(err, store.ErrDuplicate):
		return errorf("keygate: %s: %w: %w", op, ErrInvalidRequest, ErrDuplicateName)
	case errors.Is(err, store.ErrConflict):
		return errorf("keygate: %s: %w", op, ErrConflict)
	case errors.Is(err, store.ErrUnknownIdentity):
		// The key's identity was deleted since it was read.
		return errorf("keygate: %s: %w: %w", op, ErrInvalidRequest, ErrUnknownIdentity)
	}
	return errorf("keygate: %s: %w: %w", op, ErrUnavailable, err)
}

// audit sends an event about rec to the auditor.
func (m *Manager) audit(ctx context.Context, t EventType, rec *store.Key, actor, reason string) {
	e := Event{Type: t, Time: m.now(), Actor: actor, Reason: reason}
	if rec != nil {
		e.KeyID, e.Hint, e.Workspace = rec.ID, rec.Hint, rec.Workspace
	}
	m.auditor.Audit(ctx, e)
}

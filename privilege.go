package keygate

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// ErrUnsupported means the store lacks an optional capability the call
// needs, such as store.ExerciseRecorder for least-privilege reports.
var ErrUnsupported = errors.New("keygate: not supported by the store")

// exerciseRefresh is how long a recorded exercise stands before the next
// one of the same key, permission and workspace is recorded again: the
// reports count in days, so an hour is fine enough.
const exerciseRefresh = time.Hour

// exercises batches the permissions keys were let through for, for the
// store's ExerciseRecorder, like last-used times.
type exercises struct {
	keys sync.Map // uuid.UUID → *exerciseSet

	mu      sync.Mutex
	pending []pendingExercise
}

// exerciseSet holds what one key exercised, copy-on-write: readers load
// the list and never lock.
type exerciseSet struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*exerciseEntry]
}

// exerciseEntry is one permission and workspace a key exercised.
type exerciseEntry struct {
	perm permission.Permission
	ws   string
	// queued is when it was last queued (Unix nanoseconds), 0 when it may
	// be queued again.
	queued atomic.Int64
}

type pendingExercise struct {
	entry *exerciseEntry
	rec   store.Exercise
}

// Exercised records that k was let through for p in workspace, for
// least-privilege reports ([Manager.LeastPrivilege]). Package middleware
// calls it when Require lets a request through; the Manager calls it
// itself when a key manages or verifies keys. Each key, permission and
// workspace is written to the store at most once an hour, in the batches
// of [Manager.Flush]; the call is then a map lookup and a few atomic
// loads, allocates nothing, and is meant for every request. It does
// nothing when the store is no store.ExerciseRecorder or last-used
// recording is off (Config.LastUsedInterval negative). It is safe for
// concurrent use.
func (m *Manager) Exercised(k *Key, p permission.Permission, workspace string) {
	if k != nil {
		m.exercised(k.ID, p, workspace)
	}
}

// exercised records an exercise of key id.
func (m *Manager) exercised(id uuid.UUID, p permission.Permission, workspace string) {
	if m.exerciseRec == nil || m.lastUsed.interval <= 0 || id == uuid.Nil {
		return
	}
	v, ok := m.exercises.keys.Load(id)
	if !ok {
		v, _ = m.exercises.keys.LoadOrStore(id, &exerciseSet{})
	}
	set := v.(*exerciseSet)
	if e := set.find(p, workspace); e != nil {
		if e.queued.Load() == 0 {
			m.queueExercise(id, e)
		}
		return
	}
	set.mu.Lock()
	e := set.find(p, workspace)
	if e == nil {
		e = &exerciseEntry{perm: p, ws: workspace}
		var list []*exerciseEntry
		if cur := set.list.Load(); cur != nil {
			list = append(list, *cur...)
		}
		list = append(list, e)
		set.list.Store(&list)
	}
	set.mu.Unlock()
	m.queueExercise(id, e)
}

// find returns the entry of p in workspace, or nil.
func (s *exerciseSet) find(p permission.Permission, workspace string) *exerciseEntry {
	if list := s.list.Load(); list != nil {
		for _, e := range *list {
			if e.perm == p && e.ws == workspace {
				return e
			}
		}
	}
	return nil
}

// queueExercise queues e of key id for the next flush, unless it is
// queued already.
func (m *Manager) queueExercise(id uuid.UUID, e *exerciseEntry) {
	now := m.now()
	if !e.queued.CompareAndSwap(0, now.UnixNano()) {
		return
	}
	rec := store.Exercise{KeyID: id, Permission: e.perm.String(), Workspace: e.ws, At: canonicalTime(now)}
	m.exercises.mu.Lock()
	m.exercises.pending = append(m.exercises.pending, pendingExercise{e, rec})
	m.exercises.mu.Unlock()
}

// flushExercises writes the queued exercises, keeping them queued on a
// store error, and lets the exercises recorded over an hour ago be
// recorded again.
func (m *Manager) flushExercises(ctx context.Context) error {
	if m.exerciseRec == nil {
		return nil
	}
	m.exercises.mu.Lock()
	batch := m.exercises.pending
	m.exercises.pending = nil
	m.exercises.mu.Unlock()
	if len(batch) > 0 {
		recs := make([]store.Exercise, len(batch))
		for i, p := range batch {
			recs[i] = p.rec
		}
		if err := m.exerciseRec.RecordExercises(ctx, recs); err != nil {
			m.exercises.mu.Lock()
			m.exercises.pending = append(batch, m.exercises.pending...)
			m.exercises.mu.Unlock()
			return m.storeError("record exercised permissions", err)
		}
	}
	stale := m.now().Add(-exerciseRefresh).UnixNano()
	m.exercises.keys.Range(func(_, v any) bool {
		if list := v.(*exerciseSet).list.Load(); list != nil {
			for _, e := range *list {
				if q := e.queued.Load(); q != 0 && q < stale {
					e.queued.CompareAndSwap(q, 0)
				}
			}
		}
		return true
	})
	return nil
}

// PrivilegeReport compares what a key holds with what it exercised: the
// permissions and workspaces the routes it called required (as recorded
// through [Manager.Exercised]).
type PrivilegeReport struct {
	// Key is the key reported on.
	Key *store.Key
	// Since is the start of the window the report looks at.
	Since time.Time
	// Held are the key's effective permissions: its role's and its
	// scopes', canonical.
	Held []string
	// Exercised is every exercise recorded for the key, the oldest too.
	Exercised []store.Exercise
	// Unused are the permissions of Held that allowed no exercise since
	// Since: candidates for removal.
	Unused []string
	// Suggested are the narrowest scopes that would have allowed every
	// exercise since Since: exactly the permissions exercised.
	Suggested []string
	// SuggestedWorkspace, when every exercise since Since was in one
	// workspace, is that workspace: the key could be bound to it.
	SuggestedWorkspace string
}

// LeastPrivilege reports, for key id, which of its permissions it has not
// exercised within unusedFor (such as 30 days), and the narrowest scopes
// that would have allowed everything it did in that time: the analysis
// AWS IAM Access Analyzer gives roles, for API keys. by needs apikey:view
// on the key. A store that records no exercises is [ErrUnsupported].
// Exercises are recorded at most once an hour per key, permission and
// workspace, and only from when the Manager began recording them.
func (m *Manager) LeastPrivilege(ctx context.Context, by Principal, id uuid.UUID, unusedFor time.Duration) (*PrivilegeReport, error) {
	if unusedFor <= 0 {
		return nil, errorf("%w: %w: the window must be positive", ErrInvalidRequest, ErrInvalidField)
	}
	rec, err := m.Get(ctx, by, id)
	if err != nil {
		return nil, err
	}
	if m.exerciseRec == nil {
		return nil, errorf("keygate: least privilege: %w: the store records no exercised permissions", ErrUnsupported)
	}
	es, err := m.exerciseRec.Exercises(ctx, id)
	if err != nil {
		return nil, m.storeError("read exercised permissions", err)
	}
	held, err := m.principalOf(rec)
	if err != nil {
		return nil, err
	}
	r := &PrivilegeReport{Key: rec, Since: m.clock().Add(-unusedFor), Held: held.Permissions.Strings(), Exercised: es}
	var recent permission.Set
	workspaces := map[string]bool{}
	for _, e := range es {
		p, err := permission.Parse(e.Permission)
		if err != nil || e.At.Before(r.Since) {
			continue
		}
		recent = append(recent, p)
		workspaces[e.Workspace] = true
	}
	for _, h := range held.Permissions {
		if !slices.ContainsFunc(recent, h.Allows) {
			r.Unused = append(r.Unused, h.String())
		}
	}
	r.Suggested = permission.Set(slices.Clone(recent)).Union(nil).Strings()
	if len(workspaces) == 1 {
		for ws := range workspaces {
			r.SuggestedWorkspace = ws
		}
	}
	return r, nil
}

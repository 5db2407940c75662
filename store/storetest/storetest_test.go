package storetest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
	"github.com/keygate/keygate/store/storetest"
)

// mutantEnv names the broken store a child process runs the suite against.
const mutantEnv = "STORETEST_MUTANT"

// mutants are stores that each break one rule of the contract, with the
// subtest of the suite that must catch it. "none" is the unbroken control.
var mutants = map[string]struct {
	newStore func() store.Store
	catches  string
}{
	"none": {
		newStore: func() store.Store { return memory.New() },
	},
	"shared Get result": {
		newStore: func() store.Store { return &sharedGet{Store: memory.New(), cache: map[uuid.UUID]*store.Key{}} },
		catches:  "Copies/GetResult",
	},
	"zero uses stored as unlimited": {
		newStore: func() store.Store { return zeroUsesLost{memory.New()} },
		catches:  "Create/RoundTrip",
	},
	"context ignored": {
		newStore: func() store.Store { return contextIgnored{memory.New()} },
		catches:  "Context/Cancelled",
	},
	"Next set on every full page": {
		newStore: func() store.Store { return nextOnFullPage{memory.New()} },
		catches:  "List/Paging",
	},
	"Update without version check": {
		newStore: func() store.Store { return blindUpdate{memory.New()} },
		catches:  "Update/Conflict",
	},
	"GetByHash prefers PrevHash": {
		newStore: func() store.Store { return prevFirst{memory.New()} },
		catches:  "GetByHash/PrefersHash",
	},
	"Hash may not equal a PrevHash": {
		newStore: func() store.Store { return prevHashTaken{memory.New()} },
		catches:  "GetByHash/PrefersHash",
	},
	"empty hash matches": {
		newStore: func() store.Store { return emptyHashMatches{memory.New()} },
		catches:  "GetByHash/NotFound",
	},
	"negative Limit unbounded": {
		newStore: func() store.Store { return negativeLimitAll{memory.New()} },
		catches:  "List/Limit",
	},
	"ConsumeUse count with an error": {
		newStore: func() store.Store { return consumeMinusOne{memory.New()} },
		catches:  "ConsumeUse/ZeroWithError",
	},
	"shared PrevHash lost on delete": {
		newStore: func() store.Store { return &onePrevHolder{Store: memory.New(), holders: map[string]uuid.UUID{}} },
		catches:  "GetByHash/SharedPrevHash",
	},
	"exercises keep the first time": {
		newStore: func() store.Store { return firstExercise{memory.New()} },
		catches:  "Exercises/LatestTimeWins",
	},
	"uses never refilled": {
		newStore: func() store.Store { return neverRefills{memory.New()} },
		catches:  "Spend/UsesRefillDaily",
	},
	"Revoke without clearing the old secret": {
		newStore: func() store.Store { return keepsOldSecret{memory.New()} },
		catches:  "Revoke/RevokesAtOnce",
	},
}

// TestSuiteCatchesBrokenStores runs the suite in a child process against
// each mutant and checks that it fails, in the subtest expected, and that
// it passes against the unbroken control.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	t.Parallel()
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// A mutant runs only the group of the subtest that must catch
			// it: a broken store may also break the others in ways the
			// race detector ends the process for (sharing a *Key across
			// the goroutines of Concurrency), before the expected failure
			// is reported.
			run := "-test.run=^TestMutantHelper$"
			if group, _, _ := strings.Cut(m.catches, "/"); group != "" {
				run += "/^" + group + "$"
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], run, "-test.v")
			// Under -race a passing child would otherwise sleep 1 s at exit.
			gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name, "GORACE="+gorace)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("running the child: %v", err)
			}
			if m.catches == "" {
				if err != nil {
					t.Errorf("suite against the control store: got %v, want pass; output:\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Errorf("suite against %q: got pass, want failure in %s", name, m.catches)
			}
			if want := "--- FAIL: TestMutantHelper/" + m.catches; !strings.Contains(string(out), want) {
				t.Errorf("suite against %q: output lacks %q; output:\n%s", name, want, out)
			}
		})
	}
}

// TestMutantHelper is the child process of TestSuiteCatchesBrokenStores.
func TestMutantHelper(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("runs only as the child process of TestSuiteCatchesBrokenStores")
	}
	m, ok := mutants[name]
	if !ok {
		t.Fatalf("unknown mutant %q", name)
	}
	storetest.Run(t, func(t *testing.T) store.Store { return m.newStore() })
}

// sharedGet returns the same *Key from every Get of one id, so a caller's
// change to it shows in later reads.
type sharedGet struct {
	*memory.Store
	mu    sync.Mutex
	cache map[uuid.UUID]*store.Key
}

func (s *sharedGet) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.cache[id]; ok {
		return k, nil
	}
	k, err := s.Store.Get(ctx, id)
	if err == nil {
		s.cache[id] = k
	}
	return k, err
}

// zeroUsesLost stores RemainingUses 0 as nil, like a backend that maps 0
// to NULL.
type zeroUsesLost struct{ *memory.Store }

func (s zeroUsesLost) Create(ctx context.Context, k *store.Key) error {
	c := k.Clone()
	if c.RemainingUses != nil && *c.RemainingUses == 0 {
		c.RemainingUses = nil
	}
	err := s.Store.Create(ctx, c)
	k.Version = c.Version
	return err
}

// contextIgnored runs every call under context.Background.
type contextIgnored struct{ *memory.Store }

func (s contextIgnored) Create(_ context.Context, k *store.Key) error {
	return s.Store.Create(context.Background(), k)
}

func (s contextIgnored) Get(_ context.Context, id uuid.UUID) (*store.Key, error) {
	return s.Store.Get(context.Background(), id)
}

func (s contextIgnored) GetByHash(_ context.Context, hash []byte) (*store.Key, error) {
	return s.Store.GetByHash(context.Background(), hash)
}

func (s contextIgnored) List(_ context.Context, opts store.ListOptions) (*store.Page, error) {
	return s.Store.List(context.Background(), opts)
}

func (s contextIgnored) Update(_ context.Context, k *store.Key) error {
	return s.Store.Update(context.Background(), k)
}

func (s contextIgnored) Delete(_ context.Context, id uuid.UUID) error {
	return s.Store.Delete(context.Background(), id)
}

func (s contextIgnored) TouchLastUsed(_ context.Context, used map[uuid.UUID]time.Time) error {
	return s.Store.TouchLastUsed(context.Background(), used)
}

func (s contextIgnored) ConsumeUse(_ context.Context, id uuid.UUID) (int64, error) {
	return s.Store.ConsumeUse(context.Background(), id)
}

// nextOnFullPage sets Next whenever a page is full, even when no key
// follows, so the caller pays for one more, empty, page.
type nextOnFullPage struct{ *memory.Store }

func (s nextOnFullPage) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	p, err := s.Store.List(ctx, opts)
	if err != nil {
		return nil, err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	if len(p.Keys) == min(limit, store.MaxListLimit) {
		p.Next = p.Keys[len(p.Keys)-1].ID
	}
	return p, nil
}

// blindUpdate overwrites whatever version is stored.
type blindUpdate struct{ *memory.Store }

func (s blindUpdate) Update(ctx context.Context, k *store.Key) error {
	cur, err := s.Store.Get(ctx, k.ID)
	if err != nil {
		return err
	}
	k.Version = cur.Version
	return s.Store.Update(ctx, k)
}

// prevFirst looks a hash up as a PrevHash before as a Hash.
type prevFirst struct{ *memory.Store }

func (s prevFirst) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	page, err := s.Store.List(ctx, store.ListOptions{Limit: store.MaxListLimit})
	if err != nil {
		return nil, err
	}
	for _, k := range page.Keys {
		if len(hash) > 0 && bytes.Equal(k.PrevHash, hash) {
			return k, nil
		}
	}
	return s.Store.GetByHash(ctx, hash)
}

// prevHashTaken refuses a Hash that is another key's PrevHash.
type prevHashTaken struct{ *memory.Store }

func (s prevHashTaken) Create(ctx context.Context, k *store.Key) error {
	if other, err := s.Store.GetByHash(ctx, k.Hash); err == nil && other.ID != k.ID {
		return fmt.Errorf("prevHashTaken: %w", store.ErrDuplicate)
	}
	return s.Store.Create(ctx, k)
}

// emptyHashMatches answers an empty hash with the first key.
type emptyHashMatches struct{ *memory.Store }

func (s emptyHashMatches) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	if len(hash) == 0 {
		if page, err := s.Store.List(ctx, store.ListOptions{Limit: 1}); err == nil && len(page.Keys) > 0 {
			return page.Keys[0], nil
		}
	}
	return s.Store.GetByHash(ctx, hash)
}

// negativeLimitAll reads a negative Limit as "no limit".
type negativeLimitAll struct{ *memory.Store }

func (s negativeLimitAll) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	if opts.Limit < 0 {
		opts.Limit = store.MaxListLimit
	}
	return s.Store.List(ctx, opts)
}

// consumeMinusOne returns -1 (unlimited, to a careless caller) with errors.
type consumeMinusOne struct{ *memory.Store }

func (s consumeMinusOne) ConsumeUse(ctx context.Context, id uuid.UUID) (int64, error) {
	n, err := s.Store.ConsumeUse(ctx, id)
	if err != nil {
		return -1, err
	}
	return n, nil
}

// onePrevHolder indexes a PrevHash for one key only, as the memory store
// once did: deleting the key indexed loses the other holder.
type onePrevHolder struct {
	*memory.Store
	mu      sync.Mutex
	holders map[string]uuid.UUID
}

func (s *onePrevHolder) Create(ctx context.Context, k *store.Key) error {
	err := s.Store.Create(ctx, k)
	if err == nil && len(k.PrevHash) > 0 {
		s.mu.Lock()
		s.holders[string(k.PrevHash)] = k.ID
		s.mu.Unlock()
	}
	return err
}

func (s *onePrevHolder) Delete(ctx context.Context, id uuid.UUID) error {
	s.mu.Lock()
	for h, holder := range s.holders {
		if holder == id {
			delete(s.holders, h)
		}
	}
	s.mu.Unlock()
	return s.Store.Delete(ctx, id)
}

func (s *onePrevHolder) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	k, err := s.Store.GetByHash(ctx, hash)
	if err != nil || bytes.Equal(k.Hash, hash) {
		return k, err
	}
	s.mu.Lock()
	id, ok := s.holders[string(hash)]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("onePrevHolder: %w", store.ErrNotFound)
	}
	return s.Store.Get(ctx, id)
}

// keepsOldSecret revokes but leaves the grace period's old secret working.
type keepsOldSecret struct{ *memory.Store }

func (s keepsOldSecret) Revoke(ctx context.Context, id uuid.UUID, at time.Time) (*store.Key, error) {
	k, err := s.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	k.RevokedAt, k.UpdatedAt = at, at
	if err := s.Store.Update(ctx, k); err != nil {
		return nil, err
	}
	return k, nil
}

// firstExercise records an exercise only the first time it is seen.
type firstExercise struct{ *memory.Store }

func (s firstExercise) RecordExercises(ctx context.Context, exercises []store.Exercise) error {
	for _, e := range exercises {
		have, err := s.Store.Exercises(ctx, e.KeyID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(have, func(h store.Exercise) bool { return h.Permission == e.Permission && h.Workspace == e.Workspace }) {
			if err := s.Store.RecordExercises(ctx, []store.Exercise{e}); err != nil {
				return err
			}
		}
	}
	return nil
}

// neverRefills spends a key's uses as if no refill were ever due.
type neverRefills struct{ *memory.Store }

func (s neverRefills) SpendUses(ctx context.Context, id uuid.UUID, cost int64, _ time.Time) (int64, error) {
	return s.Store.SpendUses(ctx, id, cost, time.Time{})
}

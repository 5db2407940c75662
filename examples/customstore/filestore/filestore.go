package filestore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

var (
	_ store.Store      = (*Store)(nil)
	_ store.Revoker    = (*Store)(nil)
	_ store.Retirer    = (*Store)(nil)
	_ store.UseSpender = (*Store)(nil)
)

// Errors of this package, besides the sentinels of package store. Test them
// with [errors.Is].
var (
	// ErrCorrupt means the log holds a record that cannot be read or could
	// not have been written by this package, other than a torn last
	// record. Open refuses such a log and leaves the file unchanged.
	ErrCorrupt = errors.New("filestore: corrupt log")
	// ErrLocked means another Store, in this process or another, has the
	// log open.
	ErrLocked = errors.New("filestore: log in use by another store")
	// ErrClosed means the Store has been closed.
	ErrClosed = errors.New("filestore: store closed")
)

// DefaultCompactAfter is the default of [Config.CompactAfter].
const DefaultCompactAfter = 10_000

// Config configures a [Store]. Only Path is required.
type Config struct {
	// Path is the log file. Open creates it, with mode 0600, if it does
	// not exist; its directory must exist. The Store also keeps a lock file
	// next to it, Path+".lock", which it never removes.
	Path string
	// CompactAfter is how many records more than a compaction would write
	// (one per key, one per 1000 tombstones) the log may hold before a
	// write rewrites it (see [Store.Compact]). 0 means
	// DefaultCompactAfter; negative means never automatically.
	CompactAfter int
	// Logger receives warnings: a torn last record dropped by Open, a
	// failed automatic compaction. Never a hash. nil discards them.
	Logger *slog.Logger
}

// Store is a [store.Store] that keeps keys in memory and every change in
// an append-only log file, replayed by [Open]. It is safe for concurrent
// use by multiple goroutines.
//
// Reads (Get, GetByHash, List) take a read lock on the in-memory state
// and never touch the disk, so they never wait for a write's fsync.
// Writes are serialized by one writer lock, waited for with the caller's
// context; each write validates, appends one record, fsyncs, and only then
// applies the record to memory and returns.
//
// One Store per file: a second Open of the same path fails with
// [ErrLocked] on Linux, macOS and the BSDs.
type Store struct {
	path         string
	compactAfter int
	logger       *slog.Logger

	// state is the content; see its doc for its locking.
	state *state

	// writer is the writer lock: a one-slot semaphore, so that waiting for
	// it can stop when the caller's context is done (a sync.Mutex cannot).
	// It guards every field below.
	writer chan struct{}
	// log is the open log file, in append mode, and size its length.
	log  *os.File
	size int64
	// records counts the records in the log (the header excluded).
	records int
	// failed, once set, is the I/O error that left the log in a state this
	// Store cannot vouch for; every later write returns it. Reopen the
	// file to recover: replay drops a torn record.
	failed error
	// lock is the open lock file; closing it releases the lock.
	lock *os.File

	// closed is set by Close; read without the writer lock by reads.
	closed atomic.Bool
}

// Open opens the log at cfg.Path, creating it if missing, and replays it
// into memory. A torn last record (a line without its '\n', or a last line
// that does not decode: a write cut short by a crash, never reported as
// done) is dropped and the file truncated, with a warning to cfg.Logger.
// Any other unreadable or inconsistent record fails with an error wrapping
// [ErrCorrupt], and the file is left as it was. A log opened by another
// Store fails with [ErrLocked]. ctx bounds the replay.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("filestore: Config.Path is required")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("filestore: open: %w", err)
	}
	s := &Store{
		path:         cfg.Path,
		compactAfter: cfg.CompactAfter,
		logger:       cfg.Logger,
		state:        newState(),
		writer:       make(chan struct{}, 1),
	}
	if s.compactAfter == 0 {
		s.compactAfter = DefaultCompactAfter
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}

	lock, err := os.OpenFile(cfg.Path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filestore: open: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("filestore: open %s: %w", cfg.Path, err)
	}
	s.lock = lock

	if err := s.openLog(ctx); err != nil {
		if s.log != nil {
			s.log.Close()
		}
		lock.Close()
		return nil, err
	}
	s.maybeCompact(ctx)
	return s, nil
}

// openLog opens (or creates) the log file and replays it.
func (s *Store) openLog(ctx context.Context) error {
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("filestore: open: %w", err)
	}
	s.log = f
	good, torn, err := s.replay(ctx, f)
	if err != nil {
		return err
	}
	if torn > 0 {
		s.logger.WarnContext(ctx, "filestore: dropped a torn last record",
			"path", s.path, "offset", good, "bytes", torn)
		if err := f.Truncate(good); err != nil {
			return fmt.Errorf("filestore: drop torn record: %w", err)
		}
	}
	s.size = good
	if good == 0 {
		// A new (or emptied) log: write its header, then make the file's
		// directory entry durable too.
		if _, err := f.Write(encodeHeader()); err != nil {
			return fmt.Errorf("filestore: write header: %w", err)
		}
		s.size = int64(len(encodeHeader()))
		if err := syncDir(s.path); err != nil {
			return fmt.Errorf("filestore: sync directory: %w", err)
		}
	}
	if torn > 0 || good == 0 {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("filestore: sync: %w", err)
		}
	}
	return nil
}

// replay reads the log from the start and applies each record. It returns
// the length of the good prefix and how many bytes after it form a torn
// last record (0 if none).
func (s *Store) replay(ctx context.Context, f *os.File) (good, torn int64, err error) {
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, readErr := r.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return 0, 0, fmt.Errorf("filestore: read: %w", readErr)
		}
		if len(line) == 0 {
			return good, 0, nil // clean end
		}
		if err := ctx.Err(); err != nil {
			return 0, 0, fmt.Errorf("filestore: replay: %w", err)
		}
		rec, bad := parseLine(line, n)
		if bad != nil {
			last, err := atEOF(r)
			if err != nil {
				return 0, 0, fmt.Errorf("filestore: read: %w", err)
			}
			if last && (n > 1 || isTornHeader(line)) {
				// The last line, cut short or garbled by a crash in the
				// middle of a write that was never acknowledged.
				return good, int64(len(line)), nil
			}
			return 0, 0, s.corrupt(n, good, bad)
		}
		if n > 1 {
			// A complete, well-formed record that contradicts the ones
			// before it is no torn write: it is corruption wherever it is.
			if err := s.state.checkReplay(rec); err != nil {
				return 0, 0, s.corrupt(n, good, err)
			}
			s.state.apply(rec)
			s.records++
		}
		good += int64(len(line))
	}
}

// corrupt returns the error for line n, at offset off, of the log.
func (s *Store) corrupt(n int, off int64, err error) error {
	return fmt.Errorf("%w: %s line %d (offset %d): %w", ErrCorrupt, s.path, n, off, err)
}

// parseLine checks line n: the header if n is 1, else a record.
func parseLine(line []byte, n int) (record, error) {
	body, complete := bytes.CutSuffix(line, []byte{'\n'})
	if n == 1 {
		if err := checkHeader(body); err != nil {
			return record{}, err
		}
	}
	if !complete {
		return record{}, errors.New("no end of line")
	}
	if n == 1 {
		return record{}, nil
	}
	return decodeRecord(body)
}

// isTornHeader reports whether line, the only line of a log, is the start
// of the header: a crash while the log was being created. Any other first
// line means the file is not a log, and Open must not truncate it.
func isTornHeader(line []byte) bool {
	h := encodeHeader()
	return len(line) < len(h) && bytes.HasPrefix(h, line)
}

// atEOF reports whether r has nothing left to read.
func atEOF(r *bufio.Reader) (bool, error) {
	_, err := r.Peek(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// Close closes the log, waiting for a write in progress, and releases the
// lock. Every later call of a method returns [ErrClosed].
func (s *Store) Close() error {
	s.writer <- struct{}{}
	defer func() { <-s.writer }()
	if s.closed.Load() {
		return ErrClosed
	}
	s.closed.Store(true)
	return errors.Join(s.log.Close(), s.lock.Close())
}

// lockWriter waits for the writer lock until ctx is done. On success the
// caller must call unlockWriter.
func (s *Store) lockWriter(ctx context.Context) error {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	// select picks at random when both cases are ready, so check again: a
	// cancelled context never writes.
	if err := ctx.Err(); err != nil {
		s.unlockWriter()
		return err
	}
	if s.closed.Load() {
		s.unlockWriter()
		return ErrClosed
	}
	return nil
}

func (s *Store) unlockWriter() { <-s.writer }

// commit appends rec to the log, fsyncs, and applies it to memory. The
// caller holds the writer lock and has validated rec. If commit fails,
// memory is unchanged and the caller gets an error that is none of the
// store sentinels.
//
// A write error truncates the log back to its previous length, so a
// partial line never survives. A failed fsync is never retried: the
// kernel may have dropped the unwritten pages and cleared the error, so
// the Store stops writing (see Store.failed) until the file is reopened.
// Either way the outcome on disk of that one record is unknown to the
// caller, as with a database connection lost during a commit.
func (s *Store) commit(ctx context.Context, rec record) error {
	if s.failed != nil {
		return fmt.Errorf("filestore: log unusable after an earlier failure, reopen it: %w", s.failed)
	}
	line, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if _, err := s.log.Write(line); err != nil {
		if terr := s.log.Truncate(s.size); terr != nil {
			s.failed = errors.Join(err, terr)
		}
		return fmt.Errorf("filestore: append: %w", err)
	}
	if err := s.log.Sync(); err != nil {
		s.failed = err
		return fmt.Errorf("filestore: sync: %w", err)
	}
	s.size += int64(len(line))
	s.records++
	s.state.apply(rec)
	s.maybeCompact(ctx)
	return nil
}

// checkRead returns an error for a read that must not proceed.
func (s *Store) checkRead(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Create stores a copy of k with Version 1 and sets k.Version to 1. It
// returns an error wrapping [store.ErrDuplicate] if k's id, Hash or
// (Workspace, Name) pair is already used; nothing is written then.
func (s *Store) Create(ctx context.Context, k *store.Key) error {
	if err := s.lockWriter(ctx); err != nil {
		return fmt.Errorf("filestore: create: %w", err)
	}
	defer s.unlockWriter()
	if _, ok := s.state.keys[k.ID]; ok {
		return fmt.Errorf("filestore: create %s: id: %w", k.ID, store.ErrDuplicate)
	}
	if err := s.state.checkUnique(k); err != nil {
		return fmt.Errorf("filestore: create %s: %w", k.ID, err)
	}
	c := k.Clone() // the store's own copy: the caller may change k after
	c.Version = 1
	if err := s.commit(ctx, record{Op: opPut, Key: c}); err != nil {
		return err
	}
	k.Version = 1
	return nil
}

// Get returns a copy of the key with the given id, or an error wrapping
// [store.ErrNotFound].
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*store.Key, error) {
	if err := s.checkRead(ctx); err != nil {
		return nil, fmt.Errorf("filestore: get: %w", err)
	}
	s.state.mu.RLock()
	defer s.state.mu.RUnlock()
	k, ok := s.state.keys[id]
	if !ok {
		return nil, fmt.Errorf("filestore: get %s: %w", id, store.ErrNotFound)
	}
	return k.Clone(), nil
}

// GetByHash returns a copy of the key whose Hash, or else whose PrevHash,
// equals hash, or an error wrapping [store.ErrNotFound]. An empty hash
// matches no key. It does not check expiry or revocation.
func (s *Store) GetByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	if err := s.checkRead(ctx); err != nil {
		return nil, fmt.Errorf("filestore: get by hash: %w", err)
	}
	s.state.mu.RLock()
	defer s.state.mu.RUnlock()
	k := s.state.lookupHash(hash)
	if k == nil {
		return nil, fmt.Errorf("filestore: get by hash: %w", store.ErrNotFound)
	}
	return k.Clone(), nil
}

// List returns copies of the keys matching opts in ascending id order, at
// most opts.Limit of them (0 or less means [store.DefaultListLimit]; above
// [store.MaxListLimit] it is clamped), starting after opts.After. Next is
// set only when a further matching key exists.
func (s *Store) List(ctx context.Context, opts store.ListOptions) (*store.Page, error) {
	if err := s.checkRead(ctx); err != nil {
		return nil, fmt.Errorf("filestore: list: %w", err)
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	limit = min(limit, store.MaxListLimit)
	s.state.mu.RLock()
	defer s.state.mu.RUnlock()
	keys, more := s.state.list(opts, limit)
	page := &store.Page{Keys: keys}
	if page.Keys == nil {
		page.Keys = []*store.Key{}
	}
	if more {
		page.Next = keys[len(keys)-1].ID
	}
	return page, nil
}

// Update replaces the stored key k.ID with a copy of k if the stored
// version equals k.Version, keeping the stored CreatedAt and LastUsedAt;
// it then stores and sets k.Version+1. It returns an error wrapping
// [store.ErrNotFound] for a missing key, [store.ErrConflict] for a stale
// version, or [store.ErrDuplicate] if k's Hash or (Workspace, Name) pair
// belongs to another key; nothing is written then.
func (s *Store) Update(ctx context.Context, k *store.Key) error {
	if err := s.lockWriter(ctx); err != nil {
		return fmt.Errorf("filestore: update: %w", err)
	}
	defer s.unlockWriter()
	cur, ok := s.state.keys[k.ID]
	if !ok {
		return fmt.Errorf("filestore: update %s: %w", k.ID, store.ErrNotFound)
	}
	if k.Version != cur.Version {
		return fmt.Errorf("filestore: update %s: version %d, stored %d: %w", k.ID, k.Version, cur.Version, store.ErrConflict)
	}
	if err := s.state.checkUnique(k); err != nil {
		return fmt.Errorf("filestore: update %s: %w", k.ID, err)
	}
	c := k.Clone()
	c.CreatedAt, c.LastUsedAt = cur.CreatedAt, cur.LastUsedAt // not Update's to change
	c.Version = cur.Version + 1
	if err := s.commit(ctx, record{Op: opPut, Key: c}); err != nil {
		return err
	}
	k.Version = c.Version
	return nil
}

// Revoke implements the optional [store.Revoker]: it revokes key id at
// once, whatever its version, so that no stream of ConsumeUse calls can
// make a revocation fail with a conflict. The first revocation time is
// kept; the previous secret of a grace period goes with the key. Like
// ConsumeUse it is atomic because it reads and writes under the writer
// lock.
func (s *Store) Revoke(ctx context.Context, id uuid.UUID, at time.Time) (*store.Key, error) {
	if err := s.lockWriter(ctx); err != nil {
		return nil, fmt.Errorf("filestore: revoke: %w", err)
	}
	defer s.unlockWriter()
	cur, ok := s.state.keys[id]
	if !ok {
		return nil, fmt.Errorf("filestore: revoke %s: %w", id, store.ErrNotFound)
	}
	c := cur.Clone() // copy-on-write: readers may hold cur
	if c.RevokedAt.IsZero() {
		c.RevokedAt = at
	}
	c.PrevHash, c.PrevPepperID, c.PrevExpiresAt = nil, "", time.Time{}
	c.UpdatedAt = at
	c.Version++
	if err := s.commit(ctx, record{Op: opPut, Key: c}); err != nil {
		return nil, err
	}
	return c.Clone(), nil
}

// Retire implements the optional [store.Retirer]: it records the hashes
// of retired secrets in one retire record, leaving out empty hashes and
// those already retired (so a retry writes nothing). The tombstones are
// kept through deletes and compactions, for the life of the file.
func (s *Store) Retire(ctx context.Context, hashes []store.RetiredHash) error {
	if err := s.lockWriter(ctx); err != nil {
		return fmt.Errorf("filestore: retire: %w", err)
	}
	defer s.unlockWriter()
	var fresh []store.RetiredHash
	seen := make(map[string]bool, len(hashes))
	for _, r := range hashes {
		if len(r.Hash) == 0 || seen[string(r.Hash)] || s.state.lookupRetired([][]byte{r.Hash}) {
			continue
		}
		seen[string(r.Hash)] = true
		r.Hash = bytes.Clone(r.Hash) // the record owns its memory
		fresh = append(fresh, r)
	}
	if len(fresh) == 0 {
		return nil
	}
	return s.commit(ctx, record{Op: opRetire, Retired: fresh})
}

// Retired implements the optional [store.Retirer]: it reports whether any
// of hashes is retired, from memory.
func (s *Store) Retired(ctx context.Context, hashes ...[]byte) (bool, error) {
	if err := s.checkRead(ctx); err != nil {
		return false, fmt.Errorf("filestore: retired: %w", err)
	}
	s.state.mu.RLock()
	defer s.state.mu.RUnlock()
	return s.state.lookupRetired(hashes), nil
}

// Delete removes the key with the given id, or returns an error wrapping
// [store.ErrNotFound].
func (s *Store) Delete(ctx context.Context, id uuid.UUID) error {
	if err := s.lockWriter(ctx); err != nil {
		return fmt.Errorf("filestore: delete: %w", err)
	}
	defer s.unlockWriter()
	if _, ok := s.state.keys[id]; !ok {
		return fmt.Errorf("filestore: delete %s: %w", id, store.ErrNotFound)
	}
	return s.commit(ctx, record{Op: opDelete, ID: id})
}

// TouchLastUsed moves the LastUsedAt of each key in used forward to its
// time, in one record and one fsync. Times not later than the stored one
// and unknown ids are left out; if nothing is left, nothing is written.
// Versions are not changed.
func (s *Store) TouchLastUsed(ctx context.Context, used map[uuid.UUID]time.Time) error {
	if err := s.lockWriter(ctx); err != nil {
		return fmt.Errorf("filestore: touch last used: %w", err)
	}
	defer s.unlockWriter()
	moved := make(map[uuid.UUID]time.Time, len(used))
	for id, at := range used {
		if k, ok := s.state.keys[id]; ok && at.After(k.LastUsedAt) {
			moved[id] = at
		}
	}
	if len(moved) == 0 {
		return nil
	}
	return s.commit(ctx, record{Op: opTouch, Used: moved})
}

// ConsumeUse takes one use from a usage-limited key, adds one to its
// version and returns the uses left. It returns (-1, nil) for a key with no
// usage limit, writing nothing, and an error wrapping
// [store.ErrUsageExhausted] when none are left or [store.ErrNotFound] for
// a missing key. Calls are atomic because the check and the write happen
// under the one writer lock.
func (s *Store) ConsumeUse(ctx context.Context, id uuid.UUID) (int64, error) {
	if err := s.lockWriter(ctx); err != nil {
		return 0, fmt.Errorf("filestore: consume use: %w", err)
	}
	defer s.unlockWriter()
	cur, ok := s.state.keys[id]
	switch {
	case !ok:
		return 0, fmt.Errorf("filestore: consume use %s: %w", id, store.ErrNotFound)
	case cur.RemainingUses == nil:
		return -1, nil
	case *cur.RemainingUses <= 0:
		return 0, fmt.Errorf("filestore: consume use %s: %w", id, store.ErrUsageExhausted)
	}
	c := cur.Clone() // copy-on-write: readers may be cloning cur right now
	*c.RemainingUses--
	c.Version++
	if err := s.commit(ctx, record{Op: opPut, Key: c}); err != nil {
		return 0, err
	}
	return *c.RemainingUses, nil
}

// SpendUses implements the optional [store.UseSpender]: it takes cost from
// the uses of key id at now, after refilling them if their Refill is due
// (computed with [store.Spend]), adds one to the version and returns the
// uses left, in one record. It returns the uses that could not pay with an
// error wrapping [store.ErrUsageExhausted], writing nothing; (-1, nil) for
// a key with no usage limit; or an error wrapping [store.ErrNotFound]. As
// with ConsumeUse, the check and the write happen under the one writer
// lock, so a refill happens once per period.
func (s *Store) SpendUses(ctx context.Context, id uuid.UUID, cost int64, now time.Time) (int64, error) {
	if err := s.lockWriter(ctx); err != nil {
		return 0, fmt.Errorf("filestore: spend uses: %w", err)
	}
	defer s.unlockWriter()
	cur, ok := s.state.keys[id]
	switch {
	case !ok:
		return 0, fmt.Errorf("filestore: spend uses %s: %w", id, store.ErrNotFound)
	case cur.RemainingUses == nil:
		return -1, nil
	}
	left, at, ok := store.Spend(*cur.RemainingUses, cur.Refill, cur.RefilledAt, cost, now)
	if !ok {
		return left, fmt.Errorf("filestore: spend %d uses %s: %d left: %w", cost, id, left, store.ErrUsageExhausted)
	}
	c := cur.Clone() // copy-on-write: readers may be cloning cur right now
	*c.RemainingUses, c.RefilledAt = left, at
	c.Version++
	if err := s.commit(ctx, record{Op: opPut, Key: c}); err != nil {
		return 0, err
	}
	return left, nil
}

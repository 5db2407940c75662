package filestore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/keygate/keygate/store"
)

// Compact rewrites the log to hold one put record per key, in id order,
// and the tombstones of retired secrets in retire records of at most
// 1000, dropping the history of updates, uses, touches and deletes. It writes a
// new file next to the log (Path+".compact"), fsyncs it, and renames it
// over the log, so a crash at any point leaves either the old log or the
// new one, both holding the same keys. Reads go on while it runs; writes
// wait for it.
//
// A write calls it automatically once the log holds [Config.CompactAfter]
// records more than a compaction would write.
func (s *Store) Compact(ctx context.Context) error {
	if err := s.lockWriter(ctx); err != nil {
		return fmt.Errorf("filestore: compact: %w", err)
	}
	defer s.unlockWriter()
	return s.compact(ctx)
}

// maybeCompact compacts the log if it holds CompactAfter records more than
// a compaction would write. The caller holds the writer lock. The write that triggered it has
// already succeeded, so a failure is only logged, and the caller's context
// no longer cuts the work short.
func (s *Store) maybeCompact(ctx context.Context) {
	if s.compactAfter < 0 || s.records-s.compactedRecords() < s.compactAfter {
		return
	}
	if err := s.compact(context.WithoutCancel(ctx)); err != nil {
		s.logger.WarnContext(ctx, "filestore: automatic compaction failed", "path", s.path, "error", err)
	}
}

// compact does the work of Compact. The caller holds the writer lock, so
// the state cannot change underneath; it is read without its lock, like
// every write does.
func (s *Store) compact(ctx context.Context) (err error) {
	if s.failed != nil {
		return fmt.Errorf("filestore: compact: log unusable after an earlier failure, reopen it: %w", s.failed)
	}
	tmp := s.path + ".compact"
	// O_TRUNC: a file left by a compaction that crashed is started over.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("filestore: compact: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			err = errors.Join(err, f.Close(), os.Remove(tmp))
		}
	}()

	w := bufio.NewWriter(f)
	size, _ := w.Write(encodeHeader())
	for _, id := range s.state.order {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("filestore: compact: %w", err)
		}
		line, err := encodeRecord(record{Op: opPut, Key: s.state.keys[id]})
		if err != nil {
			return err
		}
		n, _ := w.Write(line) // a write error is kept by w and returned by Flush
		size += n
	}
	records := len(s.state.order)
	if len(s.state.retired) > 0 {
		tombs := slices.SortedFunc(maps.Values(s.state.retired), func(a, b store.RetiredHash) int { return bytes.Compare(a.Hash, b.Hash) })
		for chunk := range slices.Chunk(tombs, retiredPerRecord) {
			line, err := encodeRecord(record{Op: opRetire, Retired: chunk})
			if err != nil {
				return err
			}
			n, _ := w.Write(line)
			size += n
			records++
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("filestore: compact: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filestore: compact: sync: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("filestore: compact: %w", err)
	}
	renamed = true

	// From here on the new file is the log, whatever else fails.
	old := s.log
	s.log, s.size, s.records = f, int64(size), records
	closeErr := old.Close()
	// Until the directory is synced, a crash may bring back the old log;
	// it holds the same keys, so that loses nothing.
	if err := syncDir(s.path); err != nil {
		return fmt.Errorf("filestore: compact: sync directory: %w", err)
	}
	if closeErr != nil {
		return fmt.Errorf("filestore: compact: close old log: %w", closeErr)
	}
	return nil
}

// retiredPerRecord is the most tombstones Compact writes in one record.
const retiredPerRecord = 1000

// compactedRecords is the number of records a compaction would write now:
// one per key and one per retiredPerRecord tombstones. The caller holds
// the writer lock.
func (s *Store) compactedRecords() int {
	return len(s.state.keys) + (len(s.state.retired)+retiredPerRecord-1)/retiredPerRecord
}

// Stats describes the log of a [Store].
type Stats struct {
	// Keys is the number of keys stored.
	Keys int
	// Records is the number of records in the log, the header excluded:
	// Keys right after a compaction (plus one per 1000 tombstones of
	// retired secrets), more as keys change.
	Records int
	// Bytes is the length of the log file.
	Bytes int64
}

// Stats returns the current size of the store and its log, waiting for a
// write in progress.
func (s *Store) Stats() Stats {
	s.writer <- struct{}{}
	defer s.unlockWriter()
	return Stats{Keys: len(s.state.keys), Records: s.records, Bytes: s.size}
}

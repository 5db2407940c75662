package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// usageSubject identifies the subject of usage counts.
type usageSubject struct {
	kind string
	id   uuid.UUID
}

// usageCell identifies one count of a subject: an hour (Unix seconds) and
// an outcome.
type usageCell struct {
	hour    int64
	outcome string
}

// RecordUsage adds the counts, under one lock (see [store.UsageRecorder]).
func (s *Store) RecordUsage(ctx context.Context, counts []store.UsageCount) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: record usage: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.usage == nil {
		s.usage = make(map[usageSubject]map[usageCell]int64)
	}
	for _, c := range counts {
		if c.Count <= 0 {
			continue
		}
		sub := usageSubject{c.Kind, c.Subject}
		m := s.usage[sub]
		if m == nil {
			m = make(map[usageCell]int64)
			s.usage[sub] = m
		}
		m[usageCell{c.Hour.Unix(), c.Outcome}] += c.Count
	}
	return nil
}

// Usage returns the counts matching q (see [store.UsageRecorder]).
func (s *Store) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: usage: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []store.UsageCount
	for _, id := range q.Subjects {
		for cell, n := range s.usage[usageSubject{q.Kind, id}] {
			hour := time.Unix(cell.hour, 0).UTC()
			if hour.Before(q.From) || !hour.Before(q.To) {
				continue
			}
			out = append(out, store.UsageCount{Kind: q.Kind, Subject: id, Hour: hour, Outcome: cell.outcome, Count: n})
		}
	}
	return out, nil
}

// PurgeUsage removes the counts of hours before before (see
// [store.UsageRecorder]).
func (s *Store) PurgeUsage(ctx context.Context, before time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: purge usage: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for sub, m := range s.usage {
		for cell := range m {
			if time.Unix(cell.hour, 0).Before(before) {
				delete(m, cell)
				n++
			}
		}
		if len(m) == 0 {
			delete(s.usage, sub)
		}
	}
	return n, nil
}

package sqlstore_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore"
)

// benchRows is the number of keys in the table during the benchmarks.
const benchRows = 1000

// benchStore returns a store of engine e holding benchRows keys, and the
// hash of one in the middle.
func benchStore(b *testing.B, e engine) (*sqlstore.Store, *sqlx.DB, []byte) {
	b.Helper()
	db := e.open(b)
	s := newStore(b, db, e.dialect)
	var hash []byte
	for i := range benchRows {
		k := testKey(fmt.Sprintf("bench-%d", i))
		if err := s.Create(b.Context(), k); err != nil {
			b.Fatalf("Create: %v", err)
		}
		if i == benchRows/2 {
			hash = k.Hash
		}
	}
	return s, db, hash
}

// BenchmarkGetByHash measures the lookup every request makes, through the
// store: query, scan, and decoding into a store.Key.
func BenchmarkGetByHash(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s, _, hash := benchStore(b, e)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.GetByHash(b.Context(), hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rawKey is the row of the keys table as plain sqlx scans it, undecoded.
type rawKey struct {
	ID            []byte        `db:"id"`
	Name          string        `db:"name"`
	Description   string        `db:"description"`
	Owner         string        `db:"owner"`
	Workspace     string        `db:"workspace"`
	Role          string        `db:"role"`
	Scopes        []byte        `db:"scopes"`
	Metadata      []byte        `db:"metadata"`
	Hash          []byte        `db:"hash"`
	PepperID      string        `db:"pepper_id"`
	PrevHash      []byte        `db:"prev_hash"`
	PrevPepperID  string        `db:"prev_pepper_id"`
	PrevExpiresAt []byte        `db:"prev_expires_at"`
	Hint          string        `db:"hint"`
	RateLimit     int64         `db:"rate_limit"`
	RateWindowNs  int64         `db:"rate_window_ns"`
	RemainingUses sql.NullInt64 `db:"remaining_uses"`
	AllowedCIDRs  []byte        `db:"allowed_cidrs"`
	CreatedAt     []byte        `db:"created_at"`
	UpdatedAt     []byte        `db:"updated_at"`
	ExpiresAt     []byte        `db:"expires_at"`
	LastUsedAt    []byte        `db:"last_used_at"`
	RevokedAt     []byte        `db:"revoked_at"`
	Version       int64         `db:"version"`
}

// BenchmarkRawGetByHash is the baseline of BenchmarkGetByHash: the same
// SQL on the same table through plain sqlx (db.Get into a struct).
func BenchmarkRawGetByHash(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s, db, hash := benchStore(b, e)
			q := db.Rebind(rawQuery(s))
			b.ReportAllocs()
			for b.Loop() {
				var k rawKey
				if err := db.GetContext(b.Context(), &k, q, hash, hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawPreparedGetByHash is BenchmarkRawGetByHash on a statement
// prepared once, as the store does: the difference from
// BenchmarkGetByHash is the store's own cost (scanning and decoding).
func BenchmarkRawPreparedGetByHash(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s, db, hash := benchStore(b, e)
			st, err := db.PreparexContext(b.Context(), db.Rebind(rawQuery(s)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			b.ReportAllocs()
			for b.Loop() {
				var k rawKey
				if err := st.GetContext(b.Context(), &k, hash, hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rawQuery is the store's lookup by hash, written out.
func rawQuery(s *sqlstore.Store) string {
	return `SELECT id, name, description, owner, workspace, role, scopes, metadata,
	hash, pepper_id, prev_hash, prev_pepper_id, prev_expires_at, hint,
	rate_limit, rate_window_ns, remaining_uses, allowed_cidrs,
	created_at, updated_at, expires_at, last_used_at, revoked_at, version FROM ` + s.Table() + ` WHERE hash = ? OR prev_hash = ?`
}

// BenchmarkRecordUsage is one flush of usage history from a Manager whose
// 1,000 keys were each verified in the interval, valid and rate-limited:
// 2,000 counts added to rows that exist (the usual case after the first
// flush of an hour), in one transaction of four upserts.
func BenchmarkRecordUsage(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s, _, _ := benchStore(b, e)
			hour := time.Now().UTC().Truncate(time.Hour)
			counts := make([]store.UsageCount, 0, 2000)
			for range 1000 {
				id := uuid.Must(uuid.NewV7())
				counts = append(counts,
					store.UsageCount{Kind: store.UsageKey, Subject: id, Hour: hour, Outcome: "valid", Count: 120},
					store.UsageCount{Kind: store.UsageKey, Subject: id, Hour: hour, Outcome: "rate_limited", Count: 3})
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.RecordUsage(b.Context(), counts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSpend measures what a verification of a metered key writes:
// SpendUses of a key's uses (the guarded UPDATE of the fast path) and
// SpendCredits of an identity's, next to ConsumeUse; and, "refill", a
// spend that finds a refill due (the locked read and write of the slow
// path), each spend a day after the last.
func BenchmarkSpend(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			s, _, _ := benchStore(b, e)
			ctx := b.Context()
			now := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
			key := func(refill *store.Refill) uuid.UUID {
				k := testKey("spend-" + uuid.NewString())
				n := int64(1 << 60)
				k.RemainingUses, k.Refill, k.RefilledAt = &n, refill, now
				if err := s.Create(ctx, k); err != nil {
					b.Fatal(err)
				}
				return k.ID
			}
			plain := key(nil)
			id := &store.Identity{ID: uuid.Must(uuid.NewV7()), ExternalID: "bench", CreatedAt: now, UpdatedAt: now,
				Credits: &store.Credits{Remaining: 1 << 60, RefilledAt: now}}
			if err := s.CreateIdentity(ctx, id); err != nil {
				b.Fatal(err)
			}
			b.Run("ConsumeUse", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.ConsumeUse(ctx, plain); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("SpendUses", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.SpendUses(ctx, plain, 3, now); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("SpendCredits", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.SpendCredits(ctx, id.ID, 3, now); err != nil {
						b.Fatal(err)
					}
				}
			})
			daily := key(&store.Refill{Amount: 1000, Every: store.PeriodDay})
			at := now
			b.Run("SpendUses-refill", func(b *testing.B) {
				for b.Loop() {
					at = at.Add(24 * time.Hour)
					if _, err := s.SpendUses(ctx, daily, 3, at); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

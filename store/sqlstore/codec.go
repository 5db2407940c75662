package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
)

// rowScanner is the part of *sql.Row and *sql.Rows that scanKey needs.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanKey reads one row of keyColumns into a new Key.
func scanKey(sc rowScanner) (*store.Key, error) {
	var (
		k                               store.Key
		scopes, metadata, cidrs, limits []byte
		rateLimit, windowNs             int64
		remaining, refillAmount         sql.NullInt64
		refillEvery                     string
		refillDay                       int64
	)
	err := sc.Scan(&k.ID, &k.Name, &k.Description, &k.Owner, &k.Workspace, &k.Role,
		&scopes, &metadata, &k.Hash, &k.PepperID, &k.PrevHash, &k.PrevPepperID,
		timeDest{&k.PrevExpiresAt}, &k.Hint, &rateLimit, &windowNs, &remaining, &cidrs,
		timeDest{&k.CreatedAt}, timeDest{&k.UpdatedAt}, timeDest{&k.ExpiresAt},
		timeDest{&k.LastUsedAt}, timeDest{&k.RevokedAt}, &k.Version,
		timeDest{&k.DisabledAt}, timeDest{&k.ExpiryNotified}, &k.IdentityID,
		&limits, &refillAmount, &refillEvery, &refillDay, timeDest{&k.RefilledAt})
	if err != nil {
		return nil, err
	}
	if k.RateLimits, err = decodeRateLimits(limits); err != nil {
		return nil, err
	}
	if refillAmount.Valid {
		k.Refill = &store.Refill{Amount: refillAmount.Int64, Every: store.Period(refillEvery), Day: int(refillDay)}
	}
	k.RateLimit = int(rateLimit)
	k.RateWindow = time.Duration(windowNs)
	if remaining.Valid {
		n := remaining.Int64
		k.RemainingUses = &n
	}
	if len(k.PrevHash) == 0 {
		k.PrevHash = nil
	}
	if k.Hash == nil {
		k.Hash = []byte{}
	}
	if err := decodeJSON(scopes, &k.Scopes, "scopes"); err != nil {
		return nil, err
	}
	if err := decodeJSON(metadata, &k.Metadata, "metadata"); err != nil {
		return nil, err
	}
	if err := decodeJSON(cidrs, &k.AllowedCIDRs, "allowed_cidrs"); err != nil {
		return nil, err
	}
	return &k, nil
}

// decodeJSON decodes a nullable JSON column; NULL leaves v nil.
func decodeJSON[T any](src []byte, v *T, column string) error {
	if src == nil {
		return nil
	}
	if err := json.Unmarshal(src, v); err != nil {
		return fmt.Errorf("decode column %s: %w", column, err)
	}
	return nil
}

// encodeJSON returns the JSON text of v for a nullable column, or nil for a
// nil slice or map, so that nil and empty round-trip as they were.
func encodeJSON[T any](v T, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// keyArgs holds the column values of a key that need encoding, shared by
// insert and update.
type keyArgs struct {
	scopes, metadata, cidrs, limits any
	hash, prevHash                  any
	remaining, refillAmount         any
	refillEvery                     string
	refillDay                       int64
	// refillDue is the refill_due_at column, as the function refillDue
	// derives it.
	refillDue time.Time
}

// encodeKey encodes the columns of k that need more than passing the field.
func encodeKey(k *store.Key) (keyArgs, error) {
	var (
		a   keyArgs
		err error
	)
	if a.scopes, err = encodeJSON(k.Scopes, k.Scopes == nil); err != nil {
		return a, fmt.Errorf("encode scopes: %w", err)
	}
	if a.metadata, err = encodeJSON(k.Metadata, k.Metadata == nil); err != nil {
		return a, fmt.Errorf("encode metadata: %w", err)
	}
	if a.cidrs, err = encodeJSON(k.AllowedCIDRs, k.AllowedCIDRs == nil); err != nil {
		return a, fmt.Errorf("encode allowed CIDRs: %w", err)
	}
	a.hash = k.Hash
	if k.Hash == nil {
		a.hash = []byte{}
	}
	if len(k.PrevHash) > 0 {
		a.prevHash = k.PrevHash
	}
	if a.limits, err = encodeRateLimits(k.RateLimits); err != nil {
		return a, err
	}
	if k.RemainingUses != nil {
		a.remaining = *k.RemainingUses
	}
	if r := k.Refill; r != nil {
		a.refillAmount, a.refillEvery, a.refillDay = r.Amount, string(r.Every), int64(r.Day)
	}
	a.refillDue = refillDue(k.Refill, k.RefilledAt)
	return a, nil
}

// refillDue is the value of a due column (refill_due_at,
// credits_refill_due_at): when the next refill of a balance set at
// refilledAt is due, r.Next(refilledAt). It is the zero time (NULL) when
// there is no refill, and also when refilledAt is zero or the period
// unknown: a row with a refill but a NULL due time never takes the guarded
// UPDATE of a spend, whose locked read then refills it as due.
func refillDue(r *store.Refill, refilledAt time.Time) time.Time {
	if r == nil || refilledAt.IsZero() {
		return time.Time{}
	}
	return r.Next(refilledAt)
}

// insertArgs returns the arguments of queries.insert for k, in keyColumns
// order, with version 1.
func (s *Store) insertArgs(k *store.Key) ([]any, error) {
	a, err := encodeKey(k)
	if err != nil {
		return nil, err
	}
	d := s.dialect
	return []any{
		d.idArg(k.ID), k.Name, k.Description, k.Owner, k.Workspace, k.Role,
		a.scopes, a.metadata, a.hash, k.PepperID, a.prevHash, k.PrevPepperID,
		d.timeArg(k.PrevExpiresAt), k.Hint, int64(k.RateLimit), int64(k.RateWindow),
		a.remaining, a.cidrs,
		d.timeArg(k.CreatedAt), d.timeArg(k.UpdatedAt), d.timeArg(k.ExpiresAt),
		d.timeArg(k.LastUsedAt), d.timeArg(k.RevokedAt), int64(1),
		d.timeArg(k.DisabledAt), d.timeArg(k.ExpiryNotified), d.nullIDArg(k.IdentityID),
		a.limits, a.refillAmount, a.refillEvery, a.refillDay, d.timeArg(k.RefilledAt), d.timeArg(a.refillDue),
	}, nil
}

// updateArgs returns the arguments of queries.update for k.
func (s *Store) updateArgs(k *store.Key) ([]any, error) {
	a, err := encodeKey(k)
	if err != nil {
		return nil, err
	}
	d := s.dialect
	return []any{
		k.Name, k.Description, k.Owner, k.Workspace, k.Role,
		a.scopes, a.metadata, a.hash, k.PepperID, a.prevHash, k.PrevPepperID,
		d.timeArg(k.PrevExpiresAt), k.Hint, int64(k.RateLimit), int64(k.RateWindow),
		a.remaining, a.cidrs,
		d.timeArg(k.UpdatedAt), d.timeArg(k.ExpiresAt), d.timeArg(k.RevokedAt),
		d.timeArg(k.DisabledAt), d.timeArg(k.ExpiryNotified), d.nullIDArg(k.IdentityID),
		a.limits, a.refillAmount, a.refillEvery, a.refillDay, d.timeArg(k.RefilledAt), d.timeArg(a.refillDue),
		d.idArg(k.ID), k.Version,
	}, nil
}

// timeDest scans a nullable timestamp column into a time.Time in UTC, the
// zero time for NULL. It accepts what the drivers return: time.Time
// (PostgreSQL, MySQL with parseTime=true), or text (SQLite, MySQL without
// parseTime).
type timeDest struct{ t *time.Time }

// Scan implements sql.Scanner.
func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.t = time.Time{}
	case time.Time:
		*d.t = v.UTC()
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("cannot scan %T into a time", src)
	}
	return nil
}

// mysqlTimeLayout is MySQL's DATETIME text, as returned without
// parseTime=true (in the connection's time zone, UTC by default).
const mysqlTimeLayout = "2006-01-02 15:04:05.999999"

// parse reads the SQLite layout (RFC 3339) or MySQL's DATETIME text.
func (d timeDest) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if t, err = time.Parse(mysqlTimeLayout, s); err != nil {
			return fmt.Errorf("cannot parse time %q", s)
		}
	}
	*d.t = t.UTC()
	return nil
}

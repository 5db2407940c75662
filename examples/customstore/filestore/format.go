package filestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// The log is a text file of JSON lines. The first line is a header naming
// the format and its version; every line after it is one record:
//
//	{"format":"keygate-filestore","version":1}
//	{"op":"put","key":{"id":"0197…","name":"ci","hash":"q83v…","version":1,…}}
//	{"op":"touch","used":{"0197…":"2026-05-01T10:00:00Z"}}
//	{"op":"put","key":{"id":"0197…","name":"ci",…,"version":2}}
//	{"op":"delete","id":"0197…"}
//	{"op":"retire","retired":[{"hash":"q83v…","pepper_id":"2026-11","at":"2026-05-02T09:00:00Z"}]}
//
// A put carries the whole key as it now is, version included, so replaying
// the log is applying each record in turn, with no logic of its own. A
// record counts only once its line ends in '\n': the store writes a record
// and its newline in one call and fsyncs before it reports success.
const (
	formatName    = "keygate-filestore"
	formatVersion = 1
)

// header is the first line of every log.
type header struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// op names what a record does.
type op string

const (
	// opPut stores a key, replacing any key with its id.
	opPut op = "put"
	// opDelete removes the key with an id.
	opDelete op = "delete"
	// opTouch moves the LastUsedAt of some keys forward.
	opTouch op = "touch"
	// opRetire records hashes of retired secrets (store.Retirer).
	opRetire op = "retire"
)

// record is one change to the store: what the write path appends and the
// replay reads back, both then handing it to [state.apply].
type record struct {
	Op   op
	Key  *store.Key              // opPut; the record owns it
	ID   uuid.UUID               // opDelete
	Used map[uuid.UUID]time.Time // opTouch
	// Retired holds the tombstones of an opRetire, none of them empty;
	// the record owns them.
	Retired []store.RetiredHash
}

// wireRecord is a record as it is written to disk.
type wireRecord struct {
	Op      op                      `json:"op"`
	Key     *diskKey                `json:"key,omitempty"`
	ID      uuid.UUID               `json:"id,omitzero"`
	Used    map[uuid.UUID]time.Time `json:"used,omitempty"`
	Retired []diskRetired           `json:"retired,omitempty"`
}

// diskRetired is the file format of a [store.RetiredHash].
type diskRetired struct {
	Hash     []byte    `json:"hash"`
	PepperID string    `json:"pepper_id,omitempty"`
	At       time.Time `json:"at"`
}

// diskKey is the file format of a [store.Key]. It is a type of its own,
// with explicit names, so that renaming a field of store.Key in Go never
// silently changes what the file holds or makes old files unreadable.
//
// RemainingUses keeps its pointer: nil (unlimited) is omitted, while 0 (no
// uses left) is written as 0. A backend that stored 0 as "absent" would
// turn an exhausted key into an unlimited one.
type diskKey struct {
	ID             uuid.UUID         `json:"id"`
	Name           string            `json:"name"`
	Description    string            `json:"description,omitempty"`
	Owner          string            `json:"owner,omitempty"`
	Workspace      string            `json:"workspace,omitempty"`
	Role           string            `json:"role,omitempty"`
	Scopes         []string          `json:"scopes,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Hash           []byte            `json:"hash"`
	PepperID       string            `json:"pepper_id,omitempty"`
	PrevHash       []byte            `json:"prev_hash,omitempty"`
	PrevPepperID   string            `json:"prev_pepper_id,omitempty"`
	PrevExpiresAt  time.Time         `json:"prev_expires_at,omitzero"`
	Hint           string            `json:"hint,omitempty"`
	RateLimit      int               `json:"rate_limit,omitempty"`
	RateWindow     time.Duration     `json:"rate_window_ns,omitempty"`
	RateLimits     []diskRateLimit   `json:"rate_limits,omitempty"`
	RemainingUses  *int64            `json:"remaining_uses,omitempty"`
	Refill         *diskRefill       `json:"refill,omitempty"`
	RefilledAt     time.Time         `json:"refilled_at,omitzero"`
	AllowedCIDRs   []netip.Prefix    `json:"allowed_cidrs,omitempty"`
	CreatedAt      time.Time         `json:"created_at,omitzero"`
	UpdatedAt      time.Time         `json:"updated_at,omitzero"`
	ExpiresAt      time.Time         `json:"expires_at,omitzero"`
	LastUsedAt     time.Time         `json:"last_used_at,omitzero"`
	RevokedAt      time.Time         `json:"revoked_at,omitzero"`
	DisabledAt     time.Time         `json:"disabled_at,omitzero"`
	ExpiryNotified time.Time         `json:"expiry_notified,omitzero"`
	Version        int64             `json:"version"`
}

// diskRateLimit is the file format of a [store.RateLimit].
type diskRateLimit struct {
	Name     string        `json:"name"`
	Requests int           `json:"requests"`
	Window   time.Duration `json:"window_ns"`
	OnDemand bool          `json:"on_demand,omitempty"`
}

// diskRefill is the file format of a [store.Refill].
type diskRefill struct {
	Amount int64  `json:"amount"`
	Every  string `json:"every"`
	Day    int    `json:"day,omitempty"`
}

// encodeRecord returns rec as one line of JSON ending in '\n'. It only
// reads rec.
func encodeRecord(rec record) ([]byte, error) {
	w := wireRecord{Op: rec.Op, ID: rec.ID, Used: rec.Used}
	for _, r := range rec.Retired {
		w.Retired = append(w.Retired, diskRetired{Hash: r.Hash, PepperID: r.PepperID, At: r.At.UTC()})
	}
	if rec.Key != nil {
		d := toDisk(rec.Key)
		w.Key = &d
	}
	line, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("filestore: encode %s record: %w", rec.Op, err)
	}
	return append(line, '\n'), nil
}

// decodeRecord parses one line (without its '\n') into a record that
// owns all its memory.
func decodeRecord(line []byte) (record, error) {
	var w wireRecord
	if err := json.Unmarshal(line, &w); err != nil {
		return record{}, err
	}
	switch w.Op {
	case opPut:
		if w.Key == nil {
			return record{}, errors.New("put record without a key")
		}
		return record{Op: opPut, Key: w.Key.toKey()}, nil
	case opDelete:
		if w.ID == (uuid.UUID{}) {
			return record{}, errors.New("delete record without an id")
		}
		return record{Op: opDelete, ID: w.ID}, nil
	case opTouch:
		return record{Op: opTouch, Used: w.Used}, nil
	case opRetire:
		if len(w.Retired) == 0 {
			return record{}, errors.New("retire record without hashes")
		}
		rec := record{Op: opRetire, Retired: make([]store.RetiredHash, len(w.Retired))}
		for i, r := range w.Retired {
			if len(r.Hash) == 0 {
				return record{}, errors.New("retire record with an empty hash")
			}
			rec.Retired[i] = store.RetiredHash{Hash: r.Hash, PepperID: r.PepperID, At: r.At}
		}
		return rec, nil
	}
	return record{}, fmt.Errorf("unknown op %q", w.Op)
}

// encodeHeader returns the header line of a new log.
func encodeHeader() []byte {
	line, _ := json.Marshal(header{Format: formatName, Version: formatVersion}) // cannot fail
	return append(line, '\n')
}

// checkHeader reports whether line (without its '\n') is the header of a
// log this package reads.
func checkHeader(line []byte) error {
	var h header
	if err := json.Unmarshal(line, &h); err != nil || h.Format != formatName {
		return errors.New("not a filestore log (bad header)")
	}
	if h.Version != formatVersion {
		return fmt.Errorf("log format version %d, want %d", h.Version, formatVersion)
	}
	return nil
}

// toDisk converts k to its file form. Times are written in UTC so the
// file reads the same whatever the writer's time zone.
func toDisk(k *store.Key) diskKey {
	d := diskKey{
		ID:             k.ID,
		Name:           k.Name,
		Description:    k.Description,
		Owner:          k.Owner,
		Workspace:      k.Workspace,
		Role:           k.Role,
		Scopes:         k.Scopes,
		Metadata:       k.Metadata,
		Hash:           k.Hash,
		PepperID:       k.PepperID,
		PrevHash:       k.PrevHash,
		PrevPepperID:   k.PrevPepperID,
		PrevExpiresAt:  k.PrevExpiresAt.UTC(),
		Hint:           k.Hint,
		RateLimit:      k.RateLimit,
		RateWindow:     k.RateWindow,
		RemainingUses:  k.RemainingUses,
		RefilledAt:     k.RefilledAt.UTC(),
		AllowedCIDRs:   k.AllowedCIDRs,
		CreatedAt:      k.CreatedAt.UTC(),
		UpdatedAt:      k.UpdatedAt.UTC(),
		ExpiresAt:      k.ExpiresAt.UTC(),
		LastUsedAt:     k.LastUsedAt.UTC(),
		RevokedAt:      k.RevokedAt.UTC(),
		DisabledAt:     k.DisabledAt.UTC(),
		ExpiryNotified: k.ExpiryNotified.UTC(),
		Version:        k.Version,
	}
	for _, r := range k.RateLimits {
		d.RateLimits = append(d.RateLimits, diskRateLimit{Name: r.Name, Requests: r.Requests, Window: r.Window, OnDemand: r.OnDemand})
	}
	if r := k.Refill; r != nil {
		d.Refill = &diskRefill{Amount: r.Amount, Every: string(r.Every), Day: r.Day}
	}
	return d
}

// toKey converts d back. d was just decoded, so the key it returns shares
// memory with nothing else.
func (d *diskKey) toKey() *store.Key {
	k := &store.Key{
		ID:             d.ID,
		Name:           d.Name,
		Description:    d.Description,
		Owner:          d.Owner,
		Workspace:      d.Workspace,
		Role:           d.Role,
		Scopes:         d.Scopes,
		Metadata:       d.Metadata,
		Hash:           d.Hash,
		PepperID:       d.PepperID,
		PrevHash:       d.PrevHash,
		PrevPepperID:   d.PrevPepperID,
		PrevExpiresAt:  d.PrevExpiresAt,
		Hint:           d.Hint,
		RateLimit:      d.RateLimit,
		RateWindow:     d.RateWindow,
		RemainingUses:  d.RemainingUses,
		RefilledAt:     d.RefilledAt,
		AllowedCIDRs:   d.AllowedCIDRs,
		CreatedAt:      d.CreatedAt,
		UpdatedAt:      d.UpdatedAt,
		ExpiresAt:      d.ExpiresAt,
		LastUsedAt:     d.LastUsedAt,
		RevokedAt:      d.RevokedAt,
		DisabledAt:     d.DisabledAt,
		ExpiryNotified: d.ExpiryNotified,
		Version:        d.Version,
	}
	for _, r := range d.RateLimits {
		k.RateLimits = append(k.RateLimits, store.RateLimit{Name: r.Name, Requests: r.Requests, Window: r.Window, OnDemand: r.OnDemand})
	}
	if r := d.Refill; r != nil {
		k.Refill = &store.Refill{Amount: r.Amount, Every: store.Period(r.Every), Day: r.Day}
	}
	return k
}

package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// UsageKey is the [UsageCount.Kind] of the counts of a key, whose Subject
// is the key's id. [Store.Delete] of a key removes them with it. Other
// kinds (an identity's, say) are counts of other subjects, kept apart:
// nothing deletes them but [UsageRecorder.PurgeUsage].
const UsageKey = "key"

// Bounds of what a [UsageRecorder] must keep.
const (
	// MaxUsageWord is the longest [UsageCount.Kind] and
	// [UsageCount.Outcome], in bytes: short ASCII words such as "key"
	// and "rate_limited".
	MaxUsageWord = 32
	// MaxUsageSubjects is the most subjects one [UsageQuery] asks about.
	MaxUsageSubjects = 1000
)

// UsageCount is a number of verifications of one subject, with one
// outcome, within one hour: the unit a [UsageRecorder] keeps.
type UsageCount struct {
	// Kind says what Subject is: UsageKey for a key.
	Kind string
	// Subject is the id of what was verified, such as the key's.
	Subject uuid.UUID
	// Hour is the start of the hour the verifications were made in, in
	// UTC (a whole hour: no minutes, seconds or fraction).
	Hour time.Time
	// Outcome is the verdict, such as "valid" or "rate_limited".
	Outcome string
	// Count is the number of verifications: positive in what is recorded
	// and read.
	Count int64
}

// UsageQuery selects the counts [UsageRecorder.Usage] returns.
type UsageQuery struct {
	// Kind and Subjects select the subjects: 1 to MaxUsageSubjects ids of
	// one kind.
	Kind     string
	Subjects []uuid.UUID
	// From and To bound the hours: From <= Hour < To.
	From, To time.Time
}

// UsageRecorder is an optional interface of a [Store] that keeps usage
// history: how many verifications each key (or other subject) had, per
// hour and outcome, for usage reports and metering. The keygate Manager
// counts verifications in memory and adds them to the store in one batch
// per interval through it when the store has it; the stores of this module
// implement it, and storetest checks it when a store does. A Manager whose
// store lacks it records no usage, and its usage reports fail with
// keygate.ErrUnsupported.
//
// Every method must be safe for concurrent use, by several instances
// sharing the store too: counts from several writers add up.
type UsageRecorder interface {
	// RecordUsage adds each count to the stored count of its (Kind,
	// Subject, Hour, Outcome), which starts from zero when there is none,
	// in one write: all or nothing. Several counts of the same cell in
	// one call add up too. Counts of zero or less are ignored; an empty
	// slice writes nothing. Counts of subjects the store does not know
	// (a key deleted meanwhile) are stored all the same, until purged.
	RecordUsage(ctx context.Context, counts []UsageCount) error
	// Usage returns the stored counts matching q, in no particular order,
	// Hour in UTC; none for subjects without any.
	Usage(ctx context.Context, q UsageQuery) ([]UsageCount, error)
	// PurgeUsage removes every count whose Hour is before before, of
	// every kind and subject, and returns how many stored counts (cells)
	// it removed.
	PurgeUsage(ctx context.Context, before time.Time) (int64, error)
}

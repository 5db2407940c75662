package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// PepperUsage counts, for each pepper id, the keys that may still verify
// at now and need that pepper: keys not revoked nor expired (disabled
// ones included: they may be enabled again) whose hash was computed under
// it, and those whose previous secret, still within its grace period at
// now, was. A key counts once per pepper id it needs. A service checks
// it at start-up against the peppers it holds, so that a missing pepper
// is reported instead of every key silently failing to verify.
func (s *Store) PepperUsage(ctx context.Context, now time.Time) (map[string]int64, error) {
	at := s.dialect.timeArg(now)
	query := strings.ReplaceAll(`SELECT pepper_id, COUNT(*) FROM {keys}
	WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
	GROUP BY pepper_id
	UNION ALL
	SELECT prev_pepper_id, COUNT(*) FROM {keys}
	WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
	AND prev_hash IS NOT NULL AND prev_expires_at > ? AND prev_pepper_id <> pepper_id
	GROUP BY prev_pepper_id`, "{keys}", s.Table())
	rows, err := s.db.QueryContext(ctx, sqlx.Rebind(s.dialect.bindType(), query), at, at, at)
	if err != nil {
		return nil, s.fail("pepper usage", err)
	}
	defer rows.Close()
	usage := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, s.fail("pepper usage", err)
		}
		usage[id] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: pepper usage: %w", err)
	}
	return usage, nil
}

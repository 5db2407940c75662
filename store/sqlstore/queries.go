package sqlstore

import (
	"strings"

	"github.com/jmoiron/sqlx"
)

// The SQL of the store, written once with "?" placeholders and the table
// name {keys}; [newQueries] substitutes the prefixed table name and rebinds
// the placeholders for the dialect. Statements that differ between engines
// are grouped by dialect below the shared ones.
const (
	keyColumns = `id, name, description, owner, workspace, role, scopes, metadata,
	hash, pepper_id, prev_hash, prev_pepper_id, prev_expires_at, hint,
	rate_limit, rate_window_ns, remaining_uses, allowed_cidrs,
	created_at, updated_at, expires_at, last_used_at, revoked_at, version,
	disabled_at, expiry_notified_at, identity_id,
	rate_limits, refill_amount, refill_every, refill_day, refilled_at`

	// sqlInsertKey writes refill_due_at too, which only the store reads:
	// the next refill's time, derived from the refill and refilled_at.
	sqlInsertKey = `INSERT INTO {keys} (` + keyColumns + `, refill_due_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	sqlGetKey = `SELECT ` + keyColumns + ` FROM {keys} WHERE id = ?`

	// sqlGetKeyByHash may return two rows when one key's hash is
	// another's previous hash; the store prefers the hash match.
	sqlGetKeyByHash = `SELECT ` + keyColumns + ` FROM {keys} WHERE hash = ? OR prev_hash = ?`

	sqlListKeys = `SELECT ` + keyColumns + ` FROM {keys}`

	// sqlUpdateKey leaves id, created_at and last_used_at alone.
	sqlUpdateKey = `UPDATE {keys} SET name = ?, description = ?, owner = ?, workspace = ?,
	role = ?, scopes = ?, metadata = ?, hash = ?, pepper_id = ?, prev_hash = ?,
	prev_pepper_id = ?, prev_expires_at = ?, hint = ?, rate_limit = ?, rate_window_ns = ?,
	remaining_uses = ?, allowed_cidrs = ?, updated_at = ?, expires_at = ?, revoked_at = ?,
	disabled_at = ?, expiry_notified_at = ?, identity_id = ?, rate_limits = ?,
	refill_amount = ?, refill_every = ?, refill_day = ?, refilled_at = ?, refill_due_at = ?,
	version = version + 1
	WHERE id = ? AND version = ?`

	sqlGetVersion = `SELECT version FROM {keys} WHERE id = ?`

	// sqlRevokeKey revokes whatever the version, keeping the first
	// revocation time.
	sqlRevokeKey = `UPDATE {keys} SET revoked_at = COALESCE(revoked_at, ?), prev_hash = NULL,
	prev_pepper_id = '', prev_expires_at = NULL, updated_at = ?, version = version + 1
	WHERE id = ?`

	sqlDeleteKey = `DELETE FROM {keys} WHERE id = ?`

	sqlDeleteExercises = `DELETE FROM {prefix}exercises WHERE key_id = ?`

	// sqlDeleteUsage removes the usage counts of a subject: a deleted
	// key's, with subject_kind store.UsageKey.
	sqlDeleteUsage = `DELETE FROM {prefix}usage WHERE subject_kind = ? AND subject_id = ?`

	sqlConsumeUse = `UPDATE {keys} SET remaining_uses = remaining_uses - 1, version = version + 1
	WHERE id = ? AND remaining_uses > 0`

	// sqlRemainingUses gets the lock clause of the dialect appended.
	sqlRemainingUses = `SELECT remaining_uses FROM {keys} WHERE id = ?`

	// sqlSpendUses is the guarded UPDATE of SpendUses: it takes the cost
	// only from a balance that covers it and has no refill due (none, or
	// one due after now; a NULL due time is never after). Its arguments
	// are cost, id, cost, now.
	sqlSpendUses = `UPDATE {keys} SET remaining_uses = remaining_uses - ?, version = version + 1
	WHERE id = ? AND remaining_uses >= ? AND (refill_amount IS NULL OR refill_due_at > ?)`

	// sqlUsesState reads what SpendUses computes from when the guarded
	// UPDATE matched nothing; it gets the lock clause appended.
	sqlUsesState = `SELECT remaining_uses, refill_amount, refill_every, refill_day, refilled_at
	FROM {keys} WHERE id = ?`

	// sqlSetUses writes what SpendUses computed: balance, refilled_at, due.
	sqlSetUses = `UPDATE {keys} SET remaining_uses = ?, refilled_at = ?, refill_due_at = ?,
	version = version + 1 WHERE id = ?`
)

// PostgreSQL.
const (
	// pgNotify sends the id of a changed key to the change-feed channel;
	// PostgreSQL delivers it when the transaction commits.
	pgNotify = `SELECT pg_notify(?, ?)`

	pgTouchHead = `UPDATE {keys} AS k SET last_used_at = v.t FROM (VALUES `
	pgTouchRow  = `(?::uuid, ?::timestamptz)`
	pgTouchTail = `) AS v(id, t)
	WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.t)`
)

// SQLite.
const (
	sqliteTouchHead = `WITH v(id, t) AS (VALUES `
	sqliteTouchRow  = `(?, ?)`
	sqliteTouchTail = `) UPDATE {keys} SET last_used_at = v.t FROM v
	WHERE {keys}.id = v.id AND ({keys}.last_used_at IS NULL OR {keys}.last_used_at < v.t)`
)

// MySQL and MariaDB, which have neither UPDATE ... FROM nor a portable
// VALUES table constructor: the batch is a derived table of UNION ALL rows.
const (
	mysqlTouchHead  = `UPDATE {keys} AS k JOIN (`
	mysqlTouchFirst = `SELECT CAST(? AS BINARY(16)) AS id, CAST(? AS DATETIME(6)) AS t`
	mysqlTouchRow   = ` UNION ALL SELECT CAST(? AS BINARY(16)), CAST(? AS DATETIME(6))`
	mysqlTouchTail  = `) AS v ON k.id = v.id
	SET k.last_used_at = v.t
	WHERE k.last_used_at IS NULL OR k.last_used_at < v.t`
)

// Migration bookkeeping, one table per prefix.
const (
	sqliteCreateVersions = `CREATE TABLE IF NOT EXISTS {prefix}schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`
	pgCreateVersions = `CREATE TABLE IF NOT EXISTS {prefix}schema_migrations (
    version    BIGINT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`
	mysqlCreateVersions = `CREATE TABLE IF NOT EXISTS {prefix}schema_migrations (
    version    BIGINT NOT NULL PRIMARY KEY,
    applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`

	sqlAppliedVersions = `SELECT version FROM {prefix}schema_migrations`
	sqlInsertVersion   = `INSERT INTO {prefix}schema_migrations (version) VALUES (?)`

	// pgLock serializes concurrent Migrate calls until the transaction
	// ends; mysqlLock until mysqlUnlock or the session ends.
	pgLock      = `SELECT pg_advisory_xact_lock(?)`
	mysqlLock   = `SELECT GET_LOCK(?, ?)`
	mysqlUnlock = `SELECT RELEASE_LOCK(?)`
)

// touchBatch is the largest number of keys one TouchLastUsed statement
// updates (two placeholders each, far below every engine's limit); larger
// batches are split into several statements in one transaction.
const touchBatch = 500

// queries holds the statements of one Store, with its table names and
// placeholders in place.
type queries struct {
	insert, get, getByHash, list, update, getVersion, remove string
	revoke, removeExercises, removeUsage                     string
	identity                                                 identityQueries
	consume, remaining, notify                               string
	spend                                                    spendQueries
	touchHead, touchFirst, touchRow, touchTail               string
	createVersions, appliedVersions, insertVersion           string
	lock, unlock                                             string
}

// newQueries returns the statements for dialect d and table prefix p.
func newQueries(d Dialect, p string) queries {
	r := strings.NewReplacer("{keys}", p+"keys", "{prefix}", p)
	q := func(s string) string { return sqlx.Rebind(d.bindType(), r.Replace(s)) }
	qs := queries{
		insert:          q(sqlInsertKey),
		get:             q(sqlGetKey),
		getByHash:       q(sqlGetKeyByHash),
		list:            q(sqlListKeys),
		update:          q(sqlUpdateKey),
		getVersion:      q(sqlGetVersion),
		revoke:          q(sqlRevokeKey),
		removeExercises: q(sqlDeleteExercises),
		removeUsage:     q(sqlDeleteUsage),
		remove:          q(sqlDeleteKey),
		consume:         q(sqlConsumeUse),
		remaining:       q(sqlRemainingUses + d.lockClause()),
		spend:           newSpendQueries(d, q, sqlSpendUses, "remaining_uses", sqlRemainingUses, sqlUsesState, sqlSetUses),
		appliedVersions: q(sqlAppliedVersions),
		insertVersion:   q(sqlInsertVersion),
		identity:        newIdentityQueries(d, q),
	}
	// The touch fragments are joined into one statement per batch and
	// rebound then, so they keep "?" here.
	switch d {
	case Postgres:
		qs.notify = q(pgNotify)
		qs.touchHead, qs.touchFirst, qs.touchRow, qs.touchTail = r.Replace(pgTouchHead), pgTouchRow, ", "+pgTouchRow, r.Replace(pgTouchTail)
		qs.createVersions = r.Replace(pgCreateVersions)
		qs.lock = q(pgLock)
	case SQLite:
		qs.touchHead, qs.touchFirst, qs.touchRow, qs.touchTail = r.Replace(sqliteTouchHead), sqliteTouchRow, ", "+sqliteTouchRow, r.Replace(sqliteTouchTail)
		qs.createVersions = r.Replace(sqliteCreateVersions)
	case MySQL:
		qs.touchHead, qs.touchFirst, qs.touchRow, qs.touchTail = r.Replace(mysqlTouchHead), mysqlTouchFirst, mysqlTouchRow, r.Replace(mysqlTouchTail)
		qs.createVersions = r.Replace(mysqlCreateVersions)
		qs.lock, qs.unlock = q(mysqlLock), q(mysqlUnlock)
	}
	return qs
}

// touchQuery returns the statement that sets the last-used times of n keys.
func (qs *queries) touchQuery(d Dialect, n int) string {
	var b strings.Builder
	b.Grow(len(qs.touchHead) + len(qs.touchFirst) + (n-1)*len(qs.touchRow) + len(qs.touchTail))
	b.WriteString(qs.touchHead)
	b.WriteString(qs.touchFirst)
	for range n - 1 {
		b.WriteString(qs.touchRow)
	}
	b.WriteString(qs.touchTail)
	return sqlx.Rebind(d.bindType(), b.String())
}

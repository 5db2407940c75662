package sqlstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// Dialect names the SQL engine a [Store] speaks. The zero value means
// "infer it from the driver name of [Config.DB]"; see [Config.Dialect].
// A Dialect is a plain value, safe to copy and share.
type Dialect int

// The supported engines.
const (
	// SQLite is SQLite 3.35 or later, which has RETURNING and UPDATE
	// FROM; modernc.org/sqlite (driver name "sqlite") is pure Go and needs
	// no cgo.
	SQLite Dialect = iota + 1
	// Postgres is PostgreSQL 12 or later, for example through
	// github.com/jackc/pgx/v5/stdlib (driver name "pgx").
	Postgres
	// MySQL is MySQL 8.0 or MariaDB 10.5 or later, through
	// github.com/go-sql-driver/mysql (driver name "mysql").
	MySQL
)

// String returns the dialect's lower-case name: "sqlite", "postgres",
// "mysql", or "Dialect(n)" for an unknown value.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	case MySQL:
		return "mysql"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// dialectFor infers the dialect from a database/sql driver name.
func dialectFor(driverName string) (Dialect, error) {
	switch driverName {
	case "sqlite", "sqlite3":
		return SQLite, nil
	case "pgx", "pgx/v5", "postgres", "postgresql":
		return Postgres, nil
	case "mysql":
		return MySQL, nil
	}
	return 0, fmt.Errorf("%w: cannot infer a dialect from driver %q; set Config.Dialect", ErrConfig, driverName)
}

// bindType is the placeholder style of the dialect, for sqlx.Rebind.
func (d Dialect) bindType() int {
	if d == Postgres {
		return sqlx.DOLLAR
	}
	return sqlx.QUESTION
}

// idArg is the query argument for a key id: a native uuid on PostgreSQL,
// its 16 bytes elsewhere (BLOB on SQLite, BINARY(16) on MySQL), so ids sort
// in the same byte order on every engine.
func (d Dialect) idArg(id uuid.UUID) any {
	if d == Postgres {
		return id.String()
	}
	return id[:]
}

// nullIDArg is idArg, or NULL for the zero UUID: an optional reference,
// such as a key's identity.
func (d Dialect) nullIDArg(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return d.idArg(id)
}

// shareLockClause is appended to a SELECT inside a write transaction to
// lock the rows read against deletion and change until the transaction
// ends, without blocking other readers that share the lock; SQLite locks
// the whole database on the first write instead.
func (d Dialect) shareLockClause() string {
	switch d {
	case Postgres:
		return " FOR SHARE"
	case MySQL:
		// MariaDB knows no FOR SHARE; MySQL 8 knows both.
		return " LOCK IN SHARE MODE"
	}
	return ""
}

// sqliteTimeLayout stores SQLite times as fixed-width UTC text with
// microseconds, which sorts and compares correctly as a string and round
// trips exactly.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// timeArg is the query argument for a time: NULL for the zero time,
// otherwise the time in UTC truncated to the microsecond, which every
// engine stores exactly.
func (d Dialect) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if d == SQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// lockClause is appended to a SELECT inside a write transaction to lock the
// row read; SQLite locks the whole database on the first write instead.
func (d Dialect) lockClause() string {
	if d == SQLite {
		return ""
	}
	return " FOR UPDATE"
}

// isUnique reports whether err is a unique-constraint violation, on the
// engine's own error code. The library imports no driver, so it looks for
// small interfaces the driver errors implement:
//
//   - PostgreSQL (pgx's *pgconn.PgError, lib/pq's *pq.Error): a
//     SQLState() string method returning "23505".
//   - SQLite (modernc.org/sqlite's *sqlite.Error): a Code() int method
//     returning SQLITE_CONSTRAINT_UNIQUE (2067) or
//     SQLITE_CONSTRAINT_PRIMARYKEY (1555); drivers without it are matched
//     on SQLite's own message "UNIQUE constraint failed".
//   - MySQL (*mysql.MySQLError) has only a Number field and no method, so
//     its message is matched: the driver formats it "Error 1062 ...".
func (d Dialect) isUnique(err error) bool {
	switch d {
	case Postgres:
		var e interface{ SQLState() string }
		return errors.As(err, &e) && e.SQLState() == "23505"
	case SQLite:
		var e interface{ Code() int }
		if errors.As(err, &e) {
			return e.Code() == 2067 || e.Code() == 1555
		}
		return strings.Contains(err.Error(), "UNIQUE constraint failed")
	case MySQL:
		return mysqlErrorNumber(err) == 1062
	}
	return false
}

// isUndefinedTable reports whether err says that a table does not exist
// (PostgreSQL 42P01, MySQL 1146, SQLite "no such table").
func (d Dialect) isUndefinedTable(err error) bool {
	switch d {
	case Postgres:
		var e interface{ SQLState() string }
		return errors.As(err, &e) && e.SQLState() == "42P01"
	case SQLite:
		return strings.Contains(err.Error(), "no such table")
	case MySQL:
		return mysqlErrorNumber(err) == 1146
	}
	return false
}

// isRetryable reports whether err aborted a statement or transaction that
// may succeed if run again from the start: a deadlock or serialization
// failure (PostgreSQL 40P01, 40001; MySQL 1213) or, on SQLite, a busy
// database that outlasted the busy timeout or a stale snapshot (SQLITE_BUSY
// and its extended codes).
func (d Dialect) isRetryable(err error) bool {
	switch d {
	case Postgres:
		var e interface{ SQLState() string }
		return errors.As(err, &e) && (e.SQLState() == "40P01" || e.SQLState() == "40001")
	case SQLite:
		var e interface{ Code() int }
		return errors.As(err, &e) && e.Code()&0xff == 5
	case MySQL:
		return mysqlErrorNumber(err) == 1213
	}
	return false
}

// mysqlErrorNumber returns the server error number of the first error in
// err's chain whose message has the form "Error NNNN ...", as
// go-sql-driver/mysql formats *mysql.MySQLError, or 0.
func mysqlErrorNumber(err error) int {
	for ; err != nil; err = errors.Unwrap(err) {
		rest, ok := strings.CutPrefix(err.Error(), "Error ")
		if !ok {
			continue
		}
		end := strings.IndexAny(rest, " :")
		if end <= 0 {
			continue
		}
		if n, convErr := strconv.Atoi(rest[:end]); convErr == nil {
			return n
		}
	}
	return 0
}

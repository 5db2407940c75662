package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL, as "pgx"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // SQLite, pure Go, as "sqlite"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore"
	"github.com/keygate/keygate/store/sqlstore/pgnotify"
)

// storage is the opened store, what it runs on, and its change feed.
type storage struct {
	store  *sqlstore.Store
	db     *sqlx.DB
	feed   store.ChangeFeed // nil but on PostgreSQL
	engine string           // "sqlite", "postgres" or "mysql"
	// where names the database for people, never with a password.
	where string
}

// sqliteDSN is the DSN sqlstore recommends for a SQLite file.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
}

// openStorage opens and migrates the store that -db names: a postgres://
// or postgresql:// URL, a mysql:// URL, or else a SQLite file path.
func openStorage(ctx context.Context, db, tablePrefix string) (*storage, error) {
	s := &storage{}
	var driver, dsn string
	var dialect sqlstore.Dialect
	switch {
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		s.engine, driver, dsn, dialect = "postgres", "pgx", db, sqlstore.Postgres
		s.where = redactURL(db)
	case strings.HasPrefix(db, "mysql://"):
		var err error
		if dsn, err = mysqlDSN(db); err != nil {
			return nil, err
		}
		s.engine, driver, dialect = "mysql", "mysql", sqlstore.MySQL
		s.where = redactURL(db)
	case strings.Contains(db, "://"):
		return nil, errors.New("-db: a URL must start with postgres://, postgresql:// or mysql://; anything else is a SQLite file path")
	case db == "":
		return nil, errors.New("-db is empty")
	default:
		s.engine, driver, dsn, dialect = "sqlite", "sqlite", sqliteDSN(db), sqlstore.SQLite
		s.where = db
	}
	var err error
	if s.db, err = sqlx.Open(driver, dsn); err != nil {
		return nil, fmt.Errorf("open %s: %w", s.where, err)
	}
	if s.store, err = sqlstore.New(sqlstore.Config{DB: s.db, Dialect: dialect, TablePrefix: tablePrefix}); err == nil {
		err = s.store.Migrate(ctx)
	}
	if err != nil {
		s.db.Close()
		// Driver errors name the host and user, never the password.
		return nil, fmt.Errorf("storage %s: %w", s.where, err)
	}
	if s.engine == "postgres" {
		if s.feed, err = pgnotify.New(pgnotify.Config{ConnString: db, Channel: s.store.Channel()}); err != nil {
			s.close()
			return nil, fmt.Errorf("change feed: %w", err)
		}
	}
	return s, nil
}

// close releases the store and the database handle.
func (s *storage) close() {
	_ = s.store.Close()
	_ = s.db.Close()
}

// mysqlDSN converts mysql://user:pass@host:port/db?param=value into the
// go-sql-driver/mysql form user:pass@tcp(host:port)/db?parseTime=true&...
func mysqlDSN(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error would quote the URL, password included.
		return "", errors.New("-db: the mysql:// URL does not parse")
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	if cfg.User == "" && cfg.Passwd != "" {
		// The driver's DSN would drop the password and connect without it.
		return "", errors.New("-db: the mysql:// URL has a password but no user")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "3306")
	}
	if h, _, err := net.SplitHostPort(host); err != nil || h == "" {
		// No host, or one such as "]" that the driver would mangle.
		return "", errors.New("-db: the mysql:// URL has no host")
	}
	cfg.Net, cfg.Addr = "tcp", host
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return "", errors.New("-db: the mysql:// URL must name one database, as in mysql://user@host/keys")
	}
	cfg.ParseTime = true
	for name, vs := range u.Query() {
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params[name] = vs[len(vs)-1]
	}
	// FormatDSN then ParseDSN applies the driver's own parameters
	// (tls, timeout, ...) and rejects bad ones.
	parsed, err := mysql.ParseDSN(cfg.FormatDSN())
	if err != nil {
		// The driver's error may quote the DSN, password included.
		return "", errors.New("-db: the mysql:// URL has a parameter the MySQL driver does not accept")
	}
	return parsed.FormatDSN(), nil
}

// redactURL returns raw without its password and query, for logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.Fragment = "", ""
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

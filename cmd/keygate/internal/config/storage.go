package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL, as "pgx"
	"github.com/jmoiron/sqlx"
	"github.com/spf13/pflag"
	_ "modernc.org/sqlite" // SQLite, pure Go, as "sqlite"

	"github.com/keygate/keygate/store/sqlstore"
)

// StorageOptions name the database: the --db and --table-prefix flags.
type StorageOptions struct {
	// DB is a postgres://, postgresql:// or mysql:// URL, a sqlite: URL,
	// or a SQLite file path.
	DB string
	// TablePrefix starts the name of every table.
	TablePrefix string
}

// AddFlags adds --db and --table-prefix to fs.
func (o *StorageOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DB, "db", "keygate.db", "the database: a SQLite file path (or sqlite:PATH), or a postgres://, postgresql:// or mysql:// URL")
	fs.StringVar(&o.TablePrefix, "table-prefix", "keygate_", "prefix of the table names, so that several services can share a database")
}

// Engines, as Storage.Engine names them.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
	MySQL    = "mysql"
)

// Target is a parsed --db: the engine, the driver and DSN to open it with,
// and a name for people that never holds a password.
type Target struct {
	Engine string
	Driver string
	DSN    string
	// URL is the postgres:// URL as given, for the change feed's own
	// connection; "" for other engines.
	URL string
	// Where names the database in logs and errors: the URL without its
	// password and query, or the SQLite file's path.
	Where string
	// Path is the SQLite file's path; "" for other engines.
	Path    string
	dialect sqlstore.Dialect
}

// scheme matches the start of a URL: letters, then "://" or ":".
var scheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):`)

// dsnWord matches a libpq keyword=value pair such as "host=db".
var dsnWord = regexp.MustCompile(`(^|\s)[a-z_]+=`)

// ParseDB parses --db. It takes a postgres://, postgresql:// or mysql://
// URL, a sqlite: URL (sqlite:keys.db, sqlite:///var/lib/keys.db) or a
// SQLite file path, and refuses, with the reason, what looks like a
// mistake that would otherwise quietly run on a new SQLite file: a libpq
// or Go MySQL DSN, a URL of another scheme, or an engine name missing its
// "://". Errors never quote a password.
func ParseDB(db string) (*Target, error) {
	t := &Target{}
	lower := strings.ToLower(db)
	m := scheme.FindStringSubmatch(db)
	switch {
	case db == "":
		return nil, errors.New("--db is empty: give a SQLite file path or a database URL")
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		u, err := url.Parse(db)
		if err != nil || u.Host == "" {
			return nil, errors.New("--db: the postgres:// URL does not parse or names no host, as in postgres://user@host:5432/keys")
		}
		t.Engine, t.Driver, t.DSN, t.URL, t.dialect = Postgres, "pgx", db, db, sqlstore.Postgres
		t.Where = redactURL(db)
	case strings.HasPrefix(lower, "mysql://"), strings.HasPrefix(lower, "mariadb://"):
		dsn, err := mysqlDSN(db)
		if err != nil {
			return nil, err
		}
		t.Engine, t.Driver, t.DSN, t.dialect = MySQL, "mysql", dsn, sqlstore.MySQL
		t.Where = redactURL(db)
	case strings.HasPrefix(lower, "sqlite:"):
		path := db[len("sqlite:"):]
		if strings.HasPrefix(path, "//") {
			u, err := url.Parse(db)
			if err != nil || (u.Host != "" && u.Host != "localhost") || u.RawQuery != "" {
				return nil, errors.New("--db: a sqlite: URL names a local file, as in sqlite:keys.db or sqlite:///var/lib/keygate/keys.db")
			}
			path = u.Path
		}
		if path == "" || strings.ContainsAny(path, "?#") {
			return nil, errors.New("--db: a sqlite: URL names a local file, as in sqlite:keys.db or sqlite:///var/lib/keygate/keys.db")
		}
		return sqliteTarget(t, path), nil
	case strings.Contains(db, "@tcp(") || strings.Contains(db, "@unix("):
		return nil, errors.New("--db looks like a Go MySQL DSN (user@tcp(host)/db): give a URL instead, such as mysql://user@host:3306/keys")
	case m != nil && slices.Contains([]string{"postgres", "postgresql", "mysql", "mariadb"}, strings.ToLower(m[1])):
		return nil, fmt.Errorf("--db: a %s URL starts with %s://, as in %s://user@host/keys", strings.ToLower(m[1]), strings.ToLower(m[1]), strings.ToLower(m[1]))
	case m != nil && len(m[1]) > 1:
		// A scheme of another kind (http:, redis:, postgres:/x, file:…):
		// never a SQLite path (one-letter schemes are Windows drives).
		return nil, fmt.Errorf("--db: %q URLs are not supported: use postgres://, postgresql://, mysql:// or sqlite:, or a SQLite file path", strings.ToLower(m[1]))
	case dsnWord.MatchString(db):
		return nil, errors.New("--db looks like a key=value DSN (host=… user=…): give a URL instead, such as postgres://user@host:5432/keys")
	case strings.HasPrefix(lower, "postgres") || strings.HasPrefix(lower, "mysql") || strings.HasPrefix(lower, "mariadb") || strings.Contains(db, "://"):
		return nil, errors.New("--db looks like a database URL with a typo: URLs start with postgres://, postgresql:// or mysql://; anything else is a SQLite file path")
	default:
		return sqliteTarget(t, db), nil
	}
	return t, nil
}

// sqliteTarget fills t for the SQLite file at path.
func sqliteTarget(t *Target, path string) *Target {
	t.Engine, t.Driver, t.DSN, t.dialect = SQLite, "sqlite", sqliteDSN(path), sqlstore.SQLite
	t.Where, t.Path = path, path
	return t
}

// sqliteDSN is the DSN sqlstore recommends for a SQLite file.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
}

// Storage is an opened database and its key store.
type Storage struct {
	*Target
	Store *sqlstore.Store
	DB    *sqlx.DB
}

// Open opens the store that o names, without migrating it. It checks
// that the database answers.
func Open(ctx context.Context, o StorageOptions) (*Storage, error) {
	t, err := ParseDB(o.DB)
	if err != nil {
		return nil, err
	}
	s := &Storage{Target: t}
	if s.DB, err = sqlx.Open(t.Driver, t.DSN); err != nil {
		return nil, fmt.Errorf("open %s: %w", t.Where, err)
	}
	if err := s.DB.PingContext(ctx); err != nil {
		s.DB.Close()
		// Driver errors name the host and user, never the password.
		return nil, fmt.Errorf("database %s: %w", t.Where, err)
	}
	if s.Store, err = sqlstore.New(sqlstore.Config{DB: s.DB, Dialect: t.dialect, TablePrefix: o.TablePrefix}); err != nil {
		s.DB.Close()
		return nil, fmt.Errorf("database %s: %w", t.Where, err)
	}
	return s, nil
}

// Migrate brings the schema up to date.
func (s *Storage) Migrate(ctx context.Context) error {
	if err := s.Store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", s.Where, err)
	}
	return nil
}

// Close releases the store and the database handle.
func (s *Storage) Close() {
	_ = s.Store.Close()
	_ = s.DB.Close()
}

// mysqlDSN converts mysql://user:pass@host:port/db?param=value into the
// go-sql-driver/mysql form user:pass@tcp(host:port)/db?parseTime=true&...
func mysqlDSN(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error would quote the URL, password included.
		return "", errors.New("--db: the mysql:// URL does not parse")
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	if cfg.User == "" && cfg.Passwd != "" {
		// The driver's DSN would drop the password and connect without it.
		return "", errors.New("--db: the mysql:// URL has a password but no user")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "3306")
	}
	if h, _, err := net.SplitHostPort(host); err != nil || h == "" {
		// No host, or one such as "]" that the driver would mangle.
		return "", errors.New("--db: the mysql:// URL has no host")
	}
	cfg.Net, cfg.Addr = "tcp", host
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return "", errors.New("--db: the mysql:// URL must name one database, as in mysql://user@host/keys")
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
		return "", errors.New("--db: the mysql:// URL has a parameter the MySQL driver does not accept")
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

// RedactURL returns a URL without its password and query, for logs; see
// redactURL.
func RedactURL(raw string) string { return redactURL(raw) }

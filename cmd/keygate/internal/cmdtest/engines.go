package cmdtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql" // MySQL, as "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL, as "pgx"
	"github.com/jmoiron/sqlx"
)

// Engine is a database to run a command against.
type Engine struct {
	// Name is sqlite, postgres or mysql.
	Name string
	// DB is the --db to give, Prefix the --table-prefix.
	DB, Prefix string
}

// Args returns --db and --table-prefix for e.
func (e Engine) Args() []string { return []string{"--db", e.DB, "--table-prefix", e.Prefix} }

// Engines returns a database of each engine at hand, for t: SQLite
// always, PostgreSQL and MySQL when $KEYGATE_TEST_POSTGRES_DSN and
// $KEYGATE_TEST_MYSQL_DSN name one. Each has tables of its own, under a
// random prefix, dropped when the test ends.
func Engines(t *testing.T) []Engine {
	t.Helper()
	out := []Engine{{Name: "sqlite", DB: filepath.Join(t.TempDir(), "keys.db"), Prefix: prefix()}}
	for _, e := range []struct{ name, env, driver string }{
		{"postgres", "KEYGATE_TEST_POSTGRES_DSN", "pgx"},
		{"mysql", "KEYGATE_TEST_MYSQL_DSN", "mysql"},
	} {
		dsn := os.Getenv(e.env)
		if dsn == "" {
			continue
		}
		db := dsn
		if e.name == "mysql" {
			db = mysqlURL(dsn)
		}
		p := prefix()
		t.Cleanup(func() { drop(t, e.driver, dsn, p) })
		out = append(out, Engine{Name: e.name, DB: db, Prefix: p})
	}
	return out
}

// prefix returns a random table prefix.
func prefix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "cli" + hex.EncodeToString(b) + "_"
}

// mysqlURL turns a go-sql-driver DSN user@tcp(host:port)/db?... into a
// mysql:// URL.
func mysqlURL(dsn string) string {
	user, rest, _ := strings.Cut(dsn, "@tcp(")
	host, rest, _ := strings.Cut(rest, ")/")
	db, _, _ := strings.Cut(rest, "?")
	return "mysql://" + user + "@" + host + "/" + db
}

// drop drops the tables under prefix.
func drop(t *testing.T, driver, dsn, prefix string) {
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		t.Error(err)
		return
	}
	defer db.Close()
	for _, table := range []string{"exercises", "keys", "schema_migrations"} {
		if _, err := db.Exec("DROP TABLE IF EXISTS " + prefix + table); err != nil {
			t.Errorf("drop %s%s: %v", prefix, table, err)
		}
	}
}

package cmdtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/cmd/keygate/internal/testenv"
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
	for _, e := range []struct{ name, env string }{
		{"postgres", "KEYGATE_TEST_POSTGRES_DSN"},
		{"mysql", "KEYGATE_TEST_MYSQL_DSN"},
	} {
		dsn := os.Getenv(e.env)
		if dsn == "" {
			continue
		}
		db := dsn
		if e.name == "mysql" {
			db = testenv.MySQLURL(dsn)
		}
		p := prefix()
		t.Cleanup(func() { testenv.DropTables(t, e.name, dsn, p) })
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

// Package testenv is what the keygate command's tests share: the binary
// built from source, free ports, the README's sections they run as
// written, and the test databases' URLs and tables. It is test support,
// imported only by tests.
package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/go-sql-driver/mysql" // MySQL, as "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL, as "pgx"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate/store/sqlstore"
)

// Binary builds the keygate command from source into a temporary
// directory of t and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keygate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/keygate/keygate/cmd/keygate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// FreePort returns a TCP port of 127.0.0.1 nothing listens on at the
// moment.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// ReadmeSection returns the text of the repository's README.md between
// "<!-- name:start -->" and "<!-- name:end -->", failing t when there is
// none.
func ReadmeSection(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test's directory: where is the repository's README.md?")
		}
		dir = parent
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- "+name+":start -->")
	section, _, ok2 := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok || !ok2 {
		t.Fatalf("README.md has no %s section between its markers", name)
	}
	return section
}

// CodeBlocks returns the fenced code blocks of text of the given
// language ("sh", "ini"), in order.
func CodeBlocks(text, lang string) []string {
	var blocks []string
	for {
		_, rest, ok := strings.Cut(text, "```"+lang+"\n")
		if !ok {
			return blocks
		}
		block, after, ok := strings.Cut(rest, "```")
		if !ok {
			return blocks
		}
		blocks, text = append(blocks, block), after
	}
}

// MySQLURL turns a go-sql-driver DSN user@tcp(host:port)/db?... (the
// form of $KEYGATE_TEST_MYSQL_DSN) into the mysql:// URL --db takes.
func MySQLURL(dsn string) string {
	user, rest, _ := strings.Cut(dsn, "@tcp(")
	host, rest, _ := strings.Cut(rest, ")/")
	db, _, _ := strings.Cut(rest, "?")
	return "mysql://" + user + "@" + host + "/" + db
}

// DropTables drops every table of a store under prefix in the database
// of engine ("postgres" or "mysql") at dsn (the test variables' form).
func DropTables(t testing.TB, engine, dsn, prefix string) {
	driver := map[string]string{"postgres": "pgx", "mysql": "mysql"}[engine]
	dialect := map[string]sqlstore.Dialect{"postgres": sqlstore.Postgres, "mysql": sqlstore.MySQL}[engine]
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		t.Error(err)
		return
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: dialect, TablePrefix: prefix})
	if err != nil {
		t.Error(err)
		return
	}
	for _, table := range st.Tables() {
		if _, err := db.Exec("DROP TABLE IF EXISTS " + table); err != nil {
			t.Errorf("drop %s: %v", table, err)
		}
	}
}

// Buffer is a bytes.Buffer safe for concurrent use: the output of a
// server a test runs, read by the test while the server writes.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

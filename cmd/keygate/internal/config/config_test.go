package config

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// base64Std encodes b in standard base64.
func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestParsePeppers(t *testing.T) {
	t.Parallel()
	k32 := base64Std(bytes.Repeat([]byte{1}, 32))
	k16 := base64Std(bytes.Repeat([]byte{1}, 16))
	got, err := ParsePeppers("new:" + k32 + ", " + k32)
	if err != nil || len(got) != 2 || got[0].ID != "new" || !strings.HasPrefix(got[1].ID, "p") || len(got[1].ID) != 11 {
		t.Fatalf("parsePeppers = %v, %v", got, err)
	}
	again, _ := ParsePeppers(k32)
	if again[0].ID != got[1].ID {
		t.Error("a derived pepper ID is not the same on every instance")
	}
	for _, bad := range []string{"", "id:" + k16, "id:not base64!", ","} {
		_, err := ParsePeppers(bad)
		if err == nil || strings.Contains(err.Error(), k16) {
			t.Errorf("ParsePeppers(%q) = %v, want an error that quotes no key", bad, err)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "peppers")
	os.WriteFile(file, []byte("# current first\nnew:"+k32+"\n\nold:"+k32+"\n"), 0o600)
	ps, err := readPepperFile(file)
	if err != nil || len(ps) != 2 || ps[0].ID != "new" || ps[1].ID != "old" {
		t.Errorf("readPepperFile = %v, %v", ps, err)
	}
	// A generated pepper is made once and then read back.
	gen := filepath.Join(dir, "k.db.pepper")
	p1, err := generatedPepper(gen)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := generatedPepper(gen)
	if err != nil || p1[0].ID != p2[0].ID || !bytes.Equal(p1[0].Key, p2[0].Key) {
		t.Error("a generated pepper changed on the second start")
	}
	// Both sources at once are refused.
	o := PepperOptions{File: file}
	if _, _, err := LoadHasher(o, &Target{Engine: SQLite}, func(string) string { return k32 }, true); err == nil {
		t.Error("LoadHasher accepted both --pepper-file and $KEYGATE_PEPPER")
	}
}

func TestMySQLDSN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"mysql://root@127.0.0.1:3306/keys":          "root@tcp(127.0.0.1:3306)/keys?parseTime=true",
		"mysql://u:p%40ss@db.internal/keys":         "u:p@ss@tcp(db.internal:3306)/keys?parseTime=true",
		"mysql://u@[::1]:3307/keys?tls=skip-verify": "u@tcp([::1]:3307)/keys?parseTime=true&tls=skip-verify",
		"mysql://u@host/keys?timeout=5s&loc=UTC":    "u@tcp(host:3306)/keys?parseTime=true&timeout=5s",
	} {
		got, err := mysqlDSN(in)
		if err != nil || got != want {
			t.Errorf("mysqlDSN(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"mysql://u:secret@host", "mysql://u:secret@/keys", "mysql://u:secret@host/a/b", "mysql://u:secret@host/keys?timeout=soon", "mysql://:secret@host/keys",
		"mysql://u:secret@]/keys", "mysql://u:secret@:3306/keys"} {
		if _, err := mysqlDSN(bad); err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("mysqlDSN(%q) = %v, want an error without the password", bad, err)
		}
	}
	if got := redactURL("postgres://u:secret@h/db?sslmode=require&password=x"); got != "postgres://u@h/db" {
		t.Errorf("redactURL = %q", got)
	}
}

// TestParseDB: --db takes URLs of the known engines and SQLite paths, and
// refuses what would otherwise quietly start on a new SQLite file: a
// key=value or Go MySQL DSN, another scheme, a URL with a typo.
func TestParseDB(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]struct{ engine, where string }{
		"keygate.db":                            {SQLite, "keygate.db"},
		"./data/keys.db":                        {SQLite, "./data/keys.db"},
		"/var/lib/keygate/keys.db":              {SQLite, "/var/lib/keygate/keys.db"},
		"sqlite:keys.db":                        {SQLite, "keys.db"},
		"sqlite:///var/lib/keygate/keys.db":     {SQLite, "/var/lib/keygate/keys.db"},
		"SQLite:keys.db":                        {SQLite, "keys.db"},
		"postgres://u:secret@db:5432/keys":      {Postgres, "postgres://u@db:5432/keys"},
		"postgresql://u@db/keys?sslmode=verify": {Postgres, "postgresql://u@db/keys"},
		"mysql://u:secret@db:3306/keys":         {MySQL, "mysql://u@db:3306/keys"},
		"mariadb://u:secret@db/keys":            {MySQL, "mariadb://u@db/keys"},
	} {
		got, err := ParseDB(in)
		if err != nil || got.Engine != want.engine || got.Where != want.where {
			t.Errorf("ParseDB(%q) = %+v, %v; want %s at %s", in, got, err, want.engine, want.where)
		}
	}
	for in, reason := range map[string]string{
		"":                                       "empty",
		"host=127.0.0.1 user=postgres dbname=kg": "key=value DSN",
		"dbname=kg":                              "key=value DSN",
		"user=u password=secret host=db":         "key=value DSN",
		"root:secret@tcp(127.0.0.1:3306)/kg":     "Go MySQL DSN",
		"postgres//oops":                         "typo",
		"postgres:/db/keys":                      "starts with postgres://",
		"mysql:secret@db":                        "starts with mysql://",
		"redis://127.0.0.1:6379":                 `"redis" URLs are not supported`,
		"file:keys.db":                           `"file" URLs are not supported`,
		"https://db.example/keys":                `"https" URLs are not supported`,
		"postgres://u:secret@/keys":              "names no host",
		"sqlite://remote-host/keys.db":           "names a local file",
		"sqlite:":                                "names a local file",
		"sqlite:keys.db?mode=ro":                 "names a local file",
		"mysql://u:secret@db":                    "one database",
	} {
		got, err := ParseDB(in)
		if err == nil || !strings.Contains(err.Error(), reason) || strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseDB(%q) = %+v, %v; want an error saying %q, without the password", in, got, err, reason)
		}
	}
}

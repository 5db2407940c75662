package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/keygate/keygate/apikey"
)

// pepperErrors are the only errors parsePeppers may return: they quote
// nothing of its input.
var pepperErrors = regexp.MustCompile(`^(pepper [0-9]+ is not "ID:BASE64" or "BASE64" \(standard base64\)|pepper [0-9]+ has [0-9]+ bytes, want at least [0-9]+|no pepper given)$`)

// FuzzParsePeppers parses arbitrary pepper lists ($KEYGATE_PEPPER, or a
// pepper file's lines joined): an error is one of its fixed messages,
// which quote no key; success gives one pepper of at least
// MinPepperKeyLength bytes per item, with the ID given or derived from the
// key, that prints back to the same list; the Hasher built from them, as
// the server builds it, quotes no key in its error either.
func FuzzParsePeppers(f *testing.F) {
	k32 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k16 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 16))
	raw := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 33))
	for _, s := range []string{
		k32, "new:" + k32 + ", old:" + k32, "new:" + k32 + "," + k32, " p1 : " + k32 + " ", "id:" + k16, "id:not base64!",
		"", ",", " , ,", "a:b:" + k32, ":" + k32, "p1:" + raw, "p1:" + strings.TrimRight(k32, "="), "sha256:" + k32,
		"a b:" + k32, strings.Repeat("x", 33) + ":" + k32, "p1:" + k32 + ",p1:" + k32, "p1:" + strings.ReplaceAll(k32, "A", "-"),
		"é:" + k32, "p1:" + k32 + "\n,p2:" + k32,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		peppers, err := ParsePeppers(list)
		if err != nil {
			if peppers != nil || !pepperErrors.MatchString(err.Error()) {
				t.Fatalf("ParsePeppers(%q) = %v, %q; want no pepper and a fixed message", list, peppers, err)
			}
			return
		}
		var items []string
		for _, item := range strings.Split(list, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		if len(peppers) != len(items) {
			t.Fatalf("ParsePeppers(%q): %d peppers for %d items", list, len(peppers), len(items))
		}
		var back []string
		for i, p := range peppers {
			if len(p.Key) < apikey.MinPepperKeyLength {
				t.Fatalf("ParsePeppers(%q): pepper %d has %d bytes", list, i+1, len(p.Key))
			}
			id, _, given := strings.Cut(items[i], ":")
			sum := sha256.Sum256(p.Key)
			if given && id != "" && p.ID != id || (!given || id == "") && p.ID != "p"+hex.EncodeToString(sum[:5]) {
				t.Fatalf("ParsePeppers(%q): pepper %d has ID %q", list, i+1, p.ID)
			}
			back = append(back, p.ID+":"+base64.StdEncoding.EncodeToString(p.Key))
		}
		again, err := ParsePeppers(strings.Join(back, ","))
		if err != nil || len(again) != len(peppers) {
			t.Fatalf("ParsePeppers(%q) prints as %q, which parses to %v, %v", list, back, again, err)
		}
		for i := range again {
			if again[i].ID != peppers[i].ID || !bytes.Equal(again[i].Key, peppers[i].Key) {
				t.Fatalf("ParsePeppers(%q): pepper %d does not print back to itself", list, i+1)
			}
		}
		if _, err := apikey.NewHasher(peppers[0], peppers[1:]...); err != nil {
			for _, p := range peppers {
				for _, enc := range []string{base64.StdEncoding.EncodeToString(p.Key), base64.RawStdEncoding.EncodeToString(p.Key), string(p.Key)} {
					if strings.Contains(err.Error(), enc) {
						t.Fatalf("NewHasher(ParsePeppers(%q)): error %q quotes a key", list, err)
					}
				}
			}
		}
	})
}

// mysqlErrors are the only errors mysqlDSN may return: the URL, and so
// its password, is never quoted.
var mysqlErrors = []string{
	"--db: the mysql:// URL does not parse",
	"--db: the mysql:// URL has no host",
	"--db: the mysql:// URL has a password but no user",
	"--db: the mysql:// URL must name one database, as in mysql://user@host/keys",
	"--db: the mysql:// URL has a parameter the MySQL driver does not accept",
}

// FuzzMySQLDSN converts arbitrary mysql:// URLs: an error is one of the
// fixed messages, never the password; a DSN is what the URL says (user,
// password, host with a port, one database, parseTime unless the URL sets
// it) as the driver reads it; and redactURL, which names the database in
// logs and errors, never keeps a password, query or fragment.
func FuzzMySQLDSN(f *testing.F) {
	for _, s := range []string{
		"mysql://root@127.0.0.1:3306/keys", "mysql://u:p%40ss@db.internal/keys", "mysql://u@[::1]:3307/keys?tls=skip-verify",
		"mysql://u@host/keys?timeout=5s&loc=UTC", "mysql://u:secret@host", "mysql://u:secret@/keys", "mysql://u:secret@host/a/b",
		"mysql://u:secret@host/keys?timeout=soon", "mysql://u:se%zzcret@host/keys", "mysql://u:secret@host:99999/keys",
		"mysql://u:secret@host/keys?parseTime=false&parseTime=true", "mysql://u:secret@host/keys#frag", "mysql://:secret@host/keys",
		"mysql://u:s@cr@t@host/keys", "mysql://u:secret@host/k%2Fk", "mysql://u:secret@host/keys?allowCleartextPasswords=1",
		"mysql://u:secret@host/keys?password=x", "mysql://u:p:w@host/keys", "mysql://host/keys?user=x", "mysql:///keys", "mysql://",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, perr := url.Parse(raw)
		password := ""
		if perr == nil && u.User != nil {
			password, _ = u.User.Password()
		}
		if redacted := redactURL(raw); redacted != "(unparsable URL)" {
			r, err := url.Parse(redacted)
			if err != nil {
				t.Fatalf("redactURL(%q) = %q, which does not parse: %v", raw, redacted, err)
			}
			if _, has := r.User.Password(); has || r.RawQuery != "" || r.Fragment != "" {
				t.Fatalf("redactURL(%q) = %q keeps a password, query or fragment", raw, redacted)
			}
		}
		dsn, err := mysqlDSN(raw)
		if err != nil {
			found := false
			for _, m := range mysqlErrors {
				found = found || err.Error() == m
			}
			if !found || dsn != "" {
				t.Fatalf("mysqlDSN(%q) = %q, %q; want no DSN and a fixed message", raw, dsn, err)
			}
			return
		}
		if perr != nil {
			t.Fatalf("mysqlDSN(%q) accepted a URL that does not parse: %v", raw, perr)
		}
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatalf("mysqlDSN(%q) = a DSN the driver refuses: %v", raw, err)
		}
		host, port, err := net.SplitHostPort(cfg.Addr)
		switch {
		case cfg.Net != "tcp" || err != nil || port == "" || host != u.Hostname():
			t.Fatalf("mysqlDSN(%q): address %s %q, want tcp to %q with a port", raw, cfg.Net, cfg.Addr, u.Hostname())
		case cfg.User != u.User.Username() || cfg.Passwd != password:
			t.Fatalf("mysqlDSN(%q): user or password differ from the URL's", raw)
		case cfg.DBName == "" || cfg.DBName != strings.TrimPrefix(u.Path, "/") || strings.Contains(cfg.DBName, "/"):
			t.Fatalf("mysqlDSN(%q): database %q, want the URL's one database %q", raw, cfg.DBName, u.Path)
		case !cfg.ParseTime && !u.Query().Has("parseTime"):
			t.Fatalf("mysqlDSN(%q): parseTime is off, though the URL does not ask so", raw)
		}
	})
}

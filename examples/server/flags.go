package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/keygate/keygate/server"
)

// options are the command line's settings.
type options struct {
	addr           string
	db             string
	tablePrefix    string
	pepperFile     string
	adminTokenFile string
	prefix         string
	tlsCert        string
	tlsKey         string
	logLevel       slog.Level
	logFormat      string
	shutdownGrace  time.Duration
	lastUsed       time.Duration
	failures       int
	maxLifetime    time.Duration
	failureWindow  time.Duration
	// The http.Server's timeouts, which cut slow clients off.
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	metrics           bool
	// Imports: the prefixes of other systems' tokens that verify once
	// imported (POST /v1/keys/import), and SHA-256 lookups.
	importPrefixes []string
	importSHA256   bool
	maxBody        int64
}

// parseFlags parses args; usage and errors go to out.
func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.db, "db", "keygate.db", "storage: a file path for SQLite, or a postgres:// or mysql:// URL")
	fs.StringVar(&o.tablePrefix, "table-prefix", "keygate_", "prefix of the store's table names, so that several services can share a database")
	fs.StringVar(&o.pepperFile, "pepper-file", "", "file of peppers, one \"ID:BASE64\" per line, the current first (default: $KEYGATE_PEPPER, or with SQLite a file generated beside the database)")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "on the first start, also write the bootstrap super-admin token to this file (mode 0600)")
	fs.StringVar(&o.prefix, "prefix", "kg", "token prefix, such as acme_live")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with -tls-key, serve HTTPS")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 30*time.Second, "how long in-flight requests may take to finish on shutdown")
	fs.DurationVar(&o.maxLifetime, "max-lifetime", 0, "the longest life a key may be given, such as 2160h for 90 days (0: no ceiling)")
	fs.IntVar(&o.failures, "failure-limit", 30, "failed verifications a client address may make per -failure-window before its keyed requests get 429 (0: no throttle)")
	fs.DurationVar(&o.failureWindow, "failure-window", time.Minute, "the window of -failure-limit")
	fs.DurationVar(&o.lastUsed, "last-used-interval", time.Minute, "how often last-used times are written to the store")
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", readHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&o.readTimeout, "read-timeout", readTimeout, "how long a client may take to send a whole request, body included")
	fs.DurationVar(&o.writeTimeout, "write-timeout", writeTimeout, "how long a response may take, from the end of the request's headers")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", idleTimeout, "how long a kept-alive connection may wait for its next request")
	fs.Func("import-prefix", "accept tokens of another system starting with this prefix, such as sk_live_, once imported with POST /v1/keys/import (repeatable)", func(p string) error {
		if len(p) < 3 || len(p) > 32 || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return errors.New("want 3 to 32 printable ASCII characters without spaces")
		}
		o.importPrefixes = append(o.importPrefixes, p)
		return nil
	})
	fs.BoolVar(&o.importSHA256, "import-sha256", false, "also look tokens up by their SHA-256, for keys imported by their SHA-256 alone")
	fs.Int64Var(&o.maxBody, "max-body-bytes", server.DefaultMaxBodyBytes, "the largest request body of the API, such as a batch of keys to import")
	fs.BoolVar(&o.metrics, "metrics", false, "serve keygate's OpenTelemetry metrics in the Prometheus format at GET /metrics, without authentication")
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: server [flags]\n\nkeygate as a token service: the key management API at /v1, remote verification, and a demo API.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return nil, errors.New("-tls-cert and -tls-key go together")
	case o.logFormat != "text" && o.logFormat != "json":
		return nil, fmt.Errorf("-log-format must be text or json, not %q", o.logFormat)
	case o.maxBody < 1024:
		return nil, errors.New("-max-body-bytes must be at least 1024")
	case o.shutdownGrace <= 0:
		return nil, errors.New("-shutdown-grace must be positive")
	case o.readHeaderTimeout <= 0 || o.readTimeout <= 0 || o.writeTimeout <= 0 || o.idleTimeout <= 0:
		// Zero would mean no timeout at all: a slow client could hold a
		// connection forever.
		return nil, errors.New("-read-header-timeout, -read-timeout, -write-timeout and -idle-timeout must be positive")
	}
	return o, nil
}

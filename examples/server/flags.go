package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"
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
	metrics        bool
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
	fs.DurationVar(&o.lastUsed, "last-used-interval", time.Minute, "how often last-used times are written to the store")
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
	case o.shutdownGrace <= 0:
		return nil, errors.New("-shutdown-grace must be positive")
	}
	return o, nil
}

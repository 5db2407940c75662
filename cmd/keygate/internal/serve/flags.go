package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/config"
	"github.com/keygate/keygate/server"
)

// The http.Server's limits: a slow or oversized client is cut off.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Options are the settings of keygate serve, each a flag that also reads
// its KEYGATE_* environment variable.
type Options struct {
	Storage config.StorageOptions
	Peppers config.PepperOptions
	// AllowMissingPeppers starts even when stored keys use peppers the
	// configuration lacks.
	AllowMissingPeppers bool

	Addr              string
	TLSCert, TLSKey   string
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownGrace     time.Duration
	MaxBody           int64
	// TrustedProxies are the load balancers and reverse proxies whose
	// X-Forwarded-For is believed (parsed from trustedProxies).
	TrustedProxies []netip.Prefix
	trustedProxies []string

	Redis    string
	CacheTTL time.Duration

	Console bool

	LogLevel    slog.Level
	LogFormat   string
	MetricsAddr string

	Failures      int
	FailureWindow time.Duration
	MaxLifetime   time.Duration
	LastUsed      time.Duration
	// UsageInterval and UsageRetention are keygate.Config's.
	UsageInterval  time.Duration
	UsageRetention time.Duration

	Prefix         string
	AdminTokenFile string
	ImportPrefixes []string
	ImportSHA256   bool

	Demo           bool
	SecretScanning bool
}

// The topics of serve's flags, in the order -h lists them.
var topics = []string{"Storage", "Peppers", "Network", "Multi-instance", "Console", "Telemetry", "Limits", "Keys", "Optional endpoints"}

// addFlags defines o's flags on fs, grouped by topic.
func (o *Options) addFlags(fs *pflag.FlagSet) {
	fs.SortFlags = false
	o.Storage.AddFlags(fs)
	cmdutil.Group(fs, "Storage", "db", "table-prefix")

	o.Peppers.AddFlags(fs)
	fs.BoolVar(&o.AllowMissingPeppers, "allow-missing-peppers", false, "start even when stored keys use pepper ids this configuration lacks (those keys cannot verify); for recovery only")
	cmdutil.Group(fs, "Peppers", "pepper-file", "allow-missing-peppers")

	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "address to listen on (host:port)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key, serve HTTPS")
	fs.StringVar(&o.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.DurationVar(&o.ReadHeaderTimeout, "read-header-timeout", readHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&o.ReadTimeout, "read-timeout", readTimeout, "how long a client may take to send a whole request, body included")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", writeTimeout, "how long a response may take, from the end of the request's headers")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", idleTimeout, "how long a kept-alive connection may wait for its next request")
	fs.DurationVar(&o.ShutdownGrace, "shutdown-grace", 30*time.Second, "how long in-flight requests may take to finish on shutdown")
	fs.Int64Var(&o.MaxBody, "max-body-bytes", server.DefaultMaxBodyBytes, "the largest request body of the API, such as a batch of keys to import")
	fs.StringSliceVar(&o.trustedProxies, "trusted-proxy", nil, "CIDR of a load balancer or reverse proxy whose X-Forwarded-For is believed, such as 10.0.0.0/8 (repeatable); behind one, without it every client shares the proxy's address (failure throttle, IP allow-lists)")
	cmdutil.Group(fs, "Network", "addr", "tls-cert", "tls-key", "trusted-proxy", "read-header-timeout", "read-timeout", "write-timeout", "idle-timeout", "shutdown-grace", "max-body-bytes")

	fs.StringVar(&o.Redis, "redis", "", "redis:// URL: rate limits shared exactly by every instance, revocations reaching them all at once, and console sessions in Redis")
	fs.DurationVar(&o.CacheTTL, "cache-ttl", 0, "how long a verified key is served from memory; changes made on other instances take at most this long without a change feed (default: 30s with one (PostgreSQL, or --redis) or on SQLite, 5s without)")
	cmdutil.Group(fs, "Multi-instance", "redis", "cache-ttl")

	fs.BoolVar(&o.Console, "console", true, "serve the admin console at /console/")
	cmdutil.Group(fs, "Console", "console")

	fs.TextVar(&o.LogLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics (keygate's, HTTP routes', Go runtime and process) at /metrics on this separate address, such as 127.0.0.1:9090 (default: none)")
	cmdutil.Group(fs, "Telemetry", "log-level", "log-format", "metrics-addr")

	fs.IntVar(&o.Failures, "failure-limit", 30, "failed verifications a client address may make per --failure-window before it gets 429 (0: no throttle)")
	fs.DurationVar(&o.FailureWindow, "failure-window", time.Minute, "the window of --failure-limit")
	fs.DurationVar(&o.MaxLifetime, "max-lifetime", 0, "the longest life a key may be given, such as 2160h for 90 days (0: no ceiling)")
	fs.DurationVar(&o.LastUsed, "last-used-interval", time.Minute, "how often last-used times are written to the database")
	fs.DurationVar(&o.UsageInterval, "usage-interval", keygate.DefaultUsageInterval, "how often usage history (verifications per key, hour and outcome) is written to the database; a crash loses at most this long of it (negative: no usage history)")
	fs.DurationVar(&o.UsageRetention, "usage-retention", keygate.DefaultUsageRetention, "how long usage history is kept (negative: for ever)")
	cmdutil.Group(fs, "Limits", "failure-limit", "failure-window", "max-lifetime", "last-used-interval", "usage-interval", "usage-retention")

	fs.StringVar(&o.Prefix, "prefix", "kg", "token prefix, such as acme_live")
	fs.StringVar(&o.AdminTokenFile, "admin-token-file", "", "on the first start, also write the bootstrap super-admin token to this file (mode 0600)")
	fs.StringSliceVar(&o.ImportPrefixes, "import-prefix", nil, "accept tokens of another system starting with this prefix, such as sk_live_, once imported (repeatable)")
	fs.BoolVar(&o.ImportSHA256, "import-sha256", false, "also look tokens up by their SHA-256, for keys imported by their SHA-256 alone")
	cmdutil.Group(fs, "Keys", "prefix", "admin-token-file", "import-prefix", "import-sha256")

	fs.BoolVar(&o.Demo, "demo", false, "serve a small demo API at /api/v1/ behind the middleware, standing for your own service (for trying keygate out)")
	fs.BoolVar(&o.SecretScanning, "secret-scanning", false, "receive GitHub secret scanning reports at POST /github/secret-scanning and revoke the leaked keys they name")
	cmdutil.Group(fs, "Optional endpoints", "demo", "secret-scanning")
}

// validate checks the options that flags cannot check one by one.
func (o *Options) validate() error {
	for _, p := range o.ImportPrefixes {
		if len(p) < 3 || len(p) > 32 || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return fmt.Errorf("--import-prefix %q: want 3 to 32 printable ASCII characters without spaces", p)
		}
	}
	o.TrustedProxies = o.TrustedProxies[:0]
	for _, c := range o.trustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			if a, aerr := netip.ParseAddr(c); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				return fmt.Errorf("--trusted-proxy %q: want a CIDR such as 10.0.0.0/8 or an address", c)
			}
		}
		o.TrustedProxies = append(o.TrustedProxies, p.Masked())
	}
	for name, addr := range map[string]string{"--addr": o.Addr, "--metrics-addr": o.MetricsAddr} {
		if addr == "" && name == "--metrics-addr" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return fmt.Errorf("%s %q: want host:port, such as 127.0.0.1:8080 (or :8080 for every interface)", name, addr)
		}
	}
	switch {
	case o.MetricsAddr != "" && o.MetricsAddr == o.Addr:
		return errors.New("--metrics-addr must differ from --addr: metrics are served apart from the API")
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case o.LogFormat != "text" && o.LogFormat != "json":
		return fmt.Errorf("--log-format must be text or json, not %q", o.LogFormat)
	case o.MaxBody < 1024:
		return errors.New("--max-body-bytes must be at least 1024")
	case o.ShutdownGrace <= 0:
		return errors.New("--shutdown-grace must be positive")
	case o.ReadHeaderTimeout <= 0 || o.ReadTimeout <= 0 || o.WriteTimeout <= 0 || o.IdleTimeout <= 0:
		// Zero would mean no timeout at all: a slow client could hold a
		// connection forever.
		return errors.New("--read-header-timeout, --read-timeout, --write-timeout and --idle-timeout must be positive")
	case o.CacheTTL < 0:
		return errors.New("--cache-ttl may not be negative")
	case o.Failures < 0 || o.FailureWindow <= 0:
		return errors.New("--failure-limit may not be negative and --failure-window must be positive")
	}
	if o.Redis != "" && !strings.HasPrefix(o.Redis, "redis://") && !strings.HasPrefix(o.Redis, "rediss://") && !strings.HasPrefix(o.Redis, "unix://") {
		return errors.New("--redis: want a redis://, rediss:// or unix:// URL, such as redis://127.0.0.1:6379/0")
	}
	return nil
}

// Package apicmd is what the commands calling a token service's REST API
// share (keygate keys, keygate identities): the flags saying where the
// API is and with what token ([Options]), the client they build, and how
// an answer of the API ends a command ([Error]: its exit code and
// message).
//
// The API token comes from $KEYGATE_TOKEN or from the file --token-file
// (or $KEYGATE_TOKEN_FILE) names, never from the command line, and is
// never printed.
package apicmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/server"
)

// DefaultServer is the API's base URL when neither --server nor
// $KEYGATE_URL gives one: keygate serve's default address.
const DefaultServer = "http://127.0.0.1:8080/v1"

// EnvToken holds the API token.
const EnvToken = "KEYGATE_TOKEN"

// Options are the flags every command calling the API shares: where the
// API is, with what token, how long to wait, and how to print the result.
type Options struct {
	// Server is the API's base URL (--server, $KEYGATE_URL).
	Server string
	// TokenFile names the file holding the API token (--token-file,
	// $KEYGATE_TOKEN_FILE); empty reads $KEYGATE_TOKEN.
	TokenFile string
	// Timeout bounds each call to the API (--timeout).
	Timeout time.Duration
	// Output is how the result is printed (-o).
	Output cmdutil.Output
}

// AddFlags adds the API and output flags to fs, filed under "API" and
// "Output".
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Server, "server", DefaultServer, "base URL of the token service's API")
	fs.StringVar(&o.TokenFile, "token-file", "", "file holding the API token, mode 0600 (default: $"+EnvToken+")")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "how long one call to the API may take")
	cmdutil.GroupAs(fs, "API", "server", "KEYGATE_URL")
	cmdutil.Group(fs, "API", "token-file", "timeout")
	cmdutil.AddOutputFlag(fs, &o.Output)
}

// Client returns a client of the API, authenticated with the token of
// $KEYGATE_TOKEN or --token-file. It warns on ios.ErrOut about a token
// file other users may read, and about plain http to another machine.
func (o *Options) Client(ios *cmdutil.IOStreams) (*client.Client, error) {
	if o.Timeout <= 0 {
		return nil, cmdutil.Usagef("--timeout must be positive")
	}
	token := ios.Getenv(EnvToken)
	switch {
	case o.TokenFile != "" && token != "":
		return nil, cmdutil.Usagef("both $%s and --token-file (or $KEYGATE_TOKEN_FILE) are set: give one", EnvToken)
	case o.TokenFile != "":
		var err error
		if token, err = cmdutil.ReadSecretFile(o.TokenFile); err != nil {
			return nil, cmdutil.Usagef("--token-file: %w", err)
		}
		if fi, err := os.Stat(o.TokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(ios.ErrOut, "keygate: warning: --token-file %s may be read by other users (mode %v): chmod 600 it\n", o.TokenFile, fi.Mode().Perm())
		}
	case strings.TrimSpace(token) == "":
		return nil, cmdutil.Usagef("no API token: set $%s, or give --token-file (the token is never given on the command line)", EnvToken)
	}
	token = strings.TrimSpace(token)
	auth := client.WithToken(token)
	if _, err := apikey.Parse(token); err != nil {
		// Not a keygate token: perhaps one imported from another system.
		if _, err := apikey.ParseImported(token); err != nil {
			return nil, cmdutil.Usagef("the API token is not a token: %v", err)
		}
		auth = client.WithImportedToken(token)
	}
	c, err := client.New(o.Server, auth, client.WithUserAgent("keygate-cli"),
		client.WithHTTPClient(&http.Client{Timeout: o.Timeout}))
	if err != nil {
		return nil, cmdutil.Usagef("--server %q: want the API's base URL, such as %s", o.Server, DefaultServer)
	}
	if u, err := url.Parse(o.Server); err == nil && u.Scheme == "http" && !loopback(u.Hostname()) {
		fmt.Fprintf(ios.ErrOut, "keygate: warning: --server %s is plain http to another machine: the API token travels unencrypted; use https\n", u.Host)
	}
	return c, nil
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Error returns err, from a call to the API, as the error the command
// ends with: refused (exit 1) for the API's 4xx answers, with their
// problem detail and what to do; unavailable (exit 3) for 5xx, 429, 408,
// answers that are not the API's, and failures to reach it.
func Error(err error) error {
	if err == nil {
		return nil
	}
	var er *client.ErrorResponse
	if errors.As(err, &er) {
		p := er.Problem
		p.Code, p.Title, p.Detail = cmdutil.Clean(p.Code), cmdutil.Clean(p.Title), cmdutil.Clean(p.Detail)
		var b strings.Builder
		fmt.Fprintf(&b, "%d %s", p.Status, p.Code)
		if p.Code == "" {
			b.WriteString(strings.ToLower(p.Title))
		}
		if p.Detail != "" {
			b.WriteString(": " + p.Detail)
		}
		switch {
		case p.Reason == string(keygate.DeniedPermission) && len(p.Permissions) > 0:
			fmt.Fprintf(&b, " (the token lacks %s)", cmdutil.Clean(strings.Join(p.Permissions, ", ")))
		case !p.LatestExpiry.IsZero():
			fmt.Fprintf(&b, " (the latest expiry the token may give: %s)", p.LatestExpiry.UTC().Format(time.RFC3339))
		case p.Status == http.StatusUnauthorized:
			fmt.Fprintf(&b, " (check the token of $%s or --token-file)", EnvToken)
		case p.Code == server.CodeNoRoute, p.Status == http.StatusNotFound && p.Code == "":
			fmt.Fprintf(&b, " (is --server the API's base URL, such as %s?)", DefaultServer)
		case p.Code == server.CodeBodyTooLarge:
			b.WriteString(" (the service's --max-body-bytes)")
		}
		if p.RetryAfter > 0 {
			fmt.Fprintf(&b, " (retry after %v)", p.RetryAfter)
		}
		code := cmdutil.ExitRefused
		if p.Status >= 500 || p.Status == http.StatusTooManyRequests || p.Status == http.StatusRequestTimeout ||
			errors.Is(err, keygate.ErrUnavailable) {
			code = cmdutil.ExitUnavailable
		}
		return &cmdutil.ExitError{Code: code, Err: errors.New(b.String())}
	}
	if errors.Is(err, client.ErrInvalidResponse) {
		return cmdutil.Unavailable(fmt.Errorf("%w (is --server a keygate token service?)", err))
	}
	var ee *cmdutil.ExitError
	if errors.As(err, &ee) {
		return err
	}
	// The client failed to reach the service, or timed out: its error
	// names the URL, which holds no credentials.
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return cmdutil.Unavailable(fmt.Errorf("%w (no answer within --timeout)", err))
	}
	return cmdutil.Unavailable(err)
}

// FlagError is the flag error handler of the commands calling the API
// (cobra's SetFlagErrorFunc): wrong usage, exit 2, and for --token, which
// does not exist, why: a token on the command line shows in ps and in the
// shell's history.
func FlagError(c *cobra.Command, err error) error {
	if err.Error() == "unknown flag: --token" {
		return cmdutil.Usagef("--token is not a flag: give the API token in $%s, or in a file named by --token-file; "+
			"on the command line it would show in ps and in the shell's history (see '%s --help')", EnvToken, c.CommandPath())
	}
	return cmdutil.Usagef("%w (see '%s --help')", err, c.CommandPath())
}

// Package keys is keygate keys: managing keys through a token service's
// REST API with package client, one file per verb (create, list, get,
// update, regenerate, revoke, disable, enable, delete, verify, import).
//
// Each verb has an options struct filled from its flags and a run function
// that takes it, tested without a terminal; each prints its result as a
// table for people or, with -o json, as one JSON value for scripts, chosen
// in one place per verb.
//
// # Credentials
//
// The API token comes from $KEYGATE_TOKEN or from the file --token-file
// (or $KEYGATE_TOKEN_FILE) names, never from the command line, where other
// users of the machine could read it and shells keep it in their history.
// It is never printed. A new key's token (create, regenerate) is written
// once, to standard output alone, or to --new-token-file.
//
// # Exit codes
//
// 0 done; 1 refused by the API (with its problem detail on standard
// error), or a token that does not verify, or import rows that failed; 2
// wrong usage, nothing sent; 3 the service unreachable, unavailable (5xx)
// or asking to wait (429): trying again later may work.
package keys

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

	"github.com/google/uuid"
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

// topics order the flags in each verb's help.
var topics = []string{"Key", "Limits", "Filters", "Import", "API", "Output"}

// NewCmd returns keygate keys and its verbs.
func NewCmd(ios *cmdutil.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage keys through the token service's API",
		Long: `Manage keys through a token service's REST API (keygate serve).

The service is --server (default ` + DefaultServer + `, or $KEYGATE_URL). The
token to call it with is read from $KEYGATE_TOKEN or from --token-file (or
$KEYGATE_TOKEN_FILE); never from the command line. A new key's token is
printed once, alone on standard output: TOKEN=$(keygate keys create ...)
captures it, the rest goes to standard error. -o json prints one JSON value
instead, for scripts.

Flags that say what to do to a key read no environment variable; the
others read the KEYGATE_* variable named in their help.

Exit codes: 0 done; 1 refused by the API, a token that does not verify,
or import rows that failed; 2 wrong usage, nothing sent; 3 the service
unreachable or unavailable, try again later.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return cmdutil.Usagef("keys needs a command: create, list, get, update, regenerate, revoke, disable, enable, delete, verify, import or usage (see 'keygate keys --help')")
		},
	}
	cmd.AddCommand(
		newCreateCmd(ios, nil),
		newListCmd(ios, nil),
		newGetCmd(ios, nil),
		newUpdateCmd(ios, nil),
		newRegenerateCmd(ios, nil),
		newStateCmd(ios, "revoke", nil),
		newStateCmd(ios, "disable", nil),
		newStateCmd(ios, "enable", nil),
		newDeleteCmd(ios, nil),
		newVerifyCmd(ios, nil),
		newImportCmd(ios, nil),
		newUsageCmd(ios, nil),
	)
	cmd.SetUsageFunc(cmdutil.GroupedUsage(topics...))
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if err.Error() == "unknown flag: --token" {
			return cmdutil.Usagef("--token is not a flag: give the API token in $%s, or in a file named by --token-file; "+
				"on the command line it would show in ps and in the shell's history (see '%s --help')", EnvToken, c.CommandPath())
		}
		return cmdutil.Usagef("%w (see '%s --help')", err, c.CommandPath())
	})
	return cmd
}

// apiOptions are the flags every verb shares: where the API is, with what
// token, how long to wait, and how to print the result.
type apiOptions struct {
	Server    string
	TokenFile string
	Timeout   time.Duration
	Output    cmdutil.Output
}

// addFlags adds the API and output flags to fs.
func (o *apiOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Server, "server", DefaultServer, "base URL of the token service's API")
	fs.StringVar(&o.TokenFile, "token-file", "", "file holding the API token, mode 0600 (default: $"+EnvToken+")")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "how long one call to the API may take")
	cmdutil.GroupAs(fs, "API", "server", "KEYGATE_URL")
	cmdutil.Group(fs, "API", "token-file", "timeout")
	cmdutil.AddOutputFlag(fs, &o.Output)
}

// client returns a client of the API, authenticated with the token of
// $KEYGATE_TOKEN or --token-file. It warns on ios.ErrOut about a token
// file other users may read.
func (o *apiOptions) client(ios *cmdutil.IOStreams) (*client.Client, error) {
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

// prepare reads the environment into the flags of cmd that were not given.
func prepare(cmd *cobra.Command, ios *cmdutil.IOStreams) error {
	return cmdutil.BindEnv(cmd.Flags(), ios.Getenv)
}

// newVerb returns a verb's command with the shared settings: its flags
// grouped in help, and args checked.
func newVerb(use, short, long, example string, args cobra.PositionalArgs) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Example: example, Args: args}
	cmd.Flags().SortFlags = false
	cmd.SetUsageFunc(cmdutil.GroupedUsage(topics...))
	return cmd
}

// parseID parses a key id argument.
func parseID(arg string) (uuid.UUID, error) {
	id, err := uuid.Parse(arg)
	if err != nil {
		return uuid.Nil, cmdutil.Usagef("%q is not a key id (a UUID, as keygate keys list shows)", arg)
	}
	return id, nil
}

// apiError returns err, from a call to the API, as the error the command
// ends with: refused (exit 1) for the API's 4xx answers, with their
// problem detail and what to do; unavailable (exit 3) for 5xx, 429, 408,
// answers that are not the API's, and failures to reach it.
func apiError(err error) error {
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

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
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// topics order the flags in each verb's help.
var topics = []string{"Key", "Limits", "Filters", "Import", "API", "Output"}

// NewCmd returns keygate keys and its verbs.
func NewCmd(ios *cmdutil.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage keys through the token service's API",
		Long: `Manage keys through a token service's REST API (keygate serve).

The service is --server (default ` + apicmd.DefaultServer + `, or $KEYGATE_URL). The
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
	cmd.SetFlagErrorFunc(apicmd.FlagError)
	return cmd
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

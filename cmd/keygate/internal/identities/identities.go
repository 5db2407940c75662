// Package identities is keygate identities: managing identities (owners of
// keys, whose limits all their keys share) through a token service's REST
// API with package client, one file per verb (create, list, get, update,
// delete), in the style of package keys: each verb has an options struct
// filled from its flags and a run function that takes it, tested without
// a terminal, and prints a table for people or, with -o json, one JSON
// value for scripts.
//
// The API token comes from $KEYGATE_TOKEN or --token-file, never from the
// command line (see package apicmd).
//
// # Exit codes
//
// 0 done; 1 refused by the API (with its problem detail on standard
// error); 2 wrong usage, nothing sent; 3 the service unreachable,
// unavailable (5xx) or asking to wait (429).
package identities

import (
	"strconv"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/importfile"
)

// topics order the flags in each verb's help.
var topics = []string{"Identity", "Limits", "Filters", "API", "Output"}

// NewCmd returns keygate identities and its verbs.
func NewCmd(ios *cmdutil.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identities",
		Short: "Manage identities (owners of keys with shared limits) through the token service's API",
		Long: `Manage identities through a token service's REST API (keygate serve). An
identity is an owner of keys (a customer, a user, a service), known by your
own id for it (--external-id, unique in its workspace), whose limits all its
keys share: named rate limits and credits with a refill. Put a key in one
with keygate keys create --identity ID (or keys update --identity ID).

The service is --server (default ` + apicmd.DefaultServer + `, or $KEYGATE_URL); the
token is read from $KEYGATE_TOKEN or --token-file, never from the command
line. -o json prints one JSON value, for scripts.

Exit codes: 0 done; 1 refused by the API; 2 wrong usage, nothing sent;
3 the service unreachable or unavailable, try again later.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return cmdutil.Usagef("identities needs a command: create, list, get, update or delete (see 'keygate identities --help')")
		},
	}
	cmd.AddCommand(
		newCreateCmd(ios, nil),
		newListCmd(ios, nil),
		newGetCmd(ios, nil),
		newUpdateCmd(ios, nil),
		newDeleteCmd(ios, nil),
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

// parseID parses an identity id argument.
func parseID(arg string) (uuid.UUID, error) {
	id, err := uuid.Parse(arg)
	if err != nil {
		return uuid.Nil, cmdutil.Usagef("%q is not an identity id (a UUID, as keygate identities list shows)", arg)
	}
	return id, nil
}

// limitsHelp documents the limit flags.
var limitsHelp = map[string]string{
	"rate":           `a rate limit shared by the identity's keys, NAME=REQUESTS/WINDOW such as "requests=100/1s" (repeatable)`,
	"on-demand-rate": `a rate limit applied only to the requests that name it, NAME=REQUESTS/WINDOW such as "tokens=100000/1h" (repeatable)`,
	"credits":        "credits the identity's keys draw from, a balance of 0 or more",
	"refill":         `how the credits refill: AMOUNT/day, AMOUNT/month (on the 1st) or AMOUNT/month:DAY (1 to 31, the month's last day when shorter), in UTC`,
}

// parseCredits parses --credits: a balance from 0 to keygate.MaxCredits,
// or with none, "none" (-1: remove the credits).
func parseCredits(s string, none bool) (int64, error) {
	if none && s == "none" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > keygate.MaxCredits {
		if none {
			return 0, cmdutil.Usagef("--credits %q: want a balance from 0 to %d, or none", s, int64(keygate.MaxCredits))
		}
		return 0, cmdutil.Usagef("--credits %q: want a balance from 0 to %d", s, int64(keygate.MaxCredits))
	}
	return n, nil
}

// parseMetadata parses --metadata key=value pairs.
func parseMetadata(pairs []string) (map[string]string, error) {
	md, err := importfile.ParseMetadata(pairs)
	if err != nil {
		return nil, cmdutil.Usagef("--metadata: %v", err)
	}
	return md, nil
}

package keys

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// regenerateOptions are the settings of keygate keys regenerate.
type regenerateOptions struct {
	IO           *cmdutil.IOStreams
	API          apicmd.Options
	ID           string
	Expiry       string
	Grace        time.Duration
	NewTokenFile string
}

// newRegenerateCmd returns keygate keys regenerate.
func newRegenerateCmd(ios *cmdutil.IOStreams, runF func(context.Context, *regenerateOptions) error) *cobra.Command {
	o := &regenerateOptions{IO: ios}
	cmd := newVerb("regenerate ID --expiry EXPIRY", "Give a key a new token and expiry; print the token once",
		`Give a key a new token and a new expiry. The old token stops working at
once, or after --grace. The new token is printed as keygate keys create
prints one: alone on standard output, in the -o json object, or written to
--new-token-file.`,
		`  NEW=$(keygate keys regenerate $ID --expiry 90d --grace 1h)`,
		cobra.ExactArgs(1))
	fs := cmd.Flags()
	fs.StringVar(&o.Expiry, "expiry", "", "the new expiry (required): "+expiryHelp)
	fs.DurationVar(&o.Grace, "grace", 0, "how long the old token keeps working, such as 1h (default: it stops at once)")
	fs.StringVar(&o.NewTokenFile, "new-token-file", "", "write the token to this file (mode 0600) instead of printing it")
	cmdutil.Topic(fs, "Key", "expiry", "grace", "new-token-file")
	o.API.AddFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		o.ID = args[0]
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runRegenerate(cmd.Context(), o)
	}
	return cmd
}

// runRegenerate regenerates the key and prints its new token.
func runRegenerate(ctx context.Context, o *regenerateOptions) error {
	id, err := parseID(o.ID)
	if err != nil {
		return err
	}
	if err := checkExpiry("--expiry", o.Expiry); err != nil {
		return err
	}
	if o.Grace < 0 {
		return cmdutil.Usagef("--grace may not be negative")
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	created, _, err := c.Regenerate(ctx, id, client.RegenerateRequest{Expiry: o.Expiry, GracePeriod: client.Duration(o.Grace)})
	if err != nil {
		return apicmd.Error(err)
	}
	return printCreated(o.IO, o.API.Output, created, o.NewTokenFile, "regenerated")
}

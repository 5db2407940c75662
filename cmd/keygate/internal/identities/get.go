package identities

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// getOptions are the settings of keygate identities get.
type getOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options
	ID  string
}

// newGetCmd returns keygate identities get.
func newGetCmd(ios *cmdutil.IOStreams, runF func(context.Context, *getOptions) error) *cobra.Command {
	o := &getOptions{IO: ios}
	cmd := newVerb("get ID", "Show an identity", `Show an identity: its external id, workspace, metadata, rate limits,
credits (the balance as stored, and when it was last set) and version.`,
		`  keygate identities get $ID -o json | jq .limits.credits.remaining`, cobra.ExactArgs(1))
	o.API.AddFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		o.ID = args[0]
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runGet(cmd.Context(), o)
	}
	return cmd
}

// runGet prints the identity.
func runGet(ctx context.Context, o *getOptions) error {
	id, err := parseID(o.ID)
	if err != nil {
		return err
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	got, _, err := c.Identities().Get(ctx, id)
	if err != nil {
		return apicmd.Error(err)
	}
	return printIdentity(o.IO, o.API.Output, got)
}

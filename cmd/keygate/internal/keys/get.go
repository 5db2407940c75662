package keys

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// getOptions are the settings of keygate keys get.
type getOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options
	ID  string
}

// newGetCmd returns keygate keys get.
func newGetCmd(ios *cmdutil.IOStreams, runF func(context.Context, *getOptions) error) *cobra.Command {
	o := &getOptions{IO: ios}
	cmd := newVerb("get ID", "Show a key", `Show a key: its fields, permissions, limits, status and version (never its
token, which is not kept).`, `  keygate keys get 0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e -o json | jq .version`, cobra.ExactArgs(1))
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

// runGet prints the key.
func runGet(ctx context.Context, o *getOptions) error {
	id, err := parseID(o.ID)
	if err != nil {
		return err
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	k, _, err := c.Get(ctx, id)
	if err != nil {
		return apicmd.Error(err)
	}
	if o.API.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, k)
	}
	return printKey(o.IO.Out, k, time.Now())
}

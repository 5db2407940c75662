package identities

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// deleteOptions are the settings of keygate identities delete.
type deleteOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options
	ID  string
	Yes bool
}

// newDeleteCmd returns keygate identities delete.
func newDeleteCmd(ios *cmdutil.IOStreams, runF func(context.Context, *deleteOptions) error) *cobra.Command {
	o := &deleteOptions{IO: ios}
	cmd := newVerb("delete ID", "Delete an identity no key is in",
		`Delete an identity. One that keys are still in is refused (exit 1,
identity_in_use): deleting it would lift its limits from them; take them out
(keygate keys update ID --identity none) or delete them first. On a terminal
it asks first, unless --yes; otherwise --yes is required.`,
		`  keygate identities delete $ID --yes`,
		cobra.ExactArgs(1))
	// --yes reads no environment variable: one left set would confirm
	// every deletion.
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "delete without asking")
	cmdutil.Topic(cmd.Flags(), "Identity", "yes")
	o.API.AddFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		o.ID = args[0]
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runDelete(cmd.Context(), o)
	}
	return cmd
}

// runDelete deletes the identity, once confirmed.
func runDelete(ctx context.Context, o *deleteOptions) error {
	id, err := parseID(o.ID)
	if err != nil {
		return err
	}
	if !o.Yes && !o.IO.InTTY {
		return cmdutil.Usagef("delete %s: standard input is not a terminal to confirm on: give --yes", id)
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	if !o.Yes {
		got, _, err := c.Identities().Get(ctx, id)
		if err != nil {
			return apicmd.Error(err)
		}
		ok, err := cmdutil.Confirm(o.IO, fmt.Sprintf("Delete identity %s (%s)?", cmdutil.Clean(got.ExternalID), got.ID), "--yes")
		if err != nil {
			return err
		}
		if !ok {
			return cmdutil.Refused(fmt.Errorf("delete %s: not confirmed; nothing was deleted", id))
		}
	}
	if _, err := c.Identities().Delete(ctx, id); err != nil {
		return apicmd.Error(err)
	}
	if o.API.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, map[string]string{"deleted": id.String()})
	}
	_, err = fmt.Fprintf(o.IO.Out, "Identity %s deleted.\n", id)
	return err
}

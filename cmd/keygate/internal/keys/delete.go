package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// deleteOptions are the settings of keygate keys delete.
type deleteOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options
	ID  string
	Yes bool
}

// newDeleteCmd returns keygate keys delete.
func newDeleteCmd(ios *cmdutil.IOStreams, runF func(context.Context, *deleteOptions) error) *cobra.Command {
	o := &deleteOptions{IO: ios}
	cmd := newVerb("delete ID", "Delete a key and its record",
		`Delete a key: it stops working and its record is gone (keygate keys revoke
keeps the record for audit). On a terminal it asks first, unless --yes;
otherwise --yes is required.`,
		`  keygate keys delete $ID --yes`,
		cobra.ExactArgs(1))
	// --yes reads no environment variable: one left set would confirm
	// every deletion.
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "delete without asking")
	cmdutil.Topic(cmd.Flags(), "Key", "yes")
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

// runDelete deletes the key, once confirmed.
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
		k, _, err := c.Get(ctx, id)
		if err != nil {
			return apicmd.Error(err)
		}
		ok, err := cmdutil.Confirm(o.IO, fmt.Sprintf("Delete key %s (%s, %s)? Its record is gone for good.", clean(k.Name), k.ID, status(k, time.Now())), "--yes")
		if err != nil {
			return err
		}
		if !ok {
			return cmdutil.Refused(fmt.Errorf("delete %s: not confirmed; nothing was deleted", id))
		}
	}
	if _, err := c.Delete(ctx, id); err != nil {
		return apicmd.Error(err)
	}
	if o.API.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, map[string]string{"deleted": id.String()})
	}
	_, err = fmt.Fprintf(o.IO.Out, "Key %s deleted.\n", id)
	return err
}

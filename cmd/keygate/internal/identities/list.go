package identities

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// listOptions are the settings of keygate identities list.
type listOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options

	Workspace, ExternalID string
	Limit                 int
	After                 string
	All                   bool
}

// newListCmd returns keygate identities list.
func newListCmd(ios *cmdutil.IOStreams, runF func(context.Context, *listOptions) error) *cobra.Command {
	o := &listOptions{IO: ios}
	cmd := newVerb("list", "List identities, a page at a time or --all",
		`List identities in creation order: one page (--limit, default 50; the next
with --after, whose cursor is printed on standard error, or every page with
--all). -o json prints {"identities": [...], "next": "cursor"} as the API does.`,
		`  keygate identities list --workspace tiger
  keygate identities list --external-id cus_4Fz9 -o json | jq -r '.identities[0].id'`,
		cobra.NoArgs)
	fs := cmd.Flags()
	fs.StringVar(&o.Workspace, "workspace", "", "only the identities of this workspace")
	fs.StringVar(&o.ExternalID, "external-id", "", "only the identities with this external id")
	fs.IntVar(&o.Limit, "limit", 50, "identities per page, 1 to 1000")
	fs.StringVar(&o.After, "after", "", "start after this cursor, printed at the end of the previous page")
	fs.BoolVar(&o.All, "all", false, "every page")
	cmdutil.Topic(fs, "Filters", "workspace", "external-id", "limit", "after", "all")
	o.API.AddFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runList(cmd.Context(), o)
	}
	return cmd
}

// runList lists the identities.
func runList(ctx context.Context, o *listOptions) error {
	if o.Limit < 1 || o.Limit > 1000 {
		return cmdutil.Usagef("--limit %d: want 1 to 1000", o.Limit)
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	opts := client.IdentityListOptions{Workspace: o.Workspace, ExternalID: o.ExternalID, Limit: o.Limit, After: o.After}
	list := &client.IdentityList{Identities: []*client.Identity{}}
	if o.All {
		for id, err := range c.Identities().All(ctx, opts) {
			if err != nil {
				return apicmd.Error(err)
			}
			list.Identities = append(list.Identities, id)
		}
	} else if list, _, err = c.Identities().List(ctx, opts); err != nil {
		return apicmd.Error(err)
	}
	if o.API.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, list)
	}
	if len(list.Identities) == 0 {
		fmt.Fprintln(o.IO.ErrOut, "No identities.")
	} else if err := printIdentities(o.IO.Out, list.Identities); err != nil {
		return err
	}
	if list.Next != "" {
		fmt.Fprintf(o.IO.ErrOut, "More identities: --after %s, or --all.\n", cmdutil.Clean(list.Next))
	}
	return nil
}

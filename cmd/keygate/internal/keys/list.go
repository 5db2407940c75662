package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// listOptions are the settings of keygate keys list.
type listOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options

	Workspace, Owner string
	// Status is "any", "active" or "revoked".
	Status         string
	ExpiringWithin string
	// Identity lists only the keys of this identity.
	Identity string
	Limit    int
	After    string
	All      bool
}

// statuses maps --status to the API's revoked parameter.
var statuses = map[string]string{"any": client.RevokedAny, "active": client.RevokedActive, "revoked": client.RevokedOnly}

// newListCmd returns keygate keys list.
func newListCmd(ios *cmdutil.IOStreams, runF func(context.Context, *listOptions) error) *cobra.Command {
	o := &listOptions{IO: ios}
	cmd := newVerb("list", "List keys, a page at a time or --all",
		`List keys in creation order: one page (--limit, default 50; the next page
with --after, whose cursor is printed on standard error, or every page with
--all). -o json prints {"keys": [...], "next": "cursor"}, "next" empty on the
last page, as the API does.`,
		`  keygate keys list --owner alice
  keygate keys list --workspace tiger --status active --expiring-within 7d
  keygate keys list --all -o json | jq -r '.keys[] | select(.last_used_at == null) | .id'`,
		cobra.NoArgs)
	fs := cmd.Flags()
	fs.StringVar(&o.Workspace, "workspace", "", "only the keys of this workspace")
	fs.StringVar(&o.Owner, "owner", "", "only the keys of this owner")
	fs.StringVar(&o.Status, "status", "any", "any; active (not revoked: expired and disabled ones included); or revoked")
	fs.StringVar(&o.ExpiringWithin, "expiring-within", "", `only the keys that expire within this window, such as "7d" or "12h"`)
	fs.StringVar(&o.Identity, "identity", "", "only the keys of this identity (its id)")
	fs.IntVar(&o.Limit, "limit", 50, "keys per page, 1 to 1000")
	fs.StringVar(&o.After, "after", "", "start after this cursor, printed at the end of the previous page")
	fs.BoolVar(&o.All, "all", false, "every page")
	cmdutil.Topic(fs, "Filters", "workspace", "owner", "status", "expiring-within", "identity", "limit", "after", "all")
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

// runList lists the keys.
func runList(ctx context.Context, o *listOptions) error {
	revoked, ok := statuses[o.Status]
	if !ok {
		return cmdutil.Usagef("--status %q: want any, active or revoked", o.Status)
	}
	if o.Limit < 1 || o.Limit > 1000 {
		return cmdutil.Usagef("--limit %d: want 1 to 1000", o.Limit)
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	opts := client.ListOptions{Workspace: o.Workspace, Owner: o.Owner, Revoked: revoked,
		ExpiringWithin: o.ExpiringWithin, Limit: o.Limit, After: o.After}
	if o.Identity != "" {
		id, err := uuid.Parse(o.Identity)
		if err != nil {
			return cmdutil.Usagef("--identity %q: want an identity's id, a UUID as keygate identities list shows", o.Identity)
		}
		opts.IdentityID = id
	}
	list := &client.KeyList{Keys: []*client.Key{}}
	if o.All {
		for k, err := range c.All(ctx, opts) {
			if err != nil {
				return apicmd.Error(err)
			}
			list.Keys = append(list.Keys, k)
		}
	} else {
		if list, _, err = c.List(ctx, opts); err != nil {
			return apicmd.Error(err)
		}
	}
	if o.API.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, list)
	}
	if len(list.Keys) == 0 {
		fmt.Fprintln(o.IO.ErrOut, "No keys.")
	} else if err := printKeys(o.IO.Out, list.Keys, time.Now()); err != nil {
		return err
	}
	if list.Next != "" {
		fmt.Fprintf(o.IO.ErrOut, "More keys: --after %s, or --all.\n", clean(list.Next))
	}
	return nil
}

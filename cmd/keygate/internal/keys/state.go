package keys

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// stateOptions are the settings of keygate keys revoke, disable and
// enable.
type stateOptions struct {
	IO   *cmdutil.IOStreams
	API  apicmd.Options
	Verb string
	ID   string
}

// stateVerbs describes revoke, disable and enable: help, the client call
// and the past tense.
var stateVerbs = map[string]struct {
	short, long, done string
	call              func(c *client.Client, ctx context.Context, id uuid.UUID) (*client.Key, *client.Response, error)
}{
	"revoke": {"Revoke a key: it stops working for good", `Revoke a key: it is refused from its next verification on, for good; its
record is kept for audit (keygate keys delete removes it). Revoking a revoked
key is not an error.`, "revoked", (*client.Client).Revoke},
	"disable": {"Disable a key until it is enabled again", `Disable a key: it is refused from its next verification on, until keygate
keys enable lets it work again.`, "disabled", (*client.Client).Disable},
	"enable": {"Enable a disabled key", `Enable a disabled key: it works again from its next verification on.`, "enabled", (*client.Client).Enable},
}

// newStateCmd returns keygate keys revoke, disable or enable.
func newStateCmd(ios *cmdutil.IOStreams, verb string, runF func(context.Context, *stateOptions) error) *cobra.Command {
	o := &stateOptions{IO: ios, Verb: verb}
	v := stateVerbs[verb]
	cmd := newVerb(verb+" ID", v.short, v.long, "  keygate keys "+verb+" $ID", cobra.ExactArgs(1))
	o.API.AddFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		o.ID = args[0]
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runState(cmd.Context(), o)
	}
	return cmd
}

// runState revokes, disables or enables the key, and says so.
func runState(ctx context.Context, o *stateOptions) error {
	id, err := parseID(o.ID)
	if err != nil {
		return err
	}
	v, ok := stateVerbs[o.Verb]
	if !ok {
		return fmt.Errorf("keys: no verb %q", o.Verb)
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	k, _, err := v.call(c, ctx, id)
	if err != nil {
		return apicmd.Error(err)
	}
	if o.API.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, k)
	}
	_, err = fmt.Fprintf(o.IO.Out, "Key %s (%s) %s.\n", clean(k.Name), k.ID, v.done)
	return err
}

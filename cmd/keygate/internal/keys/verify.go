package keys

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// verifyOptions are the settings of keygate keys verify.
type verifyOptions struct {
	IO         *cmdutil.IOStreams
	API        apicmd.Options
	Permission string
	Workspace  string
	Address    string
}

// newVerifyCmd returns keygate keys verify.
func newVerifyCmd(ios *cmdutil.IOStreams, runF func(context.Context, *verifyOptions) error) *cobra.Command {
	o := &verifyOptions{IO: ios}
	cmd := newVerb("verify", "Check a token read from standard input: exit 0 if valid, 1 if not",
		`Ask the token service whether a token is valid (POST /v1/keys/verify), as
a service checking its callers would; it counts as a use of the key. The
token is read from standard input (on a terminal, without echo), never from
the command line. Exit 0 when it is valid, 1 when it is not, with the
reason (invalid, expired, revoked, disabled, usage_exhausted, rate_limited,
address_denied, insufficient_permission). The API token needs
apikey:verify.`,
		`  echo "$TOKEN" | keygate keys verify --permission cluster:read --workspace tiger
  keygate keys verify < grafana.token -o json | jq .permissions`,
		cobra.NoArgs)
	fs := cmd.Flags()
	fs.StringVar(&o.Permission, "permission", "", "also require this permission, such as cluster:read")
	fs.StringVar(&o.Workspace, "workspace", "", "the workspace --permission is checked in")
	fs.StringVar(&o.Address, "address", "", "the client address the token came from, checked against the key's allow-list")
	cmdutil.Topic(fs, "Key", "permission", "workspace", "address")
	o.API.AddFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runVerify(cmd.Context(), o)
	}
	return cmd
}

// runVerify verifies the token of standard input and prints the verdict.
func runVerify(ctx context.Context, o *verifyOptions) error {
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	token, err := cmdutil.ReadSecret(o.IO, "Token to verify: ")
	if err != nil {
		return err
	}
	v, _, err := c.Verify(ctx, client.VerifyRequest{Token: token, Permission: o.Permission, Workspace: o.Workspace, Address: o.Address})
	if err != nil {
		return apicmd.Error(err)
	}
	if o.API.Output.JSON() {
		err = cmdutil.PrintJSON(o.IO.Out, v)
	} else {
		err = printVerdict(o, v)
	}
	if err != nil {
		return err
	}
	if !v.Valid {
		return cmdutil.ErrSilent
	}
	return nil
}

// printVerdict prints a verdict for people.
func printVerdict(o *verifyOptions, v *client.VerifyResponse) error {
	if !v.Valid {
		msg := "not valid: " + clean(v.Code)
		if v.RetryAfter > 0 {
			msg += fmt.Sprintf(" (retry after %ds)", v.RetryAfter)
		}
		_, err := fmt.Fprintln(o.IO.Out, msg)
		return err
	}
	k := v.Key
	fmt.Fprintf(o.IO.Out, "valid: key %s (%s), workspace %s, expires %s\n", clean(k.Name), k.ID, orDash(k.Workspace), when(k.ExpiresAt, "never"))
	perms := strings.Join(v.Permissions, " ")
	if v.SuperAdmin {
		perms = "super admin: every permission in every workspace"
	}
	fmt.Fprintf(o.IO.Out, "permissions: %s\n", orDash(perms))
	if r := v.RateLimit; r != nil {
		fmt.Fprintf(o.IO.Out, "rate limit: %d of %d per %v left\n", r.Remaining, r.Requests, time.Duration(r.Window))
	}
	return nil
}

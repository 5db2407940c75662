package keys

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate"
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
	// Cost is what the verification takes (1 to keygate.MaxCost), and
	// Limits the on-demand rate limits it names.
	Cost   int
	Limits []string
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
apikey:verify.

--cost takes that many units instead of one from each rate limit checked,
from the key's uses and from its identity's credits; --limit also applies
an on-demand rate limit of the key or its identity (repeatable). What the
verification took is printed after the verdict: each limit checked with
what is left of it and when it is whole again, the uses and credits left,
and their next refill ("report" with -o json).`,
		`  echo "$TOKEN" | keygate keys verify --permission cluster:read --workspace tiger
  keygate keys verify < grafana.token -o json | jq .permissions
  keygate keys verify --cost 250 --limit tokens < llm.token`,
		cobra.NoArgs)
	fs := cmd.Flags()
	fs.StringVar(&o.Permission, "permission", "", "also require this permission, such as cluster:read")
	fs.StringVar(&o.Workspace, "workspace", "", "the workspace --permission is checked in")
	fs.StringVar(&o.Address, "address", "", "the client address the token came from, checked against the key's allow-list")
	fs.IntVar(&o.Cost, "cost", 1, fmt.Sprintf("what the verification takes from the key's limits, uses and credits, 1 to %d", keygate.MaxCost))
	fs.StringArrayVar(&o.Limits, "limit", nil, "also apply this on-demand rate limit of the key or its identity (repeatable)")
	cmdutil.Topic(fs, "Key", "permission", "workspace", "address", "cost", "limit")
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
	if o.Cost < 1 || o.Cost > keygate.MaxCost {
		return cmdutil.Usagef("--cost must be 1 to %d", keygate.MaxCost)
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	token, err := cmdutil.ReadSecret(o.IO, "Token to verify: ")
	if err != nil {
		return err
	}
	req := client.VerifyRequest{Token: token, Permission: o.Permission, Workspace: o.Workspace, Address: o.Address, Limits: o.Limits}
	if o.Cost != 1 {
		req.Cost = o.Cost // 1 is the default
	}
	v, _, err := c.Verify(ctx, req)
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

// printVerdict prints a verdict for people, and its report.
func printVerdict(o *verifyOptions, v *client.VerifyResponse) error {
	if !v.Valid {
		msg := "not valid: " + clean(v.Code)
		if r := v.RateLimit; r != nil && r.Name != "" {
			msg += " by " + limitLabel(r.Name, r.Identity)
		}
		if v.RetryAfter > 0 {
			msg += fmt.Sprintf(" (retry after %ds)", v.RetryAfter)
		}
		fmt.Fprintln(o.IO.Out, msg)
		return printReport(o.IO.Out, v.Report)
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
	return printReport(o.IO.Out, v.Report)
}

// printReport prints what a verification took, one line each: its cost,
// the limits checked, the uses and credits left. A verdict without a
// report prints nothing.
func printReport(w io.Writer, r *client.VerifyReport) error {
	if r == nil {
		return nil
	}
	fmt.Fprintf(w, "cost: %d\n", r.Cost)
	for _, l := range r.Limits {
		left := strconv.Itoa(l.Remaining)
		if l.Remaining < 0 {
			left = "?" // the server's rate limiter cannot tell
		}
		line := fmt.Sprintf("%s: %s of %d per %v left", limitLabel(l.Name, l.Identity), left, l.Requests, time.Duration(l.Window))
		if l.OnDemand {
			line += " (on demand)"
		}
		if l.Reset > 0 {
			line += fmt.Sprintf(", whole again in %v", roundUp(time.Duration(l.Reset)))
		}
		if !l.Allowed {
			line += fmt.Sprintf(", refused: retry in %v", roundUp(time.Duration(l.RetryAfter)))
		}
		fmt.Fprintln(w, line)
	}
	for _, b := range [...]struct {
		name string
		bal  *client.Balance
	}{{"uses", r.Uses}, {"credits", r.Credits}} {
		if b.bal == nil {
			continue
		}
		fmt.Fprintf(w, "%s: %d left, next refill %s\n", b.name, b.bal.Remaining, when(b.bal.NextRefill, "never"))
	}
	return nil
}

// roundUp rounds d up to a tenth of a second, for people: "43.2s", not
// "43.165999364s" (up, so that a retry after it is never early).
func roundUp(d time.Duration) time.Duration {
	const step = 100 * time.Millisecond
	return (d + step - 1) / step * step
}

// limitLabel names a rate limit for people: the key's own, or its
// identity's.
func limitLabel(name string, identity bool) string {
	if identity {
		return "identity's limit " + clean(name)
	}
	return "limit " + clean(name)
}

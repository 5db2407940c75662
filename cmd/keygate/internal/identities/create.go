package identities

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// createOptions are the settings of keygate identities create.
type createOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options

	ExternalID, Workspace string
	Metadata              []string
	Rates, OnDemandRates  []string
	// Credits and Refill are "" when not given.
	Credits, Refill string
}

// newCreateCmd returns keygate identities create; runF, when not nil,
// runs instead of runCreate (for tests of the flags).
func newCreateCmd(ios *cmdutil.IOStreams, runF func(context.Context, *createOptions) error) *cobra.Command {
	o := &createOptions{IO: ios}
	cmd := newVerb("create --external-id ID [flags]", "Create an identity",
		`Create an identity: an owner of keys, known by your own id for it, whose
limits all its keys share. Its id is printed; give it to keygate keys create
--identity to put keys in it.`,
		`  keygate identities create --external-id cus_4Fz9 --workspace tiger --rate requests=100/1s --credits 10000 --refill 10000/month
  ID=$(keygate identities create --external-id cus_4Fz9 -o json | jq -r .id)`,
		cobra.NoArgs)
	fs := cmd.Flags()
	fs.StringVar(&o.ExternalID, "external-id", "", "your own id of the owner, unique in the workspace (required)")
	fs.StringVar(&o.Workspace, "workspace", "", "the workspace of the identity and of its keys")
	fs.StringArrayVar(&o.Metadata, "metadata", nil, "key=value kept with the identity (repeatable)")
	cmdutil.Topic(fs, "Identity", "external-id", "workspace", "metadata")
	fs.StringArrayVar(&o.Rates, "rate", nil, limitsHelp["rate"])
	fs.StringArrayVar(&o.OnDemandRates, "on-demand-rate", nil, limitsHelp["on-demand-rate"])
	fs.StringVar(&o.Credits, "credits", "", limitsHelp["credits"])
	fs.StringVar(&o.Refill, "refill", "", limitsHelp["refill"])
	cmdutil.Topic(fs, "Limits", "rate", "on-demand-rate", "credits", "refill")
	o.API.AddFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runCreate(cmd.Context(), o)
	}
	return cmd
}

// request checks the options and returns the API's request.
func (o *createOptions) request() (client.CreateIdentityRequest, error) {
	req := client.CreateIdentityRequest{ExternalID: strings.TrimSpace(o.ExternalID), Workspace: o.Workspace}
	if req.ExternalID == "" {
		return req, cmdutil.Usagef("--external-id is required: your own id of the identity's owner")
	}
	var err error
	if req.Metadata, err = parseMetadata(o.Metadata); err != nil {
		return req, err
	}
	var limits client.IdentityLimits
	if limits.RateLimits, err = apicmd.ParseRateLimits("--rate", o.Rates, o.OnDemandRates); err != nil {
		return req, err
	}
	switch {
	case o.Credits != "":
		n, err := parseCredits(o.Credits, false)
		if err != nil {
			return req, err
		}
		limits.Credits = &client.Credits{Remaining: n}
		if o.Refill != "" {
			r, err := apicmd.ParseRefill(o.Refill)
			if err != nil {
				return req, cmdutil.Usagef("--refill %q: %v", o.Refill, err)
			}
			limits.Credits.Refill = &r
		}
	case o.Refill != "":
		return req, cmdutil.Usagef("--refill needs --credits: the balance to start from")
	}
	if len(limits.RateLimits) > 0 || limits.Credits != nil {
		req.Limits = &limits
	}
	return req, nil
}

// runCreate creates the identity and prints it.
func runCreate(ctx context.Context, o *createOptions) error {
	req, err := o.request()
	if err != nil {
		return err
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	id, _, err := c.Identities().Create(ctx, req)
	if err != nil {
		return apicmd.Error(err)
	}
	return printIdentity(o.IO, o.API.Output, id)
}

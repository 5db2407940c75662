package identities

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// updateOptions are the settings of keygate identities update: a field
// changes only when its flag is in Set.
type updateOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options
	ID  string
	// Set holds the names of the flags given.
	Set map[string]bool

	ExternalID           string
	Metadata             []string
	ClearMetadata        bool
	Rates, OnDemandRates []string
	ClearRates           bool
	Credits, Refill      string
	Version              int64
}

// updateFlags are the flags that change an identity.
var updateFlags = []string{"external-id", "metadata", "clear-metadata", "rate", "on-demand-rate", "clear-rates", "credits", "refill"}

// newUpdateCmd returns keygate identities update.
func newUpdateCmd(ios *cmdutil.IOStreams, runF func(context.Context, *updateOptions) error) *cobra.Command {
	o := &updateOptions{IO: ios}
	cmd := newVerb("update ID [flags]", "Change an identity's external id, metadata or limits",
		`Change an identity: only what the flags given say. --rate and
--on-demand-rate replace every rate limit with those given; --clear-rates
removes them all. --credits sets the balance (its period then counts from
now); without it the balance stays what the keys left of it. --version
updates only that version of the identity (else 409 conflict, exit 1).`,
		`  keygate identities update $ID --credits 5000
  keygate identities update $ID --rate requests=50/1s --on-demand-rate tokens=100000/1h --version 3
  keygate identities update $ID --refill none
  keygate identities update $ID --credits none --clear-rates`,
		cobra.ExactArgs(1))
	fs := cmd.Flags()
	fs.StringVar(&o.ExternalID, "external-id", "", "new external id")
	fs.StringArrayVar(&o.Metadata, "metadata", nil, "replace the metadata with these key=value pairs (repeatable)")
	fs.BoolVar(&o.ClearMetadata, "clear-metadata", false, "remove every metadata pair")
	fs.Int64Var(&o.Version, "version", 0, "update only if the identity is at this version (as keygate identities get shows it)")
	cmdutil.Topic(fs, "Identity", "external-id", "metadata", "clear-metadata", "version")
	fs.StringArrayVar(&o.Rates, "rate", nil, limitsHelp["rate"]+"; replaces every rate limit")
	fs.StringArrayVar(&o.OnDemandRates, "on-demand-rate", nil, limitsHelp["on-demand-rate"]+"; replaces every rate limit")
	fs.BoolVar(&o.ClearRates, "clear-rates", false, "remove every rate limit")
	fs.StringVar(&o.Credits, "credits", "", `set the balance of credits, or "none" to remove the credits`)
	fs.StringVar(&o.Refill, "refill", "", limitsHelp["refill"]+`, or "none"`)
	cmdutil.Topic(fs, "Limits", "rate", "on-demand-rate", "clear-rates", "credits", "refill")
	o.API.AddFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		o.ID, o.Set = args[0], map[string]bool{}
		cmd.Flags().Visit(func(f *pflag.Flag) { o.Set[f.Name] = true })
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runUpdate(cmd.Context(), o)
	}
	return cmd
}

// request checks the options and returns the API's request.
func (o *updateOptions) request() (client.UpdateIdentityRequest, error) {
	req := client.UpdateIdentityRequest{Version: o.Version}
	changes := false
	for _, f := range updateFlags {
		changes = changes || o.Set[f]
	}
	rates := o.Set["rate"] || o.Set["on-demand-rate"]
	switch {
	case !changes:
		return req, cmdutil.Usagef("nothing to change: give --external-id, --metadata, --clear-metadata, --rate, --on-demand-rate, --clear-rates, --credits or --refill")
	case o.Set["metadata"] && o.Set["clear-metadata"]:
		return req, cmdutil.Usagef("give --metadata or --clear-metadata, not both")
	case rates && o.Set["clear-rates"]:
		return req, cmdutil.Usagef("give --rate and --on-demand-rate, or --clear-rates, not both")
	case o.Set["version"] && o.Version <= 0:
		return req, cmdutil.Usagef("--version must be positive")
	case o.Credits == "none" && o.Set["refill"]:
		return req, cmdutil.Usagef("--credits none removes the credits and their refill: give no --refill")
	}
	if o.Set["external-id"] {
		req.ExternalID = &o.ExternalID
	}
	if o.Set["metadata"] || o.Set["clear-metadata"] {
		md, err := parseMetadata(o.Metadata)
		if err != nil {
			return req, err
		}
		if md == nil {
			md = map[string]string{}
		}
		req.Metadata = &md
	}
	var limits client.IdentityLimitsUpdate
	if rates || o.Set["clear-rates"] {
		rls, err := apicmd.ParseRateLimits("--rate", o.Rates, o.OnDemandRates)
		if err != nil {
			return req, err
		}
		if rls == nil {
			rls = []client.NamedRateLimit{}
		}
		limits.RateLimits = &rls
	}
	if o.Set["credits"] || o.Set["refill"] {
		cu := &client.CreditsUpdate{}
		if o.Set["credits"] {
			n, err := parseCredits(o.Credits, true)
			if err != nil {
				return req, err
			}
			cu.Remaining = &n
		}
		if o.Set["refill"] {
			cu.Refill = &client.Refill{}
			if o.Refill != "none" {
				r, err := apicmd.ParseRefill(o.Refill)
				if err != nil {
					return req, cmdutil.Usagef("--refill %q: %v (or none)", o.Refill, err)
				}
				cu.Refill = &r
			}
		}
		limits.Credits = cu
	}
	if limits != (client.IdentityLimitsUpdate{}) {
		req.Limits = &limits
	}
	return req, nil
}

// runUpdate changes the identity and prints it.
func runUpdate(ctx context.Context, o *updateOptions) error {
	id, err := parseID(o.ID)
	if err != nil {
		return err
	}
	req, err := o.request()
	if err != nil {
		return err
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	got, _, err := c.Identities().Update(ctx, id, req)
	if err != nil {
		return apicmd.Error(err)
	}
	return printIdentity(o.IO, o.API.Output, got)
}

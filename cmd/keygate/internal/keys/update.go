package keys

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// updateOptions are the settings of keygate keys update: a field changes
// only when its flag is in Set.
type updateOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options
	ID  string
	// Set holds the names of the flags given.
	Set map[string]bool

	Name, Description, Role        string
	Scopes, AddScopes, RemoveScope []string
	Metadata                       []string
	ClearMetadata                  bool
	Expiry                         string
	Rate, Uses                     string
	NamedRates, OnDemandRates      []string
	ClearNamedRates                bool
	Refill                         string
	AllowCIDRs                     []string
	Version                        int64
	// Identity is the id of the identity to move the key to, or "none".
	Identity string
}

// updateFlags are the flags that change a key.
var updateFlags = []string{"name", "description", "role", "scope", "add-scope", "remove-scope", "metadata", "clear-metadata",
	"expiry", "rate", "named-rate", "on-demand-rate", "clear-named-rates", "uses", "refill", "allow-cidr", "identity"}

// newUpdateCmd returns keygate keys update.
func newUpdateCmd(ios *cmdutil.IOStreams, runF func(context.Context, *updateOptions) error) *cobra.Command {
	o := &updateOptions{IO: ios}
	cmd := newVerb("update ID [flags]", "Change a key's name, permissions, expiry or limits",
		`Change a key: only what the flags given say. The change applies to the
key's next verification. --version updates only that version of the key
(else the API answers 409 conflict, exit 1); --add-scope and --remove-scope
read the key first and update only the version they read. --named-rate
and --on-demand-rate replace every named rate limit (the key's own --rate
aside) with those given; --clear-named-rates removes them. --uses sets the
balance (a refill's period then counts from now); without it the balance
stays what verifications left of it.`,
		`  keygate keys update $ID --add-scope cluster:write
  keygate keys update $ID --expiry 90d --rate 1000/1h --version 3
  keygate keys update $ID --uses unlimited --allow-cidr any
  keygate keys update $ID --named-rate tokens=50000/1h --refill 500/month:31`,
		cobra.ExactArgs(1))
	fs := cmd.Flags()
	fs.StringVar(&o.Name, "name", "", "new name")
	fs.StringVar(&o.Description, "description", "", "new description")
	fs.StringVar(&o.Role, "role", "", `new role ("" for none)`)
	fs.StringArrayVar(&o.Scopes, "scope", nil, "replace the scopes with these (repeatable)")
	fs.StringArrayVar(&o.AddScopes, "add-scope", nil, "add a scope (repeatable)")
	fs.StringArrayVar(&o.RemoveScope, "remove-scope", nil, "remove a scope (repeatable)")
	fs.StringArrayVar(&o.Metadata, "metadata", nil, "replace the metadata with these key=value pairs (repeatable)")
	fs.BoolVar(&o.ClearMetadata, "clear-metadata", false, "remove every metadata pair")
	fs.StringVar(&o.Expiry, "expiry", "", "new expiry, counted from now: "+expiryHelp)
	fs.Int64Var(&o.Version, "version", 0, "update only if the key is at this version (as keygate keys get shows it)")
	fs.StringVar(&o.Identity, "identity", "", `move the key to this identity of its workspace, or "none" to take it out of its identity`)
	cmdutil.Topic(fs, "Key", "name", "description", "role", "scope", "add-scope", "remove-scope", "metadata", "clear-metadata", "expiry", "identity", "version")
	fs.StringVar(&o.Rate, "rate", "", limitsHelp["rate"]+`, or "none"`)
	fs.StringArrayVar(&o.NamedRates, "named-rate", nil, limitsHelp["named-rate"]+"; replaces every named rate limit")
	fs.StringArrayVar(&o.OnDemandRates, "on-demand-rate", nil, limitsHelp["on-demand-rate"]+"; replaces every named rate limit")
	fs.BoolVar(&o.ClearNamedRates, "clear-named-rates", false, "remove every named rate limit (not --rate)")
	fs.StringVar(&o.Uses, "uses", "", limitsHelp["uses"]+`, or "unlimited" (which removes the refill too)`)
	fs.StringVar(&o.Refill, "refill", "", limitsHelp["refill"]+`, or "none"`)
	fs.StringArrayVar(&o.AllowCIDRs, "allow-cidr", nil, `replace the allowed prefixes with these (repeatable), or "any" to remove the allow-list`)
	cmdutil.Topic(fs, "Limits", "rate", "named-rate", "on-demand-rate", "clear-named-rates", "uses", "refill", "allow-cidr")
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

// request checks the options and returns the API's request, except for
// --add-scope and --remove-scope, which need the key's scopes.
func (o *updateOptions) request() (client.UpdateRequest, error) {
	req := client.UpdateRequest{Version: o.Version}
	changes := false
	for _, f := range updateFlags {
		changes = changes || o.Set[f]
	}
	switch {
	case !changes:
		return req, cmdutil.Usagef("nothing to change: give one of --%s", joinFlags(updateFlags))
	case o.Set["scope"] && (o.Set["add-scope"] || o.Set["remove-scope"]):
		return req, cmdutil.Usagef("--scope replaces the scopes: give it, or --add-scope and --remove-scope, not both")
	case o.Set["metadata"] && o.Set["clear-metadata"]:
		return req, cmdutil.Usagef("give --metadata or --clear-metadata, not both")
	case o.Set["version"] && o.Version <= 0:
		return req, cmdutil.Usagef("--version must be positive")
	case (o.Set["named-rate"] || o.Set["on-demand-rate"]) && o.Set["clear-named-rates"]:
		return req, cmdutil.Usagef("give --named-rate and --on-demand-rate, or --clear-named-rates, not both")
	case o.Uses == "unlimited" && o.Set["refill"]:
		return req, cmdutil.Usagef("--uses unlimited removes the uses and their refill: give no --refill")
	}
	if o.Set["name"] {
		req.Name = &o.Name
	}
	if o.Set["description"] {
		req.Description = &o.Description
	}
	if o.Set["role"] {
		req.Role = &o.Role
	}
	if o.Set["scope"] {
		scopes := slices.Clone(o.Scopes)
		req.Scopes = &scopes
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
	if o.Set["expiry"] {
		if err := checkExpiry("--expiry", o.Expiry); err != nil {
			return req, err
		}
		req.Expiry = &o.Expiry
	}
	var limits client.LimitsUpdate
	if o.Set["rate"] {
		r, err := parseRate(o.Rate, true)
		if err != nil {
			return req, err
		}
		limits.Rate = &r
	}
	if o.Set["named-rate"] || o.Set["on-demand-rate"] || o.Set["clear-named-rates"] {
		rls, err := apicmd.ParseRateLimits("--named-rate", o.NamedRates, o.OnDemandRates)
		if err != nil {
			return req, err
		}
		if rls == nil {
			rls = []client.NamedRateLimit{}
		}
		limits.RateLimits = &rls
	}
	if o.Set["uses"] {
		n, err := parseUses(o.Uses, true)
		if err != nil {
			return req, err
		}
		limits.UsesRemaining = &n
	}
	if o.Set["refill"] {
		limits.UsesRefill = &client.Refill{}
		if o.Refill != "none" {
			r, err := apicmd.ParseRefill(o.Refill)
			if err != nil {
				return req, cmdutil.Usagef("--refill %q: %v (or none)", o.Refill, err)
			}
			limits.UsesRefill = &r
		}
	}
	if o.Set["allow-cidr"] {
		cidrs := []string{}
		if !(len(o.AllowCIDRs) == 1 && o.AllowCIDRs[0] == "any") {
			if err := checkCIDRs(o.AllowCIDRs); err != nil {
				return req, err
			}
			cidrs = o.AllowCIDRs
		}
		limits.AllowedCIDRs = &cidrs
	}
	if limits != (client.LimitsUpdate{}) {
		req.Limits = &limits
	}
	if o.Set["identity"] {
		id := ""
		if o.Identity != "none" {
			if _, err := uuid.Parse(o.Identity); err != nil || len(o.Identity) != 36 {
				return req, cmdutil.Usagef("--identity %q: want an identity's id, a UUID as keygate identities list shows, or none", o.Identity)
			}
			id = o.Identity
		}
		req.IdentityID = &id
	}
	return req, nil
}

// runUpdate changes the key and prints it.
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
	if o.Set["add-scope"] || o.Set["remove-scope"] {
		k, _, err := c.Get(ctx, id)
		if err != nil {
			return apicmd.Error(err)
		}
		if req.Version == 0 {
			req.Version = k.Version // no change made in between is lost
		}
		scopes := slices.DeleteFunc(slices.Clone(k.Scopes), func(s string) bool { return slices.Contains(o.RemoveScope, s) })
		for _, s := range o.AddScopes {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
		req.Scopes = &scopes
	}
	k, _, err := c.Update(ctx, id, req)
	if err != nil {
		return apicmd.Error(err)
	}
	if o.API.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, k)
	}
	return printKey(o.IO.Out, k, time.Now())
}

// joinFlags returns names as "a, --b or --c".
func joinFlags(names []string) string {
	s := ""
	for i, n := range names {
		switch {
		case i == 0:
			s = n
		case i == len(names)-1:
			s += " or --" + n
		default:
			s += ", --" + n
		}
	}
	return s
}

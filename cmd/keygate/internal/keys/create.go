package keys

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// createOptions are the settings of keygate keys create.
type createOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options

	Name, Description, Owner, Workspace, Role string
	Scopes                                    []string
	Metadata                                  []string
	Expiry                                    string
	// Rate and Uses are "" when not given.
	Rate, Uses string
	// NamedRates and OnDemandRates are the key's other named rate limits,
	// NAME=REQUESTS/WINDOW each.
	NamedRates, OnDemandRates []string
	// Refill is the refill of the uses, "" for none.
	Refill       string
	AllowCIDRs   []string
	NewTokenFile string
	// Identity is the id of the identity to put the key in; "" for none.
	Identity string
}

// newCreateCmd returns keygate keys create; runF, when not nil, runs
// instead of runCreate (for tests of the flags).
func newCreateCmd(ios *cmdutil.IOStreams, runF func(context.Context, *createOptions) error) *cobra.Command {
	o := &createOptions{IO: ios}
	cmd := newVerb("create --name NAME --expiry EXPIRY (--role ROLE | --scope SCOPE...)", "Create a key; print its token once",
		`Create a key. Its token is printed once: alone on standard output (so that
TOKEN=$(keygate keys create ...) captures it, the key's id and details going to
standard error), or in the -o json object with the key, or written to
--new-token-file (mode 0600). It cannot be shown again.`,
		`  TOKEN=$(keygate keys create --name grafana --owner alice --scope organization:read --scope cluster:read --expiry 30d)
  keygate keys create --name ci --workspace tiger --role editor --expiry 2026-12-31 --rate 100/1m -o json > ci.json
  keygate keys create --name llm --workspace tiger --role editor --expiry 90d --named-rate tokens=100000/1h --uses 1000 --refill 1000/month
  keygate keys create --name deploy --workspace tiger --role editor --expiry 7d --allow-cidr 10.0.0.0/8 --new-token-file deploy.token`,
		cobra.NoArgs)
	fs := cmd.Flags()
	fs.StringVar(&o.Name, "name", "", "the key's name, unique in its workspace (required)")
	fs.StringVar(&o.Description, "description", "", "what the key is for")
	fs.StringVar(&o.Owner, "owner", "", "the user or service the key belongs to")
	fs.StringVar(&o.Workspace, "workspace", "", "the workspace the key is bound to (required by roles such as editor and viewer)")
	fs.StringVar(&o.Role, "role", "", "a role, such as admin, owner, editor or viewer (keygate serve's GET /v1/roles lists them)")
	fs.StringArrayVar(&o.Scopes, "scope", nil, "a permission such as cluster:read (repeatable)")
	fs.StringVar(&o.Expiry, "expiry", "", "when the key expires (required): "+expiryHelp)
	fs.StringArrayVar(&o.Metadata, "metadata", nil, "key=value kept with the key (repeatable)")
	fs.StringVar(&o.NewTokenFile, "new-token-file", "", "write the token to this file (mode 0600) instead of printing it")
	fs.StringVar(&o.Identity, "identity", "", "the id of an identity of the workspace to put the key in, sharing its limits (keygate identities list)")
	cmdutil.Topic(fs, "Key", "name", "description", "owner", "workspace", "role", "scope", "expiry", "metadata", "identity", "new-token-file")
	fs.StringVar(&o.Rate, "rate", "", limitsHelp["rate"])
	fs.StringArrayVar(&o.NamedRates, "named-rate", nil, limitsHelp["named-rate"])
	fs.StringArrayVar(&o.OnDemandRates, "on-demand-rate", nil, limitsHelp["on-demand-rate"])
	fs.StringVar(&o.Uses, "uses", "", limitsHelp["uses"])
	fs.StringVar(&o.Refill, "refill", "", limitsHelp["refill"])
	fs.StringArrayVar(&o.AllowCIDRs, "allow-cidr", nil, limitsHelp["allow-cidr"])
	cmdutil.Topic(fs, "Limits", "rate", "named-rate", "on-demand-rate", "uses", "refill", "allow-cidr")
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
func (o *createOptions) request() (client.CreateRequest, error) {
	req := client.CreateRequest{Name: strings.TrimSpace(o.Name), Description: o.Description, Owner: o.Owner,
		Workspace: o.Workspace, Role: o.Role, Scopes: o.Scopes, Expiry: o.Expiry}
	if req.Name == "" {
		return req, cmdutil.Usagef("--name is required")
	}
	if err := checkExpiry("--expiry", o.Expiry); err != nil {
		return req, err
	}
	if o.Role == "" && len(o.Scopes) == 0 {
		return req, cmdutil.Usagef("give the key --role, --scope or both: a key with no permission could do nothing")
	}
	var err error
	if req.Metadata, err = parseMetadata(o.Metadata); err != nil {
		return req, err
	}
	var limits client.Limits
	if o.Rate != "" {
		if limits.Rate, err = parseRate(o.Rate, false); err != nil {
			return req, err
		}
	}
	if limits.RateLimits, err = apicmd.ParseRateLimits("--named-rate", o.NamedRates, o.OnDemandRates); err != nil {
		return req, err
	}
	if o.Uses != "" {
		n, err := parseUses(o.Uses, false)
		if err != nil {
			return req, err
		}
		limits.UsesRemaining = &n
	}
	if o.Refill != "" {
		if o.Uses == "" {
			return req, cmdutil.Usagef("--refill refills the uses: give --uses too")
		}
		r, err := apicmd.ParseRefill(o.Refill)
		if err != nil {
			return req, cmdutil.Usagef("--refill %q: %v", o.Refill, err)
		}
		limits.UsesRefill = &r
	}
	if err := checkCIDRs(o.AllowCIDRs); err != nil {
		return req, err
	}
	limits.AllowedCIDRs = o.AllowCIDRs
	if o.Identity != "" {
		if _, err := uuid.Parse(o.Identity); err != nil || len(o.Identity) != 36 {
			return req, cmdutil.Usagef("--identity %q: want an identity's id, a UUID as keygate identities list shows", o.Identity)
		}
		req.IdentityID = o.Identity
	}
	if limits.Rate.Requests > 0 || len(limits.RateLimits) > 0 || limits.UsesRemaining != nil || len(limits.AllowedCIDRs) > 0 {
		req.Limits = &limits
	}
	return req, nil
}

// runCreate creates the key and prints it with its token.
func runCreate(ctx context.Context, o *createOptions) error {
	req, err := o.request()
	if err != nil {
		return err
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	created, _, err := c.Create(ctx, req)
	if err != nil {
		return apicmd.Error(err)
	}
	return printCreated(o.IO, o.API.Output, created, o.NewTokenFile, "created")
}

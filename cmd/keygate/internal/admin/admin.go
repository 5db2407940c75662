// Package admin is keygate admin: break-glass operations on the database
// itself, for when the API cannot be used.
//
// keygate admin bootstrap mints a super-admin key directly in the
// database, with the pepper of the configuration, for when every admin
// key is lost. It is audited as such: the audit event's actor is
// "break-glass:USER@HOST", and the key carries who made it, when and why
// in its description and metadata.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/config"
	"github.com/keygate/keygate/permission"
)

// NewCmd returns keygate admin.
func NewCmd(ios *cmdutil.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Break-glass operations on the database itself",
		Long: `Break-glass operations, made directly on the database with the pepper,
without the token service's API: for when it cannot be used.

  keygate admin bootstrap   mint a super-admin key, when every admin key is lost`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return cmdutil.Usagef("admin needs a command: bootstrap (see 'keygate admin --help')")
		},
	}
	cmd.AddCommand(newBootstrapCmd(ios, nil))
	return cmd
}

// bootstrapOptions are the settings of keygate admin bootstrap.
type bootstrapOptions struct {
	IO      *cmdutil.IOStreams
	Storage config.StorageOptions
	Peppers config.PepperOptions
	// Prefix is the token prefix: the service's --prefix.
	Prefix         string
	Name           string
	Expiry         string
	Reason         string
	AdminTokenFile string
	Yes            bool
	AllowNewPepper bool
	Output         cmdutil.Output
	// Operator is who runs the command, "USER@HOST"; found when empty.
	Operator string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Actor is the prefix of the audit actor of a break-glass key.
const Actor = "break-glass:"

// newBootstrapCmd returns keygate admin bootstrap.
func newBootstrapCmd(ios *cmdutil.IOStreams, runF func(context.Context, *bootstrapOptions) error) *cobra.Command {
	o := &bootstrapOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Mint a super-admin key directly in the database (break-glass)",
		Long: `Mint a super-admin key directly in the database, for when every admin key
is lost. It needs what keygate serve needs: the database (--db, --table-prefix)
and the peppers ($KEYGATE_PEPPER or --pepper-file; never generated here), the
same as the service's, and the service's token --prefix.

It refuses when no stored key uses the configuration's current pepper while
others do: the service most likely holds another pepper, and would never
verify the key (--allow-new-pepper overrides, when the service now runs with
this pepper because the old one is lost). Keys needing peppers the
configuration lacks are reported; they do not stop it.

It asks for confirmation on a terminal, and needs --yes otherwise. The token
is printed once, alone on standard output (or in the -o json object, or
written to --admin-token-file, mode 0600). The key expires after --expiry (1
day by default): use it to mint the admin keys you need, then revoke it.

The audit event (key.created, on standard error as keygate serve logs it)
names the actor "break-glass:USER@HOST", and the key's description and
metadata say who made it, when, and --reason.`,
		Example: `  KEYGATE_PEPPER=$(cat pepper) keygate admin bootstrap --db 'postgres://keygate@db/keys' --reason "INC-1234: admin keys lost" --admin-token-file admin.token`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.BindEnv(cmd.Flags(), ios.Getenv); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runBootstrap(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	o.Storage.AddFlags(fs)
	cmdutil.Group(fs, "Storage", "db", "table-prefix")
	o.Peppers.AddFlags(fs)
	cmdutil.Group(fs, "Peppers", "pepper-file")
	fs.StringVar(&o.Prefix, "prefix", "kg", "the token prefix: the service's --prefix")
	cmdutil.Group(fs, "Keys", "prefix")
	fs.StringVar(&o.Name, "name", "", "the key's name (default break-glass-admin-<UTC time>)")
	fs.StringVar(&o.Expiry, "expiry", "1d", `when the key expires: "1d", "7d", a date such as 2026-12-31, an RFC 3339 time, or "never"`)
	fs.StringVar(&o.Reason, "reason", "", "why, such as an incident number: kept in the key's metadata")
	fs.StringVar(&o.AdminTokenFile, "admin-token-file", "", "write the token to this file (mode 0600) instead of printing it")
	fs.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	fs.BoolVar(&o.AllowNewPepper, "allow-new-pepper", false, "mint the key even though no stored key uses the current pepper")
	cmdutil.Topic(fs, "Break-glass key", "name", "expiry", "reason", "admin-token-file", "yes", "allow-new-pepper")
	cmdutil.AddOutputFlag(fs, &o.Output)
	cmd.SetUsageFunc(cmdutil.GroupedUsage("Storage", "Peppers", "Keys", "Break-glass key", "Output"))
	return cmd
}

// operator returns "USER@HOST" for the audit trail.
func operator(getenv func(string) string) string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	} else if v := getenv("USER"); v != "" {
		name = v
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return name + "@" + host
}

// bootstrapJSON is the -o json form of the key made.
type bootstrapJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Hint      string    `json:"hint"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	PepperID  string    `json:"pepper_id"`
	Actor     string    `json:"actor"`
	Token     string    `json:"token,omitempty"`
	TokenFile string    `json:"token_file,omitempty"`
}

// runBootstrap mints the key.
func runBootstrap(ctx context.Context, o *bootstrapOptions) error {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	expiry, err := keygate.ParseExpiry(o.Expiry)
	if err != nil {
		return cmdutil.Usagef("--expiry %q: want \"1d\", a date, an RFC 3339 time or \"never\"", o.Expiry)
	}
	at := now().UTC()
	name := o.Name
	if name == "" {
		name = "break-glass-admin-" + at.Format("20060102T150405Z")
	}
	who := o.Operator
	if who == "" {
		who = operator(o.IO.Getenv)
	}
	st, err := config.OpenForCommand(ctx, o.Storage)
	if err != nil {
		return err
	}
	defer st.Close()
	hasher, source, err := config.HasherForCommand(o.Peppers, st.Target, o.IO.Getenv)
	if err != nil {
		return err
	}
	usage, err := st.Store.PepperUsage(ctx, at)
	if err != nil {
		return cmdutil.Unavailable(fmt.Errorf("read the keys of %s: %w (has keygate migrate run on it?)", st.Where, err))
	}
	current := hasher.PepperIDs()[0]
	errOut := o.IO.ErrOut
	fmt.Fprintf(errOut, "Database: %s %s\nPepper: id %s, from %s\n", st.Engine, st.Where, current, source)
	var total int64
	for _, n := range usage {
		total += n
	}
	if total > 0 {
		var parts []string
		for _, id := range slices.Sorted(maps.Keys(usage)) {
			parts = append(parts, fmt.Sprintf("%s (%d)", id, usage[id]))
		}
		fmt.Fprintf(errOut, "Stored keys use pepper id(s): %s\n", strings.Join(parts, ", "))
	}
	// Keys imported by their SHA-256 alone ("sha256") use no pepper; those
	// under "sha256:ID" use pepper ID.
	var peppered, underCurrent int64
	for id, n := range usage {
		if id == apikey.SHA256PepperID {
			continue
		}
		peppered += n
		if strings.TrimPrefix(id, apikey.SHA256PepperID+":") == current {
			underCurrent += n
		}
	}
	if peppered > 0 && underCurrent == 0 && !o.AllowNewPepper {
		return cmdutil.Refused(fmt.Errorf("no stored key uses pepper id %s, the current one of this configuration: the service most likely "+
			"holds another, and would never verify a key made with it. Give this command the service's $KEYGATE_PEPPER or --pepper-file; "+
			"if the service's pepper is lost for good and it now runs with this one, give --allow-new-pepper", current))
	}
	missing := map[string]int64{}
	for id, n := range usage {
		if !config.PepperHeld(id, hasher.PepperIDs(), true) {
			missing[id] = n
		}
	}
	if len(missing) > 0 {
		var parts []string
		for _, id := range slices.Sorted(maps.Keys(missing)) {
			parts = append(parts, fmt.Sprintf("%s (%d)", id, missing[id]))
		}
		fmt.Fprintf(errOut, "warning: keys use pepper ids this configuration lacks, and cannot verify with it: %s\n", strings.Join(parts, ", "))
	}
	if !o.Yes {
		ok, err := cmdutil.Confirm(o.IO, fmt.Sprintf("Mint super-admin key %s in this database, as %s%s?", name, Actor, who), "--yes")
		if err != nil {
			return err
		}
		if !ok {
			return cmdutil.Refused(fmt.Errorf("bootstrap: not confirmed; nothing was made"))
		}
	}
	logger := slog.New(slog.NewTextHandler(errOut, nil))
	m, err := keygate.New(keygate.Config{
		Store: st.Store, Hasher: hasher, Prefix: o.Prefix, Logger: logger,
		Auditor:  keygate.NewSlogAuditor(logger, 0),
		CacheTTL: -1, NegativeCacheTTL: -1, LastUsedInterval: -1,
	})
	if err != nil {
		return cmdutil.Usagef("%w", err)
	}
	defer m.Close(context.WithoutCancel(ctx))
	metadata := map[string]string{"created_by": "keygate admin bootstrap", "break_glass_by": who, "break_glass_at": at.Format(time.RFC3339)}
	if o.Reason != "" {
		metadata["reason"] = o.Reason
	}
	actor := keygate.Principal{ID: Actor + who, SuperAdmin: true}
	c, err := m.Create(ctx, actor, keygate.CreateRequest{
		Name: name,
		Description: fmt.Sprintf("Break-glass super-admin key, minted directly in the database by %s at %s with keygate admin bootstrap. "+
			"Mint the admin keys you need with it, then revoke it.", who, at.Format(time.RFC3339)),
		Owner:    Actor + who,
		Role:     permission.RoleAdmin,
		Metadata: metadata,
		Expiry:   expiry,
	})
	switch {
	case errors.Is(err, keygate.ErrUnavailable):
		return cmdutil.Unavailable(err)
	case err != nil:
		return cmdutil.Refused(err)
	}
	out := bootstrapJSON{ID: c.Key.ID.String(), Name: c.Key.Name, Hint: c.Key.Hint, Role: c.Key.Role, ExpiresAt: c.Key.ExpiresAt,
		PepperID: c.Key.PepperID, Actor: actor.ID}
	if o.AdminTokenFile != "" {
		if err := cmdutil.WriteSecretFile(o.AdminTokenFile, c.Token.Reveal()+"\n"); err != nil {
			return fmt.Errorf("--admin-token-file: %w (the key was made: id %s; revoke it)", err, c.Key.ID)
		}
		out.TokenFile = o.AdminTokenFile
	}
	expires := "never"
	if !c.Key.ExpiresAt.IsZero() {
		expires = c.Key.ExpiresAt.UTC().Format(time.RFC3339)
	}
	switch {
	case o.Output.JSON():
		if o.AdminTokenFile == "" {
			out.Token = c.Token.Reveal()
		}
		return cmdutil.PrintJSON(o.IO.Out, out)
	case o.AdminTokenFile != "":
		fmt.Fprintf(o.IO.Out, "Break-glass key %s (id %s, hint %s) minted, expiring %s; its token is in %s.\n", name, c.Key.ID, c.Key.Hint, expires, o.AdminTokenFile)
		return nil
	}
	fmt.Fprintf(errOut, "Break-glass key %s (id %s, hint %s) minted, expiring %s. Its token, on standard output, is shown this once.\n",
		name, c.Key.ID, c.Key.Hint, expires)
	_, err = fmt.Fprintln(o.IO.Out, c.Token.Reveal())
	return err
}

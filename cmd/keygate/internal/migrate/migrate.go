// Package migrate is keygate migrate: bringing the database's schema up
// to date, as keygate serve does on every start, for deployments that
// migrate as a step of their own.
package migrate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/config"
)

// options are the settings of keygate migrate.
type options struct {
	IO      *cmdutil.IOStreams
	Storage config.StorageOptions
	Output  cmdutil.Output
}

// NewCmd returns keygate migrate.
func NewCmd(ios *cmdutil.IOStreams) *cobra.Command {
	o := &options{IO: ios}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date",
		Long: `Create or upgrade keygate's tables in the database (--db, --table-prefix) to
the schema of this version, and print the versions applied. keygate serve does
the same on every start; run this as a deployment step of its own, before
the new version starts. Running it again does nothing; instances migrating
at once are serialized. It needs no pepper.`,
		Example: `  keygate migrate --db 'postgres://keygate@db/keys'`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.BindEnv(cmd.Flags(), ios.Getenv); err != nil {
				return err
			}
			return run(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	o.Storage.AddFlags(fs)
	cmdutil.Group(fs, "Storage", "db", "table-prefix")
	cmdutil.AddOutputFlag(fs, &o.Output)
	cmd.SetUsageFunc(cmdutil.GroupedUsage("Storage", "Output"))
	return cmd
}

// result is what keygate migrate did, as -o json prints it.
type result struct {
	Database string `json:"database"`
	// Version is the schema's version now; Applied the versions this run
	// applied, in order.
	Version int64   `json:"version"`
	Applied []int64 `json:"applied"`
}

// run migrates and prints what it did.
func run(ctx context.Context, o *options) error {
	st, err := config.OpenForCommand(ctx, o.Storage)
	if err != nil {
		return err
	}
	defer st.Close()
	// The version table is named after the keys table: sqlstore checked
	// the prefix, so it is safe in SQL.
	table := strings.TrimSuffix(st.Store.Table(), "keys") + "schema_migrations"
	versions := func() []int64 {
		var vs []int64
		// Before the first migration there is no table: no versions.
		_ = st.DB.SelectContext(ctx, &vs, "SELECT version FROM "+table)
		slices.Sort(vs)
		return vs
	}
	before := versions()
	if err := st.Migrate(ctx); err != nil {
		return cmdutil.Unavailable(err)
	}
	after := versions()
	r := result{Database: st.Engine + " " + st.Where, Applied: []int64{}}
	for _, v := range after {
		if !slices.Contains(before, v) {
			r.Applied = append(r.Applied, v)
		}
	}
	if len(after) > 0 {
		r.Version = after[len(after)-1]
	}
	if o.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, r)
	}
	if len(r.Applied) == 0 {
		_, err = fmt.Fprintf(o.IO.Out, "%s: the schema is at version %d, this version's: nothing to do.\n", r.Database, r.Version)
		return err
	}
	applied := make([]string, len(r.Applied))
	for i, v := range r.Applied {
		applied[i] = fmt.Sprint(v)
	}
	_, err = fmt.Fprintf(o.IO.Out, "%s: applied schema version(s) %s; the schema is at version %d.\n", r.Database, strings.Join(applied, ", "), r.Version)
	return err
}

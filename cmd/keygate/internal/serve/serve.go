// Package serve is keygate serve: keygate as a token service. It serves
// the key management API at /v1 (with its OpenAPI document at
// /v1/openapi.json), remote verification for other services (POST
// /v1/keys/verify), health and readiness probes, the admin console at
// /console/, and, when asked, Prometheus metrics on a separate address,
// GitHub secret scanning reports and a demo API.
package serve

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/config"
)

// NewCmd returns the serve command.
func NewCmd(ios *cmdutil.IOStreams) *cobra.Command {
	return newCmd(ios, nil)
}

// newCmd is NewCmd calling ready, when not nil, with the API's address
// once it accepts connections (for tests).
func newCmd(ios *cmdutil.IOStreams, ready func(addr string)) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run keygate as a token service",
		Long: `Run keygate as a token service: the key management API at /v1, remote
verification for other services, health probes (/healthz, /readyz) and the
admin console at /console/.

Storage is SQLite in ./keygate.db unless --db names another database. On the
first start with an empty database a super-admin key is created and its token
printed once. Every flag also reads the environment variable named after it.
Peppers come from $KEYGATE_PEPPER (and $KEYGATE_PEPPER_OLD) or --pepper-file,
never from the command line.`,
		Example: `  keygate serve                                   # SQLite in ./keygate.db on 127.0.0.1:8080
  KEYGATE_PEPPER=$(cat pepper) keygate serve --db 'postgres://keygate@db/keys' --redis redis://cache:6379`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.BindEnv(cmd.Flags(), ios.Getenv); err != nil {
				return err
			}
			if err := o.validate(); err != nil {
				return cmdutil.Usagef("%w", err)
			}
			if _, err := config.ParseDB(o.Storage.DB); err != nil {
				return cmdutil.Usagef("%w", err)
			}
			return Run(cmd.Context(), o, ios, ready)
		},
	}
	o.addFlags(cmd.Flags())
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		w := c.OutOrStderr()
		fmt.Fprintf(w, "Usage:\n  %s\n", c.UseLine())
		if c.HasExample() {
			fmt.Fprintf(w, "\nExamples:\n%s\n", c.Example)
		}
		cmdutil.PrintGroupedFlags(w, c.Flags(), topics...)
		return nil
	})
	return cmd
}

// Run serves until ctx ends, then shuts down gracefully: in-flight
// requests finish and last-used times are written. It listens before it
// touches the database, so that a bad address fails before anything is
// written. ready, when not nil, is called with the API's address once it
// accepts connections.
func Run(ctx context.Context, o *Options, ios *cmdutil.IOStreams, ready func(addr string)) error {
	logger := newLogger(o, ios.ErrOut)
	ls, err := listen(o)
	if err != nil {
		return cmdutil.Unavailable(err)
	}
	a, err := newApp(ctx, o, logger, ios.Getenv, ios.ErrOut)
	if err != nil {
		ls.close()
		return err
	}
	return a.serve(ctx, ls, ready)
}

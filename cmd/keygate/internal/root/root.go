// Package root assembles the keygate command from its subcommands.
package root

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/cmd/keygate/internal/admin"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/identities"
	"github.com/keygate/keygate/cmd/keygate/internal/keys"
	"github.com/keygate/keygate/cmd/keygate/internal/migrate"
	"github.com/keygate/keygate/cmd/keygate/internal/pepper"
	"github.com/keygate/keygate/cmd/keygate/internal/serve"
)

// NewCmd returns the keygate command with every subcommand.
func NewCmd(ios *cmdutil.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keygate",
		Short: "API keys: the token service and its command line",
		Long: `keygate issues, verifies and manages API keys.

  keygate serve        run the token service (REST API, console, remote verification)
  keygate keys ...     manage keys through a token service's REST API
  keygate identities   manage identities, owners of keys with shared limits
  keygate admin ...    break-glass operations on the database itself
  keygate pepper ...   which peppers the stored keys need; rotating them
  keygate migrate      bring the database schema up to date

Exit codes: 0 done, 1 refused (or a check failed), 2 wrong usage,
3 the service, database or Redis unavailable.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(ios.In)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return cmdutil.Usagef("%w (see '%s --help')", err, c.CommandPath())
	})
	cmd.AddCommand(serve.NewCmd(ios), keys.NewCmd(ios), identities.NewCmd(ios), admin.NewCmd(ios), pepper.NewCmd(ios), migrate.NewCmd(ios), newVersionCmd(ios))
	return cmd
}

// Main runs the keygate command with args and returns its exit code,
// having printed any error to ios.ErrOut.
func Main(ctx context.Context, ios *cmdutil.IOStreams, args []string) int {
	cmd := NewCmd(ios)
	cmd.SetArgs(args)
	c, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return cmdutil.ExitOK
	}
	code := cmdutil.ExitCode(err)
	_, flagged := errors.AsType[*cmdutil.ExitError](err) // the flag error function already said where to look
	if !flagged && (strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") ||
		strings.Contains(err.Error(), "accepts ") || strings.Contains(err.Error(), "requires ") || strings.Contains(err.Error(), "arg(s)")) {
		// cobra's own argument errors are usage errors too.
		code = cmdutil.ExitUsage
		err = fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	}
	if !errors.Is(err, cmdutil.ErrSilent) {
		fmt.Fprintln(ios.ErrOut, "keygate:", err)
	}
	return code
}

// newVersionCmd returns keygate version.
func newVersionCmd(ios *cmdutil.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print keygate's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(ios.Out, "keygate", Version())
			return nil
		},
	}
}

// Version returns the module version the binary was built from, with its
// VCS revision when known.
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " (" + rev[:min(12, len(rev))] + modified + ")"
	}
	return v + " " + info.GoVersion
}

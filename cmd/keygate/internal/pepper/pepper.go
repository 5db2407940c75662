// Package pepper is keygate pepper: which peppers the stored keys need,
// against those the configuration holds (status), and the steps of a
// rotation for this setup (rotate).
package pepper

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/cmd/keygate/internal/config"
)

// NewCmd returns keygate pepper.
func NewCmd(ios *cmdutil.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pepper",
		Short: "Which peppers the stored keys need; rotating them",
		Long: `A key's hash is an HMAC of its token under a pepper, a secret kept outside
the database; the key can verify only where that pepper is held.

  keygate pepper status   keys per pepper id, and which ids the configuration lacks
  keygate pepper rotate   the steps of a rotation, for this configuration

Both read the database (--db, --table-prefix) and the peppers
($KEYGATE_PEPPER with $KEYGATE_PEPPER_OLD, or --pepper-file) as keygate serve
does, and print no pepper.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return cmdutil.Usagef("pepper needs a command: status or rotate (see 'keygate pepper --help')")
		},
	}
	cmd.AddCommand(newStatusCmd(ios, nil), newRotateCmd(ios, nil))
	return cmd
}

// options are the settings of keygate pepper status and rotate.
type options struct {
	IO           *cmdutil.IOStreams
	Storage      config.StorageOptions
	Peppers      config.PepperOptions
	ImportSHA256 bool
	Output       cmdutil.Output
}

// newCmd returns a pepper verb with its flags.
func newCmd(ios *cmdutil.IOStreams, use, short, long string, run func(context.Context, *options) error) *cobra.Command {
	o := &options{IO: ios}
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long, Args: cobra.NoArgs,
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
	o.Peppers.AddFlags(fs)
	fs.BoolVar(&o.ImportSHA256, "import-sha256", false, "the service runs with --import-sha256: keys imported by their SHA-256 need no pepper")
	cmdutil.Group(fs, "Peppers", "pepper-file", "import-sha256")
	cmdutil.AddOutputFlag(fs, &o.Output)
	cmd.SetUsageFunc(cmdutil.GroupedUsage("Storage", "Peppers", "Output"))
	return cmd
}

// Status is the state of the peppers: -o json prints it.
type Status struct {
	// Database names the database, without its password.
	Database string `json:"database"`
	// Source says where the configuration's peppers came from.
	Source string `json:"source"`
	// Current is the id of the pepper new hashes are made with; Older
	// those still held to verify keys hashed before a rotation.
	Current string   `json:"current"`
	Older   []string `json:"older"`
	// Peppers are the ids the keys need and those configured, in order.
	Peppers []Usage `json:"peppers"`
	// Missing counts the keys that need each pepper id the configuration
	// lacks: they cannot verify.
	Missing map[string]int64 `json:"missing"`
}

// Usage is one pepper id: how many keys that may still verify need it,
// and whether the configuration holds it.
type Usage struct {
	ID string `json:"id"`
	// Keys counts the keys, not revoked nor expired, hashed under it (or
	// whose previous token, within its grace period, was).
	Keys int64 `json:"keys"`
	// Configured is "current", "older" or "" (not configured).
	Configured string `json:"configured"`
	// Held reports whether those keys can verify here.
	Held bool `json:"held"`
}

// status reads the usage of each pepper and compares it with the
// configuration.
func status(ctx context.Context, o *options, now time.Time) (*Status, error) {
	st, err := config.OpenForCommand(ctx, o.Storage)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	h, source, err := config.HasherForCommand(o.Peppers, st.Target, o.IO.Getenv)
	if err != nil {
		return nil, err
	}
	usage, err := st.Store.PepperUsage(ctx, now)
	if err != nil {
		return nil, cmdutil.Unavailable(fmt.Errorf("read the keys of %s: %w (has keygate migrate run on it?)", st.Where, err))
	}
	return newStatus(st.Engine+" "+st.Where, source, h.PepperIDs(), usage, o.ImportSHA256), nil
}

// newStatus compares usage with the pepper ids held (the current one
// first).
func newStatus(database, source string, held []string, usage map[string]int64, importSHA256 bool) *Status {
	s := &Status{Database: database, Source: source, Current: held[0], Older: held[1:], Peppers: []Usage{}, Missing: map[string]int64{}}
	if s.Older == nil {
		s.Older = []string{}
	}
	ids := slices.Clone(held)
	for _, id := range slices.Sorted(maps.Keys(usage)) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for i, id := range ids {
		u := Usage{ID: id, Keys: usage[id], Held: config.PepperHeld(id, held, importSHA256)}
		switch {
		case i == 0:
			u.Configured = "current"
		case i < len(held):
			u.Configured = "older"
		}
		if !u.Held && u.Keys > 0 {
			s.Missing[id] = u.Keys
		}
		s.Peppers = append(s.Peppers, u)
	}
	return s
}

// newStatusCmd returns keygate pepper status.
func newStatusCmd(ios *cmdutil.IOStreams, run func(context.Context, *options) error) *cobra.Command {
	if run == nil {
		run = runStatus
	}
	return newCmd(ios, "status", "Keys per pepper id, and which ids the configuration lacks (exit 1 if any)",
		`For each pepper id: how many keys that may still verify (not revoked nor
expired) need it, and whether the configuration holds it. Exit 1 when keys
need a pepper the configuration lacks: they cannot verify until it is
supplied. During a rotation, an older pepper's count falls as its keys are
used (each is re-hashed under the current pepper); at 0 it may be removed.`, run)
}

// runStatus prints the status, and ends with exit 1 if peppers are
// missing.
func runStatus(ctx context.Context, o *options) error {
	s, err := status(ctx, o, time.Now())
	if err != nil {
		return err
	}
	if o.Output.JSON() {
		err = cmdutil.PrintJSON(o.IO.Out, s)
	} else {
		err = printStatus(o.IO.Out, s)
	}
	if err != nil {
		return err
	}
	if len(s.Missing) > 0 {
		return cmdutil.Refused(&config.MissingPeppersError{Missing: s.Missing, Held: append([]string{s.Current}, s.Older...)})
	}
	return nil
}

// printStatus writes s as a table.
func printStatus(w io.Writer, s *Status) error {
	fmt.Fprintf(w, "Database: %s\nPeppers:  from %s\n\n", s.Database, s.Source)
	t := cmdutil.NewTable(w)
	fmt.Fprintln(t, "PEPPER ID\tKEYS\tCONFIGURED\tNOTE")
	for _, u := range s.Peppers {
		note := ""
		switch {
		case u.Configured == "older" && u.Keys == 0:
			note = "no key needs it: it may be removed from every instance"
		case u.Configured == "older":
			note = "its keys move to " + s.Current + " on their next use"
		case !u.Held:
			note = "MISSING: these keys cannot verify"
		case u.Configured == "":
			note = "held through --import-sha256"
		}
		fmt.Fprintf(t, "%s\t%d\t%s\t%s\n", cmdutil.Clean(u.ID), u.Keys, orDash(u.Configured), note)
	}
	return t.Flush()
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newRotateCmd returns keygate pepper rotate.
func newRotateCmd(ios *cmdutil.IOStreams, run func(context.Context, *options) error) *cobra.Command {
	if run == nil {
		run = runRotate
	}
	return newCmd(ios, "rotate", "Print the steps of a pepper rotation for this configuration",
		`Print the steps of a pepper rotation, for where this configuration's
peppers come from and how far a rotation under way has gone. It changes
nothing: the rotation is a change of configuration, deployed in two steps.`, run)
}

// runRotate prints the rotation's steps.
func runRotate(ctx context.Context, o *options) error {
	s, err := status(ctx, o, time.Now())
	if err != nil {
		return err
	}
	return printRotation(o.IO.Out, s)
}

// printRotation writes the steps of a rotation for s.
func printRotation(w io.Writer, s *Status) error {
	fromFile := strings.HasPrefix(s.Source, "--pepper-file ") || strings.HasPrefix(s.Source, "file ")
	var file string
	if fromFile {
		_, file, _ = strings.Cut(s.Source, " ")
	}
	var pending []string
	for _, u := range s.Peppers {
		if u.Configured == "older" && u.Keys > 0 {
			pending = append(pending, fmt.Sprintf("%s (%d keys)", u.ID, u.Keys))
		}
	}
	fmt.Fprintf(w, "Peppers from %s: current %s", s.Source, s.Current)
	if len(s.Older) > 0 {
		fmt.Fprintf(w, ", older %s", strings.Join(s.Older, ", "))
	}
	fmt.Fprintln(w, ".")
	if len(pending) > 0 {
		fmt.Fprintf(w, "A rotation is under way: keys still use %s. Finish it (step 4) before starting another.\n", strings.Join(pending, ", "))
	}
	if len(s.Missing) > 0 {
		fmt.Fprintln(w, "Keys need peppers this configuration lacks: see keygate pepper status first.")
	}
	fmt.Fprintf(w, `
Steps of a rotation (every instance of the service must hold the same peppers):

 1. Make a new pepper with an id of your choice, such as the month:
      echo "NEW_ID:$(openssl rand -base64 32)"
    Keep it where the current one is kept, never in the database.
`)
	old := s.Current
	if fromFile {
		fmt.Fprintf(w, `
 2. Add it as an older pepper on every instance, as a line after the first of
      %s
    whose first line stays the current pepper, %s. Restart every instance,
    and wait until all of them run with it.

 3. Make it current on every instance: move its line first in that file,
    keeping %s's line after it. Restart every instance. New keys are
    hashed under the new pepper, and each key of %s is re-hashed under it
    on its next use.
`, file, old, old, old)
	} else {
		fmt.Fprintf(w, `
 2. Add it as an older pepper on every instance: keep KEYGATE_PEPPER as it
    is (%s, the current pepper) and set
      KEYGATE_PEPPER_OLD=NEW_ID:BASE64
    (comma-separated with any older ones). Restart every instance, and wait
    until all of them run with it.

 3. Make it current on every instance:
      KEYGATE_PEPPER=NEW_ID:BASE64
      KEYGATE_PEPPER_OLD=%s:BASE64  (the pepper KEYGATE_PEPPER held)
    Restart every instance. New keys are hashed under the new pepper, and
    each key of %s is re-hashed under it on its next use.
`, old, old, old)
	}
	fmt.Fprintf(w, `
    (Why two steps: an instance re-hashes a key under its current pepper;
    an instance not yet holding that pepper would then no longer find it.)

 4. Watch keygate pepper status: the count of %s falls as keys are
    used. Keys never used stay under it until they expire or are revoked:
    wait, or regenerate them. When it shows 0, remove %s from every
    instance. A pepper removed too early leaves its keys unable to verify:
    keygate serve then refuses to start, and names them.
`, old, old)
	return nil
}

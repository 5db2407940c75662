package keys

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// usageOptions are the settings of keygate keys usage.
type usageOptions struct {
	IO  *cmdutil.IOStreams
	API apicmd.Options
	ID  string
	// Bucket is "1h" or "1d"; Since, how far back from now ("7d",
	// "24h"); From and To, a range instead (RFC 3339 times or dates).
	Bucket, Since, From, To string
}

// newUsageCmd returns keygate keys usage.
func newUsageCmd(ios *cmdutil.IOStreams, runF func(context.Context, *usageOptions) error) *cobra.Command {
	o := &usageOptions{IO: ios}
	cmd := newVerb("usage ID", "Show how often a key was used, by outcome",
		`Show a key's usage history: its verifications per hour or per day (UTC), by
outcome: valid, or why it was refused (revoked, expired, rate_limited, ...).
The token service keeps hourly counts for 90 days by default (--usage-retention
of keygate serve); at most 90 days of hours or 366 days of days are shown at once.`,
		`  keygate keys usage 0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e                 # the last 7 days, per day
  keygate keys usage 0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e --bucket 1h --since 24h
  keygate keys usage 0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e --from 2026-11-01 --to 2026-12-01 -o json`,
		cobra.ExactArgs(1))
	fs := cmd.Flags()
	fs.StringVar(&o.Bucket, "bucket", client.BucketDay, "1h (hours) or 1d (days, UTC)")
	fs.StringVar(&o.Since, "since", "7d", `how far back from now, such as "7d" or "24h" (ignored with --from)`)
	fs.StringVar(&o.From, "from", "", "the start of the range: an RFC 3339 time or a date (2026-11-01)")
	fs.StringVar(&o.To, "to", "", "the end of the range (default: now)")
	cmdutil.Topic(fs, "Range", "bucket", "since", "from", "to")
	o.API.AddFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := prepare(cmd, ios); err != nil {
			return err
		}
		o.ID = args[0]
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runUsage(cmd.Context(), o, time.Now())
	}
	return cmd
}

// usageRange returns the range o asks for at now.
func (o *usageOptions) usageRange(now time.Time) (client.UsageOptions, error) {
	opts := client.UsageOptions{Bucket: o.Bucket}
	if o.Bucket != client.BucketHour && o.Bucket != client.BucketDay {
		return opts, cmdutil.Usagef("--bucket %q: want 1h or 1d", o.Bucket)
	}
	parse := func(flag, s string) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			return t, nil
		}
		return time.Time{}, cmdutil.Usagef("--%s %q: want an RFC 3339 time (2026-11-01T09:00:00Z) or a date (2026-11-01)", flag, s)
	}
	var err error
	if o.To != "" {
		if opts.To, err = parse("to", o.To); err != nil {
			return opts, err
		}
	} else {
		opts.To = now
	}
	if o.From != "" {
		opts.From, err = parse("from", o.From)
		return opts, err
	}
	back, err := parseSince(o.Since)
	if err != nil {
		return opts, err
	}
	opts.From = opts.To.Add(-back)
	return opts, nil
}

// parseSince parses --since: a positive number of days ("7d") or a Go
// duration ("24h").
func parseSince(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && fmt.Sprint(n) == days && n > 0 && n <= 366 {
			d = time.Duration(n) * 24 * time.Hour
		}
	} else if v, err := time.ParseDuration(s); err == nil && v > 0 {
		d = v
	}
	if d == 0 {
		return 0, cmdutil.Usagef(`--since %q: want a number of days ("7d", at most 366d) or a duration ("24h")`, s)
	}
	return d, nil
}

// runUsage prints the key's usage at now.
func runUsage(ctx context.Context, o *usageOptions, now time.Time) error {
	id, err := parseID(o.ID)
	if err != nil {
		return err
	}
	opts, err := o.usageRange(now)
	if err != nil {
		return err
	}
	c, err := o.API.Client(o.IO)
	if err != nil {
		return err
	}
	u, _, err := c.Usage(ctx, id, opts)
	if err != nil {
		return apicmd.Error(err)
	}
	if o.API.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, u)
	}
	return printUsage(o.IO.Out, u)
}

// printUsage writes a usage report as a table: a row per bucket, a column
// per outcome seen in the range (valid first), then the totals.
func printUsage(w interface{ Write([]byte) (int, error) }, u *client.Usage) error {
	var outcomes []string
	for o := range u.Totals {
		if o != "valid" {
			outcomes = append(outcomes, o)
		}
	}
	slices.Sort(outcomes)
	outcomes = append([]string{"valid"}, outcomes...)
	layout := "2006-01-02 15:04"
	if u.Bucket == client.BucketDay {
		layout = time.DateOnly
	}
	t := cmdutil.NewTable(w)
	fmt.Fprint(t, "START (UTC)")
	for _, o := range outcomes {
		fmt.Fprint(t, "\t"+strings.ToUpper(clean(o)))
	}
	fmt.Fprintln(t)
	for _, b := range u.Buckets {
		fmt.Fprint(t, b.Start.UTC().Format(layout))
		for _, o := range outcomes {
			fmt.Fprintf(t, "\t%d", b.Counts[o])
		}
		fmt.Fprintln(t)
	}
	fmt.Fprint(t, "TOTAL")
	for _, o := range outcomes {
		fmt.Fprintf(t, "\t%d", u.Totals[o])
	}
	fmt.Fprintln(t)
	return t.Flush()
}

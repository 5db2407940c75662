package identities

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// clean is cmdutil.Clean: every text from the API goes through it, or
// orDash, before a table prints it.
var clean = cmdutil.Clean

// orDash returns s cleaned, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// rates sums up an identity's rate limits: "requests=100/1s, tokens=9/1h (on demand)".
func rates(l client.IdentityLimits) string {
	return apicmd.FormatRates(l.RateLimits)
}

// credits sums up an identity's credits: "500 left, refilled to 1000 every month on day 1".
func credits(l client.IdentityLimits) string {
	c := l.Credits
	if c == nil {
		return "-"
	}
	return fmt.Sprintf("%d left", c.Remaining) + apicmd.FormatRefill(c.Refill)
}

// printIdentities writes identities as a table, one per line.
func printIdentities(w io.Writer, ids []*client.Identity) error {
	t := cmdutil.NewTable(w)
	fmt.Fprintln(t, "ID\tEXTERNAL ID\tWORKSPACE\tRATE LIMITS\tCREDITS")
	for _, id := range ids {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\n", id.ID, clean(id.ExternalID), orDash(id.Workspace), rates(id.Limits), credits(id.Limits))
	}
	return t.Flush()
}

// printIdentity writes one identity: its fields, one per line, or with
// out JSON the API's JSON.
func printIdentity(ios *cmdutil.IOStreams, out cmdutil.Output, id *client.Identity) error {
	if out.JSON() {
		return cmdutil.PrintJSON(ios.Out, id)
	}
	t := cmdutil.NewTable(ios.Out)
	row := func(name, value string) { fmt.Fprintf(t, "%s:\t%s\n", name, clean(value)) }
	row("id", id.ID.String())
	row("external id", id.ExternalID)
	row("workspace", orDash(id.Workspace))
	for _, k := range slices.Sorted(maps.Keys(id.Metadata)) {
		row("metadata", k+"="+id.Metadata[k])
	}
	row("rate limits", rates(id.Limits))
	row("credits", credits(id.Limits))
	if c := id.Limits.Credits; c != nil && !c.RefilledAt.IsZero() {
		row("balance set", c.RefilledAt.UTC().Format("2006-01-02 15:04")+" UTC")
	}
	row("version", fmt.Sprint(id.Version))
	return t.Flush()
}

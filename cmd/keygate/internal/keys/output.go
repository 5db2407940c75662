package keys

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/apicmd"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// status returns a key's state at now: revoked, disabled, expired or
// active.
func status(k *client.Key, now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.DisabledAt.IsZero():
		return "disabled"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}

// when formats a time for a table, in UTC to the minute; zero is none.
func when(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format("2006-01-02 15:04") + " UTC"
}

// permissions sums up a key's role and scopes in a few words.
func permissions(k *client.Key) string {
	var parts []string
	if k.Role != "" {
		parts = append(parts, k.Role)
	}
	if len(k.Scopes) > 0 {
		parts = append(parts, strings.Join(k.Scopes, ","))
	}
	if len(parts) == 0 {
		return "-"
	}
	return clean(strings.Join(parts, " +"))
}

// orDash returns s cleaned for the terminal (see cmdutil.Clean), or "-"
// when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return cmdutil.Clean(s)
}

// clean is cmdutil.Clean: every text from the API goes through it, or
// orDash, before a table prints it.
var clean = cmdutil.Clean

// printKeys writes keys as a table, one per line.
func printKeys(w io.Writer, keys []*client.Key, now time.Time) error {
	t := cmdutil.NewTable(w)
	fmt.Fprintln(t, "ID\tNAME\tWORKSPACE\tOWNER\tPERMISSIONS\tHINT\tSTATUS\tEXPIRES\tLAST USED")
	for _, k := range keys {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, clean(k.Name), orDash(k.Workspace), orDash(k.Owner), permissions(k),
			clean(k.Hint), status(k, now), when(k.ExpiresAt, "never"), when(k.LastUsedAt, "never"))
	}
	return t.Flush()
}

// printKey writes one key's fields, one per line.
func printKey(w io.Writer, k *client.Key, now time.Time) error {
	t := cmdutil.NewTable(w)
	row := func(name, value string) { fmt.Fprintf(t, "%s:\t%s\n", clean(name), clean(value)) }
	row("id", k.ID.String())
	row("name", k.Name)
	if k.Description != "" {
		row("description", k.Description)
	}
	row("owner", orDash(k.Owner))
	row("workspace", orDash(k.Workspace))
	if k.IdentityID != uuid.Nil {
		row("identity", k.IdentityID.String())
	}
	row("role", orDash(k.Role))
	row("scopes", orDash(strings.Join(k.Scopes, ", ")))
	row("hint", k.Hint)
	row("status", status(k, now))
	row("expires", when(k.ExpiresAt, "never"))
	row("created", when(k.CreatedAt, "-"))
	row("updated", when(k.UpdatedAt, "-"))
	row("last used", when(k.LastUsedAt, "never"))
	if !k.DisabledAt.IsZero() {
		row("disabled", when(k.DisabledAt, ""))
	}
	if !k.RevokedAt.IsZero() {
		row("revoked", when(k.RevokedAt, ""))
	}
	if l := k.Limits; l.Rate.Requests > 0 {
		row("rate limit", fmt.Sprintf("%d per %v", l.Rate.Requests, time.Duration(l.Rate.Window)))
	}
	if l := k.Limits; len(l.RateLimits) > 0 {
		row("named rate limits", apicmd.FormatRates(l.RateLimits))
	}
	if l := k.Limits; l.UsesRemaining != nil {
		row("uses left", fmt.Sprint(*l.UsesRemaining)+apicmd.FormatRefill(l.UsesRefill))
	}
	if l := k.Limits; len(l.AllowedCIDRs) > 0 {
		row("allowed from", strings.Join(l.AllowedCIDRs, ", "))
	}
	for _, name := range slices.Sorted(maps.Keys(k.Metadata)) {
		row("metadata "+name, k.Metadata[name])
	}
	row("version", fmt.Sprint(k.Version))
	return t.Flush()
}

// createdJSON is the -o json form of a new key: the API's, with the token,
// or the file it went to instead.
type createdJSON struct {
	Key       *client.Key `json:"key"`
	Token     string      `json:"token,omitempty"`
	TokenFile string      `json:"token_file,omitempty"`
}

// printCreated prints a key just created or regenerated, and its token
// once: with -o json, one object on stdout holding both; otherwise the
// token alone on stdout and what the key is on stderr, so that
// TOKEN=$(keygate keys create ...) captures the token alone. With
// tokenFile, the token goes to that file (mode 0600) instead, and the key
// to stdout.
func printCreated(ios *cmdutil.IOStreams, out cmdutil.Output, c *client.CreatedKey, tokenFile, verb string) error {
	if tokenFile != "" {
		if err := cmdutil.WriteSecretFile(tokenFile, c.Token.Reveal()+"\n"); err != nil {
			return fmt.Errorf("--new-token-file: %w (the key was %s: id %s)", err, verb, c.Key.ID)
		}
	}
	now := time.Now()
	switch {
	case out.JSON() && tokenFile != "":
		return cmdutil.PrintJSON(ios.Out, createdJSON{Key: c.Key, TokenFile: tokenFile})
	case out.JSON():
		return cmdutil.PrintJSON(ios.Out, createdJSON{Key: c.Key, Token: c.Token.Reveal()})
	case tokenFile != "":
		fmt.Fprintf(ios.ErrOut, "Key %s %s; its token is in %s (shown nowhere else, and never again).\n", clean(c.Key.Name), verb, tokenFile)
		return printKey(ios.Out, c.Key, now)
	}
	fmt.Fprintf(ios.ErrOut, "Key %s %s: id %s, hint %s, %s, expires %s.\n", clean(c.Key.Name), verb, c.Key.ID, clean(c.Key.Hint),
		permissions(c.Key), when(c.Key.ExpiresAt, "never"))
	fmt.Fprintln(ios.ErrOut, "Its token, on standard output, is shown this once: keep it now.")
	_, err := fmt.Fprintln(ios.Out, c.Token.Reveal())
	return err
}

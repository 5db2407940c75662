package cmdutil

import (
	"fmt"

	"github.com/spf13/cobra"
)

// GroupedUsage returns a usage function that prints a command's usage
// line, examples, and flags grouped by topic in the order given (see
// [PrintGroupedFlags]), each with the environment variable it reads.
func GroupedUsage(topics ...string) func(*cobra.Command) error {
	return func(c *cobra.Command) error {
		w := c.OutOrStderr()
		fmt.Fprintf(w, "Usage:\n  %s\n", c.UseLine())
		if c.HasAvailableSubCommands() {
			fmt.Fprintf(w, "\nCommands:\n")
			for _, sub := range c.Commands() {
				if sub.IsAvailableCommand() {
					fmt.Fprintf(w, "  %-12s %s\n", sub.Name(), sub.Short)
				}
			}
		}
		if c.HasExample() {
			fmt.Fprintf(w, "\nExamples:\n%s\n", c.Example)
		}
		PrintGroupedFlags(w, c.Flags(), topics...)
		return nil
	}
}

// Package cmdutil holds what every keygate command shares: the streams it
// reads and writes, the exit codes scripts branch on, flags that also
// read KEYGATE_* environment variables and print grouped by topic, and
// the choice between a table for people and JSON for scripts.
package cmdutil

//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package filestore

import "os"

// lockFile does nothing here: on this system nothing stops two Stores from
// opening the same log, and the caller must make sure only one does.
func lockFile(*os.File) error { return nil }

// syncDir does nothing here: directories cannot be fsynced on every
// system (Windows), so a file just created or renamed may not survive a
// power loss.
func syncDir(string) error { return nil }

//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package filestore

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f without waiting, or
// returns ErrLocked. The lock belongs to the open file: closing f releases
// it, and a process that dies releases it too, so no stale lock survives a
// crash. It is a separate file from the log because compaction replaces the
// log by renaming: a lock held on the old log's inode would not stop a
// Store opening the new one.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}

// syncDir fsyncs the directory holding path, so that a file created or
// renamed in it survives a crash.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

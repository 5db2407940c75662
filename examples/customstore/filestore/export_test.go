package filestore

// BreakLogForTest closes the log file under the Store, so that the next
// write fails with an I/O error, as a full or failing disk would.
func (s *Store) BreakLogForTest() error {
	s.writer <- struct{}{}
	defer s.unlockWriter()
	return s.log.Close()
}

// HoldWriterForTest takes the writer lock, as a write in progress does,
// and returns the function that releases it.
func (s *Store) HoldWriterForTest() (release func()) {
	s.writer <- struct{}{}
	return s.unlockWriter
}

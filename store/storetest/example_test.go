package storetest_test

import (
	"testing"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/memory"
	"github.com/keygate/keygate/store/storetest"
)

// A backend's conformance test: Run calls newStore for each subtest, which
// gets a fresh, empty store (here in memory; a SQL backend would create a
// schema or a table prefix of its own and drop it with t.Cleanup). See
// examples/customstore for a backend written from scratch that passes it.
func ExampleRun() {
	// In mystore_test.go:
	testConformance := func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			return memory.New()
		})
	}
	_ = testConformance
}

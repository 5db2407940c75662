package sqlstore_test

import (
	"testing"

	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/console/sessiontest"
	"github.com/keygate/keygate/store/sqlstore"
)

var _ console.SessionStore = (*sqlstore.Sessions)(nil)

// TestSessionsConformance runs the console's session store suite against
// every engine, each case on fresh tables.
func TestSessionsConformance(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var db = e.open(t)
			sessiontest.Run(t, func(t *testing.T) console.SessionStore {
				if e.dialect == sqlstore.SQLite {
					db = e.open(t)
				}
				return newStore(t, db, e.dialect).Sessions()
			})
		})
	}
}

// TestSessionsAcrossInstances runs the console end to end on two
// instances sharing the sessions of one database, on every engine.
func TestSessionsAcrossInstances(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			sessiontest.RunInstances(t, func(t *testing.T) console.SessionStore {
				return newStore(t, e.open(t), e.dialect).Sessions()
			})
		})
	}
}

// BenchmarkSessions measures the console's session store on every engine.
func BenchmarkSessions(b *testing.B) {
	for _, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			sessiontest.Benchmark(b, newStore(b, e.open(b), e.dialect).Sessions())
		})
	}
}

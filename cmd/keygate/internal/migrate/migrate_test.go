package migrate_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/cmd/keygate/internal/cmdtest"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// TestMigrate migrates a new database of every engine, then finds nothing
// to do, and says so in a table or JSON.
func TestMigrate(t *testing.T) {
	t.Parallel()
	for _, e := range cmdtest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			var r struct {
				Database string  `json:"database"`
				Version  int64   `json:"version"`
				Applied  []int64 `json:"applied"`
			}
			cmdtest.Run(t, cmdtest.Invocation{}, append([]string{"migrate", "-o", "json"}, e.Args()...)...).Decode(t, &r)
			// Every version, in order: 1 to the latest (a number may be
			// left out, as 6 is on a branch that adds 7 before it).
			if r.Version < 3 || len(r.Applied) < 3 || r.Applied[0] != 1 || r.Applied[len(r.Applied)-1] != r.Version ||
				!slices.IsSorted(r.Applied) || !strings.HasPrefix(r.Database, e.Name+" ") {
				t.Errorf("first run: %+v", r)
			}
			version := r.Version
			cmdtest.Run(t, cmdtest.Invocation{}, append([]string{"migrate", "-o", "json"}, e.Args()...)...).Decode(t, &r)
			if r.Version != version || len(r.Applied) != 0 {
				t.Errorf("second run: %+v", r)
			}
			res := cmdtest.Run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_DB": e.DB, "KEYGATE_TABLE_PREFIX": e.Prefix}}, "migrate")
			res.Want(t, 0)
			if !strings.HasSuffix(res.Out, ": the schema is at version "+itoa(version)+", this version's: nothing to do.\n") {
				t.Errorf("table: %q", res.Out)
			}
		})
	}
}

// TestMigrateFailures: a --db that does not parse is a usage error; one
// that cannot be reached is unavailable.
func TestMigrateFailures(t *testing.T) {
	t.Parallel()
	cmdtest.Run(t, cmdtest.Invocation{}, "migrate", "--db", "http://keys").Want(t, cmdutil.ExitUsage, "not supported")
	cmdtest.Run(t, cmdtest.Invocation{}, "migrate", "--db", "mysql://root@127.0.0.1:1/keys").Want(t, cmdutil.ExitUnavailable, "database mysql://root@127.0.0.1:1/keys")
	cmdtest.Run(t, cmdtest.Invocation{}, "migrate", "--table-prefix", "Bad-Prefix", "--db", t.TempDir()+"/k.db").Want(t, cmdutil.ExitUsage, "table prefix")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

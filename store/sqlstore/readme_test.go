package sqlstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeDDL checks that the package README carries the DDL of every
// migration file verbatim (with the default prefix), so that users who run
// their own migration tool get the schema Migrate applies.
func TestReadmeDDL(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	files, err := filepath.Glob(filepath.Join("migrations", "*", "*.sql"))
	if err != nil || len(files) < 3 || len(files)%3 != 0 {
		t.Fatalf("migration files: got %v (err %v), want as many per dialect", files, err)
	}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		want := strings.TrimSpace(strings.ReplaceAll(string(text), "{prefix}", "keygate_"))
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md does not contain the DDL of %s verbatim; update it:\n%s", f, want)
		}
	}
}

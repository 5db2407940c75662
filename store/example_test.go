package store_test

import (
	"log/slog"
	"os"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// A Key logs (and prints, and marshals to JSON) without its hashes and
// pepper ids, so that a record dumped into a log never helps anyone
// guess a token.
func ExampleKey_LogValue() {
	k := &store.Key{
		ID:        uuid.MustParse("019a0000-0000-7000-8000-000000000001"),
		Name:      "ci",
		Workspace: "tiger",
		Role:      "viewer",
		Hash:      []byte("digest of the token"),
		PepperID:  "p1",
		Version:   3,
	}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a fixed output for the example
			}
			return a
		},
	}))
	logger.Info("key changed", "key", k)
	// Output:
	// level=INFO msg="key changed" key.id=019a0000-0000-7000-8000-000000000001 key.name=ci key.workspace=tiger key.role=viewer key.version=3
}

package config

import (
	"context"
	"errors"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/store/sqlstore"
)

// OpenForCommand is [Open] for a command that ends on its error: a --db
// that does not parse is a usage error (exit 2), a database that cannot be
// opened or reached is unavailable (exit 3), and a bad --table-prefix a
// usage error again.
func OpenForCommand(ctx context.Context, o StorageOptions) (*Storage, error) {
	if _, err := ParseDB(o.DB); err != nil {
		return nil, cmdutil.Usagef("%w", err)
	}
	s, err := Open(ctx, o)
	switch {
	case errors.Is(err, sqlstore.ErrConfig):
		return nil, cmdutil.Usagef("%w", err) // such as a bad --table-prefix
	case err != nil:
		return nil, cmdutil.Unavailable(err)
	}
	return s, nil
}

// HasherForCommand is [LoadHasher] for a command that only reads peppers
// (it never generates one): a pepper missing or malformed is a usage
// error (exit 2).
func HasherForCommand(o PepperOptions, t *Target, getenv func(string) string) (*apikey.Hasher, string, error) {
	h, source, err := LoadHasher(o, t, getenv, false)
	if err != nil {
		return nil, "", cmdutil.Usagef("%w", err)
	}
	return h, source, nil
}

package config

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/sqlstore"
)

// MissingPeppersError means keys in the database need peppers the
// configuration does not hold: without them, those keys can never verify.
type MissingPeppersError struct {
	// Missing counts the keys that need each missing pepper id.
	Missing map[string]int64
	// Held are the ids of the configured peppers.
	Held []string
}

// Error says which pepper ids are missing, how many keys need each, and
// how to proceed.
func (e *MissingPeppersError) Error() string {
	var b strings.Builder
	b.WriteString("stored keys use peppers this configuration does not hold:\n")
	for _, id := range slices.Sorted(maps.Keys(e.Missing)) {
		if id == apikey.SHA256PepperID {
			fmt.Fprintf(&b, "  %d key(s) imported by their SHA-256 need --import-sha256\n", e.Missing[id])
			continue
		}
		if inner, ok := strings.CutPrefix(id, apikey.SHA256PepperID+":"); ok {
			fmt.Fprintf(&b, "  %d key(s) imported by their SHA-256 under pepper id %q need that pepper and --import-sha256\n", e.Missing[id], inner)
			continue
		}
		fmt.Fprintf(&b, "  pepper id %q: %d key(s)\n", id, e.Missing[id])
	}
	fmt.Fprintf(&b, "The configuration holds pepper id(s) %q. Without their pepper those keys can never verify.\n", e.Held)
	b.WriteString("To proceed: supply the missing pepper (as an older one: $KEYGATE_PEPPER_OLD, or a later line of --pepper-file);\n")
	b.WriteString("or, if it is lost for good, mint a new admin key with `keygate admin bootstrap` and reissue those keys;\n")
	b.WriteString("or start anyway with --allow-missing-peppers (those keys stay unusable)")
	return b.String()
}

// CheckPeppers returns a [*MissingPeppersError] when keys that may still
// verify at now need a pepper that h does not hold (with importSHA256,
// keys imported by their SHA-256 need none), nil when none do, or the
// store's error.
func CheckPeppers(ctx context.Context, st *sqlstore.Store, h *apikey.Hasher, importSHA256 bool, now time.Time) error {
	usage, err := st.PepperUsage(ctx, now)
	if err != nil {
		return fmt.Errorf("check peppers: %w", err)
	}
	held := h.PepperIDs()
	missing := map[string]int64{}
	for id, n := range usage {
		if !PepperHeld(id, held, importSHA256) {
			missing[id] += n
		}
	}
	if len(missing) > 0 {
		return &MissingPeppersError{Missing: missing, Held: held}
	}
	return nil
}

// PepperHeld reports whether a key stored under pepper id can verify with
// the peppers held: the id itself, or for keys imported by SHA-256 the
// lookup of SHA-256 (under "sha256", or peppered as "sha256:ID").
func PepperHeld(id string, held []string, importSHA256 bool) bool {
	if slices.Contains(held, id) {
		return true
	}
	if id == apikey.SHA256PepperID {
		return importSHA256
	}
	if inner, ok := strings.CutPrefix(id, apikey.SHA256PepperID+":"); ok {
		return importSHA256 && slices.Contains(held, inner)
	}
	return false
}

package keygate

import (
	"testing"

	"github.com/google/uuid"
)

// TestKeyActor: the id a key's principal acts as is "key:" and the key's
// canonical UUID.
func TestKeyActor(t *testing.T) {
	t.Parallel()
	for _, id := range []uuid.UUID{uuid.Nil, uuid.Max, uuid.New(), uuid.Must(uuid.NewV7())} {
		if got, want := keyActor(id), "key:"+id.String(); got != want {
			t.Errorf("keyActor(%v) = %q, want %q", id, got, want)
		}
	}
}

package keygate

import (
	"slices"

	"github.com/google/uuid"
)

// Binding returns what ties a principal taken from a verified key (see
// [Key.Principal]) to that key: the key's id and the stored hash of the
// secret it was verified with (the hash the key store holds, never the
// token); ok is false for any other principal. A session kept outside the
// process, such as the admin console's in a database shared by several
// instances, keeps these instead of the principal, and gets the
// principal back with [BoundPrincipal] and [Manager.Refresh]. The hash
// is a copy.
func (p Principal) Binding() (keyID uuid.UUID, secretHash []byte, ok bool) {
	if p.keyID == uuid.Nil {
		return uuid.Nil, nil, false
	}
	return p.keyID, slices.Clone(p.keyHash), true
}

// BoundPrincipal returns the principal of key keyID acting with the
// secret whose stored hash is secretHash, as [Principal.Binding] returned
// them, holding nothing yet: [Manager.Refresh] turns it into the key's
// principal as the key's record says now, or refuses it
// ([DeniedInactive]) when the key is revoked, disabled, deleted or
// expired, or secretHash is no longer the hash of its secret (nor, during
// a regeneration's grace period, of its previous secret, which may then
// view and verify keys but change none). Every management call checks it
// the same way. The zero keyID is no key's: its principal holds nothing.
//
// Whoever holds a key's id and stored hash can act as the key through a
// Manager: keep them as the key store is kept.
func BoundPrincipal(keyID uuid.UUID, secretHash []byte) Principal {
	p := Principal{keyID: keyID, keyHash: slices.Clone(secretHash)}
	if keyID != uuid.Nil {
		p.ID = "key:" + keyID.String()
	}
	return p
}

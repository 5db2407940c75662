package keygate

import (
	"bytes"
	"context"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store"
)

// Retired secrets. A secret leaves its key's record for good when a
// regeneration replaces it (past any grace period), when the previous
// secret of a grace period is replaced or cleared (by a regeneration, a
// revocation or a leak report), and when the key is deleted. Its hash is
// then written to the store's tombstones (store.Retirer) BEFORE the write
// that removes it from the record, so that an import, which looks a token
// up among the keys first and among the tombstones next, sees either the
// key (a duplicate) or the tombstone, never neither. A tombstone whose
// write was followed by a failed change is harmless: the key still holds
// the hash and is found first. A re-hash under another pepper retires
// nothing: the token stays live.
//
// Import refuses a token whose hash (under any held pepper, as a token or
// as a digest) is retired (ErrRetired). A key imported by its SHA-256
// alone cannot be checked so at import, since a token's hash needs the
// token; it is checked at its first use instead (see unshadow).

// retire writes the tombstones of the secrets before holds and after
// will not (after is nil for a deletion), before the write that makes
// after of before. It returns an error wrapping ErrUnavailable when the
// tombstones cannot be written; nothing is written for a store without
// store.Retirer (such a Manager refuses to import).
func (m *Manager) retire(ctx context.Context, before, after *store.Key) error {
	if m.retirer == nil {
		return nil
	}
	now := m.clock()
	var rs []store.RetiredHash
	for _, f := range []hashForm{{before.Hash, before.PepperID}, {before.PrevHash, before.PrevPepperID}} {
		if len(f.hash) == 0 || after != nil && (bytes.Equal(f.hash, after.Hash) || bytes.Equal(f.hash, after.PrevHash)) {
			continue
		}
		if m.keyed && f.pepperID == apikey.SHA256PepperID {
			// The plain digest an earlier version stored: its tombstone is
			// peppered, like the digests of imports now.
			d, err := m.storedDigest(f.hash)
			if err != nil {
				return errorf("keygate: retire secrets: %w", err)
			}
			f = d
		}
		rs = append(rs, store.RetiredHash{Hash: f.hash, PepperID: f.pepperID, At: now})
	}
	if len(rs) == 0 {
		return nil
	}
	var err error
	if is, ok := m.store.(*instrumentedStore); ok {
		err = is.retire(ctx, m.retirer, rs)
	} else {
		err = m.retirer.Retire(ctx, rs)
	}
	if err != nil {
		return errorf("keygate: retire secrets: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// retireOrLog is retire for a change that only takes secrets away (a
// revocation, the end of a leaked grace period): stopping a secret matters
// more than remembering it, so a failed tombstone is logged and the change
// goes ahead. Its secret may then be imported again later.
func (m *Manager) retireOrLog(ctx context.Context, before, after *store.Key) {
	if err := m.retire(ctx, before, after); err != nil {
		m.logger.WarnContext(ctx, "keygate: could not write the tombstones of a key's retired secrets; the change goes ahead",
			"key_id", before.ID, "error", err)
	}
}

// anyRetired reports whether any of forms is retired; the error wraps
// ErrUnavailable.
func (m *Manager) anyRetired(ctx context.Context, forms []hashForm) (bool, error) {
	hashes := make([][]byte, len(forms))
	for i, f := range forms {
		hashes[i] = f.hash
	}
	var ok bool
	var err error
	if is, isOK := m.store.(*instrumentedStore); isOK {
		ok, err = is.retired(ctx, m.retirer, hashes...)
	} else {
		ok, err = m.retirer.Retired(ctx, hashes...)
	}
	if err != nil {
		return false, errorf("keygate: check retired secrets: %w: %w", ErrUnavailable, err)
	}
	return ok, nil
}

// tokenForms returns every way a key may hold tok: its hash under each
// held pepper, then its SHA-256 as an imported digest (see digestForms).
func (m *Manager) tokenForms(tok apikey.Token) ([]hashForm, error) {
	var out []hashForm
	for _, p := range m.hasher.PepperIDs() {
		h, err := m.hasher.HashWith(p, tok)
		if err != nil {
			return nil, err
		}
		out = append(out, hashForm{h, p})
	}
	if !m.keyed {
		return out, nil // the SHA-256 is the token's hash
	}
	d := digestOf(tok.Reveal())
	forms, err := m.digestForms(d[:])
	if err != nil {
		return nil, err
	}
	return append(out, forms...), nil
}

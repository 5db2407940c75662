package keygate

import (
	"strings"

	"github.com/keygate/keygate/apikey"
)

// Keys imported by the SHA-256 of their token alone (ImportRequest.SHA256)
// are stored, until their first use, under the digest HMAC'd with a
// pepper (apikey.Hasher.HashDigestWith), never under the plain digest: a
// stolen database holds no unkeyed digest of any token. Their pepper id
// is digestPepperPrefix followed by the pepper's id ("sha256:2026-11"),
// which no Pepper may take (':' is not a pepper id character). Earlier
// versions stored the plain digest under apikey.SHA256PepperID; such keys
// are still found until their first use here re-hashes them.
//
// A Manager whose Hasher is apikey.NewSHA256Hasher (unkeyed, by the
// user's choice) stores a token's plain SHA-256 for every key: for it a
// digest is the token's own hash, and nothing here applies.

// digestPepperPrefix starts the pepper id of a digest hashed under a
// pepper.
const digestPepperPrefix = apikey.SHA256PepperID + ":"

// digestPepperID returns the pepper id of a digest hashed under the pepper
// with id pepperID.
func digestPepperID(pepperID string) string { return digestPepperPrefix + pepperID }

// isDigestID reports whether a key stored under pepperID is stored by its
// token's SHA-256 alone: the digest under a pepper, or the plain digest of
// an earlier version (for a keyed Manager).
func (m *Manager) isDigestID(pepperID string) bool {
	return strings.HasPrefix(pepperID, digestPepperPrefix) || (m.keyed && pepperID == apikey.SHA256PepperID)
}

// hashWith returns the storage hash of tok under pepperID: one of the
// Hasher's peppers, a digest id (its SHA-256 under a pepper) or, for a
// keyed Manager, apikey.SHA256PepperID (the plain SHA-256 an earlier
// version stored).
func (m *Manager) hashWith(pepperID string, tok apikey.Token) ([]byte, error) {
	if m.isDigestID(pepperID) {
		d := digestOf(tok.Reveal())
		return m.hashDigest(pepperID, d[:])
	}
	return m.hasher.HashWith(pepperID, tok)
}

// hashDigest returns the storage hash of the SHA-256 digest sum under
// pepperID, a digest id.
func (m *Manager) hashDigest(pepperID string, sum []byte) ([]byte, error) {
	if pepperID == apikey.SHA256PepperID {
		return sum, nil
	}
	return m.hasher.HashDigestWith(strings.TrimPrefix(pepperID, digestPepperPrefix), sum)
}

// hashForm is one way a key may hold a token: its hash under a pepper id.
type hashForm struct {
	hash     []byte
	pepperID string
}

// digestForms returns how a key may hold the token whose SHA-256 is sum:
// under each held pepper as a digest, then (earlier versions) the plain
// digest. For an unkeyed Manager, its hash is the digest.
func (m *Manager) digestForms(sum []byte) ([]hashForm, error) {
	if !m.keyed {
		return []hashForm{{sum, apikey.SHA256PepperID}}, nil
	}
	var out []hashForm
	for _, p := range m.hasher.PepperIDs() {
		id := digestPepperID(p)
		h, err := m.hashDigest(id, sum)
		if err != nil {
			return nil, err
		}
		out = append(out, hashForm{h, id})
	}
	return append(out, hashForm{sum, apikey.SHA256PepperID}), nil
}

// storedDigest returns how a key imported by the SHA-256 sum is stored:
// the digest under the current pepper (plain for an unkeyed Manager).
func (m *Manager) storedDigest(sum []byte) (hashForm, error) {
	if !m.keyed {
		return hashForm{sum, apikey.SHA256PepperID}, nil
	}
	id := digestPepperID(m.hasher.CurrentID())
	h, err := m.hashDigest(id, sum)
	return hashForm{h, id}, err
}

package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"strconv"
	"sync"
)

// SHA256PepperID is the pepper ID reported by the unkeyed hasher of [NewSHA256Hasher]. No
// [Pepper] may use it.
const SHA256PepperID = "sha256"

const (
	// MinPepperKeyLength is the shortest [Pepper.Key] [NewHasher] accepts, in bytes.
	MinPepperKeyLength = 32
	// maxPepperIDLength is the longest Pepper.ID NewHasher accepts.
	maxPepperIDLength = 32
)

// Pepper is a server-side secret key for [Hasher], with an identifier so that peppers can rotate:
// every stored hash records the ID of the pepper it was computed under.
//
// A Pepper never prints its Key: String, GoString, Format (every fmt verb), LogValue and
// MarshalJSON show the ID and "[REDACTED]". As with [Token], fmt cannot reach these methods for a
// Pepper in an unexported struct field. A Pepper is a plain value; [NewHasher] copies its Key, so
// the caller may wipe it afterwards.
type Pepper struct {
	// ID names the pepper in stored records: 1 to 32 characters of [A-Za-z0-9._-], other than
	// the reserved [SHA256PepperID].
	ID string
	// Key is the HMAC key: at least [MinPepperKeyLength] bytes, best 32 bytes from crypto/rand,
	// kept outside the database (environment, secret manager, KMS).
	Key []byte
}

// String returns p with its Key redacted.
func (p Pepper) String() string { return "Pepper{ID:" + p.ID + " Key:" + redacted + "}" }

// GoString returns p with its Key redacted, for %#v.
func (p Pepper) GoString() string {
	return "apikey.Pepper{ID:" + strconv.Quote(p.ID) + ", Key:" + redacted + "}"
}

// Format implements [fmt.Formatter] so that every verb prints p with its Key redacted.
func (p Pepper) Format(st fmt.State, verb rune) {
	formatRedacted(st, verb, p.String(), p.GoString)
}

// LogValue implements [slog.LogValuer]: p is logged as a group of its ID and a redacted key.
func (p Pepper) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", p.ID), slog.String("key", redacted))
}

// MarshalJSON encodes p as {"id":…,"key":"[REDACTED]"}, never the key.
func (p Pepper) MarshalJSON() ([]byte, error) {
	b := append([]byte(`{"id":`), strconv.Quote(p.ID)...)
	return append(b, `,"key":"`+redacted+`"}`...), nil
}

// Hasher computes the storage hash of a token: HMAC-SHA256 keyed with its current [Pepper], or
// SHA-256 for the unkeyed hasher of [NewSHA256Hasher]. It also holds older peppers so that
// records hashed before a rotation still verify through [Hasher.HashWith].
//
// A Hasher is immutable after construction and safe for concurrent use. The zero Hasher holds no
// pepper: its Hash returns a nil sum, which [Equal] matches with nothing, and its HashWith returns
// [ErrUnknownPepper]; use [NewHasher] or [NewSHA256Hasher].
type Hasher struct {
	ids     []string   // pepper IDs, current first
	digests []*digests // digests[i] computes hashes under ids[i]
}

// NewHasher returns a Hasher that hashes under current and can also hash under the older
// peppers, for records stored before a rotation. It copies every key. It returns an error
// wrapping [ErrInvalidPepper] if an ID is malformed or reserved, a key is shorter than
// [MinPepperKeyLength] bytes, or two peppers share an ID; the error names the ID, never the key.
func NewHasher(current Pepper, older ...Pepper) (*Hasher, error) {
	h := &Hasher{}
	for _, p := range append([]Pepper{current}, older...) {
		if err := checkPepper(p); err != nil {
			return nil, err
		}
		if slices.Contains(h.ids, p.ID) {
			return nil, fmt.Errorf("%w: duplicate ID %q", ErrInvalidPepper, p.ID)
		}
		key := slices.Clone(p.Key)
		h.ids = append(h.ids, p.ID)
		h.digests = append(h.digests, newDigests(func() hash.Hash { return hmac.New(sha256.New, key) }))
	}
	return h, nil
}

// NewSHA256Hasher returns a Hasher that stores plain, unkeyed SHA-256 digests of tokens under the
// pepper ID [SHA256PepperID]. Prefer [NewHasher]: with a pepper kept outside the database, a
// stolen database alone cannot confirm a guessed or leaked token, and peppers rotate by ID.
// Unkeyed SHA-256 is still safe against guessing, since secrets have 256 bits of entropy; use it
// only where no secret key can be provisioned, such as a small single-process deployment.
func NewSHA256Hasher() *Hasher {
	return &Hasher{
		ids:     []string{SHA256PepperID},
		digests: []*digests{newDigests(sha256.New)},
	}
}

// CurrentID returns the ID of the pepper [Hasher.Hash] uses; "" for the zero Hasher.
func (h *Hasher) CurrentID() string {
	if h == nil || len(h.ids) == 0 {
		return ""
	}
	return h.ids[0]
}

// PepperIDs returns the IDs of every pepper h holds: the current one first, then the older ones in
// the order given to [NewHasher]. The slice is a fresh copy.
func (h *Hasher) PepperIDs() []string {
	if h == nil {
		return nil
	}
	return slices.Clone(h.ids)
}

// Hash returns the 32-byte storage hash of t under the current pepper, and that pepper's ID, to be
// stored with the hash. It hashes t.Reveal(), so call it on tokens from [Parse] or
// [Format.Generate]. The zero Hasher returns (nil, "").
func (h *Hasher) Hash(t Token) (sum []byte, pepperID string) {
	if h == nil || len(h.digests) == 0 {
		return nil, ""
	}
	return h.digests[0].sum(t.Reveal()), h.ids[0]
}

// HashWith returns the 32-byte storage hash of t under the pepper with ID pepperID, which may be
// the current one or an older one; this verifies records stored before a rotation, after which
// the caller may re-hash them with [Hasher.Hash]. It returns an error wrapping [ErrUnknownPepper]
// if h holds no such pepper.
func (h *Hasher) HashWith(pepperID string, t Token) ([]byte, error) {
	if h != nil {
		if i := slices.Index(h.ids, pepperID); i >= 0 {
			return h.digests[i].sum(t.Reveal()), nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownPepper, pepperID)
}

// digestDomain starts the message of [Hasher.HashDigestWith]. No token contains a NUL byte, so
// no token's hash under a pepper equals the hash of a digest under it.
const digestDomain = "keygate-sha256\x00"

// HashDigestWith returns the storage hash, under the keyed pepper with ID pepperID, of a token
// known only by its SHA-256 digest sum: HMAC-SHA256(pepper, "keygate-sha256\x00" || sum). The
// keygate Manager stores a key imported by its SHA-256 under it, so that a stolen database holds
// no unkeyed digest. It is not the token's own hash ([Hasher.HashWith]): the message differs, and
// the prefix makes it equal to the hash of no token. It returns an error wrapping
// [ErrUnknownPepper] if h holds no keyed pepper with that ID (the unkeyed hasher of
// [NewSHA256Hasher] holds none: for it a token's hash is its SHA-256 already), and an error if sum
// is not 32 bytes long. The pepper itself is never exposed.
func (h *Hasher) HashDigestWith(pepperID string, sum []byte) ([]byte, error) {
	if len(sum) != sha256.Size {
		return nil, fmt.Errorf("apikey: hash digest: got %d bytes, want %d", len(sum), sha256.Size)
	}
	if h != nil && pepperID != SHA256PepperID {
		if i := slices.Index(h.ids, pepperID); i >= 0 {
			return h.digests[i].sumDigest(sum), nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownPepper, pepperID)
}

// Equal reports whether the hashes a and b are equal, in time that depends only on their lengths
// ([subtle.ConstantTimeCompare]). Empty hashes are never equal, not even to each other, so a
// missing hash fails closed.
func Equal(a, b []byte) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare(a, b) == 1
}

// checkPepper reports why p is not an acceptable pepper, as an error wrapping ErrInvalidPepper.
func checkPepper(p Pepper) error {
	if p.ID == SHA256PepperID {
		return fmt.Errorf("%w: ID %q is reserved", ErrInvalidPepper, p.ID)
	}
	if !validPepperID(p.ID) {
		// Not quoted: an invalid ID may be a key given in its place (an
		// "id:key" pair written the wrong way round), and errors are logged.
		return fmt.Errorf("%w: an ID of %d bytes: want 1..%d of [A-Za-z0-9._-]", ErrInvalidPepper, len(p.ID), maxPepperIDLength)
	}
	if len(p.Key) < MinPepperKeyLength {
		return fmt.Errorf("%w: ID %q: key has %d bytes, want at least %d",
			ErrInvalidPepper, p.ID, len(p.Key), MinPepperKeyLength)
	}
	return nil
}

// validPepperID reports whether id is 1..32 characters of [A-Za-z0-9._-].
func validPepperID(id string) bool {
	if len(id) == 0 || len(id) > maxPepperIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if _, ok := base62Digit(id[i]); !ok && id[i] != '.' && id[i] != '_' && id[i] != '-' {
			return false
		}
	}
	return true
}

// digests computes one kind of digest of token texts. It pools the hash states, so that an HMAC
// keeps the inner and outer key blocks it precomputed on its first Reset instead of rehashing the
// key on every call.
type digests struct {
	pool sync.Pool // of *digestState
}

// digestState is a reusable hash and a buffer for the token text it hashes.
type digestState struct {
	h   hash.Hash
	buf []byte
}

// newDigests returns a digests whose states are made by newHash.
func newDigests(newHash func() hash.Hash) *digests {
	d := &digests{}
	d.pool.New = func() any {
		return &digestState{h: newHash(), buf: make([]byte, 0, maxTokenLength)}
	}
	return d
}

// sum returns the digest of s in a new slice.
func (d *digests) sum(s string) []byte {
	st := d.pool.Get().(*digestState)
	st.h.Reset()
	st.buf = append(st.buf[:0], s...)
	st.h.Write(st.buf)
	out := st.h.Sum(make([]byte, 0, sha256.Size))
	clear(st.buf) // do not keep the token text in pooled memory
	d.pool.Put(st)
	return out
}

// sumDigest returns the digest of digestDomain followed by sum, in a new slice.
func (d *digests) sumDigest(sum []byte) []byte {
	st := d.pool.Get().(*digestState)
	st.h.Reset()
	st.buf = append(append(st.buf[:0], digestDomain...), sum...)
	st.h.Write(st.buf)
	out := st.h.Sum(make([]byte, 0, sha256.Size))
	clear(st.buf) // a token's SHA-256 stands for the token: do not keep it in pooled memory
	d.pool.Put(st)
	return out
}

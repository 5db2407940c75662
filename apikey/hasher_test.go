package apikey_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/apikey"
)

// testKey returns a 32-byte key filled with c.
func testKey(c byte) []byte { return bytes.Repeat([]byte{c}, 32) }

// newHasher returns a Hasher or fails the test.
func newHasher(t testing.TB, current apikey.Pepper, older ...apikey.Pepper) *apikey.Hasher {
	t.Helper()
	h, err := apikey.NewHasher(current, older...)
	if err != nil {
		t.Fatalf("NewHasher: got error %v, want nil", err)
	}
	return h
}

// hmacSHA256 computes HMAC-SHA256 with crypto/hmac directly, as the reference.
func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func TestHasherKnownAnswer(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef-longer-than-a-block-of-sha256-is-fine-too")
	keyed := newHasher(t, apikey.Pepper{ID: "p1", Key: key})
	plain := apikey.NewSHA256Hasher()
	for seed := range byte(20) {
		tok := generate(t, "kg", seed)
		sum, id := keyed.Hash(tok)
		if want := hmacSHA256(key, tok.Reveal()); id != "p1" || !bytes.Equal(sum, want) {
			t.Errorf("Hash: got %x under %q, want %x under %q", sum, id, want, "p1")
		}
		sum, id = plain.Hash(tok)
		if want := sha256.Sum256([]byte(tok.Reveal())); id != apikey.SHA256PepperID || !bytes.Equal(sum, want[:]) {
			t.Errorf("SHA256 Hash: got %x under %q, want %x under %q", sum, id, want, apikey.SHA256PepperID)
		}
	}
}

// TestHasherConcurrent hashes from many goroutines; run with -race.
func TestHasherConcurrent(t *testing.T) {
	t.Parallel()
	key := testKey('k')
	h := newHasher(t, apikey.Pepper{ID: "p1", Key: key}, apikey.Pepper{ID: "p0", Key: testKey('o')})
	toks := make([]apikey.Token, 8)
	for i := range toks {
		toks[i] = generate(t, "kg", byte(30+i))
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(toks))
	for _, tok := range toks {
		wg.Go(func() {
			want := hmacSHA256(key, tok.Reveal())
			for range 50 {
				sum, _ := h.Hash(tok)
				with, err := h.HashWith("p1", tok)
				if !bytes.Equal(sum, want) || err != nil || !bytes.Equal(with, want) {
					errs <- "concurrent Hash disagrees with crypto/hmac"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestHasherRotation(t *testing.T) {
	t.Parallel()
	tok := generate(t, "kg", 40)
	p1 := apikey.Pepper{ID: "2024", Key: testKey(1)}
	p2 := apikey.Pepper{ID: "2025", Key: testKey(2)}
	p3 := apikey.Pepper{ID: "2026", Key: testKey(3)}

	oldSum, oldID := newHasher(t, p1).Hash(tok)
	h := newHasher(t, p3, p2, p1)

	if got, want := h.CurrentID(), "2026"; got != want {
		t.Errorf("CurrentID: got %q, want %q", got, want)
	}
	ids := h.PepperIDs()
	if want := []string{"2026", "2025", "2024"}; !slices.Equal(ids, want) {
		t.Errorf("PepperIDs: got %q, want %q", ids, want)
	}
	ids[0] = "changed"
	if got := h.PepperIDs()[0]; got != "2026" {
		t.Errorf("PepperIDs after changing the returned slice: got %q first, want %q", got, "2026")
	}

	again, err := h.HashWith(oldID, tok)
	if err != nil || !apikey.Equal(again, oldSum) {
		t.Fatalf("HashWith(%q): got %x, %v, want %x, nil", oldID, again, err, oldSum)
	}
	newSum, newID := h.Hash(tok)
	if newID != "2026" || apikey.Equal(newSum, oldSum) {
		t.Errorf("Hash after rotation: got %x under %q, want a different sum under %q", newSum, newID, "2026")
	}
	if with, err := h.HashWith(newID, tok); err != nil || !apikey.Equal(with, newSum) {
		t.Errorf("HashWith(current): got %x, %v, want %x, nil", with, err, newSum)
	}
	other, _ := h.Hash(generate(t, "kg", 41))
	if apikey.Equal(other, newSum) {
		t.Errorf("two tokens hash to the same sum %x", newSum)
	}
}

func TestHasherUnknownPepper(t *testing.T) {
	t.Parallel()
	tok := generate(t, "kg", 42)
	keyed := newHasher(t, apikey.Pepper{ID: "p1", Key: testKey(1)})
	tests := []struct {
		name string
		h    *apikey.Hasher
		id   string
	}{
		{"missing ID", keyed, "p2"},
		{"empty ID", keyed, ""},
		{"sha256 on a keyed hasher", keyed, apikey.SHA256PepperID},
		{"keyed ID on the SHA256 hasher", apikey.NewSHA256Hasher(), "p1"},
		{"zero Hasher", &apikey.Hasher{}, "p1"},
		{"nil Hasher", nil, "p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sum, err := tt.h.HashWith(tt.id, tok)
			if !errors.Is(err, apikey.ErrUnknownPepper) || sum != nil {
				t.Errorf("HashWith(%q): got %x, %v, want nil, ErrUnknownPepper", tt.id, sum, err)
			}
		})
	}
	if sum, err := apikey.NewSHA256Hasher().HashWith(apikey.SHA256PepperID, tok); err != nil || len(sum) != sha256.Size {
		t.Errorf("SHA256 HashWith(%q): got %x, %v, want a 32-byte sum", apikey.SHA256PepperID, sum, err)
	}
}

func TestZeroHasherFailsClosed(t *testing.T) {
	t.Parallel()
	tok := generate(t, "kg", 43)
	for name, h := range map[string]*apikey.Hasher{"zero": {}, "nil": nil} {
		sum, id := h.Hash(tok)
		if sum != nil || id != "" || h.CurrentID() != "" || len(h.PepperIDs()) != 0 {
			t.Errorf("%s Hasher: got Hash %x %q, CurrentID %q, PepperIDs %q; want all empty",
				name, sum, id, h.CurrentID(), h.PepperIDs())
		}
		if apikey.Equal(sum, sum) {
			t.Errorf("%s Hasher: Equal(nil sum, nil sum): got true, want false", name)
		}
	}
}

// TestNewHasherQuotesNoInvalidID: an "id:key" pair given the wrong way
// round makes the key the ID; the error about it does not quote it.
func TestNewHasherQuotesNoInvalidID(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	id := base64.StdEncoding.EncodeToString(key)
	_, err := apikey.NewHasher(apikey.Pepper{ID: id, Key: key})
	if !errors.Is(err, apikey.ErrInvalidPepper) || strings.Contains(err.Error(), id) {
		t.Fatalf("NewHasher with the key's base64 as ID: %v; want ErrInvalidPepper, not quoting it", err)
	}
}

func TestNewHasherRejectsBadPeppers(t *testing.T) {
	t.Parallel()
	key := testKey('s')
	good := apikey.Pepper{ID: "good", Key: testKey(1)}
	tests := []struct {
		name    string
		current apikey.Pepper
		older   []apikey.Pepper
	}{
		{"empty ID", apikey.Pepper{ID: "", Key: key}, nil},
		{"33-character ID", apikey.Pepper{ID: strings.Repeat("a", 33), Key: key}, nil},
		{"space in ID", apikey.Pepper{ID: "a b", Key: key}, nil},
		{"slash in ID", apikey.Pepper{ID: "a/b", Key: key}, nil},
		{"colon in ID", apikey.Pepper{ID: "a:b", Key: key}, nil},
		{"non-ASCII ID", apikey.Pepper{ID: "é", Key: key}, nil},
		{"reserved ID", apikey.Pepper{ID: apikey.SHA256PepperID, Key: key}, nil},
		{"nil key", apikey.Pepper{ID: "p", Key: nil}, nil},
		{"31-byte key", apikey.Pepper{ID: "p", Key: key[:31]}, nil},
		{"bad older pepper", good, []apikey.Pepper{{ID: "old", Key: key[:16]}}},
		{"duplicate of current", good, []apikey.Pepper{{ID: "good", Key: key}}},
		{"duplicate among older", good, []apikey.Pepper{{ID: "a", Key: key}, {ID: "b", Key: key}, {ID: "a", Key: key}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := apikey.NewHasher(tt.current, tt.older...)
			if !errors.Is(err, apikey.ErrInvalidPepper) || h != nil {
				t.Fatalf("NewHasher: got %v, %v, want nil, ErrInvalidPepper", h, err)
			}
			if strings.Contains(err.Error(), string(key[:8])) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}

	for _, id := range []string{"a", "2025-01", "A.b_c-9", "SHA256", strings.Repeat("z", 32)} {
		if _, err := apikey.NewHasher(apikey.Pepper{ID: id, Key: key}); err != nil {
			t.Errorf("NewHasher(ID %q): got error %v, want nil", id, err)
		}
	}
}

func TestNewHasherCopiesKeys(t *testing.T) {
	t.Parallel()
	tok := generate(t, "kg", 44)
	current, older := testKey('c'), testKey('o')
	h := newHasher(t, apikey.Pepper{ID: "c", Key: current}, apikey.Pepper{ID: "o", Key: older})
	wantCurrent, wantOlder := hmacSHA256(current, tok.Reveal()), hmacSHA256(older, tok.Reveal())
	clear(current)
	clear(older)
	if sum, _ := h.Hash(tok); !bytes.Equal(sum, wantCurrent) {
		t.Errorf("Hash after wiping the caller's key: got %x, want %x", sum, wantCurrent)
	}
	if sum, err := h.HashWith("o", tok); err != nil || !bytes.Equal(sum, wantOlder) {
		t.Errorf("HashWith after wiping the caller's key: got %x, %v, want %x", sum, err, wantOlder)
	}
}

func TestHashReturnsFreshSlices(t *testing.T) {
	t.Parallel()
	tok := generate(t, "kg", 45)
	h := newHasher(t, apikey.Pepper{ID: "p", Key: testKey(1)})
	a, _ := h.Hash(tok)
	want := slices.Clone(a)
	clear(a)
	if b, _ := h.Hash(tok); !bytes.Equal(b, want) {
		t.Errorf("Hash after clearing an earlier result: got %x, want %x", b, want)
	}
}

func TestEqual(t *testing.T) {
	t.Parallel()
	a := bytes.Repeat([]byte{1}, 32)
	tests := []struct {
		name string
		a, b []byte
		want bool
	}{
		{"same content", a, slices.Clone(a), true},
		{"last byte differs", a, append(slices.Clone(a[:31]), 2), false},
		{"first byte differs", a, append([]byte{0}, a[1:]...), false},
		{"prefix", a, a[:31], false},
		{"nil and nil", nil, nil, false},
		{"empty and empty", []byte{}, []byte{}, false},
		{"nil and hash", nil, a, false},
	}
	for _, tt := range tests {
		if got := apikey.Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: Equal(%x, %x): got %v, want %v", tt.name, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestHashDigestWith(t *testing.T) {
	t.Parallel()
	key := testKey(7)
	h := newHasher(t, apikey.Pepper{ID: "p1", Key: key}, apikey.Pepper{ID: "p0", Key: testKey(8)})
	tok := generate(t, "kg", 44)
	sum := sha256.Sum256([]byte(tok.Reveal()))
	got, err := h.HashDigestWith("p1", sum[:])
	if want := hmacSHA256(key, "keygate-sha256\x00"+string(sum[:])); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("HashDigestWith(p1): got %x, %v, want %x", got, err, want)
	}
	// Neither the digest itself nor the token's own hash under any pepper.
	own, _ := h.Hash(tok)
	older, _ := h.HashWith("p0", tok)
	other, _ := h.HashDigestWith("p0", sum[:])
	for name, b := range map[string][]byte{"the digest": sum[:], "the token's hash": own, "its hash under p0": older, "its digest hash under p0": other} {
		if bytes.Equal(got, b) {
			t.Errorf("HashDigestWith(p1) equals %s", name)
		}
	}
	// No token's hash is a digest's: a token whose text were the domain
	// and a digest would still hash differently, since tokens never hold
	// a NUL byte, and the NUL-free text hashes to another sum.
	if bytes.Equal(got, hmacSHA256(key, "keygate-sha256"+string(sum[:]))) {
		t.Error("the domain's NUL byte is not part of the message")
	}
	for _, tt := range []struct {
		name string
		h    *apikey.Hasher
		id   string
	}{
		{"unknown pepper", h, "p9"},
		{"sha256 on a keyed hasher", h, apikey.SHA256PepperID},
		{"the SHA256 hasher", apikey.NewSHA256Hasher(), apikey.SHA256PepperID},
		{"zero Hasher", &apikey.Hasher{}, "p1"},
		{"nil Hasher", nil, "p1"},
	} {
		if b, err := tt.h.HashDigestWith(tt.id, sum[:]); !errors.Is(err, apikey.ErrUnknownPepper) || b != nil {
			t.Errorf("%s: got %x, %v, want nil, ErrUnknownPepper", tt.name, b, err)
		}
	}
	if b, err := h.HashDigestWith("p1", sum[:31]); err == nil || b != nil {
		t.Errorf("a 31-byte digest: got %x, %v, want an error", b, err)
	}
}

package apikey_test

import (
	"errors"
	"fmt"

	"github.com/keygate/keygate/apikey"
)

func ExampleFormat_Generate() {
	format, err := apikey.NewFormat("acme_live")
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := format.Generate()
	if err != nil {
		fmt.Println(err)
		return
	}
	// Show tok.Reveal() to its owner once; store only its hash.
	_, err = format.Parse(tok.Reveal())
	fmt.Println("prefix:", tok.Prefix())
	fmt.Println("length:", len(tok.Reveal()))
	fmt.Println("parses back:", err == nil)
	fmt.Println("printed as the hint:", fmt.Sprint(tok) == tok.Hint()+"[REDACTED]")
	// Output:
	// prefix: acme_live
	// length: 59
	// parses back: true
	// printed as the hint: true
}

func ExampleParse() {
	const valid = "kg_VB2KlsEmQn3YCdDjRVd03bUeiZiAUOsFkOnHZwvEwMY0qz0kN"
	tok, err := apikey.Parse(valid)
	fmt.Println(tok, err)

	typo := "kg_VB2KlsEmQn3YCdDjRVd03bUeiZiAU0sFkOnHZwvEwMY0qz0kN" // O typed as 0
	_, err = apikey.Parse(typo)
	fmt.Println(errors.Is(err, apikey.ErrChecksum), err)

	_, err = apikey.Parse("Bearer " + valid)
	fmt.Println(errors.Is(err, apikey.ErrMalformed), err)
	// Output:
	// kg_VB2K…[REDACTED] <nil>
	// true apikey: bad checksum
	// true apikey: malformed token
}

func ExampleHasher() {
	// Load peppers from a secret store; never hard-code them.
	old := apikey.Pepper{ID: "2024", Key: []byte("an-old-32-byte-secret-pepper-key")}
	current := apikey.Pepper{ID: "2025", Key: []byte("a-new-32-byte-secret-pepper-key!")}

	tok, err := apikey.Parse("kg_VB2KlsEmQn3YCdDjRVd03bUeiZiAUOsFkOnHZwvEwMY0qz0kN")
	if err != nil {
		fmt.Println(err)
		return
	}

	// A record stored before the rotation.
	before, _ := apikey.NewHasher(old)
	storedSum, storedID := before.Hash(tok)

	// After the rotation the Hasher holds both peppers and verifies the old record.
	h, err := apikey.NewHasher(current, old)
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := h.HashWith(storedID, tok)
	fmt.Println("verified:", err == nil && apikey.Equal(sum, storedSum), "under", storedID)

	// Re-hash under the current pepper and store the new sum and ID.
	newSum, newID := h.Hash(tok)
	fmt.Println("re-hashed:", len(newSum), "bytes under", newID)
	fmt.Println("peppers:", h.PepperIDs())
	// Output:
	// verified: true under 2024
	// re-hashed: 32 bytes under 2025
	// peppers: [2025 2024]
}

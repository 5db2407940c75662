// Package apikey defines keygate's API key tokens and their cryptography: generating a token,
// parsing one received on a request, and computing the hash under which it is stored. It does no
// I/O; storage and HTTP live in other packages.
//
// # Token format
//
// A token is the text
//
//	<prefix>_<secret><checksum>
//	kg_VB2KlsEmQn3YCdDjRVd03bUeiZiAUOsFkOnHZwvEwMY0qz0kN
//
// The prefix names the issuer or the environment (for example "kg" or "acme_live"): 1 to 32
// characters of lowercase ASCII letters, digits and '_', starting with a letter and not ending
// with '_' ([NewFormat]). The secret is [SecretLength] (43) characters of base62 (0-9A-Za-z)
// drawn uniformly from crypto/rand by rejection sampling, so it carries more than 256 bits of
// entropy (62^43 > 2^256). The checksum is the CRC-32 (IEEE) of everything before it, written as
// [ChecksumLength] (6) base62 characters left-padded with '0', the scheme GitHub uses for its
// tokens. Base62 has no '_', so the last '_' separates the prefix from a body of exactly 49
// characters, and a token is 51 to 82 characters long.
//
// The checksum lets [Parse] and [Format.Parse] reject a mistyped, truncated or made-up token
// before any storage lookup. Parse never allocates and never panics. Every single-character
// substitution of a valid token is detected.
//
// # Secret scanning
//
// The constant [Pattern] is a regular expression in RE2 syntax that matches a token of any valid
// prefix:
//
//	\b[a-z](?:[a-z0-9_]{0,30}[a-z0-9])?_[0-9A-Za-z]{49}\b
//
// Register it (or the narrower [Format.Pattern] for one prefix) with a secret scanner such as
// GitHub secret scanning or gitleaks so that leaked tokens are found in code, logs and tickets. A
// scanner can then confirm a candidate offline with [Parse], whose checksum removes nearly all
// false positives, before revoking the key.
//
// # Storage hashes and peppers
//
// Only a hash of a token is stored. [Hasher] computes HMAC-SHA256 of the token text keyed with a
// [Pepper]: a secret key of at least 32 bytes kept outside the database (environment, secret
// manager, KMS). With a plain hash, anyone holding a copy of the database could confirm whether a
// leaked or guessed token is live; with HMAC they also need the pepper, so a stolen database alone
// is useless.
//
// Each pepper has an ID that is stored next to every hash, so peppers can rotate: build the Hasher
// with the new pepper as current and the previous ones as older ([NewHasher]). [Hasher.Hash]
// hashes under the current pepper; a record stored under an older pepper still verifies through
// [Hasher.HashWith] with its stored ID, after which it can be re-hashed under the newest pepper
// and the old pepper retired once no record uses it. Compare hashes with [Equal], which runs in
// constant time.
//
// A key known only by the SHA-256 of its token (imported from a system that kept nothing else) is
// stored under [Hasher.HashDigestWith]: the digest HMAC'd under a pepper, so that no unkeyed digest
// is stored either.
//
// [NewSHA256Hasher] is an explicit, unkeyed alternative (plain SHA-256, pepper ID "sha256") for
// deployments that cannot provision a secret key. It is safe against guessing, but it gives up
// the protection of a stolen database described above.
//
// # Why not bcrypt or Argon2
//
// Slow password hashes exist to make guessing low-entropy, human-chosen passwords expensive. A
// token's secret is 256 random bits: there is no dictionary to slow down, and 2^256 guesses are
// infeasible at any hashing speed, so a slow hash adds no security. It does cost a lot: a fast,
// deterministic hash lets the store find a key by an indexed lookup on its hash and verify it in
// well under a microsecond, whereas bcrypt is salted (so it cannot be looked up; the token would
// have to carry a separate lookup ID), takes some 50 to 100 ms of CPU per request, which turns
// every forged request into a denial-of-service lever, and stops at 72 bytes of input (classic
// implementations silently truncate, Go's golang.org/x/crypto/bcrypt rejects longer input), while
// a token may be 82 bytes long.
//
// # Printing and logging
//
// A [Token] never prints its secret and a [Pepper] never prints its key: their String, GoString,
// fmt Format, slog LogValue and JSON methods all redact, and a Token shows at most its
// [Token.Hint], such as "kg_VB2K…". Only [Token.Reveal] returns the token text. Errors of this
// package never contain a token or a key.
//
// # Concurrency
//
// [Format] and [Token] are immutable values and a [Hasher] is immutable after construction; all
// are safe for concurrent use. [Pepper] is a plain struct that [NewHasher] copies.
package apikey

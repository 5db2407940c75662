// Package bench compares keygate's per-request cost with what applications
// use instead: golang-jwt/jwt v5 (HS256 and Ed25519) parse-and-validate,
// casbin v2 RBAC-with-domains Enforce, and key stores that keep bcrypt or
// argon2id hashes of their keys.
//
// It is a separate module, so that the keygate module does not depend on
// any of them, nor on the OpenTelemetry SDK, whose recording cost
// BenchmarkVerifyTelemetry measures (cached Verify+Authorize with the SDK's
// providers installed and without).
//
// # Running
//
// One command runs every case and prints a Markdown table (see
// BENCHMARKS.md at the repository root):
//
//	cd bench && go run ./cmd/benchtable
//
// The same cases run as ordinary benchmarks with
//
//	cd bench && go test -run '^$' -bench . -benchmem
//
// # Cases
//
// [Cases] lists them. Every case verifies a credential, and checks a
// permission where the alternative does: keygate's cached Verify+Authorize
// against JWT validation and casbin's Enforce; keygate's uncached Verify (a
// memory store lookup by keyed hash) against slow password hashes, which a
// key store must compute on every request because their salt prevents a
// lookup by hash.
//
// # Concurrency
//
// Each case builds its own fixtures; cases may run one after another in
// one process. Nothing is shared between cases.
package bench

// Package secretscan closes the loop of secret scanning: an http.Handler
// for GitHub's secret scanning partner program, which sends a service
// provider the tokens of its format found in public code, so that keygate
// revokes them before anyone uses them.
//
// # How it works
//
// GitHub POSTs a JSON array of {"token", "type", "url", "source"}, signed
// with ECDSA P-256 over SHA-256: the headers Github-Public-Key-Identifier
// and Github-Public-Key-Signature (base64, ASN.1) name the key and carry
// the signature. The [Handler]:
//
//   - refuses a body without a valid signature (401), one larger than
//     Config.MaxBodyBytes (413) or with more than Config.MaxBatch tokens
//     (413), before it looks at any token;
//   - answers a report it has already handled within Config.ReplayWindow
//     (24 h by default) with the first answer, labels and all, without
//     handling it again: GitHub's own retry after a timeout, or a replay.
//     A report is known by its body, what the signature covers, so that
//     another spelling of its signature (a new signature, the ECDSA twin
//     (r, n−s), other unused base64 bits) is the same report; a copy that
//     arrives while the first is handled waits for its answer;
//   - checks each token's checksum before any lookup, so garbage costs
//     constant work ([keygate.LeakNotOurs]);
//   - for each token of this service that still works, revokes its key
//     (or, with [ReportOnly], only reports it) through
//     keygate.Manager.HandleLeak, which writes a key.leaked audit event
//     saying where the token was found;
//   - answers in GitHub's format: [{"token_raw", "token_type", "label"}]
//     with label "true_positive" for a token that is, or was, a key of
//     this service and "false_positive" otherwise.
//
// The keys that sign come from a [KeySource]: [NewGitHubKeys] fetches
// GitHub's published keys over HTTPS, and again when an unknown key id
// arrives, one fetch at a time and at most once a minute (after a failed
// fetch, none for a backoff of 1 s doubling to a minute), so that forged
// reports cannot make it fetch at their rate; [StaticKeys] holds fixed
// keys, for tests.
//
// # Registering with GitHub
//
// Join the partner program and give GitHub the token format's regular
// expression, apikey.Pattern (or apikey.Format.Pattern for one prefix),
// and the URL where this handler is mounted, such as
// https://keys.example.com/github/secret-scanning (keygate serve --secret-scanning mounts
// it there).
package secretscan

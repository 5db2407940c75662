// Package servertest is the fixture of the REST API's tests: a [Fixture]
// serves package server's API over a Manager whose memory store fails on
// demand ([FailingStore]), mounted under [Prefix], with a super admin's
// token.
//
// It is shared by the tests of package server and by the OpenAPI
// conformance tests, which are a module of their own
// (github.com/keygate/keygate/server/openapitest, so that keygate does not
// require their OpenAPI validator). Go's internal rule goes by import
// path, so that module may import this package; nothing outside the
// keygate repository can. It depends on keygate's own packages and the
// standard library only, and adds no requirement to keygate's go.mod.
//
// # Concurrency
//
// A [Fixture] and its [FailingStore] are safe for concurrent use, as the
// server is; switching an outage on or off ([FailingStore.Down],
// [FailingStore.LookupsDown]) affects every request in flight.
package servertest

// Package openapitest holds the OpenAPI conformance tests of package
// server: they keep its OpenAPI document (server/openapi.json, served by
// server.OpenAPIHandler) and its handler from drifting apart.
//
//   - TestOpenAPIDocument: the document is valid OpenAPI 3.1, its examples
//     match their schemas, and its problem codes are exactly the Code
//     constants of packages server and middleware (read from their
//     source, ../ and ../../middleware/).
//   - TestOpenAPIHandler: the document as served, with its caching
//     headers.
//   - TestOpenAPIRoutes: the routes package server registers on its mux
//     (read from its source) are exactly the operations of the document.
//   - TestOpenAPIConformance and TestBodyReadTimeout: every documented
//     answer of every route drawn through a real HTTP server, each request
//     and response validated against the document.
//
// It holds only tests, in a module of its own, so that the keygate module
// does not require their OpenAPI validator (github.com/getkin/kin-openapi
// and its dependencies): an application's module graph gets none of them.
// The tests share the fixture of package server's own tests,
// github.com/keygate/keygate/internal/servertest. Run them from the
// repository root (its go.work names this module) with
//
//	go test -race ./server/openapitest/...
package openapitest

// Package chitest runs keygate's middleware under the chi router
// (github.com/go-chi/chi/v5): Verify for every route, Require per route
// with the workspace from chi's URL parameters or middleware.PathValue.
//
// It holds only tests and an example, in a module of its own, so that the
// keygate module does not require chi: an application's module graph gets
// chi only if the application uses it. Run them from the repository root
// (its go.work names this module) with
//
//	go test -race ./middleware/chitest/...
package chitest

package server

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the OpenAPI document
	"encoding/base64"
	"net/http"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
)

// openAPI is the OpenAPI document of the API. (A //go:embed variable is
// necessarily a package variable; nothing writes to it.)
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document describing the API a [Server]
// serves, as JSON: every route, body, header, security scheme and problem
// code, with the server URL "/v1" standing for wherever the host mounts the
// API. The caller may modify the returned slice, a new copy on each call,
// for example to set the servers of its own deployment. It is safe for
// concurrent use.
func OpenAPI() []byte {
	return bytes.Clone(openAPI)
}

// OpenAPIHandler returns an http.Handler serving the document of [OpenAPI]
// to GET and HEAD requests as application/json, with a strong ETag (so
// If-None-Match is answered 304 Not Modified) and Cache-Control: public,
// max-age=300. Other methods are answered 405 method_not_allowed with
// Allow: GET, HEAD. It asks for no credentials: the document holds no
// secret. Mount it beside the Server, for example:
//
//	mux.Handle("/v1/", http.StripPrefix("/v1", api))
//	mux.Handle("GET /v1/openapi.json", server.OpenAPIHandler())
//
// Routes registered with a method are more specific than "/v1/", so the
// document is not behind the API's authentication. The handler is safe for
// concurrent use.
func OpenAPIHandler() http.Handler {
	sum := sha256.Sum256(openAPI)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Cache-Control", "no-store")
			err := methodNotAllowed("GET, HEAD")(w, r, keygate.Principal{})
			middleware.WriteProblem(w, r, problemFor(err))
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(openAPI))
	})
}

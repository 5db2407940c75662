package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store/memory"
)

func ExampleNew() {
	ctx := context.Background()
	hasher, _ := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte("k"), 32)})
	manager, _ := keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	defer manager.Close(ctx)
	mw, err := middleware.New(middleware.Config{Verifier: manager})
	if err != nil {
		fmt.Println(err)
		return
	}
	api, err := server.New(server.Config{Manager: manager, Middleware: mw})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Mount the API under /api/v1/.
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", api))

	admin, _ := manager.Create(ctx, keygate.System(), keygate.CreateRequest{
		Name: "bootstrap", Role: "admin", Expiry: keygate.NeverExpire(),
	})
	send := func(method, path, token, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if token != "" {
			r.Header.Set("Authorization", "Api-Key "+token)
		}
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}

	w := send("GET", "/api/v1/keys", "", "")
	var p middleware.Problem
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	fmt.Println(w.Code, p.Code)

	w = send("POST", "/api/v1/keys", admin.Token.Reveal(),
		`{"name": "ci", "workspace": "tiger", "role": "viewer", "expiry": "30d"}`)
	var created struct {
		Key   server.Key `json:"key"`
		Token string     `json:"token"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &created)
	fmt.Println(w.Code, created.Key.Name, created.Key.Role, w.Header().Get("Cache-Control"))

	w = send("POST", "/api/v1/keys", admin.Token.Reveal(),
		`{"name": "ci", "workspace": "tiger", "role": "viewer", "expiry": "30d"}`)
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	fmt.Println(w.Code, p.Code)
	// Output:
	// 401 missing
	// 201 ci viewer no-store
	// 409 duplicate_name
}

func ExampleOpenAPIHandler() {
	var api http.Handler = http.NotFoundHandler() // the Server, built as in the example of New
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.StripPrefix("/v1", api))
	// More specific than "/v1/": the document is not behind the API's
	// authentication.
	mux.Handle("GET /v1/openapi.json", server.OpenAPIHandler())

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	var doc struct {
		OpenAPI string `json:"openapi"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &doc)
	fmt.Println(w.Code, w.Header().Get("Content-Type"), doc.OpenAPI, doc.Servers[0].URL)
	// Output:
	// 200 application/json 3.1.1 /v1
}

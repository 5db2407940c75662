package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/keygate/keygate/server"
)

// BenchmarkGet serves GET /keys/{id} in process: verification (cached),
// routing, the Manager's Get and the JSON response.
func BenchmarkGet(b *testing.B) {
	f := newFixture(b, server.Config{})
	k, _ := f.create(b, `{"name":"k","workspace":"w","role":"viewer","expiry":"never","scopes":["billing:read"]}`)
	r := httptest.NewRequestWithContext(context.Background(), "GET", prefix+"/keys/"+k.ID.String(), nil)
	r.Header.Set("Authorization", "Api-Key "+f.admin)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		f.handler.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("GET = %d", w.Code)
		}
	}
}

// BenchmarkCreate serves POST /keys in process, a new key each time.
func BenchmarkCreate(b *testing.B) {
	f := newFixture(b, server.Config{})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		w := f.do(b, request{method: "POST", path: "/keys", token: f.admin, contentType: "application/json",
			body: `{"workspace":"w","role":"viewer","expiry":"30d","name":"k` + strconv.Itoa(n) + `"}`})
		if w.Code != http.StatusCreated {
			b.Fatalf("POST = %d %s", w.Code, w.Body)
		}
	}
}

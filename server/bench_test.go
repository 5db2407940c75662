package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
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

// BenchmarkVerify serves POST /keys/verify in process, as a token service
// answers a remote Verifier: the caller's key verified (cached), the body
// decoded, the token verified (cached) and the verdict encoded. The
// response writer is reused, so that what is counted is the handler's own
// work, not a recorder's.
//
//	go test -run '^$' -bench 'Verify$' -benchmem -count 6 ./server
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, server.Config{})
	verifier := f.token(b, keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}})
	valid := f.token(b, keygate.CreateRequest{Name: "bench", Workspace: "tiger", Role: "editor", Scopes: []string{"billing:write"}})
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, _ := format.Generate()
	for _, bc := range []struct {
		name, token string
		valid       bool
	}{{"valid", valid, true}, {"unknown", unknown.Reveal(), false}} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(`{"token":"` + bc.token + `"}`)
			rd := bytes.NewReader(body)
			r := httptest.NewRequestWithContext(context.Background(), "POST", prefix+"/keys/verify", nil)
			r.Body = io.NopCloser(rd)
			r.ContentLength = int64(len(body))
			r.Header.Set("Authorization", "Api-Key "+verifier)
			r.Header.Set("Content-Type", "application/json")
			w := &benchWriter{header: http.Header{}}
			serve := func() {
				rd.Reset(body)
				clear(w.header)
				w.status, w.body = 0, w.body[:0]
				f.handler.ServeHTTP(w, r)
			}
			serve()
			var v server.VerifyResponse
			if err := json.Unmarshal(w.body, &v); w.status != http.StatusOK || err != nil || v.Valid != bc.valid {
				b.Fatalf("POST /keys/verify = %d %s", w.status, w.body)
			}
			b.ReportAllocs()
			for b.Loop() {
				serve()
			}
		})
	}
}

// benchWriter is a ResponseWriter that keeps the last response.
type benchWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *benchWriter) Header() http.Header { return w.header }
func (w *benchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

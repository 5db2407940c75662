package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/console"
	"github.com/keygate/keygate/console/sessiontest"
)

// BenchmarkListPage renders a page of the list, server side, with 1000
// keys stored: the session check (the signed-in key read again), the
// store's page and the template, as one request through the handler.
func BenchmarkListPage(b *testing.B) {
	for _, bc := range []struct {
		name, query string
		pageSize    int
	}{
		{"page=50", "", 50},
		{"page=50/status=expired", "?status=expired", 50}, // scans all 1000: none is expired
		{"page=1000", "", 1000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, func(c *console.Config) { c.PageSize = bc.pageSize })
			for i := range 999 {
				e.key(b, keygate.CreateRequest{Name: fmt.Sprintf("key-%04d", i), Owner: "alice", Workspace: []string{"tiger", "lion"}[i%2],
					Role: "viewer", Scopes: []string{"billing:read", "cluster:write", "organization:read"}})
			}
			cookie := e.signedIn(b, e.admin).client.Jar.Cookies(mustURL(b, e.srv.URL+mount+"/"))
			h := http.StripPrefix(mount, e.c)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, mount+"/"+bc.query, nil)
				for _, c := range cookie {
					req.AddCookie(c)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

// BenchmarkSignIn signs in with a key over and over, as the attack of
// issue 16 (Medium 4) did, one fresh form each time: each sign-in ends
// the key's oldest session beyond its bound, never another key's.
func BenchmarkSignIn(b *testing.B) {
	e := newEnv(b, nil)
	viewer := e.key(b, keygate.CreateRequest{Name: "viewer", Scopes: []string{"apikey:view"}}).Token.Reveal()
	admin := e.signedIn(b, e.admin)
	b.ReportAllocs()
	for b.Loop() {
		if p := e.browser(b).signIn(viewer); p.status != http.StatusSeeOther {
			b.Fatalf("sign in: %d", p.status)
		}
	}
	b.StopTimer()
	if p := admin.get("/"); p.status != http.StatusOK {
		b.Fatalf("the admin's session after %d sign-ins of another key: %d", b.N, p.status)
	}
}

// BenchmarkMemorySessions measures the default session store.
func BenchmarkMemorySessions(b *testing.B) {
	sessiontest.Benchmark(b, console.NewMemoryStore(0))
}

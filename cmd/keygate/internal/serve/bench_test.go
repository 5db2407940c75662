package serve

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/permission"
)

// BenchmarkVerifyRoute serves GET /healthz and POST /v1/keys/verify (a
// valid key, verified by a key holding apikey:verify) in process, through
// the whole handler of the service (request log, routing, the API's
// middleware), with log level WARN as under load tests; what they cost
// beyond net/http's own work per request, which wrk measures with it (see
// BENCHMARKS.md):
//
//	go test -run '^$' -bench VerifyRoute -benchmem -count 6 ./internal/serve (in cmd/keygate)
func BenchmarkVerifyRoute(b *testing.B) {
	dir := b.TempDir()
	o := &Options{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse([]string{"--db", filepath.Join(dir, "k.db"), "--log-level", "WARN"}); err != nil {
		b.Fatal(err)
	}
	if err := o.validate(); err != nil {
		b.Fatal(err)
	}
	a, err := newApp(context.Background(), o, slog.New(slog.DiscardHandler), func(string) string { return "" }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.close(context.Background()) })
	a.logger = slog.New(slog.DiscardHandler)
	create := func(req keygate.CreateRequest) string {
		req.Expiry = keygate.NeverExpire()
		c, err := a.manager.Create(context.Background(), keygate.System(), req)
		if err != nil {
			b.Fatal(err)
		}
		return c.Token.Reveal()
	}
	svc := create(keygate.CreateRequest{Name: "bench-verifier", Scopes: []string{"apikey:verify"}})
	target := create(keygate.CreateRequest{Name: "bench-target", Workspace: "tiger", Role: permission.RoleViewer})
	body := []byte(`{"token":"` + target + `"}`)
	for _, bc := range []struct {
		name, method, path string
		body               []byte
	}{
		{"healthz", http.MethodGet, "/healthz", nil},
		{"verify", http.MethodPost, "/v1/keys/verify", body},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rd := bytes.NewReader(bc.body)
			r, err := http.NewRequestWithContext(context.Background(), bc.method, bc.path, nil)
			if err != nil {
				b.Fatal(err)
			}
			r.RemoteAddr = "192.0.2.1:1234"
			if bc.body != nil {
				r.Body, r.ContentLength = io.NopCloser(rd), int64(len(bc.body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", "Api-Key "+svc)
			}
			w := &discardWriter{header: http.Header{}}
			serve := func() {
				rd.Reset(bc.body)
				clear(w.header)
				w.status = 0
				a.handler.ServeHTTP(w, r)
			}
			serve()
			if w.status != http.StatusOK {
				b.Fatalf("%s %s = %d", bc.method, bc.path, w.status)
			}
			b.ReportAllocs()
			for b.Loop() {
				serve()
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}

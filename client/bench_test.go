package client_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/client"
)

// BenchmarkVerifier compares a cached remote verification (a Verifier in
// front of a real server over loopback HTTP) with a cached local one (the
// Manager itself), in one run:
//
//	go test -run '^$' -bench Verifier -benchmem -count 6 ./client
//
// remote-uncached asks the server every time, over loopback TCP (both
// ends of net/http in this process); remote-uncached-in-process asks the
// same server handler through a transport that calls it directly, which
// counts the Verifier's and the server's own work without the sockets;
// loopback-floor is a bare POST of the same size to a handler that only
// answers, the share of net/http and the kernel in remote-uncached.
func BenchmarkVerifier(b *testing.B) {
	e := setup(b)
	tok := e.token(b, keygate.CreateRequest{Name: "bench", Workspace: "tiger", Role: "editor", Scopes: []string{"billing:write"}})
	svc := e.token(b, keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}})
	remote := e.clientFor(b, svc).NewVerifier(client.VerifierConfig{})
	c := ctx(b)
	for name, v := range map[string]interface {
		VerifyFrom(ctx context.Context, token string, addr netip.Addr) (*keygate.Key, error)
	}{"local-cached": e.m, "remote-cached": remote} {
		b.Run(name, func(b *testing.B) {
			if _, err := v.VerifyFrom(c, tok, netip.Addr{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyFrom(c, tok, netip.Addr{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("remote-uncached", func(b *testing.B) {
		uncached := e.clientFor(b, svc).NewVerifier(client.VerifierConfig{CacheTTL: -1})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := uncached.VerifyFrom(c, tok, netip.Addr{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remote-uncached-in-process", func(b *testing.B) {
		m, api := tokenService(b, keygate.Config{})
		create := func(req keygate.CreateRequest) string {
			req.Expiry = keygate.NeverExpire()
			k, err := m.Create(c, keygate.System(), req)
			if err != nil {
				b.Fatal(err)
			}
			return k.Token.Reveal()
		}
		tok := create(keygate.CreateRequest{Name: "bench", Workspace: "tiger", Role: "editor", Scopes: []string{"billing:write"}})
		cl, err := client.New("http://token-service.test/", client.WithToken(create(keygate.CreateRequest{Name: "svc", Scopes: []string{"apikey:verify"}})),
			client.WithHTTPClient(&http.Client{Transport: inProcess{api}}))
		if err != nil {
			b.Fatal(err)
		}
		uncached := cl.NewVerifier(client.VerifierConfig{CacheTTL: -1})
		if _, err := uncached.VerifyFrom(c, tok, netip.Addr{}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := uncached.VerifyFrom(c, tok, netip.Addr{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("loopback-floor", func(b *testing.B) {
		answer := []byte(`{"valid":false,"code":"invalid"}`)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header()["Content-Type"] = []string{"application/json"}
			_, _ = w.Write(answer)
		}))
		b.Cleanup(srv.Close)
		body := []byte(`{"token":"` + tok + `"}`)
		hc := srv.Client()
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.NewRequestWithContext(c, http.MethodPost, srv.URL+"/keys/verify", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header["Content-Type"] = []string{"application/json"}
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// inProcess is a transport that serves each request with a handler in
// this process, without a connection: the handler gets the client's
// request, as a server would parse it, and its response is the body.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	w := &responseWriter{header: http.Header{}}
	t.h.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{StatusCode: w.status, Header: w.header, Body: w, ContentLength: int64(len(w.body)), Request: r}, nil
}

// responseWriter keeps a handler's response, and is then its body.
type responseWriter struct {
	header http.Header
	status int
	body   []byte
	read   int
}

func (w *responseWriter) Header() http.Header { return w.header }
func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}
func (w *responseWriter) Read(p []byte) (int, error) {
	if w.read == len(w.body) {
		return 0, io.EOF
	}
	n := copy(p, w.body[w.read:])
	w.read += n
	return n, nil
}
func (w *responseWriter) Close() error { return nil }

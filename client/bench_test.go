package client_test

import (
	"context"
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
}

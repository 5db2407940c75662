package middleware_test

import (
	"net/netip"
	"testing"

	"github.com/keygate/keygate/middleware"
)

func TestClientAddress(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string // "" for the zero Addr
	}{
		{name: "peer", remote: "192.0.2.1:1234", want: "192.0.2.1"},
		{name: "peer IPv6", remote: "[2001:db8::1]:1234", want: "2001:db8::1"},
		{name: "peer with zone", remote: "[fe80::1%eth0]:1234", want: "fe80::1"},
		{name: "peer IPv4-mapped", remote: "[::ffff:192.0.2.1]:1234", want: "192.0.2.1"},
		{name: "peer without port", remote: "192.0.2.1", want: "192.0.2.1"},
		{name: "peer unparsable", remote: "@", want: ""},
		{name: "peer IPv6 in brackets, no port", remote: "[2001:db8::1]", want: "2001:db8::1"},
		{name: "peer IPv6 without brackets", remote: "2001:db8::1", want: "2001:db8::1"},
		{name: "peer bracket garbage", remote: "[2001:db8::1]x", want: ""},
		{name: "peer unclosed bracket", remote: "[2001:db8::1", want: ""},
		{name: "peer bracketed IPv4 mapped", remote: "[::ffff:10.0.0.1]", want: "10.0.0.1"},
		{name: "XFF ignored without trusted proxies", remote: "10.0.0.1:1", xff: []string{"203.0.113.9"}, want: "10.0.0.1"},
		{name: "XFF from untrusted peer ignored", trusted: trusted, remote: "192.0.2.1:1", xff: []string{"203.0.113.9"}, want: "192.0.2.1"},
		{name: "trusted peer, no XFF", trusted: trusted, remote: "10.0.0.1:1", want: "10.0.0.1"},
		{name: "trusted peer, one hop", trusted: trusted, remote: "10.0.0.1:1", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{
			name: "spoofed left entries skipped", trusted: trusted, remote: "10.0.0.1:1",
			xff: []string{"1.1.1.1, 203.0.113.9, 10.2.2.2"}, want: "203.0.113.9",
		},
		{
			name: "repeated fields form one list", trusted: trusted, remote: "10.0.0.1:1",
			xff: []string{"1.1.1.1, 203.0.113.9", "10.2.2.2"}, want: "203.0.113.9",
		},
		{name: "all hops trusted", trusted: trusted, remote: "10.0.0.1:1", xff: []string{"10.3.3.3,10.2.2.2"}, want: "10.3.3.3"},
		{name: "IPv6 hop", trusted: trusted, remote: "[fd00::1]:1", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "hop with port", trusted: trusted, remote: "10.0.0.1:1", xff: []string{"203.0.113.9:5555"}, want: "203.0.113.9"},
		{name: "garbled hop", trusted: trusted, remote: "10.0.0.1:1", xff: []string{"203.0.113.9, unknown"}, want: ""},
		{name: "empty hop", trusted: trusted, remote: "10.0.0.1:1", xff: []string{"203.0.113.9,,10.2.2.2"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := &fakeVerifier{}
			mw := newMiddleware(t, middleware.Config{Verifier: v, TrustedProxies: tt.trusted})
			req := get("/", "X-API-Key", "kg_x")
			req.RemoteAddr = tt.remote
			for _, x := range tt.xff {
				req.Header.Add("X-Forwarded-For", x)
			}
			serve(t, mw.Verify(okHandler()), req)
			_, addrs := v.calls()
			if len(addrs) != 1 {
				t.Fatalf("verifier called %d times, want 1", len(addrs))
			}
			want := netip.Addr{}
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if addrs[0] != want {
				t.Errorf("client address = %v, want %v", addrs[0], want)
			}
			// ClientAddr, for other doors to the keys, sees the same.
			if got := mw.ClientAddr(req); got != want {
				t.Errorf("ClientAddr = %v, want %v", got, want)
			}
		})
	}
}

// FuzzClientAddress checks that no X-Forwarded-For value makes the
// middleware panic, and that the address it finds is valid or zero.
func FuzzClientAddress(f *testing.F) {
	f.Add("10.0.0.1:1", "203.0.113.9, 10.2.2.2")
	f.Add("[fd00::1]:1", ",,,")
	f.Add("10.0.0.1:1", "[::1]:80, 1.2.3.4:5")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		v := &fakeVerifier{}
		mw, err := middleware.New(middleware.Config{
			Verifier:       v,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
		})
		if err != nil {
			t.Fatal(err)
		}
		req := get("/", "X-API-Key", "kg_x", "X-Forwarded-For", xff)
		req.RemoteAddr = remote
		serve(t, mw.Verify(okHandler()), req)
		_, addrs := v.calls()
		if len(addrs) != 1 {
			t.Fatalf("verifier called %d times, want 1", len(addrs))
		}
		if a := addrs[0]; a.Zone() != "" || a.Is4In6() {
			t.Errorf("client address %v has a zone or is IPv4-mapped", a)
		}
	})
}

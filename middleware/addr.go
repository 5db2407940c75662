package middleware

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr returns the address of the client that sent r, as described
// at [Config.TrustedProxies]: the address the middleware checks keys'
// IP allow-lists against and counts failures by. It returns the zero Addr
// when the address cannot be told, which fails keys with an allow-list
// closed. It allocates nothing. Other doors to the same keys, such as
// package console's sign-in form (its Config.ClientAddr), should use it
// so that they see clients as the API does.
func (m *Middleware) ClientAddr(r *http.Request) netip.Addr {
	return m.clientAddr(r)
}

// clientAddr is ClientAddr.
func (m *Middleware) clientAddr(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if len(m.trusted) == 0 || !m.isTrusted(peer) {
		return peer
	}
	values := r.Header["X-Forwarded-For"]
	client := peer
	// Walk the hops from the right (the one closest to us) to the left,
	// across repeated fields, which form one comma-separated list.
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for {
			j := strings.LastIndexByte(list, ',')
			addr := parseAddr(trimOWS(list[j+1:]))
			if !addr.IsValid() {
				return netip.Addr{} // a garbled hop: nothing left of it can be trusted
			}
			if !m.isTrusted(addr) {
				return addr
			}
			client = addr
			if j < 0 {
				break
			}
			list = list[:j]
		}
	}
	// Every hop was a trusted proxy: the leftmost is the client.
	return client
}

// isTrusted reports whether addr is inside a trusted proxy prefix.
func (m *Middleware) isTrusted(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	for _, p := range m.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parseAddr parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port" and returns
// the address without zone, IPv4-mapped IPv6 addresses unmapped; the zero
// Addr if s is none of these. The port is not looked at.
func parseAddr(s string) netip.Addr {
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || (end+1 < len(s) && s[end+1] != ':') {
			return netip.Addr{}
		}
		host = s[1:end]
	} else if i := strings.IndexByte(s, ':'); i >= 0 && strings.LastIndexByte(s, ':') == i {
		host = s[:i] // IPv4 with a port; more colons mean a bare IPv6 address
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

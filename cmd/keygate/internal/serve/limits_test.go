package serve

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server"
)

// dial opens a TCP connection to the server of in.
func dial(t *testing.T, in *instance) net.Conn {
	t.Helper()
	u, err := url.Parse(in.url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rawRequest sends raw over a new connection and returns the response's
// status.
func rawRequest(t *testing.T, in *instance, raw string) int {
	t.Helper()
	conn := dial(t, in)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOversizedRequests sends the server, over TCP, headers and bodies
// over its limits: headers past MaxHeaderBytes (16 KiB; net/http allows
// 4 KiB more for its buffer) are refused by net/http with 431, before any
// handler; a body past the API's 64 KiB is refused with a 413
// body_too_large problem, whether its length is announced or chunked.
// Requests within the limits pass, and the server keeps serving.
func TestOversizedRequests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	in := start(t, nil, "--db", filepath.Join(dir, "k.db"), "--admin-token-file", tokenFile)
	admin := readToken(t, tokenFile)

	get := func(target string, header string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: keygate\r\nConnection: close\r\n" + header + "\r\n"
	}
	for _, c := range []struct {
		name, raw string
		status    int
	}{
		{"12 KiB header", get("/healthz", "X-Big: "+strings.Repeat("a", 12<<10)+"\r\n"), http.StatusOK},
		{"21 KiB header", get("/healthz", "X-Big: "+strings.Repeat("a", 21<<10)+"\r\n"), http.StatusRequestHeaderFieldsTooLarge},
		{"100 headers of 256 bytes", get("/healthz", strings.Repeat("X-Many: "+strings.Repeat("b", 246)+"\r\n", 100)), http.StatusRequestHeaderFieldsTooLarge},
		{"32 KiB request target", get("/healthz?"+strings.Repeat("c", 32<<10), ""), http.StatusRequestHeaderFieldsTooLarge},
		{"21 KiB Authorization on the API", get("/v1/keys", "Authorization: Api-Key "+strings.Repeat("d", 21<<10)+"\r\n"), http.StatusRequestHeaderFieldsTooLarge},
	} {
		if got := rawRequest(t, in, c.raw); got != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got, c.status)
		}
	}

	// The body limit is server.DefaultMaxBodyBytes.
	body := func(n int) string {
		head, tail := `{"name":"`, `","role":"owner","expiry":"1d"}`
		return head + strings.Repeat("n", n-len(head)-len(tail)) + tail
	}
	for _, c := range []struct {
		name    string
		body    io.Reader
		tooBig  bool
		chunked bool
	}{
		{"64 KiB", strings.NewReader(body(server.DefaultMaxBodyBytes)), false, false},
		{"64 KiB + 1", strings.NewReader(body(server.DefaultMaxBodyBytes + 1)), true, false},
		{"1 MiB", strings.NewReader(body(1 << 20)), true, false},
		{"64 KiB + 1 chunked", io.MultiReader(strings.NewReader(body(server.DefaultMaxBodyBytes + 1))), true, true},
	} {
		req, err := http.NewRequest(http.MethodPost, in.url+"/v1/keys", c.body)
		if err != nil {
			t.Fatal(err)
		}
		if c.chunked {
			req.TransferEncoding = []string{"chunked"}
		}
		req.Header.Set("Authorization", "Api-Key "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var p struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		}
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		switch {
		case err != nil:
			t.Errorf("%s: status %d, body: %v", c.name, resp.StatusCode, err)
		case c.tooBig && (resp.StatusCode != http.StatusRequestEntityTooLarge || p.Status != resp.StatusCode || p.Code != server.CodeBodyTooLarge):
			t.Errorf("%s: %d %+v, want 413 body_too_large", c.name, resp.StatusCode, p)
		case !c.tooBig && resp.StatusCode == http.StatusRequestEntityTooLarge:
			t.Errorf("%s: 413, want the body read (a name that long is 400)", c.name)
		}
	}
	if status, body := call(t, "GET", in.url+"/readyz", "", ""); status != http.StatusOK {
		t.Errorf("after oversized requests: readyz %d %s", status, body)
	}
}

// readUntilClosed reads conn until the server closes it and returns what
// it read and when it closed; it fails the test if conn stays open past
// the deadline.
func readUntilClosed(t *testing.T, conn net.Conn, deadline time.Duration) (string, time.Duration) {
	t.Helper()
	begin := time.Now()
	conn.SetReadDeadline(begin.Add(deadline))
	data, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %v (read %q)", deadline, data)
	}
	return string(data), time.Since(begin)
}

// trickle writes s to conn one byte every interval until it is all
// written, the connection fails or stop is closed.
func trickle(conn net.Conn, s string, interval time.Duration, stop <-chan struct{}) {
	for i := 0; i < len(s); i++ {
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
		if _, err := conn.Write([]byte{s[i]}); err != nil {
			return
		}
	}
}

// TestSlowClients runs the server with short timeouts
// (-read-header-timeout 300ms, -read-timeout 1s, -idle-timeout 1s; the
// defaults are 5s, 15s and 60s) and checks that a client sending its
// headers one byte at a time is disconnected (net/http answers 400) once
// the header timeout has passed; that one sending its body one byte at a time
// is cut off by the read timeout and creates nothing; and that an idle
// kept-alive connection is closed after the idle timeout. A client within
// the timeouts is served.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	in := start(t, nil, "--db", filepath.Join(dir, "k.db"), "--admin-token-file", tokenFile,
		"--read-header-timeout", "300ms", "--read-timeout", "1s", "--write-timeout", "2s", "--idle-timeout", "1s")
	admin := readToken(t, tokenFile)
	const slack = 3 * time.Second // generous for a loaded CI machine, below every default

	t.Run("headers", func(t *testing.T) {
		t.Parallel()
		conn := dial(t, in)
		stop := make(chan struct{})
		defer close(stop)
		go trickle(conn, "GET /healthz HTTP/1.1\r\nHost: keygate\r\nX-Slow: "+strings.Repeat("s", 200)+"\r\n\r\n", 20*time.Millisecond, stop)
		got, after := readUntilClosed(t, conn, 300*time.Millisecond+slack)
		// net/http answers 400 to a request whose headers time out, or
		// nothing, and closes the connection.
		if got != "" && !strings.HasPrefix(got, "HTTP/1.1 400 ") || after < 250*time.Millisecond {
			t.Errorf("slow headers: read %q after %v, want the connection closed, at most with a 400, after 300ms", got, after)
		}
		t.Logf("slow headers cut off after %v", after.Round(time.Millisecond))
	})

	t.Run("body", func(t *testing.T) {
		t.Parallel()
		conn := dial(t, in)
		body := `{"name":"slow","role":"owner","expiry":"1d","description":"` + strings.Repeat("s", 200) + `"}`
		head := fmt.Sprintf("POST /v1/keys HTTP/1.1\r\nHost: keygate\r\nAuthorization: Api-Key %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", admin, len(body))
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go trickle(conn, body, 20*time.Millisecond, stop)
		got, after := readUntilClosed(t, conn, time.Second+slack)
		if after < 900*time.Millisecond || strings.HasPrefix(got, "HTTP/1.1 2") {
			t.Errorf("slow body: read %q after %v, want no success, the connection closed after 1s", got, after)
		}
		t.Logf("slow body cut off after %v: %.40q", after.Round(time.Millisecond), got)
		if status, list := call(t, "GET", in.url+"/v1/keys", admin, ""); status != http.StatusOK || strings.Contains(list, `"slow"`) {
			t.Errorf("after the slow body: GET /v1/keys = %d %s; want no key \"slow\"", status, list)
		}
	})

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		conn := dial(t, in)
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: keygate\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("healthz: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
		begin := time.Now()
		conn.SetReadDeadline(begin.Add(time.Second + slack))
		rest, err := io.ReadAll(br)
		after := time.Since(begin)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || len(rest) > 0 || after < 900*time.Millisecond {
			t.Errorf("idle connection: read %q, %v after %v; want it closed after 1s", rest, err, after)
		}
	})

	t.Run("within the timeouts", func(t *testing.T) {
		t.Parallel()
		if status, body := call(t, "GET", in.url+"/healthz", "", ""); status != http.StatusOK {
			t.Errorf("healthz: %d %s", status, body)
		}
	})
}

package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/cmd/keygate/internal/testenv"
)

// redisProcess is a redis-server of the test's own, on a port of its own,
// so that the test can stop and start it without disturbing the Redis
// other tests share.
type redisProcess struct {
	t    *testing.T
	port string
	dir  string
	cmd  *exec.Cmd
}

// startRedis runs a new redis-server, stopped at cleanup.
func startRedis(t *testing.T) *redisProcess {
	t.Helper()
	r := &redisProcess{t: t, port: testenv.FreePort(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisProcess) url() string { return "redis://127.0.0.1:" + r.port + "/0" }

func (r *redisProcess) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:" + r.port, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatal("redis-server did not answer within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop stops redis-server as a service manager does (SIGTERM) and waits.
func (r *redisProcess) stop() {
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// process is a keygate serve process.
type process struct {
	url string
	out *testenv.Buffer
}

// startProcess runs bin serve with args and env on a free port until the
// test ends, and waits until it is ready.
func startProcess(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	port := testenv.FreePort(t)
	p := &process{url: "http://127.0.0.1:" + port, out: &testenv.Buffer{}}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:" + port}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(p.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("keygate serve did not become ready:\n%s", p.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// status returns the status of GET url with the key token.
func status(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestThreeInstances runs three keygate serve processes on one MariaDB (or
// PostgreSQL) database with --redis, as the deployment notes describe:
// they share a key's rate limit exactly, and a key revoked through one is
// refused by all three within a second, while Redis runs, while it is
// stopped, and once it is back.
func TestThreeInstances(t *testing.T) {
	t.Parallel()
	if os.Getenv("KEYGATE_TEST_REDIS_ADDR") == "" {
		t.Skip("KEYGATE_TEST_REDIS_ADDR is not set")
	}
	var db, engine, dsn string
	switch {
	case os.Getenv("KEYGATE_TEST_MYSQL_DSN") != "":
		engine, dsn = "mysql", os.Getenv("KEYGATE_TEST_MYSQL_DSN")
		db = testenv.MySQLURL(dsn)
	case os.Getenv("KEYGATE_TEST_POSTGRES_DSN") != "":
		engine, dsn = "postgres", os.Getenv("KEYGATE_TEST_POSTGRES_DSN")
		db = dsn
	default:
		t.Skip("neither KEYGATE_TEST_MYSQL_DSN nor KEYGATE_TEST_POSTGRES_DSN is set")
	}
	b := make([]byte, 4)
	rand.Read(b)
	prefix := "multi" + hex.EncodeToString(b) + "_"
	t.Cleanup(func() { testenv.DropTables(t, engine, dsn, prefix) })
	redis := startRedis(t)
	bin := testenv.Binary(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	env := []string{"KEYGATE_PEPPER=" + pepperEnv("multi"), "KEYGATE_DB=" + db, "KEYGATE_TABLE_PREFIX=" + prefix, "KEYGATE_REDIS=" + redis.url()}
	first := startProcess(t, bin, env, "--demo", "--admin-token-file", tokenFile)
	admin := readToken(t, tokenFile)
	var instances []*process
	instances = append(instances, first, startProcess(t, bin, env, "--demo"), startProcess(t, bin, env, "--demo"))

	create := func(body string) (token, id string) {
		t.Helper()
		status, out := call(t, "POST", instances[1].url+"/v1/keys", admin, body)
		if status != 201 {
			t.Fatalf("POST /v1/keys = %d %s", status, out)
		}
		var c struct {
			Token string
			Key   struct{ ID string }
		}
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatal(err)
		}
		return c.Token, c.Key.ID
	}
	org := "/api/v1/organizations/acme"

	// One rate limit, exactly, whatever instance a request reaches.
	limited, _ := create(`{"name":"limited","scopes":["organization:read"],"expiry":"7d","limits":{"rate":{"requests":20,"window":"1h"}}}`)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			switch s := status(t, instances[i%3].url+org, limited); s {
			case 200:
				ok.Add(1)
			case 429:
				refused.Add(1)
			default:
				t.Errorf("rate-limited key: status %d", s)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 20 || refused.Load() != 40 {
		t.Errorf("60 requests over three instances with a 20/h limit: %d passed, %d refused; want exactly 20 and 40", ok.Load(), refused.Load())
	}

	// An identity's limits bind its keys together, exactly, whatever
	// instance each request reaches: a rate limit in Redis, credits in
	// the database.
	identity := func(body string) string {
		t.Helper()
		status, out := call(t, "POST", instances[2].url+"/v1/identities", admin, body)
		if status != 201 {
			t.Fatalf("POST /v1/identities = %d %s", status, out)
		}
		var id struct{ ID string }
		if err := json.Unmarshal([]byte(out), &id); err != nil {
			t.Fatal(err)
		}
		return id.ID
	}
	for _, tc := range []struct {
		what, limits string
		want         int64
	}{
		{"rate limit", `{"rate_limits":[{"name":"requests","requests":20,"window":"1h"}]}`, 20},
		{"credits", `{"credits":{"remaining":15}}`, 15},
	} {
		id := identity(`{"external_id":"` + tc.what + `","limits":` + tc.limits + `}`)
		var toks [2]string
		for i := range toks {
			toks[i], _ = create(`{"name":"` + tc.what + string(rune('a'+i)) + `","scopes":["organization:read"],"expiry":"7d","identity_id":"` + id + `"}`)
		}
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Go(func() {
				switch s := status(t, instances[i%3].url+org, toks[i%2]); s {
				case 200:
					ok.Add(1)
				case 429:
					refused.Add(1)
				default:
					t.Errorf("%s: status %d", tc.what, s)
				}
			})
		}
		wg.Wait()
		if ok.Load() != tc.want || refused.Load() != 60-tc.want {
			t.Errorf("60 requests of two keys over three instances with an identity %s of %d: %d passed, %d refused; want exactly %d and %d",
				tc.what, tc.want, ok.Load(), refused.Load(), tc.want, 60-tc.want)
		}
	}

	// A console sign-in made on one instance is honoured by the others
	// (sessions in Redis), and its sign-in form is good once on all three.
	jar, _ := cookiejar.New(nil) // cookies ignore ports: the three share them
	browser := &http.Client{Jar: jar}
	page := func(in *process, path string) string {
		t.Helper()
		resp, err := browser.Get(in.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	form := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page(instances[0], "/console/"))
	if form == nil {
		t.Fatal("no sign-in form on the first instance")
	}
	signIn := func(in *process) (int, string) {
		resp, err := browser.PostForm(in.url+"/console/signin", url.Values{"csrf": {form[1]}, "token": {admin}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s, body := signIn(instances[1]); s != 200 || !strings.Contains(body, "bootstrap-admin") {
		t.Fatalf("sign-in on the second instance with the first's form: %d", s)
	}
	for i, in := range instances {
		if body := page(in, "/console/"); !strings.Contains(body, "bootstrap-admin") || strings.Contains(body, `name="token"`) {
			t.Errorf("instance %d does not honour the console session made on instance 2", i+1)
		}
	}
	if s, _ := signIn(instances[2]); s == 200 {
		t.Error("the sign-in form, used once, was taken again by another instance")
	}

	// revokedEverywhere revokes a key through the first instance once all
	// three have it cached, and waits until all three refuse it.
	revokedEverywhere := func(what string) {
		t.Helper()
		token, id := create(`{"name":"` + what + `","scopes":["organization:read"],"expiry":"7d"}`)
		for _, in := range instances {
			if s := status(t, in.url+org, token); s != 200 {
				t.Fatalf("%s: before the revocation: %d", what, s)
			}
		}
		start := time.Now()
		if s, out := call(t, "POST", first.url+"/v1/keys/"+id+"/revoke", admin, ""); s != 200 {
			t.Fatalf("%s: revoke = %d %s", what, s, out)
		}
		// The revocation is stored by the time its answer arrives (its
		// publication, which may fail, follows).
		revoked := time.Now()
		for i, in := range instances {
			for status(t, in.url+org, token) != 401 {
				// A second, and what this loop's own requests take.
				if time.Since(revoked) > time.Second+250*time.Millisecond {
					t.Fatalf("%s: instance %d still accepts the key %v after its revocation", what, i+1, time.Since(revoked))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Logf("%s: the revocation took %v; refused by all three %v after it", what,
			revoked.Sub(start).Round(time.Millisecond), time.Since(revoked).Round(time.Millisecond))
	}
	revokedEverywhere("redis-up")
	redis.stop()
	revokedEverywhere("redis-down")
	time.Sleep(2 * time.Second)
	revokedEverywhere("redis-down-for-a-while")
	redis.start()
	revokedEverywhere("redis-back")
	time.Sleep(2 * time.Second)
	revokedEverywhere("redis-back-for-a-while")
	for i, in := range instances {
		if status(t, in.url+"/readyz", "") != 200 {
			t.Errorf("instance %d is not ready again after Redis came back", i+1)
		}
	}
}

package keygate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlstore"
)

// The fault suite (issue 8): a stream of verifications and management
// calls on PostgreSQL and MariaDB while the library's connections are
// killed (pg_terminate_backend, KILL) and the server becomes unreachable
// (a proxy that cuts every connection and refuses new ones, standing for a
// server stop; with KEYGATE_TEST_*_STOP and _START set, as .ci/run does in
// a step of its own, the real server is stopped and restarted too). It
// checks that:
//   - a good key, uncached, is never refused as invalid, expired or
//     revoked: only ErrUnavailable;
//   - a revoked key is never accepted;
//   - no acknowledged create, update or revoke is lost, and no record is
//     half written;
//   - everything works again afterwards, without restarting the Manager.

// faultEngine is a database server of the suite.
type faultEngine struct {
	name, env   string
	driver      string
	dialect     sqlstore.Dialect
	stop, start string // environment variables naming the server's stop and start commands
}

var faultEngines = []faultEngine{
	{"postgres", "KEYGATE_TEST_POSTGRES_DSN", "pgx", sqlstore.Postgres, "KEYGATE_TEST_POSTGRES_STOP", "KEYGATE_TEST_POSTGRES_START"},
	{"mysql", "KEYGATE_TEST_MYSQL_DSN", "mysql", sqlstore.MySQL, "KEYGATE_TEST_MYSQL_STOP", "KEYGATE_TEST_MYSQL_START"},
}

func TestFaults(t *testing.T) {
	for _, e := range faultEngines {
		t.Run(e.name, func(t *testing.T) {
			dsn := os.Getenv(e.env)
			if dsn == "" {
				t.Skipf("%s is not set", e.env)
			}
			runFaults(t, e, dsn, false)
		})
	}
}

// TestFaultsServerRestart is TestFaults with the database server itself
// stopped and started again mid-stream. It needs the commands that do so,
// which .ci/run gives it in a step run alone (stopping a server shared by
// parallel tests would fail them).
func TestFaultsServerRestart(t *testing.T) {
	for _, e := range faultEngines {
		t.Run(e.name, func(t *testing.T) {
			dsn := os.Getenv(e.env)
			if dsn == "" {
				t.Skipf("%s is not set", e.env)
			}
			if os.Getenv(e.stop) == "" || os.Getenv(e.start) == "" {
				t.Skipf("%s and %s are not set (.ci/run sets them in a step of its own)", e.stop, e.start)
			}
			runFaults(t, e, dsn, true)
		})
	}
}

// proxy forwards TCP connections to a server, and can cut them all and
// refuse new ones, as an unreachable server would.
type proxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c, up)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	p.mu.Unlock()
}

func (p *proxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut closes every connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// faultDB creates a database of its own on the server of dsn and returns
// the DSN of that database through a proxy, a handle on it that goes
// around the proxy, and a function that kills every connection to it but
// the admin's.
func faultDB(t *testing.T, e faultEngine, dsn string) (proxied string, direct *sqlx.DB, kill func() int, p *proxy) {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "kgfault_" + hex.EncodeToString(b)
	admin, err := sqlx.Open(e.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var host, directDSN string
	switch e.dialect {
	case sqlstore.Postgres:
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
		host = u.Host
		u.Path = "/" + name
		directDSN = u.String()
		p = newProxy(t, host)
		u.Host = p.ln.Addr().String()
		proxied = u.String()
		kill = func() int {
			var n int
			if err := admin.Get(&n, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
				return 0
			}
			return n
		}
	case sqlstore.MySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name) })
		cfg.DBName = name
		directDSN = cfg.FormatDSN()
		p = newProxy(t, cfg.Addr)
		cfg.Addr = p.ln.Addr().String()
		proxied = cfg.FormatDSN()
		kill = func() int {
			var ids []int64
			if err := admin.Select(&ids, `SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()`, name); err != nil {
				return 0
			}
			n := 0
			for _, id := range ids {
				if _, err := admin.Exec(fmt.Sprintf("KILL %d", id)); err == nil {
					n++
				}
			}
			return n
		}
	}
	if direct, err = sqlx.Open(e.driver, directDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	return proxied, direct, kill, p
}

// faultStats are the suite's figures.
type faultStats struct {
	kills, killed, outages           atomic.Int64
	verifications, unavailable       atomic.Int64
	managementCalls, managementFails atomic.Int64
}

func runFaults(t *testing.T, e faultEngine, dsn string, restart bool) {
	ctx := context.Background()
	proxied, direct, kill, p := faultDB(t, e, dsn)
	db, err := sqlx.Open(e.driver, proxied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(16)
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: e.dialect})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// No cache: every verification reads the store.
	m, err := keygate.New(keygate.Config{Store: st, Hasher: hasher(t, "p1"), Auditor: nopAuditor{}, CacheTTL: -1, NegativeCacheTTL: -1, LastUsedInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(ctx) })

	var good []string
	for i := range 8 {
		c, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: fmt.Sprint("good-", i), Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, c.Token.Reveal())
	}
	rc, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "revoked", Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, keygate.System(), rc.Key.ID); err != nil {
		t.Fatal(err)
	}
	pair, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "v0", Description: "v0", Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}

	var stats faultStats
	var violations atomic.Int64
	violate := func(format string, args ...any) {
		if violations.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// Verifiers: good keys pass or are unavailable; the revoked one never
	// passes.
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := good[(w+i)%len(good)]
				if i%5 == 0 {
					tok = rc.Token.Reveal()
				}
				vctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := m.Verify(vctx, tok)
				cancel()
				stats.verifications.Add(1)
				switch {
				case tok == rc.Token.Reveal() && err == nil:
					violate("a revoked key was accepted")
				case tok == rc.Token.Reveal() && (errors.Is(err, keygate.ErrRevoked) || errors.Is(err, keygate.ErrUnavailable)):
				case tok == rc.Token.Reveal():
					violate("the revoked key: %v, want ErrRevoked or ErrUnavailable", err)
				case err == nil:
				case errors.Is(err, keygate.ErrUnavailable):
					stats.unavailable.Add(1)
				default:
					violate("a good key was refused with %v, want success or ErrUnavailable", err)
				}
			}
		})
	}

	// Management: creates, paired updates, revocations. What is
	// acknowledged must be in the store afterwards.
	var mu sync.Mutex
	created := map[string]bool{} // name -> acknowledged
	var revoked []string         // ids of acknowledged revocations
	lastAcked, attempted := 0, map[int]bool{0: true}
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			name := fmt.Sprint("made-", i)
			c, err := m.Create(mctx, keygate.System(), keygate.CreateRequest{Name: name, Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
			stats.managementCalls.Add(1)
			if err == nil {
				mu.Lock()
				created[name] = true
				mu.Unlock()
				if _, err := m.Revoke(mctx, keygate.System(), c.Key.ID); err == nil {
					mu.Lock()
					revoked = append(revoked, c.Key.ID.String())
					mu.Unlock()
				} else {
					stats.managementFails.Add(1)
				}
				stats.managementCalls.Add(1)
			} else {
				stats.managementFails.Add(1)
			}
			v := fmt.Sprint("v", i)
			mu.Lock()
			attempted[i] = true
			mu.Unlock()
			_, err = m.Update(mctx, keygate.System(), pair.Key.ID, keygate.UpdateRequest{Name: &v, Description: &v})
			stats.managementCalls.Add(1)
			if err == nil {
				mu.Lock()
				lastAcked = i
				mu.Unlock()
			} else {
				stats.managementFails.Add(1)
			}
			cancel()
		}
	})

	// The faults.
	start := time.Now()
	for round := range 8 {
		time.Sleep(150 * time.Millisecond)
		stats.kills.Add(1)
		stats.killed.Add(int64(kill()))
		if round == 4 {
			// The server becomes unreachable for a second.
			stats.outages.Add(1)
			p.down.Store(true)
			p.cut()
			time.Sleep(time.Second)
			p.down.Store(false)
		}
	}
	if restart {
		stats.outages.Add(1)
		runCommand(t, os.Getenv(e.stop))
		time.Sleep(500 * time.Millisecond)
		runCommand(t, os.Getenv(e.start))
		waitFor(t, 60*time.Second, func() bool { return direct.Ping() == nil })
	}
	faulty := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Everything works again, with the same Manager.
	recovered := time.Now()
	waitFor(t, 30*time.Second, func() bool {
		for _, tok := range good {
			if _, err := m.Verify(ctx, tok); err != nil {
				return false
			}
		}
		_, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "after-" + fmt.Sprint(time.Now().UnixNano()), Scopes: []string{"cluster:read"}, Expiry: keygate.NeverExpire()})
		return err == nil
	})

	// Nothing acknowledged was lost, nothing is half written: read the
	// database around the proxy, with a store of its own.
	check, err := sqlstore.New(sqlstore.Config{DB: direct, Dialect: e.dialect})
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	byName := map[string]*store.Key{}
	for after := (store.ListOptions{Limit: store.MaxListLimit}); ; {
		page, err := check.List(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			byName[k.Name] = k
		}
		if page.Next == [16]byte{} {
			break
		}
		after.After = page.Next
	}
	for name := range created {
		if byName[name] == nil {
			lost++
			t.Errorf("acknowledged create of %s lost", name)
		}
	}
	revokedSet := map[string]bool{}
	for _, k := range byName {
		if !k.RevokedAt.IsZero() {
			revokedSet[k.ID.String()] = true
		}
	}
	for _, id := range revoked {
		if !revokedSet[id] {
			lost++
			t.Errorf("acknowledged revocation of %s lost", id)
		}
	}
	pk, err := check.Get(ctx, pair.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if pk.Name != pk.Description {
		t.Errorf("half-written record: name %q, description %q (one update sets both)", pk.Name, pk.Description)
	} else if _, err := fmt.Sscanf(pk.Name, "v%d", &n); err != nil || n < lastAcked || !attempted[n] {
		lost++
		t.Errorf("paired key at %q, but the last acknowledged update was v%d", pk.Name, lastAcked)
	}
	t.Logf("%s: %d kill rounds killed %d connections, %d outage(s) (server %s), %.1f s of faults; %d verifications (%d unavailable), %d management calls (%d failed, not acknowledged); violations %d; acknowledged writes lost %d (creates %d, revocations %d, last update v%d); recovered in %v",
		e.name, stats.kills.Load(), stats.killed.Load(), stats.outages.Load(), map[bool]string{true: "stopped and restarted, plus a proxy cut", false: "unreachable through the proxy"}[restart],
		faulty.Seconds(), stats.verifications.Load(), stats.unavailable.Load(), stats.managementCalls.Load(), stats.managementFails.Load(),
		violations.Load(), lost, len(created), len(revoked), lastAcked, time.Since(recovered).Round(time.Millisecond))
}

// runCommand runs a shell command of the environment, failing the test on
// error.
func runCommand(t *testing.T, command string) {
	t.Helper()
	out, err := exec.Command("sh", "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, strings.TrimSpace(string(out)))
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not recovered within %v", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

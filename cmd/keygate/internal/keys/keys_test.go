package keys_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdtest"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/store"
)

// createdJSON is what keys create -o json prints.
type createdJSON struct {
	Key       *client.Key `json:"key"`
	Token     string      `json:"token"`
	TokenFile string      `json:"token_file"`
}

// TestCreate: in table mode the token alone goes to stdout, so that
// TOKEN=$(keygate keys create ...) captures it; -o json prints the key and
// the token in one object; --new-token-file writes it to a 0600 file only.
func TestCreate(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()

	r := s.ok(t, "keys", "create", "--name", "grafana", "--owner", "alice", "--scope", "organization:read", "--scope", "cluster:read",
		"--expiry", "30d", "--rate", "100/1m", "--uses", "1000", "--metadata", "team=obs", "--description", "dashboards")
	token := strings.TrimSuffix(r.Out, "\n")
	if strings.ContainsAny(token, " \n") || !strings.HasPrefix(token, "kg_") {
		t.Fatalf("stdout is not the token alone: %q", r.Out)
	}
	s.secrets = append(s.secrets, token)
	k := s.key(t, "grafana")
	if _, err := s.m.Verify(ctx, token); err != nil {
		t.Errorf("the printed token does not verify: %v", err)
	}
	for _, want := range []string{"Key grafana created", k.ID.String(), k.Hint, "shown this once"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r.Stderr)
		}
	}
	if k.Owner != "alice" || k.Description != "dashboards" || k.Metadata["team"] != "obs" || k.RateLimit != 100 || k.RateWindow != time.Minute ||
		k.RemainingUses == nil || *k.RemainingUses != 1000 || k.ExpiresAt.IsZero() {
		t.Errorf("the key: %+v", k)
	}
	r = s.ok(t, "keys", "create", "--name", "office", "--scope", "cluster:read", "--expiry", "30d", "--allow-cidr", "10.0.0.0/8", "--allow-cidr", "2001:db8::/32")
	s.secrets = append(s.secrets, strings.TrimSpace(r.Out))
	if k := s.key(t, "office"); len(k.AllowedCIDRs) != 2 || k.AllowedCIDRs[1].String() != "2001:db8::/32" {
		t.Errorf("--allow-cidr: %v", k.AllowedCIDRs)
	}

	r = s.ok(t, "keys", "create", "--name", "ci", "--workspace", "tiger", "--role", "editor", "--expiry", "never", "-o", "json")
	var c createdJSON
	r.Decode(t, &c)
	s.secrets = append(s.secrets, c.Token)
	if c.Key == nil || c.Key.Name != "ci" || c.Key.Workspace != "tiger" || c.Key.Role != "editor" || c.TokenFile != "" {
		t.Errorf("-o json: %+v", c)
	}
	if key, err := s.m.Verify(ctx, c.Token); err != nil || key.ID != c.Key.ID {
		t.Errorf("the JSON token: %v, %v", key, err)
	}
	if r.Stderr != "" {
		t.Errorf("-o json wrote to stderr: %s", r.Stderr)
	}

	path := filepath.Join(t.TempDir(), "deploy.token")
	for _, output := range []string{"table", "json"} {
		r = s.ok(t, "keys", "create", "--name", "deploy-"+output, "--scope", "cluster:read", "--expiry", "7d", "--new-token-file", path, "-o", output)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		tok := strings.TrimSpace(string(data))
		s.secrets = append(s.secrets, tok)
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("--new-token-file mode %v", fi.Mode())
		}
		if _, err := s.m.Verify(ctx, tok); err != nil {
			t.Errorf("the token file's token: %v", err)
		}
		if strings.Contains(r.Out, tok) {
			t.Errorf("-o %s --new-token-file: the token is on stdout too", output)
		}
		if !strings.Contains(r.Out, "deploy-"+output) {
			t.Errorf("-o %s --new-token-file: stdout lacks the key: %s", output, r.Out)
		}
	}
}

// TestUsage: a wrong command line exits 2 and sends nothing.
func TestUsage(t *testing.T) {
	t.Parallel()
	s := newService(t)
	before := len(s.keys(t))
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(s.admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		says string
	}{
		{"no name", nil, []string{"keys", "create", "--scope", "a:read", "--expiry", "7d"}, "--name is required"},
		{"no expiry", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read"}, "--expiry is required"},
		{"bad expiry", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "soon"}, `--expiry "soon"`},
		{"no permission", nil, []string{"keys", "create", "--name", "x", "--expiry", "7d"}, "--role, --scope or both"},
		{"bad rate", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "7d", "--rate", "fast"}, `--rate "fast"`},
		{"bad uses", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "7d", "--uses", "-1"}, `--uses "-1"`},
		{"bad cidr", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "7d", "--allow-cidr", "10.0.0.1"}, "--allow-cidr"},
		{"bad named rate", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "7d", "--named-rate", "Tokens=1/1s"}, `--named-rate "Tokens=1/1s"`},
		{"bad on-demand rate", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "7d", "--on-demand-rate", "x=1"}, `--on-demand-rate "x=1"`},
		{"refill without uses", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "7d", "--refill", "5/day"}, "give --uses too"},
		{"bad refill", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "7d", "--uses", "5", "--refill", "5/week"}, `--refill "5/week"`},
		{"named rates and clear", nil, []string{"keys", "update", "0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e", "--named-rate", "a=1/1s", "--clear-named-rates"}, "not both"},
		{"unlimited with a refill", nil, []string{"keys", "update", "0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e", "--uses", "unlimited", "--refill", "5/day"}, "give no --refill"},
		{"bad metadata", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "7d", "--metadata", "novalue"}, "--metadata"},
		{"a token flag", nil, []string{"keys", "create", "--name", "x", "--scope", "a:read", "--expiry", "7d", "--token", "kg_whatever"}, "--token is not a flag"},
		{"no token", map[string]string{"KEYGATE_TOKEN": ""}, []string{"keys", "list"}, "no API token"},
		{"two tokens", map[string]string{"KEYGATE_TOKEN_FILE": tokenFile}, []string{"keys", "list"}, "give one"},
		{"not a token", map[string]string{"KEYGATE_TOKEN": "short"}, []string{"keys", "list"}, "not a token"},
		{"missing token file", map[string]string{"KEYGATE_TOKEN": ""}, []string{"keys", "list", "--token-file", "/nonexistent/token"}, "--token-file"},
		{"bad server", nil, []string{"keys", "list", "--server", "ftp://keys"}, "--server"},
		{"bad output", nil, []string{"keys", "list", "-o", "yaml"}, "want table or json"},
		{"bad output env", map[string]string{"KEYGATE_OUTPUT": "yaml"}, []string{"keys", "list"}, "$KEYGATE_OUTPUT"},
		{"bad status", nil, []string{"keys", "list", "--status", "gone"}, "--status"},
		{"bad limit", nil, []string{"keys", "list", "--limit", "0"}, "--limit"},
		{"bad id", nil, []string{"keys", "get", "grafana"}, "is not a key id"},
		{"no args", nil, []string{"keys", "revoke"}, "accepts 1 arg"},
		{"nothing to update", nil, []string{"keys", "update", "0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e", "--version", "2"}, "nothing to change"},
		{"scope and add-scope", nil, []string{"keys", "update", "0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e", "--scope", "a:read", "--add-scope", "b:read"}, "not both"},
		{"regenerate without expiry", nil, []string{"keys", "regenerate", "0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e"}, "--expiry is required"},
		{"delete from a pipe", nil, []string{"keys", "delete", "0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e"}, "give --yes"},
		{"verify without token", nil, []string{"keys", "verify"}, "no token on standard input"},
		{"import batch", nil, []string{"keys", "import", "--batch", "1001", "x.csv"}, "--batch 1001"},
		{"import missing file", nil, []string{"keys", "import", "/nonexistent/keys.csv"}, "no such file"},
		{"keys alone", nil, []string{"keys"}, "keys needs a command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.run(t, cmdtest.Invocation{Env: tc.env}, tc.args...).Want(t, cmdutil.ExitUsage, tc.says)
		})
	}
	if after := len(s.keys(t)); after != before {
		t.Errorf("usage errors changed the keys: %d, then %d", before, after)
	}
}

// TestExitCodes: the API's refusals exit 1 with its problem detail, and
// a service unreachable or failing exits 3.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	s := newService(t)
	s.ok(t, "keys", "create", "--name", "grafana", "--scope", "cluster:read", "--expiry", "30d", "-o", "json")
	viewer := s.token(t, keygate.CreateRequest{Name: "viewer", Scopes: []string{"apikey:view"}})
	short := s.token(t, keygate.CreateRequest{Name: "short", Scopes: []string{"apikey:manage", "cluster:read"}, Expiry: keygate.ExpireAfterDays(1)})
	missing := "0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e"

	s.run(t, cmdtest.Invocation{}, "keys", "create", "--name", "grafana", "--scope", "cluster:read", "--expiry", "30d").
		Want(t, cmdutil.ExitRefused, "409 duplicate_name")
	s.run(t, cmdtest.Invocation{}, "keys", "create", "--name", "x", "--role", "nosuch", "--expiry", "30d").
		Want(t, cmdutil.ExitRefused, "400 unknown_role")
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_TOKEN": viewer}}, "keys", "create", "--name", "x", "--scope", "cluster:read", "--expiry", "30d").
		Want(t, cmdutil.ExitRefused, "403 forbidden", "the token lacks apikey:manage")
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_TOKEN": short}}, "keys", "create", "--name", "x", "--scope", "cluster:read", "--expiry", "30d").
		Want(t, cmdutil.ExitRefused, "403 forbidden", "the latest expiry the token may give")
	s.run(t, cmdtest.Invocation{}, "keys", "get", missing).Want(t, cmdutil.ExitRefused, "404 not_found")
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_TOKEN": "kg_" + strings.Repeat("A", 40)}}, "keys", "list").
		Want(t, cmdutil.ExitRefused, "401", "check the token")
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_URL": strings.TrimSuffix(s.url, "/v1")}}, "keys", "list").
		Want(t, cmdutil.ExitRefused, "404 not found", "is --server the API's base URL")
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_URL": s.url + "/v1"}}, "keys", "list").
		Want(t, cmdutil.ExitRefused, "404 no_route", "is --server the API's base URL")

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_URL": down.URL + "/v1"}}, "keys", "list").
		Want(t, cmdutil.ExitUnavailable, "connection refused")
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"type":"about:blank","title":"Service Unavailable","status":503,"code":"unavailable","detail":"The key store is unavailable."}`))
	}))
	defer failing.Close()
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_URL": failing.URL + "/v1"}}, "keys", "list").
		Want(t, cmdutil.ExitUnavailable, "503 unavailable: The key store is unavailable.")
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>a proxy</html>")) }))
	defer html.Close()
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_URL": html.URL + "/v1"}}, "keys", "list").
		Want(t, cmdutil.ExitUnavailable, "is --server a keygate token service?")
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_URL": slow.URL + "/v1", "KEYGATE_TIMEOUT": "50ms"}}, "keys", "list").
		Want(t, cmdutil.ExitUnavailable, "no answer within --timeout")
}

// TestEnvironment: the API and output flags read their variables, the
// command line wins, and flags that change a key read none.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	s := newService(t)
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(s.admin+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_TOKEN": "", "KEYGATE_TOKEN_FILE": tokenFile, "KEYGATE_OUTPUT": "json"}}, "keys", "list")
	r.Want(t, 0, "may be read by other users")
	var list client.KeyList
	r.Decode(t, &list)
	if len(list.Keys) != 1 || list.Keys[0].Name != "admin" {
		t.Errorf("list: %+v", list)
	}
	// The command line wins over the environment.
	r = s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_URL": "http://127.0.0.1:1/v1", "KEYGATE_OUTPUT": "json"}}, "keys", "list", "--server", s.url, "-o", "table")
	r.Want(t, 0)
	if !strings.HasPrefix(r.Out, "ID ") {
		t.Errorf("-o table over $KEYGATE_OUTPUT: %s", r.Out)
	}
	// A variable named after a field of the key changes nothing.
	id := s.key(t, "admin").ID.String()
	r = s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_NAME": "renamed", "KEYGATE_EXPIRY": "1d"}}, "keys", "update", id, "--description", "the admin")
	r.Want(t, 0)
	if k := s.key(t, "admin"); k.Description != "the admin" || !k.ExpiresAt.IsZero() {
		t.Errorf("update read the environment: %+v", k)
	}
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_YES": "true"}}, "keys", "delete", id).Want(t, cmdutil.ExitUsage, "give --yes")
}

// TestListGet: tables and JSON, filters, pages.
func TestListGet(t *testing.T) {
	t.Parallel()
	s := newService(t)
	for _, name := range []string{"a", "b", "c"} {
		s.token(t, keygate.CreateRequest{Name: name, Owner: "alice", Workspace: "tiger", Role: "viewer", Expiry: keygate.ExpireAfterDays(3)})
	}
	s.token(t, keygate.CreateRequest{Name: "d", Owner: "bob", Scopes: []string{"cluster:read"}})
	r := s.ok(t, "keys", "list")
	lines := strings.Split(strings.TrimSpace(r.Out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "LAST USED") {
		t.Fatalf("table:\n%s", r.Out)
	}
	if !strings.Contains(r.Out, "viewer") || !strings.Contains(r.Out, "cluster:read") || !strings.Contains(r.Out, "active") {
		t.Errorf("table:\n%s", r.Out)
	}

	var list client.KeyList
	s.ok(t, "keys", "list", "--owner", "alice", "-o", "json").Decode(t, &list)
	if len(list.Keys) != 3 || list.Next != "" {
		t.Errorf("--owner alice: %d keys, next %q", len(list.Keys), list.Next)
	}
	s.ok(t, "keys", "list", "--expiring-within", "7d", "--workspace", "tiger", "-o", "json").Decode(t, &list)
	if len(list.Keys) != 3 {
		t.Errorf("--expiring-within 7d: %d keys", len(list.Keys))
	}

	r = s.ok(t, "keys", "list", "--limit", "2")
	if n := strings.Count(strings.TrimSpace(r.Out), "\n"); n != 2 || !strings.Contains(r.Stderr, "More keys: --after ") {
		t.Errorf("--limit 2: %d rows\n%s\n%s", n, r.Out, r.Stderr)
	}
	s.ok(t, "keys", "list", "--limit", "2", "-o", "json").Decode(t, &list)
	if len(list.Keys) != 2 || list.Next == "" {
		t.Fatalf("--limit 2 -o json: %+v", list)
	}
	s.ok(t, "keys", "list", "--limit", "2", "--after", list.Next, "-o", "json").Decode(t, &list)
	if len(list.Keys) != 2 || list.Keys[0].Name != "b" {
		t.Errorf("--after: %+v", list.Keys)
	}
	s.ok(t, "keys", "list", "--limit", "1", "--all", "-o", "json").Decode(t, &list)
	if len(list.Keys) != 5 || list.Next != "" {
		t.Errorf("--all: %d keys, next %q", len(list.Keys), list.Next)
	}

	id := s.key(t, "d").ID.String()
	s.ok(t, "keys", "revoke", id)
	s.ok(t, "keys", "list", "--status", "revoked", "-o", "json").Decode(t, &list)
	if len(list.Keys) != 1 || list.Keys[0].Name != "d" {
		t.Errorf("--status revoked: %+v", list.Keys)
	}
	s.ok(t, "keys", "list", "--status", "active", "-o", "json").Decode(t, &list)
	if len(list.Keys) != 4 {
		t.Errorf("--status active: %d keys", len(list.Keys))
	}

	r = s.ok(t, "keys", "get", id)
	for _, want := range []string{"id:", id, "name:", "status:", "revoked", "scopes:", "cluster:read", "version:"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("get lacks %q:\n%s", want, r.Out)
		}
	}
	var k client.Key
	s.ok(t, "keys", "get", id, "-o", "json").Decode(t, &k)
	if k.ID.String() != id || k.RevokedAt.IsZero() {
		t.Errorf("get -o json: %+v", k)
	}
}

// TestUpdate: only what the flags say changes; --add-scope and
// --remove-scope keep the other scopes; --version guards the update.
func TestUpdate(t *testing.T) {
	t.Parallel()
	s := newService(t)
	s.token(t, keygate.CreateRequest{Name: "grafana", Scopes: []string{"organization:read", "cluster:read"}, Metadata: map[string]string{"a": "1"},
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 5, Window: time.Second}, AllowedCIDRs: nil}})
	id := s.key(t, "grafana").ID.String()

	var k client.Key
	s.ok(t, "keys", "update", id, "--add-scope", "cluster:write", "--remove-scope", "organization:read", "-o", "json").Decode(t, &k)
	if strings.Join(k.Scopes, " ") != "cluster:read cluster:write" || k.Metadata["a"] != "1" || k.Limits.Rate.Requests != 5 {
		t.Errorf("--add-scope --remove-scope: %+v", k)
	}
	s.ok(t, "keys", "update", id, "--rate", "none", "--uses", "10", "--allow-cidr", "10.0.0.0/8", "--expiry", "90d", "--clear-metadata", "-o", "json").Decode(t, &k)
	if k.Limits.Rate.Requests != 0 || k.Limits.UsesRemaining == nil || *k.Limits.UsesRemaining != 10 || len(k.Limits.AllowedCIDRs) != 1 ||
		k.ExpiresAt.IsZero() || len(k.Metadata) != 0 {
		t.Errorf("limits: %+v", k)
	}
	s.ok(t, "keys", "update", id, "--uses", "unlimited", "--allow-cidr", "any", "--metadata", "team=obs", "--name", "graphs", "-o", "json").Decode(t, &k)
	if k.Limits.UsesRemaining != nil || len(k.Limits.AllowedCIDRs) != 0 || k.Metadata["team"] != "obs" || k.Name != "graphs" {
		t.Errorf("unlimited, any: %+v", k)
	}
	s.ok(t, "keys", "update", id, "--named-rate", "tokens=1000/1h", "--on-demand-rate", "exports=5/24h", "--uses", "50", "--refill", "50/month:31", "-o", "json").Decode(t, &k)
	if len(k.Limits.RateLimits) != 2 || k.Limits.RateLimits[0] != (client.NamedRateLimit{Name: "tokens", Requests: 1000, Window: client.Duration(time.Hour)}) ||
		!k.Limits.RateLimits[1].OnDemand || *k.Limits.UsesRemaining != 50 || k.Limits.UsesRefill == nil ||
		*k.Limits.UsesRefill != (client.Refill{Amount: 50, Every: "month", Day: 31}) || k.Limits.UsesRefilledAt.IsZero() {
		t.Errorf("named limits and a refill: %+v", k.Limits)
	}
	r := s.ok(t, "keys", "get", id)
	for _, want := range []string{"tokens=1000/1h0m0s, exports=5/24h0m0s (on demand)", "50, refilled to 50 every month on day 31"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("get lacks %q:\n%s", want, r.Out)
		}
	}
	s.ok(t, "keys", "update", id, "--clear-named-rates", "--refill", "none", "-o", "json").Decode(t, &k)
	if k.Limits.RateLimits != nil || k.Limits.UsesRefill != nil || *k.Limits.UsesRemaining != 50 {
		t.Errorf("--clear-named-rates --refill none: %+v", k.Limits)
	}
	s.ok(t, "keys", "update", id, "--uses", "unlimited", "-o", "json").Decode(t, &k)
	stale := k.Version - 1
	s.run(t, cmdtest.Invocation{}, "keys", "update", id, "--description", "x", "--version", itoa(stale)).Want(t, cmdutil.ExitRefused, "409 conflict")
	r = s.ok(t, "keys", "update", id, "--description", "dashboards", "--version", itoa(k.Version))
	if !strings.Contains(r.Out, "description:") || !strings.Contains(r.Out, "dashboards") {
		t.Errorf("table: %s", r.Out)
	}
}

// TestRegenerateRevokeDisableEnableDelete: the rest of a key's life.
func TestRegenerateRevokeDisableEnableDelete(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()
	old := s.token(t, keygate.CreateRequest{Name: "grafana", Scopes: []string{"cluster:read"}})
	id := s.key(t, "grafana").ID.String()

	r := s.ok(t, "keys", "regenerate", id, "--expiry", "90d")
	tok := strings.TrimSpace(r.Out)
	s.secrets = append(s.secrets, tok)
	if _, err := s.m.Verify(ctx, tok); err != nil {
		t.Errorf("the new token: %v", err)
	}
	if _, err := s.m.Verify(ctx, old); err == nil {
		t.Error("the old token still works")
	}
	if !strings.Contains(r.Stderr, "Key grafana regenerated") {
		t.Errorf("stderr: %s", r.Stderr)
	}
	var c createdJSON
	s.ok(t, "keys", "regenerate", id, "--expiry", "30d", "--grace", "1h", "-o", "json").Decode(t, &c)
	s.secrets = append(s.secrets, c.Token)
	if _, err := s.m.Verify(ctx, tok); err != nil {
		t.Errorf("the previous token, within its grace period: %v", err)
	}

	r = s.ok(t, "keys", "disable", id)
	if r.Out != "Key grafana ("+id+") disabled.\n" {
		t.Errorf("disable: %q", r.Out)
	}
	if _, err := s.m.Verify(ctx, c.Token); err == nil {
		t.Error("a disabled key works")
	}
	var k client.Key
	s.ok(t, "keys", "enable", id, "-o", "json").Decode(t, &k)
	if !k.DisabledAt.IsZero() {
		t.Errorf("enable: %+v", k)
	}
	if _, err := s.m.Verify(ctx, c.Token); err != nil {
		t.Errorf("an enabled key: %v", err)
	}
	s.ok(t, "keys", "revoke", id)
	if _, err := s.m.Verify(ctx, c.Token); err == nil {
		t.Error("a revoked key works")
	}

	// delete: a terminal asks; anything but yes deletes nothing.
	r = s.run(t, cmdtest.Invocation{InTTY: true, Stdin: "n\n"}, "keys", "delete", id)
	r.Want(t, cmdutil.ExitRefused, "Delete key grafana", "not confirmed")
	s.key(t, "grafana")
	r = s.run(t, cmdtest.Invocation{InTTY: true, Stdin: "y\n"}, "keys", "delete", id)
	r.Want(t, 0)
	if r.Out != "Key "+id+" deleted.\n" {
		t.Errorf("delete: %q", r.Out)
	}
	s.run(t, cmdtest.Invocation{}, "keys", "delete", id, "--yes").Want(t, cmdutil.ExitRefused, "404 not_found")
	s.token(t, keygate.CreateRequest{Name: "other", Scopes: []string{"cluster:read"}})
	var deleted map[string]string
	oid := s.key(t, "other").ID.String()
	s.ok(t, "keys", "delete", oid, "-y", "-o", "json").Decode(t, &deleted)
	if deleted["deleted"] != oid {
		t.Errorf("delete -o json: %v", deleted)
	}
}

// TestVerify: the token comes from standard input; exit 0 valid, 1 not.
func TestVerify(t *testing.T) {
	t.Parallel()
	s := newService(t)
	tok := s.token(t, keygate.CreateRequest{Name: "grafana", Workspace: "tiger", Role: "viewer",
		Limits: keygate.Limits{Rate: keygate.RateLimit{Requests: 100, Window: time.Minute}}})

	r := s.run(t, cmdtest.Invocation{Stdin: tok + "\n"}, "keys", "verify", "--permission", "cluster:read", "--workspace", "tiger")
	r.Want(t, 0)
	for _, want := range []string{"valid: key grafana", "workspace tiger", "permissions: *:read", "rate limit: 99 of 100 per 1m0s left"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.Out)
		}
	}
	r = s.run(t, cmdtest.Invocation{Stdin: tok}, "keys", "verify", "--permission", "cluster:write", "--workspace", "tiger")
	r.Want(t, cmdutil.ExitRefused)
	if !strings.HasPrefix(r.Out, "not valid: insufficient_permission\n") || r.Stderr != "" {
		t.Errorf("insufficient permission: %q %q", r.Out, r.Stderr)
	}
	var v client.VerifyResponse
	r = s.run(t, cmdtest.Invocation{Stdin: "kg_" + strings.Repeat("B", 40)}, "keys", "verify", "-o", "json")
	r.Want(t, cmdutil.ExitRefused)
	r.Decode(t, &v)
	if v.Valid || v.Code == "" {
		t.Errorf("-o json: %+v", v)
	}
	r = s.run(t, cmdtest.Invocation{Stdin: s.admin}, "keys", "verify", "-o", "json")
	r.Want(t, 0)
	r.Decode(t, &v)
	if !v.Valid || !v.SuperAdmin {
		t.Errorf("the admin's: %+v", v)
	}
	for _, out := range []string{r.Out} {
		if strings.Contains(out, s.admin) || strings.Contains(out, tok) {
			t.Error("verify printed the token")
		}
	}
}

// TestVerifyMetered: --cost and --limit reach the server, and the report
// of what the verification took is printed, for people and as JSON.
func TestVerifyMetered(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()
	ten := int64(10)
	tok := s.token(t, keygate.CreateRequest{Name: "llm", Workspace: "tiger", Role: "viewer", Limits: keygate.Limits{
		Uses:       &ten,
		Rate:       keygate.RateLimit{Requests: 100, Window: time.Minute},
		RateLimits: []keygate.RateLimit{{Name: "exports", Requests: 2, Window: time.Hour, OnDemand: true}},
	}})
	id, err := s.m.CreateIdentity(ctx, keygate.System(), keygate.CreateIdentityRequest{ExternalID: "acme", Workspace: "tiger",
		Limits: keygate.IdentityLimits{Credits: &keygate.Credits{Remaining: 50, Refill: &keygate.Refill{Amount: 50, Every: store.PeriodDay}}}})
	if err != nil {
		t.Fatal(err)
	}
	member := s.token(t, keygate.CreateRequest{Name: "member", Workspace: "tiger", Role: "viewer", IdentityID: id.ID})

	r := s.run(t, cmdtest.Invocation{Stdin: tok}, "keys", "verify", "--cost", "2", "--limit", "exports", "--limit", "elsewhere")
	r.Want(t, 0)
	for _, want := range []string{"valid: key llm", "cost: 2\n", "limit default: 98 of 100 per 1m0s left, whole again in ",
		"limit exports: 0 of 2 per 1h0m0s left (on demand), whole again in ", "uses: 8 left, next refill never\n"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.Out)
		}
	}
	r = s.run(t, cmdtest.Invocation{Stdin: tok}, "keys", "verify", "--limit", "exports")
	r.Want(t, cmdutil.ExitRefused)
	for _, want := range []string{"not valid: rate_limited by limit exports (retry after ", "cost: 1\n",
		"limit exports: 0 of 2 per 1h0m0s left (on demand), whole again in ", ", refused: retry in "} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("refused: stdout lacks %q:\n%s", want, r.Out)
		}
	}
	var v client.VerifyResponse
	r = s.run(t, cmdtest.Invocation{Stdin: member}, "keys", "verify", "--cost", "7", "-o", "json")
	r.Want(t, 0)
	r.Decode(t, &v)
	if c := v.Report; c == nil || c.Cost != 7 || c.Credits == nil || c.Credits.Remaining != 43 || c.Credits.NextRefill.IsZero() {
		t.Fatalf("-o json: report %+v, want cost 7 and 43 credits left with a next refill", c)
	}
	r = s.run(t, cmdtest.Invocation{Stdin: member}, "keys", "verify", "--cost", "3")
	r.Want(t, 0)
	if want := "credits: 40 left, next refill " + v.Report.Credits.NextRefill.UTC().Format("2006-01-02 15:04") + " UTC\n"; !strings.Contains(r.Out, want) {
		t.Errorf("stdout lacks %q:\n%s", want, r.Out)
	}
	for _, args := range [][]string{{"--cost", "0"}, {"--cost", "-1"}, {"--cost", "1000000001"}, {"--cost", "x"}} {
		r = s.run(t, cmdtest.Invocation{Stdin: member}, append([]string{"keys", "verify"}, args...)...)
		r.Want(t, cmdutil.ExitUsage)
	}
	r = s.run(t, cmdtest.Invocation{Stdin: member}, "keys", "verify", "--limit", "Not A Name")
	if r.Code == 0 || r.Out != "" || !strings.Contains(r.Stderr, "400 invalid_field") {
		t.Errorf("a bad limit name: exit %d, stdout %q, stderr %q; want the server's 400 invalid_field and no verdict", r.Code, r.Out, r.Stderr)
	}
}

// itoa formats n.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestHostileServer: text a server sends (a key's fields, a problem's
// detail) reaches the terminal without its control characters, so that a
// hostile or broken server cannot drive it.
func TestHostileServer(t *testing.T) {
	t.Parallel()
	s := newService(t)
	const id = "0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e"
	key := `{"id":"` + id + `","name":"evil\u001b]0;pwned\u0007","description":"two\nlines\u001b[2J","owner":"\u202eevil","workspace":"w\u009b","role":"admin",` +
		`"scopes":["x:read\u001b[31m"],"metadata":{"k\u001b":"v\u001b"},"hint":"kg_\u001b","version":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/keys" && r.Method == http.MethodGet:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"keys":[` + key + `],"next":""}`))
		case r.URL.Path == "/v1/keys/"+id && r.Method == http.MethodGet:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(key))
		case r.URL.Path == "/v1/keys/verify":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"valid":true,"key":` + key + `,"permissions":["x:read\u001b[31m"]}`))
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"type":"about:blank","title":"Conflict","status":409,"code":"conflict\u001b[2J","detail":"gone\u001b]0;pwned\u0007"}`))
		}
	}))
	defer hostile.Close()
	env := map[string]string{"KEYGATE_URL": hostile.URL + "/v1"}
	for _, args := range [][]string{{"keys", "list"}, {"keys", "get", id}, {"keys", "revoke", id}, {"keys", "verify"}} {
		r := s.run(t, cmdtest.Invocation{Env: env, Stdin: "kg_" + strings.Repeat("C", 40)}, args...)
		if r.Out == "" && r.Stderr == "" {
			t.Errorf("keygate %q printed nothing", args)
		}
		if strings.ContainsAny(r.Out+r.Stderr, "\x1b\x07\u009b\u202e") {
			t.Errorf("keygate %q let control characters through:\n%q\n%q", args, r.Out, r.Stderr)
		}
	}
}

// TestPlainHTTPWarning: the token sent over plain http to another machine
// is warned about; to this machine it is not.
func TestPlainHTTPWarning(t *testing.T) {
	t.Parallel()
	s := newService(t)
	const warning = "travels unencrypted"
	r := s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_URL": "http://192.0.2.1:8080/v1", "KEYGATE_TIMEOUT": "50ms"}}, "keys", "list")
	r.Want(t, cmdutil.ExitUnavailable, warning)
	for _, url := range []string{s.url, strings.Replace(s.url, "127.0.0.1", "localhost", 1)} {
		if r := s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_URL": url}}, "keys", "list"); strings.Contains(r.Stderr, warning) {
			t.Errorf("%s: %s", url, r.Stderr)
		}
	}
}

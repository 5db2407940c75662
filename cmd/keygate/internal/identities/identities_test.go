package identities_test

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdtest"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/store/memory"
)

// service is a token service in process, mounted at /v1, with a super
// admin's token.
type service struct {
	url, admin string
	m          *keygate.Manager
}

func newService(t *testing.T) *service {
	t.Helper()
	hasher, err := apikey.NewHasher(apikey.Pepper{ID: "p1", Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	s := &service{}
	if s.m, err = keygate.New(keygate.Config{Store: memory.New(), Hasher: hasher, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.m.Close(context.Background()) })
	mw, err := middleware.New(middleware.Config{Verifier: s.m})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.New(server.Config{Manager: s.m, Middleware: mw})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.StripPrefix("/v1", api))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/v1"
	c, err := s.m.Create(context.Background(), keygate.System(), keygate.CreateRequest{Name: "admin", Role: "admin", Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	s.admin = c.Token.Reveal()
	return s
}

// run runs keygate with args, with the service's URL and token unless
// inv.Env says otherwise; no token may reach stderr.
func (s *service) run(t *testing.T, inv cmdtest.Invocation, args ...string) cmdtest.Result {
	t.Helper()
	env := map[string]string{"KEYGATE_URL": s.url, "KEYGATE_TOKEN": s.admin}
	maps.Copy(env, inv.Env)
	inv.Env = env
	r := cmdtest.Run(t, inv, args...)
	if strings.Contains(r.Stderr, s.admin) || strings.Contains(r.Out, s.admin) {
		t.Errorf("keygate %q printed the API token", args)
	}
	return r
}

// ok runs keygate and fails the test unless it exits 0.
func (s *service) ok(t *testing.T, args ...string) cmdtest.Result {
	t.Helper()
	r := s.run(t, cmdtest.Invocation{}, args...)
	if r.Code != 0 {
		t.Fatalf("keygate %q: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Out, r.Stderr)
	}
	return r
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()

	r := s.ok(t, "identities", "create", "--external-id", "cus_4Fz9", "--workspace", "tiger", "--metadata", "plan=pro",
		"--rate", "requests=100/1s", "--on-demand-rate", "tokens=100000/1h", "--credits", "500", "--refill", "1000/month:31", "-o", "json")
	var id client.Identity
	r.Decode(t, &id)
	if id.ExternalID != "cus_4Fz9" || id.Workspace != "tiger" || id.Metadata["plan"] != "pro" || len(id.Limits.RateLimits) != 2 ||
		!id.Limits.RateLimits[1].OnDemand || id.Limits.Credits.Remaining != 500 || id.Limits.Credits.Refill.Day != 31 {
		t.Fatalf("created %+v", id)
	}
	stored, err := s.m.GetIdentity(ctx, keygate.System(), id.ID)
	if err != nil || stored.Credits.Refill.Amount != 1000 || stored.RateLimits[0].Window != time.Second {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	// get, as a table and as JSON.
	r = s.ok(t, "identities", "get", id.ID.String())
	for _, want := range []string{"cus_4Fz9", "tiger", "plan=pro", "requests=100/1s", "tokens=100000/1h0m0s (on demand)", "500 left, refilled to 1000 every month on day 31"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("get lacks %q:\n%s", want, r.Out)
		}
	}

	// list, a page, then --all.
	s.ok(t, "identities", "create", "--external-id", "other", "--workspace", "tiger")
	r = s.ok(t, "identities", "list", "--workspace", "tiger", "--limit", "1")
	if !strings.Contains(r.Out, "cus_4Fz9") || strings.Contains(r.Out, "other") || !strings.Contains(r.Stderr, "--after") {
		t.Errorf("list --limit 1:\n%s\n%s", r.Out, r.Stderr)
	}
	r = s.ok(t, "identities", "list", "--all", "-o", "json")
	var list client.IdentityList
	r.Decode(t, &list)
	if len(list.Identities) != 2 || list.Next != "" {
		t.Errorf("list --all -o json: %+v", list)
	}

	// A key in it, through keys create --identity.
	r = s.ok(t, "keys", "create", "--name", "k", "--workspace", "tiger", "--role", "viewer", "--expiry", "7d", "--identity", id.ID.String(), "-o", "json")
	var created struct {
		Key       *client.Key `json:"key"`
		Token     string      `json:"token"`
		TokenFile string      `json:"token_file"`
	}
	r.Decode(t, &created)
	if created.Key.IdentityID != id.ID {
		t.Fatalf("keys create --identity: %+v", created.Key)
	}
	r = s.ok(t, "keys", "list", "--identity", id.ID.String())
	if !strings.Contains(r.Out, created.Key.ID.String()) {
		t.Errorf("keys list --identity:\n%s", r.Out)
	}
	if r = s.ok(t, "keys", "get", created.Key.ID.String()); !strings.Contains(r.Out, "identity:") || !strings.Contains(r.Out, id.ID.String()) {
		t.Errorf("keys get shows no identity:\n%s", r.Out)
	}

	// update: the balance, the rates, a refill removed.
	r = s.ok(t, "identities", "update", id.ID.String(), "--credits", "42", "--rate", "requests=50/1s", "--refill", "none", "--version", "1", "-o", "json")
	r.Decode(t, &id)
	if id.Version != 2 || id.Limits.Credits.Remaining != 42 || id.Limits.Credits.Refill != nil || len(id.Limits.RateLimits) != 1 || id.Limits.RateLimits[0].Requests != 50 {
		t.Fatalf("update: %+v", id)
	}
	s.run(t, cmdtest.Invocation{}, "identities", "update", id.ID.String(), "--external-id", "x", "--version", "1").Want(t, cmdutil.ExitRefused, "409 conflict")

	// delete: refused while the key is in it, done once it is out.
	s.run(t, cmdtest.Invocation{}, "identities", "delete", id.ID.String(), "--yes").Want(t, cmdutil.ExitRefused, "identity_in_use")
	s.ok(t, "keys", "update", created.Key.ID.String(), "--identity", "none")
	r = s.ok(t, "identities", "delete", id.ID.String(), "--yes")
	if !strings.Contains(r.Out, "deleted") {
		t.Errorf("delete: %s", r.Out)
	}
	s.run(t, cmdtest.Invocation{}, "identities", "get", id.ID.String()).Want(t, cmdutil.ExitRefused, "404 identity_not_found")
	s.run(t, cmdtest.Invocation{}, "keys", "create", "--name", "k2", "--workspace", "tiger", "--role", "viewer", "--expiry", "7d",
		"--identity", id.ID.String()).Want(t, cmdutil.ExitRefused, "400 unknown_identity")
}

// TestUsage: wrong usage exits 2 with a reason, and sends nothing.
func TestUsage(t *testing.T) {
	t.Parallel()
	s := newService(t)
	id := uuid.NewString()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"identities"}, "needs a command"},
		{[]string{"identities", "create"}, "--external-id is required"},
		{[]string{"identities", "create", "--external-id", "a", "--refill", "1/day"}, "--refill needs --credits"},
		{[]string{"identities", "create", "--external-id", "a", "--rate", "100/1s"}, "NAME=REQUESTS/WINDOW"},
		{[]string{"identities", "create", "--external-id", "a", "--rate", "Requests=100/1s"}, "a name is 1 to 32"},
		{[]string{"identities", "create", "--external-id", "a", "--rate", "r=0/1s"}, "--rate"},
		{[]string{"identities", "create", "--external-id", "a", "--credits", "-1"}, "--credits"},
		{[]string{"identities", "create", "--external-id", "a", "--credits", "1", "--refill", "1/week"}, "--refill"},
		{[]string{"identities", "create", "--external-id", "a", "--token", "x"}, "--token is not a flag"},
		{[]string{"identities", "get", "acme"}, "is not an identity id"},
		{[]string{"identities", "update", id}, "nothing to change"},
		{[]string{"identities", "update", id, "--credits", "none", "--refill", "1/day"}, "give no --refill"},
		{[]string{"identities", "update", id, "--rate", "r=1/1s", "--clear-rates"}, "not both"},
		{[]string{"identities", "update", id, "--metadata", "a=b", "--clear-metadata"}, "not both"},
		{[]string{"identities", "list", "--limit", "0"}, "--limit"},
		{[]string{"identities", "delete", id}, "give --yes"},
		{[]string{"keys", "create", "--name", "k", "--role", "admin", "--expiry", "7d", "--identity", "acme"}, "--identity"},
		{[]string{"keys", "update", id, "--identity", "acme"}, "--identity"},
	} {
		s.run(t, cmdtest.Invocation{}, tc.args...).Want(t, cmdutil.ExitUsage, tc.says)
	}
	s.run(t, cmdtest.Invocation{Env: map[string]string{"KEYGATE_TOKEN": ""}}, "identities", "list").Want(t, cmdutil.ExitUsage, "no API token")
	page, err := s.m.ListIdentities(context.Background(), keygate.System(), keygate.IdentityListRequest{})
	if err != nil || len(page.Identities) != 0 {
		t.Errorf("wrong usage created identities: %v, %v", page, err)
	}
}

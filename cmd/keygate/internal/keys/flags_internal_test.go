package keys

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/client"
	"github.com/keygate/keygate/cmd/keygate/internal/cmdutil"
)

// streams returns the streams of a command run with env.
func streams(env map[string]string) *cmdutil.IOStreams {
	return &cmdutil.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}, Getenv: func(k string) string { return env[k] }}
}

// execute parses args with cmd, whose run function keeps the options.
func execute(t *testing.T, cmd *cobra.Command, args ...string) {
	t.Helper()
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
}

// TestCreateOptions: create's flags and environment fill its options, and
// its request is what the API takes.
func TestCreateOptions(t *testing.T) {
	t.Parallel()
	var o *createOptions
	keep := func(_ context.Context, opts *createOptions) error { o = opts; return nil }
	env := map[string]string{"KEYGATE_URL": "https://keys.example/v1", "KEYGATE_OUTPUT": "json", "KEYGATE_WORKSPACE": "ignored"}
	execute(t, newCreateCmd(streams(env), keep),
		"--name", " ci ", "--workspace", "tiger", "--role", "editor", "--scope", "billing:read", "--scope", "cluster:read",
		"--expiry", "30d", "--rate", "100/1m", "--uses", "5", "--allow-cidr", "10.0.0.0/8", "--metadata", "team=pay", "--metadata", "tier=gold")
	if o.API.Server != "https://keys.example/v1" || !o.API.Output.JSON() || o.API.Timeout != 30*time.Second || o.Workspace != "tiger" {
		t.Errorf("options: %+v", o)
	}
	req, err := o.request()
	if err != nil {
		t.Fatal(err)
	}
	uses := int64(5)
	want := client.CreateRequest{Name: "ci", Workspace: "tiger", Role: "editor", Scopes: []string{"billing:read", "cluster:read"}, Expiry: "30d",
		Metadata: map[string]string{"team": "pay", "tier": "gold"},
		Limits:   &client.Limits{Rate: client.RateLimit{Requests: 100, Window: client.Duration(time.Minute)}, UsesRemaining: &uses, AllowedCIDRs: []string{"10.0.0.0/8"}}}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("request:\n got %+v\nwant %+v", req, want)
	}
	// A field read from no variable stays unset.
	execute(t, newCreateCmd(streams(map[string]string{"KEYGATE_NAME": "x", "KEYGATE_EXPIRY": "7d", "KEYGATE_SCOPE": "a:read"}), keep))
	if o.Name != "" || o.Expiry != "" || o.Scopes != nil {
		t.Errorf("create read key fields from the environment: %+v", o)
	}
}

// TestUpdateOptions: Set holds the flags given, never one the environment
// gave, and the request changes only those.
func TestUpdateOptions(t *testing.T) {
	t.Parallel()
	var o *updateOptions
	keep := func(_ context.Context, opts *updateOptions) error { o = opts; return nil }
	execute(t, newUpdateCmd(streams(map[string]string{"KEYGATE_URL": "https://keys.example/v1", "KEYGATE_NAME": "renamed"}), keep),
		"0193d1c2-5b7e-7a10-9c1e-3f2a4b5c6d7e", "--scope", "a:read", "--rate", "none", "--uses", "unlimited", "--allow-cidr", "any", "--version", "4")
	if !reflect.DeepEqual(o.Set, map[string]bool{"scope": true, "rate": true, "uses": true, "allow-cidr": true, "version": true, "server": true}) {
		t.Errorf("Set: %v", o.Set)
	}
	req, err := o.request()
	if err != nil {
		t.Fatal(err)
	}
	none, unlimited := client.RateLimit{}, int64(-1)
	want := client.UpdateRequest{Version: 4, Scopes: &[]string{"a:read"},
		Limits: &client.LimitsUpdate{Rate: &none, UsesRemaining: &unlimited, AllowedCIDRs: &[]string{}}}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("request:\n got %+v\nwant %+v", req, want)
	}
}

func TestRoundUp(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0: 0, 43165999364: 43200 * time.Millisecond, time.Hour: time.Hour, 1: 100 * time.Millisecond,
	} {
		if got := roundUp(in); got != want {
			t.Errorf("roundUp(%v) = %v, want %v", in, got, want)
		}
	}
}

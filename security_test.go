package keygate_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// The findings of the security review (issue 8), each on every storage
// engine where it was reproduced.

// managerOn returns a Manager over st with a fresh cache and no
// background writes.
func managerOn(t *testing.T, st store.Store) *keygate.Manager {
	t.Helper()
	m, err := keygate.New(keygate.Config{Store: st, Hasher: hasher(t, "p1"), Auditor: nopAuditor{}, LastUsedInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// TestExpiryWithinEveryEngine: an expiry of "9999-12-31" (the end of that
// day is in the year 10000) is refused by ParseExpiry, and by the Manager
// before anything is stored when built with ExpireAt, and the
// latest accepted expiry round-trips on every engine: Verify, Get, List
// and Delete keep working.
func TestExpiryWithinEveryEngine(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t)
			m := managerOn(t, st)
			if _, err := keygate.ParseExpiry("9999-12-31"); !errors.Is(err, keygate.ErrInvalidExpiry) || !errors.Is(err, keygate.ErrInvalidRequest) {
				t.Fatalf("ParseExpiry(9999-12-31): got %v, want ErrInvalidExpiry", err)
			}
			e := keygate.ExpireAt(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) // what that date meant
			_, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "far", Role: "admin", Expiry: e})
			if !errors.Is(err, keygate.ErrInvalidExpiry) || !errors.Is(err, keygate.ErrInvalidRequest) {
				t.Fatalf("expiry 9999-12-31: got %v, want ErrInvalidExpiry", err)
			}
			page, err := m.List(ctx, keygate.System(), keygate.ListRequest{})
			if err != nil || len(page.Keys) != 0 {
				t.Fatalf("a refused key was stored: %v, %v", page, err)
			}
			c, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "last", Role: "admin", Expiry: keygate.ExpireAt(keygate.MaxExpiry)})
			if err != nil {
				t.Fatalf("expiry at MaxExpiry: %v", err)
			}
			k, err := m.Verify(ctx, c.Token.Reveal())
			if err != nil || !k.ExpiresAt.Equal(keygate.MaxExpiry) {
				t.Fatalf("Verify: %v, expires %v", err, k)
			}
			if _, err := m.Get(ctx, keygate.System(), c.Key.ID); err != nil {
				t.Errorf("Get: %v", err)
			}
			if page, err := m.List(ctx, keygate.System(), keygate.ListRequest{}); err != nil || len(page.Keys) != 1 {
				t.Errorf("List: %v, %v", page, err)
			}
			late := keygate.ExpireAt(keygate.MaxExpiry.Add(time.Second))
			if _, err := m.Regenerate(ctx, keygate.System(), c.Key.ID, keygate.RegenerateRequest{Expiry: late}); !errors.Is(err, keygate.ErrInvalidExpiry) {
				t.Errorf("regenerate past MaxExpiry: got %v, want ErrInvalidExpiry", err)
			}
			if _, err := m.Update(ctx, keygate.System(), c.Key.ID, keygate.UpdateRequest{Expiry: &late}); !errors.Is(err, keygate.ErrInvalidExpiry) {
				t.Errorf("update past MaxExpiry: got %v, want ErrInvalidExpiry", err)
			}
			if err := m.Delete(ctx, keygate.System(), c.Key.ID); err != nil {
				t.Errorf("Delete: %v", err)
			}
		})
	}
}

// TestNumericBounds: every number a key holds is bounded at the edge.
func TestNumericBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := memoryManager(t)
	for name, l := range map[string]keygate.Limits{
		"too many requests":         {Rate: keygate.RateLimit{Requests: keygate.MaxRateRequests + 1, Window: time.Hour}},
		"window too long":           {Rate: keygate.RateLimit{Requests: 1, Window: keygate.MaxRateWindow + time.Second}},
		"sub-nanosecond interval":   {Rate: keygate.RateLimit{Requests: 1000, Window: time.Microsecond / 2}},
		"negative requests":         {Rate: keygate.RateLimit{Requests: -1, Window: time.Second}},
		"requests without a window": {Rate: keygate.RateLimit{Requests: 5}},
	} {
		_, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: name, Role: "admin", Expiry: keygate.NeverExpire(), Limits: l})
		if !errors.Is(err, keygate.ErrInvalidField) {
			t.Errorf("%s: got %v, want ErrInvalidField", name, err)
		}
	}
	c, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "k", Role: "admin", Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	for _, grace := range []time.Duration{-time.Second, keygate.MaxGracePeriod + time.Second} {
		_, err := m.Regenerate(ctx, keygate.System(), c.Key.ID, keygate.RegenerateRequest{Expiry: keygate.NeverExpire(), GracePeriod: grace})
		if !errors.Is(err, keygate.ErrInvalidField) {
			t.Errorf("grace period %v: got %v, want ErrInvalidField", grace, err)
		}
	}
}

// memoryManager returns a Manager over a memory store.
func memoryManager(t *testing.T) *keygate.Manager {
	t.Helper()
	return managerOn(t, engines(t)["memory"](t))
}

// TestTextFieldsValidatedAtTheEdge (finding 8): control characters in any
// text field are refused with ErrInvalidField before the store sees them,
// on every engine, never stored (SQLite) nor answered as an outage
// (PostgreSQL refuses NUL in text).
func TestTextFieldsValidatedAtTheEdge(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m := managerOn(t, open(t))
			base := func() keygate.CreateRequest {
				return keygate.CreateRequest{Name: "k", Role: "admin", Expiry: keygate.NeverExpire()}
			}
			for what, edit := range map[string]func(*keygate.CreateRequest){
				"NUL in description":       func(r *keygate.CreateRequest) { r.Description = "a\x00b" },
				"escape in description":    func(r *keygate.CreateRequest) { r.Description = "a\x1b[31mred" },
				"bad UTF-8 in description": func(r *keygate.CreateRequest) { r.Description = "a\xffb" },
				"NUL in metadata value":    func(r *keygate.CreateRequest) { r.Metadata = map[string]string{"team": "x\x00"} },
				"NUL in metadata key":      func(r *keygate.CreateRequest) { r.Metadata = map[string]string{"te\x00am": "x"} },
				"spaced metadata key":      func(r *keygate.CreateRequest) { r.Metadata = map[string]string{" team": "x"} },
				"NUL in name":              func(r *keygate.CreateRequest) { r.Name = "k\x00" },
				"NUL in owner":             func(r *keygate.CreateRequest) { r.Owner = "\x00" },
				"NUL in workspace":         func(r *keygate.CreateRequest) { r.Workspace, r.Role = "w\x00", "viewer" },
			} {
				req := base()
				edit(&req)
				if _, err := m.Create(ctx, keygate.System(), req); !errors.Is(err, keygate.ErrInvalidField) {
					t.Errorf("%s: got %v, want ErrInvalidField", what, err)
				}
			}
			if page, err := m.List(ctx, keygate.System(), keygate.ListRequest{}); err != nil || len(page.Keys) != 0 {
				t.Fatalf("a refused key was stored: %v, %v", page, err)
			}
			c, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "ok", Role: "admin", Expiry: keygate.NeverExpire(),
				Description: "line one\nline two\tand a tab", Metadata: map[string]string{"note": "résumé ✓"}})
			if err != nil {
				t.Fatalf("tabs, newlines and Unicode: %v", err)
			}
			bad := "x\x00"
			if _, err := m.Update(ctx, keygate.System(), c.Key.ID, keygate.UpdateRequest{Description: &bad}); !errors.Is(err, keygate.ErrInvalidField) {
				t.Errorf("update with NUL: got %v, want ErrInvalidField", err)
			}
			for _, f := range []keygate.ListRequest{{Workspace: bad}, {Owner: bad}, {Owner: "\xff"}} {
				if _, err := m.List(ctx, keygate.System(), f); !errors.Is(err, keygate.ErrInvalidField) || errors.Is(err, keygate.ErrUnavailable) {
					t.Errorf("List filter %+v: got %v, want ErrInvalidField", f, err)
				}
			}
		})
	}
}

var (
	_ = strings.Contains
	_ sync.Mutex
	_ atomic.Int64
	_ = permission.MustParse
)

// TestPrintedKeysHoldNoHash (finding 10): a store.Key, a keygate.Key and a
// Created print through fmt (every verb) and log/slog (text and JSON)
// without their hashes or pepper ids.
func TestPrintedKeysHoldNoHash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := managerOn(t, engines(t)["memory"](t))
	c, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "k", Role: "admin", Expiry: keygate.NeverExpire()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Regenerate(ctx, keygate.System(), c.Key.ID, keygate.RegenerateRequest{Expiry: keygate.NeverExpire(), GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Verify(ctx, r.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	rec := r.Key
	if len(rec.Hash) == 0 || len(rec.PrevHash) == 0 || rec.PepperID == "" {
		t.Fatal("the test key lacks a hash, previous hash or pepper id")
	}
	secrets := map[string]string{
		"hash (hex)":         fmt.Sprintf("%x", rec.Hash),
		"hash (base64)":      base64.StdEncoding.EncodeToString(rec.Hash),
		"hash (bytes)":       fmt.Sprint([]byte(rec.Hash)),
		"prev hash (hex)":    fmt.Sprintf("%x", rec.PrevHash),
		"prev hash (base64)": base64.StdEncoding.EncodeToString(rec.PrevHash),
		"pepper id":          `"` + rec.PepperID + `"`,
		"token":              r.Token.Reveal(),
		"old token":          c.Token.Reveal(),
	}
	var out strings.Builder
	for _, v := range []any{*rec, rec, *k, k, *r, r} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		fmt.Fprintln(&out, v)
		for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
			slog.New(h).Info("key", "value", v)
		}
	}
	text := out.String()
	for what, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("printed keys show the %s", what)
		}
	}
	for _, want := range []string{rec.ID.String(), "[REDACTED]", rec.Hint} {
		if !strings.Contains(text, want) {
			t.Errorf("printed keys lack %q", want)
		}
	}
}

// TestUsageLimitedKeyCannotRefill (finding 1): the bound a usage-limited
// key puts on the keys it creates is what it has left after the request
// that creates them, on every engine; the verified key says so too.
func TestUsageLimitedKeyCannotRefill(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m := managerOn(t, open(t))
			five := int64(5)
			parent, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: "parent", Scopes: []string{"apikey:manage", "apikey:view", "cluster:read"},
				Expiry: keygate.NeverExpire(), Limits: keygate.Limits{Uses: &five}})
			if err != nil {
				t.Fatal(err)
			}
			child := func(by keygate.Principal, uses int64) error {
				_, err := m.Create(ctx, by, keygate.CreateRequest{Name: "child-" + fmt.Sprint(time.Now().UnixNano()), Scopes: []string{"cluster:read"},
					Expiry: keygate.NeverExpire(), Limits: keygate.Limits{Uses: &uses}})
				return err
			}
			for use := int64(1); use <= 5; use++ {
				k, err := m.Verify(ctx, parent.Token.Reveal())
				if err != nil {
					t.Fatalf("use %d: %v", use, err)
				}
				left := 5 - use
				if k.RemainingUses == nil || *k.RemainingUses != left || *k.Principal().Limits.Uses != left {
					t.Fatalf("use %d: the verified key says %v uses left, want %d", use, k.RemainingUses, left)
				}
				var d *keygate.DeniedError
				if err := child(k.Principal(), left+1); !errors.As(err, &d) || d.Reason != keygate.DeniedLimit || d.Limit != keygate.LimitUses {
					t.Errorf("use %d: a child with %d uses (1 more than left): got %v, want a DeniedError on uses", use, left+1, err)
				}
				if left > 0 {
					if err := child(k.Principal(), left); err != nil {
						t.Errorf("use %d: a child with the %d uses left: %v", use, left, err)
					}
				}
			}
			if _, err := m.Verify(ctx, parent.Token.Reveal()); !errors.Is(err, keygate.ErrUsageExhausted) {
				t.Errorf("sixth use: got %v, want ErrUsageExhausted", err)
			}
		})
	}
}

// TestRevocationWinsOverTraffic (finding 3): revoking a key that is being
// used as fast as the engine allows (each use adds one to its version)
// succeeds at the first call, on every engine; after Revoke returns no
// verification on this instance succeeds.
func TestRevocationWinsOverTraffic(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m := managerOn(t, open(t))
			many := int64(1_000_000)
			for round := range 5 {
				c, err := m.Create(ctx, keygate.System(), keygate.CreateRequest{Name: fmt.Sprint("abused-", round), Scopes: []string{"cluster:read"},
					Expiry: keygate.NeverExpire(), Limits: keygate.Limits{Uses: &many}})
				if err != nil {
					t.Fatal(err)
				}
				var revoked, acceptedAfter, uses atomic.Int64
				var wg sync.WaitGroup
				stop := make(chan struct{})
				for range 4 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							after := revoked.Load() == 1
							if _, err := m.Verify(ctx, c.Token.Reveal()); err == nil {
								uses.Add(1)
								if after {
									acceptedAfter.Add(1)
								}
							}
						}
					})
				}
				for uses.Load() < 20 {
					time.Sleep(time.Millisecond)
				}
				_, err = m.Revoke(ctx, keygate.System(), c.Key.ID)
				revoked.Store(1)
				time.Sleep(20 * time.Millisecond)
				close(stop)
				wg.Wait()
				if err != nil {
					t.Fatalf("round %d: Revoke under traffic: %v", round, err)
				}
				if n := acceptedAfter.Load(); n > 0 {
					t.Errorf("round %d: %d verifications succeeded after Revoke returned", round, n)
				}
			}
		})
	}
}

package keygate

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// benchKey returns a manager and a token for a workspace editor key.
func benchKey(b *testing.B, edit ...func(*Config)) (*Manager, string) {
	b.Helper()
	f := newFixture(b, edit...)
	c := f.create(b, CreateRequest{Workspace: "tiger", Role: "editor", Scopes: []string{"billing:write", "app/payments:deploy"}})
	return f.m, c.Token.Reveal()
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		m, tok := benchKey(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		m, tok := benchKey(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Verify(ctx, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("uncached-memory-store", func(b *testing.B) {
		m, tok := benchKey(b, func(c *Config) { c.CacheTTL = -1 })
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("malformed", func(b *testing.B) {
		m, tok := benchKey(b, func(c *Config) { c.Auditor = nopAuditor{} })
		bad := otherLast(tok)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Verify(ctx, bad); err == nil {
				b.Fatal("malformed token verified")
			}
		}
	})
}

type nopAuditor struct{}

func (nopAuditor) Audit(context.Context, Event) {}

func BenchmarkVerifyAuthorize(b *testing.B) {
	ctx := context.Background()
	p := mustPerm(b, "cluster:read")
	b.Run("cached", func(b *testing.B) {
		m, tok := benchKey(b)
		b.ReportAllocs()
		for b.Loop() {
			k, err := m.Verify(ctx, tok)
			if err != nil || m.Authorize(k, p, "tiger") != nil {
				b.Fatal("denied")
			}
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		m, tok := benchKey(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k, err := m.Verify(ctx, tok)
				if err != nil || m.Authorize(k, p, "tiger") != nil {
					b.Error("denied")
					return
				}
			}
		})
	})
}

func BenchmarkAuthorize(b *testing.B) {
	m, tok := benchKey(b)
	k, err := m.Verify(context.Background(), tok)
	if err != nil {
		b.Fatal(err)
	}
	p := mustPerm(b, "app/payments:deploy")
	b.ReportAllocs()
	for b.Loop() {
		if m.Authorize(k, p, "tiger") != nil {
			b.Fatal("denied")
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.Auditor = nopAuditor{} })
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := f.m.Create(ctx, System(), CreateRequest{Name: "k" + strconv.Itoa(i), Role: "admin", Expiry: NeverExpire()}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUsage is BenchmarkVerifyAuthorize's cached verification
// with usage counting on (the default) and off (Config.UsageInterval
// negative), serial and parallel.
func BenchmarkVerifyUsage(b *testing.B) {
	ctx := context.Background()
	p := mustPerm(b, "cluster:read")
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"on", 0}, {"off", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			m, tok := benchKey(b, func(c *Config) { c.UsageInterval = tc.interval })
			b.ReportAllocs()
			for b.Loop() {
				k, err := m.Verify(ctx, tok)
				if err != nil || m.Authorize(k, p, "tiger") != nil {
					b.Fatal("denied")
				}
			}
		})
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			m, tok := benchKey(b, func(c *Config) { c.UsageInterval = tc.interval })
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k, err := m.Verify(ctx, tok)
					if err != nil || m.Authorize(k, p, "tiger") != nil {
						b.Error("denied")
						return
					}
				}
			})
		})
	}
}

// BenchmarkVerifyMetered is BenchmarkVerifyAuthorize's cached verification
// of a key with one always-on rate limit of 1e9 a second (never refusing),
// held in turn as the key's own "default" limit, as one of its named
// limits, and as its identity's, counted in this process: what a rate
// limit costs, and that an identity's costs no more than the key's own;
// then of a key whose identity has credits, spent in the memory store.
func BenchmarkVerifyMetered(b *testing.B) {
	ctx := context.Background()
	p := mustPerm(b, "cluster:read")
	wide := RateLimit{Requests: 1_000_000_000, Window: time.Second}
	named := wide
	named.Name = "requests"
	for _, tc := range []struct {
		name  string
		limit func(f *fixture, req *CreateRequest)
	}{
		{"own-default", func(_ *fixture, req *CreateRequest) { req.Limits.Rate = wide }},
		{"own-named", func(_ *fixture, req *CreateRequest) { req.Limits.RateLimits = []RateLimit{named} }},
		{"identity", func(f *fixture, req *CreateRequest) {
			req.IdentityID = f.identity(b, CreateIdentityRequest{Workspace: req.Workspace, Limits: IdentityLimits{RateLimits: []RateLimit{named}}}).ID
		}},
		// A balance is spent in the store: here the memory store's lock.
		{"identity-credits", func(f *fixture, req *CreateRequest) {
			req.IdentityID = f.identity(b, CreateIdentityRequest{Workspace: req.Workspace, Limits: IdentityLimits{Credits: &Credits{Remaining: MaxCredits}}}).ID
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b)
			req := CreateRequest{Workspace: "tiger", Role: "editor", Scopes: []string{"billing:write", "app/payments:deploy"}}
			tc.limit(f, &req)
			tok := f.create(b, req).Token.Reveal()
			b.ReportAllocs()
			for b.Loop() {
				k, err := f.m.Verify(ctx, tok)
				if err != nil || f.m.Authorize(k, p, "tiger") != nil {
					b.Fatal("denied", err)
				}
			}
		})
	}
}

// BenchmarkVerifyWithReport is VerifyWith of a key with a named rate
// limit, asking for a report (what a middleware that sets RateLimit
// headers does), next to Verify of the same key.
func BenchmarkVerifyWithReport(b *testing.B) {
	ctx := context.Background()
	f := newFixture(b)
	tok := f.create(b, CreateRequest{Limits: Limits{RateLimits: []RateLimit{{Name: "requests", Requests: 1_000_000_000, Window: time.Second}}}}).Token.Reveal()
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.m.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("VerifyWith", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, rep, err := f.m.VerifyWith(ctx, tok, VerifyOptions{Cost: 3}); err != nil || len(rep.Limits) != 1 {
				b.Fatal(err)
			}
		}
	})
}

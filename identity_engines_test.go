package keygate_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// TestIdentitiesOnEveryEngine runs identities through the Manager on each
// storage engine: created, listed, changed with the balance kept, keys put
// in one and moved out, and refused deletion while keys are in it.
func TestIdentitiesOnEveryEngine(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m, err := keygate.New(keygate.Config{Store: open(t), Hasher: hasher(t, "p1"), Auditor: nopAuditor{}, LastUsedInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close(ctx) })
			sys := keygate.System()
			id, err := m.CreateIdentity(ctx, sys, keygate.CreateIdentityRequest{ExternalID: "acme", Workspace: "tiger",
				Metadata: map[string]string{"plan": "pro"},
				Limits: keygate.IdentityLimits{
					RateLimits: []keygate.RateLimit{{Name: "requests", Requests: 100, Window: time.Second},
						{Name: "tokens", Requests: 9000, Window: time.Hour, OnDemand: true}},
					Credits: &keygate.Credits{Remaining: 250, Refill: &keygate.Refill{Amount: 1000, Every: store.PeriodMonth, Day: 31}},
				}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.CreateIdentity(ctx, sys, keygate.CreateIdentityRequest{ExternalID: "acme", Workspace: "tiger"}); !errors.Is(err, keygate.ErrDuplicateExternalID) {
				t.Errorf("a second acme: %v, want ErrDuplicateExternalID", err)
			}
			page, err := m.ListIdentities(ctx, sys, keygate.IdentityListRequest{Workspace: "tiger", ExternalID: "acme"})
			if err != nil || len(page.Identities) != 1 || page.Identities[0].ID != id.ID || len(page.Identities[0].RateLimits) != 2 ||
				page.Identities[0].Credits == nil || page.Identities[0].Credits.Refill.Day != 31 {
				t.Fatalf("ListIdentities: %+v, %v", page, err)
			}

			// A refill changed without the balance keeps the balance as
			// stored; setting it writes it.
			up, err := m.UpdateIdentity(ctx, sys, id.ID, keygate.UpdateIdentityRequest{Credits: &keygate.CreditsUpdate{
				Refill: &keygate.Refill{Amount: 10, Every: store.PeriodDay}}})
			if err != nil || up.Credits.Remaining != 250 || up.Credits.Refill.Every != store.PeriodDay || up.Version != 2 {
				t.Fatalf("change the refill: %+v, %v", up, err)
			}
			up, err = m.UpdateIdentity(ctx, sys, id.ID, keygate.UpdateIdentityRequest{Version: 2, Credits: &keygate.CreditsUpdate{Remaining: ptr(int64(9))}})
			if err != nil || up.Credits.Remaining != 9 || up.Version != 3 {
				t.Fatalf("set the balance: %+v, %v", up, err)
			}
			if got, err := m.GetIdentity(ctx, sys, id.ID); err != nil || got.Credits.Remaining != 9 || got.Credits.Refill.Amount != 10 {
				t.Fatalf("GetIdentity: %+v, %v", got, err)
			}

			// Keys in it.
			k, err := m.Create(ctx, sys, keygate.CreateRequest{Name: "a", Workspace: "tiger", Role: "viewer", Expiry: keygate.NeverExpire(), IdentityID: id.ID})
			if err != nil || k.Key.IdentityID != id.ID {
				t.Fatalf("Create in the identity: %+v, %v", k, err)
			}
			if v, err := m.Verify(ctx, k.Token.Reveal()); err != nil || v.IdentityID != id.ID {
				t.Fatalf("Verify: %+v, %v; want the key of the identity", v, err)
			}
			if err := m.DeleteIdentity(ctx, sys, id.ID); !errors.Is(err, keygate.ErrIdentityInUse) {
				t.Errorf("delete in use: %v, want ErrIdentityInUse", err)
			}
			keys, err := m.List(ctx, sys, keygate.ListRequest{IdentityID: id.ID})
			if err != nil || len(keys.Keys) != 1 {
				t.Errorf("the identity's keys: %+v, %v", keys, err)
			}
			none := uuid.Nil
			if rec, err := m.Update(ctx, sys, k.Key.ID, keygate.UpdateRequest{IdentityID: &none}); err != nil || rec.IdentityID != uuid.Nil {
				t.Fatalf("out of the identity: %+v, %v", rec, err)
			}
			if err := m.DeleteIdentity(ctx, sys, id.ID); err != nil {
				t.Errorf("delete: %v", err)
			}
			if _, err := m.GetIdentity(ctx, sys, id.ID); !errors.Is(err, keygate.ErrIdentityNotFound) {
				t.Errorf("after delete: %v, want ErrIdentityNotFound", err)
			}
		})
	}
}

// TestIdentityDeletionRacesKeyCreation: deleting an identity while keys
// are created in it, through the Manager on each engine, never leaves a
// key in an identity that is gone.
func TestIdentityDeletionRacesKeyCreation(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m, err := keygate.New(keygate.Config{Store: open(t), Hasher: hasher(t, "p1"), Auditor: nopAuditor{}, LastUsedInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close(ctx) })
			sys := keygate.System()
			for round := range 4 {
				id, err := m.CreateIdentity(ctx, sys, keygate.CreateIdentityRequest{ExternalID: fmt.Sprint("acme-", round), Workspace: "tiger"})
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				start := make(chan struct{})
				var deleteErr error
				wg.Go(func() {
					<-start
					deleteErr = m.DeleteIdentity(ctx, sys, id.ID)
				})
				for i := range 6 {
					wg.Go(func() {
						<-start
						_, err := m.Create(ctx, sys, keygate.CreateRequest{Name: fmt.Sprintf("k-%d-%d", round, i), Workspace: "tiger",
							Role: "viewer", Expiry: keygate.NeverExpire(), IdentityID: id.ID})
						if err != nil && !errors.Is(err, keygate.ErrUnknownIdentity) {
							t.Errorf("Create: %v", err)
						}
					})
				}
				close(start)
				wg.Wait()
				if deleteErr != nil && !errors.Is(deleteErr, keygate.ErrIdentityInUse) {
					t.Fatalf("DeleteIdentity: %v", deleteErr)
				}
				keys, err := m.List(ctx, sys, keygate.ListRequest{IdentityID: id.ID, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				if deleteErr == nil && len(keys.Keys) > 0 {
					t.Fatalf("round %d: the identity was deleted, yet %d keys are in it", round, len(keys.Keys))
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

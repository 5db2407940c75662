// Package storetest is the conformance suite for implementations of
// [store.Store]. Every backend in this module runs it, and so should a
// user's own: passing it is what "implements the contract" means.
//
// # Running it
//
// Call [Run] from a test with a function that returns a new, empty store.
// It gets the subtest's t, so it can skip when a database is unavailable
// and drop what it made with t.Cleanup:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			db := openTestDatabase(t) // a fresh schema or database per call
//			t.Cleanup(func() { db.Close() })
//			return mystore.New(db)
//		})
//	}
//
// Run it with the race detector (go test -race); one subtest can be
// selected by name, for example go test -run 'TestConformance/List/Paging'.
//
// # What it checks
//
// Each method of [store.Store] and each error of its contract: that every
// field of a [store.Key] round-trips, uniqueness of id, hash and
// (workspace, name), version checks on Update, GetByHash by the current
// and previous hash, List filters and cursor paging, TouchLastUsed moving
// only forward, ConsumeUse counting down to [store.ErrUsageExhausted];
// that keys handed in and out are copies; that a cancelled context makes
// every method fail with an error wrapping [context.Canceled]; and, with
// a few goroutines each, that paging during inserts skips and repeats
// nothing, concurrent updates lose no write, concurrent ConsumeUse never
// over-spends, and concurrent creates of one name let exactly one win.
// The optional capabilities ([store.Revoker], [store.ExerciseRecorder],
// [store.Retirer], [store.UsageRecorder], [store.IdentityStore]) are
// checked when the store implements them, and skipped otherwise: for
// usage, that counts add up (within a call, across calls, from concurrent
// writers), that ranges are From-inclusive and To-exclusive, that a purge
// removes exactly the hours before it, and that deleting a key removes its
// counts and no others; for an IdentityStore, keys naming identities
// ([store.Key.IdentityID] round-trips, a key naming no stored identity is
// refused, List filters by identity), the credit balance an update keeps,
// and, with goroutines racing, that no key ever names a deleted identity;
// for a [store.UseSpender] and a [store.CreditSpender], spending a cost,
// a balance that cannot pay left as it was and returned, refills at
// daily and monthly boundaries on a fake clock (months of 28 to 31 days,
// a long idle gap refilled once, a schedule changed by an update), the
// version moving for keys and not for identities, and goroutines racing
// across a boundary refilling once ([RaceSpends]).
//
// # What a backend may differ in
//
// The suite tests the contract, not one implementation. Times are built
// at microsecond precision in UTC and compared with [time.Time.Equal], so
// a backend may keep microseconds and return another location; zero times
// must come back zero. Nil and empty Scopes, Metadata, AllowedCIDRs and
// PrevHash compare equal. Errors are checked with [errors.Is] only, never
// by message.
//
// Two points are stricter than a loose reading of the contract: List must
// return a zero [store.Page.Next] on the page that holds the last matching
// key (fetch one row more than the limit to know), and a non-zero Next
// must be the id of the page's last key.
//
// # Cost
//
// Subtests run one at a time, each on a store of its own. The largest
// creates [store.MaxListLimit]+1 keys (with 4 goroutines) to check the
// limit clamp; the concurrency subtests use 8 goroutines, or 40 short
// ConsumeUse calls.
package storetest

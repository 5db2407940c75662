package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// managementScopes are keygate's own permissions, the switches of the
// forms' "Key management" section.
var managementScopes = []struct{ Scope, Label, Hint string }{
	{keygate.PermissionViewKeys, "View tokens", "sign in to this console and see tokens"},
	{keygate.PermissionManageKeys, "Manage tokens", "add, edit, regenerate, revoke and delete tokens"},
	{keygate.PermissionVerifyKeys, "Verify tokens", "check other callers' tokens, for a service"},
}

// expiryChoices are the expiry select's options, as the seeds offer them.
var expiryChoices = []option{
	{Value: "7d", Label: "7 days"},
	{Value: "30d", Label: "30 days"},
	{Value: "60d", Label: "60 days"},
	{Value: "90d", Label: "90 days"},
	{Value: "custom", Label: "Custom date"},
	{Value: "never", Label: "No expiration"},
}

// windowChoices are the rate limit's windows.
var windowChoices = []option{
	{Value: "second", Label: "per second"},
	{Value: "minute", Label: "per minute"},
	{Value: "hour", Label: "per hour"},
	{Value: "day", Label: "per day"},
}

var windows = map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}

// graceChoices are the regenerate form's grace periods.
var graceChoices = []option{
	{Value: "0", Label: "None: the old token stops now"},
	{Value: "1h", Label: "1 hour"},
	{Value: "24h", Label: "24 hours"},
	{Value: "168h", Label: "7 days"},
}

// option is one option of a select.
type option struct {
	Value, Label string
	Selected     bool
}

// options returns choices with the one of value selected.
func options(choices []option, value string) []option {
	out := slices.Clone(choices)
	for i := range out {
		out[i].Selected = out[i].Value == value
	}
	return out
}

// keyForm is the add and edit forms' fields, as typed.
type keyForm struct {
	Name, Description, Owner, Workspace, Role string
	// Expiry is a choice of expiryChoices; ExpiryDate the custom date.
	Expiry, ExpiryDate string
	// Scopes are the switches on.
	Scopes map[string]bool
	// RateRequests, RateWindow, Uses and CIDRs are the limits.
	RateRequests, RateWindow, Uses, CIDRs string
	// Rates are the key's named rate limits besides its own (RateRequests
	// per RateWindow), as typed.
	Rates []rateRow
	// RefillAmount, RefillEvery and RefillDay are the refill of the uses.
	RefillAmount, RefillEvery, RefillDay string
	// OrigUses is the uses left when the edit form was shown: uses go
	// down as the key is used, so only a change typed by the person is
	// sent.
	OrigUses string
	// Fingerprint is of the key as the edit form showed it, to tell
	// whether someone changed it since.
	Fingerprint string
	// Nonce makes the add form usable once.
	Nonce string
	// Identity is the id of the identity the key belongs to, "" for none.
	Identity string
}

// formFromKey fills the edit form from a stored key.
func formFromKey(rec *store.Key) *keyForm {
	f := &keyForm{
		Name: rec.Name, Description: rec.Description, Owner: rec.Owner, Workspace: rec.Workspace, Role: rec.Role,
		Scopes: map[string]bool{}, RateWindow: "minute", Fingerprint: fingerprint(rec),
	}
	if rec.IdentityID != uuid.Nil {
		f.Identity = rec.IdentityID.String()
	}
	for _, s := range rec.Scopes {
		f.Scopes[s] = true
	}
	if rec.RateLimit > 0 {
		f.RateRequests = strconv.Itoa(rec.RateLimit)
		for name, d := range windows {
			if d == rec.RateWindow {
				f.RateWindow = name
			}
		}
	}
	f.Rates = rateRowsOf(rec.RateLimits)
	if rec.RemainingUses != nil {
		f.Uses = strconv.FormatInt(*rec.RemainingUses, 10)
	}
	f.OrigUses = f.Uses
	f.RefillAmount, f.RefillEvery, f.RefillDay = refillFields(rec.Refill)
	var cidrs []string
	for _, p := range rec.AllowedCIDRs {
		cidrs = append(cidrs, p.String())
	}
	f.CIDRs = strings.Join(cidrs, "\n")
	return f
}

// fingerprint digests what the edit form shows of rec, but the uses
// left, which change as the key is used (and refill).
func fingerprint(rec *store.Key) string {
	h := sha256.New()
	scopes := slices.Sorted(slices.Values(rec.Scopes))
	fmt.Fprintf(h, "%q %q %q %q %q %d %d %v %s", rec.Name, rec.Description, rec.Owner, rec.Role, scopes,
		rec.RateLimit, rec.RateWindow, rec.AllowedCIDRs, rec.IdentityID)
	if len(rec.RateLimits) > 0 || rec.Refill != nil {
		// Written only when set, so that keys without them keep the
		// fingerprint earlier versions gave them.
		fmt.Fprintf(h, " %v %v", rec.RateLimits, refillText(rec.Refill))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// readKeyForm reads the add or edit form. allowed reports whether a
// switch may be on: one of the console's, or (on the edit page) a scope
// the key already holds.
func readKeyForm(v url.Values, allowed func(scope string) bool) (*keyForm, error) {
	f := &keyForm{
		Name:         strings.TrimSpace(v.Get("name")),
		Description:  strings.TrimSpace(v.Get("description")),
		Owner:        strings.TrimSpace(v.Get("owner")),
		Workspace:    strings.TrimSpace(v.Get("workspace")),
		Role:         v.Get("role"),
		Expiry:       v.Get("expiry"),
		ExpiryDate:   strings.TrimSpace(v.Get("expiry_date")),
		Scopes:       map[string]bool{},
		RateRequests: strings.TrimSpace(v.Get("rate_requests")),
		RateWindow:   v.Get("rate_window"),
		Uses:         strings.TrimSpace(v.Get("uses")),
		OrigUses:     v.Get("orig_uses"),
		CIDRs:        strings.TrimSpace(v.Get("cidrs")),
		Fingerprint:  v.Get("fingerprint"),
		Nonce:        v.Get("nonce"),
		Identity:     strings.TrimSpace(v.Get("identity")),
		Rates:        readRateRows(v, "named_"),
		RefillAmount: strings.TrimSpace(v.Get("refill_amount")),
		RefillEvery:  v.Get("refill_every"),
		RefillDay:    strings.TrimSpace(v.Get("refill_day")),
	}
	var unknown string
	bad := false
	for _, s := range v["scope"] {
		if !allowed(s) && !bad {
			unknown, bad = s, true
		}
		f.Scopes[s] = true
	}
	if bad {
		return f, &formError{"permissions", fmt.Sprintf("%q is not a permission this console offers.", unknown)}
	}
	return f, nil
}

// scopes returns the switches on, sorted.
func (f *keyForm) scopes() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for s, on := range f.Scopes {
			if on && !yield(s) {
				return
			}
		}
	})
}

// expiry reads the expiry choice and the custom date.
func readExpiry(choice, date string) (keygate.Expiry, error) {
	if choice == "custom" {
		if date == "" {
			return keygate.Expiry{}, &formError{"expiry", "Pick the custom date, or another expiry."}
		}
		if _, err := time.Parse(time.DateOnly, date); err != nil {
			return keygate.Expiry{}, &formError{"expiry", "Enter the custom date as year-month-day, such as 2026-12-31."}
		}
		// The key works through that whole day, in UTC.
		return keygate.ParseExpiry(date)
	}
	if date != "" {
		return keygate.Expiry{}, &formError{"expiry", `A custom date was entered, but the expiry chosen is not "Custom date": choose it, or clear the date.`}
	}
	if !slices.ContainsFunc(expiryChoices, func(o option) bool { return o.Value == choice }) {
		return keygate.Expiry{}, &formError{"expiry", "Choose an expiry."}
	}
	return keygate.ParseExpiry(choice)
}

// readGrace reads the regenerate form's grace period.
func readGrace(s string) (time.Duration, error) {
	if !slices.ContainsFunc(graceChoices, func(o option) bool { return o.Value == s }) {
		return 0, &formError{"grace", "Choose a grace period."}
	}
	d, _ := time.ParseDuration(s)
	return d, nil
}

// maxCount bounds the numbers of the limits.
const maxCount = 1_000_000_000

// limits reads the form's limits.
func (f *keyForm) limits() (keygate.Limits, error) {
	var l keygate.Limits
	if f.RateRequests != "" && f.RateRequests != "0" {
		n, err := strconv.Atoi(f.RateRequests)
		if err != nil || n < 0 || n > maxCount {
			return l, &formError{"limits", "The rate limit must be a whole number of requests."}
		}
		w, ok := windows[f.RateWindow]
		if !ok {
			return l, &formError{"limits", "Choose the rate limit's period."}
		}
		l.Rate = keygate.RateLimit{Requests: n, Window: w}
	}
	if f.Uses != "" {
		n, err := strconv.ParseInt(f.Uses, 10, 64)
		if err != nil || n < 0 || n > maxCount {
			return l, &formError{"limits", "The usage limit must be a whole number of uses, or empty for no limit."}
		}
		l.Uses = &n
	}
	rls, err := parseRateRows(f.Rates)
	if err != nil {
		return l, err
	}
	if len(rls) > 0 {
		l.RateLimits = rls
	}
	if l.Refill, err = parseRefill(f.RefillAmount, f.RefillEvery, f.RefillDay, "limits", "uses"); err != nil {
		return l, err
	}
	if l.Refill != nil && l.Uses == nil {
		return l, &formError{"limits", "A refill needs uses to start from: enter the uses left."}
	}
	for _, s := range strings.FieldsFunc(f.CIDRs, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return l, &formError{"limits", fmt.Sprintf("%q is not an IP address or a network such as 10.0.0.0/8.", s)}
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		l.AllowedCIDRs = append(l.AllowedCIDRs, p)
	}
	if len(l.AllowedCIDRs) > keygate.MaxAllowedCIDRs {
		return l, &formError{"limits", fmt.Sprintf("The IP allow-list holds at most %d networks.", keygate.MaxAllowedCIDRs)}
	}
	return l, nil
}

// createRequest builds the Manager's request from the add form.
func (f *keyForm) createRequest() (keygate.CreateRequest, error) {
	req := keygate.CreateRequest{Name: f.Name, Description: f.Description, Owner: f.Owner, Workspace: f.Workspace,
		Role: f.Role, Scopes: f.scopes()}
	var err error
	if req.Expiry, err = readExpiry(f.Expiry, f.ExpiryDate); err != nil {
		return req, err
	}
	if req.Limits, err = f.limits(); err != nil {
		return req, err
	}
	if req.IdentityID, err = f.identity(); err != nil {
		return req, err
	}
	return req, nil
}

// identity reads the identity chosen: the zero UUID for none.
func (f *keyForm) identity() (uuid.UUID, error) {
	if f.Identity == "" {
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(f.Identity)
	if err != nil || len(f.Identity) != 36 {
		return uuid.Nil, &formError{"identity", "Enter the identity’s id, as its page shows it, or leave it empty for none."}
	}
	return id, nil
}

// updateRequest builds the Manager's request from the edit form: only
// what differs from rec, so that a principal allowed to change one thing
// (a name) is not refused for another it did not touch.
func (f *keyForm) updateRequest(rec *store.Key) (keygate.UpdateRequest, bool, error) {
	var req keygate.UpdateRequest
	changed := false
	if f.Name != rec.Name {
		req.Name, changed = &f.Name, true
	}
	if f.Description != rec.Description {
		req.Description, changed = &f.Description, true
	}
	scopes := f.scopes()
	if f.Role != rec.Role || !slices.Equal(scopes, slices.Sorted(slices.Values(rec.Scopes))) {
		req.Role, req.Scopes, changed = &f.Role, &scopes, true
	}
	l, err := f.limits()
	if err != nil {
		return req, false, err
	}
	if l.Rate.Requests != rec.RateLimit || (l.Rate.Requests > 0 && l.Rate.Window != rec.RateWindow) {
		req.Rate, changed = &l.Rate, true
	}
	if !slices.Equal(l.RateLimits, rec.RateLimits) {
		rls := l.RateLimits
		if rls == nil {
			rls = []keygate.RateLimit{}
		}
		req.RateLimits, changed = &rls, true
	}
	if f.Uses != f.OrigUses {
		uses := int64(-1) // no limit
		if l.Uses != nil {
			uses = *l.Uses
		}
		req.Uses, changed = &uses, true
	}
	if (l.Refill == nil) != (rec.Refill == nil) || l.Refill != nil && *l.Refill != *rec.Refill {
		r := keygate.Refill{} // removes it
		if l.Refill != nil {
			r = *l.Refill
		}
		if !(r == keygate.Refill{} && req.Uses != nil && *req.Uses < 0) { // removing the uses removes their refill
			req.Refill, changed = &r, true
		}
	}
	if !samePrefixes(l.AllowedCIDRs, rec.AllowedCIDRs) {
		req.AllowedCIDRs, changed = &l.AllowedCIDRs, true
	}
	id, err := f.identity()
	if err != nil {
		return req, false, err
	}
	if id != rec.IdentityID {
		req.IdentityID, changed = &id, true
	}
	return req, changed, nil
}

// samePrefixes reports whether a, masked, is b.
func samePrefixes(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Masked() != b[i] {
			return false
		}
	}
	return true
}

// parseID reads a key id from the path; a malformed one names no key.
func parseID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, keygate.ErrNotFound
	}
	return id, nil
}

package console

import (
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// The identity pages: a list, an identity's page with its tokens, and
// the add, edit and delete forms. Identities are offered only when the
// Manager's store keeps them (keygate.Manager.SupportsIdentities).

// errNoIdentities answers the identity pages of a console whose store
// keeps no identities.
var errNoIdentities = fmt.Errorf("console: %w: the key store keeps no identities", keygate.ErrUnsupported)

// routeIdentities registers the identity pages on mux, with page
// wrapping each in authentication; it returns their paths, for the
// answers to other methods.
func (c *Console) routeIdentities(page func(pattern string, h func(*request) error)) []string {
	page("GET /identities", c.listIdentities)
	page("GET /identities/new", c.newIdentity)
	page("POST /identities/new", c.createIdentity)
	page("GET /identities/{id}", c.showIdentity)
	page("GET /identities/{id}/edit", c.editIdentity)
	page("POST /identities/{id}/edit", c.updateIdentity)
	page("GET /identities/{id}/delete", c.deleteIdentityForm)
	page("POST /identities/{id}/delete", c.deleteIdentity)
	return []string{"/identities", "/identities/new", "/identities/{id}", "/identities/{id}/edit", "/identities/{id}/delete"}
}

// identityView is an identity as the pages show it.
type identityView struct {
	ID, URL, ExternalID, Workspace string
	Metadata                       []field
	Rates                          []rateView
	// Credits is the balance ("500 left"), or "" for none; Refill its
	// schedule ("" for none); CreditsSet when the balance was last set.
	Credits, Refill  string
	CreditsSet       moment
	Created, Updated moment
	Version          int64
	CanManage        bool
	// Keys are the identity's tokens, on its page; MoreKeys says there
	// are more than shown.
	Keys     []*keyView
	MoreKeys bool
}

// rateView is a named rate limit as the pages show it.
type rateView struct {
	Name, Rate string
	OnDemand   bool
}

// identityView returns rec as the pages show it to q.
func (c *Console) identityView(q *request, rec *store.Identity) *identityView {
	v := &identityView{ID: rec.ID.String(), URL: q.base + "/identities/" + rec.ID.String(), ExternalID: rec.ExternalID,
		Workspace: rec.Workspace, Created: at(rec.CreatedAt, q.now), Updated: at(rec.UpdatedAt, q.now), Version: rec.Version,
		CanManage: q.by.Allows(c.manageKeys, rec.Workspace), CreditsSet: at(time.Time{}, q.now)}
	for _, k := range slices.Sorted(maps.Keys(rec.Metadata)) {
		v.Metadata = append(v.Metadata, field{k, rec.Metadata[k]})
	}
	v.Rates = rateViews(rec.RateLimits)
	if cr := rec.Credits; cr != nil {
		v.Credits, v.CreditsSet = balanceText(cr.Remaining), at(cr.RefilledAt, q.now)
		v.Refill = refillWhen(cr.Refill, q.now)
	}
	return v
}

// rateViews returns named rate limits as the pages show them.
func rateViews(rls []store.RateLimit) []rateView {
	var out []rateView
	for _, r := range rls {
		out = append(out, rateView{Name: r.Name, Rate: fmt.Sprintf("%d per %s", r.Requests, windowName(r.Window)), OnDemand: r.OnDemand})
	}
	return out
}

// balanceText writes a balance of uses or credits as the pages show it:
// "500 left" (the Manager shows a balance whose refill is due refilled).
func balanceText(remaining int64) string {
	return strconv.FormatInt(remaining, 10) + " left"
}

// refillWhen writes a refill with its next time, a midnight UTC: "back
// to 500 every day at midnight UTC; next 7 Dec 2026, 00:00 UTC"; "" for
// none.
func refillWhen(r *store.Refill, now time.Time) string {
	if r == nil {
		return ""
	}
	return refillText(r) + "; next " + r.Next(now).Format("2 Jan 2006") + ", 00:00 UTC"
}

// refillText writes a refill as the pages show it: "back to 500 every
// month on day 31 (or the month’s last), UTC"; "" for none.
func refillText(r *store.Refill) string {
	if r == nil {
		return ""
	}
	s := fmt.Sprintf("back to %d every %s", r.Amount, r.Every)
	switch {
	case r.Every == store.PeriodMonth && r.Day > 28:
		s += fmt.Sprintf(" on day %d (or the month’s last), UTC", r.Day)
	case r.Every == store.PeriodMonth:
		s += fmt.Sprintf(" on day %d, UTC", r.Day)
	default:
		s += " at midnight UTC"
	}
	return s
}

// identityListData is the identities list's.
type identityListData struct {
	Identities            []*identityView
	Workspace, ExternalID string
	FixedWorkspace        bool
	FirstQuery, NextQuery template.URL
	Paged                 bool
	CanAdd                bool
}

// listIdentities serves GET /identities: one page of identities, filtered.
func (c *Console) listIdentities(q *request) error {
	q.subject = "identity"
	if !c.manager.SupportsIdentities() {
		return errNoIdentities
	}
	v := q.r.URL.Query()
	d := &identityListData{Workspace: strings.TrimSpace(v.Get("workspace")), ExternalID: strings.TrimSpace(v.Get("external_id")),
		CanAdd: c.canManage(&q.by)}
	if q.by.Workspace != "" && !q.by.SuperAdmin {
		d.Workspace, d.FixedWorkspace = q.by.Workspace, true
	}
	req := keygate.IdentityListRequest{Workspace: d.Workspace, ExternalID: d.ExternalID, Limit: c.pageSize}
	if s := v.Get("after"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return &formError{"after", "This page of the list does not exist: start from the first page."}
		}
		req.After, d.Paged = id, true
	}
	page, err := c.manager.ListIdentities(q.r.Context(), q.by, req)
	if err != nil {
		return err
	}
	for _, rec := range page.Identities {
		d.Identities = append(d.Identities, c.identityView(q, rec))
	}
	query := url.Values{}
	if d.Workspace != "" && !d.FixedWorkspace {
		query.Set("workspace", d.Workspace)
	}
	if d.ExternalID != "" {
		query.Set("external_id", d.ExternalID)
	}
	d.FirstQuery = template.URL(query.Encode())
	if page.Next != uuid.Nil {
		query.Set("after", page.Next.String())
		d.NextQuery = template.URL(query.Encode())
	}
	p := c.pageFor(q, "Identities", d)
	p.Section = "identities"
	c.render(q.w, q.r, http.StatusOK, "identities", p)
	return nil
}

// identity returns the identity of the request's path, for q.
func (c *Console) identity(q *request) (*store.Identity, error) {
	q.subject = "identity"
	if !c.manager.SupportsIdentities() {
		return nil, errNoIdentities
	}
	id, err := uuid.Parse(q.r.PathValue("id"))
	if err != nil || len(q.r.PathValue("id")) != 36 {
		return nil, fmt.Errorf("console: %w: %w", keygate.ErrNotFound, keygate.ErrIdentityNotFound)
	}
	return c.manager.GetIdentity(q.r.Context(), q.by, id)
}

// identityKeys is how many of an identity's tokens its page lists.
const identityKeys = 100

// showIdentity serves GET /identities/{id}: the identity, its limits and
// its tokens.
func (c *Console) showIdentity(q *request) error {
	rec, err := c.identity(q)
	if err != nil {
		return err
	}
	v := c.identityView(q, rec)
	page, err := c.manager.List(q.r.Context(), q.by, store.ListOptions{IdentityID: rec.ID, Limit: identityKeys})
	switch {
	case err == nil:
		for _, k := range page.Keys {
			v.Keys = append(v.Keys, c.view(q, k))
		}
		v.MoreKeys = page.Next != uuid.Nil
	case !errors.Is(err, keygate.ErrForbidden):
		return err
	}
	p := c.pageFor(q, rec.ExternalID, v)
	p.Section = "identities"
	c.render(q.w, q.r, http.StatusOK, "identity", p)
	return nil
}

// identityForm is the add and edit forms' fields, as typed.
type identityForm struct {
	ExternalID, Workspace, Metadata string
	Rates                           []rateRow
	// Credits is the balance typed, OrigCredits the one shown when the
	// edit form was opened: the balance goes down as the tokens are used,
	// so only a change typed by the person is sent.
	Credits, OrigCredits                 string
	RefillAmount, RefillEvery, RefillDay string
	Version                              string
}

// rateRow is one row of the named rate limits of the identity and key
// forms.
type rateRow struct {
	Index                  int
	Name, Requests, Window string
	OnDemand               bool
	Windows                []option
}

// rateTable is the table of named rate limits of a form: its rows, and
// the prefix of its fields' names ("" for an identity's, "named_" for a
// key's, whose own rate limit takes the plain names).
type rateTable struct {
	Prefix string
	Rows   []rateRow
}

// extraRateRows is how many empty rows the forms offer for new limits.
const extraRateRows = 3

// identityFormFrom fills the edit form from a stored identity.
func identityFormFrom(rec *store.Identity) *identityForm {
	f := &identityForm{ExternalID: rec.ExternalID, Workspace: rec.Workspace, Version: strconv.FormatInt(rec.Version, 10)}
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(rec.Metadata)) {
		lines = append(lines, k+"="+rec.Metadata[k])
	}
	f.Metadata = strings.Join(lines, "\n")
	f.Rates = rateRowsOf(rec.RateLimits)
	if cr := rec.Credits; cr != nil {
		f.Credits = strconv.FormatInt(cr.Remaining, 10)
		f.RefillAmount, f.RefillEvery, f.RefillDay = refillFields(cr.Refill)
	}
	f.OrigCredits = f.Credits
	return f
}

// rateRowsOf returns the form rows of named rate limits.
func rateRowsOf(rls []store.RateLimit) []rateRow {
	var out []rateRow
	for _, r := range rls {
		out = append(out, rateRow{Name: r.Name, Requests: strconv.Itoa(r.Requests), Window: windowValue(r.Window), OnDemand: r.OnDemand})
	}
	return out
}

// refillFields returns the form fields of a refill: amount, period and
// day, "" for none.
func refillFields(r *store.Refill) (amount, every, day string) {
	if r == nil {
		return "", "", ""
	}
	amount, every = strconv.FormatInt(r.Amount, 10), string(r.Every)
	if r.Day != 0 {
		day = strconv.Itoa(r.Day)
	}
	return amount, every, day
}

// windowValue is the value of a rate window in the forms: the name of
// one of windowChoices, or the duration as Go writes it.
func windowValue(d time.Duration) string {
	for name, w := range windows {
		if w == d {
			return name
		}
	}
	return d.String()
}

// readIdentityForm reads the add or edit form.
func readIdentityForm(v url.Values) *identityForm {
	f := &identityForm{
		ExternalID:   strings.TrimSpace(v.Get("external_id")),
		Workspace:    strings.TrimSpace(v.Get("workspace")),
		Metadata:     strings.TrimSpace(v.Get("metadata")),
		Credits:      strings.TrimSpace(v.Get("credits")),
		OrigCredits:  v.Get("orig_credits"),
		RefillAmount: strings.TrimSpace(v.Get("refill_amount")),
		RefillEvery:  v.Get("refill_every"),
		RefillDay:    strings.TrimSpace(v.Get("refill_day")),
		Version:      v.Get("version"),
	}
	f.Rates = readRateRows(v, "")
	return f
}

// readRateRows reads the rows of named rate limits of a form (an
// identity's or a key's): rate_name, rate_requests and rate_window
// repeated, rate_on_demand naming the rows switched on, each name after
// prefix (see rateTable).
func readRateRows(v url.Values, prefix string) []rateRow {
	var rows []rateRow
	names, requests, wins := v[prefix+"rate_name"], v[prefix+"rate_requests"], v[prefix+"rate_window"]
	onDemand := map[string]bool{}
	for _, i := range v[prefix+"rate_on_demand"] {
		onDemand[i] = true
	}
	for i := range min(len(names), keygate.MaxRateLimits+extraRateRows) {
		row := rateRow{Name: strings.TrimSpace(names[i]), OnDemand: onDemand[strconv.Itoa(i)]}
		if i < len(requests) {
			row.Requests = strings.TrimSpace(requests[i])
		}
		if i < len(wins) {
			row.Window = wins[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// layoutRateRows returns rows as the forms show them: the filled ones,
// then empty ones for new limits, numbered, with their period choices.
func layoutRateRows(rows []rateRow) []rateRow {
	out := rows[:0:0]
	for _, row := range rows {
		if row.Name != "" || row.Requests != "" {
			out = append(out, row)
		}
	}
	for range min(extraRateRows, keygate.MaxRateLimits-len(out)) {
		out = append(out, rateRow{Window: "second"})
	}
	for i := range out {
		out[i].Index = i
		choices := windowChoices
		if _, ok := windows[out[i].Window]; !ok && out[i].Window != "" {
			choices = append(slices.Clone(windowChoices), option{Value: out[i].Window, Label: "per " + out[i].Window})
		}
		out[i].Windows = options(choices, out[i].Window)
	}
	return out
}

// rateLimits reads the rows that are filled in.
func (f *identityForm) rateLimits() ([]keygate.RateLimit, error) {
	return parseRateRows(f.Rates)
}

// parseRateRows reads the rows of named rate limits that are filled in.
func parseRateRows(rows []rateRow) ([]keygate.RateLimit, error) {
	out := []keygate.RateLimit{}
	for _, row := range rows {
		if row.Name == "" && row.Requests == "" {
			continue
		}
		n, err := strconv.Atoi(row.Requests)
		if err != nil || n < 1 || n > maxCount || row.Name == "" {
			return nil, &formError{"limits", "Each rate limit needs a name and a whole number of requests, 1 or more."}
		}
		w, ok := windows[row.Window]
		if !ok {
			if w, err = time.ParseDuration(row.Window); err != nil || w <= 0 {
				return nil, &formError{"limits", "Choose each rate limit’s period."}
			}
		}
		out = append(out, keygate.RateLimit{Name: row.Name, Requests: n, Window: w, OnDemand: row.OnDemand})
	}
	return out, nil
}

// metadata reads the key=value lines.
func (f *identityForm) metadata() (map[string]string, error) {
	var md map[string]string
	for line := range strings.Lines(f.Metadata) {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, &formError{"metadata", "Write the metadata as key=value, one per line."}
		}
		if md == nil {
			md = map[string]string{}
		}
		md[k] = strings.TrimSpace(v)
	}
	return md, nil
}

// credits reads the balance: nil when the field is empty.
func (f *identityForm) credits() (*int64, error) {
	if f.Credits == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(f.Credits, 10, 64)
	if err != nil || n < 0 || n > keygate.MaxCredits {
		return nil, &formError{"credits", "The credits must be a whole number, 0 or more, or empty for none."}
	}
	return &n, nil
}

// refill reads the refill: nil when its amount is empty.
func (f *identityForm) refill() (*keygate.Refill, error) {
	return parseRefill(f.RefillAmount, f.RefillEvery, f.RefillDay, "credits", "credits")
}

// parseRefill reads the refill fields of a form, field naming the form's
// field for errors and unit what is refilled ("credits", "uses"): nil
// when the amount is empty.
func parseRefill(amount, every, day, field, unit string) (*keygate.Refill, error) {
	if amount == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(amount, 10, 64)
	if err != nil || n < 1 || n > keygate.MaxCredits {
		return nil, &formError{field, "The refill must be a whole number of " + unit + ", 1 or more, or empty for none."}
	}
	r := &keygate.Refill{Amount: n, Every: store.Period(every)}
	switch r.Every {
	case store.PeriodDay:
	case store.PeriodMonth:
		if r.Day, err = strconv.Atoi(day); err != nil || r.Day < 1 || r.Day > 31 {
			return nil, &formError{field, "A monthly refill needs its day, 1 to 31."}
		}
	default:
		return nil, &formError{field, "Choose how often the " + unit + " refill."}
	}
	return r, nil
}

// createRequest builds the Manager's request from the add form.
func (f *identityForm) createRequest() (keygate.CreateIdentityRequest, error) {
	req := keygate.CreateIdentityRequest{ExternalID: f.ExternalID, Workspace: f.Workspace}
	var err error
	if req.Metadata, err = f.metadata(); err != nil {
		return req, err
	}
	if req.Limits.RateLimits, err = f.rateLimits(); err != nil {
		return req, err
	}
	n, err := f.credits()
	if err != nil {
		return req, err
	}
	r, err := f.refill()
	if err != nil {
		return req, err
	}
	switch {
	case n != nil:
		req.Limits.Credits = &keygate.Credits{Remaining: *n, Refill: r}
	case r != nil:
		return req, &formError{"credits", "A refill needs credits to start from: enter the credits."}
	}
	return req, nil
}

// updateRequest builds the Manager's request from the edit form: only
// what differs from rec, so that a principal allowed to change one thing
// is not refused for another it did not touch.
func (f *identityForm) updateRequest(rec *store.Identity) (keygate.UpdateIdentityRequest, bool, error) {
	req := keygate.UpdateIdentityRequest{}
	if v, err := strconv.ParseInt(f.Version, 10, 64); err == nil {
		req.Version = v
	}
	changed := false
	if f.ExternalID != rec.ExternalID {
		req.ExternalID, changed = &f.ExternalID, true
	}
	md, err := f.metadata()
	if err != nil {
		return req, false, err
	}
	if !maps.Equal(md, rec.Metadata) {
		if md == nil {
			md = map[string]string{}
		}
		req.Metadata, changed = &md, true
	}
	rls, err := f.rateLimits()
	if err != nil {
		return req, false, err
	}
	if !slices.Equal(rls, rec.RateLimits) {
		req.RateLimits, changed = &rls, true
	}
	n, err := f.credits()
	if err != nil {
		return req, false, err
	}
	r, err := f.refill()
	if err != nil {
		return req, false, err
	}
	var cu keygate.CreditsUpdate
	if f.Credits != f.OrigCredits {
		remaining := int64(-1) // no credits
		if n != nil {
			remaining = *n
		}
		cu.Remaining = &remaining
	}
	var stored *keygate.Refill
	if rec.Credits != nil {
		stored = rec.Credits.Refill
	}
	if (r == nil) != (stored == nil) || r != nil && *r != *stored {
		if !(cu.Remaining != nil && *cu.Remaining < 0) {
			cu.Refill = &keygate.Refill{}
			if r != nil {
				cu.Refill = r
			}
		}
	}
	if cu != (keygate.CreditsUpdate{}) {
		req.Credits, changed = &cu, true
	}
	return req, changed, nil
}

// identityFormData is the add and edit pages'.
type identityFormData struct {
	Edit           bool
	Identity       *identityView
	Form           *identityForm
	Periods        []option
	FixedWorkspace bool
}

var periodChoices = []option{{Value: "", Label: "No refill"}, {Value: "day", Label: "every day"}, {Value: "month", Label: "every month"}}

// renderIdentityForm renders the add or edit form with the problem of
// err, if any.
func (c *Console) renderIdentityForm(q *request, f *identityForm, rec *store.Identity, err error) error {
	d := &identityFormData{Form: f, Periods: options(periodChoices, f.RefillEvery)}
	title := "Add identity"
	if rec != nil {
		d.Edit, d.Identity, title = true, c.identityView(q, rec), "Edit "+rec.ExternalID
		f.Workspace = rec.Workspace
	}
	if q.by.Workspace != "" && !q.by.SuperAdmin {
		f.Workspace, d.FixedWorkspace = q.by.Workspace, true
	}
	f.Rates = layoutRateRows(f.Rates)
	p := c.pageFor(q, title, d)
	p.Section = "identities"
	status := c.refusal(q, p, err)
	c.render(q.w, q.r, status, "identityform", p)
	return nil
}

// newIdentity serves GET /identities/new: the add form.
func (c *Console) newIdentity(q *request) error {
	q.subject = "identity"
	if !c.manager.SupportsIdentities() {
		return errNoIdentities
	}
	if err := c.mayManage(q); err != nil {
		return err
	}
	return c.renderIdentityForm(q, &identityForm{}, nil, nil)
}

// createIdentity serves POST /identities/new.
func (c *Console) createIdentity(q *request) error {
	q.subject = "identity"
	if !c.manager.SupportsIdentities() {
		return errNoIdentities
	}
	if err := c.mayManage(q); err != nil {
		return err
	}
	f := readIdentityForm(q.r.PostForm)
	req, err := f.createRequest()
	if err != nil {
		return c.renderIdentityForm(q, f, nil, err)
	}
	rec, err := c.manager.CreateIdentity(q.r.Context(), q.by, req)
	if err != nil {
		if errors.Is(err, keygate.ErrUnavailable) {
			return err
		}
		return c.renderIdentityForm(q, f, nil, err)
	}
	c.sessions.setFlash(q.r.Context(), q.sess, fmt.Sprintf("Identity %q created. Put tokens in it from their edit page.", rec.ExternalID))
	http.Redirect(q.w, q.r, q.base+"/identities/"+rec.ID.String(), http.StatusSeeOther)
	return nil
}

// mayChangeIdentity returns the refusal of a principal that may not
// change rec at all (apikey:manage in its workspace), so that its form is
// not even shown; or nil.
func (c *Console) mayChangeIdentity(q *request, rec *store.Identity) error {
	if q.by.Allows(c.manageKeys, rec.Workspace) {
		return nil
	}
	return &keygate.DeniedError{Actor: q.by.ID, Reason: keygate.DeniedPermission, Permission: keygate.PermissionManageKeys,
		Workspace: rec.Workspace, IdentityID: rec.ID}
}

// editIdentity serves GET /identities/{id}/edit.
func (c *Console) editIdentity(q *request) error {
	rec, err := c.identity(q)
	if err != nil {
		return err
	}
	if err := c.mayChangeIdentity(q, rec); err != nil {
		return err
	}
	return c.renderIdentityForm(q, identityFormFrom(rec), rec, nil)
}

// updateIdentity serves POST /identities/{id}/edit: it sends the Manager
// what the person changed, at the version the form showed.
func (c *Console) updateIdentity(q *request) error {
	rec, err := c.identity(q)
	if err != nil {
		return err
	}
	if err := c.mayChangeIdentity(q, rec); err != nil {
		return err
	}
	f := readIdentityForm(q.r.PostForm)
	req, changed, err := f.updateRequest(rec)
	if err != nil {
		return c.renderIdentityForm(q, f, rec, err)
	}
	if changed {
		if _, err := c.manager.UpdateIdentity(q.r.Context(), q.by, rec.ID, req); err != nil {
			if errors.Is(err, keygate.ErrUnavailable) {
				return err
			}
			if errors.Is(err, keygate.ErrConflict) {
				// Keep what the person typed, against the identity as
				// it is now.
				f.Version, f.OrigCredits = strconv.FormatInt(rec.Version, 10), identityFormFrom(rec).OrigCredits
			}
			return c.renderIdentityForm(q, f, rec, err)
		}
		c.sessions.setFlash(q.r.Context(), q.sess, "Saved. The limits apply to its tokens’ next requests.")
	} else {
		c.sessions.setFlash(q.r.Context(), q.sess, "Nothing was changed.")
	}
	http.Redirect(q.w, q.r, q.base+"/identities/"+rec.ID.String(), http.StatusSeeOther)
	return nil
}

// deleteIdentityForm serves GET /identities/{id}/delete: the
// confirmation.
func (c *Console) deleteIdentityForm(q *request) error {
	rec, err := c.identity(q)
	if err != nil {
		return err
	}
	if err := c.mayChangeIdentity(q, rec); err != nil {
		return err
	}
	p := c.pageFor(q, "Delete this identity?", c.identityView(q, rec))
	p.Section = "identities"
	c.render(q.w, q.r, http.StatusOK, "identitydelete", p)
	return nil
}

// deleteIdentity serves POST /identities/{id}/delete.
func (c *Console) deleteIdentity(q *request) error {
	rec, err := c.identity(q)
	if err != nil {
		return err
	}
	if err := c.manager.DeleteIdentity(q.r.Context(), q.by, rec.ID); err != nil {
		return err
	}
	c.sessions.setFlash(q.r.Context(), q.sess, fmt.Sprintf("Identity %q deleted.", rec.ExternalID))
	http.Redirect(q.w, q.r, q.base+"/identities", http.StatusSeeOther)
	return nil
}

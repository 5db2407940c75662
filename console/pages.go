package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// canManage reports whether p may change keys somewhere: apikey:manage,
// in its workspace if bound to one. The Manager decides for each key.
func (c *Console) canManage(p *keygate.Principal) bool {
	return p.SuperAdmin || p.Permissions.Allows(c.manageKeys)
}

// keyView is a key as the pages show it.
type keyView struct {
	ID string
	// URL is the key's page.
	URL                                             string
	Name, Description, Hint, Owner, Workspace, Role string
	Access                                          []accessView
	Created, Expires, LastUsed, Revoked, Updated    moment
	// GraceEnds is when the secret replaced by a regeneration stops.
	GraceEnds  moment
	Status     string // active, disabled, expired, revoked
	Rate, Uses string
	// Rates are the key's named rate limits besides Rate; Refill the
	// refill of its uses ("" for none).
	Rates  []rateView
	Refill string
	CIDRs  []string
	// CanManage shows the key's change controls.
	CanManage bool
	// Mine marks the key the session signed in with.
	Mine bool
	// Grid is the key's effective permissions (its role's and scopes'),
	// per category and action, on the key's page.
	Grid []gridRow
	// Usage is the key's least-privilege report, on the key's page; nil
	// when the store records no exercised permissions.
	Usage *usageView
	// Traffic is the chart of the key's verifications, on the key's
	// page; Spark their sparkline, in the list. Nil when the store keeps
	// no usage history.
	Traffic *chartView
	Spark   *sparkView
	// Identity is the identity the key belongs to: its external id, or
	// its id when the viewer may not see it; IdentityURL its page ("" when
	// it may not be seen).
	Identity, IdentityURL string
}

// usageView is a key's least-privilege report as the key page shows it.
type usageView struct {
	Days                  int
	Unused, Suggested     []string
	Workspace             string
	Exercised             int
	EverythingUsed, Never bool
}

// usageDays is the window of the key page's least-privilege report.
const usageDays = 30

// accessView is one line of a key's access: a category and its actions,
// or a scope of no category.
type accessView struct {
	Label, Actions string
}

// gridRow is one row of the permission grid.
type gridRow struct {
	Name  string
	Cells []gridCell
}

// gridCell is one switch of the grid.
type gridCell struct {
	Scope, Label, Hint string
	On                 bool
}

// status returns the key's status at now.
func status(rec *store.Key, now time.Time) string {
	switch {
	case !rec.RevokedAt.IsZero():
		return "revoked"
	case !rec.DisabledAt.IsZero():
		return "disabled"
	case !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt):
		return "expired"
	}
	return "active"
}

// view returns rec as the pages show it to q.
func (c *Console) view(q *request, rec *store.Key) *keyView {
	v := &keyView{
		ID: rec.ID.String(), URL: q.base + "/keys/" + rec.ID.String(), Name: rec.Name, Description: rec.Description,
		Hint: rec.Hint, Owner: rec.Owner, Workspace: rec.Workspace, Role: rec.Role, Access: c.access(rec.Scopes),
		Created: at(rec.CreatedAt, q.now), Expires: at(rec.ExpiresAt, q.now), LastUsed: at(rec.LastUsedAt, q.now),
		Revoked: at(rec.RevokedAt, q.now), Updated: at(rec.UpdatedAt, q.now), GraceEnds: at(time.Time{}, q.now),
		Status: status(rec, q.now), Uses: "Unlimited", Rate: "None",
		CanManage: q.by.Allows(c.manageKeys, rec.Workspace), Mine: rec.ID == q.keyID,
	}
	switch {
	case v.Status == "revoked":
		// Final: its expiry is a record, not a countdown, and no
		// previous token works on.
		v.Expires.Rel = ""
	case len(rec.PrevHash) > 0 && q.now.Before(rec.PrevExpiresAt):
		v.GraceEnds = at(rec.PrevExpiresAt, q.now)
	}
	if rec.RateLimit > 0 {
		v.Rate = fmt.Sprintf("%d per %s", rec.RateLimit, windowName(rec.RateWindow))
	}
	if rec.RemainingUses != nil {
		v.Uses = balanceText(*rec.RemainingUses)
	}
	v.Rates, v.Refill = rateViews(rec.RateLimits), refillWhen(rec.Refill, q.now)
	if rec.IdentityID != uuid.Nil {
		v.Identity = rec.IdentityID.String()
	}
	for _, p := range rec.AllowedCIDRs {
		v.CIDRs = append(v.CIDRs, p.String())
	}
	return v
}

// moment is a time as the pages write it, computed once (a template
// function call per cell would cost more than the rest of the page).
type moment struct {
	// Zero means unset: never expires, never used.
	Zero bool
	// ISO is the RFC 3339 form, for <time datetime>.
	ISO string
	// Day is "7 Dec 2026"; Full is "7 Dec 2026 14:03 UTC"; Rel is "in 29
	// days" or "3 hours ago" ("" for the expiry of a revoked key).
	Day, Full, Rel string
}

// at returns t as a moment, relative to now.
func at(t, now time.Time) moment {
	if t.IsZero() {
		return moment{Zero: true}
	}
	return moment{ISO: t.UTC().Format(time.RFC3339), Day: formatDate(t), Full: formatDateTime(t), Rel: relative(t, now)}
}

// windowName names a rate window.
func windowName(d time.Duration) string {
	for name, w := range windows {
		if w == d {
			return name
		}
	}
	return d.String()
}

// access groups scopes by category, in the grid's order, then the key
// management permissions, then any other scope.
func (c *Console) access(scopes []string) []accessView {
	held := map[string]bool{}
	for _, s := range scopes {
		held[s] = true
	}
	var out []accessView
	for _, cat := range c.categories {
		var acts []string
		for _, a := range actions {
			if s := cat.Resource + ":" + a; held[s] {
				acts = append(acts, a)
				delete(held, s)
			}
		}
		if len(acts) > 0 {
			out = append(out, accessView{cat.Name, strings.Join(acts, ", ")})
		}
	}
	var mgmt []string
	for _, m := range managementScopes {
		if held[m.Scope] {
			mgmt = append(mgmt, strings.TrimPrefix(m.Scope, "apikey:"))
			delete(held, m.Scope)
		}
	}
	if len(mgmt) > 0 {
		out = append(out, accessView{"Key management", strings.Join(mgmt, ", ")})
	}
	for _, s := range scopes {
		if held[s] {
			out = append(out, accessView{s, ""})
		}
	}
	return out
}

// grid returns the permission grid with the switches of on turned on.
func (c *Console) grid(on func(scope string) bool) []gridRow {
	rows := make([]gridRow, 0, len(c.categories))
	for _, cat := range c.categories {
		row := gridRow{Name: cat.Name}
		for _, a := range actions {
			s := cat.Resource + ":" + a
			row.Cells = append(row.Cells, gridCell{Scope: s, Label: cat.Name + ": " + a, On: on(s)})
		}
		rows = append(rows, row)
	}
	return rows
}

// listData is the list page's.
type listData struct {
	Keys                     []*keyView
	Workspace, Owner, Status string
	FixedWorkspace           bool
	Statuses                 []option
	// FirstQuery and NextQuery are the query strings of the first and
	// next pages ("" when there is no next page).
	FirstQuery, NextQuery template.URL
	Paged                 bool
	CanAdd                bool
	// Usage shows the column of the keys' sparklines (the store keeps
	// usage history); SparkDays is their window.
	Usage     bool
	SparkDays int
}

var statusChoices = []option{{Value: "", Label: "Any status"}, {Value: "active", Label: "Active"},
	{Value: "disabled", Label: "Disabled"}, {Value: "expired", Label: "Expired"}, {Value: "revoked", Label: "Revoked"}}

// list serves GET /: one page of keys, filtered.
func (c *Console) list(q *request) error {
	v := q.r.URL.Query()
	d := &listData{Workspace: strings.TrimSpace(v.Get("workspace")), Owner: strings.TrimSpace(v.Get("owner")),
		Status: v.Get("status"), CanAdd: c.canManage(&q.by)}
	if q.by.Workspace != "" && !q.by.SuperAdmin {
		d.Workspace, d.FixedWorkspace = q.by.Workspace, true
	}
	revoked := store.AnyRevoked
	switch d.Status {
	case "":
	case "active", "disabled", "expired":
		revoked = store.OnlyActive
	case "revoked":
		revoked = store.OnlyRevoked
	default:
		return &formError{"status", "Choose a status: active, disabled, expired or revoked."}
	}
	d.Statuses = options(statusChoices, d.Status)
	var after uuid.UUID
	if s := v.Get("after"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return &formError{"after", "This page of the list does not exist: start from the first page."}
		}
		after, d.Paged = id, true
	}
	keys, next, err := c.listKeys(q.r.Context(), q.by, store.ListOptions{Workspace: d.Workspace, Owner: d.Owner,
		Revoked: revoked, After: after}, d.Status, q.now)
	if err != nil {
		return err
	}
	sparks, err := c.listUsage(q.r.Context(), q.by, keys, q.now)
	if err != nil {
		return err
	}
	d.Usage, d.SparkDays = sparks != nil, sparkDays
	for _, k := range keys {
		v := c.view(q, k)
		v.Spark = sparks[k.ID]
		d.Keys = append(d.Keys, v)
	}
	query := url.Values{}
	for k, v := range map[string]string{"workspace": d.Workspace, "owner": d.Owner, "status": d.Status} {
		if v != "" && !(k == "workspace" && d.FixedWorkspace) {
			query.Set(k, v)
		}
	}
	// Encoded here, kept as they are by the template.
	d.FirstQuery = template.URL(query.Encode())
	if next != uuid.Nil {
		query.Set("after", next.String())
		d.NextQuery = template.URL(query.Encode())
	}
	c.render(q.w, q.r, http.StatusOK, "list", c.pageFor(q, "API tokens", d))
	return nil
}

// maxScan bounds the keys read for one page of a list filtered by expiry,
// which the store cannot filter: a page may then come out short.
const maxScan = 10 * store.MaxListLimit

// listKeys returns up to a page of keys matching opts and, for the
// statuses "active", "disabled" and "expired", that status at now (which
// the store cannot filter); and the cursor of the next page, or uuid.Nil
// at the end.
func (c *Console) listKeys(ctx context.Context, by keygate.Principal, opts store.ListOptions, st string, now time.Time) ([]*store.Key, uuid.UUID, error) {
	opts.Limit = c.pageSize
	filtered := st == "active" || st == "disabled" || st == "expired"
	if filtered {
		opts.Limit = min(4*c.pageSize, store.MaxListLimit)
	}
	var out []*store.Key
	for scanned := 0; ; {
		page, err := c.manager.List(ctx, by, opts)
		if err != nil {
			return nil, uuid.Nil, err
		}
		for i, k := range page.Keys {
			if filtered && status(k, now) != st {
				continue
			}
			out = append(out, k)
			if len(out) == c.pageSize {
				if i < len(page.Keys)-1 || page.Next != uuid.Nil {
					return out, k.ID, nil
				}
				return out, uuid.Nil, nil
			}
		}
		scanned += len(page.Keys)
		if page.Next == uuid.Nil || !filtered || scanned >= maxScan {
			return out, page.Next, nil
		}
		opts.After = page.Next
	}
}

// key returns the key of the request's path, for q.
func (c *Console) key(q *request) (*store.Key, error) {
	id, err := parseID(q.r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return c.manager.Get(q.r.Context(), q.by, id)
}

// showKey serves GET /keys/{id}: the key's details. Its token is never
// shown again.
func (c *Console) showKey(q *request) error {
	rec, err := c.key(q)
	if err != nil {
		return err
	}
	v := c.view(q, rec)
	// The key's effective permissions: its role's and its scopes'.
	perms, _ := permission.ParseSet(rec.Scopes...)
	super := false
	if role, err := c.manager.Roles().Role(rec.Role); err == nil && rec.Role != "" {
		perms, super = perms.Union(role.Permissions), role.SuperAdmin
	}
	v.Grid = c.grid(func(s string) bool { return super || perms.Allows(permission.MustParse(s)) })
	if rec.IdentityID != uuid.Nil {
		id, err := c.manager.GetIdentity(q.r.Context(), q.by, rec.IdentityID)
		switch {
		case err == nil:
			v.Identity, v.IdentityURL = id.ExternalID, q.base+"/identities/"+id.ID.String()
		case errors.Is(err, keygate.ErrUnavailable):
			return err
		}
	}
	rep, err := c.manager.LeastPrivilege(q.r.Context(), q.by, rec.ID, usageDays*24*time.Hour)
	switch {
	case err == nil:
		v.Usage = &usageView{Days: usageDays, Unused: rep.Unused, Suggested: rep.Suggested, Workspace: rep.SuggestedWorkspace,
			Exercised: len(rep.Exercised), EverythingUsed: len(rep.Unused) == 0, Never: len(rep.Exercised) == 0}
	case !errors.Is(err, keygate.ErrUnsupported):
		return err
	}
	if v.Traffic, err = c.keyUsage(q, rec); err != nil {
		return err
	}
	c.render(q.w, q.r, http.StatusOK, "key", c.pageFor(q, rec.Name, v))
	return nil
}

// formData is the add and edit pages'.
type formData struct {
	Edit       bool
	Key        *keyView
	Form       *keyForm
	Grid       []gridRow
	Management []gridCell
	// Other are scopes the key holds that no switch of the console stands
	// for (given through the REST API): kept unless turned off.
	Other          []gridCell
	Roles          []option
	Windows        []option
	Periods        []option
	FixedWorkspace bool
	ExpiryField    *expiryView
	// Identity is the identity field: a choice of the identities the
	// principal sees, or, when they are too many or it may see none, the
	// id typed; nil when the store keeps no identities.
	Identity *identityField
}

// identityField is the identity select (or id input) of the key forms.
type identityField struct {
	Choices []option
	// Typed, when set, shows an input for the id instead of a select.
	Typed bool
	Value string
}

// identityChoices is how many identities the key forms offer in a select.
const identityChoices = 200

// identityField returns the key forms' identity field for q, with the
// identity id chosen, in workspace ws when the key has one.
func (c *Console) identityField(q *request, id, ws string) *identityField {
	if !c.manager.SupportsIdentities() {
		return nil
	}
	f := &identityField{Value: id}
	page, err := c.manager.ListIdentities(q.r.Context(), q.by, keygate.IdentityListRequest{Workspace: ws, Limit: identityChoices})
	if err != nil || page.Next != uuid.Nil {
		f.Typed = true
		return f
	}
	f.Choices = append(f.Choices, option{Value: "", Label: "None", Selected: id == ""})
	found := id == ""
	for _, rec := range page.Identities {
		label := rec.ExternalID
		if rec.Workspace != "" {
			label += " (workspace " + rec.Workspace + ")"
		}
		f.Choices = append(f.Choices, option{Value: rec.ID.String(), Label: label, Selected: rec.ID.String() == id})
		found = found || rec.ID.String() == id
	}
	if !found {
		// One the principal may not list: keep it as it is.
		f.Choices = append(f.Choices, option{Value: id, Label: "Identity " + id, Selected: true})
	}
	return f
}

// expiryView is the expiry select and custom date of the add and
// regenerate forms.
type expiryView struct {
	Expiries []option
	Date     string
	MinDate  string
	// MaxDate and Latest bound the date by the principal's own expiry.
	MaxDate, Latest string
	// Problem is the error about the expiry, if any.
	Problem string
}

// expiryField returns the expiry field of q's forms.
func expiryField(q *request, choice, date string) *expiryView {
	v := &expiryView{Expiries: options(expiryChoices, choice), Date: date, MinDate: q.now.UTC().Format(time.DateOnly)}
	if !q.by.ExpiresAt.IsZero() {
		v.Latest = latest(q.by.ExpiresAt)
		v.MaxDate = q.by.ExpiresAt.UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	}
	return v
}

// formData returns the add or edit page's data for f.
func (c *Console) formData(q *request, f *keyForm, rec *store.Key) (*formData, error) {
	roles, err := c.manager.ListRoles(q.by)
	if err != nil {
		return nil, err
	}
	on := func(s string) bool { return f.Scopes[s] }
	f.Rates = layoutRateRows(f.Rates)
	d := &formData{Form: f, Grid: c.grid(on), ExpiryField: expiryField(q, f.Expiry, f.ExpiryDate),
		Windows: options(windowChoices, f.RateWindow), Periods: options(periodChoices, f.RefillEvery)}
	for _, m := range managementScopes {
		d.Management = append(d.Management, gridCell{Scope: m.Scope, Label: m.Label, Hint: m.Hint + " (" + m.Scope + ")", On: on(m.Scope)})
	}
	d.Roles = append(d.Roles, option{Value: "", Label: "No role: only the permissions below", Selected: f.Role == ""})
	for _, r := range roles {
		d.Roles = append(d.Roles, option{Value: r.Name, Label: r.Name + " — " + r.Description, Selected: f.Role == r.Name})
	}
	if rec != nil {
		d.Edit, d.Key = true, c.view(q, rec)
		for _, s := range rec.Scopes {
			if !c.knownScopes[s] {
				d.Other = append(d.Other, gridCell{Scope: s, Label: s, On: on(s)})
			}
		}
	}
	if q.by.Workspace != "" && !q.by.SuperAdmin {
		f.Workspace, d.FixedWorkspace = q.by.Workspace, true
	}
	ws := f.Workspace
	if rec != nil {
		ws = rec.Workspace
	}
	d.Identity = c.identityField(q, f.Identity, ws)
	return d, nil
}

// renderForm renders the add or edit form with the problem of err, if
// any.
func (c *Console) renderForm(q *request, f *keyForm, rec *store.Key, err error) error {
	d, derr := c.formData(q, f, rec)
	if derr != nil {
		return derr
	}
	title := "Add API token"
	if rec != nil {
		title = "Edit " + rec.Name
	}
	p := c.pageFor(q, title, d)
	status := c.refusal(q, p, err)
	if p.Problem != nil {
		d.ExpiryField.Problem = p.Problem.Fields["expiry"]
	}
	c.render(q.w, q.r, status, "form", p)
	return nil
}

// refusal puts err's message on p, against the field it is about, and
// returns the page's status: 200 when err is nil.
func (c *Console) refusal(q *request, p *page, err error) int {
	if err == nil {
		return http.StatusOK
	}
	status, msg := c.describe(q, err)
	p.Problem = &problemView{Message: msg, Fields: map[string]string{}}
	if name := errorField(err); name != "" {
		p.Problem.Fields[name] = msg
	}
	return status
}

// mayManage returns the refusal of a principal that may not change
// keys at all, or nil; the Manager checks each change in full.
func (c *Console) mayManage(q *request) error {
	if c.canManage(&q.by) {
		return nil
	}
	return &keygate.DeniedError{Actor: q.by.ID, Reason: keygate.DeniedPermission, Permission: keygate.PermissionManageKeys}
}

// newKey serves GET /keys/new: the add form.
func (c *Console) newKey(q *request) error {
	if err := c.mayManage(q); err != nil {
		return err
	}
	f := &keyForm{Expiry: "30d", RateWindow: "minute", Scopes: map[string]bool{}, Nonce: c.sessions.newNonce(q.sess)}
	return c.renderForm(q, f, nil, nil)
}

// alreadySent answers a one-time form sent a second time, as by a reload
// of the page that showed a token.
func (c *Console) alreadySent(q *request) error {
	c.errorPage(q.w, q.r, q, http.StatusConflict, "Already done",
		"This form was already sent. A token is shown only once, right after it is made, and cannot be shown again. "+
			"If it was lost, regenerate the token.")
	return nil
}

// tokenData is the one-time token page's.
type tokenData struct {
	Token       string
	Key         *keyView
	Regenerated bool
	// OldStops is when the replaced token stops, after a regeneration.
	OldStops time.Time
}

// createKey serves POST /keys/new: it creates the key and shows its
// token, once, in the response; a reload sends the form again, which its
// one-time nonce refuses.
func (c *Console) createKey(q *request) error {
	if err := c.mayManage(q); err != nil {
		return err
	}
	f, err := readKeyForm(q.r.PostForm, func(s string) bool { return c.knownScopes[s] })
	if err != nil {
		return c.renderForm(q, f, nil, err)
	}
	req, err := f.createRequest()
	if err != nil {
		return c.renderForm(q, f, nil, err)
	}
	if ok, err := c.sessions.useNonce(q.r.Context(), q.sess, f.Nonce, q.now); err != nil {
		return err
	} else if !ok {
		return c.alreadySent(q)
	}
	created, err := c.manager.Create(q.r.Context(), q.by, req)
	if err != nil {
		// The form may be sent again, with a nonce of its own.
		f.Nonce = c.sessions.newNonce(q.sess)
		q.r.PostForm.Set("nonce", f.Nonce)
		if errors.Is(err, keygate.ErrUnavailable) {
			return err
		}
		return c.renderForm(q, f, nil, err)
	}
	c.render(q.w, q.r, http.StatusOK, "token", c.pageFor(q, "Token created",
		&tokenData{Token: created.Token.Reveal(), Key: c.view(q, created.Key)}))
	return nil
}

// editKey serves GET /keys/{id}/edit.
func (c *Console) editKey(q *request) error {
	rec, err := c.key(q)
	if err != nil {
		return err
	}
	if err := c.mayEdit(q, rec); err != nil {
		return err
	}
	return c.renderForm(q, formFromKey(rec), rec, nil)
}

// mayEdit returns the refusal of an edit of rec: by a principal that may
// not change it, or of a revoked key, whose record stays as it was, for
// audit; or nil.
func (c *Console) mayEdit(q *request, rec *store.Key) error {
	if err := c.mayChange(q, rec); err != nil {
		return err
	}
	if !rec.RevokedAt.IsZero() {
		return errRevokedKey
	}
	return nil
}

// mayChange returns the refusal of a principal that may not change rec
// at all (apikey:manage in its workspace), so that its form is not even
// shown; or nil.
func (c *Console) mayChange(q *request, rec *store.Key) error {
	if q.by.Allows(c.manageKeys, rec.Workspace) {
		return nil
	}
	if q.by.Workspace != "" && q.by.Workspace != rec.Workspace && !q.by.SuperAdmin {
		return &keygate.DeniedError{Actor: q.by.ID, Reason: keygate.DeniedWorkspace, Workspace: rec.Workspace}
	}
	return &keygate.DeniedError{Actor: q.by.ID, Reason: keygate.DeniedPermission, Permission: keygate.PermissionManageKeys, Workspace: rec.Workspace}
}

// updateKey serves POST /keys/{id}/edit: it sends the Manager what the
// person changed.
func (c *Console) updateKey(q *request) error {
	rec, err := c.key(q)
	if err != nil {
		return err
	}
	if err := c.mayEdit(q, rec); err != nil {
		return err
	}
	held := map[string]bool{}
	for _, s := range rec.Scopes {
		held[s] = true
	}
	f, err := readKeyForm(q.r.PostForm, func(s string) bool { return c.knownScopes[s] || held[s] })
	// Owner and workspace are not edited: show them as they are.
	f.Owner, f.Workspace = rec.Owner, rec.Workspace
	if err != nil {
		return c.renderForm(q, f, rec, err)
	}
	if f.Fingerprint != fingerprint(rec) {
		// Keep what the person typed, against the key as it is now.
		f.Fingerprint, f.OrigUses = fingerprint(rec), formFromKey(rec).Uses
		return c.renderForm(q, f, rec, keygate.ErrConflict)
	}
	req, changed, err := f.updateRequest(rec)
	if err != nil {
		return c.renderForm(q, f, rec, err)
	}
	if changed {
		if _, err := c.manager.Update(q.r.Context(), q.by, rec.ID, req); err != nil {
			if errors.Is(err, keygate.ErrUnavailable) {
				return err
			}
			return c.renderForm(q, f, rec, err)
		}
		c.sessions.setFlash(q.r.Context(), q.sess, "Saved. The changes apply from the token's next request.")
	} else {
		c.sessions.setFlash(q.r.Context(), q.sess, "Nothing was changed.")
	}
	http.Redirect(q.w, q.r, q.base+"/keys/"+rec.ID.String(), http.StatusSeeOther)
	return nil
}

// regenerateData is the regenerate page's.
type regenerateData struct {
	Key         *keyView
	ExpiryField *expiryView
	Graces      []option
	Nonce       string
}

// regenerateForm serves GET /keys/{id}/regenerate.
func (c *Console) regenerateForm(q *request) error {
	rec, err := c.key(q)
	if err != nil {
		return err
	}
	if err := c.mayChange(q, rec); err != nil {
		return err
	}
	return c.renderRegenerate(q, rec, "30d", "", "0", c.sessions.newNonce(q.sess), nil)
}

func (c *Console) renderRegenerate(q *request, rec *store.Key, expiry, date, grace, nonce string, err error) error {
	d := &regenerateData{Key: c.view(q, rec), ExpiryField: expiryField(q, expiry, date), Graces: options(graceChoices, grace),
		Nonce: nonce}
	p := c.pageFor(q, "Regenerate "+rec.Name, d)
	status := c.refusal(q, p, err)
	if p.Problem != nil {
		d.ExpiryField.Problem = p.Problem.Fields["expiry"]
	}
	c.render(q.w, q.r, status, "regenerate", p)
	return nil
}

// regenerateKey serves POST /keys/{id}/regenerate: a new secret and
// expiry, its token shown once in the response.
func (c *Console) regenerateKey(q *request) error {
	rec, err := c.key(q)
	if err != nil {
		return err
	}
	if err := c.mayChange(q, rec); err != nil {
		return err
	}
	form := q.r.PostForm
	expiryChoice, date, graceChoice, nonce := form.Get("expiry"), strings.TrimSpace(form.Get("expiry_date")), form.Get("grace"), form.Get("nonce")
	expiry, err := readExpiry(expiryChoice, date)
	if err != nil {
		return c.renderRegenerate(q, rec, expiryChoice, date, graceChoice, nonce, err)
	}
	grace, err := readGrace(graceChoice)
	if err != nil {
		return c.renderRegenerate(q, rec, expiryChoice, date, graceChoice, nonce, err)
	}
	if ok, err := c.sessions.useNonce(q.r.Context(), q.sess, nonce, q.now); err != nil {
		return err
	} else if !ok {
		return c.alreadySent(q)
	}
	created, err := c.manager.Regenerate(q.r.Context(), q.by, rec.ID, keygate.RegenerateRequest{Expiry: expiry, GracePeriod: grace})
	if err != nil {
		// The form may be sent again, with a nonce of its own.
		nonce = c.sessions.newNonce(q.sess)
		q.r.PostForm.Set("nonce", nonce)
		if errors.Is(err, keygate.ErrUnavailable) {
			return err
		}
		return c.renderRegenerate(q, rec, expiryChoice, date, graceChoice, nonce, err)
	}
	d := &tokenData{Token: created.Token.Reveal(), Key: c.view(q, created.Key), Regenerated: true, OldStops: q.now}
	if !created.Key.PrevExpiresAt.IsZero() {
		d.OldStops = created.Key.PrevExpiresAt
	}
	c.render(q.w, q.r, http.StatusOK, "token", c.pageFor(q, "Token regenerated", d))
	return nil
}

// confirmData is the revoke and delete pages'.
type confirmData struct {
	Key                      *keyView
	Action, Question, Button string
	Explanation              string
	Danger                   bool
}

// revokeForm serves GET /keys/{id}/revoke: the confirmation.
func (c *Console) revokeForm(q *request) error {
	return c.confirm(q, "revoke", "Revoke this token?",
		"Applications and scripts using it are refused from their next request. Its record stays, for audit; you can delete it later.", "Revoke token", false)
}

// disableForm serves GET /keys/{id}/disable: the confirmation.
func (c *Console) disableForm(q *request) error {
	return c.confirm(q, "disable", "Disable this token?",
		"Applications and scripts using it are refused from their next request, until you enable it again.", "Disable token", false)
}

// enableForm serves GET /keys/{id}/enable: the confirmation.
func (c *Console) enableForm(q *request) error {
	return c.confirm(q, "enable", "Enable this token?",
		"Applications and scripts using it are let in again from their next request.", "Enable token", false)
}

// disableKey serves POST /keys/{id}/disable.
func (c *Console) disableKey(q *request) error {
	return c.switchKey(q, c.manager.Disable, "Token %q disabled: it is refused from its next request, until you enable it.")
}

// enableKey serves POST /keys/{id}/enable.
func (c *Console) enableKey(q *request) error {
	return c.switchKey(q, c.manager.Enable, "Token %q enabled: it works again from its next request.")
}

// switchKey applies op to the key of the path and goes back to its page.
func (c *Console) switchKey(q *request, op func(context.Context, keygate.Principal, uuid.UUID) (*store.Key, error), done string) error {
	id, err := parseID(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	rec, err := op(q.r.Context(), q.by, id)
	if err != nil {
		return err
	}
	c.sessions.setFlash(q.r.Context(), q.sess, fmt.Sprintf(done, rec.Name))
	http.Redirect(q.w, q.r, q.base+"/keys/"+rec.ID.String(), http.StatusSeeOther)
	return nil
}

// deleteForm serves GET /keys/{id}/delete: the confirmation.
func (c *Console) deleteForm(q *request) error {
	return c.confirm(q, "delete", "Delete this token?",
		"Applications and scripts using it are refused from their next request, and its record is removed. This cannot be undone.", "Delete token", true)
}

func (c *Console) confirm(q *request, action, question, explanation, button string, danger bool) error {
	rec, err := c.key(q)
	if err != nil {
		return err
	}
	if err := c.mayChange(q, rec); err != nil {
		return err
	}
	v := c.view(q, rec)
	if v.Mine {
		explanation += " It is the key you signed in with: your session ends too."
	}
	c.render(q.w, q.r, http.StatusOK, "confirm", c.pageFor(q, question,
		&confirmData{Key: v, Action: action, Question: question, Button: button, Explanation: explanation, Danger: danger}))
	return nil
}

// revokeKey serves POST /keys/{id}/revoke.
func (c *Console) revokeKey(q *request) error {
	id, err := parseID(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	rec, err := c.manager.Revoke(q.r.Context(), q.by, id)
	if err != nil {
		return err
	}
	c.sessions.setFlash(q.r.Context(), q.sess, fmt.Sprintf("Token %q revoked: it is refused from its next request.", rec.Name))
	http.Redirect(q.w, q.r, q.base+"/", http.StatusSeeOther)
	return nil
}

// deleteKey serves POST /keys/{id}/delete.
func (c *Console) deleteKey(q *request) error {
	rec, err := c.key(q)
	if err != nil {
		return err
	}
	if err := c.manager.Delete(q.r.Context(), q.by, rec.ID); err != nil {
		return err
	}
	c.sessions.setFlash(q.r.Context(), q.sess, fmt.Sprintf("Token %q deleted.", rec.Name))
	http.Redirect(q.w, q.r, q.base+"/", http.StatusSeeOther)
	return nil
}

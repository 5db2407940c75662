package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// page is what every template gets: the layout's fields, and Data, the
// page's own.
type page struct {
	Title   string
	App     string
	Base    string
	User    *userView
	CSRF    string
	Flash   string
	Problem *problemView
	Now     time.Time
	// Identities shows the identity pages in the navigation (the store
	// keeps identities); Section is the current one: "" for the tokens,
	// "identities".
	Identities bool
	Section    string
	// Data is the page's own.
	Data any
}

// userView is the signed-in principal, in the header.
type userView struct {
	Name string
	// CanManage shows the controls that change keys.
	CanManage bool
	// ViewOnly marks a principal that may see keys but not change them.
	// Neither it nor CanManage is set when the principal's rights are not
	// known (the key store failed before they were read).
	ViewOnly bool
	// SignOut is false for a host application's session, which the
	// console does not end.
	SignOut bool
}

// problemView is what went wrong with a form: a summary, and a message
// per field for the fields concerned.
type problemView struct {
	// Heading starts the summary; default "Please check the form." when
	// fields are marked, else "Not done."
	Heading string
	Message string
	Fields  map[string]string
}

// views holds the parsed templates, one set per page.
type views struct {
	pages map[string]*template.Template
}

// pageNames are the templates in templates/, besides layout.html.
var pageNames = []string{"signin", "list", "key", "form", "token", "regenerate", "confirm", "error",
	"identities", "identity", "identityform", "identitydelete"}

func loadViews(a *assets) (*views, error) {
	funcs := template.FuncMap{
		"asset":    a.url,
		"dateTime": formatDateTime,
		"fieldError": func(p *problemView, field string) string {
			if p == nil {
				return ""
			}
			return p.Fields[field]
		},
		"rateTable": func(prefix string, rows []rateRow) rateTable { return rateTable{Prefix: prefix, Rows: rows} },
	}
	v := &views{pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		v.pages[name] = t
	}
	return v, nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render writes page name with status. The page is rendered in full
// before anything is written, so a template failure is a clean 500.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	p.App, p.Now = c.title, c.now()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := c.views.pages[name].ExecuteTemplate(buf, "layout", p); err != nil {
		c.logger.ErrorContext(r.Context(), "console: render page", "page", name, "error", err)
		http.Error(w, "The page could not be shown.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// pageFor returns the page of q titled title, with the signed-in user,
// the anti-forgery token and the flash message.
func (c *Console) pageFor(q *request, title string, data any) *page {
	p := &page{Title: title, Base: q.base, Data: data, Identities: c.manager.SupportsIdentities()}
	if q.subject == "identity" {
		p.Section = "identities"
	}
	if q.sess != nil {
		p.CSRF = q.sess.CSRF
		p.User = &userView{Name: q.sess.Who, SignOut: q.keyID != uuid.Nil}
		if by := c.shownPrincipal(q); by != nil {
			p.User.CanManage = c.canManage(by)
			p.User.ViewOnly = !p.User.CanManage
		}
		if q.r.Method == http.MethodGet {
			p.Flash = c.sessions.takeFlash(q.r.Context(), q.sess)
		}
	}
	return p
}

// shownPrincipal returns the principal whose rights the header shows:
// q.by once authentication has set it. A page answering a key session's
// request before then (a form refused by its anti-forgery token or its
// size, or a store failure, all found before the key's record is read)
// shows the key's principal as the Manager refreshes it now, from its
// record; nil when that fails (the key store is down, the key was revoked
// or deleted): then no rights are shown, rather than wrong ones.
func (c *Console) shownPrincipal(q *request) *keygate.Principal {
	if q.by.ID != "" || q.keyID == uuid.Nil {
		return &q.by
	}
	p, err := c.manager.Refresh(q.r.Context(), keygate.BoundPrincipal(q.sess.Key, q.sess.Secret))
	if err != nil {
		return nil
	}
	return &p
}

// errorData is the error page's.
type errorData struct {
	Message string
	// Retry, for a change that failed because the key store did, sends
	// the same form again.
	Retry *retryForm
}

// retryForm is a form's fields, sent again as they were.
type retryForm struct {
	Action string
	Fields []field
}

type field struct{ Name, Value string }

// errorPage renders an error page; q may be nil before authentication.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, q *request, status int, title, message string) {
	c.errorPageRetry(w, r, q, status, title, message, nil)
}

func (c *Console) errorPageRetry(w http.ResponseWriter, r *http.Request, q *request, status int, title, message string, retry *retryForm) {
	var p *page
	if q != nil {
		p = c.pageFor(q, title, &errorData{Message: message, Retry: retry})
	} else {
		p = &page{Title: title, Base: basePath(r), Data: &errorData{Message: message}}
	}
	c.render(w, r, status, "error", p)
}

// fail renders the page of an error returned by a page's handler: its
// status and, in plain words, what went wrong. A change that failed
// because the key store did is offered again as it was sent: nothing the
// person typed is lost.
func (c *Console) fail(q *request, err error) {
	status, msg := c.describe(q, err)
	title := http.StatusText(status)
	switch {
	case status == http.StatusServiceUnavailable:
		c.logger.ErrorContext(q.r.Context(), "console: store failed", "path", q.r.URL.Path, "error", err)
		title = "Key store unavailable"
		if errors.Is(err, errSessions) {
			title = "Session store unavailable"
		}
		if q.r.Method == http.MethodPost && q.sess != nil {
			retry := &retryForm{Action: q.base + q.r.URL.Path}
			for name, values := range q.r.PostForm {
				if name == "csrf" || name == "token" {
					continue
				}
				for _, v := range values {
					retry.Fields = append(retry.Fields, field{name, v})
				}
			}
			c.errorPageRetry(q.w, q.r, q, status, title, msg, retry)
			return
		}
	case status >= 500:
		c.logger.ErrorContext(q.r.Context(), "console: request failed", "path", q.r.URL.Path, "error", err)
		title = "Something went wrong"
	case status == http.StatusForbidden:
		title = "Not allowed"
	case status == http.StatusNotFound && errors.Is(err, keygate.ErrIdentityNotFound):
		title = "Identity not found"
	case status == http.StatusNotFound:
		title = "Token not found"
	}
	c.errorPage(q.w, q.r, q, status, title, msg)
}

// assets are the embedded static files, each with a version: the start
// of its SHA-256, added to its URL so that browsers may keep it.
type assets struct {
	files    fs.FS
	versions map[string]string
}

func loadAssets() (*assets, error) {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	a := &assets{files: sub, versions: map[string]string{}}
	entries, err := fs.ReadDir(sub, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := fs.ReadFile(sub, e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		a.versions[e.Name()] = hex.EncodeToString(sum[:6])
	}
	return a, nil
}

// url returns the path of asset name relative to the console's root.
func (a *assets) url(name string) (string, error) {
	v, ok := a.versions[name]
	if !ok {
		return "", errors.New("no asset " + name)
	}
	return "/static/" + name + "?v=" + v, nil
}

// serve serves GET /static/{file}. A URL with the current version may be
// cached for a year; any other must be checked again.
func (a *assets) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(a.files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if v := r.URL.Query().Get("v"); v != "" && v == a.versions[name] {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// formatDate writes t as a day, such as "7 Dec 2026", in UTC; "—" when
// zero. Midnight is written as the end of the day before: a key given a
// custom date works through that day, and expires at the next midnight.
func formatDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	if midnight(t) {
		t = t.Add(-time.Nanosecond)
	}
	return t.UTC().Format("2 Jan 2006")
}

// formatDateTime writes t to the minute, in UTC; midnight as the end of
// the day before.
func formatDateTime(t time.Time) string {
	switch {
	case t.IsZero():
		return "—"
	case midnight(t):
		return formatDate(t) + ", end of day UTC"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

// midnight reports whether t is exactly midnight UTC.
func midnight(t time.Time) bool {
	t = t.UTC()
	return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
}

// relative writes t relative to now: "in 29 days", "3 hours ago".
func relative(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	case d < 60*24*time.Hour:
		s = plural(int(d/(24*time.Hour)), "day")
	case d < 730*24*time.Hour:
		s = plural(int(d/(30*24*time.Hour)), "month")
	default:
		s = plural(int(d/(365*24*time.Hour)), "year")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

package console

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// request is one authenticated request to a page.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	base string // the console's mount point, such as "/console"
	now  time.Time
	// by acts on the Manager: the signed-in key's principal, or the host
	// application's.
	by   keygate.Principal
	sess *session
	// keyID is the key signed in with (uuid.Nil for a host principal).
	keyID uuid.UUID
	// subject is what the page is about, for its messages: "" for a
	// token, "identity" on the identity pages.
	subject string
}

// basePath returns where the console is mounted: the part of the request
// path that http.StripPrefix removed.
func basePath(r *http.Request) string {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || !strings.HasSuffix(u.Path, r.URL.Path) {
		return ""
	}
	base := strings.TrimRight(strings.TrimSuffix(u.Path, r.URL.Path), "/")
	if base != "" {
		// Never "//host": that would make every link leave the site.
		base = "/" + strings.TrimLeft(base, "/")
	}
	return base
}

// Why a session ended, as told on the sign-in page (?ended=reason).
var endedReasons = map[string]string{
	"signed-out":  "You are signed out.",
	"expired":     "Your session has expired. Sign in again.",
	"revoked":     "Your session ended: the key you signed in with was revoked.",
	"deleted":     "Your session ended: the key you signed in with was deleted.",
	"regenerated": "Your session ended: the key you signed in with was regenerated. Sign in with its new token.",
	"key-expired": "Your session ended: the key you signed in with has expired.",
	"no-view":     "Your session ended: the key you signed in with no longer holds apikey:view.",
	"address":     "Your session ended: the key you signed in with may not be used from your address.",
	"unresolved":  "Your session ended: the role of the key you signed in with no longer exists.",
	"disabled":    "Your session ended: the key you signed in with was disabled.",
}

// authed wraps a page: it finds the request's principal (ending the
// session, or sending the browser to the sign-in page, when there is
// none), bounds and parses a form, checks its anti-forgery token, then
// runs h and renders its error, if any.
func (c *Console) authed(h func(*request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := &request{w: w, r: r, base: basePath(r), now: c.now()}
		if !c.authenticate(q) {
			return
		}
		if err := h(q); err != nil {
			c.fail(q, err)
		}
	})
}

// checkForm reads a posted form and checks its anti-forgery token
// against q's session, or answers the request and returns false. Other
// methods pass.
func (c *Console) checkForm(q *request) bool {
	if q.r.Method != http.MethodPost {
		return true
	}
	if !c.parseForm(q.w, q.r, q) {
		return false
	}
	if !equalTokens(q.sess.CSRF, q.r.PostForm.Get("csrf")) {
		c.errorPage(q.w, q.r, q, http.StatusForbidden, "Request refused",
			"This form has expired or did not come from this console. Open the page again and resend it.")
		return false
	}
	return true
}

// parseForm reads a posted form of at most Config.MaxFormBytes, or
// answers 413 or 400 and returns false.
func (c *Console) parseForm(w http.ResponseWriter, r *http.Request, q *request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, c.maxForm)
	err := r.ParseForm()
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		c.errorPage(w, r, q, http.StatusRequestEntityTooLarge, "Form too large",
			"The form sent is larger than the console accepts. Nothing was changed.")
		return false
	case err != nil:
		c.errorPage(w, r, q, http.StatusBadRequest, "Bad request", "The form sent could not be read. Nothing was changed.")
		return false
	}
	return true
}

// authenticate sets q's principal and session, or answers the request
// (a redirect to the sign-in page, or an error page) and returns false.
func (c *Console) authenticate(q *request) bool {
	if c.principal != nil {
		if p, ok := c.principal(q.r); ok {
			return c.hostSession(q, p)
		}
	}
	sid := cookie(q.r, sessionCookie)
	s, err := c.sessions.get(q.r.Context(), sid, q.now)
	switch {
	case err != nil:
		c.fail(q, err)
		return false
	case s == nil && sid != "":
		c.endSession(q, sid, "expired")
		return false
	case s == nil || s.Key == uuid.Nil:
		// No session, or the host application's, whose user is gone: not
		// the console's to end.
		c.endSession(q, "", "")
		return false
	}
	// The form is checked before the key's record is read, so that a
	// store failure can offer the checked form again.
	q.sess, q.keyID = s, s.Key
	if !c.checkForm(q) {
		return false
	}
	rec, err := c.manager.Get(q.r.Context(), keygate.System(), s.Key)
	switch {
	case errors.Is(err, keygate.ErrNotFound):
		c.endSession(q, sid, "deleted")
		return false
	case err != nil:
		c.fail(q, err)
		return false
	}
	p, reason, err := c.keyPrincipal(q.r.Context(), rec, keygate.BoundPrincipal(s.Key, s.Secret), c.clientAddr(q.r), q.now)
	switch {
	case err != nil:
		c.fail(q, err)
		return false
	case reason != "":
		c.endSession(q, sid, reason)
		return false
	}
	q.by = p
	return true
}

// hostSession gives a host principal the session that holds its
// anti-forgery token, starting one on a page view.
func (c *Console) hostSession(q *request, p keygate.Principal) bool {
	q.by = p
	ctx := q.r.Context()
	s, err := c.sessions.get(ctx, cookie(q.r, sessionCookie), q.now)
	if err != nil {
		c.fail(q, err)
		return false
	}
	if s == nil || s.Key != uuid.Nil || s.Principal != p.ID {
		if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
			c.errorPage(q.w, q.r, q, http.StatusForbidden, "Request refused",
				"This form has expired or did not come from this console. Open the page again and resend it.")
			return false
		}
		var sid string
		if sid, s, err = c.sessions.add(ctx, sessionData{Principal: p.ID, Who: p.ID}, q.now); err != nil {
			c.fail(q, err)
			return false
		}
		c.setCookie(q.w, q.r, q.base, sessionCookie, sid)
	}
	q.sess = s
	if !canView(&p) {
		c.errorPage(q.w, q.r, q, http.StatusForbidden, "No access",
			"Your account lacks "+keygate.PermissionViewKeys+", which the console needs to show API tokens.")
		return false
	}
	return c.checkForm(q)
}

// endSession forgets session sid and sends the browser to the sign-in
// page, telling why when reason is set. A store that fails to forget it
// is logged: the session ends anyway at its next request, for the same
// reason, or at its expiry.
func (c *Console) endSession(q *request, sid, reason string) {
	if sid != "" {
		if err := c.sessions.remove(q.r.Context(), sid); err != nil {
			c.logger.ErrorContext(q.r.Context(), "console: end session", "reason", reason, "error", err)
		}
		c.setCookie(q.w, q.r, q.base, sessionCookie, "")
	}
	target := q.base + "/signin"
	if reason != "" {
		target += "?ended=" + reason
	}
	http.Redirect(q.w, q.r, target, http.StatusSeeOther)
}

// canView reports whether p may see keys: apikey:view, in its workspace
// if bound to one.
func canView(p *keygate.Principal) bool {
	return p.SuperAdmin || p.Permissions.Allows(permission.MustParse(keygate.PermissionViewKeys))
}

// keyPrincipal returns the principal of a key session, as the Manager
// refreshes it from rec, the key's record, (Manager.Refresh: the key's
// current permissions, workspace, expiry and limits; refused once it is
// revoked, disabled, deleted, expired or its secret replaced), checked
// against the key's IP allow-list from addr; or the reason the session
// ends; or the store's failure. No token is kept and no use is taken.
func (c *Console) keyPrincipal(ctx context.Context, rec *store.Key, signedIn keygate.Principal, addr netip.Addr, now time.Time) (keygate.Principal, string, error) {
	p, err := c.manager.Refresh(ctx, signedIn)
	var d *keygate.DeniedError
	switch {
	case errors.As(err, &d):
		switch {
		case !rec.RevokedAt.IsZero():
			return keygate.Principal{}, "revoked", nil
		case !rec.DisabledAt.IsZero():
			return keygate.Principal{}, "disabled", nil
		case !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt):
			return keygate.Principal{}, "key-expired", nil
		}
		return keygate.Principal{}, "regenerated", nil
	case errors.Is(err, keygate.ErrUnavailable):
		return keygate.Principal{}, "", err
	case err != nil:
		return keygate.Principal{}, "unresolved", nil
	}
	if len(rec.AllowedCIDRs) > 0 && !allowedFrom(rec, addr) {
		return keygate.Principal{}, "address", nil
	}
	if !canView(&p) {
		return keygate.Principal{}, "no-view", nil
	}
	return p, "", nil
}

// allowedFrom reports whether rec's IP allow-list holds addr.
func allowedFrom(rec *store.Key, addr netip.Addr) bool {
	for _, p := range rec.AllowedCIDRs {
		if addr.IsValid() && p.Contains(addr) {
			return true
		}
	}
	return false
}

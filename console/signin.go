package console

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
)

// signinData is the sign-in page's.
type signinData struct {
	Token  string // the form's anti-forgery token, not an API token
	Notice string
}

// signInPage serves GET /signin.
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	base := basePath(r)
	if c.principal != nil {
		if _, ok := c.principal(r); ok {
			http.Redirect(w, r, base+"/", http.StatusSeeOther)
			return
		}
	}
	c.renderSignIn(w, r, http.StatusOK, endedReasons[r.URL.Query().Get("ended")], "", false)
}

// renderSignIn renders the sign-in form with a notice or an error. The
// form keeps the nonce of the browser's sign-in cookie while it may be
// sent, unless fresh asks for a new one (the old one was used).
func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, notice, problem string, fresh bool) {
	base := basePath(r)
	now := c.now()
	nonce := cookie(r, signinCookie)
	if _, ok := signinIssued(nonce, now); !ok || fresh {
		nonce = newSigninNonce(now)
		c.setCookie(w, r, base, signinCookie, nonce)
	}
	v := &page{Title: "Sign in", Base: base, Data: &signinData{Token: nonce, Notice: notice}}
	if problem != "" {
		v.Problem = &problemView{Heading: "Not signed in.", Message: problem, Fields: map[string]string{"token": problem}}
	}
	c.render(w, r, status, "signin", v)
}

// signIn serves POST /signin: a key holding apikey:view starts a session.
// The token is verified once, here (a use of the key like any other), and
// is kept nowhere: the session holds the key's id and the stored hash of
// the secret presented. The form is good for one sign-in, within an hour:
// its nonce, in a cookie and in the form, is recorded as used in the
// session store, so that no instance takes it again.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if !c.parseForm(w, r, nil) {
		return
	}
	ctx, now, addr := r.Context(), c.now(), c.clientAddr(r)
	if wait, blocked := c.throttle.Blocked(addr); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		c.renderSignIn(w, r, http.StatusTooManyRequests, "", "Too many failed sign-ins from your address. Try again in "+
			waitWords(wait)+".", false)
		return
	}
	nonce := cookie(r, signinCookie)
	issued, fresh := signinIssued(nonce, now)
	if !fresh || !equalTokens(nonce, r.PostForm.Get("csrf")) {
		c.renderSignIn(w, r, http.StatusForbidden, "", "This form has expired or did not come from this console. Enter your token again.", true)
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		c.renderSignIn(w, r, http.StatusBadRequest, "", "Enter an API token.", false)
		return
	}
	key, err := c.manager.VerifyFrom(ctx, token, addr)
	if err != nil {
		c.throttle.Record(addr, err)
		status, msg := signInRefusal(err)
		if status >= 500 {
			c.logger.ErrorContext(ctx, "console: sign-in: key store failed", "error", err)
		}
		c.renderSignIn(w, r, status, "", msg, false)
		return
	}
	p := key.Principal()
	if !canView(&p) {
		c.renderSignIn(w, r, http.StatusForbidden, "", "This key lacks "+keygate.PermissionViewKeys+
			", so it cannot sign in to the console. Ask an admin for a key that holds it.", false)
		return
	}
	keyID, secret, ok := p.Binding()
	if !ok {
		c.logger.ErrorContext(ctx, "console: sign-in: a verified key's principal has no binding", "key_id", key.ID)
		c.renderSignIn(w, r, http.StatusInternalServerError, "", "The console failed to sign you in.", false)
		return
	}
	if ok, err := c.sessions.useSigninNonce(ctx, nonce, issued, now); err != nil || !ok {
		if err != nil {
			c.logger.ErrorContext(ctx, "console: sign-in", "error", err)
			c.renderSignIn(w, r, http.StatusServiceUnavailable, "", sessionsDown, false)
			return
		}
		c.throttle.Record(addr, fmt.Errorf("console: sign-in form sent again: %w", keygate.ErrInvalid))
		c.renderSignIn(w, r, http.StatusForbidden, "", "This form was already used to sign in. Enter your token again.", true)
		return
	}
	rec := &key.Key
	sid, _, err := c.sessions.add(ctx, sessionData{Key: keyID, Secret: secret, Who: rec.Name + " (" + rec.Hint + ")"}, now)
	if err != nil {
		c.logger.ErrorContext(ctx, "console: sign-in", "error", err)
		c.renderSignIn(w, r, http.StatusServiceUnavailable, "", sessionsDown, true)
		return
	}
	base := basePath(r)
	c.setCookie(w, r, base, sessionCookie, sid)
	c.setCookie(w, r, base, signinCookie, "")
	http.Redirect(w, r, base+"/", http.StatusSeeOther)
}

// sessionsDown says that the session store failed.
const sessionsDown = "The session store is unavailable, so you cannot sign in now. Try again in a moment."

// signInRefusal says, in plain words, why a token cannot sign in.
func signInRefusal(err error) (int, string) {
	switch {
	case errors.Is(err, keygate.ErrUnavailable):
		return http.StatusServiceUnavailable, "The key store is unavailable, so your token cannot be checked. Try again in a moment."
	case errors.Is(err, keygate.ErrExpired):
		return http.StatusUnauthorized, "This token has expired."
	case errors.Is(err, keygate.ErrRevoked):
		return http.StatusUnauthorized, "This token has been revoked."
	case errors.Is(err, keygate.ErrUsageExhausted):
		return http.StatusUnauthorized, "This token has no uses left."
	case errors.Is(err, keygate.ErrRateLimited):
		return http.StatusTooManyRequests, "This token is over its rate limit. Wait a moment and try again."
	case errors.Is(err, keygate.ErrAddressDenied):
		return http.StatusForbidden, "This token may not be used from your address."
	}
	return http.StatusUnauthorized, "This is not a valid API token."
}

// signOut serves POST /signout.
func (c *Console) signOut(q *request) error {
	if q.keyID == uuid.Nil {
		// A host application's session is its own to end.
		http.Redirect(q.w, q.r, q.base+"/", http.StatusSeeOther)
		return nil
	}
	sid := cookie(q.r, sessionCookie)
	if err := c.sessions.remove(q.r.Context(), sid); err != nil {
		return err // still signed in: say so
	}
	c.endSession(q, sid, "signed-out")
	return nil
}

// waitWords says how long to wait, rounded up: "1 second", "40 seconds",
// "2 minutes".
func waitWords(d time.Duration) string {
	n, unit := int(math.Ceil(d.Seconds())), "second"
	if n > 90 {
		n, unit = int(math.Ceil(d.Minutes())), "minute"
	}
	if n != 1 {
		unit += "s"
	}
	return strconv.Itoa(n) + " " + unit
}

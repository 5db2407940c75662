package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Cookie names. The session cookie holds only a random session id; the
// sign-in cookie only the sign-in form's one-time nonce.
const (
	sessionCookie = "keygate_console"
	signinCookie  = "keygate_console_signin"
)

// signinFormTTL is how long a sign-in form may be sent after it was
// shown.
const signinFormTTL = time.Hour

// clockSkew is how far the clocks of instances sharing a store may
// differ: a used nonce is remembered this much longer than it could be
// accepted.
const clockSkew = time.Minute

// errSessions marks a failure of the session store.
var errSessions = errors.New("console: session store unavailable")

// sessionData is what a session carries, as the store keeps it (JSON).
// It never changes after sign-in; the flash message and the expiry are
// kept apart.
type sessionData struct {
	// CSRF is the synchronizer token every change must carry; it also
	// signs the session's form nonces.
	CSRF string `json:"csrf"`
	// Key is the key signed in with (key sessions), and Secret the stored
	// hash of the secret it signed in with (keygate.Principal.Binding):
	// the Manager rebuilds the principal from them on every request
	// (Manager.Refresh), and ends the session when the key is revoked,
	// disabled, deleted, expired or regenerated.
	Key    uuid.UUID `json:"key,omitzero"`
	Secret []byte    `json:"secret,omitempty"`
	// Principal is the host application's principal (host sessions).
	Principal string `json:"principal,omitempty"`
	// Who names the signed-in key or user in the header.
	Who string `json:"who"`
	// Created is when the session began, for Config.SessionMaxAge.
	Created time.Time `json:"created"`
}

// session is one signed-in browser, as read for a request.
type session struct {
	sessionData
	// id is the SHA-256 of the cookie's session id: the store's key.
	id      []byte
	owner   string
	flash   string
	expires time.Time
}

// owner is what bounds the sessions of d: its key, or its host user (a
// digest of a user id too long for the stores' 255 bytes).
func (d *sessionData) owner() string {
	switch {
	case d.Key != uuid.Nil:
		return "key:" + d.Key.String()
	case len(d.Principal) > 200:
		return "host-sha256:" + hex.EncodeToString(digest(d.Principal))
	}
	return "host:" + d.Principal
}

// sessions reads and writes sessions in a SessionStore. It is safe for
// concurrent use.
type sessions struct {
	store  SessionStore
	ttl    time.Duration
	maxAge time.Duration
	perKey int
	logger *slog.Logger
}

// randomToken returns 32 random bytes in base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// digest returns the SHA-256 of the parts, each with its length, under
// which the store keeps a session id or nonce.
func digest(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return h.Sum(nil)
}

// storeError wraps a failure of the session store.
func storeError(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", errSessions, op, err)
}

// expiry returns when a session created at created, used at now, ends:
// after the idle TTL, and never past the maximum age.
func (ss *sessions) expiry(created, now time.Time) time.Time {
	exp := now.Add(ss.ttl)
	if end := created.Add(ss.maxAge); end.Before(exp) {
		exp = end
	}
	return exp
}

// add starts a session carrying d and returns its id, for the cookie,
// and the session.
func (ss *sessions) add(ctx context.Context, d sessionData, now time.Time) (string, *session, error) {
	sid := randomToken()
	d.CSRF, d.Created = randomToken(), now
	data, err := json.Marshal(&d)
	if err != nil {
		return "", nil, fmt.Errorf("console: encode session: %w", err)
	}
	s := &session{sessionData: d, id: digest("session", sid), owner: d.owner(), expires: ss.expiry(now, now)}
	if err := ss.store.CreateSession(ctx, s.id, s.owner, data, now, s.expires, ss.perKey); err != nil {
		return "", nil, storeError("create session", err)
	}
	return sid, s, nil
}

// get returns the live session of id, keeping it alive, or nil.
func (ss *sessions) get(ctx context.Context, sid string, now time.Time) (*session, error) {
	if sid == "" || len(sid) > 64 {
		return nil, nil
	}
	s := &session{id: digest("session", sid)}
	data, flash, expires, err := ss.store.Session(ctx, s.id, now)
	switch {
	case err != nil:
		return nil, storeError("read session", err)
	case data == nil:
		return nil, nil
	}
	if err := json.Unmarshal(data, &s.sessionData); err != nil || s.CSRF == "" {
		ss.logger.ErrorContext(ctx, "console: a stored session does not decode; it is ended", "error", err)
		return nil, nil
	}
	if !now.Before(s.Created.Add(ss.maxAge)) {
		return nil, nil
	}
	s.owner, s.flash, s.expires = s.sessionData.owner(), flash, expires
	// The expiry moves in steps, not on every request: a write per page
	// viewed would cost a shared store more than the rest of the page.
	next := ss.expiry(s.Created, now)
	if next.Sub(expires) >= min(ss.ttl/10, time.Minute) {
		if err := ss.store.TouchSession(ctx, s.id, s.owner, now, next); err != nil {
			return nil, storeError("touch session", err)
		}
		s.expires = next
	}
	return s, nil
}

// remove ends the session of id.
func (ss *sessions) remove(ctx context.Context, sid string) error {
	if err := ss.store.DeleteSession(ctx, digest("session", sid)); err != nil {
		return storeError("delete session", err)
	}
	return nil
}

// setFlash leaves msg for s's next page. A store failure loses the
// message only, after the change it tells of was made: it is logged.
func (ss *sessions) setFlash(ctx context.Context, s *session, msg string) {
	if err := ss.store.SetFlash(ctx, s.id, msg); err != nil {
		ss.logger.ErrorContext(ctx, "console: session store failed: flash message lost", "error", err)
	}
}

// takeFlash returns s's message and clears it, or "" when there is none
// or another request took it.
func (ss *sessions) takeFlash(ctx context.Context, s *session) string {
	if s.flash == "" {
		return ""
	}
	ok, err := ss.store.TakeFlash(ctx, s.id, s.flash)
	if err != nil {
		ss.logger.ErrorContext(ctx, "console: session store failed: flash message not shown", "error", err)
		return ""
	}
	if !ok {
		return ""
	}
	return s.flash
}

// newNonce returns a one-time token for a form of s: a random part and
// its MAC under s's anti-forgery token, so that s accepts only the
// nonces it issued. Nothing is stored until it is used.
func (ss *sessions) newNonce(s *session) string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	r := base64.RawURLEncoding.EncodeToString(b)
	return r + "." + nonceMAC(s.CSRF, r)
}

// nonceMAC is the MAC of a form nonce's random part r under key.
func nonceMAC(key, r string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte("form-nonce:" + r))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// useNonce consumes n, a nonce of s's forms, and reports whether it was
// s's and unused: of two requests carrying one nonce, on any instances,
// one gets true.
func (ss *sessions) useNonce(ctx context.Context, s *session, n string, now time.Time) (bool, error) {
	r, mac, ok := strings.Cut(n, ".")
	if !ok || len(n) > 64 || !equalTokens(nonceMAC(s.CSRF, r), mac) {
		return false, nil
	}
	// A nonce is good for as long as its session lives.
	ok, err := ss.store.UseNonce(ctx, digest("form", n), now, s.Created.Add(ss.maxAge+clockSkew))
	if err != nil {
		return false, storeError("use nonce", err)
	}
	return ok, nil
}

// newSigninNonce returns the nonce of a sign-in form shown at now: a
// random part and the time.
func newSigninNonce(now time.Time) string {
	return randomToken() + "." + strconv.FormatInt(now.Unix(), 10)
}

// signinIssued returns when a sign-in nonce was issued, if it is one
// that may still be sent at now.
func signinIssued(nonce string, now time.Time) (time.Time, bool) {
	r, ts, ok := strings.Cut(nonce, ".")
	if !ok || len(r) != 43 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	issued := time.Unix(sec, 0)
	if issued.After(now.Add(clockSkew)) || !now.Before(issued.Add(signinFormTTL)) {
		return time.Time{}, false
	}
	return issued, true
}

// useSigninNonce consumes a sign-in form's nonce, issued at issued, and
// reports whether it was unused.
func (ss *sessions) useSigninNonce(ctx context.Context, nonce string, issued, now time.Time) (bool, error) {
	ok, err := ss.store.UseNonce(ctx, digest("signin", nonce), now, issued.Add(signinFormTTL+clockSkew))
	if err != nil {
		return false, storeError("use sign-in nonce", err)
	}
	return ok, nil
}

// cookiePath is the path of the console's cookies: its mount point, so
// they reach no other part of the host application.
func cookiePath(base string) string {
	if base == "" {
		return "/"
	}
	return base
}

// setCookie sets an HttpOnly, SameSite=Strict cookie for the console's
// path, Secure over TLS or with Config.SecureCookies; an empty value
// deletes it.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, base, name, value string) {
	ck := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     cookiePath(base),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   c.secure || r.TLS != nil,
	}
	if value == "" {
		ck.MaxAge = -1
	}
	http.SetCookie(w, ck)
}

// cookie returns the value of r's cookie name, or "".
func cookie(r *http.Request, name string) string {
	ck, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return ck.Value
}

// equalTokens compares two secrets in constant time; empty never matches.
func equalTokens(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
)

// Cookie names. The session cookie holds only a random session id; the
// sign-in cookie only a random nonce for the sign-in form's
// anti-forgery token.
const (
	sessionCookie = "keygate_console"
	signinCookie  = "keygate_console_signin"
)

// maxNonces is how many one-time form nonces a session keeps: the create
// and regenerate forms open in as many tabs.
const maxNonces = 16

// session is one signed-in browser. csrf, keyID, principal and principalID
// never change after creation; the other fields are guarded by the
// sessions' mutex.
type session struct {
	// csrf is the synchronizer token every change must carry.
	csrf string
	// keyID is the key signed in with (key sessions), and principal the
	// key's principal as verified at sign-in: the Manager refreshes it on
	// every request from the key's record (Manager.Refresh), and ends it
	// when the key is revoked, disabled, deleted, expired or regenerated.
	keyID     uuid.UUID
	principal keygate.Principal
	// principalID is the host application's principal (host sessions).
	principalID string
	// who names the signed-in key or user in the header.
	who string

	created, seen time.Time
	// nonces are the one-time tokens of the create and regenerate forms
	// shown, so that a form sent twice (a reload of the page showing a
	// token) never makes, nor shows, a second token.
	nonces []string
	// flash is a message for the next page.
	flash string
}

// sessions is the in-memory session store, keyed by the SHA-256 of the
// session id. It is safe for concurrent use.
type sessions struct {
	mu        sync.Mutex
	byID      map[[32]byte]*session
	ttl       time.Duration
	maxAge    time.Duration
	max       int
	lastSweep time.Time
}

func newSessions(ttl, maxAge time.Duration, max int) *sessions {
	return &sessions{byID: map[[32]byte]*session{}, ttl: ttl, maxAge: maxAge, max: max}
}

// randomToken returns 32 random bytes in base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// live reports whether s is still within its idle and absolute lifetimes.
func (ss *sessions) live(s *session, now time.Time) bool {
	return now.Sub(s.seen) < ss.ttl && now.Sub(s.created) < ss.maxAge
}

// add stores s and returns its new id.
func (ss *sessions) add(s *session, now time.Time) string {
	id := randomToken()
	s.created, s.seen, s.csrf = now, now, randomToken()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.byID) >= ss.max || now.Sub(ss.lastSweep) > ss.ttl {
		ss.sweep(now)
	}
	ss.byID[sha256.Sum256([]byte(id))] = s
	return id
}

// sweep drops ended sessions and, while the store is full, the one used
// least recently. ss.mu is held.
func (ss *sessions) sweep(now time.Time) {
	ss.lastSweep = now
	for k, s := range ss.byID {
		if !ss.live(s, now) {
			delete(ss.byID, k)
		}
	}
	for len(ss.byID) >= ss.max {
		var oldest [32]byte
		var at time.Time
		for k, s := range ss.byID {
			if at.IsZero() || s.seen.Before(at) {
				oldest, at = k, s.seen
			}
		}
		delete(ss.byID, oldest)
	}
}

// get returns the live session of id and marks it used, or nil.
func (ss *sessions) get(id string, now time.Time) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[k]
	if s == nil {
		return nil
	}
	if !ss.live(s, now) {
		delete(ss.byID, k)
		return nil
	}
	s.seen = now
	return s
}

// remove ends the session of id.
func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	delete(ss.byID, sha256.Sum256([]byte(id)))
	ss.mu.Unlock()
}

// setFlash leaves msg for s's next page.
func (ss *sessions) setFlash(s *session, msg string) {
	ss.mu.Lock()
	s.flash = msg
	ss.mu.Unlock()
}

// takeFlash returns and clears s's message.
func (ss *sessions) takeFlash(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	msg := s.flash
	s.flash = ""
	return msg
}

// newNonce returns a one-time token for a form, forgetting the oldest
// beyond maxNonces.
func (ss *sessions) newNonce(s *session) string {
	n := randomToken()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(s.nonces) >= maxNonces {
		s.nonces = slices.Delete(s.nonces, 0, len(s.nonces)-maxNonces+1)
	}
	s.nonces = append(s.nonces, n)
	return n
}

// useNonce consumes n, reporting whether s held it. Of two requests
// carrying the same nonce, only one gets true.
func (ss *sessions) useNonce(s *session, n string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for i, m := range s.nonces {
		if subtle.ConstantTimeCompare([]byte(m), []byte(n)) == 1 {
			s.nonces = slices.Delete(s.nonces, i, i+1)
			return true
		}
	}
	return false
}

// restoreNonce gives n back to s after the action it guarded failed, so
// that the form may be sent again.
func (ss *sessions) restoreNonce(s *session, n string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(s.nonces) < maxNonces {
		s.nonces = append(s.nonces, n)
	}
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

// signinToken is the sign-in form's anti-forgery token for the nonce of
// the sign-in cookie: there is no session yet to keep a token in.
func (c *Console) signinToken(nonce string) string {
	mac := hmac.New(sha256.New, c.signinKey)
	mac.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// equalTokens compares two secrets in constant time; empty never matches.
func equalTokens(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

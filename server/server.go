package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/permission"
	"github.com/keygate/keygate/store"
)

// DefaultMaxBodyBytes is the request body limit when
// [Config.MaxBodyBytes] is zero.
const DefaultMaxBodyBytes = 64 << 10

// Config configures a [Server]. Manager and Middleware are required.
type Config struct {
	// Manager carries out every request. Required.
	Manager *keygate.Manager
	// Middleware authenticates the caller: every request is verified with
	// it, and refused as it documents when no principal results. Required.
	Middleware *middleware.Middleware
	// Principal returns who acts for a request, or false to refuse it with
	// 401. It runs after Middleware.Verify, so it may read
	// middleware.FromContext, or a user session of the application's own.
	// Default: the verified key's Principal(). It is called concurrently
	// and must be safe for concurrent use.
	Principal func(r *http.Request) (keygate.Principal, bool)
	// MaxBodyBytes bounds request bodies; larger ones are refused with 413.
	// Default [DefaultMaxBodyBytes] (64 KiB).
	MaxBodyBytes int64
	// ErrorHandler writes the problem answering a failed request, after
	// the server has set its headers (Cache-Control, Allow for 405); p.Err
	// holds the underlying error, for logging only. Refusals by the
	// Middleware go to the Middleware's own ErrorHandler. Default:
	// middleware.WriteProblem. It must be safe for concurrent use.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, p *middleware.Problem)
	// TrustedOrigins are the origins ("https://admin.example.com") of
	// browser front ends, served from another origin, that may change
	// keys; cross-origin changes from any other origin are refused (see
	// the package documentation on cross-site request forgery).
	TrustedOrigins []string
}

// Server is the REST API for managing keys: an http.Handler serving the
// routes listed in the package documentation, relative to its root, so it
// can be mounted under a prefix with http.StripPrefix. Every response
// carries Cache-Control: no-store. A Server is immutable after [New] and
// safe for concurrent use.
type Server struct {
	manager   *keygate.Manager
	mw        *middleware.Middleware
	principal func(r *http.Request) (keygate.Principal, bool)
	maxBody   int64
	onError   func(w http.ResponseWriter, r *http.Request, p *middleware.Problem)
	handler   http.Handler
	// verifyRoute is what handler does for POST /keys/verify, without
	// matching the path against every pattern: the route of every remote
	// verification.
	verifyRoute http.Handler
	// unclean serves paths that are not clean, which ServeMux would
	// redirect before authentication: 404 no_route once authenticated.
	unclean http.Handler
	// buffers holds *[]byte of verifyBuffer bytes or more, for the bodies
	// of POST /keys/verify.
	buffers sync.Pool
}

// verifyBuffer is the size of the buffers of POST /keys/verify: larger
// than any plain request body (the longest token and permission, a
// workspace and an IPv6 address) and than most verdicts.
const verifyBuffer = 1 << 10

// New returns a Server for cfg, or an error wrapping [ErrInvalidConfig]
// when cfg lacks its Manager or Middleware or has a negative MaxBodyBytes.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Manager == nil:
		return nil, fmt.Errorf("%w: Config.Manager is required", ErrInvalidConfig)
	case cfg.Middleware == nil:
		return nil, fmt.Errorf("%w: Config.Middleware is required", ErrInvalidConfig)
	case cfg.MaxBodyBytes < 0:
		return nil, fmt.Errorf("%w: Config.MaxBodyBytes is negative", ErrInvalidConfig)
	}
	s := &Server{
		manager:   cfg.Manager,
		mw:        cfg.Middleware,
		principal: cfg.Principal,
		maxBody:   cfg.MaxBodyBytes,
		onError:   cfg.ErrorHandler,
	}
	s.buffers.New = func() any {
		b := make([]byte, 0, verifyBuffer)
		return &b
	}
	if s.principal == nil {
		s.principal = keyPrincipal
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.onError == nil {
		s.onError = middleware.WriteProblem
	}
	mux := http.NewServeMux()
	mux.Handle("POST /keys/verify", s.route(s.verify))
	mux.Handle("POST /keys/import", s.route(s.importKeys))
	mux.Handle("GET /roles", s.route(s.roles))
	mux.Handle("POST /keys", s.route(s.create))
	mux.Handle("GET /keys", s.route(s.list))
	mux.Handle("GET /keys/{id}", s.route(s.get))
	mux.Handle("PATCH /keys/{id}", s.route(s.update))
	mux.Handle("DELETE /keys/{id}", s.route(s.delete))
	mux.Handle("POST /keys/{id}/regenerate", s.route(s.regenerate))
	mux.Handle("POST /keys/{id}/revoke", s.route(s.revoke))
	mux.Handle("GET /keys/{id}/privileges", s.route(s.privileges))
	mux.Handle("GET /keys/{id}/usage", s.route(s.usage))
	mux.Handle("POST /keys/{id}/disable", s.route(s.disable))
	mux.Handle("POST /keys/{id}/enable", s.route(s.enable))
	s.routeIdentities(mux)
	// Without these, ServeMux would answer unknown paths and methods in
	// plain text, before authentication.
	mux.Handle("/keys", s.route(methodNotAllowed("GET, HEAD, POST")))
	// Also the fallback of /keys/verify and /keys/import: see pathID.
	mux.Handle("/keys/{id}", s.route(func(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
		if _, err := keyPathID(w, r); err != nil {
			return err
		}
		return methodNotAllowed("GET, HEAD, PATCH, DELETE")(w, r, by)
	}))
	mux.Handle("/roles", s.route(methodNotAllowed("GET, HEAD")))
	mux.Handle("/keys/{id}/regenerate", s.route(methodNotAllowed("POST")))
	mux.Handle("/keys/{id}/revoke", s.route(methodNotAllowed("POST")))
	mux.Handle("/keys/{id}/privileges", s.route(methodNotAllowed("GET, HEAD")))
	mux.Handle("/keys/{id}/usage", s.route(methodNotAllowed("GET, HEAD")))
	mux.Handle("/keys/{id}/disable", s.route(methodNotAllowed("POST")))
	mux.Handle("/keys/{id}/enable", s.route(methodNotAllowed("POST")))
	mux.Handle("/", s.route(noRoute))
	// Browsers send a user's cookies with cross-site form posts, so a
	// Config.Principal reading a cookie session could be made to act for
	// the user (CSRF): refuse cross-origin unsafe requests from browsers.
	// Requests without Sec-Fetch-Site or Origin, such as those of
	// non-browser clients, pass.
	csrf := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("%w: trusted origin: %w", ErrInvalidConfig, err)
		}
	}
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.onError(w, r, problemFor(&requestError{http.StatusForbidden, CodeCrossOrigin,
			"Cross-origin requests from browsers may not change keys."}))
	}))
	s.handler = csrf.Handler(s.mw.Verify(mux))
	verify := s.route(s.verify)
	s.verifyRoute = csrf.Handler(s.mw.Verify(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Pattern = "POST /keys/verify" // as the mux sets it (TestVerifyRoutePattern)
		verify.ServeHTTP(w, r)
	})))
	s.unclean = csrf.Handler(s.mw.Verify(s.route(noRoute)))
	return s, nil
}

// ServeHTTP serves the API. A path that is not clean (see path.Clean),
// such as "//keys" or "/keys/", names no route: it is answered 404
// no_route once authenticated, never redirected.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if p := r.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p {
		s.unclean.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == "/keys/verify" && r.URL.RawPath == "" {
		// As the mux would route it, without matching every pattern (an
		// escaped path, such as "/keys%2Fverify", goes to the mux).
		s.verifyRoute.ServeHTTP(w, r)
		return
	}
	s.handler.ServeHTTP(w, r)
}

// noRoute answers a path that no route has.
func noRoute(http.ResponseWriter, *http.Request, keygate.Principal) error {
	return &requestError{http.StatusNotFound, CodeNoRoute, "No route has this path."}
}

// keyPrincipal is the default Config.Principal: the verified key's.
func keyPrincipal(r *http.Request) (keygate.Principal, bool) {
	key, ok := middleware.FromContext(r.Context())
	if !ok {
		return keygate.Principal{}, false
	}
	return key.Principal(), true
}

// handler serves one route on behalf of by. An error is answered by
// [problemFor]; a handler returns one only before writing anything.
type handler func(w http.ResponseWriter, r *http.Request, by keygate.Principal) error

// route authenticates the caller, then runs h.
func (s *Server) route(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		by, ok := s.principal(r)
		if !ok {
			s.unauthenticated(w, r)
			return
		}
		if err := h(w, r, by); err != nil {
			s.onError(w, r, problemFor(err))
		}
	})
}

// unauthenticated refuses a request without a principal: as the
// Middleware refuses it when its key is missing or bad, else 401
// unauthenticated.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request) {
	s.mw.RequireKey(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.onError(w, r, problemFor(&requestError{http.StatusUnauthorized, CodeUnauthenticated,
			"The request's credentials do not identify anyone allowed to manage keys."}))
	})).ServeHTTP(w, r)
}

// methodNotAllowed answers a known path with an unsupported method.
func methodNotAllowed(allow string) handler {
	return func(w http.ResponseWriter, _ *http.Request, _ keygate.Principal) error {
		w.Header().Set("Allow", allow)
		return &requestError{http.StatusMethodNotAllowed, CodeMethodNotAllowed, "This method is not allowed on this path; see the Allow header."}
	}
}

// create serves POST /keys.
func (s *Server) create(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	var in CreateRequest
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	req, err := in.request()
	if err != nil {
		return err
	}
	c, err := s.manager.Create(r.Context(), by, req)
	if err != nil {
		return err
	}
	// Relative to the request URL ".../keys", whatever the mount prefix.
	w.Header().Set("Location", "keys/"+c.Key.ID.String())
	setETag(w, c.Key)
	return writeJSON(w, http.StatusCreated, created{Key: newKey(c.Key), Token: c.Token.Reveal()})
}

// importKeys serves POST /keys/import: one result per row, a refused row
// answered as its own problem within the 200.
func (s *Server) importKeys(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	var in ImportRequest
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	if len(in.Keys) == 0 || len(in.Keys) > keygate.MaxImportBatch {
		return invalidField(fmt.Sprintf("The keys field must hold 1 to %d keys.", keygate.MaxImportBatch))
	}
	out := ImportResponse{Results: make([]ImportResult, len(in.Keys))}
	rows := make([]keygate.ImportRequest, 0, len(in.Keys))
	index := make([]int, 0, len(in.Keys)) // rows[i] is in.Keys[index[i]]
	for i := range in.Keys {
		row, err := in.Keys[i].request()
		if err != nil {
			out.Results[i] = ImportResult{Status: string(keygate.ImportFailed), Error: rowProblem(err)}
			continue
		}
		rows = append(rows, row)
		index = append(index, i)
	}
	if len(rows) > 0 {
		results, err := s.manager.Import(r.Context(), by, rows)
		if err != nil {
			return err
		}
		for j, res := range results {
			o := ImportResult{Status: string(res.Status)}
			if res.Key != nil {
				o.Key = newKey(res.Key)
			}
			if res.Err != nil {
				o.Error = rowProblem(res.Err)
			}
			out.Results[index[j]] = o
		}
	}
	for _, res := range out.Results {
		switch keygate.ImportStatus(res.Status) {
		case keygate.ImportCreated:
			out.Imported++
		case keygate.ImportDuplicate:
			out.Duplicates++
		default:
			out.Failed++
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// rowProblem is the problem of one refused import row: the one a request
// refused for err would answer, without the error behind it.
func rowProblem(err error) *middleware.Problem {
	p := problemFor(err)
	p.Err = nil
	return p
}

// verify serves POST /keys/verify: the verdict about a token presented
// to another service. Its status is about the caller and the body; the
// verdict, valid or not, is a 200.
func (s *Server) verify(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	var in VerifyRequest
	if err := s.decodeVerify(w, r, &in); err != nil {
		return err
	}
	req := keygate.VerifyRequest{Token: in.Token, Permission: in.Permission, Workspace: in.Workspace, Cost: in.Cost, Limits: in.Limits}
	if err := checkMeter(&in); err != nil {
		return err
	}
	if in.Address != "" {
		addr, err := netip.ParseAddr(in.Address)
		if err != nil {
			return invalidField("The address field must be an IPv4 or IPv6 address.")
		}
		req.Address = addr
	}
	v, err := s.manager.VerifyFor(r.Context(), by, req)
	if err != nil {
		return err
	}
	out := VerifyResponse{Valid: v.Err == nil}
	var key Key // on the stack: appendVerdict writes it
	var perms permission.Set
	if v.Err != nil {
		out.Code = middleware.Code(v.Err)
		var rl *keygate.RateLimitError
		if errors.As(v.Err, &rl) {
			out.RetryAfter = max(int64(math.Ceil(rl.RetryAfter.Seconds())), 1)
			if rl.Limit.Requests > 0 {
				out.RateLimit = rateStatus(keygate.RateStatus{RateLimit: rl.Limit, Reset: rl.Reset}, rl.Reset > 0)
				out.RateLimit.Name, out.RateLimit.Identity = rl.Name, rl.Identity
			}
		}
	} else {
		key.fill(&v.Key.Key)
		out.Key = &key
		if len(v.Key.PrevHash) > 0 {
			// The key's previous secret, if that is what was verified,
			// stops at the end of its grace period: the key's principal
			// says when (its expiry, or the end of the grace when sooner),
			// so that a remote service caching the verdict stops in time.
			out.Key.ExpiresAt = v.Key.Principal().ExpiresAt
		}
		perms = v.Key.Permissions() // out.Permissions, written as they are
		if perms == nil {
			perms = permission.Set{}
		}
		out.SuperAdmin = v.Key.SuperAdmin()
		if st, ok := s.manager.RateStatus(r.Context(), v.Key); ok {
			out.RateLimit = rateStatus(st, true)
		}
	}
	out.Report = verifyReport(&v.Report)
	bp := s.buffers.Get().(*[]byte)
	defer s.buffers.Put(bp)
	body, err := appendVerdict((*bp)[:0], &out, perms)
	if err != nil {
		return fmt.Errorf("server: encode response: %w", err)
	}
	body = append(body, '\n')
	if cap(body) <= 64<<10 {
		*bp = body[:0] // keep what it grew to, within reason
	}
	writeBody(w, http.StatusOK, body)
	return nil
}

// checkMeter checks the cost and the limit names of in, as
// keygate.VerifyOptions bounds them, with details that never quote them.
func checkMeter(in *VerifyRequest) error {
	if in.Cost < 0 || in.Cost > keygate.MaxCost {
		return invalidField(fmt.Sprintf("The cost field must be an integer from 1 to %d.", keygate.MaxCost))
	}
	if len(in.Limits) > MaxVerifyLimits {
		return invalidField(fmt.Sprintf("The limits field names at most %d rate limits.", MaxVerifyLimits))
	}
	for i, name := range in.Limits {
		if !keygate.ValidLimitName(name) {
			return invalidField(fmt.Sprintf("limits[%d] is not a rate limit's name: 1 to %d lowercase letters, digits, '_', '-' or '.', starting with a letter.",
				i, keygate.MaxRateLimitName))
		}
	}
	return nil
}

// verifyReport returns r for the wire; nil when it checked no rate limit
// and drew from no balance.
func verifyReport(r *keygate.Report) *VerifyReport {
	if len(r.Limits) == 0 && r.Uses == nil && r.Credits == nil {
		return nil
	}
	out := &VerifyReport{Cost: r.Cost, Uses: balance(r.Uses), Credits: balance(r.Credits)}
	if len(r.Limits) > 0 {
		out.Limits = make([]LimitReport, len(r.Limits))
		for i, l := range r.Limits {
			out.Limits[i] = LimitReport{Name: l.Limit.Name, Identity: l.Identity, Requests: l.Limit.Requests, Window: Duration(l.Limit.Window),
				OnDemand: l.Limit.OnDemand, Allowed: l.Allowed, Remaining: l.Remaining, Reset: Duration(l.Reset), RetryAfter: Duration(l.RetryAfter)}
		}
	}
	return out
}

// balance returns b for the wire; nil stays nil.
func balance(b *keygate.Balance) *Balance {
	if b == nil {
		return nil
	}
	return &Balance{Remaining: b.Remaining, NextRefill: b.NextRefill}
}

// rateStatus returns st for the wire; its Reset only when withReset.
func rateStatus(st keygate.RateStatus, withReset bool) *RateStatus {
	out := &RateStatus{Requests: st.Requests, Window: Duration(st.Window), Remaining: st.Remaining}
	if withReset {
		reset := Duration(st.Reset)
		out.Reset = &reset
	}
	return out
}

// roles serves GET /roles.
func (s *Server) roles(w http.ResponseWriter, _ *http.Request, by keygate.Principal) error {
	roles, err := s.manager.ListRoles(by)
	if err != nil {
		return err
	}
	out := RoleList{Roles: make([]Role, len(roles))}
	for i, role := range roles {
		out.Roles[i] = Role{
			Name:              role.Name,
			Description:       role.Description,
			Permissions:       role.Permissions.Strings(),
			RequiresWorkspace: role.RequiresWorkspace,
			SuperAdmin:        role.SuperAdmin,
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// list serves GET /keys.
func (s *Server) list(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	q := r.URL.Query()
	req := keygate.ListRequest{Workspace: q.Get("workspace"), Owner: q.Get("owner")}
	if v := q.Get("identity_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return invalidField("The identity_id parameter must be an identity's id.")
		}
		req.IdentityID = id
	}
	switch q.Get("revoked") {
	case "", RevokedAny:
		req.Revoked = store.AnyRevoked
	case RevokedActive:
		req.Revoked = store.OnlyActive
	case RevokedOnly:
		req.Revoked = store.OnlyRevoked
	default:
		return invalidField(`The revoked parameter must be "any", "active" or "revoked".`)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return invalidField(fmt.Sprintf("The limit parameter must be an integer from 1 to %d.", store.MaxListLimit))
		}
		req.Limit = min(n, store.MaxListLimit)
	}
	if v := q.Get("expiring_within"); v != "" {
		d, err := parseWindow(v)
		if err != nil {
			return invalidField(`The expiring_within parameter must be a number of days such as "7d" or a duration such as "12h".`)
		}
		now := time.Now()
		req.ExpiresAfter, req.ExpiresBefore = now, now.Add(d)
	}
	if v := q.Get("after"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return invalidField(`The after parameter must be the "next" cursor of a previous page.`)
		}
		req.After = id
	}
	page, err := s.manager.List(r.Context(), by, req)
	if err != nil {
		return err
	}
	out := KeyList{Keys: make([]*Key, len(page.Keys))}
	for i, k := range page.Keys {
		out.Keys[i] = newKey(k)
	}
	if page.Next != (uuid.UUID{}) {
		out.Next = page.Next.String()
	}
	return writeJSON(w, http.StatusOK, out)
}

// get serves GET /keys/{id}.
func (s *Server) get(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	id, err := keyPathID(w, r)
	if err != nil {
		return err
	}
	rec, err := s.manager.Get(r.Context(), by, id)
	if err != nil {
		return err
	}
	return writeKey(w, rec)
}

// agreeVersion returns the version a PATCH asks for: that of its If-Match
// header (header, 0 when absent) or of its body's version field (body),
// which must agree when both are given.
func agreeVersion(header, body int64) (int64, error) {
	switch {
	case header == 0:
		return body, nil
	case body == 0 || body == header:
		return header, nil
	}
	return 0, invalidField("The If-Match header and the version field disagree.")
}

// update serves PATCH /keys/{id}.
func (s *Server) update(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	id, err := keyPathID(w, r)
	if err != nil {
		return err
	}
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	var in UpdateRequest
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	if in.Version, err = agreeVersion(version, in.Version); err != nil {
		return err
	}
	req, err := in.request()
	if err != nil {
		return err
	}
	rec, err := s.manager.Update(r.Context(), by, id, req)
	if err != nil {
		return err
	}
	return writeKey(w, rec)
}

// regenerate serves POST /keys/{id}/regenerate.
func (s *Server) regenerate(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in RegenerateRequest
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	req, err := in.request()
	if err != nil {
		return err
	}
	c, err := s.manager.Regenerate(r.Context(), by, id, req)
	if err != nil {
		return err
	}
	setETag(w, c.Key)
	return writeJSON(w, http.StatusOK, created{Key: newKey(c.Key), Token: c.Token.Reveal()})
}

// revoke serves POST /keys/{id}/revoke. It reads no body.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	return s.change(w, r, by, s.manager.Revoke)
}

// privileges serves GET /keys/{id}/privileges: the least-privilege
// report of a key.
func (s *Server) privileges(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	window := 30 * 24 * time.Hour
	if v := r.URL.Query().Get("unused_for"); v != "" {
		if window, err = parseWindow(v); err != nil {
			return invalidField(`The unused_for parameter must be a number of days such as "30d" or a duration such as "12h".`)
		}
	}
	rep, err := s.manager.LeastPrivilege(r.Context(), by, id, window)
	if err != nil {
		return err
	}
	out := PrivilegeReport{KeyID: rep.Key.ID, Since: rep.Since, Held: rep.Held, Unused: nonNil(rep.Unused),
		Suggested: nonNil(rep.Suggested), SuggestedWorkspace: rep.SuggestedWorkspace, Exercised: []Exercise{}}
	for _, e := range rep.Exercised {
		out.Exercised = append(out.Exercised, Exercise{Permission: e.Permission, Workspace: e.Workspace, At: e.At})
	}
	return writeJSON(w, http.StatusOK, out)
}

// usage serves GET /keys/{id}/usage: a key's usage history.
func (s *Server) usage(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	req, err := usageQuery(r.URL.Query())
	if err != nil {
		return err
	}
	u, err := s.manager.Usage(r.Context(), by, id, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newUsage(id, u))
}

// usageQuery reads the query parameters of GET /keys/{id}/usage (and of
// the usage routes of other subjects): bucket ([BucketHour], the default,
// or [BucketDay]), and from and to, each an RFC 3339 time or a date
// ("2026-11-01", midnight UTC). Other parameters are ignored. An invalid
// one is a 400 invalid_field problem naming it; the range itself is
// checked by the Manager (keygate.UsageRequest).
func usageQuery(q url.Values) (keygate.UsageRequest, error) {
	var req keygate.UsageRequest
	switch q.Get("bucket") {
	case "", BucketHour:
		req.Bucket = time.Hour
	case BucketDay:
		req.Bucket = 24 * time.Hour
	default:
		return req, invalidField(`The bucket parameter must be "1h" or "1d".`)
	}
	for _, p := range []struct {
		name string
		at   *time.Time
	}{{"from", &req.From}, {"to", &req.To}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, v); err != nil {
				return req, invalidField(fmt.Sprintf(`The %s parameter must be an RFC 3339 time such as "2026-11-01T00:00:00Z" or a date such as "2026-11-01".`, p.name))
			}
		}
		*p.at = t
	}
	return req, nil
}

// newUsage returns the wire form of u, the usage of key id.
func newUsage(id uuid.UUID, u *keygate.Usage) *Usage {
	out := &Usage{KeyID: id, From: u.From, To: u.To, Bucket: BucketHour, Totals: map[string]int64(u.Totals),
		Buckets: make([]UsageBucket, len(u.Buckets))}
	if u.Bucket != time.Hour {
		out.Bucket = BucketDay
	}
	if out.Totals == nil {
		out.Totals = map[string]int64{}
	}
	for i, b := range u.Buckets {
		out.Buckets[i] = UsageBucket{Start: b.Start, Counts: map[string]int64(b.Counts)}
		if b.Counts == nil {
			out.Buckets[i].Counts = map[string]int64{}
		}
	}
	return out
}

// nonNil returns s, or an empty slice for nil, so that JSON has [].
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// disable serves POST /keys/{id}/disable. It reads no body.
func (s *Server) disable(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	return s.change(w, r, by, s.manager.Disable)
}

// enable serves POST /keys/{id}/enable. It reads no body.
func (s *Server) enable(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	return s.change(w, r, by, s.manager.Enable)
}

// change serves a route that applies op to the key of the path and
// answers the key.
func (s *Server) change(w http.ResponseWriter, r *http.Request, by keygate.Principal,
	op func(context.Context, keygate.Principal, uuid.UUID) (*store.Key, error)) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rec, err := op(r.Context(), by, id)
	if err != nil {
		return err
	}
	return writeKey(w, rec)
}

// delete serves DELETE /keys/{id}.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	id, err := keyPathID(w, r)
	if err != nil {
		return err
	}
	if err := s.manager.Delete(r.Context(), by, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseWindow parses "<n>d" (days, up to 36500) or a positive Go
// duration.
func parseWindow(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 36500 {
			return 0, errors.New("bad days")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("bad duration")
	}
	return d, nil
}

// pathID returns the {id} of r's path. An id that is not a UUID names no
// key: 404.
func pathID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.UUID{}, notFound()
	}
	return id, nil
}

// keyPathID is pathID for the routes of /keys/{id}, which /keys/verify
// and /keys/import reach with any method but POST: that is 405.
func keyPathID(w http.ResponseWriter, r *http.Request) (uuid.UUID, error) {
	if id := r.PathValue("id"); id == "verify" || id == "import" {
		return uuid.UUID{}, methodNotAllowed("POST")(w, r, keygate.Principal{})
	}
	return pathID(r)
}

// ifMatch returns the version in r's If-Match header: 0 when there is none
// or it is "*"; an error when it is not one entity tag holding a version
// exactly as the ETag header writes it, such as "3" (quotes included; not
// "+3" nor "03", which as entity tags differ from "3"), or when the header
// is sent more than once (the lines would form a list).
func ifMatch(r *http.Request) (int64, error) {
	lines := r.Header.Values("If-Match")
	v := ""
	if len(lines) > 0 {
		v = strings.Trim(lines[0], " \t")
	}
	if len(lines) <= 1 && (v == "" || v == "*") {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	if err != nil || n < 1 || v != `"`+strconv.FormatInt(n, 10)+`"` || len(lines) > 1 {
		return 0, invalidField(`The If-Match header must be one version in quotes, such as "3", from the ETag header.`)
	}
	return n, nil
}

// decode reads r's body, which must be one JSON value of application/json
// of at most s.maxBody bytes, into v, rejecting unknown fields.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if err := jsonBody(r); err != nil {
		return err
	}
	return s.decodeFrom(http.MaxBytesReader(w, r.Body, s.maxBody), v)
}

// jsonBody checks that r's body is application/json.
func jsonBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "application/json" {
		return nil // what ParseMediaType would find, without its map
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &requestError{http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "The request body must be application/json."}
	}
	return nil
}

// decodeVerify is decode for the body of POST /keys/verify. The usual body
// (see parseVerify) is read into a pooled buffer and parsed without
// reflection, its strings sharing one allocation; any other goes to
// decodeFrom as decode would send it: the bytes read, then the rest of the
// body or the error that ended the reading, so that it is answered
// exactly as decode answers it.
func (s *Server) decodeVerify(w http.ResponseWriter, r *http.Request, in *VerifyRequest) error {
	if err := jsonBody(r); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, s.maxBody)
	bp := s.buffers.Get().(*[]byte)
	defer s.buffers.Put(bp)
	// Never more than the limit: reading up to it does not trip it.
	buf := (*bp)[:min(int64(cap(*bp)), s.maxBody)]
	n, err := io.ReadFull(body, buf)
	var rest io.Reader = body
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// The whole body, shorter than buf.
		if parseVerify(string(buf[:n]), in) {
			return nil
		}
		rest = eofReader{}
	case err != nil:
		rest = errReader{err}
	}
	// Decoded apart, so that in, which the interface would move to the
	// heap, stays where the caller has it.
	out := new(VerifyRequest)
	err = s.decodeFrom(io.MultiReader(bytes.NewReader(buf[:n]), rest), out)
	*in = *out
	return err
}

// eofReader is an empty reader.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// errReader is a reader failing with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// decodeFrom decodes body, which must hold one JSON value, into v,
// rejecting unknown fields, as decode documents.
func (s *Server) decodeFrom(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return s.jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return s.jsonError(err)
		}
		return invalidJSON("The request body must hold one JSON object and nothing after it.")
	}
	return nil
}

// jsonError returns the refusal of a body that failed to decode with err.
// Its detail names the problem precisely but never quotes the body.
func (s *Server) jsonError(err error) error {
	var (
		tooBig    *http.MaxBytesError
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return &requestError{http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
			fmt.Sprintf("The request body is larger than %d bytes.", s.maxBody)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The connection's read deadline (http.Server.ReadTimeout) passed
		// while the body was still arriving.
		return &requestError{http.StatusRequestTimeout, CodeRequestTimeout,
			"The request body did not arrive in time; nothing was changed."}
	case errors.Is(err, ErrInvalidDuration):
		return err
	case errors.Is(err, io.EOF):
		return invalidJSON("The request body is empty; it must be a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidJSON("The request body ends in the middle of a JSON value.")
	case errors.As(err, &syntax):
		return invalidJSON(fmt.Sprintf("The request body is not valid JSON (syntax error at byte %d).", syntax.Offset))
	case errors.As(err, &wrongType):
		switch {
		case wrongType.Field == "":
			return invalidJSON("The request body must be a JSON object.")
		case !safePath(wrongType.Field):
			return invalidJSON("A field of the request body has the wrong type.")
		}
		return invalidJSON(fmt.Sprintf("The field %s must be %s.", wrongType.Field, jsonKind(wrongType.Type.Kind().String())))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, err := strconv.Unquote(name); err == nil && safeName(name) {
			return invalidJSON(fmt.Sprintf("The request body has an unknown field %q.", name))
		}
		return invalidJSON("The request body has an unknown field.")
	}
	return invalidJSON("The request body could not be decoded.")
}

// jsonKind names the JSON type of a Go kind.
func jsonKind(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "slice", kind == "array":
		return "an array"
	}
	return "an object"
}

// safePath reports whether a dotted field path, which holds the client's
// metadata keys, may be quoted in a response.
func safePath(path string) bool {
	for name := range strings.SplitSeq(path, ".") {
		if !safeName(name) {
			return false
		}
	}
	return true
}

// safeName reports whether a field name from the client may be quoted in
// a response: short identifiers only, which no token (at least 52
// characters) can be.
func safeName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// writeKey writes rec with its version as ETag.
func writeKey(w http.ResponseWriter, rec *store.Key) error {
	setETag(w, rec)
	return writeJSON(w, http.StatusOK, newKey(rec))
}

// setETag sets the ETag header to rec's version, for If-Match.
func setETag(w http.ResponseWriter, rec *store.Key) {
	setVersionTag(w, rec.Version)
}

// writeJSON writes v as an application/json response with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("server: encode response: %w", err)
	}
	writeBody(w, status, append(body, '\n'))
	return nil
}

// writeBody writes body, JSON ending in a newline, as an application/json
// response with status. Its three header fields cost one allocation (and
// one for a length of three digits or more): their values share an array,
// each capped so that an append to one cannot overwrite the next, and
// their names are in canonical form, as Header.Set would store them.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	vals := make([]string, 3)
	vals[0], vals[1], vals[2] = "application/json", "nosniff", strconv.Itoa(len(body))
	h := w.Header()
	h["Content-Type"] = vals[0:1:1]
	h["X-Content-Type-Options"] = vals[1:2:2]
	h["Content-Length"] = vals[2:3:3]
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

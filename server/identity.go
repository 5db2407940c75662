package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// routeIdentities registers the routes of identities on mux.
func (s *Server) routeIdentities(mux *http.ServeMux) {
	mux.Handle("POST /identities", s.route(s.createIdentity))
	mux.Handle("GET /identities", s.route(s.listIdentities))
	mux.Handle("GET /identities/{id}", s.route(s.getIdentity))
	mux.Handle("PATCH /identities/{id}", s.route(s.updateIdentity))
	mux.Handle("DELETE /identities/{id}", s.route(s.deleteIdentity))
	mux.Handle("/identities", s.route(methodNotAllowed("GET, HEAD, POST")))
	mux.Handle("/identities/{id}", s.route(func(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
		if _, err := identityPathID(r); err != nil {
			return err
		}
		return methodNotAllowed("GET, HEAD, PATCH, DELETE")(w, r, by)
	}))
}

// createIdentity serves POST /identities.
func (s *Server) createIdentity(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	var in CreateIdentityRequest
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	rec, err := s.manager.CreateIdentity(r.Context(), by, in.request())
	if err != nil {
		return err
	}
	// Relative to the request URL ".../identities", whatever the mount
	// prefix.
	w.Header().Set("Location", "identities/"+rec.ID.String())
	setVersionTag(w, rec.Version)
	return writeJSON(w, http.StatusCreated, newIdentity(rec))
}

// listIdentities serves GET /identities.
func (s *Server) listIdentities(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	q := r.URL.Query()
	req := keygate.IdentityListRequest{Workspace: q.Get("workspace"), ExternalID: q.Get("external_id")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return invalidField(fmt.Sprintf("The limit parameter must be an integer from 1 to %d.", store.MaxListLimit))
		}
		req.Limit = min(n, store.MaxListLimit)
	}
	if v := q.Get("after"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return invalidField(`The after parameter must be the "next" cursor of a previous page.`)
		}
		req.After = id
	}
	page, err := s.manager.ListIdentities(r.Context(), by, req)
	if err != nil {
		return err
	}
	out := IdentityList{Identities: make([]*Identity, len(page.Identities))}
	for i, rec := range page.Identities {
		out.Identities[i] = newIdentity(rec)
	}
	if page.Next != uuid.Nil {
		out.Next = page.Next.String()
	}
	return writeJSON(w, http.StatusOK, out)
}

// getIdentity serves GET /identities/{id}.
func (s *Server) getIdentity(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	id, err := identityPathID(r)
	if err != nil {
		return err
	}
	rec, err := s.manager.GetIdentity(r.Context(), by, id)
	if err != nil {
		return err
	}
	return writeIdentity(w, rec)
}

// updateIdentity serves PATCH /identities/{id}.
func (s *Server) updateIdentity(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	id, err := identityPathID(r)
	if err != nil {
		return err
	}
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	var in UpdateIdentityRequest
	if err := s.decode(w, r, &in); err != nil {
		return err
	}
	if in.Version, err = agreeVersion(version, in.Version); err != nil {
		return err
	}
	rec, err := s.manager.UpdateIdentity(r.Context(), by, id, in.request())
	if err != nil {
		return err
	}
	return writeIdentity(w, rec)
}

// deleteIdentity serves DELETE /identities/{id}.
func (s *Server) deleteIdentity(w http.ResponseWriter, r *http.Request, by keygate.Principal) error {
	id, err := identityPathID(r)
	if err != nil {
		return err
	}
	if err := s.manager.DeleteIdentity(r.Context(), by, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// identityPathID returns the {id} of an identity's path. An id that is
// not a UUID names no identity: 404.
func identityPathID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.UUID{}, &requestError{http.StatusNotFound, CodeIdentityNotFound, identityNotFoundDetail}
	}
	return id, nil
}

// writeIdentity writes rec with its version as ETag.
func writeIdentity(w http.ResponseWriter, rec *store.Identity) error {
	setVersionTag(w, rec.Version)
	return writeJSON(w, http.StatusOK, newIdentity(rec))
}

// setVersionTag sets the ETag header to version, for If-Match.
func setVersionTag(w http.ResponseWriter, version int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
}

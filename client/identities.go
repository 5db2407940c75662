package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"

	"github.com/keygate/keygate/server"
)

// The API's JSON bodies of identities, shared with package server.
type (
	// Identity is an owner of keys, with the limits its keys share.
	Identity = server.Identity
	// IdentityLimits are an identity's named rate limits and credits.
	IdentityLimits = server.IdentityLimits
	// NamedRateLimit allows Requests per Window under a Name.
	NamedRateLimit = server.NamedRateLimit
	// Credits is a balance the identity's keys draw from, and its refill.
	Credits = server.Credits
	// Refill sets a balance to Amount every "day" or "month" (on Day).
	Refill = server.Refill
	// CreateIdentityRequest describes a new identity; ExternalID is
	// required.
	CreateIdentityRequest = server.CreateIdentityRequest
	// UpdateIdentityRequest changes the non-nil fields of an identity; a
	// non-zero Version is sent as If-Match.
	UpdateIdentityRequest = server.UpdateIdentityRequest
	// IdentityLimitsUpdate changes some of an identity's limits.
	IdentityLimitsUpdate = server.IdentityLimitsUpdate
	// CreditsUpdate changes an identity's credits: Remaining sets the
	// balance (negative removes the credits), Refill the schedule (the
	// zero Refill removes it).
	CreditsUpdate = server.CreditsUpdate
	// IdentityList is one page of identities and the cursor of the next.
	IdentityList = server.IdentityList
)

// Identities calls the identity routes of the API (/identities). Get it
// with [Client.Identities]; it is a plain value, safe for concurrent use
// as the Client is.
type Identities struct {
	c *Client
}

// Identities returns the client of the API's identities.
func (c *Client) Identities() Identities {
	return Identities{c: c}
}

// IdentityListOptions filters and pages [Identities.List]. Zero fields are
// left out.
type IdentityListOptions struct {
	// Workspace and ExternalID list only the identities with this
	// workspace, external id.
	Workspace  string
	ExternalID string
	// Limit is the page size, 1 to 1000; 0 means the server's default, 50.
	Limit int
	// After is the cursor: IdentityList.Next of the previous page.
	After string
}

// query encodes o as a query string.
func (o *IdentityListOptions) query() string {
	q := url.Values{}
	for name, v := range map[string]string{"workspace": o.Workspace, "external_id": o.ExternalID, "after": o.After} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// identityPath returns the path of identity id.
func identityPath(id uuid.UUID) string {
	return "identities/" + id.String()
}

// Create creates an identity (POST /identities).
func (s Identities) Create(ctx context.Context, req CreateIdentityRequest) (*Identity, *Response, error) {
	return s.identity(ctx, http.MethodPost, "identities", req, 0)
}

// Get returns identity id (GET /identities/{id}).
func (s Identities) Get(ctx context.Context, id uuid.UUID) (*Identity, *Response, error) {
	return s.identity(ctx, http.MethodGet, identityPath(id), nil, 0)
}

// List returns one page of identities (GET /identities); resp.Next, like
// the list's Next, is the cursor of the following page, "" on the last.
func (s Identities) List(ctx context.Context, opts IdentityListOptions) (*IdentityList, *Response, error) {
	req, err := s.c.newRequest(ctx, http.MethodGet, "identities"+opts.query(), nil)
	if err != nil {
		return nil, nil, err
	}
	list := new(IdentityList)
	resp, err := s.c.do(req, list)
	if err != nil {
		return nil, resp, err
	}
	resp.Next = list.Next
	return list, resp, nil
}

// All returns an iterator over every identity matching opts from
// opts.After on, as [Client.All] iterates keys: a failure is yielded once,
// and a repeated cursor is a failure wrapping [ErrInvalidResponse].
func (s Identities) All(ctx context.Context, opts IdentityListOptions) iter.Seq2[*Identity, error] {
	return func(yield func(*Identity, error) bool) {
		seen := map[string]bool{opts.After: true}
		for {
			list, _, err := s.List(ctx, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, id := range list.Identities {
				if !yield(id, nil) {
					return
				}
			}
			if list.Next == "" {
				return
			}
			if seen[list.Next] {
				yield(nil, fmt.Errorf("%w: GET identities: the server repeated a page cursor", ErrInvalidResponse))
				return
			}
			seen[list.Next] = true
			opts.After = list.Next
		}
	}
}

// Update changes identity id (PATCH /identities/{id}): only the non-nil
// fields of req. A non-zero req.Version is sent as If-Match too; if the
// identity is at another version the call fails with an error matching
// keygate.ErrConflict.
func (s Identities) Update(ctx context.Context, id uuid.UUID, req UpdateIdentityRequest) (*Identity, *Response, error) {
	return s.identity(ctx, http.MethodPatch, identityPath(id), req, req.Version)
}

// Delete deletes identity id (DELETE /identities/{id}). One that keys are
// still in is refused with an error matching keygate.ErrIdentityInUse.
func (s Identities) Delete(ctx context.Context, id uuid.UUID) (*Response, error) {
	req, err := s.c.newRequest(ctx, http.MethodDelete, identityPath(id), nil)
	if err != nil {
		return nil, err
	}
	return s.c.do(req, nil)
}

// identity calls a route answering one Identity, with If-Match: "version"
// when version is not zero.
func (s Identities) identity(ctx context.Context, method, path string, body any, version int64) (*Identity, *Response, error) {
	req, err := s.c.newRequest(ctx, method, path, body)
	if err != nil {
		return nil, nil, err
	}
	if version != 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatInt(version, 10)+`"`)
	}
	out := new(Identity)
	resp, err := s.c.do(req, out)
	if err != nil {
		return nil, resp, err
	}
	if out.ID == uuid.Nil {
		return nil, resp, fmt.Errorf("%w: %s %s: no identity in the answer", ErrInvalidResponse, method, path)
	}
	return out, resp, nil
}

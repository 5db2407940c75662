package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/keygate/keygate/server"
)

type (
	// VerifyRequest asks the server about a token presented to another
	// service.
	VerifyRequest = server.VerifyRequest
	// VerifyResponse is the server's verdict about a token.
	VerifyResponse = server.VerifyResponse
	// VerifyReport is what a verification took, in a VerifyResponse
	// ([Verifier.VerifyWith] returns it as a keygate.Report).
	VerifyReport = server.VerifyReport
	// LimitReport is what is left of one rate limit, in a VerifyReport.
	LimitReport = server.LimitReport
	// Balance is what is left of a key's uses or an identity's credits,
	// in a VerifyReport.
	Balance = server.Balance
	// Role is a role keys may be given.
	Role = server.Role
	// RoleList is the list of roles.
	RoleList = server.RoleList
	// PrivilegeReport is a key's least-privilege report.
	PrivilegeReport = server.PrivilegeReport
	// Exercise is a permission a key exercised.
	Exercise = server.Exercise
)

// Privileges returns key id's least-privilege report (GET
// /keys/{id}/privileges): which of its permissions it has not exercised
// within unusedFor (such as "30d"; "" for the server's default, 30 days),
// and the narrowest scopes that would have allowed what it did.
func (c *Client) Privileges(ctx context.Context, id uuid.UUID, unusedFor string) (*PrivilegeReport, *Response, error) {
	path := keyPath(id, "privileges")
	if unusedFor != "" {
		path += "?unused_for=" + url.QueryEscape(unusedFor)
	}
	r, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, nil, err
	}
	rep := new(PrivilegeReport)
	resp, err := c.do(r, rep)
	if err != nil {
		return nil, resp, err
	}
	return rep, resp, nil
}

// Verify asks the server whether a token is valid (POST /keys/verify),
// which needs apikey:verify. The verdict, valid or not, is in the
// *VerifyResponse; the error is only ever about the call: the client's own
// credentials, the request, or the server being unavailable. It is a use
// of the key like any other (limits, last used). To protect an HTTP
// service with a remote server, use a [Verifier] instead.
func (c *Client) Verify(ctx context.Context, req VerifyRequest) (*VerifyResponse, *Response, error) {
	r, err := c.newRequestURL(ctx, http.MethodPost, c.verifyURL, req)
	if err != nil {
		return nil, nil, err
	}
	v := new(VerifyResponse)
	resp, err := c.do(r, v)
	if err != nil {
		return nil, resp, err
	}
	return v, resp, nil
}

// Roles returns the roles keys may be given (GET /roles), which needs
// apikey:view.
func (c *Client) Roles(ctx context.Context) ([]Role, *Response, error) {
	r, err := c.newRequest(ctx, http.MethodGet, "roles", nil)
	if err != nil {
		return nil, nil, err
	}
	var list RoleList
	resp, err := c.do(r, &list)
	if err != nil {
		return nil, resp, err
	}
	return list.Roles, resp, nil
}

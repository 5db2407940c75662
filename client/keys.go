package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/server"
)

// The API's JSON bodies, shared with package server so that the two cannot
// disagree; see the server package for their fields.
type (
	// Key is a key as the API shows it: never its token or hash.
	Key = server.Key
	// Limits restricts how a key may be used.
	Limits = server.Limits
	// LimitsUpdate changes some of a key's limits.
	LimitsUpdate = server.LimitsUpdate
	// RateLimit allows Requests per Window.
	RateLimit = server.RateLimit
	// Duration is a time.Duration written as a string such as "1h".
	Duration = server.Duration
	// CreateRequest describes a new key; Name and Expiry are required.
	CreateRequest = server.CreateRequest
	// UpdateRequest changes the non-nil fields of a key; a non-zero
	// Version is sent as If-Match.
	UpdateRequest = server.UpdateRequest
	// RegenerateRequest gives a key a new token and expiry.
	RegenerateRequest = server.RegenerateRequest
	// KeyList is one page of keys and the cursor of the next.
	KeyList = server.KeyList
	// ImportRow is one key of another system to import, by its token or
	// its SHA-256; it prints both redacted.
	ImportRow = server.ImportRow
	// ImportResponse is the result of each row of an import, and their
	// counts.
	ImportResponse = server.ImportResponse
	// ImportResult is what was done with one row: "imported", "duplicate"
	// or "failed" with the problem that refused it (server.ErrorsFor maps
	// its code to keygate's errors).
	ImportResult = server.ImportResult
	// Usage is a key's usage history: its verifications by outcome
	// ("valid", or a refusal's code such as "rate_limited") over a range,
	// in buckets, every bucket of the range included.
	Usage = server.Usage
	// UsageBucket is one bucket of a Usage.
	UsageBucket = server.UsageBucket
)

// Values of [UsageOptions.Bucket] and Usage.Bucket, the same as the
// server's.
const (
	BucketHour = server.BucketHour // hourly buckets (the default)
	BucketDay  = server.BucketDay  // daily buckets, days in UTC
)

// UsageOptions selects the range and buckets of [Client.Usage]. Zero
// fields are left out, for the server's defaults: hourly buckets, the
// last 24 hours (or 30 days of daily buckets).
type UsageOptions struct {
	// Bucket is BucketHour or BucketDay.
	Bucket string
	// From and To bound the range, rounded out to whole buckets by the
	// server: at most 90 days of hours, 366 days of days.
	From, To time.Time
}

// query encodes o as a query string.
func (o *UsageOptions) query() string {
	q := url.Values{}
	if o.Bucket != "" {
		q.Set("bucket", o.Bucket)
	}
	if !o.From.IsZero() {
		q.Set("from", o.From.UTC().Format(time.RFC3339Nano))
	}
	if !o.To.IsZero() {
		q.Set("to", o.To.UTC().Format(time.RFC3339Nano))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// CreatedKey is a key just created or regenerated, with its new token.
// Token prints in redacted form (with %v, in logs, as JSON); Token.Reveal
// returns it, to hand to its user once: it cannot be read again.
type CreatedKey struct {
	Key   *Key
	Token apikey.Token
}

// createdBody is the wire form of a CreatedKey.
type createdBody struct {
	Key   *Key   `json:"key"`
	Token string `json:"token"`
}

// createdKey checks and converts b.
func (b *createdBody) createdKey() (*CreatedKey, error) {
	tok, err := apikey.Parse(b.Token)
	if err != nil || b.Key == nil {
		// Never quote the token, even a malformed one.
		return nil, fmt.Errorf("%w: no key or a malformed token", ErrInvalidResponse)
	}
	return &CreatedKey{Key: b.Key, Token: tok}, nil
}

// Values of [ListOptions.Revoked], the same as the server's.
const (
	RevokedAny    = server.RevokedAny    // revoked and active keys (the default)
	RevokedActive = server.RevokedActive // keys not revoked, expired ones included
	RevokedOnly   = server.RevokedOnly   // revoked keys only
)

// ListOptions filters and pages [Client.List]. Zero fields are left out.
type ListOptions struct {
	// Workspace and Owner list only the keys with this workspace, owner.
	Workspace string
	Owner     string
	// Revoked is RevokedAny (the default), RevokedActive or RevokedOnly.
	Revoked string
	// Limit is the page size, 1 to 1000; 0 means the server's default, 50.
	Limit int
	// After is the cursor: [Response.Next] or KeyList.Next of the previous
	// page; "" for the first page.
	After string
	// ExpiringWithin, such as "7d" or "12h", lists only the keys that
	// expire within that window from now.
	ExpiringWithin string
	// IdentityID lists only the keys of this identity.
	IdentityID uuid.UUID
}

// query encodes o as a query string.
func (o *ListOptions) query() string {
	q := url.Values{}
	for name, v := range map[string]string{"workspace": o.Workspace, "owner": o.Owner, "revoked": o.Revoked, "after": o.After, "expiring_within": o.ExpiringWithin} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.IdentityID != uuid.Nil {
		q.Set("identity_id", o.IdentityID.String())
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// keyPath returns the path of key id, with an optional action.
func keyPath(id uuid.UUID, action string) string {
	p := "keys/" + id.String()
	if action != "" {
		p += "/" + action
	}
	return p
}

// Create issues a key (POST /keys). The token in the result is the only
// copy there will ever be.
func (c *Client) Create(ctx context.Context, req CreateRequest) (*CreatedKey, *Response, error) {
	return c.created(ctx, "keys", req)
}

// Import imports keys issued by another system, so that their tokens keep
// working (POST /keys/import): 1 to keygate.MaxImportBatch rows, within the
// server's body limit. Each row is answered on its own, in order; a row
// already imported is a "duplicate", so a call that timed out may be sent
// again whole. The error is about the call as a whole: an
// [*ErrorResponse] such as 403 forbidden for a caller that may manage no
// keys.
func (c *Client) Import(ctx context.Context, rows []ImportRow) (*ImportResponse, *Response, error) {
	// ImportRow's MarshalJSON redacts its secrets: send the wire form.
	type wireRow struct {
		server.CreateRequest
		Token  string `json:"token,omitempty"`
		SHA256 string `json:"sha256,omitempty"`
		Hint   string `json:"hint,omitempty"`
	}
	body := struct {
		Keys []wireRow `json:"keys"`
	}{Keys: make([]wireRow, len(rows))}
	for i, row := range rows {
		body.Keys[i] = wireRow{row.CreateRequest, row.Token, row.SHA256, row.Hint}
	}
	r, err := c.newRequest(ctx, http.MethodPost, "keys/import", body)
	if err != nil {
		return nil, nil, err
	}
	out := new(ImportResponse)
	resp, err := c.do(r, out)
	if err != nil {
		return nil, resp, err
	}
	if len(out.Results) != len(rows) {
		return nil, resp, fmt.Errorf("%w: %d import results for %d rows", ErrInvalidResponse, len(out.Results), len(rows))
	}
	return out, resp, nil
}

// Get returns key id (GET /keys/{id}).
func (c *Client) Get(ctx context.Context, id uuid.UUID) (*Key, *Response, error) {
	return c.key(ctx, http.MethodGet, keyPath(id, ""), nil, 0)
}

// List returns one page of keys (GET /keys); resp.Next, like the list's
// Next, is the cursor of the following page, "" on the last one.
func (c *Client) List(ctx context.Context, opts ListOptions) (*KeyList, *Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "keys"+opts.query(), nil)
	if err != nil {
		return nil, nil, err
	}
	list := new(KeyList)
	resp, err := c.do(req, list)
	if err != nil {
		return nil, resp, err
	}
	resp.Next = list.Next
	return list, resp, nil
}

// All returns an iterator over every key matching opts from opts.After on,
// fetching the pages as it goes. On a failure it yields (nil, err) once and
// stops; a server answering a cursor it already gave (which would loop
// forever) is such a failure, wrapping [ErrInvalidResponse].
func (c *Client) All(ctx context.Context, opts ListOptions) iter.Seq2[*Key, error] {
	return func(yield func(*Key, error) bool) {
		seen := map[string]bool{opts.After: true}
		for {
			list, _, err := c.List(ctx, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, k := range list.Keys {
				if !yield(k, nil) {
					return
				}
			}
			if list.Next == "" {
				return
			}
			if seen[list.Next] {
				yield(nil, fmt.Errorf("%w: GET keys: the server repeated a page cursor", ErrInvalidResponse))
				return
			}
			seen[list.Next] = true
			opts.After = list.Next
		}
	}
}

// Usage returns how many times key id was verified, by outcome, over the
// range of opts (GET /keys/{id}/usage). Counts reach the server's store
// about once a minute, so the last minute may be missing. A server whose
// store keeps no usage history answers 501, an error matching
// keygate.ErrUnsupported.
func (c *Client) Usage(ctx context.Context, id uuid.UUID, opts UsageOptions) (*Usage, *Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, keyPath(id, "usage")+opts.query(), nil)
	if err != nil {
		return nil, nil, err
	}
	u := new(Usage)
	resp, err := c.do(req, u)
	if err != nil {
		return nil, resp, err
	}
	if u.Bucket != BucketHour && u.Bucket != BucketDay || u.KeyID != id {
		return nil, resp, fmt.Errorf("%w: GET %s: a usage report of another key or of buckets of %q", ErrInvalidResponse, keyPath(id, "usage"), u.Bucket)
	}
	return u, resp, nil
}

// Update changes key id (PATCH /keys/{id}): only the non-nil fields of req.
// A non-zero req.Version is sent as If-Match too; if the key is at another
// version the call fails with an error matching keygate.ErrConflict.
func (c *Client) Update(ctx context.Context, id uuid.UUID, req UpdateRequest) (*Key, *Response, error) {
	return c.key(ctx, http.MethodPatch, keyPath(id, ""), req, req.Version)
}

// Regenerate gives key id a new token and expiry (POST
// /keys/{id}/regenerate); the old token stops working at once, or after
// req.GracePeriod.
func (c *Client) Regenerate(ctx context.Context, id uuid.UUID, req RegenerateRequest) (*CreatedKey, *Response, error) {
	return c.created(ctx, keyPath(id, "regenerate"), req)
}

// Revoke stops key id from working (POST /keys/{id}/revoke) and returns
// it. Revoking a revoked key is not an error.
func (c *Client) Revoke(ctx context.Context, id uuid.UUID) (*Key, *Response, error) {
	return c.key(ctx, http.MethodPost, keyPath(id, "revoke"), nil, 0)
}

// Disable stops key id from working until it is enabled again (POST
// /keys/{id}/disable): a reversible stop, unlike Revoke.
func (c *Client) Disable(ctx context.Context, id uuid.UUID) (*Key, *Response, error) {
	return c.key(ctx, http.MethodPost, keyPath(id, "disable"), nil, 0)
}

// Enable lets a disabled key id work again (POST /keys/{id}/enable).
func (c *Client) Enable(ctx context.Context, id uuid.UUID) (*Key, *Response, error) {
	return c.key(ctx, http.MethodPost, keyPath(id, "enable"), nil, 0)
}

// Delete removes key id (DELETE /keys/{id}).
func (c *Client) Delete(ctx context.Context, id uuid.UUID) (*Response, error) {
	req, err := c.newRequest(ctx, http.MethodDelete, keyPath(id, ""), nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, nil)
}

// key calls a route answering one Key, with If-Match: "version" when
// version is not zero.
func (c *Client) key(ctx context.Context, method, path string, body any, version int64) (*Key, *Response, error) {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return nil, nil, err
	}
	if version != 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatInt(version, 10)+`"`)
	}
	k := new(Key)
	resp, err := c.do(req, k)
	if err != nil {
		return nil, resp, err
	}
	return k, resp, nil
}

// created calls a route answering a key and its token.
func (c *Client) created(ctx context.Context, path string, body any) (*CreatedKey, *Response, error) {
	req, err := c.newRequest(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, nil, err
	}
	var b createdBody
	resp, err := c.do(req, &b)
	if err != nil {
		return nil, resp, err
	}
	ck, err := b.createdKey()
	if err != nil {
		return nil, resp, err
	}
	return ck, resp, nil
}

package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
)

// TestErrorsForInvertsProblemFor checks the two directions of the error
// table: every error the server answers with a code is matched, with
// errors.Is, by each error ErrorsFor gives for that code.
func TestErrorsForInvertsProblemFor(t *testing.T) {
	t.Parallel()
	inv := keygate.ErrInvalidRequest
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("keygate: get key: %w: %w", keygate.ErrUnavailable, errors.New("dial tcp: secret-host")), 503, CodeUnavailable},
		{fmt.Errorf("%w: user:bob may not create this key", keygate.ErrForbidden), 403, CodeForbidden},
		{fmt.Errorf("keygate: get key: %w", keygate.ErrNotFound), 404, CodeNotFound},
		{fmt.Errorf("%w: key is at version 2, not 1", keygate.ErrConflict), 409, CodeConflict},
		{fmt.Errorf("%w: cannot regenerate key", keygate.ErrRevoked), 409, CodeRevoked},
		{fmt.Errorf("keygate: create key: %w: %w", inv, keygate.ErrDuplicateName), 409, CodeDuplicateName},
		{fmt.Errorf("%w: %w", inv, keygate.ErrNameRequired), 400, CodeNameRequired},
		{fmt.Errorf("%w: %w: %q", inv, keygate.ErrInvalidExpiry, "x"), 400, CodeInvalidExpiry},
		{fmt.Errorf("%w: %w: role %q", inv, keygate.ErrWorkspaceRequired, "viewer"), 400, CodeWorkspaceRequired},
		{fmt.Errorf("%w: %w: %q", inv, keygate.ErrUnknownRole, "root"), 400, CodeUnknownRole},
		{fmt.Errorf("%w: %w: bad", inv, keygate.ErrInvalidScope), 400, CodeInvalidScope},
		{fmt.Errorf("%w: %w", inv, keygate.ErrNoPermissions), 400, CodeNoPermissions},
		{fmt.Errorf("%w: %w: usage limit is negative", inv, keygate.ErrInvalidField), 400, CodeInvalidField},
		{inv, 400, CodeInvalidRequest},
		{invalidJSON("x"), 400, CodeInvalidJSON},
		{ErrInvalidDuration, 400, CodeInvalidField},
		{&requestError{http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "x"}, 413, CodeBodyTooLarge},
		{&requestError{http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "x"}, 415, CodeUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			p := problemFor(tt.err)
			if p.Status != tt.status || p.Code != tt.code || p.Title != http.StatusText(tt.status) || p.Err != tt.err {
				t.Errorf("problemFor(%v) = %d %q %q (Err %v), want %d %q", tt.err, p.Status, p.Code, p.Title, p.Err, tt.status, tt.code)
			}
			errs := ErrorsFor(p.Code)
			var re *requestError
			if errors.As(tt.err, &re) || errors.Is(tt.err, ErrInvalidDuration) {
				// The server's own refusals are invalid requests.
				if !slices.Contains(errs, inv) {
					t.Errorf("ErrorsFor(%q) = %v, want it to hold ErrInvalidRequest", p.Code, errs)
				}
			} else if len(errs) == 0 {
				t.Errorf("ErrorsFor(%q) is empty", p.Code)
			} else {
				for _, e := range errs {
					if !errors.Is(tt.err, e) {
						t.Errorf("ErrorsFor(%q) holds %v, which %v does not match", p.Code, e, tt.err)
					}
				}
			}
			if strings.Contains(p.Detail, "secret-host") || strings.Contains(p.Detail, `"root"`) {
				t.Errorf("detail %q quotes the error", p.Detail)
			}
		})
	}
}

func TestProblemForUnknownError(t *testing.T) {
	t.Parallel()
	err := errors.New("pq: relation keys_internal does not exist")
	p := problemFor(fmt.Errorf("keygate: %w", err))
	if p.Status != 500 || p.Code != CodeInternal || strings.Contains(p.Detail, "keys_internal") || !errors.Is(p.Err, err) {
		t.Errorf("problemFor = %d %q %q, want 500 internal with a generic detail and Err kept", p.Status, p.Code, p.Detail)
	}
}

func TestErrorsForMiddlewareCodes(t *testing.T) {
	t.Parallel()
	tests := map[string]error{
		middleware.CodeMissing:                middleware.ErrNoCredential,
		middleware.CodeMalformed:              keygate.ErrMalformed,
		middleware.CodeInvalid:                keygate.ErrInvalid,
		middleware.CodeExpired:                keygate.ErrExpired,
		middleware.CodeRevoked:                keygate.ErrRevoked,
		middleware.CodeInsufficientPermission: keygate.ErrForbidden,
		middleware.CodeAddressDenied:          keygate.ErrAddressDenied,
		middleware.CodeRateLimited:            keygate.ErrRateLimited,
		middleware.CodeUsageExhausted:         keygate.ErrUsageExhausted,
		middleware.CodeUnavailable:            keygate.ErrUnavailable,
	}
	for code, want := range tests {
		if got := ErrorsFor(code); !slices.Contains(got, want) {
			t.Errorf("ErrorsFor(%q) = %v, want it to hold %v", code, got, want)
		}
	}
	for _, code := range []string{"", CodeInternal, CodeMethodNotAllowed, CodeUnauthenticated, CodeNoRoute, CodeCrossOrigin, "whatever"} {
		if got := ErrorsFor(code); got != nil {
			t.Errorf("ErrorsFor(%q) = %v, want nil", code, got)
		}
	}
}

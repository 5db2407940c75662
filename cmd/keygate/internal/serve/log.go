package serve

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/middleware"
)

// requestInfo collects, while a request is served, what the request log
// says about its key: the middleware verifies keys deeper in the handler
// chain, where the log middleware's request is out of reach.
type requestInfo struct {
	keyID uuid.UUID
	hint  string
}

type requestInfoKey struct{}

// noteKey records the verified key of r, if any, for the request log, and
// returns it.
func noteKey(r *http.Request) (*keygate.Key, bool) {
	key, ok := middleware.FromContext(r.Context())
	if info, _ := r.Context().Value(requestInfoKey{}).(*requestInfo); ok && info != nil {
		info.keyID, info.hint = key.ID, key.Hint
	}
	return key, ok
}

// noted is a middleware recording the verified key for the request log;
// put it after the middleware's Verify.
func noted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noteKey(r)
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs every request through slog: method, path, status,
// duration, and the key's id and hint when one was verified. It never logs
// a header, a query string or a body, so no token reaches the log.
func (a *app) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		if !a.logger.Enabled(r.Context(), level) {
			return // built for nothing otherwise: a key's id, the attributes
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Duration("duration", time.Since(start)),
		}
		if info.keyID != uuid.Nil {
			attrs = append(attrs, slog.String("key_id", info.keyID.String()), slog.String("key_hint", info.hint))
		}
		a.logger.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

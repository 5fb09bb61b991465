package sessions

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// A Manager loads and saves sessions whose data is a T, through a
// [Backend]. Build one with [New] at start-up, wrap the application's
// handler in [Manager.Middleware], and call [Manager.Get] in handlers.
//
// A Manager is safe for concurrent use by multiple goroutines.
type Manager[T any] struct {
	config
	backend Backend
	toucher Toucher      // backend as a Toucher, or nil
	rotator TokenRotator // backend as a TokenRotator, or nil
	// zeroPayload is the codec's encoding of T's zero value: a new session
	// that still encodes to it is not worth storing.
	zeroPayload []byte
	key         *contextKey
	now         func() time.Time // a seam for tests
}

// contextKey is the type of the key under which a manager finds its
// request state; each manager has its own.
type contextKey struct{ _ byte }

// New returns a manager for sessions holding a T, stored in backend.
//
// New panics if the options contradict each other, for example a
// "__Host-" cookie name with a Domain, or if the codec cannot encode T's
// zero value: both are programming errors, best found at start-up.
func New[T any](backend Backend, opts ...Option) *Manager[T] {
	if backend == nil {
		panic("sessions: New with a nil Backend")
	}
	m := &Manager[T]{config: defaultConfig(), backend: backend, key: new(contextKey), now: time.Now}
	for _, opt := range opts {
		opt(&m.config)
	}
	m.check()
	m.toucher, _ = backend.(Toucher)
	m.rotator, _ = backend.(TokenRotator)
	var zero T
	zp, err := m.codec.Marshal(&zero)
	if err != nil {
		panic(fmt.Sprintf("sessions: the codec cannot encode the zero value of %T: %v", zero, err))
	}
	m.zeroPayload = zp
	return m
}

// Middleware returns a handler that makes sessions available to next
// through [Manager.Get] and saves them before the response header goes
// out: at the first Write, WriteHeader or Flush, or when next returns.
// A session that was not changed is not saved, and a request that never
// calls Get costs nothing beyond a small allocation.
//
// When the session cannot be saved, the error handler answers the request
// instead of next's response (see [WithErrorHandler]); next's later writes
// then fail with [ErrNotSaved]. A handler that hijacks the connection must
// write its response first, or its session changes are lost.
func (m *Manager[T]) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &requestState[T]{m: m}
		r = r.WithContext(context.WithValue(r.Context(), m.key, st))
		st.r = r
		if m.autoload {
			if _, err := m.Get(r); err != nil {
				m.handleError(w, r, err)
				return
			}
		}
		rw := &responseWriter{ResponseWriter: w, saver: st}
		next.ServeHTTP(rw, r)
		rw.commit()
	})
}

// Get returns the request's session, loading it on the first call in a
// request and returning the same *Session after that. A request without a
// valid session cookie gets a new, empty session (see [Session.IsNew]);
// only a backend failure is an error. Get returns [ErrNoMiddleware] when r
// did not pass through m's Middleware.
func (m *Manager[T]) Get(r *http.Request) (*Session[T], error) {
	st, _ := r.Context().Value(m.key).(*requestState[T])
	if st == nil {
		return nil, ErrNoMiddleware
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.session == nil {
		s, err := m.load(r.Context(), r)
		if err != nil {
			return nil, err
		}
		s.committed = st.committed
		st.session = s
	}
	return st.session, nil
}

// requestState is what the middleware keeps for one request.
type requestState[T any] struct {
	m         *Manager[T]
	r         *http.Request
	mu        sync.Mutex
	session   *Session[T] // nil until Get
	committed bool
}

// save implements saver: it runs once, just before the response header is
// written.
func (st *requestState[T]) save(w http.ResponseWriter) bool {
	st.mu.Lock()
	s := st.session
	st.committed = true
	st.mu.Unlock()
	if s == nil {
		return true
	}
	if err := st.m.save(st.r.Context(), w.Header(), s); err != nil {
		st.m.handleError(w, st.r, err)
		return false
	}
	return true
}

func (m *Manager[T]) logger() *slog.Logger {
	if m.config.logger != nil {
		return m.config.logger
	}
	return slog.Default()
}

func (m *Manager[T]) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if m.errorHandler != nil {
		m.errorHandler(w, r, err)
		return
	}
	m.logger().ErrorContext(r.Context(), "sessions: request failed", "err", err, "method", r.Method, "path", r.URL.Path)
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// load reads the session named by the request's cookie, or makes a new
// one when there is none or it cannot be used.
func (m *Manager[T]) load(ctx context.Context, r *http.Request) (*Session[T], error) {
	now := m.now().Unix()
	s := &Session[T]{now: now, logger: m.logger()}
	token, ok := cookieValue(r.Header, m.cookieName)
	s.hadCookie = ok
	reason := "no session cookie"
	if ok {
		reason = "malformed cookie"
		if validToken(token) {
			data, found, rotate, err := m.read(ctx, token)
			if err != nil {
				return nil, fmt.Errorf("sessions: loading session: %w", err)
			}
			reason = "unknown or expired session"
			if found {
				if reason = m.adopt(s, token, data, now); reason == "" {
					s.forceSave = rotate
					return s, nil
				}
			}
		}
		m.logger().DebugContext(ctx, "sessions: starting a new session", "reason", reason)
	}
	s.id = NewID()
	s.isNew = true
	s.header = recordHeader{created: now, accessed: now}
	return s, nil
}

func (m *Manager[T]) read(ctx context.Context, token string) (data []byte, found, rotate bool, err error) {
	if m.rotator != nil {
		return m.rotator.ReadRotate(ctx, token)
	}
	data, found, err = m.backend.Read(ctx, token)
	return data, found, false, err
}

// adopt fills s from a stored record and returns "", or returns why the
// record cannot be used.
func (m *Manager[T]) adopt(s *Session[T], token string, data []byte, now int64) string {
	h, payload, err := parseRecord(data)
	if err != nil {
		return err.Error()
	}
	if now >= h.created+int64(m.serverLifetime()/time.Second) {
		return "session lifetime ended"
	}
	// A Toucher's own expiry enforces the idle timeout: the record's access
	// time is only brought up to date when the record is rewritten.
	if m.idleTimeout > 0 && m.toucher == nil && now >= h.accessed+int64(m.idleTimeout/time.Second) {
		return "session idle timeout passed"
	}
	if err := m.codec.Unmarshal(payload, &s.data); err != nil {
		var zero T
		s.data = zero
		return "cannot decode session data: " + err.Error()
	}
	s.id = token
	s.loadedToken = token
	s.loadedPayload = payload
	s.header = h
	s.stored = true
	return ""
}

// serverLifetime is how long after its creation the server refuses a
// session.
func (m *Manager[T]) serverLifetime() time.Duration {
	if m.lifetime > 0 {
		return m.lifetime
	}
	return BrowserSessionLifetime
}

// expiry returns how long the backend should keep a record with header h
// written now, and the cookie's Max-Age (0 for a browser-session cookie).
func (m *Manager[T]) expiry(h recordHeader, now int64) (ttl, maxAge time.Duration) {
	remaining := m.serverLifetime() - time.Duration(now-h.created)*time.Second
	ttl = remaining
	if m.idleTimeout > 0 {
		ttl = min(ttl, m.idleTimeout)
	}
	ttl = max(ttl, time.Second)
	if h.persist == persistOn || h.persist == persistDefault && m.lifetime > 0 {
		maxAge = max(remaining, time.Second)
	}
	return ttl, maxAge
}

// save brings the backend and the response's cookie up to date with s.
func (m *Manager[T]) save(ctx context.Context, h http.Header, s *Session[T]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = true
	h.Add("Vary", "Cookie")

	payload, err := m.codec.Marshal(&s.data)
	if err != nil {
		return fmt.Errorf("sessions: encoding session: %w", err)
	}
	now := m.now().Unix()
	var write bool
	if s.stored {
		write = s.forceSave || !bytes.Equal(payload, s.loadedPayload)
	} else {
		write = !bytes.Equal(payload, m.zeroPayload)
	}
	if !write && s.stored && m.idleTimeout > 0 {
		if m.toucher != nil {
			ttl, _ := m.expiry(s.header, now)
			if err := m.toucher.Touch(ctx, s.loadedToken, ttl); err != nil {
				return fmt.Errorf("sessions: extending session: %w", err)
			}
			return nil
		}
		write = now-s.header.accessed >= int64(max(m.idleTimeout/100, time.Second)/time.Second)
	}
	if write {
		return m.write(ctx, h, s, payload, now)
	}
	if s.removeToken != "" {
		if err := m.backend.Remove(ctx, s.removeToken); err != nil {
			return fmt.Errorf("sessions: removing session: %w", err)
		}
	}
	if s.destroyed && s.hadCookie {
		m.setCookie(h, "", -1)
	}
	return nil
}

func (m *Manager[T]) write(ctx context.Context, h http.Header, s *Session[T], payload []byte, now int64) error {
	s.header.accessed = now
	ttl, maxAge := m.expiry(s.header, now)
	rec := make([]byte, 0, maxRecordHeader+len(payload))
	rec = appendRecordHeader(rec, s.header)
	rec = append(rec, payload...)
	token, err := m.backend.Write(ctx, s.id, rec, ttl)
	if err != nil {
		return fmt.Errorf("sessions: saving session: %w", err)
	}
	if len(m.cookieName)+1+len(token) > maxCookieSize {
		return fmt.Errorf("%w: %d bytes of session data", ErrCookieTooLarge, len(payload))
	}
	// The old record goes only once the new one is safe, so that a failed
	// save leaves the client with a session that still works.
	if s.removeToken != "" {
		if err := m.backend.Remove(ctx, s.removeToken); err != nil {
			return fmt.Errorf("sessions: removing replaced session: %w", err)
		}
	}
	m.setCookie(h, token, maxAge)
	// A shared cache must not hand this response, and its cookie, to
	// another client.
	h.Add("Cache-Control", `no-cache="Set-Cookie"`)
	return nil
}

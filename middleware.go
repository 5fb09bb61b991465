package sessions

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"reflect"
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
	backend   Backend
	versioned VersionedBackend // backend as a VersionedBackend, or nil under last-write-wins
	toucher   Toucher          // backend as a Toucher, or nil
	rotator   TokenRotator     // backend as a TokenRotator, or nil
	appender  AppendMarshaler  // codec as an AppendMarshaler, or nil
	// zeroPayload is the codec's encoding of T's zero value: a new session
	// that still encodes to it is not worth storing.
	zeroPayload []byte
	plan        *imagePlan // images T's values, or nil; see snapshot.go
	key         *contextKey
	// saveLocks order the saves of one process's requests on one session
	// (striped by token), so that conflicts arise only between processes.
	saveLocks [64]sync.Mutex
	lockSeed  maphash.Seed
	now       func() time.Time                                 // a seam for tests
	sleep     func(ctx context.Context, d time.Duration) error // a seam for tests
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
	m := &Manager[T]{config: defaultConfig(), backend: backend, key: new(contextKey),
		lockSeed: maphash.MakeSeed(), now: time.Now, sleep: sleepCtx}
	for _, opt := range opts {
		opt(&m.config)
	}
	m.check()
	if !m.lastWriteWins {
		m.versioned, _ = backend.(VersionedBackend)
	}
	m.toucher, _ = backend.(Toucher)
	m.rotator, _ = backend.(TokenRotator)
	m.appender, _ = m.codec.(AppendMarshaler)
	var zero T
	zp, err := m.codec.Marshal(&zero)
	if err != nil {
		panic(fmt.Sprintf("sessions: the codec cannot encode the zero value of %T: %v", zero, err))
	}
	m.zeroPayload = zp
	m.plan = planImage(reflect.TypeFor[T]())
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
		// One allocation holds everything the request needs: the state,
		// the response writer and the session itself.
		st := &requestState[T]{Context: r.Context(), m: m}
		r = r.WithContext(st)
		st.r = r
		if m.autoload {
			if _, err := m.Get(r); err != nil {
				m.handleError(w, r, err)
				return
			}
		}
		st.rw = responseWriter{ResponseWriter: w, saver: st}
		next.ServeHTTP(&st.rw, r)
		st.rw.commit()
	})
}

// Get returns the request's session, loading it on the first call in a
// request and returning the same *Session after that. A request without a
// valid session cookie gets a new, empty session (see [Session.IsNew]);
// only a backend failure is an error. Get returns [ErrNoMiddleware] when r
// did not pass through m's Middleware.
func (m *Manager[T]) Get(r *http.Request) (*Session[T], error) {
	if r == nil {
		return nil, ErrNoMiddleware
	}
	st, _ := r.Context().Value(m.key).(*requestState[T])
	if st == nil {
		return nil, ErrNoMiddleware
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.loaded {
		if err := m.load(r.Context(), r, &st.session); err != nil {
			st.session = Session[T]{}
			return nil, err
		}
		st.session.committed = st.committed
		st.loaded = true
	}
	return &st.session, nil
}

// requestState is what the middleware keeps for one request. It is also
// the request's context, which finds it under the manager's key: that
// spares the allocation of a context.WithValue on every request.
type requestState[T any] struct {
	context.Context
	m         *Manager[T]
	r         *http.Request
	rw        responseWriter
	mu        sync.Mutex
	loaded    bool // session holds the request's session
	committed bool
	session   Session[T]
}

// Value returns the state itself under its manager's key, and defers to
// the request's original context for any other key.
func (st *requestState[T]) Value(key any) any {
	if key == any(st.m.key) {
		return st
	}
	return st.Context.Value(key)
}

// save implements saver: it runs once, just before the response header is
// written.
func (st *requestState[T]) save(w http.ResponseWriter) bool {
	st.mu.Lock()
	loaded := st.loaded
	st.committed = true
	st.mu.Unlock()
	if !loaded {
		return true
	}
	s := &st.session
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
	code := http.StatusInternalServerError
	if errors.Is(err, ErrConflict) {
		code = http.StatusConflict
	}
	m.logger().ErrorContext(r.Context(), "sessions: request failed", "err", err, "method", r.Method, "path", r.URL.Path)
	http.Error(w, http.StatusText(code), code)
}

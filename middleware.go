package sessions

import (
	"context"
	"net/http"
	"sync"
)

// Middleware returns a handler that makes sessions available to next
// through [Manager.Get] and saves them before the response header goes
// out: at the first Write, WriteHeader, Flush or ReadFrom, or when next
// returns. A session that was not changed is not saved, and a request that
// never calls Get costs nothing beyond a small allocation.
//
// When the session cannot be saved, or could not be loaded and next
// answers as if it had been, the error handler answers the request instead
// of next's response (see [WithErrorHandler]); next's later writes then
// fail with [ErrNotSaved]. The writer next is given offers exactly the
// optional interfaces of the one it wraps (http.Flusher, http.Hijacker,
// io.ReaderFrom), and Unwrap for [http.ResponseController]. A handler that hijacks the connection
// before the header is written sends no header through the middleware, so
// nothing is saved for it: make changes before the header, or before the
// hijack write the header (as a WebSocket upgrade with status 101 does).
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
		next.ServeHTTP(st.rw.exposed(), r)
		// A commit before next returned leaves next time to change the
		// value through a pointer from Data, which finish looks for.
		early := st.headerOut()
		st.rw.commit(0)
		st.finish(early)
	})
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
	// hijacked is set when the connection was taken over before the
	// header was written.
	hijacked bool
	// saveFailed is set when the middleware's save failed, and the error
	// handler answered.
	saveFailed bool
	// loadErr is why the last Get failed, until one succeeds: the error
	// handler answers for it unless the handler answers with a 5xx.
	loadErr error
	// vary is this response's own Vary value, so that no slice is shared
	// between responses' headers; varied is set once it is in the header.
	vary    [1]string
	varied  bool
	session Session[T]
}

// Value returns the state itself under its manager's key, and defers to
// the request's original context for any other key.
func (st *requestState[T]) Value(key any) any {
	if key == any(st.m.key) {
		return st
	}
	return st.Context.Value(key)
}

// commitSession marks the header as gone and reports whether a session
// was loaded, which then needs saving, or else why the load failed.
func (st *requestState[T]) commitSession() (bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.committed = true
	return st.loaded, st.loadErr
}

// save implements saver: it runs once, just before the response header is
// written.
func (st *requestState[T]) save(w http.ResponseWriter, code int) bool {
	loaded, loadErr := st.commitSession()
	if !loaded {
		if loadErr == nil || code >= 500 {
			return true // nothing to save, or the handler answers the failure itself
		}
		// The handler went on as if the session had loaded: its answer
		// would be a 200 built on no session.
		st.mu.Lock()
		st.saveFailed = true
		st.mu.Unlock()
		st.m.handleError(w, st.r, loadErr)
		return false
	}
	if err := st.m.save(st.r.Context(), w.Header(), &st.session, st.addVary); err != nil {
		st.mu.Lock()
		st.saveFailed = true // the error handler has said so; finish need not
		st.mu.Unlock()
		st.m.handleError(w, st.r, err)
		return false
	}
	return true
}

// hijack implements saver: the connection was taken over before the
// header was written, so no cookie can be sent any more.
func (st *requestState[T]) hijack() {
	st.mu.Lock()
	st.committed, st.hijacked = true, true
	loaded := st.loaded
	st.mu.Unlock()
	if loaded {
		// No token reaches the client from now on: Save must know.
		st.session.mu.Lock()
		st.session.committed = true
		st.session.mu.Unlock()
	}
}

// headerOut reports whether the session was committed: the response
// header is out, or the connection hijacked.
func (st *requestState[T]) headerOut() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.committed
}

// finish runs when the handler has returned and the response is
// committed: it warns about changes that nothing saved. early says the
// commit came before the handler returned.
func (st *requestState[T]) finish(early bool) {
	st.mu.Lock()
	loaded, hijacked, failed := st.loaded, st.hijacked, st.saveFailed
	st.mu.Unlock()
	if !loaded {
		return
	}
	s := &st.session
	s.mu.Lock()
	// A save that failed has said so: to the error handler, or to the
	// caller of Save. A change through a pointer Data handed out before
	// the commit is looked for only where images make that cheap: for T
	// with maps or interfaces it would cost an encoding per request.
	reported := failed || s.failed != nil
	pointer := early && s.handedOut && st.m.plan != nil
	unsaved := !reported && (s.lateChange || (hijacked || s.lateData || pointer) && st.m.dirtyLocked(s))
	s.committed = true
	s.finished = true
	s.dropSnapshotLocked()
	s.mu.Unlock()
	if unsaved {
		st.m.logger().WarnContext(st.r.Context(), "sessions: the session was changed after the response header was written or the connection hijacked; the change was not saved",
			"method", st.r.Method, "path", st.r.URL.Path)
	}
}

// header implements sessionRequest, for Session.Save before the header.
func (st *requestState[T]) header() http.Header {
	h := st.rw.ResponseWriter.Header()
	st.addVary(h)
	return h
}

// addVary adds the transport's request header, Cookie by default, to h's
// Vary header, once.
func (st *requestState[T]) addVary(h http.Header) {
	if st.varied {
		return
	}
	st.varied = true
	name := st.m.transport.vary()
	if v, ok := h["Vary"]; ok {
		h["Vary"] = append(v, name)
		return
	}
	st.vary[0] = name
	h["Vary"] = st.vary[:1:1]
}

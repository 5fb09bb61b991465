package sessions

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// saver is the request state as the response writer sees it.
type saver interface {
	// save saves the session before the header is written and reports
	// whether the response may go on; when it may not, the error handler
	// has already answered. code is the status the handler is writing:
	// http.StatusOK for a Write without WriteHeader, 0 when the handler
	// returned without writing.
	save(w http.ResponseWriter, code int) bool
	// hijack records that the connection was taken over before the header
	// was written.
	hijack()
}

// responseWriter saves the session just before the response header goes
// out, which is the last moment a Set-Cookie header can join it. The
// handler sees it through [responseWriter.exposed], which offers exactly
// the optional interfaces of the writer it wraps that write to the
// response (http.Flusher, http.Hijacker, io.ReaderFrom), saving first;
// [http.ResponseController] reaches the others (deadlines, full duplex)
// through Unwrap.
type responseWriter struct {
	http.ResponseWriter
	saver saver
	state writerState
}

type writerState uint8

const (
	statePending  writerState = iota
	stateSaved                // the session is saved; the response goes on
	stateFailed               // the error handler answered instead
	stateHijacked             // the connection was taken over first
)

// commit saves the session once, before a response with status code, and
// reports whether the handler's response may be written.
func (w *responseWriter) commit(code int) bool {
	if w.state == statePending {
		w.state = stateFailed
		if w.saver.save(w.ResponseWriter, code) {
			w.state = stateSaved
		}
	}
	return w.state == stateSaved
}

func (w *responseWriter) WriteHeader(code int) {
	// Informational responses (103 Early Hints) are not the response
	// header, and must not carry the session cookie.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.commit(code) {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.commit(http.StatusOK) {
		return 0, ErrNotSaved
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the wrapped writer, for [http.ResponseController].
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// flushError saves the session first, then flushes the wrapped writer. It
// returns [ErrNotSaved] when the session could not be saved, so that
// [http.ResponseController.Flush] reports it.
func (w *responseWriter) flushError() error {
	if !w.commit(http.StatusOK) {
		return ErrNotSaved
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// readFrom saves the session first, so that io.Copy and
// http.ServeContent keep the wrapped writer's sendfile path.
func (w *responseWriter) readFrom(src io.Reader) (int64, error) {
	if !w.commit(http.StatusOK) {
		return 0, ErrNotSaved
	}
	return w.ResponseWriter.(io.ReaderFrom).ReadFrom(src)
}

// hijackConn hijacks through [http.ResponseController], so that a direct
// hijack and one through a ResponseController are alike. A connection
// taken over before the header was written can carry no cookie, so the
// middleware saves nothing for it.
func (w *responseWriter) hijackConn() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.state == statePending {
		w.state = stateHijacked
		w.saver.hijack()
	}
	return conn, rw, err
}

// exposed returns w as the handler sees it: with Flush (and FlushError),
// Hijack and ReadFrom exactly when the wrapped writer has them, so that a
// handler that asks for http.Flusher or http.Hijacker learns the truth
// rather than get a Flush that does nothing or a Hijack that fails.
// Flush and Hijack count when the wrapped writer has them itself or
// through its Unwrap chain, as ResponseController finds them; ReadFrom
// only when it has it itself. Each variant is one pointer, so the
// interface value costs no allocation.
func (w *responseWriter) exposed() http.ResponseWriter {
	inner := w.ResponseWriter
	_, r := inner.(io.ReaderFrom)
	switch f, h := canFlush(inner), canHijack(inner); {
	case f && h && r:
		return withFlushHijackReadFrom{w}
	case f && h:
		return withFlushHijack{w}
	case f && r:
		return withFlushReadFrom{w}
	case h && r:
		return withHijackReadFrom{w}
	case f:
		return withFlush{w}
	case h:
		return withHijack{w}
	case r:
		return withReadFrom{w}
	}
	return w
}

type unwrapper interface{ Unwrap() http.ResponseWriter }

// canFlush reports whether a ResponseController could flush w.
func canFlush(w http.ResponseWriter) bool {
	for {
		switch w.(type) {
		case http.Flusher, interface{ FlushError() error }:
			return true
		}
		u, ok := w.(unwrapper)
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// canHijack reports whether a ResponseController could hijack w.
func canHijack(w http.ResponseWriter) bool {
	for {
		if _, ok := w.(http.Hijacker); ok {
			return true
		}
		u, ok := w.(unwrapper)
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// The variants of the writer, one for each set of optional interfaces.

type withFlush struct{ *responseWriter }

func (w withFlush) Flush()            { w.flushError() }
func (w withFlush) FlushError() error { return w.flushError() }

type withHijack struct{ *responseWriter }

func (w withHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.hijackConn() }

type withReadFrom struct{ *responseWriter }

func (w withReadFrom) ReadFrom(src io.Reader) (int64, error) { return w.readFrom(src) }

type withFlushHijack struct{ *responseWriter }

func (w withFlushHijack) Flush()                                       { w.flushError() }
func (w withFlushHijack) FlushError() error                            { return w.flushError() }
func (w withFlushHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.hijackConn() }

type withFlushReadFrom struct{ *responseWriter }

func (w withFlushReadFrom) Flush()                                { w.flushError() }
func (w withFlushReadFrom) FlushError() error                     { return w.flushError() }
func (w withFlushReadFrom) ReadFrom(src io.Reader) (int64, error) { return w.readFrom(src) }

type withHijackReadFrom struct{ *responseWriter }

func (w withHijackReadFrom) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.hijackConn() }
func (w withHijackReadFrom) ReadFrom(src io.Reader) (int64, error)        { return w.readFrom(src) }

type withFlushHijackReadFrom struct{ *responseWriter }

func (w withFlushHijackReadFrom) Flush()            { w.flushError() }
func (w withFlushHijackReadFrom) FlushError() error { return w.flushError() }
func (w withFlushHijackReadFrom) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.hijackConn()
}
func (w withFlushHijackReadFrom) ReadFrom(src io.Reader) (int64, error) { return w.readFrom(src) }

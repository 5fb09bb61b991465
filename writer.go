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
	// has already answered.
	save(w http.ResponseWriter) bool
	// hijack records that the connection was taken over before the header
	// was written.
	hijack()
}

// responseWriter saves the session just before the response header goes
// out, which is the last moment a Set-Cookie header can join it. It passes
// on the optional features of the writer it wraps that write to the
// response (Flush, ReadFrom, Hijack), saving first; [http.ResponseController]
// reaches the others (deadlines, full duplex) through Unwrap.
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

// commit saves the session once and reports whether the handler's
// response may be written.
func (w *responseWriter) commit() bool {
	if w.state == statePending {
		w.state = stateFailed
		if w.saver.save(w.ResponseWriter) {
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
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.commit() {
		return 0, ErrNotSaved
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements [http.Flusher], saving the session first.
func (w *responseWriter) Flush() { w.FlushError() }

// FlushError saves the session first, then flushes the wrapped writer. It
// returns [ErrNotSaved] when the session could not be saved, so that
// [http.ResponseController.Flush] reports it.
func (w *responseWriter) FlushError() error {
	if !w.commit() {
		return ErrNotSaved
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// ReadFrom implements [io.ReaderFrom], saving the session first, so that
// io.Copy and http.ServeContent keep the wrapped writer's sendfile path.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.commit() {
		return 0, ErrNotSaved
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// writerOnly hides every method of a writer but Write, so that io.Copy
// does not come back to ReadFrom.
type writerOnly struct{ io.Writer }

// Hijack implements [http.Hijacker] through [http.ResponseController], so
// that a direct hijack and one through a ResponseController are alike. A
// connection taken over before the header was written can carry no cookie,
// so the middleware saves nothing for it.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.state == statePending {
		w.state = stateHijacked
		w.saver.hijack()
	}
	return conn, rw, err
}

// Unwrap returns the wrapped writer, for [http.ResponseController].
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

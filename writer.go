package sessions

import "net/http"

// saver is the request state as the response writer sees it.
type saver interface {
	// save saves the session before the header is written and reports
	// whether the response may go on; when it may not, the error handler
	// has already answered.
	save(w http.ResponseWriter) bool
}

// responseWriter saves the session just before the response header goes
// out, which is the last moment a Set-Cookie header can join it.
// [http.ResponseController] reaches the underlying writer's other features
// (Hijack, deadlines, full duplex) through Unwrap.
type responseWriter struct {
	http.ResponseWriter
	saver saver
	state writerState
}

type writerState uint8

const (
	statePending writerState = iota
	stateSaved
	stateFailed
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
func (w *responseWriter) Flush() {
	if w.commit() {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap returns the wrapped writer, for [http.ResponseController].
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

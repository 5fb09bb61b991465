package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/starsessions/sessions/internal/seam"
)

// A Manager loads and saves sessions whose data is a T, through a
// [Backend]. Build one with [New] at start-up, wrap the application's
// handler in [Manager.Middleware], and call [Manager.Get] in handlers.
//
// A Manager is safe for concurrent use by multiple goroutines.
type Manager[T any] struct {
	config
	transport transport        // carries tokens: a cookie, or a header
	backend   Backend          // bound to the token's name when it is a NameBinder
	reader    RecordReader     // backend as a RecordReader, or nil
	versioned VersionedBackend // backend as a VersionedBackend, or nil under last-write-wins
	toucher   Toucher          // backend as a Toucher, or nil
	index     OwnerIndex       // backend as an OwnerIndex, or nil
	renewer   Renewer          // backend as a Renewer, when WithRenewal is on; nil otherwise
	appender  AppendMarshaler  // codec as an AppendMarshaler, or nil
	// fields takes the codec's encodings apart at the top level, and
	// known is the keys T decodes; both are nil with a codec that cannot.
	fields fieldCodec
	known  *fieldSet
	// flashes is the keys of T's Flashes fields, which merge as queues
	// (flash.go), with their types; nil when T has none.
	flashes map[string]reflect.Type
	// undecodable limits the warnings about sessions that no longer
	// decode to one per burst.
	undecodable burstLog
	// insecureWarned is set once a request over plain HTTP has been
	// warned about (insecure.go).
	insecureWarned atomic.Bool
	validator      func(context.Context, *T) error
	// tagged is set when the backend does not bind tokens to the cookie
	// name itself: records then carry tag, the name's tag.
	tagged bool
	tag    nameTag
	// zeroPayload is the codec's encoding of T's zero value: a new session
	// that still encodes to it is not worth storing.
	zeroPayload []byte
	plan        *imagePlan // images T's values, or nil; see snapshot.go
	expiry      expiry     // when sessions end
	key         *contextKey
	saveLocks   keyLocks
	now         func() time.Time                                 // a seam for tests
	sleep       func(ctx context.Context, d time.Duration) error // a seam for tests
}

func init() {
	seam.SetNow = func(m any, now func() time.Time) {
		m.(interface{ setNow(func() time.Time) }).setNow(now)
	}
}

func (m *Manager[T]) setNow(now func() time.Time) { m.now = now }

// contextKey is the type of the key under which a manager finds its
// request state; each manager has its own.
type contextKey struct{ _ byte }

// New returns a manager for sessions holding a T, stored in backend.
//
// New panics if the options contradict each other, for example a
// "__Host-" cookie name with a Domain, or if the codec cannot encode T's
// zero value: both are programming errors, best found at start-up. It logs
// a warning, through the manager's logger, when T has fields that the JSON
// or msgpack codec does not bring back: unexported fields, which are never
// saved, and interface fields, which decode as the codec's generic values.
func New[T any](backend Backend, opts ...Option) *Manager[T] {
	if backend == nil {
		panic("sessions: New with a nil Backend")
	}
	m := &Manager[T]{config: defaultConfig(), key: new(contextKey), now: time.Now, sleep: sleepCtx}
	for _, opt := range opts {
		opt(&m.config)
	}
	m.check()
	m.expiry = expiry{lifetime: m.lifetime, idle: m.idleTimeout}
	m.transport = cookieTransport{&m.config}
	if m.tokenHeaderSet {
		m.transport = headerTransport{m.tokenHeader}
	}
	if nb, ok := backend.(NameBinder); ok {
		backend = nb.BindName(m.transport.name())
		if backend == nil {
			panic("sessions: BindName returned a nil Backend")
		}
	} else {
		m.tagged, m.tag = true, tagOf(m.transport.name())
	}
	m.backend = backend
	m.reader, _ = backend.(RecordReader)
	// Last-write-wins still writes through WriteIfVersion, so that the
	// owner reaches an index and a removed record stays removed; it only
	// stops replaying and refusing on a conflict.
	m.versioned, _ = backend.(VersionedBackend)
	m.index, _ = backend.(OwnerIndex)
	m.toucher, _ = backend.(Toucher)
	if m.renewEvery > 0 {
		r, ok := backend.(Renewer)
		if !ok || m.lastWriteWins {
			panic(fmt.Sprintf("sessions: WithRenewal needs a backend that is a sessions.Renewer (memory, PostgreSQL) and conflict detection (no WithLastWriteWins); %T cannot retire a token in favour of another, and a client-side backend's cookies stay valid whatever is rotated", backend))
		}
		m.renewer = r
	}
	if m.config.validate != nil {
		v, ok := m.config.validate.(func(context.Context, *T) error)
		if !ok {
			var zero T
			panic(fmt.Sprintf("sessions: WithValidate's function is a %T, not a func(context.Context, *%T) error", m.config.validate, zero))
		}
		m.validator = v
	}
	m.appender, _ = m.codec.(AppendMarshaler)
	if fc, ok := m.codec.(fieldCodec); ok {
		if known := fc.fields(reflect.TypeFor[T]()); known != nil {
			m.fields, m.known = fc, known
			m.flashes = flashFields(reflect.TypeFor[T](), fc.tag())
		}
	}
	var zero T
	zp, err := m.codec.Marshal(&zero)
	if err != nil {
		panic(fmt.Sprintf("sessions: the codec cannot encode the zero value of %T: %v", zero, err))
	}
	m.zeroPayload = zp
	m.plan = planImage(reflect.TypeFor[T]())
	m.warnLossyFields()
	return m
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
			st.loadErr = err
			return nil, err
		}
		st.loadErr = nil
		st.session.committed = st.committed
		st.session.req = st
		st.loaded = true
	}
	return &st.session, nil
}

// Open returns the session named by token, outside any HTTP request: for
// WebSocket messages, gRPC metadata, background jobs, and tests that need a
// signed-in session. An unknown, expired or invalid token gives a new,
// empty session ([Session.IsNew]); only a backend failure is an error.
// Change the session, then call [Session.Save], after which
// [Session.Token] gives the token to hand to the client.
//
// The session belongs to the caller, who must not use it from several
// goroutines that rely on its being saved in a particular order.
func (m *Manager[T]) Open(ctx context.Context, token string) (*Session[T], error) {
	s := new(Session[T])
	if err := m.loadToken(ctx, s, token, token != ""); err != nil {
		return nil, err
	}
	return s, nil
}

func (m *Manager[T]) logger() *slog.Logger {
	if m.config.logger != nil {
		return m.config.logger
	}
	return slog.Default()
}

// audit logs event in the audit trail, when it is on.
func (m *Manager[T]) audit(ctx context.Context, event, handle, owner string, attrs ...any) {
	if !m.config.audit {
		return
	}
	l := m.config.auditLogger
	if l == nil {
		l = m.logger()
	}
	l.InfoContext(ctx, "sessions: audit", append([]any{"event", event, "handle", handle, "owner", owner}, attrs...)...)
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

// newHeader returns the record header of a session created at now.
func (m *Manager[T]) newHeader(now int64) recordHeader {
	return recordHeader{created: now, accessed: now, issued: now, tagged: m.tagged, tag: m.tag}
}

// persistentFor reports whether a session whose record says p gets a
// persistent cookie.
func (m *Manager[T]) persistentFor(p persistence) bool {
	return p == persistOn || p == persistDefault && m.persistent
}

// ownRecord reports whether a record with header h was stored by a manager
// of this one's cookie name. A legacy record never is: it may belong to
// another manager sharing the backend, and taking it for this one's would
// let a token move from one cookie name to another, which the name tag
// prevents.
func (m *Manager[T]) ownRecord(h recordHeader) bool {
	return !h.legacy && h.tagged == m.tagged && h.tag == m.tag
}

// touchable reports whether the stored session s can have its expiry
// extended by a touch: the backend is a Toucher and reported the record's
// expiry. Without that report the manager cannot tell when a touch is
// due, nor enforce the idle timeout by the record's access time after a
// touch that did not move it, so the record is rewritten instead.
func (m *Manager[T]) touchable(s *Session[T]) bool {
	return m.toucher != nil && s.expiryReported
}

// maxAge returns the Max-Age of a cookie for a session with header h sent
// at now: the rest of its lifetime for a persistent cookie, 0 for a
// browser-session cookie.
func (m *Manager[T]) maxAge(h recordHeader, now int64) time.Duration {
	if !m.persistentFor(h.persist) {
		return 0
	}
	return m.expiry.remaining(h, now)
}

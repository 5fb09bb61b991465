package sessions

import (
	"bytes"
	"log/slog"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A Session is one client's session as seen by one request: a value of the
// user's type T, and what the request did to it.
//
// A Session belongs to the request that loaded it; its methods are safe for
// concurrent use by that request's goroutines, but changes made through
// [Session.Data] are not synchronized and must not race with each other.
// Changes made after the response header has been written are not saved.
type Session[T any] struct {
	mu sync.Mutex

	data T
	id   string // current ID; the token, for a session loaded from the backend
	// exposed is set once data may have changed: Data handed out a
	// pointer, or Update ran. Until then, saving needs no encoding.
	exposed atomic.Bool
	// plan images data, or is nil for a type that cannot be imaged;
	// snapshot holds data's image from when Data first handed out a
	// pointer (see snapshot.go), or is nil.
	plan     *imagePlan
	snapshot *[]byte

	// loadedToken is the token the request came with, if it named a live
	// record; "" for a new session.
	loadedToken string
	// loadedPayload holds the codec's bytes as loaded, to tell whether the
	// data changed. For a new session it is nil.
	loadedPayload []byte
	loadedPersist persistence // the loaded record's choice of cookie
	header        recordHeader
	version       uint64 // the loaded record's version, for a VersionedBackend
	isNew         bool
	hadCookie     bool // the request carried a cookie of the session's name

	stored      bool   // a record exists under id
	removeToken string // stale token to remove once the new state is saved
	forceSave   bool   // save even if the data did not change
	destroyed   bool   // expire the cookie unless something new is saved
	persistSet  bool   // SetPersistent was called: the choice outlives a reload

	// updates are the functions given to Update, to replay on a record that
	// changed under this request. updateMu runs them one at a time.
	updates   []func(*T)
	updateMu  sync.Mutex
	committed bool  // the response header is out; changes can no longer be saved
	now       int64 // the request's time, Unix seconds
	logger    *slog.Logger
}

// Data returns a pointer to the session's value. Read it, or change it in
// place: the middleware compares the value with what was loaded before it
// writes the response header and saves it when it changed, nested slices
// and maps included. For types without maps or interfaces the comparison
// needs no encoding: the first call copies the value's contents aside, and
// an unchanged value costs two such copies. Changes made here cannot be
// merged with a concurrent request's; prefer [Session.Update] for them.
func (s *Session[T]) Data() *T {
	if s.plan != nil && !s.exposed.Load() {
		s.takeSnapshot()
	}
	s.exposed.Store(true)
	return &s.data
}

// takeSnapshot images data before Data hands out the first pointer to it.
// Holding updateMu keeps an Update from changing data under the image.
func (s *Session[T]) takeSnapshot() {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exposed.Load() || s.committed {
		return // another goroutine's Data or Update came first
	}
	buf := frames.Get().(*[]byte)
	*buf = s.plan.appendImage((*buf)[:0], unsafe.Pointer(&s.data))
	s.snapshot = buf
	s.exposed.Store(true)
}

// unchangedSinceSnapshotLocked reports whether data still has the image
// taken when Data first handed it out.
func (s *Session[T]) unchangedSinceSnapshotLocked() bool {
	if s.snapshot == nil {
		return false
	}
	buf := frames.Get().(*[]byte)
	image := s.plan.appendImage((*buf)[:0], unsafe.Pointer(&s.data))
	same := bytes.Equal(image, *s.snapshot)
	*buf = image[:0]
	putFrame(buf)
	return same
}

// dropSnapshotLocked forgets the snapshot, after which changes are found
// by encoding.
func (s *Session[T]) dropSnapshotLocked() {
	if s.snapshot != nil {
		putFrame(s.snapshot)
		s.snapshot = nil
	}
}

// Value returns a copy of the session's value, for handlers that only
// read it. Unlike [Session.Data], it tells the manager that the request
// changed nothing, which spares the work of detecting changes. The copy is
// shallow: slices and maps in it are the session's own, and must not be
// modified through it.
func (s *Session[T]) Value() T { return s.data }

// Update applies fn to the session's value now and records it, so that the
// change survives concurrent requests: when another request saved the same
// session after this one loaded it, the manager reloads the current value,
// replays every function given to Update, in order, and saves the result.
// Counters, appends and other read-modify-write changes belong here.
//
// fn may therefore run more than once, and must depend only on the value it
// is given (and on values it captured before Update): no I/O, no clock
// reads that should not repeat. It must not call the Session's methods.
// Calls from several goroutines are serialized.
//
// Changes made through [Session.Data] cannot be replayed; see
// [ErrConflict].
func (s *Session[T]) Update(fn func(*T)) {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	s.exposed.Store(true)
	fn(&s.data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.warnCommitted("Update") {
		s.updates = append(s.updates, fn)
	}
}

// ID returns the session's identifier. For a server-side backend it is the
// token kept in the client's cookie and stays the same until
// [Session.Regenerate] or [Session.Destroy]; for the cookie backend, which
// keeps no record, it is the signed cookie value of the request. Either way
// it is a bearer secret: do not log it or show it to other users.
func (s *Session[T]) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// IsNew reports whether the request came without a valid session, so that
// this one was made for it.
func (s *Session[T]) IsNew() bool { return s.isNew }

// Regenerate gives the session a new ID and keeps its data; the record under
// the old ID is removed once the new one is saved. Call it whenever the
// user's privileges change, login above all, so that an ID an attacker planted
// or saw before is worth nothing afterwards (session fixation).
func (s *Session[T]) Regenerate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warnCommitted("Regenerate") {
		return
	}
	s.retireLocked()
	s.id = NewID()
	s.forceSave = true
}

// Destroy drops the session: the data becomes T's zero value, the record is
// removed and the cookie expired (logout). A value set after Destroy starts a
// new session with a new ID.
func (s *Session[T]) Destroy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warnCommitted("Destroy") {
		return
	}
	s.retireLocked()
	// The value starts over, so an image of the old one proves nothing.
	s.dropSnapshotLocked()
	var zero T
	s.data = zero
	s.id = NewID()
	s.loadedPayload = nil
	s.updates = nil
	s.header = recordHeader{created: s.now, accessed: s.now}
	s.forceSave = false
	s.destroyed = true
}

// SetPersistent chooses, for this session only, between a persistent cookie
// (true: it outlives the browser, until the manager's lifetime ends; the
// "remember me" box) and a browser-session cookie (false: it dies with the
// browser). The choice is kept with the session. Without a call, the
// manager's lifetime decides: see [WithLifetime].
func (s *Session[T]) SetPersistent(persistent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warnCommitted("SetPersistent") {
		return
	}
	p := persistOff
	if persistent {
		p = persistOn
	}
	s.persistSet = true
	if p != s.header.persist {
		s.header.persist = p
		s.forceSave = true
	}
}

// retireLocked marks the stored record, if any, for removal at save time:
// it must not outlive the ID the session is leaving.
func (s *Session[T]) retireLocked() {
	if s.stored {
		s.removeToken = s.loadedToken
		s.stored = false
	}
}

func (s *Session[T]) warnCommitted(method string) bool {
	if s.committed {
		s.logger.Warn("sessions: " + method + " called after the response header was written; ignored")
	}
	return s.committed
}

package sessions

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// A Session is one client's session as seen by one request: a value of the
// user's type T, and what the request did to it.
//
// A Session belongs to the request that loaded it. Its methods are safe for
// concurrent use by that request's goroutines: one lock orders them, and the
// save that the middleware runs before the response header. The pointer that
// [Session.Data] returns is the exception: reading or changing the value
// through it is not synchronized, so a request that does so from several
// goroutines must order those accesses itself, or use [Session.Value] and
// [Session.Update], which are. [Session.Save] writes the response header;
// see it for what that asks of the handler.
//
// Changes made after the response header has been written are kept in the
// Session but not saved by the middleware, which logs a warning unless
// [Session.Save] stored them. A change made then through a pointer that
// Data handed out before the header is found, and warned about, for types
// without maps or interfaces, whose check costs no encoding; for other
// types only when Data is called again after the header.
type Session[T any] struct {
	mu sync.Mutex
	m  *Manager[T]
	// req is the request the session belongs to; nil for a session from
	// [Manager.Open].
	req sessionRequest

	data T
	// exposed is set once data may have changed: Data handed out a
	// pointer, or Update ran. Until then, saving needs no encoding.
	exposed bool
	// handedOut is set once Data handed out a pointer, through which the
	// value may change at any time, after the save included.
	handedOut bool
	// snap holds data's image from when Data first handed out a pointer
	// (see snapshot.go), or is nil.
	snap *snapshot

	// sessionState is the session's record and what the request did to
	// it (state.go).
	sessionState

	// updates are the functions given to Update, to replay on a record that
	// changed under this request.
	updates   []func(*T)
	committed bool // the response header is out; the middleware saves no more
	// lateChange is set by a change made after the commit, which the
	// middleware will not save; lateData by a call to Data after it, which
	// may have made one.
	lateChange bool
	lateData   bool
	// finished is set once the middleware is done with the request: a
	// change after it is lost, and said so at once.
	finished   bool
	lostWarned bool
	// running is set while a function given to Update runs, holding the
	// lock: a call on the Session from inside it would wait for ever.
	running atomic.Bool
}

// Data returns a pointer to the session's value. Read it, or change it in
// place: the middleware compares the value with what was loaded before it
// writes the response header and saves it when it changed, nested slices
// and maps included. For types without maps or interfaces the comparison
// needs no encoding: the first call copies the value's contents aside, and
// an unchanged value costs three such copies: one when Data hands it out,
// one when the middleware saves, and one, for a response whose header went
// out before the handler returned, to look for changes made after it.
//
// Changes made through the pointer cannot be replayed on a session that
// another request saved meanwhile, but they are merged with it field by
// field: they fail with [ErrConflict] only when the other request changed
// the same top-level field to another value. Prefer [Session.Update] for
// read-modify-write changes, such as counters. Access through the pointer
// is not synchronized with the Session's methods; see [Session].
func (s *Session[T]) Data() *T {
	s.lock()
	defer s.mu.Unlock()
	s.lateData = s.lateData || s.committed
	s.noteLostLocked()
	s.handedOut = true
	if !s.exposed {
		if s.m.plan != nil {
			s.snap = takeSnapshot(s.m.plan, &s.data)
		}
		s.exposed = true
	}
	return &s.data
}

// lock takes the Session's lock. A call from inside a function given to
// Update would wait for ever for the lock that Update holds: it panics
// instead, with a message that says why.
func (s *Session[T]) lock() {
	if s.mu.TryLock() {
		return
	}
	if s.running.Load() && insideUpdate() {
		panic("sessions: a Session method was called from inside a function given to Session.Update; " +
			"the function must work only on the value it is given (it runs again, on another value, when the session is replayed)")
	}
	s.mu.Lock()
}

// runUpdate applies fn to v, marking the Session as running one of its
// Update functions so that lock can tell a call from inside it.
//
//go:noinline
func (s *Session[T]) runUpdate(fn func(*T), v *T) {
	s.running.Store(true)
	defer s.running.Store(false)
	fn(v)
}

// insideUpdate reports whether the calling goroutine is running a function
// given to Update: whether runUpdate is on its stack. It is only asked
// when the lock is taken while such a function runs, so it costs nothing
// on the way a request usually takes.
func insideUpdate() bool {
	var pcs [64]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "github.com/starsessions/sessions.") && strings.HasSuffix(f.Function, ").runUpdate") {
			return true
		}
		if !more {
			return false
		}
	}
}

// unchangedSinceSnapshotLocked reports whether data still has the image
// taken when Data first handed it out.
func (s *Session[T]) unchangedSinceSnapshotLocked() bool {
	return s.snap != nil && s.snap.matches(s.m.plan, unsafe.Pointer(&s.data))
}

// resnapshotLocked brings the snapshot up to date after a save, which
// succeeded if ok and stored a changed value if changed: a pointer that
// Data handed out can still change the value, and the middleware's last
// look for such a change should cost an image, not an encoding. After a
// failed save the snapshot proves nothing, and goes.
func (s *Session[T]) resnapshotLocked(ok, changed bool) {
	switch {
	case !ok || !s.handedOut || s.m.plan == nil:
		s.dropSnapshotLocked()
	case changed || s.snap == nil:
		s.dropSnapshotLocked()
		s.snap = takeSnapshot(s.m.plan, &s.data)
	}
}

// dropSnapshotLocked forgets the snapshot, after which changes are found
// by encoding.
func (s *Session[T]) dropSnapshotLocked() {
	if s.snap != nil {
		s.snap.release()
		s.snap = nil
	}
}

// Value returns a copy of the session's value, for handlers that only
// read it. Unlike [Session.Data], it tells the manager that the request
// changed nothing, which spares the work of detecting changes. The copy is
// shallow: slices and maps in it are the session's own, and must not be
// modified through it.
func (s *Session[T]) Value() T {
	s.lock()
	defer s.mu.Unlock()
	return s.data
}

// Update applies fn to the session's value now and records it, so that the
// change survives concurrent requests: when another request saved the same
// session after this one loaded it, the manager reloads the current value,
// replays every function given to Update, in order, and saves the result.
// Counters, appends and other read-modify-write changes belong here.
//
// fn may therefore run more than once, and must depend only on the value it
// is given (and on values it captured before Update): no I/O, no clock
// reads that should not repeat. It runs holding the Session's lock, so it
// must not call the Session's methods: such a call panics, rather than
// wait for ever for the lock, and rather than read a value that a replay
// would not give it. Calls from several goroutines are serialized.
//
// Changes made through [Session.Data] cannot be replayed, only merged
// field by field; see [ErrConflict]. An Update after the request has
// ended, from a goroutine that outlived the handler, is not saved, and a
// warning says so.
func (s *Session[T]) Update(fn func(*T)) {
	s.lock()
	defer s.mu.Unlock()
	s.exposed = true
	s.noteLateChangeLocked()
	s.runUpdate(fn, &s.data)
	s.updates = append(s.updates, fn)
}

// Token returns the session's token: the value the client presented, or
// the one the response gives it. It is "" for a session that has not been
// stored, and after [Session.Destroy]. For a server-side backend the token
// stays the same until [Session.Regenerate] or Destroy, or a renewal
// ([WithRenewal]), from the save that renews it; for the cookie
// backend it is the whole signed cookie value, which changes with every
// save.
//
// After Regenerate, Token never names the retired record: on a server-side
// backend it is the new token at once (the ID the save stores the session
// under; a backend whose Write returns another token than the ID it is
// given has its own from the save on), and on the cookie backend it is ""
// until the save makes the new cookie.
//
// The token is a bearer secret: whoever holds it holds the session. Never
// log it or show it; use [Session.Handle] for that.
func (s *Session[T]) Token() string {
	s.lock()
	defer s.mu.Unlock()
	return s.token
}

// Handle returns a public identifier of the session, safe to log and to
// show its user (in a list of their signed-in devices, say): 128 bits of
// the SHA-256 of the token, base64url-encoded, from which the token cannot
// be recovered. It is "" when [Session.Token] is, and changes when it
// does: after [Session.Regenerate] it is the new session's handle, the one
// to pass to [Manager.RevokeAll] as keep. A server-side session keeps its
// handle across saves, until Regenerate or Destroy, or a renewal: a handle
// shown before a renewal no longer names the session, and [Manager.Revoke]
// of it ends nothing (list the sessions again to revoke); a cookie session's
// token, and so its handle, changes with every save, so for the cookie
// backend the handle names one issued cookie rather than the session.
func (s *Session[T]) Handle() string {
	return handleOf(s.Token())
}

// IsNew reports whether the session was made for this request: the request
// came without a valid session, or the session was destroyed
// ([Session.Destroy]) since.
func (s *Session[T]) IsNew() bool {
	s.lock()
	defer s.mu.Unlock()
	return s.isNew
}

// CreatedAt returns when the session was created, to the second: when it
// was first stored, or when [Session.Regenerate] last started it anew.
func (s *Session[T]) CreatedAt() time.Time {
	s.lock()
	defer s.mu.Unlock()
	return time.Unix(s.header.created, 0)
}

// ExpiresAt returns the moment from which the server will refuse the
// session if it is not used again: the end of its lifetime (see
// [WithLifetime]) or, with an idle timeout, the end of the idle timeout
// that the request extends, whichever comes first. A request that only
// reads extends the idle timeout only when less than it is left (see
// [WithIdleTimeout]), so the idle end lies between the idle timeout and
// the idle timeout plus a hundredth after the last use.
func (s *Session[T]) ExpiresAt() time.Time {
	s.lock()
	defer s.mu.Unlock()
	e := s.m.expiry
	return time.Unix(e.expiresAt(s.header, e.extended(s.header, s.stored, s.m.touchable(s), s.storedExpires, s.now)), 0)
}

// Persistent reports whether the session's cookie outlives the browser:
// the choice [Session.SetPersistent] made, or else [WithPersistent]'s.
func (s *Session[T]) Persistent() bool {
	s.lock()
	defer s.mu.Unlock()
	return s.m.persistentFor(s.header.persist)
}

// Regenerate gives the session a new ID and keeps its data and owner; the
// record under the old ID is removed once the new one is saved, and
// [Session.Token] and [Session.Handle] name the new session at once. Call
// it whenever the user's privileges change, login above all, so that an ID
// an attacker planted or saw before is worth nothing afterwards (session
// fixation). The regenerated session starts a new lifetime: as OWASP
// counts the absolute timeout from the login, [Session.CreatedAt] becomes
// now.
func (s *Session[T]) Regenerate() {
	s.lock()
	defer s.mu.Unlock()
	s.noteLateChangeLocked()
	s.regenerate()
}

// Destroy drops the session: the data becomes T's zero value, the record is
// removed and the cookie expired (logout). From then on the session is a
// new one: [Session.Token] and [Session.Handle] are "" and
// [Session.IsNew] reports true, and a value set after Destroy starts a new
// session with a new ID.
func (s *Session[T]) Destroy() {
	s.lock()
	defer s.mu.Unlock()
	s.noteLateChangeLocked()
	s.destroyLocked()
}

func (s *Session[T]) destroyLocked() {
	// The value starts over, so an image of the old one proves nothing.
	s.dropSnapshotLocked()
	var zero T
	s.data = zero
	s.updates = nil
	s.destroy(s.m.newHeader(s.now))
}

// SetOwner ties the session to owner, usually the signed-in user's ID, so
// that [Manager.Sessions] lists it among that owner's sessions and
// [Manager.Revoke] and [Manager.RevokeAll] can end it; "" unties it. Call it
// at login, beside [Session.Regenerate]. The owner is kept with the
// session's record, not in T: Regenerate keeps it, Destroy drops it. A
// session with an owner is stored even while T holds its zero value. An
// owner longer than 256 bytes makes the save fail.
//
// A stored session whose owner changes to a user, from none or from another
// user, is regenerated as by [Session.Regenerate] unless it already was in
// this request: a login on a session whose token existed before it must
// not keep that token, which an attacker may have planted (session
// fixation). [WithoutRegenerateOnOwnerChange] turns that off.
func (s *Session[T]) SetOwner(owner string) {
	s.lock()
	defer s.mu.Unlock()
	s.noteLateChangeLocked()
	s.setOwner(owner, s.m.keepTokenOnOwner)
}

// Owner returns the owner [Session.SetOwner] tied the session to, or "".
func (s *Session[T]) Owner() string {
	s.lock()
	defer s.mu.Unlock()
	return s.header.owner
}

// SetPersistent chooses, for this session only, between a persistent cookie
// (true: it outlives the browser, until the session's lifetime ends; the
// "remember me" box) and a browser-session cookie (false: it dies with the
// browser). The choice is kept with the session. Without a call,
// [WithPersistent] decides.
func (s *Session[T]) SetPersistent(persistent bool) {
	s.lock()
	defer s.mu.Unlock()
	s.noteLateChangeLocked()
	p := persistOff
	if persistent {
		p = persistOn
	}
	s.setPersistence(p)
}

// noteLateChangeLocked records a change made after the commit, which the
// middleware will not save.
func (s *Session[T]) noteLateChangeLocked() {
	if s.committed {
		s.lateChange = true
	}
	s.noteLostLocked()
}

// noteLostLocked warns, once per session, of a change after the
// middleware finished with the request: nothing will save it, and nothing
// else would say so.
func (s *Session[T]) noteLostLocked() {
	if !s.finished || s.lostWarned {
		return
	}
	s.lostWarned = true
	s.m.logger().Warn("sessions: the session was used after its request ended (from a goroutine that outlived the handler); a change made now is not saved")
}

// Save saves the session now, under the same rules as the middleware's
// save: compare-and-set; on a conflict, replay of [Session.Update]
// functions and a field-by-field merge of changes made through
// [Session.Data]; [ErrConflict] when another request changed a field this
// one changed through Data to another value. After ErrConflict the session
// stays as it was, so a later save fails the same way rather than write
// over the other request's change.
//
// Before the response header is written, it also puts the cookie or token
// header in the response; the middleware then has nothing left to do unless
// the session changes again. Save and the middleware's own save write the
// response header under the Session's lock, so they do not race each
// other; a handler that writes the header from one goroutine while another
// calls Save must order the two itself, as for any use of a
// ResponseWriter.
//
// After the header is written (a streamed response, server-sent events, a
// hijacked WebSocket), no new token can reach the client: Save stores the
// changes when the client's token stays valid for them, and otherwise saves
// nothing and returns an error matching [ErrHeaderWritten]: for a new
// session, after [Session.Regenerate], after [Session.SetPersistent] changed
// the kind of cookie, and on the cookie backend, whose token is the session
// itself. A backend that returns a new token for the write it was given
// has stored it under that token, which the client cannot get; Save then
// reports [ErrHeaderWritten] as a save of unknown outcome (below). A
// destroyed server-side session is removed even then (a logout is never
// refused); the client's token then names nothing.
//
// A save that fails for any other reason than [ErrConflict] may or may not
// have reached the store, so the Session saves no more: later saves,
// the middleware's included, return an error, rather than replay the
// session's updates over a record that may hold them already.
//
// For a session from [Manager.Open], Save stores the session and
// [Session.Token] then gives the token to hand out.
func (s *Session[T]) Save(ctx context.Context) error {
	s.lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return errors.New("sessions: Save on a Session that no Manager made")
	}
	target := toHeader
	var h http.Header
	switch {
	case s.req == nil:
		target = detached
	case s.committed:
		target = headerGone
	default:
		h = s.req.header()
	}
	if err := s.m.saveLocked(ctx, s, h, target); err != nil {
		return err
	}
	s.lateChange, s.lateData = false, false
	return nil
}

// A sessionRequest is the request a Session belongs to, as Save needs it.
type sessionRequest interface {
	// header returns the response header, which the caller will write a
	// token to, and adds the Vary header for it.
	header() http.Header
}

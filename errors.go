package sessions

import "errors"

// ErrNoMiddleware is returned by [Manager.Get] for a request that did not
// pass through that manager's [Manager.Middleware].
var ErrNoMiddleware = errors.New("sessions: Get called on a request that did not pass through the manager's Middleware")

// ErrCookieTooLarge is reported when a session cookie's name and value
// together would pass 4096 bytes, the most browsers keep. Cookie-backed
// sessions hit it when their data grows too large; the response then goes to
// the error handler instead of losing the session silently. It is the one
// name for the error: the cookie backend's Write returns it, and the manager
// reports it for any backend's token that would not fit in a cookie.
var ErrCookieTooLarge = errors.New("sessions: session cookie larger than 4096 bytes")

// ErrNotSaved is returned by the response writer's Write after the session
// could not be saved and the error handler has already answered the request.
var ErrNotSaved = errors.New("sessions: response abandoned because the session could not be saved")

// ErrConflict reports that a session changed in another request between
// this request's load and its save, and this request's changes could not be
// merged: a field it changed through [Session.Data] was changed by the other
// request too, to another value (or the codec cannot take fields apart), or
// the session was destroyed, regenerated or revoked meanwhile.
// The default error handler answers it with 409 Conflict. Backends that
// implement [VersionedBackend] return it, wrapped or not, from their
// conditional methods.
var ErrConflict = errors.New("sessions: session changed by a concurrent request")

// ErrCorrupt reports that a backend returned bytes that are not a session
// record this package wrote: the record's header is missing, malformed or of
// an unknown format. The request goes to the error handler (500 by default)
// rather than to a fresh session, because the store may still hold the
// user's session and replacing it would lose it silently. A well-formed
// record whose data no longer decodes into T, as after a change to T, is
// not corrupt: it gives a fresh session and a warning (one per burst of
// them).
var ErrCorrupt = errors.New("sessions: backend returned a corrupt session record")

// ErrHeaderWritten is returned, wrapped, by [Session.Save] when the
// response header has been written and the save would need to give the
// client a new token, a new kind of cookie, or delete its token: for a new
// session, after [Session.Regenerate], after [Session.SetPersistent]
// changed the kind of cookie, and for every save on the cookie backend
// that has something to store or to end, [Session.Destroy] included (the
// cookie then stays valid). A save with nothing to store returns nil.
var ErrHeaderWritten = errors.New("sessions: the response header has been written; the client's token cannot change")

// ErrRevokeIncomplete is returned, wrapped, by [Manager.RevokeAll] when it
// cannot confirm that every session of the owner ended: sessions were still
// listed after its last pass.
var ErrRevokeIncomplete = errors.New("sessions: not every session of the owner could be confirmed ended")

// ErrRevoked, returned wrapped or not by the function given to
// [WithValidate], ends the session it was given: its record is removed, the
// request goes on with a fresh, empty session, and the client's cookie is
// replaced. [Session.Check] returns it, wrapped, for a session that no
// longer stands: revoked, destroyed, refused or expired.
var ErrRevoked = errors.New("sessions: session revoked")

package sessions

import "fmt"

// A sessionState is the persistent part of a session as one request sees
// it: which record it was loaded from, which it will be stored under, its
// header, and what the request did to it. It is the one home of that
// state: every change to it is one of the transitions below, and the save
// path (save.go) decides from it, in planSave, before it acts.
//
// The life of a session, as its transitions:
//
//	fresh ─── no usable record ───────────────┐
//	loaded ── a live record for the token ────┤
//	                                          ├─ regenerate ─ new ID; the record retires
//	                                          ├─ destroy ──── zero value, new ID; the record retires
//	                                          ├─ written ──── a save stored it
//	                                          ├─ touched ──── a save extended its expiry
//	                                          └─ removed ──── a save removed the retired record
//
// A sessionState is guarded by its Session's lock.
type sessionState struct {
	id    string // the ID the next write stores the session under
	token string // what Token returns: the token of the stored record, or "" for none
	// loadedToken is the token of the record the session was loaded from
	// or last written to; "" for a new session.
	loadedToken string
	// loadedPayload holds the codec's bytes as loaded or last written, to
	// tell whether the data changed. For a new session it is nil.
	loadedPayload []byte
	loadedPersist persistence // the loaded record's choice of cookie
	loadedOwner   string      // the loaded record's owner
	header        recordHeader
	version       uint64 // the loaded record's version, for a VersionedBackend
	isNew         bool
	hadToken      bool // the client holds a token of the session's name
	clientSide    bool // the record lives in the token: see Record.ClientSide
	// storedExpires is when the backend drops the record unless extended,
	// in Unix seconds, as it reported at load or as the last save set it;
	// 0 when unknown. expiryReported says the backend reported it, which
	// lets a Toucher be touched rather than rewritten.
	storedExpires  int64
	expiryReported bool

	stored      bool   // a record exists under id
	removeToken string // the retired record's token, to remove once the new state is saved
	forceSave   bool   // save even if the data did not change
	destroyed   bool   // expire the cookie unless something new is saved
	persistSet  bool   // SetPersistent was called: the choice outlives a reload
	regenerated bool   // the session has a new ID since it was loaded
	// presented is the token the client holds for the session: the one it
	// sent, or the one the response gives it. It differs from token when a
	// retired token led to its successor, which the response must send.
	presented string
	renewDue  bool // the token is due for renewal (WithRenewal)
	renewing  bool // the save moves the session to a new token, retiring the old one with a grace
	// renewOnly is set when the renewal is all the save has to do, and
	// renewedFrom is the issue time it replaced: such a save that meets a
	// conflict drops the renewal rather than fail the request.
	renewOnly   bool
	renewedFrom int64
	ownerSet    bool // SetOwner was called: the owner outlives a reload
	// refused is set when the validator ended the loaded session, which
	// the audit trail has recorded already.
	refused bool
	// failed holds the error of a save whose write may or may not have
	// landed; the session saves no more after it.
	failed error

	now int64 // the request's time, Unix seconds: one clock read per request
}

// begin starts the request's view of the session, at now; hadToken says
// the client sent a token of the session's name.
func (st *sessionState) begin(now int64, hadToken bool) {
	st.now, st.hadToken = now, hadToken
}

// fresh makes the state that of a new session, with header h.
func (st *sessionState) fresh(h recordHeader) {
	st.id = NewID()
	st.isNew = true
	st.header = h
}

// loaded makes the state that of the record stored under token, with
// header h and payload, as rec describes it.
func (st *sessionState) loaded(token string, h recordHeader, payload []byte, rec Record) {
	st.id, st.token, st.loadedToken, st.presented = token, token, token, token
	st.loadedPayload = payload
	st.header = h
	st.loadedPersist, st.loadedOwner = h.persist, h.owner
	st.stored = true
	st.forceSave = rec.Rotate
	st.version = rec.Version
	st.clientSide = rec.ClientSide
	if !rec.ExpiresAt.IsZero() {
		st.storedExpires, st.expiryReported = rec.ExpiresAt.Unix(), true
	}
}

// forwarded records that the client presented retired, a retired token
// whose grace led to the loaded session: the response gives the client the
// session's token.
func (st *sessionState) forwarded(retired string) { st.presented = retired }

// renew moves the session to a new ID, keeping everything else, its
// lifetime included; the save retires the old token with a grace rather
// than remove it.
func (st *sessionState) renew(only bool) {
	st.renewOnly, st.renewedFrom = only, st.header.issued
	st.retire()
	st.id = NewID()
	st.token = st.id
	st.header.issued = max(st.now, st.header.created+1)
	st.forceSave = true
	st.renewing = true
	st.renewDue = false
}

// renewalDropped puts the session back on the token it was loaded with,
// after a renewal that was all its save had to do met a conflict: another
// request saved, renewed or ended the session meanwhile, and the next
// request renews it if it is still due.
func (st *sessionState) renewalDropped() {
	st.id, st.token = st.loadedToken, st.loadedToken
	st.removeToken = ""
	st.stored = true
	st.renewing, st.renewOnly = false, false
	st.header.issued = st.renewedFrom
	st.forceSave = false
}

// movedTo records that another request renewed the session's loaded token
// meanwhile, to successor, which this request's save now goes to: a
// renewal of its own is dropped (it reports true then, and the record it
// made must go), and a Regenerate or Destroy retires the successor instead.
func (st *sessionState) movedTo(successor string) (renewalDropped bool) {
	old := st.loadedToken
	st.loadedToken = successor
	switch {
	case st.renewing:
		st.renewing = false
		st.removeToken = ""
		st.id, st.token = successor, successor
		st.stored = true
		return true
	case st.removeToken == old:
		st.removeToken = successor
	case st.id == old:
		st.id, st.token = successor, successor
	}
	return false
}

// retire marks the stored record, if any, for removal at save time: it
// must not outlive the ID the session is leaving.
func (st *sessionState) retire() {
	if st.stored {
		st.removeToken = st.loadedToken
		st.stored = false
	}
}

// regenerate moves the session to a new ID, keeping its data, owner and
// kind of cookie, and starts a new lifetime at now: the absolute timeout
// counts from the login, which is what Regenerate marks. A server-side
// session's new token is its new ID, from now on; a client-side session
// has no token until the save makes one.
func (st *sessionState) regenerate() {
	wasStored := st.stored || st.removeToken != ""
	st.retire()
	st.id = NewID()
	st.token = ""
	if wasStored && !st.clientSide {
		st.token = st.id
	}
	st.header.created, st.header.accessed, st.header.issued = st.now, st.now, st.now
	st.storedExpires, st.expiryReported = 0, false
	st.forceSave = true
	st.regenerated = true
	st.renewDue = false
}

// destroy drops the session's record and starts a new, empty session with
// header h, which is stored only if something is set in it.
func (st *sessionState) destroy(h recordHeader) {
	st.retire()
	st.id = NewID()
	st.token = ""
	st.loadedPayload = nil
	st.header = h
	st.storedExpires, st.expiryReported = 0, false
	st.forceSave = false
	st.persistSet, st.ownerSet = false, false
	st.destroyed = true
	st.isNew = true
}

// refuse records that the validator ended the loaded session (which is
// destroyed, and audited as refused rather than destroyed).
func (st *sessionState) refuse() { st.refused = true }

// setOwner ties the session to owner, and reports whether that changed it.
// A stored session that comes to belong to someone, or to someone else, is
// regenerated first unless it was already in this request (or keep says
// not to): its ID may have been planted or seen before the login, and must
// be worth nothing after it (session fixation).
func (st *sessionState) setOwner(owner string, keep bool) bool {
	st.ownerSet = true
	if owner == st.header.owner {
		return false
	}
	if owner != "" && !keep && !st.regenerated && (st.stored || st.removeToken != "") {
		st.regenerate()
	}
	st.header.owner = owner
	st.forceSave = true
	return true
}

// setPersistence chooses the session's kind of cookie.
func (st *sessionState) setPersistence(p persistence) {
	st.persistSet = true
	if p != st.header.persist {
		st.header.persist = p
		st.forceSave = true
	}
}

// stamp brings the header's access time up to now, as a write records it,
// and notes the expiry the write gives the record. A clock behind the one
// that created the session must not store an access before the creation,
// which the header cannot hold: the access time is then the creation time.
func (st *sessionState) stamp(now int64, ttlSeconds int64) {
	st.header.accessed = max(now, st.header.created)
	st.storedExpires = now + ttlSeconds
}

// written records that a save stored the session under token, with the
// given payload and version.
func (st *sessionState) written(token string, payload []byte, version uint64) {
	st.token, st.loadedToken = token, token
	st.loadedPayload = append(st.loadedPayload[:0:0], payload...)
	st.version = version
	st.stored = true
	st.removeToken = ""
	st.renewing = false
}

// touched records that a save extended the record's expiry to expires
// without rewriting it.
func (st *sessionState) touched(expires int64) { st.storedExpires = expires }

// removed records that the retired record is gone from the store. A
// destroyed session's client then holds a token that names nothing.
func (st *sessionState) removed() {
	if st.loadedToken == st.removeToken {
		st.loadedToken = ""
	}
	if st.token == st.removeToken {
		st.token = ""
	}
	st.removeToken = ""
}

// logoutDone records that a destroyed session's record is gone although
// the save could do nothing else (the header was out): nothing is left to
// remove.
func (st *sessionState) logoutDone() { st.destroyed = false }

// tokenSent records that the response gives the client the session's
// token; tokenCleared that it tells the client to drop it.
func (st *sessionState) tokenSent()    { st.hadToken, st.presented = true, st.token }
func (st *sessionState) tokenCleared() { st.hadToken = false }

// rebasedOn makes the state that of r, the record the session was loaded
// from as another request left it: its version, creation time and payload
// to compare with, and its kind of cookie and owner where this request did
// not set them itself.
func (st *sessionState) rebasedOn(r reloaded) {
	if r.successor != "" {
		st.movedTo(r.successor)
	}
	st.version = r.version
	if !st.regenerated {
		// A regenerated session started a lifetime of its own.
		st.header.created = r.header.created
		if !st.renewing {
			st.header.issued = r.header.issued
		}
	}
	if !st.persistSet {
		st.header.persist = r.header.persist
	}
	if !st.ownerSet {
		st.header.owner = r.header.owner
	}
	st.loadedOwner = r.header.owner
	st.loadedPayload = r.payload
}

// settled makes what was just saved the session's new starting point: its
// changes are stored, and a later save looks only for new ones.
func (st *sessionState) settled() {
	st.forceSave = false
	st.destroyed = false
	st.refused = false
	st.persistSet, st.ownerSet = false, false
	st.loadedPersist = st.header.persist
	st.loadedOwner = st.header.owner
}

// failedWith records a save of unknown outcome: the session saves no more,
// rather than replay its updates over a record that may hold them already.
func (st *sessionState) failedWith(err error) error {
	st.failed = err
	return err
}

// checkSavable returns why the session cannot be saved at all, or nil.
func (st *sessionState) checkSavable() error {
	if st.failed != nil {
		return fmt.Errorf("sessions: an earlier save of this session failed, and its outcome is unknown: %w", st.failed)
	}
	if len(st.header.owner) > maxOwnerLength {
		return fmt.Errorf("sessions: the session's owner is %d bytes; at most %d are kept", len(st.header.owner), maxOwnerLength)
	}
	return nil
}

package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// A saveTarget says where a save's token goes.
type saveTarget uint8

const (
	toHeader   saveTarget = iota // the response header, still to be written
	headerGone                   // nowhere: the client keeps the token it has
	detached                     // nowhere: a session from Open, whose caller hands the token out
)

// A saveInput is what the request did to its session, as far as saving
// is concerned.
type saveInput struct {
	dirty      bool // there is data to write: changed, or forced by Regenerate, SetPersistent or a token to reissue
	stored     bool // a record exists under the session's ID
	retiring   bool // a record under a token the session left must go
	destroyed  bool
	hadToken   bool // the client holds a token of the session's name
	touchable  bool // the backend can extend the record's expiry without a write, and reported it
	extendDue  bool // the manager has an idle timeout, and the record's expiry has fallen behind it by its slack or more
	versioned  bool // the backend writes on condition of a version
	tokenFixed bool // the response header is out: the client's token cannot change
	clientSide bool // the record lives in the token, so every write changes it
	// persistChanged is set when the kind of cookie changed, which only a
	// new Set-Cookie can tell the client.
	persistChanged bool
	// stale is set when the client holds a retired token that led to the
	// session (WithRenewal): the response must give it the current one.
	stale bool
}

// A savePlan is what saving a session takes.
type savePlan struct {
	write       bool // write the session's record
	refreshOnly bool // the write only brings the access time up to date
	// recheck asks a refresh to read the record again first and to write
	// only if it is still the one loaded: without versions nothing else
	// keeps a refresh from bringing back a record that a concurrent
	// request removed, or from undoing its change.
	recheck bool
	touch   bool // extend the record's expiry instead of writing it
	remove  bool // remove the retired record (a write removes it itself)
	expire  bool // tell the client to drop its token
	send    bool // give the client the session's token, which nothing else sends
	// err is why the save cannot be done. Nothing is done then, but the
	// removal of a destroyed session's record, which needs no new token.
	err error
}

// planSave decides what saving takes; saveLocked carries it out.
func planSave(in saveInput) savePlan {
	var p savePlan
	switch {
	case in.dirty:
		p.write = true
	case in.stored && in.extendDue && in.touchable:
		p.touch = true
	case in.stored && in.extendDue:
		p.write, p.refreshOnly = true, true
		p.recheck = !in.versioned && !in.clientSide
	}
	if !p.write {
		p.remove = in.retiring
		p.expire = in.destroyed && in.hadToken
		p.send = in.stale && !in.destroyed && !in.retiring
	}
	if !in.tokenFixed {
		return p
	}
	// No new token, no deletion and no new kind of cookie reaches the
	// client any more. A record that lives in the client's token cannot be
	// removed either: removing it is what expiring the cookie does.
	p.remove = p.remove && !in.clientSide
	switch {
	case p.write && p.refreshOnly && in.clientSide:
		return savePlan{} // the idle refresh waits for the next request
	case p.write && !in.stored:
		p.err = fmt.Errorf("%w: a new or regenerated session needs a token the client does not have", ErrHeaderWritten)
		// A logout still happens: the destroyed record goes, and the
		// client keeps a token that names nothing.
		p = savePlan{remove: in.destroyed && in.retiring && !in.clientSide, err: p.err}
	case p.write && in.clientSide:
		p.err = fmt.Errorf("%w: the session lives in the client's token, which a save replaces", ErrHeaderWritten)
	case p.expire && in.clientSide:
		p.err = fmt.Errorf("%w: the session lives in the client's token, which cannot be deleted now", ErrHeaderWritten)
	case p.write && in.persistChanged:
		p.err = fmt.Errorf("%w: a new kind of cookie needs a new Set-Cookie", ErrHeaderWritten)
	}
	if p.err != nil && !p.remove {
		return savePlan{err: p.err}
	}
	// A server-side session's record is removed; the client keeps a
	// token that names nothing.
	p.expire, p.send = false, false
	return p
}

// maxSaveAttempts bounds how often a save that meets conflicts is retried
// before it fails with ErrConflict.
const maxSaveAttempts = 16

// errBadToken reports a token that a backend returned and that cannot go
// into a cookie.
var errBadToken = errors.New("sessions: the backend returned a token that is not a valid cookie value")

// save is the middleware's save, just before the response header goes
// out. It adds the Vary header too, under the session's lock, so that an
// explicit Save from another goroutine does not write the header with it.
func (m *Manager[T]) save(ctx context.Context, h http.Header, s *Session[T], vary func(http.Header)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = true
	vary(h)
	return m.saveLocked(ctx, s, h, toHeader)
}

// saveLocked brings the backend, and the response header h when target is
// toHeader, up to date with s, whose lock the caller holds. After a
// successful save, what was saved is what the next save compares with.
func (m *Manager[T]) saveLocked(ctx context.Context, s *Session[T], h http.Header, target saveTarget) (err error) {
	var changed bool
	defer func() { s.resnapshotLocked(err == nil, changed) }()

	// A failed save's write may have landed: replaying its updates on top
	// of it could apply them twice.
	if err := s.checkSavable(); err != nil {
		return err
	}
	// A token due for renewal is renewed by the save that can give the
	// client its successor; a session this request regenerated or
	// destroyed has a new token, or none, already.
	// A session from Open is not renewed: a socket or a job that saves it
	// cannot hand the browser the successor, which would then present its
	// retired token after the grace and be taken for a thief.
	if s.renewDue && target == toHeader && s.stored && !s.regenerated && !s.destroyed {
		s.renew(!m.dirtyLocked(s))
	}
	buf := frames.Get().(*[]byte)
	defer putFrame(buf)
	f, dirty, err := m.changesLocked(s, buf)
	if err != nil {
		return err
	}
	changed = dirty
	before := m.auditBefore(s)
	hadToken := s.hadToken
	// The request's time, taken when the session was loaded, serves as the
	// time of access: one clock read per request is enough.
	now := s.now
	p := planSave(saveInput{
		dirty:      dirty,
		stored:     s.stored,
		retiring:   s.removeToken != "",
		destroyed:  s.destroyed,
		hadToken:   s.hadToken,
		touchable:  m.touchable(s),
		extendDue:  m.expiry.extendDue(s.header, m.touchable(s), s.storedExpires, now),
		versioned:  m.versioned != nil,
		tokenFixed: target == headerGone,
		clientSide: s.clientSide,

		persistChanged: s.header.persist != s.loadedPersist && !m.tokenHeaderSet,
		stale:          s.stored && s.token != "" && s.presented != s.token,
	})
	if p.err != nil {
		if p.remove {
			handle := handleOf(s.removeToken)
			if err := m.removeRetired(ctx, s, ""); err != nil {
				return err
			}
			m.audit(ctx, "destroyed", handle, s.loadedOwner)
			s.logoutDone()
		}
		return p.err
	}
	switch {
	case p.touch:
		ttl := m.expiry.ttl(s.header, now)
		if err := m.toucher.Touch(ctx, s.loadedToken, ttl); err != nil {
			return fmt.Errorf("sessions: extending session: %w", err)
		}
		s.touched(now + int64(ttl/time.Second))
	case p.write && p.recheck && !m.stillLoaded(ctx, s):
		// Another request changed or removed the record, and its save
		// extended or ended the session: a refresh has nothing to add.
	case p.write:
		if p.refreshOnly {
			f = append(make(frame, maxRecordHeader, maxRecordHeader+len(s.loadedPayload)), s.loadedPayload...)
		}
		if err := m.writeLocked(ctx, h, s, f, p.refreshOnly, target); err != nil {
			if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrHeaderWritten) && !errors.Is(err, ErrCookieTooLarge) && !errors.Is(err, errBadToken) {
				s.failedWith(err)
			}
			return err
		}
	}
	if p.remove {
		if err := m.removeRetired(ctx, s, ""); err != nil {
			return err
		}
	}
	if p.expire && target == toHeader {
		m.transport.clear(h)
		s.tokenCleared()
	}
	if p.send && target == toHeader {
		m.transport.send(h, s.token, m.maxAge(s.header, s.now))
		s.tokenSent()
	}
	// Clear-Site-Data goes with a logout, also when a new session follows
	// it (a flash message), unless it would delete the new session's
	// cookie too.
	if s.destroyed && hadToken && target == toHeader && m.clearSiteData != "" && (!p.write || !m.clearSiteDataCookies) {
		h.Set("Clear-Site-Data", m.clearSiteData)
	}
	m.auditSave(ctx, before, s, p)
	s.settleLocked()
	return nil
}

// removeRetired removes the record the session retired, by Regenerate or
// Destroy, from the store: the one way a retired record goes, whichever
// save removes it.
//
// A destroyed session's record goes whatever happened to it meanwhile: a
// logout is final. A regenerated session's record, on a backend with
// versions, goes only if it still has the version loaded, and otherwise
// the removal fails with ErrConflict: another request changed the session,
// and the save must take that change along to the new ID first.
//
// A renewed session's record is retired on condition of its version too,
// and leaves an entry that leads to successor, the token the session moved
// to, for the grace (see renewal.go).
func (m *Manager[T]) removeRetired(ctx context.Context, s *Session[T], successor string) error {
	var err error
	switch {
	case s.renewing:
		var r Retirement
		if r, err = m.retirement(s, s.removeToken, successor); err == nil {
			err = m.renewer.RetireIfVersion(ctx, s.removeToken, s.version, r)
		}
	case m.versioned != nil && !s.destroyed:
		err = m.versioned.RemoveIfVersion(ctx, s.removeToken, s.version)
	default:
		err = m.backend.Remove(ctx, s.removeToken)
		if err == nil && s.destroyed && m.renewer != nil {
			// Another request may have renewed the token meanwhile: the
			// logout must end its successor too.
			err = m.endSuccessors(ctx, HashToken(s.removeToken))
		}
	}
	if err != nil {
		return fmt.Errorf("sessions: removing the retired session: %w", err)
	}
	s.removed()
	return nil
}

// stillLoaded reports whether the record the session was loaded from is
// still in the store as it was loaded: what a refresh on a backend without
// versions checks before it writes. A read that fails counts as a change:
// the refresh waits for the next request.
func (m *Manager[T]) stillLoaded(ctx context.Context, s *Session[T]) bool {
	rec, found, err := m.read(ctx, s.loadedToken)
	if err != nil || !found {
		return false
	}
	h, payload, err := parseRecord(rec.Data)
	return err == nil && h.owner == s.loadedOwner && h.persist == s.loadedPersist &&
		h.created == s.header.created && bytes.Equal(payload, s.loadedPayload)
}

// settleLocked makes what was just saved the session's new starting point:
// its changes are stored, and a later save looks only for new ones.
func (s *Session[T]) settleLocked() {
	s.updates = nil
	s.settled()
}

// auditState is what the audit trail needs to know of a session before
// its save.
type auditState struct {
	on        bool
	stored    bool
	retiring  bool
	destroyed bool
	refused   bool   // the validator ended the loaded session, and said so
	renewing  bool   // the save renews the session's token
	handle    string // of the loaded token
	owner     string // the loaded record's owner
}

func (m *Manager[T]) auditBefore(s *Session[T]) auditState {
	if !m.config.audit {
		return auditState{}
	}
	return auditState{on: true, stored: s.stored, retiring: s.removeToken != "", destroyed: s.destroyed,
		refused: s.refused, renewing: s.renewing, handle: handleOf(s.loadedToken), owner: s.loadedOwner}
}

// auditSave logs what a successful save did to the session's life.
func (m *Manager[T]) auditSave(ctx context.Context, was auditState, s *Session[T], p savePlan) {
	if !was.on {
		return
	}
	if was.destroyed && was.retiring && !was.refused {
		m.audit(ctx, "destroyed", was.handle, was.owner)
	}
	if !p.write || p.refreshOnly {
		return
	}
	handle, owner := handleOf(s.token), s.header.owner
	switch {
	case !was.stored && was.retiring && was.renewing:
		m.audit(ctx, "renewed", handle, owner, "previous_handle", was.handle)
	case !was.stored && was.retiring && !was.destroyed:
		m.audit(ctx, "regenerated", handle, owner, "previous_handle", was.handle)
	case !was.stored:
		m.audit(ctx, "created", handle, owner)
	}
	previous := was.owner
	if was.destroyed || !was.stored && !was.retiring {
		previous = ""
	}
	if owner != previous {
		m.audit(ctx, "owner set", handle, owner, "previous_owner", previous)
	}
}

// changesLocked finds out whether s holds data to write, and returns its
// encoding in a frame built on buf when it had to encode it.
func (m *Manager[T]) changesLocked(s *Session[T], buf *[]byte) (frame, bool, error) {
	// Data that was never handed out is what was loaded, or the zero value
	// of a session that is new or was destroyed: no need to encode it.
	// Nor is data whose image has not changed since Data handed it out
	// (an Update before Data leaves no image).
	if !s.forceSave && (!s.exposed || s.unchangedSinceSnapshotLocked()) {
		return nil, false, nil
	}
	f, err := m.encodeSession((*buf)[:0], s)
	if err != nil {
		return nil, false, fmt.Errorf("sessions: encoding session: %w", err)
	}
	*buf = f[:0]
	if s.stored {
		return f, s.forceSave || !bytes.Equal(f.payload(), s.loadedPayload), nil
	}
	// A session with no record is worth storing once it holds something,
	// or has an owner.
	return f, s.header.owner != "" || !bytes.Equal(f.payload(), m.zeroPayload), nil
}

// dirtyLocked reports whether s holds changes that a save would store or
// remove.
func (m *Manager[T]) dirtyLocked(s *Session[T]) bool {
	if s.destroyed || s.removeToken != "" {
		return true
	}
	buf := frames.Get().(*[]byte)
	defer putFrame(buf)
	_, dirty, err := m.changesLocked(s, buf)
	return dirty || err != nil
}

// writeLocked writes s's record, from the payload in f, and sends the
// token when the client does not hold it yet.
func (m *Manager[T]) writeLocked(ctx context.Context, h http.Header, s *Session[T], f frame, refreshOnly bool, target saveTarget) error {
	// held is the token the client holds, if it names the session.
	held, heldPersist := s.loadedToken, s.loadedPersist
	var token string
	var err error
	if m.versioned != nil {
		token, err = m.writeVersioned(ctx, s, f, s.now, refreshOnly)
		if refreshOnly && errors.Is(err, ErrConflict) {
			// Another request saved the session, refreshing it too; this
			// request had nothing of its own to save.
			return nil
		}
		if s.renewOnly && errors.Is(err, ErrConflict) {
			// Nor had a renewal whose token another request saved,
			// renewed or ended meanwhile.
			s.renewalDropped()
			return nil
		}
	} else {
		token, err = m.writePlain(ctx, s, f, s.now)
	}
	if err != nil {
		return err
	}
	if target == headerGone && token != held && token != s.id {
		// The backend gave a token that cannot reach the client. Its
		// record is left to expire: a backend may name one record by
		// several tokens, and removing it by the new one could remove
		// the session the client's token still names. Whether that
		// token sees this write depends on the backend, so the session
		// saves no more, as after any save of unknown outcome.
		return s.failedWith(fmt.Errorf("%w: the backend returned a new token for a write that may or may not be seen under the client's token", ErrHeaderWritten))
	}
	resend := token != s.presented || s.header.persist != heldPersist || !s.hadToken
	if target != toHeader || !resend {
		// The client sent this very token, in a cookie that ends when the
		// session's lifetime does (Max-Age counts down to a fixed end):
		// sending it again would change nothing.
		return nil
	}
	m.transport.send(h, token, m.maxAge(s.header, s.now))
	s.tokenSent()
	return nil
}

// checkToken makes sure that a token a backend returned can be sent in the
// session cookie, before anything that depends on it happens.
func (m *Manager[T]) checkToken(token string, f frame) error {
	if !m.transport.fits(token) {
		return fmt.Errorf("%w: %d bytes of session data", ErrCookieTooLarge, len(f.payload()))
	}
	if !validToken(token) {
		return errBadToken
	}
	return nil
}

// A frame holds a session's encoding after maxRecordHeader bytes of
// headroom, so that the record header can be put in front of it without
// copying the payload.
type frame []byte

func (f frame) payload() []byte { return f[maxRecordHeader:] }

// frames recycles the buffers that sessions are encoded into.
var frames = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

func putFrame(b *[]byte) {
	if cap(*b) <= 64<<10 { // let the odd huge session go to the collector
		frames.Put(b)
	}
}

// encodeSession encodes s's value into a frame built on dst, with the
// fields of the loaded record that T does not know: a newer release wrote
// them, and a save by this one must not drop them.
func (m *Manager[T]) encodeSession(dst []byte, s *Session[T]) (frame, error) {
	f, err := m.encodeFrame(dst, &s.data)
	if err != nil || m.fields == nil {
		return f, err
	}
	if !m.fields.anyUnknown(s.loadedPayload, m.known) {
		return f, nil
	}
	pairs, ok := m.fields.split(nil, f.payload())
	if !ok {
		return f, nil
	}
	pairs = appendUnknown(pairs, m.known, m.fields, s.loadedPayload)
	merged := make(frame, maxRecordHeader, maxRecordHeader+len(f.payload())+len(s.loadedPayload))
	return m.fields.join(merged, pairs), nil
}

// encodeFrame encodes v into a frame built on dst.
func (m *Manager[T]) encodeFrame(dst []byte, v *T) (frame, error) {
	dst = append(dst[:0], make([]byte, maxRecordHeader)...)
	if m.appender != nil {
		return m.appender.AppendMarshal(dst, v)
	}
	p, err := m.codec.Marshal(v)
	return append(dst, p...), err
}

// record puts s's header in front of the payload in f and returns the
// record, and how long the backend should keep it.
func (m *Manager[T]) record(s *Session[T], f frame, now int64) ([]byte, time.Duration) {
	ttl := m.expiry.ttl(s.header, now)
	s.stamp(now, int64(ttl/time.Second))
	var hb [maxRecordHeader]byte
	h := appendRecordHeader(hb[:0], s.header)
	start := maxRecordHeader - len(h)
	copy(f[start:], h)
	return f[start:], ttl
}

// writePlain saves s with last-write-wins.
func (m *Manager[T]) writePlain(ctx context.Context, s *Session[T], f frame, now int64) (string, error) {
	rec, ttl := m.record(s, f, now)
	token, err := m.backend.Write(ctx, s.id, rec, ttl)
	if err != nil {
		return "", fmt.Errorf("sessions: saving session: %w", err)
	}
	if err := m.checkToken(token, f); err != nil {
		if s.loadedToken == "" || s.id != s.loadedToken {
			m.removeOrphan(ctx, token) // a new record, which no client can ever name
		}
		return "", err
	}
	// The old record goes only once the new one is safe, so that a failed
	// save leaves the client with a session that still works.
	if s.removeToken != "" {
		if err := m.removeRetired(ctx, s, token); err != nil {
			return "", err
		}
	}
	s.written(token, f.payload(), 0)
	return token, nil
}

// writeVersioned saves s over the version it loaded. On a conflict it
// rebases s on the current record, replaying its updates, and tries again;
// under last-write-wins it only catches up with the current version.
func (m *Manager[T]) writeVersioned(ctx context.Context, s *Session[T], f frame, now int64, refreshOnly bool) (string, error) {
	vb := m.versioned
	var lock *keyLock
	if s.loadedToken != "" {
		var err error
		if lock, err = m.saveLocks.lock(ctx, s.loadedToken); err != nil {
			return "", fmt.Errorf("sessions: saving session: %w", err)
		}
		defer func() {
			if lock != nil {
				m.saveLocks.unlock(lock)
			}
		}()
	}
	// moving: Regenerate gave the stored session a new ID; the old record
	// must be removed only if nobody changed it meanwhile.
	moving := s.removeToken != "" && !s.destroyed
	var target uint64   // the version the record under s.id has, as far as we know
	var previous string // and its owner
	if s.stored {
		target, previous = s.version, s.loadedOwner
	}
	created := "" // the token of a record that this save made, if any
	for attempt := 1; ; attempt++ {
		rec, ttl := m.record(s, f, now)
		token, err := vb.WriteIfVersion(ctx, VersionedWrite{
			ID: s.id, Data: rec, TTL: ttl, Version: target,
			Owner: s.header.owner, PreviousOwner: previous, Deadline: time.Unix(m.expiry.deadline(s.header), 0),
		})
		if err == nil {
			if target == 0 || moving {
				created = token
			}
			target, previous = target+1, s.header.owner
			err = m.checkToken(token, f)
			if err == nil && s.removeToken != "" {
				err = m.removeRetired(ctx, s, token)
			}
			if err == nil {
				s.written(token, f.payload(), target)
				return token, nil
			}
		}
		// A refresh that meets a conflict has nothing of its own to save:
		// the other request's save refreshed the session too.
		if errors.Is(err, ErrConflict) && attempt < maxSaveAttempts && !refreshOnly {
			err = nil
			if attempt > 1 {
				// Conflicts past the first come from other processes,
				// which the save lock does not order: back off, without
				// holding the lock, then reload, so that the reload is as
				// fresh as it can be.
				if lock != nil {
					m.saveLocks.unlock(lock)
					lock = nil
				}
				err = m.sleep(ctx, backoff(attempt))
				if err == nil && s.loadedToken != "" {
					lock, err = m.saveLocks.lock(ctx, s.loadedToken)
				}
			}
			if err == nil {
				renewing := s.renewing
				if m.lastWriteWins {
					var r reloaded
					if r, err = m.reload(ctx, s); err == nil {
						s.rebasedOn(r)
					}
				} else {
					f, err = m.rebase(ctx, s)
				}
				if err == nil && renewing && !s.renewing {
					// Another request renewed the token first: its
					// successor is the session now, and the record this
					// save made for a successor of its own must go.
					m.removeOrphan(ctx, created)
					created, moving = "", false
				}
				if !moving && s.stored {
					target, previous = s.version, s.loadedOwner
				}
			}
			if err == nil {
				continue
			}
		}
		if created != "" {
			m.removeOrphan(ctx, created) // the new record must not outlive a failed save
		}
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrCookieTooLarge) || errors.Is(err, errBadToken) {
			return "", err
		}
		return "", fmt.Errorf("sessions: saving session: %w", err)
	}
}

// rebase replaces s's value with the current record and s's changes, and
// returns its encoding. Changes made through Update are replayed on the
// current record; changes made through Data are merged into it field by
// field (see merge). It fails with ErrConflict when the record is gone, or
// when a field that s changed through Data was changed by another request
// too, to another value. s changes only when rebase succeeds: a session
// whose merge was refused must not save later as if it had been rebased,
// over the other request's fields.
func (m *Manager[T]) rebase(ctx context.Context, s *Session[T]) (frame, error) {
	// The session's changes are replayable if its updates, applied to what
	// was loaded, give what it holds now.
	var replayed T
	if err := m.codec.Unmarshal(s.loadedPayload, &replayed); err != nil {
		return nil, fmt.Errorf("sessions: decoding loaded session: %w", err)
	}
	for _, fn := range s.updates {
		s.runUpdate(fn, &replayed)
	}
	base, err := m.codec.Marshal(&replayed)
	if err != nil {
		return nil, fmt.Errorf("sessions: encoding session: %w", err)
	}
	mine, err := m.codec.Marshal(&s.data)
	if err != nil {
		return nil, fmt.Errorf("sessions: encoding session: %w", err)
	}
	replayable := bytes.Equal(base, mine)
	if !replayable && m.fields == nil {
		return nil, fmt.Errorf("%w: changes made through Data cannot be merged with this codec; use Session.Update", ErrConflict)
	}
	r, err := m.reload(ctx, s)
	if err != nil {
		return nil, err
	}
	var v T
	if err := m.codec.Unmarshal(r.payload, &v); err != nil {
		return nil, fmt.Errorf("sessions: decoding reloaded session: %w", err)
	}
	for _, fn := range s.updates {
		s.runUpdate(fn, &v)
	}
	if replayable {
		s.rebasedOn(r)
		s.data = v
		return m.encodeSession(nil, s)
	}
	merged, v, err := m.merge(s.loadedPayload, base, mine, r.payload, v)
	if err != nil {
		return nil, err
	}
	s.rebasedOn(r)
	s.data = v
	return merged, nil
}

// reloaded is the record a request loaded, read again after a conflict.
type reloaded struct {
	version uint64
	header  recordHeader
	payload []byte
	// successor is the token the record was found under when another
	// request renewed the loaded one meanwhile; "" otherwise.
	successor string
}

// reload reads the record the request loaded again, after a conflict. It
// fails with ErrConflict when the record is gone: a session that was
// destroyed, regenerated or revoked meanwhile is never brought back.
func (m *Manager[T]) reload(ctx context.Context, s *Session[T]) (reloaded, error) {
	rec, found, err := m.versioned.ReadRecord(ctx, s.loadedToken)
	if err != nil {
		return reloaded{}, fmt.Errorf("sessions: reloading session: %w", err)
	}
	var successor string
	if !found && m.renewer != nil {
		// Another request may have renewed the token, within the grace.
		successor, rec, found, err = m.forwarding(ctx, s.loadedToken)
		if err != nil {
			return reloaded{}, fmt.Errorf("sessions: reloading session: %w", err)
		}
	}
	if !found {
		return reloaded{}, fmt.Errorf("%w: the session was destroyed, regenerated or revoked", ErrConflict)
	}
	h, payload, err := parseRecord(rec.Data)
	if err != nil {
		return reloaded{}, fmt.Errorf("sessions: reloading session: %w", err)
	}
	if !m.ownRecord(h) {
		return reloaded{}, fmt.Errorf("%w: the session was replaced under another cookie name", ErrConflict)
	}
	return reloaded{version: rec.Version, header: h, payload: payload, successor: successor}, nil
}

// removeOrphan removes, as best it can, a record this save made and no
// client will ever hold the token of. It does not stop when the request's
// context does, which may be why the save failed: an orphan with an owner
// would show in that owner's list of sessions until it expired.
func (m *Manager[T]) removeOrphan(ctx context.Context, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orphanTimeout)
	defer cancel()
	m.backend.Remove(ctx, token)
}

// orphanTimeout bounds the removal of an orphan record.
const orphanTimeout = 5 * time.Second

// backoff returns a jittered, exponentially growing pause before save
// attempt n (n >= 2): about 1ms, 2ms, 4ms, ... up to 64ms, each between
// half and all of that.
func backoff(n int) time.Duration {
	d := time.Millisecond << min(n-2, 6)
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

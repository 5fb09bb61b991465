package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// maxSaveAttempts bounds how often a save that meets conflicts is retried
// before it fails with ErrConflict.
const maxSaveAttempts = 16

// save brings the backend and the response's cookie up to date with s.
func (m *Manager[T]) save(ctx context.Context, h http.Header, s *Session[T]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = true
	addVaryCookie(h)

	// The request's time, taken when the session was loaded, serves as the
	// time of access: one clock read per request is enough.
	now := s.now
	var f frame
	write := false
	// Data that was never handed out is what was loaded, or the zero value
	// of a session that is new or was destroyed: no need to encode it.
	// Nor is data whose image has not changed since Data handed it out
	// (an Update before Data leaves no image).
	unchanged := !s.forceSave && s.unchangedSinceSnapshotLocked()
	s.dropSnapshotLocked() // spent either way
	if !unchanged && (s.exposed.Load() || s.forceSave) {
		buf := frames.Get().(*[]byte)
		defer putFrame(buf)
		var err error
		if f, err = m.encodeFrame((*buf)[:0], &s.data); err != nil {
			return fmt.Errorf("sessions: encoding session: %w", err)
		}
		*buf = f[:0]
		if s.stored {
			write = s.forceSave || !bytes.Equal(f.payload(), s.loadedPayload)
		} else {
			write = !bytes.Equal(f.payload(), m.zeroPayload)
		}
	}
	refreshOnly := false
	if !write && s.stored && m.idleTimeout > 0 {
		if m.toucher != nil {
			ttl, _ := m.expiry(s.header, now)
			if err := m.toucher.Touch(ctx, s.loadedToken, ttl); err != nil {
				return fmt.Errorf("sessions: extending session: %w", err)
			}
			return nil
		}
		if now-s.header.accessed >= int64(max(m.idleTimeout/100, time.Second)/time.Second) {
			write, refreshOnly = true, true
			f = append(make(frame, maxRecordHeader, maxRecordHeader+len(s.loadedPayload)), s.loadedPayload...)
		}
	}
	if !write {
		if s.removeToken != "" {
			if err := m.backend.Remove(ctx, s.removeToken); err != nil {
				return fmt.Errorf("sessions: removing session: %w", err)
			}
		}
		if s.destroyed && s.hadCookie {
			m.setCookie(h, "", -1)
		}
		return nil
	}

	var token string
	var err error
	if m.versioned != nil {
		token, err = m.writeVersioned(ctx, s, f, now)
		if refreshOnly && errors.Is(err, ErrConflict) {
			// Another request saved the session, refreshing it too; this
			// request had nothing of its own to save.
			return nil
		}
	} else {
		token, err = m.writePlain(ctx, s, f, now)
	}
	if err != nil {
		return err
	}
	if len(m.cookieName)+1+len(token) > maxCookieSize {
		return fmt.Errorf("%w: %d bytes of session data", ErrCookieTooLarge, len(f.payload()))
	}
	if token == s.loadedToken && s.header.persist == s.loadedPersist {
		// The client sent this very token, in a cookie that ends when the
		// session's lifetime does (Max-Age counts down to a fixed end):
		// sending it again would change nothing.
		return nil
	}
	_, maxAge := m.expiry(s.header, now)
	m.setCookie(h, token, maxAge)
	// A shared cache must not hand this response, and its cookie, to
	// another client.
	h["Cache-Control"] = append(h["Cache-Control"], `no-cache="Set-Cookie"`)
	return nil
}

// varyCookie is the Vary header of a response that touched the session.
// Its capacity equals its length, so that a handler's later Add copies it
// instead of writing into it.
var varyCookie = []string{"Cookie"}

func addVaryCookie(h http.Header) {
	if v, ok := h["Vary"]; ok {
		h["Vary"] = append(v, "Cookie")
		return
	}
	h["Vary"] = varyCookie[:1:1]
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
	s.header.accessed = now
	ttl, _ := m.expiry(s.header, now)
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
	// The old record goes only once the new one is safe, so that a failed
	// save leaves the client with a session that still works.
	if s.removeToken != "" {
		if err := m.backend.Remove(ctx, s.removeToken); err != nil {
			return "", fmt.Errorf("sessions: removing replaced session: %w", err)
		}
	}
	return token, nil
}

// writeVersioned saves s over the version it loaded. On a conflict it
// rebases s on the current record, replaying its updates, and tries again.
func (m *Manager[T]) writeVersioned(ctx context.Context, s *Session[T], f frame, now int64) (string, error) {
	vb := m.versioned
	if s.loadedToken != "" {
		mu := m.saveLock(s.loadedToken)
		mu.Lock()
		defer mu.Unlock()
	}
	// moving: Regenerate gave the stored session a new ID; the old record
	// must be removed only if nobody changed it meanwhile.
	moving := s.removeToken != "" && !s.destroyed
	var target uint64 // the version the record under s.id has, as far as we know
	if s.stored {
		target = s.version
	}
	created := false // a record under the new ID exists, made by us
	for attempt := 1; ; attempt++ {
		rec, ttl := m.record(s, f, now)
		token, err := vb.WriteIfVersion(ctx, s.id, rec, ttl, target)
		if err == nil {
			target++
			created = created || moving
			switch {
			case moving:
				err = vb.RemoveIfVersion(ctx, s.removeToken, s.version)
			case s.removeToken != "":
				// Destroy wins over any concurrent change: logout is final.
				err = vb.Remove(ctx, s.removeToken)
			}
			if err == nil {
				return token, nil
			}
		}
		if errors.Is(err, ErrConflict) && attempt < maxSaveAttempts {
			err = nil
			if attempt > 1 {
				// Conflicts past the first come from other processes,
				// which the save lock does not order: back off, then
				// reload, so that the reload is as fresh as it can be.
				err = m.sleep(ctx, backoff(attempt))
			}
			if err == nil {
				f, err = m.rebase(ctx, s, f.payload())
				if !moving && s.stored {
					target = s.version
				}
			}
			if err == nil {
				continue
			}
		}
		if created {
			// Best effort: the new record must not outlive a failed move.
			vb.Remove(ctx, s.id)
		}
		if errors.Is(err, ErrConflict) {
			return "", err
		}
		return "", fmt.Errorf("sessions: saving session: %w", err)
	}
}

// rebase replaces s's value with the current record plus s's updates, and
// returns its encoding. It fails with ErrConflict when s holds changes that
// cannot be replayed, or when the record is gone.
func (m *Manager[T]) rebase(ctx context.Context, s *Session[T], payload []byte) (frame, error) {
	// The session's changes are replayable if its updates, applied to what
	// was loaded, give what it holds now.
	var replayed T
	if err := m.codec.Unmarshal(s.loadedPayload, &replayed); err != nil {
		return nil, fmt.Errorf("sessions: decoding loaded session: %w", err)
	}
	for _, fn := range s.updates {
		fn(&replayed)
	}
	if p, err := m.codec.Marshal(&replayed); err != nil || !bytes.Equal(p, payload) {
		return nil, fmt.Errorf("%w: changes made through Data cannot be merged; use Session.Update", ErrConflict)
	}

	data, version, found, err := m.versioned.ReadVersioned(ctx, s.loadedToken)
	if err != nil {
		return nil, fmt.Errorf("sessions: reloading session: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("%w: the session was destroyed or regenerated", ErrConflict)
	}
	h, current, err := parseRecord(data)
	if err != nil {
		return nil, fmt.Errorf("sessions: reloading session: %w", err)
	}
	var v T
	if err := m.codec.Unmarshal(current, &v); err != nil {
		return nil, fmt.Errorf("sessions: decoding reloaded session: %w", err)
	}
	for _, fn := range s.updates {
		fn(&v)
	}
	s.data = v
	s.loadedPayload = current
	s.version = version
	s.header.created = h.created
	if !s.persistSet {
		s.header.persist = h.persist
	}
	return m.encodeFrame(nil, &s.data)
}

// saveLock returns the lock that orders saves of the session with token.
func (m *Manager[T]) saveLock(token string) *sync.Mutex {
	return &m.saveLocks[maphash.String(m.lockSeed, token)%uint64(len(m.saveLocks))]
}

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

package sessions

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// load fills s with the session named by the request's cookie, or with a
// new one when there is none or it cannot be used.
func (m *Manager[T]) load(ctx context.Context, r *http.Request, s *Session[T]) error {
	now := m.now().Unix()
	s.now = now
	s.logger = m.logger()
	s.plan = m.plan
	token, ok := cookieValue(r.Header, m.cookieName)
	s.hadCookie = ok
	reason := "no session cookie"
	if ok {
		reason = "malformed cookie"
		if validToken(token) {
			data, version, found, rotate, err := m.read(ctx, token)
			if err != nil {
				return fmt.Errorf("sessions: loading session: %w", err)
			}
			reason = "unknown or expired session"
			if found {
				reason, err = m.adopt(s, token, data, now)
				if err != nil {
					return fmt.Errorf("sessions: loading session: %w", err)
				}
				if reason == "" {
					s.forceSave = rotate
					s.version = version
					return nil
				}
			}
		}
		m.logger().DebugContext(ctx, "sessions: starting a new session", "reason", reason)
	}
	s.id = NewID()
	s.isNew = true
	s.header = recordHeader{created: now, accessed: now}
	return nil
}

func (m *Manager[T]) read(ctx context.Context, token string) (data []byte, version uint64, found, rotate bool, err error) {
	switch {
	case m.versioned != nil:
		data, version, found, err = m.versioned.ReadVersioned(ctx, token)
	case m.rotator != nil:
		data, found, rotate, err = m.rotator.ReadRotate(ctx, token)
	default:
		data, found, err = m.backend.Read(ctx, token)
	}
	return data, version, found, rotate, err
}

// adopt fills s from a stored record and returns "", or returns why the
// record cannot be used, or ErrCorrupt for bytes that are not a record.
func (m *Manager[T]) adopt(s *Session[T], token string, data []byte, now int64) (reason string, err error) {
	h, payload, err := parseRecord(data)
	if err != nil {
		return "", err
	}
	if now >= h.created+int64(m.serverLifetime()/time.Second) {
		return "session lifetime ended", nil
	}
	// A Toucher's own expiry enforces the idle timeout: the record's access
	// time is only brought up to date when the record is rewritten.
	if m.idleTimeout > 0 && m.toucher == nil && now >= h.accessed+int64(m.idleTimeout/time.Second) {
		return "session idle timeout passed", nil
	}
	// The record is sound, so data that does not decode was written for
	// another T: start afresh rather than lock the user out.
	if err := m.codec.Unmarshal(payload, &s.data); err != nil {
		var zero T
		s.data = zero
		return "cannot decode session data: " + err.Error(), nil
	}
	s.id = token
	s.loadedToken = token
	s.loadedPayload = payload
	s.header = h
	s.loadedPersist = h.persist
	s.stored = true
	return "", nil
}

// serverLifetime is how long after its creation the server refuses a
// session.
func (m *Manager[T]) serverLifetime() time.Duration {
	if m.lifetime > 0 {
		return m.lifetime
	}
	return BrowserSessionLifetime
}

// expiry returns how long the backend should keep a record with header h
// written now, and the cookie's Max-Age (0 for a browser-session cookie).
func (m *Manager[T]) expiry(h recordHeader, now int64) (ttl, maxAge time.Duration) {
	remaining := m.serverLifetime() - time.Duration(now-h.created)*time.Second
	ttl = remaining
	if m.idleTimeout > 0 {
		ttl = min(ttl, m.idleTimeout)
	}
	ttl = max(ttl, time.Second)
	if h.persist == persistOn || h.persist == persistDefault && m.lifetime > 0 {
		maxAge = max(remaining, time.Second)
	}
	return ttl, maxAge
}

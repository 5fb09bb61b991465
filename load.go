package sessions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// load fills s with the session named by the request's token, or with a
// new one when there is none or it cannot be used.
func (m *Manager[T]) load(ctx context.Context, r *http.Request, s *Session[T]) error {
	token, ok := m.transport.read(r)
	if !ok {
		m.warnInsecure(ctx, r)
	}
	return m.loadToken(ctx, s, token, ok)
}

// loadToken fills s with the session named by token, present says whether
// the client sent one.
func (m *Manager[T]) loadToken(ctx context.Context, s *Session[T], token string, present bool) error {
	now := m.now().Unix()
	s.m = m
	s.begin(now, present)
	reason := "no session token"
	if present {
		reason = "malformed token"
		if validToken(token) {
			rec, found, err := m.read(ctx, token)
			if err != nil {
				return fmt.Errorf("sessions: loading session: %w", err)
			}
			reason = "unknown or expired session"
			presented := token
			if !found && m.renewer != nil {
				// The token may be a retired one, within its grace.
				var successor string
				if successor, rec, found, err = m.followRetired(ctx, token); err != nil {
					return fmt.Errorf("sessions: loading session: %w", err)
				}
				if found {
					token = successor
				}
			}
			if !found {
				// A backend that expires records drops them itself, so
				// a session that expired there, one that was revoked and
				// a token that was never issued all look alike here.
				m.audit(ctx, "not found", handleOf(token), "", "reason", "no live record for the token: expired, revoked, or never issued")
			}
			if found {
				reason, err = m.fromRecord(ctx, s, token, rec)
				if err != nil {
					return fmt.Errorf("sessions: loading session: %w", err)
				}
				if reason == "" {
					s.forwarded(presented)
					return m.validate(ctx, s)
				}
			}
		}
		m.logger().DebugContext(ctx, "sessions: starting a new session", "reason", reason)
	}
	s.fresh(m.newHeader(now))
	return nil
}

// read reads token's record through the richest method the backend has.
func (m *Manager[T]) read(ctx context.Context, token string) (Record, bool, error) {
	if m.reader != nil {
		return m.reader.ReadRecord(ctx, token)
	}
	data, found, err := m.backend.Read(ctx, token)
	return Record{Data: data}, found, err
}

// fromRecord fills s from rec, the stored record of token, and returns "",
// or returns why the record cannot be used, or ErrCorrupt for bytes that
// are not a record.
func (m *Manager[T]) fromRecord(ctx context.Context, s *Session[T], token string, rec Record) (reason string, err error) {
	h, payload, err := parseRecord(rec.Data)
	if err != nil {
		return "", err
	}
	if h.legacy {
		return "session stored by a pre-release build, before records were bound to their cookie name", nil
	}
	if !m.ownRecord(h) {
		return "session stored under another cookie name", nil
	}
	storeIdles := m.toucher != nil && !rec.ExpiresAt.IsZero()
	if reason := m.expiry.expired(h, s.now, storeIdles); reason != "" {
		m.audit(ctx, "expired on load", handleOf(token), h.owner, "reason", reason)
		return reason, nil
	}
	// The record is sound, so data that does not decode was written for
	// another T: start afresh rather than lock the user out.
	if err := m.codec.Unmarshal(payload, &s.data); err != nil {
		var zero T
		s.data = zero
		m.warnUndecodable(ctx, token, h.owner, err)
		return "cannot decode session data: " + err.Error(), nil
	}
	s.loaded(token, h, payload, rec)
	s.renewDue = m.renewalDue(h.issued, s.now)
	return "", nil
}

// validate runs the WithValidate function on a session just loaded. A
// session it refuses is removed at once: a session from Open may never be
// saved, and its record must not outlive the refusal.
func (m *Manager[T]) validate(ctx context.Context, s *Session[T]) error {
	if m.validator == nil {
		return nil
	}
	err := m.validator(ctx, &s.data)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrRevoked):
		m.audit(ctx, "refused by validator", handleOf(s.token), s.header.owner)
		// Nobody else holds s yet.
		s.destroyLocked()
		s.refuse()
		if err := m.removeRetired(ctx, s, ""); err != nil {
			// The save tries again, as for any destroyed session.
			m.logger().WarnContext(ctx, "sessions: removing a session the validator refused failed; the save will try again", "err", err)
		}
		return nil
	default:
		return fmt.Errorf("sessions: validating session: %w", err)
	}
}

// warnUndecodable logs, at warning level, that a stored session no longer
// decodes into T: a change to T that needed a migration signs users out,
// and an operator must see it at once. One line per burst: the next one
// says how many it left out.
func (m *Manager[T]) warnUndecodable(ctx context.Context, token, owner string, err error) {
	handle := handleOf(token)
	m.audit(ctx, "undecodable", handle, owner, "err", err)
	if ok, suppressed := m.undecodable.allow(m.now()); ok {
		var zero T
		m.logger().WarnContext(ctx, "sessions: a stored session no longer decodes into the session type; its client gets a new, empty session",
			"type", fmt.Sprintf("%T", zero), "handle", handle, "err", err, "suppressed", suppressed)
	}
}

// A burstLog lets one log line through per interval, and counts the
// others.
type burstLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// burstInterval is how long a burstLog keeps quiet after a line.
const burstInterval = time.Minute

// allow reports whether a line may be logged at now, and how many were
// left out since the last one.
func (b *burstLog) allow(now time.Time) (bool, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.Sub(b.last) < burstInterval {
		b.suppressed++
		return false, 0
	}
	n := b.suppressed
	b.last, b.suppressed = now, 0
	return true, n
}

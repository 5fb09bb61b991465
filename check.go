package sessions

import (
	"context"
	"errors"
	"fmt"
)

// Check reports whether the session still stands in the store: nil while
// its record does, an error matching [ErrRevoked] once it was revoked
// ([Manager.Revoke], [Manager.RevokeAll]), destroyed, refused by the
// [WithValidate] function or has expired, and a backend error otherwise.
// It changes nothing and never saves: it is for a connection that outlives
// its request, such as a WebSocket, which should ask on an interval (and
// before it acts on a message after the interval passed) and close once the
// session is gone.
//
// A session that was never stored, or that this request destroyed, does
// not stand. Under [WithRenewal] a session renewed by another request
// stands under its successor, which the Session follows from then on, as
// long as Check asks within the grace after the renewal: ask more often
// than the grace. On the cookie backend the record is the client's cookie, which
// the server cannot remove: Check then sees only expiry and the validator.
func (s *Session[T]) Check(ctx context.Context) error {
	s.lock()
	m, token, gone := s.m, s.loadedToken, s.destroyed || !s.stored
	s.mu.Unlock()
	if m == nil {
		return errors.New("sessions: Check on a Session that no Manager made")
	}
	if gone || token == "" {
		return fmt.Errorf("%w: the session has no record in the store", ErrRevoked)
	}
	rec, found, err := m.read(ctx, token)
	if err != nil {
		return fmt.Errorf("sessions: checking session: %w", err)
	}
	if !found && m.renewer != nil {
		// Another request may have renewed the token (WithRenewal): the
		// session stands under its successor, which this Session follows
		// from now on.
		var successor string
		if successor, rec, found, err = m.forwarding(ctx, token); err != nil {
			return fmt.Errorf("sessions: checking session: %w", err)
		}
		if found {
			s.lock()
			if s.loadedToken == token {
				s.movedTo(successor)
			}
			s.mu.Unlock()
		}
	}
	if !found {
		return fmt.Errorf("%w: the session's record is gone: revoked, destroyed or expired", ErrRevoked)
	}
	h, payload, err := parseRecord(rec.Data)
	if err != nil {
		return fmt.Errorf("sessions: checking session: %w", err)
	}
	storeIdles := m.toucher != nil && !rec.ExpiresAt.IsZero()
	if !m.ownRecord(h) {
		return fmt.Errorf("%w: the session's record was replaced", ErrRevoked)
	}
	if reason := m.expiry.expired(h, m.now().Unix(), storeIdles); reason != "" {
		return fmt.Errorf("%w: %s", ErrRevoked, reason)
	}
	if m.validator != nil {
		var v T
		if err := m.codec.Unmarshal(payload, &v); err != nil {
			return fmt.Errorf("%w: the session's data no longer decodes", ErrRevoked)
		}
		if err := m.validator(ctx, &v); err != nil {
			if errors.Is(err, ErrRevoked) {
				return fmt.Errorf("%w: refused by the validator", ErrRevoked)
			}
			return fmt.Errorf("sessions: checking session: %w", err)
		}
	}
	return nil
}

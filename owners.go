package sessions

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Info describes one of an owner's sessions, as [Manager.Sessions] lists
// them: what a "where am I signed in" page shows.
type Info[T any] struct {
	// Handle identifies the session: it is what [Session.Handle] returns
	// in the session's own requests, and what [Manager.Revoke] takes.
	Handle string
	// Owner is the owner the session is tied to.
	Owner string
	// CreatedAt is when the session was created.
	CreatedAt time.Time
	// LastSeenAt is when the session was last saved or its expiry last
	// extended, to within the rounding an idle timeout allows.
	LastSeenAt time.Time
	// ExpiresAt is when the server will refuse the session if it is not
	// used again.
	ExpiresAt time.Time
	// Persistent reports whether the session's cookie outlives the
	// browser.
	Persistent bool
	// Value is the session's data.
	Value T
}

// errNoIndex is what the owner methods return on a backend that cannot
// find an owner's sessions.
var errNoIndex = fmt.Errorf("sessions: the backend keeps no index of sessions by owner (it is not a sessions.OwnerIndex): %w", errors.ErrUnsupported)

// Sessions returns the live sessions of owner, most recently seen first.
// It costs what reading that owner's sessions costs, whatever else the
// store holds. Only sessions of this manager (its cookie or header name)
// are listed, since only they decode into T; [Manager.Revoke] and
// [Manager.RevokeAll] reach the owner's sessions of every manager on the
// backend.
//
// On a backend that is not an [OwnerIndex], such as the cookie backend, it
// returns an error that matches [errors.ErrUnsupported]; see
// [WithValidate] for ending cookie sessions.
func (m *Manager[T]) Sessions(ctx context.Context, owner string) ([]Info[T], error) {
	owned, err := m.owned(ctx, owner, false)
	if err != nil {
		return nil, err
	}
	infos := make([]Info[T], 0, len(owned))
	for _, o := range owned {
		var v T
		if err := m.codec.Unmarshal(o.payload, &v); err != nil {
			m.logger().DebugContext(ctx, "sessions: an owner's session does not decode; left out of the list",
				"handle", o.handle, "err", err)
			continue
		}
		infos = append(infos, Info[T]{
			Handle:     o.handle,
			Owner:      o.header.owner,
			CreatedAt:  time.Unix(o.header.created, 0),
			LastSeenAt: o.lastSeen,
			ExpiresAt:  o.expires,
			Persistent: m.persistentFor(o.header.persist),
			Value:      v,
		})
	}
	slices.SortFunc(infos, func(a, b Info[T]) int {
		if c := b.LastSeenAt.Compare(a.LastSeenAt); c != 0 {
			return c
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return infos, nil
}

// Revoke ends the session with the given handle if, and only if, it is a
// session of owner, whichever manager on the backend stored it; it returns
// nil when there is no such session.
// Revocation is final: a request still running on the session cannot save
// it back, and the client's next request gets a fresh session.
//
// On a backend that is not an [OwnerIndex] it returns an error that matches
// [errors.ErrUnsupported].
func (m *Manager[T]) Revoke(ctx context.Context, owner, handle string) error {
	owned, err := m.owned(ctx, owner, true)
	if err != nil {
		return err
	}
	for _, o := range owned {
		if o.handle == handle {
			_, err := m.revoke(ctx, o)
			return err
		}
	}
	return nil
}

// RevokeAll ends every session of owner except those whose handles are in
// keep, as a "sign out all other devices" button or a password change does,
// and returns how many it ended. It reaches the owner's sessions of every
// manager on the backend, whatever their cookie or header name and T: one
// call signs a user out of the browser sessions of a cookie manager and
// the API sessions of a header-token manager that share the backend.
//
// Sessions that regenerate while it runs move to handles its first listing
// did not show, so it lists again, up to three times. When sessions outside
// keep are still listed after that, it returns an error matching
// [ErrRevokeIncomplete] with the count it ended: it cannot confirm that
// every session ended, and the caller should say so or try again. A
// revocation that fails (such as Redis's ErrNotReplicated) does not stop
// the others; its error is joined to what RevokeAll returns.
//
// On a backend that is not an [OwnerIndex] it returns an error that matches
// [errors.ErrUnsupported].
func (m *Manager[T]) RevokeAll(ctx context.Context, owner string, keep ...string) (int, error) {
	n, found := 0, false
	// A failed revocation does not stop the others: the user's remaining
	// sessions must still end. Its error is returned with theirs.
	var errs []error
	// A session that regenerates while this runs moves to a handle the
	// first listing did not show: list again, a few times, until nothing
	// outside keep is left.
	for range revokeAllPasses {
		owned, err := m.owned(ctx, owner, true)
		if err != nil {
			return n, errors.Join(append(errs, err)...)
		}
		found = false
		for _, o := range owned {
			if slices.Contains(keep, o.handle) {
				continue
			}
			found = true
			removed, err := m.revoke(ctx, o)
			if err != nil {
				errs = append(errs, err)
			}
			if removed {
				n++
			}
		}
		if !found {
			return n, errors.Join(errs...)
		}
	}
	return n, errors.Join(append(errs, fmt.Errorf("%w: %d sessions ended, and %d passes still found more", ErrRevokeIncomplete, n, revokeAllPasses))...)
}

// revokeAllPasses bounds the listings RevokeAll makes.
const revokeAllPasses = 3

// ownedSession is a live session of an owner, as the index found it.
type ownedSession struct {
	key      [sha256.Size]byte
	handle   string
	header   recordHeader
	payload  []byte
	lastSeen time.Time
	expires  time.Time
}

// owned returns the owner's live sessions of this manager, checked against
// their records: the owner they hold, the cookie name's tag, and expiry.
// With anyManager, it returns every record that names the owner, of any
// manager: another manager's lifetime may be longer than this one's, so
// expiry is not checked either, and an expired record is removed with the
// rest.
func (m *Manager[T]) owned(ctx context.Context, owner string, anyManager bool) ([]ownedSession, error) {
	if m.index == nil {
		return nil, errNoIndex
	}
	if owner == "" {
		return nil, nil
	}
	records, err := m.index.Owned(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("sessions: listing an owner's sessions: %w", err)
	}
	now := m.now().Unix()
	out := make([]ownedSession, 0, len(records))
	for _, r := range records {
		h, payload, err := parseRecord(r.Data)
		if err != nil {
			m.logger().WarnContext(ctx, "sessions: an owner's session record is corrupt; left out of the list",
				"handle", handleOfKey(r.Key), "err", err)
			continue
		}
		// The record itself, not only the index, must name the owner.
		e := m.expiry
		storeIdles := m.toucher != nil && !r.ExpiresAt.IsZero()
		if h.owner != owner || !anyManager && (!m.ownRecord(h) || e.expired(h, now, storeIdles) != "") {
			continue
		}
		lastSeen := time.Unix(h.accessed, 0)
		expires := time.Unix(e.expiresAt(h, h.accessed), 0)
		if !r.ExpiresAt.IsZero() {
			expires = r.ExpiresAt.Truncate(time.Second)
			if e.idle > 0 {
				// A touch moved the expiry on without rewriting the record.
				if touched := expires.Add(-time.Duration(e.extension()) * time.Second); touched.After(lastSeen) {
					lastSeen = touched
				}
			}
		}
		if deadline := time.Unix(e.deadline(h), 0); deadline.Before(expires) {
			expires = deadline
		}
		out = append(out, ownedSession{key: r.Key, handle: handleOfKey(r.Key), header: h, payload: payload,
			lastSeen: lastSeen, expires: expires})
	}
	return out, nil
}

// revoke removes an owned session's record, and reports whether it did.
func (m *Manager[T]) revoke(ctx context.Context, o ownedSession) (bool, error) {
	removed, err := m.index.RemoveOwned(ctx, o.header.owner, o.key)
	if err != nil {
		return false, fmt.Errorf("sessions: revoking a session: %w", err)
	}
	if removed {
		m.audit(ctx, "revoked", o.handle, o.header.owner)
	}
	return removed, nil
}

// handleOfKey returns the handle of the token whose HashToken is key.
func handleOfKey(key [sha256.Size]byte) string {
	return base64.RawURLEncoding.EncodeToString(key[:handleBytes])
}

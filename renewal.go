package sessions

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"time"
)

// Renewal replaces a session's token once it has been in use for a while
// (WithRenewal), so that a stolen copy of it soon stops working. The life
// of one token:
//
//	issued ──── every ────▶ retired ──── grace ────▶ reuse = theft
//	   used as usual         a request's save moves     presenting it ends
//	                         the session to a new       the session it led to
//	                         token; the old one still
//	                         leads to the new one
//
// A renewal is a move, as Regenerate's, whose old record does not simply
// go: the Renewer keeps, under the retired token's key, a forwarding entry
// for the grace and a tombstone for the rest of the session's lifetime.
// The forwarding entry holds the successor token sealed under a key that
// only the retired token derives, so a copy of the store leads nowhere; the
// tombstone holds the successor's key and the owner, which say which
// session to end when the retired token comes back too late, but cannot be
// used as a token. Of several requests that renew one token at once, the
// first to retire it wins; the others find its forwarding entry, drop the
// record they made, and save onto the winner's successor: the session never
// forks.

// defaultGrace is the grace of WithRenewal when it is given none: long
// enough for a second tab's or an in-flight XHR's request with the retired
// token, and no longer than a thief's window needs to be.
const defaultGrace = 15 * time.Second

// maxChain bounds how many retired tokens the end of a session follows
// after a reuse: a session renewed every minute for 45 days still fits.
const maxChain = 1 << 16

// renewalDue reports whether a session whose token was issued at issued
// must be renewed by a request at now.
func (m *Manager[T]) renewalDue(issued, now int64) bool {
	return m.renewer != nil && m.renewEvery > 0 && now-issued >= int64(m.renewEvery/time.Second)
}

// successorKey derives the key that seals the successor of retired.
func successorKey(retired string) ([]byte, error) {
	return hkdf.Key(sha256.New, []byte(retired), nil, "starsessions renewal successor", 32)
}

// sealSuccessor returns the forwarding bytes of retired: its successor,
// sealed with AES-256-GCM under a key only retired derives, bound to the
// retired token's key.
func sealSuccessor(retired, successor string) ([]byte, error) {
	key, err := successorKey(retired)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(successor)+gcm.Overhead())
	rand.Read(nonce)
	aad := HashToken(retired)
	return gcm.Seal(nonce, nonce, []byte(successor), aad[:]), nil
}

// openSuccessor returns the successor that forward, the forwarding bytes
// of retired, leads to.
func openSuccessor(retired string, forward []byte) (string, bool) {
	key, err := successorKey(retired)
	if err != nil {
		return "", false
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", false
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil || len(forward) < gcm.NonceSize() {
		return "", false
	}
	aad := HashToken(retired)
	plain, err := gcm.Open(nil, forward[:gcm.NonceSize()], forward[gcm.NonceSize():], aad[:])
	if err != nil || !validToken(string(plain)) {
		return "", false
	}
	return string(plain), true
}

// A retired token's tombstone is the session's owner, for the audit entry
// of a reuse: which session it was the Renewer keeps as the successor's
// key.

// retirement returns what the Renewer keeps when s's token retired moves
// to successor.
func (m *Manager[T]) retirement(s *Session[T], retired, successor string) (Retirement, error) {
	forward, err := sealSuccessor(retired, successor)
	if err != nil {
		return Retirement{}, fmt.Errorf("sessions: sealing the successor token: %w", err)
	}
	keep := max(time.Duration(m.expiry.deadline(s.header)-s.now)*time.Second, m.renewGrace)
	return Retirement{
		Successor: HashToken(successor),
		Forward:   forward, ForwardTTL: m.renewGrace,
		Tombstone: []byte(s.header.owner), TTL: keep,
	}, nil
}

// followRetired looks up token as a retired token. Within its grace it
// returns its successor and the successor's record. After it, the token is
// a stolen copy or a client that lost its way for longer than the grace
// allows, which cannot be told apart: the session it led to ends, every
// token of it, unless reuse detection is off.
func (m *Manager[T]) followRetired(ctx context.Context, token string) (successor string, rec Record, found bool, err error) {
	key := HashToken(token)
	e, found, err := m.renewer.Retired(ctx, key)
	if err != nil || !found {
		return "", Record{}, false, err
	}
	if e.Forward != nil {
		successor, ok := openSuccessor(token, e.Forward)
		if !ok || HashToken(successor) != e.Successor || e.Record.Data == nil {
			return "", Record{}, false, nil
		}
		return successor, e.Record, true, nil
	}
	if !m.reuseDetectionOff {
		m.endRenewed(ctx, key, e)
	}
	return "", Record{}, false, nil
}

// endRenewed ends the session that the retired token under key led to:
// it follows the tombstones from successor to successor to the live
// record, and removes each of them and the record. It logs the reuse at
// warning level, with the session's handle and owner.
func (m *Manager[T]) endRenewed(ctx context.Context, key [sha256.Size]byte, first RetiredEntry) {
	owner, current := string(first.Tombstone), first.Successor
	var err error
	for range maxChain {
		var next RetiredEntry
		var found bool
		if next, found, err = m.renewer.Retired(ctx, current); err != nil {
			break
		}
		if err = m.renewer.RemoveKey(ctx, current); err != nil || !found {
			break
		}
		current = next.Successor
	}
	if err == nil {
		err = m.renewer.RemoveKey(ctx, key)
	}
	l := m.config.auditLogger
	if l == nil {
		l = m.logger()
	}
	attrs := []any{"event", "token_reuse", "handle", handleOfKey(current), "owner", owner,
		"reason", "a renewed session's retired token was presented after its grace: stolen, or a client that lost its way; the session is ended"}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	l.WarnContext(ctx, "sessions: audit", attrs...)
}

// endSuccessors removes the sessions that the token under key was renewed
// to, if it was: a logout on a token that another request renewed
// meanwhile ends the successor too.
func (m *Manager[T]) endSuccessors(ctx context.Context, key [sha256.Size]byte) error {
	e, found, err := m.renewer.Retired(ctx, key)
	if err != nil || !found {
		return err
	}
	current := e.Successor
	for range maxChain {
		next, found, err := m.renewer.Retired(ctx, current)
		if err != nil {
			return err
		}
		if err := m.renewer.RemoveKey(ctx, current); err != nil || !found {
			return err
		}
		current = next.Successor
	}
	return m.renewer.RemoveKey(ctx, key)
}

// forwarding returns the successor of retired and its record while its
// grace lasts. Unlike followRetired it never takes a late token for theft:
// it serves a save that loaded the token before another request renewed it.
func (m *Manager[T]) forwarding(ctx context.Context, retired string) (successor string, rec Record, found bool, err error) {
	e, found, err := m.renewer.Retired(ctx, HashToken(retired))
	if err != nil || !found || e.Forward == nil {
		return "", Record{}, false, err
	}
	successor, ok := openSuccessor(retired, e.Forward)
	if !ok || HashToken(successor) != e.Successor || e.Record.Data == nil {
		return "", Record{}, false, nil
	}
	return successor, e.Record, true, nil
}

package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
	"unsafe"
)

// A Backend stores session records as opaque bytes.
//
// The manager encodes the typed session value, together with the
// timestamps it needs to enforce expiry, before a Backend sees it, so a
// Backend only moves bytes. Server-side backends key their records by
// [HashToken] of the token, never by the token itself, so that a copy of the
// store does not hand out live sessions. Implementations must be safe for
// concurrent use.
//
// A backend can offer more through optional interfaces, discovered by type
// assertion: [VersionedBackend] writes conditionally, so that concurrent
// requests never lose each other's updates; [Toucher] extends an expiry
// without rewriting data; and [TokenRotator] asks for a token to be
// reissued. A backend without VersionedBackend saves with last-write-wins:
// of two requests that change one session at the same time, the later save
// replaces the earlier.
type Backend interface {
	// Read returns the bytes stored for token; found is false, with a nil error, when it is unknown or expired.
	// The caller does not modify the returned slice. Bytes that are not a
	// record Write was given make the manager report [ErrCorrupt].
	Read(ctx context.Context, token string) (data []byte, found bool, err error)
	// Write stores data for the session id, to expire after ttl, and returns the token the client keeps in its cookie.
	// Write does not keep data after it returns.
	Write(ctx context.Context, id string, data []byte, ttl time.Duration) (token string, err error)
	// Remove deletes what is stored for token; removing an unknown token is not an error.
	Remove(ctx context.Context, token string) error
}

// A VersionedBackend is a [Backend] whose records carry a version that
// every successful write advances, and that can write and remove on
// condition of the version (compare-and-set). The manager uses it so that no
// update is lost silently: a request saves only over the version it loaded,
// and on [ErrConflict] reloads the record, replays the changes it made
// through [Session.Update], and tries again.
//
// Versions start at 1 for a new record and grow by 1 with every write;
// version 0 stands for "no record". Each method must be atomic with respect
// to the others on the same token.
type VersionedBackend interface {
	Backend
	// ReadVersioned is Read that also returns the record's version.
	ReadVersioned(ctx context.Context, token string) (data []byte, version uint64, found bool, err error)
	// WriteIfVersion is Write that succeeds only if the live record for id
	// has the given version, 0 meaning that there must be none. Otherwise it
	// writes nothing and returns an error that matches [ErrConflict]. A
	// record that was removed is never recreated by a write for version 1
	// or more.
	WriteIfVersion(ctx context.Context, id string, data []byte, ttl time.Duration, version uint64) (token string, err error)
	// RemoveIfVersion removes the record for token only if its version is
	// the given one, and returns an error matching [ErrConflict] otherwise,
	// a missing record included.
	RemoveIfVersion(ctx context.Context, token string, version uint64) error
}

// A Toucher is a [Backend] that can extend a record's expiry without
// rewriting its data. With an idle timeout, the manager touches the record of
// every request that read the session without changing it; a backend that is
// not a Toucher has its record rewritten instead, at most once per
// hundredth of the idle timeout.
type Toucher interface {
	// Touch sets the expiry of the live record for token to ttl from now.
	// It does nothing, and returns nil, when the record is unknown or has
	// expired: a touch never brings a removed session back.
	Touch(ctx context.Context, token string, ttl time.Duration) error
}

// A TokenRotator is a [Backend] whose tokens can stay valid while asking to
// be replaced, such as a cookie signed with a retired secret. When rotate is
// true the manager saves the session at the end of the request even if its
// data did not change, so that the client gets a fresh token.
type TokenRotator interface {
	// ReadRotate is Read that also reports whether the token should be reissued.
	ReadRotate(ctx context.Context, token string) (data []byte, found, rotate bool, err error)
}

// idBytes is the number of random bytes in a session ID: 256 bits.
const idBytes = 32

// IDLength is the length in characters of an ID made by [NewID]: 32 bytes
// in unpadded base64.
const IDLength = 43

// NewID returns a new session ID: 32 bytes from crypto/rand, encoded as
// unpadded base64url (43 characters).
func NewID() string {
	var b [idBytes]byte
	rand.Read(b[:]) // never fails; see crypto/rand.Read
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of an ID made by [NewID].
// Server-side backends call it before they look a token up, so that garbage
// from a client never reaches the store.
func ValidID(s string) bool {
	if len(s) != IDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if base64URLValue(s[i]) < 0 {
			return false
		}
	}
	// The last character carries 4 bits of the ID and 2 padding bits,
	// which must be zero so that each ID has exactly one spelling.
	return base64URLValue(s[IDLength-1])&0x03 == 0
}

// base64URLValue returns the 6-bit value of a base64url character, or -1.
func base64URLValue(c byte) int { return int(base64URLValues[c]) }

// base64URLValues maps each byte to its base64url value, or -1. A table,
// because every token a server-side backend sees passes through ValidID.
var base64URLValues = func() (t [256]int8) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = -1
	}
	for i := range len(alphabet) {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// HashToken returns the SHA-256 of token: the key under which a server-side
// backend stores the token's record.
func HashToken(token string) [sha256.Size]byte {
	// Hashing reads the bytes in place: a token is hashed on every request,
	// and a copy would cost an allocation each time.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

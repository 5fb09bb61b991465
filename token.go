package sessions

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"unsafe"
)

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

// handleBytes is how many bytes of a token's hash its handle shows: 128
// bits, enough to tell a user's sessions apart, and no way back to the
// token.
const handleBytes = 16

// handleOf returns the handle of token: see [Session.Handle].
func handleOf(token string) string {
	if token == "" {
		return ""
	}
	return handleOfKey(HashToken(token))
}

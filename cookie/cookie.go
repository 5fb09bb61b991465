// Package cookie provides a [sessions.Backend] that keeps the whole session
// in the client's cookie, signed (HMAC-SHA256) and optionally encrypted
// (AES-256-CTR) with github.com/gorilla/securecookie.
//
// The server stores nothing, so any number of servers that share the secret
// can serve the same sessions, and nothing needs cleaning up. The price:
//
//   - A cookie session cannot be revoked by the server. Destroy expires the
//     cookie in the browser, but a copy taken earlier stays valid until the
//     session's lifetime or idle timeout ends, which the manager checks
//     against the signed timestamps inside the cookie. Keep lifetimes short,
//     or use a server-side backend where revocation matters.
//   - The session travels with every request and must fit in a cookie:
//     name plus value at most 4096 bytes. A larger one fails to save with
//     [ErrTooLarge] and reaches the manager's error handler.
//   - Two concurrent requests that both change the session each send a
//     cookie back; the browser keeps the last Set-Cookie it receives.
//
// Signing and encryption keys are derived from the secret with HKDF-SHA256.
// To rotate secrets, make the new secret current and pass the old ones to
// [WithOldSecrets]: cookies signed with an old secret are still accepted,
// and the manager reissues them signed with the current one.
package cookie

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/starsessions/sessions"
)

// ErrTooLarge is reported when a session does not fit in a cookie. It is
// [sessions.ErrCookieTooLarge], so errors.Is matches either.
var ErrTooLarge = sessions.ErrCookieTooLarge

// MinSecretLength is the shortest secret [New] accepts: 32 bytes, the
// strength of the HMAC-SHA256 key derived from it.
const MinSecretLength = 32

// macName is bound into every signature, so that a value signed for another
// purpose with the same secret is not accepted as a session.
const macName = "starsessions"

// maxTokenLength is the longest cookie value a browser keeps.
const maxTokenLength = 4096

// Backend is a [sessions.Backend] that keeps sessions in signed cookies.
// It is safe for concurrent use.
type Backend struct {
	keys    []*key // the current secret's first
	encrypt bool
}

var (
	_ sessions.Backend      = (*Backend)(nil)
	_ sessions.TokenRotator = (*Backend)(nil)
)

// An Option configures a [Backend].
type Option func(*config)

type config struct {
	oldSecrets [][]byte
	encrypt    bool
}

// WithOldSecrets adds secrets that cookies are still accepted under, for
// key rotation. Cookies signed with them are reissued under the current
// secret.
func WithOldSecrets(secrets ...[]byte) Option {
	return func(c *config) { c.oldSecrets = append(c.oldSecrets, secrets...) }
}

// WithEncryption encrypts the session data (AES-256-CTR, under a key
// derived from the secret) before signing it, so the client cannot read
// what its cookie holds. Without it the data is signed but readable. The
// cookie grows by 16 bytes of IV, before base64.
func WithEncryption() Option { return func(c *config) { c.encrypt = true } }

// New returns a cookie backend whose keys are derived from secret.
// New panics if secret, or an old secret, is shorter than
// [MinSecretLength] bytes: a guessable secret lets anyone forge sessions.
func New(secret []byte, opts ...Option) *Backend {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	b := &Backend{encrypt: c.encrypt}
	for _, s := range append([][]byte{secret}, c.oldSecrets...) {
		b.keys = append(b.keys, keyFor(s, c.encrypt))
	}
	return b
}

func keyFor(secret []byte, encrypt bool) *key {
	if len(secret) < MinSecretLength {
		panic(fmt.Sprintf("cookie: the secret is %d bytes; it must be at least %d random bytes", len(secret), MinSecretLength))
	}
	// Signed and encrypted cookies get different signing keys, so that
	// neither kind of backend accepts the other's cookies.
	hashKey := deriveKey(secret, "starsessions cookie signing key v1")
	var blockKey []byte
	if encrypt {
		hashKey = deriveKey(secret, "starsessions cookie signing key v1, encrypted")
		blockKey = deriveKey(secret, "starsessions cookie encryption key v1")
	}
	// Expiry is the manager's business, checked against the timestamps in
	// the signed record; securecookie's own limits would only conflict.
	return newKey(hashKey, blockKey)
}

func deriveKey(secret []byte, info string) []byte {
	key, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		panic("cookie: deriving a key: " + err.Error()) // only for absurd lengths
	}
	return key
}

// Read returns the data signed into token, or found false if the token
// was not signed by one of the backend's secrets.
func (b *Backend) Read(ctx context.Context, token string) ([]byte, bool, error) {
	data, found, _, err := b.ReadRotate(ctx, token)
	return data, found, err
}

// ReadRotate is Read that also reports whether token was signed with an old
// secret and should be reissued.
func (b *Backend) ReadRotate(_ context.Context, token string) (data []byte, found, rotate bool, err error) {
	if len(token) > maxTokenLength {
		return nil, false, false, nil
	}
	for i, k := range b.keys {
		if data, ok := k.open(macName, token); ok {
			return data, true, i > 0, nil
		}
	}
	return nil, false, false, nil
}

// Write returns data signed (and, with [WithEncryption], encrypted) as a
// cookie value. The ID and TTL are not needed: the cookie is its own
// record, and the manager keeps the session's timestamps inside data.
func (b *Backend) Write(_ context.Context, _ string, data []byte, _ time.Duration) (string, error) {
	if b.encrypt {
		data = bytes.Clone(data) // securecookie encrypts in place
	}
	token, err := b.keys[0].seal(macName, data)
	if err != nil {
		return "", fmt.Errorf("cookie: %w", err)
	}
	if len(token) > maxTokenLength {
		return "", fmt.Errorf("%w: the value would be %d bytes", ErrTooLarge, len(token))
	}
	return token, nil
}

// Remove does nothing: there is no server-side record to remove. The
// manager expires the cookie in the browser.
func (b *Backend) Remove(context.Context, string) error { return nil }

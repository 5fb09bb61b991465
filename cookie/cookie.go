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
//     [sessions.ErrCookieTooLarge] and reaches the manager's error handler.
//   - Two concurrent requests that both change the session each send a
//     cookie back; the browser keeps the last Set-Cookie it receives. Cookie
//     sessions are last-write-wins: the manager's conflict detection needs
//     server-side state, which this backend does not keep.
//
// Cookies are in gorilla/securecookie's format: this package signs and
// verifies them by its own code, which FuzzSealMatchesSecurecookie and
// FuzzOpenMatchesSecurecookie hold to securecookie's output byte for byte,
// and encrypts through securecookie itself. Signing and encryption keys are
// derived from the secret with HKDF-SHA256, and bound, like each
// signature, to the name of the cookie the manager sends (see
// [sessions.NameBinder]): a cookie copied under another manager's name is
// refused, even when the two managers share one Backend and its secret. To
// rotate secrets, make the new secret current and pass the old ones to
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

// MinSecretLength is the shortest secret [New] accepts: 32 bytes, the
// strength of the HMAC-SHA256 key derived from it.
const MinSecretLength = 32

// Backend is a [sessions.Backend] that keeps sessions in signed cookies.
// It is safe for concurrent use.
//
// A Backend signs for one cookie name: [sessions.DefaultCookieName] as
// [New] returns it, and the manager's cookie name once [sessions.New] has
// bound it with BindName.
type Backend struct {
	secrets [][]byte // the current secret first; kept to derive keys for other names
	name    string   // the cookie name the keys and signatures are bound to
	keys    []*key   // one per secret, in the same order
	encrypt bool
}

var (
	_ sessions.Backend      = (*Backend)(nil)
	_ sessions.RecordReader = (*Backend)(nil)
	_ sessions.NameBinder   = (*Backend)(nil)
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
	secrets := append([][]byte{secret}, c.oldSecrets...)
	for i, s := range secrets {
		if len(s) < MinSecretLength {
			panic(fmt.Sprintf("cookie: the secret is %d bytes; it must be at least %d random bytes", len(s), MinSecretLength))
		}
		// BindName derives keys from the secrets later: a caller that
		// wipes or reuses its buffer must not change them.
		secrets[i] = bytes.Clone(s)
	}
	return newBackend(secrets, sessions.DefaultCookieName, c.encrypt)
}

func newBackend(secrets [][]byte, name string, encrypt bool) *Backend {
	b := &Backend{secrets: secrets, name: name, encrypt: encrypt}
	for _, s := range secrets {
		b.keys = append(b.keys, keyFor(s, name, encrypt))
	}
	return b
}

// BindName returns a backend with the same secrets whose cookies are
// signed for, and accepted under, the cookie name name only. [sessions.New]
// calls it with the manager's cookie name.
func (b *Backend) BindName(name string) sessions.Backend {
	return newBackend(b.secrets, name, b.encrypt)
}

// keyFor derives the keys for cookies named name from secret. The name is
// part of the derivation as well as of every signature, so that neither
// keys nor cookies carry over from one name to another.
func keyFor(secret []byte, name string, encrypt bool) *key {
	// Signed and encrypted cookies get different signing keys, so that
	// neither kind of backend accepts the other's cookies.
	purpose := "starsessions cookie signing key v2"
	var blockKey []byte
	if encrypt {
		purpose = "starsessions cookie signing key v2, encrypted"
		blockKey = deriveKey(secret, "starsessions cookie encryption key v2", name)
	}
	hashKey := deriveKey(secret, purpose, name)
	// Expiry is the manager's business, checked against the timestamps in
	// the signed record; securecookie's own limits would only conflict.
	return newKey(hashKey, blockKey)
}

// deriveKey derives a 32-byte key for purpose and cookie name from secret.
// A NUL separates the two, and cannot occur in a cookie name.
func deriveKey(secret []byte, purpose, name string) []byte {
	key, err := hkdf.Key(sha256.New, secret, nil, purpose+"\x00"+name, 32)
	if err != nil {
		panic("cookie: deriving a key: " + err.Error()) // only for absurd lengths
	}
	return key
}

// Read returns the data signed into token, or found false if the token
// was not signed by one of the backend's secrets for its cookie name.
func (b *Backend) Read(ctx context.Context, token string) ([]byte, bool, error) {
	rec, found, err := b.ReadRecord(ctx, token)
	return rec.Data, found, err
}

// ReadRecord is Read that also reports, in [sessions.Record.Rotate],
// whether token was signed with an old secret and should be reissued.
func (b *Backend) ReadRecord(_ context.Context, token string) (sessions.Record, bool, error) {
	if len(b.name)+1+len(token) > sessions.MaxCookieSize {
		return sessions.Record{}, false, nil
	}
	for i, k := range b.keys {
		if data, ok := k.open(b.name, token); ok {
			return sessions.Record{Data: data, Rotate: i > 0, ClientSide: true}, true, nil
		}
	}
	return sessions.Record{}, false, nil
}

// Write returns data signed (and, with [WithEncryption], encrypted) as a
// cookie value. The ID and TTL are not needed: the cookie is its own
// record, and the manager keeps the session's timestamps inside data. A
// cookie whose name and value would pass [sessions.MaxCookieSize] is not
// made: Write fails with [sessions.ErrCookieTooLarge].
func (b *Backend) Write(_ context.Context, _ string, data []byte, _ time.Duration) (string, error) {
	if b.encrypt {
		data = bytes.Clone(data) // securecookie encrypts in place
	}
	token, err := b.keys[0].seal(b.name, data)
	if err != nil {
		return "", fmt.Errorf("cookie: %w", err)
	}
	if size := len(b.name) + 1 + len(token); size > sessions.MaxCookieSize {
		return "", fmt.Errorf("%w: the cookie would be %d bytes", sessions.ErrCookieTooLarge, size)
	}
	return token, nil
}

// Remove does nothing: there is no server-side record to remove. The
// manager expires the cookie in the browser.
func (b *Backend) Remove(context.Context, string) error { return nil }

// Package redis provides a [sessions.Backend] on Redis, through
// github.com/redis/go-redis/v9, so that one backend serves a single server,
// Sentinel (a failover client) and Cluster alike.
//
// # Storage
//
// Each session is one Redis hash under the key prefix + base64url(SHA-256
// of the token): a store that leaks does not hand out live sessions. The
// hash holds the record ("d") and its version ("v"); the key expires with
// the session (PEXPIRE, millisecond precision). Nothing else is stored, and
// the request path never runs KEYS or SCAN.
//
// # Guarantees
//
// The backend implements [sessions.VersionedBackend] and
// [sessions.Toucher]. Conditional writes and removes are Lua scripts over
// the session's single key, so they are atomic on a single server and in
// Cluster mode alike (one key is always in one slot). A touch is a PEXPIRE,
// which never creates a key, so it cannot bring back a removed session.
//
// Redis replicates asynchronously: after a failover, writes the old
// primary acknowledged but had not replicated are lost, and a session may
// go back to an earlier version. Requests during the failover fail (errors
// such as READONLY or connection refused) and reach the manager's error
// handler as 5xx responses; once the client sees the new primary, requests
// work again without restarting the application.
//
// # Cost
//
// One round trip per read (HMGET), one per save (EVALSHA), one per touch
// (PEXPIRE); a regenerate adds one for removing the old key. Every call
// honours the request context's deadline.
package redis

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
)

// DefaultPrefix is the key prefix unless [WithPrefix] says otherwise.
const DefaultPrefix = "session:"

// Backend is a [sessions.Backend] on Redis. It is safe for concurrent use.
type Backend struct {
	client goredis.UniversalClient
	prefix string
}

var (
	_ sessions.Backend          = (*Backend)(nil)
	_ sessions.RecordReader     = (*Backend)(nil)
	_ sessions.VersionedBackend = (*Backend)(nil)
	_ sessions.Toucher          = (*Backend)(nil)
)

// An Option configures a [Backend].
type Option func(*Backend)

// WithPrefix sets the prefix of every key the backend uses, so that
// several applications can share one database. The default is
// [DefaultPrefix]. In Cluster mode, keep hash tags ("{...}") out of it,
// or every session lands in one slot.
func WithPrefix(prefix string) Option { return func(b *Backend) { b.prefix = prefix } }

// New returns a backend that stores sessions through client: a
// *redis.Client, *redis.ClusterClient, a failover client for Sentinel, or
// anything else that is a redis.UniversalClient. The caller owns the
// client and closes it.
func New(client goredis.UniversalClient, opts ...Option) *Backend {
	b := &Backend{client: client, prefix: DefaultPrefix}
	for _, opt := range opts {
		opt(b)
	}
	return b
}

// key returns the Redis key of token.
func (b *Backend) key(token string) string {
	sum := sessions.HashToken(token)
	buf := make([]byte, 0, len(b.prefix)+base64.RawURLEncoding.EncodedLen(sha256.Size))
	buf = append(buf, b.prefix...)
	return string(base64.RawURLEncoding.AppendEncode(buf, sum[:]))
}

// Read returns the record for token; see ReadRecord.
func (b *Backend) Read(ctx context.Context, token string) ([]byte, bool, error) {
	rec, found, err := b.ReadRecord(ctx, token)
	return rec.Data, found, err
}

// ReadRecord returns the record for token and its version, in one
// HMGET. A token not shaped like a session ID is not looked up.
func (b *Backend) ReadRecord(ctx context.Context, token string) (sessions.Record, bool, error) {
	if !sessions.ValidID(token) {
		return sessions.Record{}, false, nil
	}
	vals, err := b.client.HMGet(ctx, b.key(token), "d", "v").Result()
	if err != nil {
		return sessions.Record{}, false, fmt.Errorf("redis: reading session: %w", err)
	}
	data, ok1 := vals[0].(string)
	vs, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return sessions.Record{}, false, nil
	}
	version, err := strconv.ParseUint(vs, 10, 64)
	if err != nil {
		return sessions.Record{}, false, fmt.Errorf("redis: session record has a malformed version %q", vs)
	}
	return sessions.Record{Data: []byte(data), Version: version}, true, nil
}

// writeScript stores a record if the current version is ARGV[1], or
// whatever it is when ARGV[1] is "any". A missing key has version 0.
// It returns the new version, or -1 on a conflict.
var writeScript = goredis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if ARGV[1] ~= 'any' and cur ~= tonumber(ARGV[1]) then
	return -1
end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', cur + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return cur + 1
`)

// removeScript deletes the key if its version is ARGV[1]; it returns 1,
// or -1 on a conflict (a missing key included).
var removeScript = goredis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if cur == 0 or cur ~= tonumber(ARGV[1]) then
	return -1
end
redis.call('DEL', KEYS[1])
return 1
`)

// Write stores data under id, to expire after ttl, and returns id as the
// token.
func (b *Backend) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	return b.write(ctx, id, data, ttl, "any")
}

// WriteIfVersion is Write that succeeds only if the record for id has the
// given version (0: there is none), and fails with [sessions.ErrConflict]
// otherwise.
func (b *Backend) WriteIfVersion(ctx context.Context, id string, data []byte, ttl time.Duration, version uint64) (string, error) {
	return b.write(ctx, id, data, ttl, strconv.FormatUint(version, 10))
}

func (b *Backend) write(ctx context.Context, id string, data []byte, ttl time.Duration, version string) (string, error) {
	ms := max(ttl.Milliseconds(), 1)
	n, err := writeScript.Run(ctx, b.client, []string{b.key(id)}, version, data, ms).Int64()
	if err != nil {
		return "", fmt.Errorf("redis: saving session: %w", err)
	}
	if n < 0 {
		return "", sessions.ErrConflict
	}
	return id, nil
}

// Remove deletes the record for token.
func (b *Backend) Remove(ctx context.Context, token string) error {
	if err := b.client.Del(ctx, b.key(token)).Err(); err != nil {
		return fmt.Errorf("redis: removing session: %w", err)
	}
	return nil
}

// RemoveIfVersion deletes the record for token if its version is the given
// one, and fails with [sessions.ErrConflict] otherwise.
func (b *Backend) RemoveIfVersion(ctx context.Context, token string, version uint64) error {
	n, err := removeScript.Run(ctx, b.client, []string{b.key(token)}, version).Int64()
	if err != nil {
		return fmt.Errorf("redis: removing session: %w", err)
	}
	if n < 0 {
		return sessions.ErrConflict
	}
	return nil
}

// Touch sets the expiry of the record for token to ttl from now with
// PEXPIRE, which does nothing to a key that does not exist.
func (b *Backend) Touch(ctx context.Context, token string, ttl time.Duration) error {
	if err := b.client.PExpire(ctx, b.key(token), max(ttl, time.Millisecond)).Err(); err != nil {
		return fmt.Errorf("redis: extending session: %w", err)
	}
	return nil
}

// Package redis provides a [sessions.Backend] on Redis, through
// github.com/redis/go-redis/v9, so that one backend serves a single server,
// Sentinel (a failover client) and Cluster alike.
//
// # Storage
//
// Each session is one Redis hash under the key prefix + base64url(SHA-256
// of the token): a store that leaks does not hand out live sessions. The
// hash holds the record ("d"), its version ("v") and its owner ("o", when it
// has one); the key expires with the session (PEXPIRE, millisecond
// precision). The request path never runs KEYS or SCAN.
//
// Each owner has an index, a sorted set under prefix + "owner:" +
// base64url(SHA-256 of the owner), of its sessions' keys, scored by the end
// of each session's lifetime. Scores are kept by the Redis server's clock
// (TIME, inside the scripts), so that application servers whose clocks
// disagree neither prune nor hide each other's entries. The index has no
// expiry of its own (see Eviction): its entries go by score, when the
// owner's sessions are next written or listed, and Redis deletes the key
// with its last entry. The index of an owner who never comes back stays,
// a few dozen bytes a session, until something removes it.
//
// The index changes only when a session's owner does. On one server (a
// *redis.Client, Sentinel's failover client included), the script that
// writes the session updates the owners' indexes in the same step. In
// Cluster mode, where an index is in another slot than its sessions, it
// is kept in step by round trips of its own: it gains a session before
// the write that gives the session that owner and again after it, and
// loses it after a write that takes it away. It can therefore lag behind
// the sessions for a moment, or for good when a process stops between the
// two; listing an owner's sessions checks each session's own owner field
// and prunes entries that no longer match or whose session is gone. When
// indexing after the write fails, the save fails and the backend removes
// the session it wrote, rather than leave a session that a revocation
// might never find.
//
// A key under the prefix that the backend did not write (of another type,
// or a hash without a record) is reported as [sessions.ErrCorrupt], never
// overwritten.
//
// # Eviction
//
// Run Redis with maxmemory-policy noeviction or a volatile-* policy.
// Under a volatile-* policy a full Redis evicts only keys with an expiry,
// which owner indexes do not have, so that an index outlives its sessions
// and RevokeAll reaches them all. Under an allkeys-* policy any key can
// go, and a revocation would find nothing to end while the sessions live
// on: the backend reads the policy of every server it uses from INFO
// memory (which managed services that rename CONFIG still answer), at
// most once a minute, and while one is allkeys-*, listing and revoking by
// owner ([Backend.Owned], [Backend.RemoveOwned], and so
// [sessions.Manager.Sessions], Revoke and RevokeAll) fail with
// [ErrEvictionPolicy], and the backend logs one warning through
// [log/slog.Default]. Sessions themselves keep working. A server that
// refuses INFO is not refused, but the backend warns that it could not
// check.
//
// # Guarantees
//
// The backend implements [sessions.VersionedBackend], [sessions.OwnerIndex]
// and [sessions.Toucher]. Conditional writes and removes are Lua scripts over
// the session's single key, so they are atomic on a single server and in
// Cluster mode alike (one key is always in one slot). A touch is a PEXPIRE,
// which never creates a key, so it cannot bring back a removed session.
//
// Redis replicates asynchronously: after a failover, writes the old
// primary acknowledged but had not replicated are lost, and a session may
// go back to an earlier version, or come back after a logout or a
// revocation. [WithWaitReplicas] makes every removal wait for replicas,
// and fail with [ErrNotReplicated] when too few acknowledged it. Requests
// during the failover fail (errors such as READONLY or connection
// refused) and reach the manager's error handler as 5xx responses; once the client sees the new primary, requests
// work again without restarting the application. Reads are scripts, which
// go-redis sends to the primary even when the client may read from
// replicas: a replica can lag behind the save a user's previous request
// made, and a session read there would look older than it is.
//
// # Cost
//
// One round trip per read (EVALSHA of a script that runs HMGET and PTTL, so
// that the manager knows the record's expiry), one per save (EVALSHA), one
// per touch (PEXPIRE), which an idle timeout needs only once per hundredth
// of the timeout; a regenerate adds one for removing the old key, and, in
// Cluster mode, a change of owner two for the index. Under
// [WithWaitReplicas], a removal takes one more, which lasts until the
// replicas acknowledge it. Listing an owner's sessions takes three round
// trips whatever their number (their keys, then all of them in one
// pipeline, then pruning), and no more work than their number; like
// every read, they are scripts, which run on the primary. The eviction
// policy check adds one INFO a minute, to every primary. Every call
// honours the request context's deadline, but for the removal of a
// session whose indexing failed, which has five seconds of its own: the
// deadline may be what failed it.
package redis

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
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
	now    func() time.Time // the application's clock; a seam for tests
	logger *slog.Logger     // nil: slog.Default(); a seam for tests
	policy policyCheck
	// waitReplicas and waitTimeout are WithWaitReplicas's: every removal
	// waits for that many replicas; 0 for none.
	waitReplicas int
	waitTimeout  time.Duration
}

// ErrEvictionPolicy is what listing and revoking by owner fail with while
// a server's maxmemory-policy is allkeys-*, under which a full Redis can
// evict an owner index while its sessions live; see the package
// documentation's "Eviction".
var ErrEvictionPolicy = errors.New("redis: the server's maxmemory-policy can evict owner indexes")

var (
	_ sessions.Backend          = (*Backend)(nil)
	_ sessions.RecordReader     = (*Backend)(nil)
	_ sessions.VersionedBackend = (*Backend)(nil)
	_ sessions.OwnerIndex       = (*Backend)(nil)
	_ sessions.Toucher          = (*Backend)(nil)
)

// An Option configures a [Backend].
type Option func(*Backend)

// WithPrefix sets the prefix of every key the backend uses, so that
// several applications can share one database. The default is
// [DefaultPrefix]. In Cluster mode, keep hash tags ("{...}") out of it,
// or every session lands in one slot.
func WithPrefix(prefix string) Option { return func(b *Backend) { b.prefix = prefix } }

// ErrNotReplicated is what a removal fails with, under [WithWaitReplicas],
// when fewer replicas than asked acknowledged it in time. The removal is
// done on the primary all the same; only its survival of a failover is in
// doubt.
var ErrNotReplicated = errors.New("redis: a removal was not acknowledged by enough replicas")

// WithWaitReplicas makes every removal of a session wait, with Redis's
// WAIT, until n replicas have acknowledged it or timeout has passed, and
// fail with an error that matches [ErrNotReplicated] if fewer did: a
// logout (Remove), a conditional removal (RemoveIfVersion, through which
// a regenerate retires the old token) and a revocation (RemoveOwned, for
// Revoke and RevokeAll). Redis replicates asynchronously, so without it a
// failover can promote a replica that never saw the removal, and the
// session lives again. The removal itself is done when the error comes:
// the primary no longer has the session, and the failure says only that
// a failover could still bring it back; the application may retry, or
// report it. A removal that finds nothing to remove does not wait.
//
// WAIT counts the replicas of the server that took the removal, on the
// connection that sent it, so the backend sends both on one connection to
// the primary that holds the session's key: in Cluster mode, the primary
// of the key's slot. That needs the client to be a *redis.Client
// (Sentinel's failover client is one), a *redis.ClusterClient or a
// *redis.Ring; [New] panics otherwise. A removal then takes two round
// trips, and as long as the replicas take; keep timeout below the request
// deadlines. n of 0 or less turns waiting off, the default.
func WithWaitReplicas(n int, timeout time.Duration) Option {
	return func(b *Backend) { b.waitReplicas, b.waitTimeout = n, max(timeout, time.Millisecond) }
}

// New returns a backend that stores sessions through client: a
// *redis.Client, *redis.ClusterClient, a failover client for Sentinel, or
// anything else that is a redis.UniversalClient. The caller owns the
// client and closes it.
func New(client goredis.UniversalClient, opts ...Option) *Backend {
	b := &Backend{client: client, prefix: DefaultPrefix, now: time.Now, policy: policyCheck{lock: make(chan struct{}, 1)}}
	for _, opt := range opts {
		opt(b)
	}
	if b.waitReplicas > 0 {
		switch client.(type) {
		case *goredis.Client, *goredis.ClusterClient, *goredis.Ring:
		default:
			panic(fmt.Sprintf("redis: WithWaitReplicas needs a *redis.Client, *redis.ClusterClient or *redis.Ring, which can send WAIT on the connection of a removal; the client is a %T", client))
		}
	}
	return b
}

// removal runs remove, which removes the session under key through c and
// returns what was removed, and then, under WithWaitReplicas, if
// something was, waits for the replicas on the same connection.
func (b *Backend) removal(ctx context.Context, key string, remove func(c goredis.Cmdable) (int64, error)) (int64, error) {
	if b.waitReplicas <= 0 {
		return remove(b.client)
	}
	var node *goredis.Client
	var err error
	switch c := b.client.(type) {
	case *goredis.Client:
		node = c
	case *goredis.ClusterClient:
		node, err = c.MasterForKey(ctx, key)
	case *goredis.Ring:
		node, err = c.GetShardClientForKey(key)
	}
	if err != nil {
		return 0, fmt.Errorf("redis: finding the primary of a session: %w", err)
	}
	// WAIT waits for the writes of its own connection.
	conn := node.Conn()
	defer conn.Close()
	n, err := remove(conn)
	if err != nil || n <= 0 {
		return n, err
	}
	acked, err := conn.Wait(ctx, b.waitReplicas, b.waitTimeout).Result()
	if err != nil {
		return n, fmt.Errorf("redis: waiting for replicas to acknowledge a removal: %w", err)
	}
	if acked < int64(b.waitReplicas) {
		return n, fmt.Errorf("%w: %d of %d replicas acknowledged within %v", ErrNotReplicated, acked, b.waitReplicas, b.waitTimeout)
	}
	return n, nil
}

// key returns the Redis key of token.
func (b *Backend) key(token string) string { return b.hashKey(sessions.HashToken(token)) }

// hashKey returns the Redis key of the token whose HashToken is sum.
func (b *Backend) hashKey(sum [sha256.Size]byte) string {
	buf := make([]byte, 0, len(b.prefix)+base64.RawURLEncoding.EncodedLen(sha256.Size))
	buf = append(buf, b.prefix...)
	return string(base64.RawURLEncoding.AppendEncode(buf, sum[:]))
}

// ownerKey returns the key of owner's index.
func (b *Backend) ownerKey(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return b.prefix + "owner:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// member returns how an owner's index names the session whose HashToken
// is sum.
func member(sum [sha256.Size]byte) string { return base64.RawURLEncoding.EncodeToString(sum[:]) }

// Read returns the record for token; see ReadRecord.
func (b *Backend) Read(ctx context.Context, token string) ([]byte, bool, error) {
	rec, found, err := b.ReadRecord(ctx, token)
	return rec.Data, found, err
}

// readScript returns the record, its version and its remaining time to
// live in milliseconds, or nil for a missing key: one round trip gives the
// manager what it needs to decide whether the read must extend the record.
var readScript = goredis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'd', 'v')
if not v[1] or not v[2] then
	if redis.call('EXISTS', KEYS[1]) == 1 then
		return redis.error_reply('FOREIGN a hash without a session record')
	end
	return false
end
return {v[1], v[2], redis.call('PTTL', KEYS[1])}
`)

// scriptErr wraps err, from a script run on a session's key, as what the
// caller was doing; a key that another writer made (of another type, or a
// hash without a record) is [sessions.ErrCorrupt], so that it reaches the
// error handler rather than being taken for a missing session and
// overwritten.
func scriptErr(doing string, err error) error {
	if msg := err.Error(); strings.Contains(msg, "WRONGTYPE") || strings.Contains(msg, "FOREIGN") {
		return fmt.Errorf("redis: %s: %w: the key holds something else (%v)", doing, sessions.ErrCorrupt, err)
	}
	return fmt.Errorf("redis: %s: %w", doing, err)
}

// ReadRecord returns the record for token, its version and its expiry, in
// one round trip. A token not shaped like a session ID is not looked up.
func (b *Backend) ReadRecord(ctx context.Context, token string) (sessions.Record, bool, error) {
	if !sessions.ValidID(token) {
		return sessions.Record{}, false, nil
	}
	start := b.now()
	vals, err := readScript.Run(ctx, b.client, []string{b.key(token)}).Slice()
	if errors.Is(err, goredis.Nil) {
		return sessions.Record{}, false, nil
	}
	if err != nil {
		return sessions.Record{}, false, scriptErr("reading session", err)
	}
	data, ok1 := vals[0].(string)
	vs, ok2 := vals[1].(string)
	ttl, ok3 := vals[2].(int64)
	if !ok1 || !ok2 || !ok3 {
		return sessions.Record{}, false, fmt.Errorf("redis: session record of an unexpected shape")
	}
	version, err := strconv.ParseUint(vs, 10, 64)
	if err != nil {
		return sessions.Record{}, false, fmt.Errorf("redis: %w: the session record's version is %q", sessions.ErrCorrupt, vs)
	}
	rec := sessions.Record{Data: []byte(data), Version: version}
	if ttl >= 0 {
		// Counted from when the request left, so that the expiry errs
		// early, never late.
		rec.ExpiresAt = start.Add(time.Duration(ttl) * time.Millisecond)
	}
	return rec, true, nil
}

// writeLua is Lua whose function write stores a record in KEYS[1] if the
// current version is ARGV[1], or whatever it is when ARGV[1] is "any". A
// missing key has version 0. With ARGV[4] = "1" the owner becomes ARGV[5]
// ("" for none); otherwise it stays. It returns the new version, -1 on a
// conflict, or an error reply for a key the backend did not write.
const writeLua = `
local function write()
	local v = redis.call('HGET', KEYS[1], 'v')
	local cur = tonumber(v or '0')
	if not cur or (v and redis.call('HEXISTS', KEYS[1], 'd') == 0) or (not v and redis.call('EXISTS', KEYS[1]) == 1) then
		return redis.error_reply('FOREIGN a hash without a session record')
	end
	if ARGV[1] ~= 'any' and cur ~= tonumber(ARGV[1]) then
		return -1
	end
	redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', cur + 1)
	if ARGV[4] == '1' then
		if ARGV[5] == '' then
			redis.call('HDEL', KEYS[1], 'o')
		else
			redis.call('HSET', KEYS[1], 'o', ARGV[5])
		end
	end
	redis.call('PEXPIRE', KEYS[1], ARGV[3])
	return cur + 1
end
`

// writeScript writes a record, as writeLua says.
var writeScript = goredis.NewScript(writeLua + `
return write()
`)

// serverNow is Lua that sets now to the Redis server's time in Unix
// milliseconds. Index scores are kept by it, never by an application's
// clock: application servers' clocks disagree, and one that runs ahead
// would otherwise prune, or hide from a listing, the entries another one
// made. Calling TIME before writing needs effects replication, the
// default since Redis 5 (and the only mode since 7), which
// redis.replicate_commands asks for on older servers.
const serverNow = `
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// indexLua is Lua whose function index indexes the session m in the
// owner index idx: it drops the entries whose score is before now, and
// adds m with a score of now + remaining (the session's remaining
// lifetime in milliseconds). With mode "NX" (an entry for a write still
// to come) the score is a millisecond less, and the entry is added only
// if it is not there yet; otherwise mode is a fraction of a millisecond,
// in 4096ths, to add, and the score must differ from the entry's current
// one. It runs after serverNow.
//
// The index never expires (PERSIST undoes the expiry that earlier
// versions gave it): under a volatile-* maxmemory-policy, a full Redis
// evicts only keys with an expiry, and an index, rarely read, would go
// before its sessions. Its entries go by score instead, and Redis deletes
// a sorted set that loses its last one.
const indexLua = `
local function index(idx, m, remaining, mode)
	redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. now)
	local deadline = now + tonumber(remaining)
	if mode == 'NX' then
		redis.call('ZADD', idx, 'NX', string.format('%.17g', deadline - 1), m)
	else
		local score = deadline + tonumber(mode) / 4096
		if tonumber(redis.call('ZSCORE', idx, m) or '-1') == score then
			score = score + 1 / 4096
		end
		redis.call('ZADD', idx, string.format('%.17g', score), m)
	end
	redis.call('PERSIST', idx)
end
`

// indexScript indexes the session ARGV[1] in the owner index KEYS[1], as
// indexLua says, with ARGV[2] and ARGV[3] its remaining and mode. It
// touches one key, so it runs in Cluster mode too.
var indexScript = goredis.NewScript(serverNow + indexLua + `
index(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1
`)

// writeOwnedScript writes a record whose owner changes, as writeScript
// does, and in the same step indexes it (ARGV[6], with ARGV[7] and
// ARGV[8] its remaining and mode, as indexLua says) under the new
// owner's index, KEYS[2], when ARGV[9] is "1", and removes it from the
// previous owner's index, the next key, when ARGV[10] is "1". It touches
// several keys, so it runs only where they are on one server.
var writeOwnedScript = goredis.NewScript(serverNow + indexLua + writeLua + `
local n = write()
if type(n) ~= 'number' or n < 0 then
	return n
end
local k = 2
if ARGV[9] == '1' then
	index(KEYS[k], ARGV[6], ARGV[7], ARGV[8])
	k = k + 1
end
if ARGV[10] == '1' then
	redis.call('ZREM', KEYS[k], ARGV[6])
end
return n
`)

// listScript returns the members of the owner index KEYS[1] whose score
// is the server's time or later, with their scores. A script, so that it
// runs on the primary, where the session writes go.
var listScript = goredis.NewScript(serverNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf', 'WITHSCORES')
`)

// ownedScript returns the record, version, owner and remaining time to
// live of the session key KEYS[1]. A script, so that it runs on the
// primary.
var ownedScript = goredis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'd', 'v', 'o')
return {v[1] or '', v[2] or '', v[3] or '', redis.call('PTTL', KEYS[1])}
`)

// pruneScript removes from the owner index KEYS[1] each member ARGV[2i-1]
// whose score is still ARGV[2i], as a listing read it; a member whose
// score changed since was indexed again meanwhile, and stays.
var pruneScript = goredis.NewScript(`
for i = 1, #ARGV, 2 do
	if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
		redis.call('ZREM', KEYS[1], ARGV[i])
	end
end
return 1
`)

// removeOwnedScript deletes the key if its owner is ARGV[1]; it returns 1
// if it did, 0 otherwise.
var removeOwnedScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then
	redis.call('DEL', KEYS[1])
	return 1
end
return 0
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
// token. The record keeps its owner.
func (b *Backend) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	_, err := b.write(ctx, b.key(id), data, ttl, "any", "0", "")
	return id, err
}

// WriteIfVersion is Write that succeeds only if the record for w.ID has
// version w.Version (0: there is none), and fails with
// [sessions.ErrConflict] otherwise. The record's owner becomes w.Owner.
//
// When that changes the owner, the owners' indexes change with it. On one
// server (the client is a *redis.Client, Sentinel's failover client
// included), the script that writes the record updates both indexes in
// the same step, so the index never lags behind the record.
//
// Otherwise, as in Cluster mode, where an index is in another slot than
// its sessions, the new owner's index gains the session in a round trip
// before the write, so that a session that names an owner is not missing
// from the owner's index even if the process stops after the write; an
// entry whose write then fails is pruned when the index is next listed. A
// listing may run between the two and prune the entry of a session it
// does not find yet, so a round trip after the write indexes the session
// again, under a score of its own that a listing's pruning leaves alone.
// If that fails, the session may be missing from the index, where no
// revocation would find it: WriteIfVersion then removes the record it
// wrote (unless it changed since) and fails. The previous owner's index
// loses the session after the write, as best it can: a listing prunes
// what is left.
func (b *Backend) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	sum := sessions.HashToken(w.ID)
	key := b.hashKey(sum)
	reindex := w.Owner != w.PreviousOwner
	if _, oneServer := b.client.(*goredis.Client); reindex && oneServer {
		return w.ID, b.writeOwned(ctx, key, sum, w)
	}
	if reindex && w.Owner != "" {
		if err := b.index(ctx, sum, w, true); err != nil {
			return "", err
		}
	}
	version, err := b.write(ctx, key, w.Data, w.TTL, strconv.FormatUint(w.Version, 10), "1", w.Owner)
	if err != nil {
		return "", err
	}
	if reindex && w.Owner != "" {
		if err := b.index(ctx, sum, w, false); err != nil {
			return "", b.unwrite(ctx, key, version, err)
		}
	}
	if reindex && w.PreviousOwner != "" {
		b.client.ZRem(ctx, b.ownerKey(w.PreviousOwner), member(sum)) // listing prunes it otherwise
	}
	return w.ID, nil
}

// writeOwned writes w, whose owner changes, and updates both owners'
// indexes, in one script.
func (b *Backend) writeOwned(ctx context.Context, key string, sum [sha256.Size]byte, w sessions.VersionedWrite) error {
	keys := []string{key}
	toNew, fromPrevious := "0", "0"
	if w.Owner != "" {
		keys, toNew = append(keys, b.ownerKey(w.Owner)), "1"
	}
	if w.PreviousOwner != "" {
		keys, fromPrevious = append(keys, b.ownerKey(w.PreviousOwner)), "1"
	}
	n, err := writeOwnedScript.Run(ctx, b.client, keys, w.Version, w.Data, max(w.TTL.Milliseconds(), 1), "1", w.Owner,
		member(sum), b.remaining(w), strconv.Itoa(1+rand.N(indexScores-1)), toNew, fromPrevious).Int64()
	if err != nil {
		return scriptErr("saving session", err)
	}
	if n < 0 {
		return sessions.ErrConflict
	}
	return nil
}

// unwrite removes the record under key, of the given version, that a
// write left out of its owner's index, and returns the error that
// indexing it failed with, and what else went wrong.
func (b *Backend) unwrite(ctx context.Context, key string, version int64, indexErr error) error {
	// The request's context may be what ended the indexing.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unwriteTimeout)
	defer cancel()
	_, err := b.removal(ctx, key, func(c goredis.Cmdable) (int64, error) {
		return removeScript.Run(ctx, c, []string{key}, version).Int64()
	})
	if err != nil {
		return fmt.Errorf("%w; removing the unindexed session failed too, so it lives unlisted until it expires: %v", indexErr, err)
	}
	return fmt.Errorf("%w; the session was removed", indexErr)
}

// unwriteTimeout bounds unwrite's removal.
const unwriteTimeout = 5 * time.Second

// write runs writeScript on key and returns the record's new version.
func (b *Backend) write(ctx context.Context, key string, data []byte, ttl time.Duration, version, setOwner, owner string) (int64, error) {
	ms := max(ttl.Milliseconds(), 1)
	n, err := writeScript.Run(ctx, b.client, []string{key}, version, data, ms, setOwner, owner).Int64()
	if err != nil {
		return 0, scriptErr("saving session", err)
	}
	if n < 0 {
		return 0, sessions.ErrConflict
	}
	return n, nil
}

// indexScores is how many scores a written session's index entry can
// have within its deadline's millisecond: as many as a float64 tells apart
// at today's Unix milliseconds.
const indexScores = 4096

// index adds the session whose HashToken is sum to w.Owner's index. A
// listing prunes an entry whose session it did not find only if the
// entry's score is still what it read, so every change of the entry that
// matters moves its score. Before the write, the entry is added at a
// millisecond before the end of the session's lifetime, unless it is
// there already: a pending write must not take a written one's score
// back, as a losing double-submitted login would. After the write, it is
// set to the end of the lifetime plus a random fraction of a millisecond
// that differs from the entry's score before.
//
// The end of the lifetime is counted on the Redis server's clock: the
// session's remaining lifetime, by this application's clock, from the
// server's time.
func (b *Backend) index(ctx context.Context, sum [sha256.Size]byte, w sessions.VersionedWrite, pending bool) error {
	mode := "NX"
	if !pending {
		mode = strconv.Itoa(1 + rand.N(indexScores-1))
	}
	err := indexScript.Run(ctx, b.client, []string{b.ownerKey(w.Owner)}, member(sum), b.remaining(w), mode).Err()
	if err != nil {
		return fmt.Errorf("redis: indexing session by owner: %w", err)
	}
	return nil
}

// remaining returns, in milliseconds, how long w's session may live: until
// its deadline, and never less than the TTL of the write, so that no entry
// ends before its session's key.
func (b *Backend) remaining(w sessions.VersionedWrite) int64 {
	d := w.TTL
	if !w.Deadline.IsZero() {
		d = max(d, w.Deadline.Sub(b.now()))
	}
	return max(d.Milliseconds(), 1)
}

// Owned returns the live sessions whose owner is owner: the members of the
// owner's index, each read with its TTL in one pipeline and checked against
// its own owner field. Entries that do not match are removed from the
// index, unless they were indexed again meanwhile. Every read is a script,
// so it runs on the primary even when the client may read from replicas.
func (b *Backend) Owned(ctx context.Context, owner string) ([]sessions.OwnedRecord, error) {
	if err := b.checkPolicy(ctx); err != nil {
		return nil, err
	}
	idx := b.ownerKey(owner)
	now := b.now()
	scored, err := listScript.Run(ctx, b.client, []string{idx}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: listing an owner's sessions: %w", err)
	}
	if len(scored) == 0 {
		return nil, nil
	}
	reads, err := b.readOwned(ctx, scored)
	if err != nil {
		return nil, fmt.Errorf("redis: reading an owner's sessions: %w", err)
	}
	var out []sessions.OwnedRecord
	var stale []any // member, score: pairs for pruneScript
	for i := 0; i+1 < len(scored); i += 2 {
		m := scored[i]
		vals, _ := reads[i/2].Slice()
		rec, ok := ownedRecord(m, vals, owner, now)
		if !ok {
			stale = append(stale, m, scored[i+1])
			continue
		}
		out = append(out, rec)
	}
	if len(stale) > 0 {
		// Best effort: a later listing prunes whatever this one could not.
		pruneScript.Run(ctx, b.client, []string{idx}, stale...)
	}
	return out, nil
}

// readOwned runs ownedScript on the session key of every member of
// scored (member, score, member, score...) in one pipeline. It sends the
// script's hash, and the script itself only when a node has not cached it.
func (b *Backend) readOwned(ctx context.Context, scored []string) ([]*goredis.Cmd, error) {
	reads, err := b.pipeOwned(ctx, scored, ownedScript.EvalSha)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		reads, err = b.pipeOwned(ctx, scored, ownedScript.Eval)
	}
	return reads, err
}

// pipeOwned is readOwned's pipeline, sending the script with run.
func (b *Backend) pipeOwned(ctx context.Context, scored []string, run func(context.Context, goredis.Scripter, []string, ...any) *goredis.Cmd) ([]*goredis.Cmd, error) {
	pipe := b.client.Pipeline()
	reads := make([]*goredis.Cmd, 0, len(scored)/2)
	for i := 0; i+1 < len(scored); i += 2 {
		reads = append(reads, run(ctx, pipe, []string{b.prefix + scored[i]}))
	}
	_, err := pipe.Exec(ctx)
	return reads, err
}

// ownedRecord returns the record that ownedScript read as vals for the
// index member m, and whether it is a live session of owner.
func ownedRecord(m string, vals []any, owner string, now time.Time) (sessions.OwnedRecord, bool) {
	if len(vals) != 4 {
		return sessions.OwnedRecord{}, false
	}
	data, _ := vals[0].(string)
	vs, _ := vals[1].(string)
	o, _ := vals[2].(string)
	ttl, _ := vals[3].(int64)
	var sum [sha256.Size]byte
	n, err := base64.RawURLEncoding.Decode(sum[:], []byte(m))
	version, verr := strconv.ParseUint(vs, 10, 64)
	if data == "" || o != owner || err != nil || n != sha256.Size || verr != nil || ttl <= 0 {
		return sessions.OwnedRecord{}, false
	}
	return sessions.OwnedRecord{Key: sum, Record: sessions.Record{
		Data: []byte(data), Version: version, ExpiresAt: now.Add(time.Duration(ttl) * time.Millisecond)}}, true
}

// RemoveOwned deletes the session whose HashToken is key if its owner is
// owner, and then drops it from the owner's index.
func (b *Backend) RemoveOwned(ctx context.Context, owner string, key [sha256.Size]byte) (bool, error) {
	if err := b.checkPolicy(ctx); err != nil {
		return false, err
	}
	k := b.hashKey(key)
	n, err := b.removal(ctx, k, func(c goredis.Cmdable) (int64, error) {
		return removeOwnedScript.Run(ctx, c, []string{k}, owner).Int64()
	})
	// Best effort: listing prunes an entry whose session is gone.
	b.client.ZRem(ctx, b.ownerKey(owner), member(key))
	if err != nil {
		return n == 1, fmt.Errorf("redis: revoking session: %w", err)
	}
	return n == 1, nil
}

// Remove deletes the record for token.
func (b *Backend) Remove(ctx context.Context, token string) error {
	key := b.key(token)
	_, err := b.removal(ctx, key, func(c goredis.Cmdable) (int64, error) { return c.Del(ctx, key).Result() })
	if err != nil {
		return fmt.Errorf("redis: removing session: %w", err)
	}
	return nil
}

// RemoveIfVersion deletes the record for token if its version is the given
// one, and fails with [sessions.ErrConflict] otherwise.
func (b *Backend) RemoveIfVersion(ctx context.Context, token string, version uint64) error {
	key := b.key(token)
	n, err := b.removal(ctx, key, func(c goredis.Cmdable) (int64, error) {
		return removeScript.Run(ctx, c, []string{key}, version).Int64()
	})
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

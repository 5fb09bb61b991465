// Package memory provides a [sessions.Backend] that keeps sessions in the
// process's memory.
//
// It suits tests and applications that run as a single process: sessions
// are lost when the process exits and are not shared between processes.
// Records are keyed by the SHA-256 of their token, never the token itself.
// Expired records are never returned, and a background sweep frees their
// memory until [Backend.Close] stops it. The backend keeps an exact index
// of records by owner, for [sessions.Manager.Sessions], and can be bounded
// in size with [WithMaxSessions].
//
// # Many sessions
//
// Records live in byte arenas, split over shards by key, and are found
// through maps from integers to integers; the owner index is lists in one
// slice of pointer-free nodes. Nothing the garbage collector has to scan
// grows with the number of sessions or owners, so that a collection
// costs about the same with a thousand sessions or a million. A write
// appends the new record to its shard's arena; the space of replaced,
// removed and expired records is reclaimed by copying a shard's live
// records into a fresh arena once they fill less than half of it. Reads
// share their shard's lock and hand out the record's bytes without a copy:
// an arena's bytes are never changed once written, but for expiry times.
package memory

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starsessions/sessions"
)

// DefaultSweepInterval is how often expired records are freed unless
// [WithSweepInterval] says otherwise.
const DefaultSweepInterval = time.Minute

// shardCount is the number of shards records spread over, by key: enough
// that writers to different sessions rarely wait for each other, and that
// one shard's compaction or sweep holds up a small part of the reads.
const shardCount = 256

// Backend is an in-memory [sessions.Backend]. It is safe for concurrent
// use.
type Backend struct {
	shards [shardCount]shard
	now    func() time.Time // a seam for tests

	// owners indexes records by owner. ownersMu guards it, and is taken
	// after a shard's lock, never before. Records are checked against
	// their stored owner when read through it.
	ownersMu sync.Mutex
	owners   ownerIndex

	retired retiredEntries // what retired tokens leave (renew.go)

	count       atomic.Int64 // records held, expired ones not yet swept included
	maxSessions int64
	lastReclaim atomic.Int64 // when a full store last swept, Unix nanoseconds

	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

var (
	_ sessions.Backend          = (*Backend)(nil)
	_ sessions.RecordReader     = (*Backend)(nil)
	_ sessions.VersionedBackend = (*Backend)(nil)
	_ sessions.OwnerIndex       = (*Backend)(nil)
	_ sessions.Toucher          = (*Backend)(nil)
)

// ErrFull is returned by a write that would store a new session in a
// backend that holds [WithMaxSessions] sessions already, or, without such
// a bound, by a write to one of the backend's 256 shards once its live
// records fill the 4 GB a shard can address. The manager passes it to its
// error handler; sessions already stored keep working.
var ErrFull = errors.New("memory: the session store is full")

// An Option configures a [Backend].
type Option func(*config)

type config struct {
	sweepInterval time.Duration
	maxSessions   int
}

// WithMaxSessions bounds the number of sessions the backend holds to n, so
// that anonymous traffic cannot grow the process's memory without limit.
// Once n sessions are stored, a write that would store another one fails
// with [ErrFull] (expired records are swept first, at most once a second,
// in the request that met the bound), while the sessions already stored
// are still read and saved: a flood of new visitors cannot sign anyone
// out, but can keep new sessions from being made until the flood's own
// sessions expire. A login that calls [sessions.Session.Regenerate] stores
// a new session too, and fails alike. Pair the bound with short lifetimes
// or idle timeouts for anonymous sessions, and rate limits. The default,
// 0, sets no bound.
func WithMaxSessions(n int) Option {
	return func(c *config) { c.maxSessions = n }
}

// WithSweepInterval sets how often the background sweep frees expired
// records; the default is [DefaultSweepInterval]. Zero or less turns the
// sweep off: expired records are still never returned, but stay in memory
// until they are overwritten or removed.
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) { c.sweepInterval = d }
}

// New returns an empty in-memory backend and starts its sweep. Call
// [Backend.Close] when done with it.
func New(opts ...Option) *Backend {
	c := config{sweepInterval: DefaultSweepInterval}
	for _, opt := range opts {
		opt(&c)
	}
	b := &Backend{now: time.Now, stop: make(chan struct{}), stopped: make(chan struct{}),
		maxSessions: int64(max(c.maxSessions, 0)), owners: ownerIndex{heads: map[uint64]uint32{}}}
	for i := range b.shards {
		b.shards[i].index = map[uint64]uint32{}
	}
	if c.sweepInterval > 0 {
		go b.sweepEvery(c.sweepInterval)
	} else {
		close(b.stopped)
	}
	return b
}

// shardOf returns the shard of the record under key. The shard is chosen
// by the key's last byte and the index by its first eight, so that the two
// are independent.
func (b *Backend) shardOf(key *[sha256.Size]byte) *shard {
	return &b.shards[int(key[sha256.Size-1])%shardCount]
}

// Read returns the live record for token. A token that is not shaped like
// a session ID is not looked up.
func (b *Backend) Read(ctx context.Context, token string) ([]byte, bool, error) {
	rec, found, err := b.ReadRecord(ctx, token)
	return rec.Data, found, err
}

// ReadRecord is Read that also returns the record's version and expiry.
func (b *Backend) ReadRecord(_ context.Context, token string) (sessions.Record, bool, error) {
	if !sessions.ValidID(token) {
		return sessions.Record{}, false, nil
	}
	key := sessions.HashToken(token)
	rec, found := b.readKey(&key)
	return rec, found, nil
}

// readKey returns the live record under key.
func (b *Backend) readKey(key *[sha256.Size]byte) (sessions.Record, bool) {
	sh := b.shardOf(key)
	now := b.now().UnixNano()
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	e, ok := sh.find(key)
	if !ok || !e.liveAt(now) {
		return sessions.Record{}, false
	}
	// The arena's bytes under the record's data never change, so the
	// slice can be shared with the caller.
	return sessions.Record{Data: e.data(), Version: e.version(), ExpiresAt: time.Unix(0, e.expires())}, true
}

// Write stores a copy of data under id, to expire after ttl, and returns id
// as the token. A live record keeps its owner.
func (b *Backend) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	return b.write(sessions.VersionedWrite{ID: id, Data: data, TTL: ttl}, false)
}

// WriteIfVersion is Write that succeeds only if the live record for w.ID
// has version w.Version (0: there is none), and fails with
// [sessions.ErrConflict] otherwise. The record's owner becomes w.Owner.
func (b *Backend) WriteIfVersion(_ context.Context, w sessions.VersionedWrite) (string, error) {
	return b.write(w, true)
}

func (b *Backend) write(w sessions.VersionedWrite, conditional bool) (string, error) {
	if len(w.Owner) > maxOwner || len(w.Data) > maxData {
		return "", errTooLarge
	}
	key := sessions.HashToken(w.ID)
	sh := b.shardOf(&key)
	for reclaimed := false; ; reclaimed = true {
		full, err := b.writeIn(sh, &key, w, conditional)
		if !full {
			if err != nil {
				return "", err
			}
			return w.ID, nil
		}
		// Expired records count until swept: sweep now, without holding a
		// shard's lock, but at most once a second, so that a full store
		// cannot be made to sweep on every request.
		now := b.now().UnixNano()
		last := b.lastReclaim.Load()
		if reclaimed || now-last < int64(time.Second) || !b.lastReclaim.CompareAndSwap(last, now) {
			return "", ErrFull
		}
		b.Sweep()
	}
}

// errTooLarge is returned for a record that no session should need.
var errTooLarge = errors.New("memory: a record of more than 64 MB, or an owner of more than 64 kB")

// writeIn stores a record under key in sh, and reports whether it could
// not because the backend is full.
func (b *Backend) writeIn(sh *shard, key *[sha256.Size]byte, w sessions.VersionedWrite, conditional bool) (full bool, err error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return b.writeLocked(sh, key, w, conditional)
}

// writeLocked stores a record under key in sh, whose lock the caller
// holds, and reports whether it could not because the backend is full.
func (b *Backend) writeLocked(sh *shard, key *[sha256.Size]byte, w sessions.VersionedWrite, conditional bool) (full bool, err error) {
	now := b.now().UnixNano()
	old, held := sh.find(key)
	var current uint64
	var oldOwner string
	owner := w.Owner
	if held {
		oldOwner = string(old.owner())
		if old.liveAt(now) {
			current = old.version()
			if !conditional {
				owner = oldOwner
			}
		} else if !conditional {
			owner = ""
		}
	} else if !conditional {
		owner = ""
	}
	if conditional && current != w.Version {
		return false, sessions.ErrConflict
	}
	if !held {
		if n := b.count.Add(1); b.maxSessions > 0 && n > b.maxSessions {
			b.count.Add(-1)
			return true, nil
		}
	}
	if !sh.put(key, expiry(now, w.TTL), current+1, owner, w.Data) {
		if !held {
			b.count.Add(-1)
		}
		return false, ErrFull // the shard's 4 GB of records are all live
	}
	if held && oldOwner != owner {
		b.unindex(oldOwner, key)
	}
	if owner != "" && (!held || oldOwner != owner) {
		b.index(owner, key)
	}
	return false, nil
}

func (b *Backend) index(owner string, key *[sha256.Size]byte) {
	b.ownersMu.Lock()
	defer b.ownersMu.Unlock()
	b.owners.add(ownerHash(owner), key)
}

func (b *Backend) unindex(owner string, key *[sha256.Size]byte) {
	if owner == "" {
		return
	}
	b.ownersMu.Lock()
	defer b.ownersMu.Unlock()
	b.owners.remove(ownerHash(owner), key)
}

// deleteLocked deletes the record under key from sh, whose lock the caller
// holds.
func (b *Backend) deleteLocked(sh *shard, key *[sha256.Size]byte) {
	if e, ok := sh.find(key); ok {
		owner := string(e.owner())
		sh.remove(key, e)
		b.count.Add(-1)
		b.unindex(owner, key)
	}
}

// RemoveIfVersion removes the record for token if its version is the given
// one, and fails with [sessions.ErrConflict] otherwise.
func (b *Backend) RemoveIfVersion(_ context.Context, token string, version uint64) error {
	key := sessions.HashToken(token)
	sh := b.shardOf(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.find(&key)
	if !ok || !e.liveAt(b.now().UnixNano()) || e.version() != version {
		return sessions.ErrConflict
	}
	b.deleteLocked(sh, &key)
	return nil
}

// Remove deletes the record for token, if there is one.
func (b *Backend) Remove(_ context.Context, token string) error {
	key := sessions.HashToken(token)
	sh := b.shardOf(&key)
	sh.mu.Lock()
	b.deleteLocked(sh, &key)
	sh.mu.Unlock()
	return nil
}

// Owned returns the live records whose owner is owner.
func (b *Backend) Owned(_ context.Context, owner string) ([]sessions.OwnedRecord, error) {
	b.ownersMu.Lock()
	keys := b.owners.keys(ownerHash(owner))
	b.ownersMu.Unlock()
	now := b.now().UnixNano()
	out := make([]sessions.OwnedRecord, 0, len(keys))
	for i := range keys {
		key := &keys[i]
		sh := b.shardOf(key)
		sh.mu.RLock()
		if e, ok := sh.find(key); ok && e.liveAt(now) && string(e.owner()) == owner {
			out = append(out, sessions.OwnedRecord{Key: *key, Record: sessions.Record{
				Data: e.data(), Version: e.version(), ExpiresAt: time.Unix(0, e.expires())}})
		}
		sh.mu.RUnlock()
	}
	return out, nil
}

// RemoveOwned removes the live record under key if its owner is owner.
func (b *Backend) RemoveOwned(_ context.Context, owner string, key [sha256.Size]byte) (bool, error) {
	sh := b.shardOf(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.find(&key)
	if !ok || !e.liveAt(b.now().UnixNano()) || string(e.owner()) != owner {
		return false, nil
	}
	b.deleteLocked(sh, &key)
	return true, nil
}

// expiry returns the Unix nanosecond ttl after now, and the last one there
// is for a ttl that goes past it: "forever" must not wrap into the past.
func expiry(now int64, ttl time.Duration) int64 {
	if ttl > 0 && int64(ttl) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// Touch sets the expiry of the live record for token to ttl from now. It
// does nothing for an unknown or expired record.
func (b *Backend) Touch(_ context.Context, token string, ttl time.Duration) error {
	key := sessions.HashToken(token)
	sh := b.shardOf(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := b.now().UnixNano()
	if e, ok := sh.find(&key); ok && e.liveAt(now) {
		e.setExpires(expiry(now, ttl))
	}
	return nil
}

// Close stops the background sweep and waits for it to finish. It is safe
// to call more than once; the backend keeps working without its sweep.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() { close(b.stop) })
	<-b.stopped
	return nil
}

func (b *Backend) sweepEvery(interval time.Duration) {
	defer close(b.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.Sweep()
		}
	}
}

// Sweep deletes expired records now and reclaims their space, a shard at a
// time. The background sweep calls it; call it yourself when that is
// turned off. It finds expired records holding a shard's read lock, which
// reads share, and takes the shard's write lock only to delete what it
// found, in batches, so that reads wait for it little.
func (b *Backend) Sweep() {
	var expired [][sha256.Size]byte
	for i := range b.shards {
		sh := &b.shards[i]
		now := b.now().UnixNano()
		expired = expired[:0]
		sh.mu.RLock()
		sh.each(func(e entry) {
			if !e.liveAt(now) {
				expired = append(expired, e.key())
			}
		})
		sh.mu.RUnlock()
		for start := 0; start < len(expired); start += sweepBatch {
			sh.mu.Lock()
			for j := start; j < min(start+sweepBatch, len(expired)); j++ {
				// A writer may have replaced the record since: check again.
				if e, ok := sh.find(&expired[j]); ok && !e.liveAt(now) {
					b.deleteLocked(sh, &expired[j])
				}
			}
			sh.mu.Unlock()
		}
		sh.mu.Lock()
		sh.compactIfSparse()
		sh.mu.Unlock()
	}
	b.retired.sweep(b.now().UnixNano())
}

// sweepBatch bounds how many records the sweep deletes under one hold of a
// shard's lock.
const sweepBatch = 256

// Len returns the number of records held, expired ones not yet swept
// included.
func (b *Backend) Len() int { return int(b.count.Load()) }

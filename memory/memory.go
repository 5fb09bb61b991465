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
package memory

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starsessions/sessions"
)

// DefaultSweepInterval is how often expired records are freed unless
// [WithSweepInterval] says otherwise.
const DefaultSweepInterval = time.Minute

// lockCount is the number of locks that writers to different records
// spread over.
const lockCount = 64

// Backend is an in-memory [sessions.Backend]. It is safe for concurrent
// use.
//
// Reads take no lock: records are immutable once stored and live in a
// sync.Map, so reads scale with cores even when every request asks for the
// same session. Writers to one record are serialized by a lock striped by
// key, which makes the conditional writes atomic.
type Backend struct {
	records sync.Map // [sha256.Size]byte -> *record
	locks   [lockCount]sync.Mutex
	now     func() time.Time // a seam for tests

	// owners indexes records by owner; indexMu guards it, and is taken
	// after a record's lock, never before.
	indexMu sync.Mutex
	owners  map[string]map[[sha256.Size]byte]struct{}

	count       atomic.Int64 // records held, expired ones not yet swept included
	maxSessions int64
	lastReclaim atomic.Int64 // when a full store last swept, Unix nanoseconds

	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// A record is never changed once stored; a write stores a new one. Its
// expiry is Unix nanoseconds rather than a time.Time, whose Location
// pointer the garbage collector would have to follow in every record.
type record struct {
	data    []byte
	expires int64
	version uint64
	owner   string
}

var (
	_ sessions.Backend          = (*Backend)(nil)
	_ sessions.RecordReader     = (*Backend)(nil)
	_ sessions.VersionedBackend = (*Backend)(nil)
	_ sessions.OwnerIndex       = (*Backend)(nil)
	_ sessions.Toucher          = (*Backend)(nil)
)

// ErrFull is returned by a write that would store a new session in a
// backend that holds [WithMaxSessions] live sessions already. The manager
// passes it to its error handler; sessions already stored keep working.
var ErrFull = errors.New("memory: the session store is full")

// An Option configures a [Backend].
type Option func(*config)

type config struct {
	sweepInterval time.Duration
	maxSessions   int
}

// WithMaxSessions bounds the number of sessions the backend holds to n, so
// that anonymous traffic cannot grow the process's memory without limit.
// Once n live sessions are stored, a write that would store another one
// fails with [ErrFull] (expired records are swept first, at most once a
// second), while the sessions already stored go on working: a flood of new
// visitors cannot sign anyone out, but can keep new sessions from being
// made until the flood's own sessions expire, so pair the bound with short
// lifetimes or idle timeouts for anonymous sessions, and rate limits. The
// default, 0, sets no bound.
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
		maxSessions: int64(max(c.maxSessions, 0)), owners: map[string]map[[sha256.Size]byte]struct{}{}}
	if c.sweepInterval > 0 {
		go b.sweepEvery(c.sweepInterval)
	} else {
		close(b.stopped)
	}
	return b
}

// lock returns the lock that writers to key hold.
func (b *Backend) lock(key [sha256.Size]byte) *sync.Mutex {
	return &b.locks[key[0]%lockCount]
}

// live returns the record under key if it has not expired.
func (b *Backend) live(key [sha256.Size]byte, now time.Time) (*record, bool) {
	v, ok := b.records.Load(key)
	if !ok {
		return nil, false
	}
	rec := v.(*record)
	return rec, now.UnixNano() < rec.expires
}

// Read returns the live record for token. A token that is not shaped like
// a session ID is not looked up.
func (b *Backend) Read(ctx context.Context, token string) ([]byte, bool, error) {
	rec, found, err := b.ReadRecord(ctx, token)
	return rec.Data, found, err
}

// ReadRecord is Read that also returns the record's version.
func (b *Backend) ReadRecord(_ context.Context, token string) (sessions.Record, bool, error) {
	if !sessions.ValidID(token) {
		return sessions.Record{}, false, nil
	}
	rec, ok := b.live(sessions.HashToken(token), b.now())
	if !ok {
		return sessions.Record{}, false, nil
	}
	// Records are replaced, never changed in place, so the slice can be
	// shared with the caller.
	return sessions.Record{Data: rec.data, Version: rec.version, ExpiresAt: time.Unix(0, rec.expires)}, true, nil
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
	key := sessions.HashToken(w.ID)
	data := append([]byte(nil), w.Data...)
	mu := b.lock(key)
	for reclaimed := false; ; reclaimed = true {
		mu.Lock()
		full, err := b.writeLocked(key, data, w, conditional)
		mu.Unlock()
		if !full {
			return w.ID, err
		}
		// Expired records count until swept: sweep now, without holding a
		// record's lock, but at most once a second, so that a full store
		// cannot be made to sweep on every request.
		now := b.now().UnixNano()
		last := b.lastReclaim.Load()
		if reclaimed || now-last < int64(time.Second) || !b.lastReclaim.CompareAndSwap(last, now) {
			return "", ErrFull
		}
		b.sweep()
	}
}

// writeLocked stores a record under key, whose lock the caller holds, and
// reports whether it could not because the backend is full.
func (b *Backend) writeLocked(key [sha256.Size]byte, data []byte, w sessions.VersionedWrite, conditional bool) (full bool, err error) {
	now := b.now()
	v, held := b.records.Load(key)
	var old *record
	if held {
		old = v.(*record)
	}
	var current uint64
	owner := w.Owner
	if old != nil && now.UnixNano() < old.expires {
		current = old.version
		if !conditional {
			owner = old.owner
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
	b.records.Store(key, &record{data: data, expires: now.Add(w.TTL).UnixNano(), version: current + 1, owner: owner})
	if old != nil && old.owner != owner {
		b.unindex(old.owner, key)
	}
	if owner != "" && (old == nil || old.owner != owner) {
		b.index(owner, key)
	}
	return false, nil
}

func (b *Backend) index(owner string, key [sha256.Size]byte) {
	b.indexMu.Lock()
	defer b.indexMu.Unlock()
	set := b.owners[owner]
	if set == nil {
		set = map[[sha256.Size]byte]struct{}{}
		b.owners[owner] = set
	}
	set[key] = struct{}{}
}

func (b *Backend) unindex(owner string, key [sha256.Size]byte) {
	if owner == "" {
		return
	}
	b.indexMu.Lock()
	defer b.indexMu.Unlock()
	if set := b.owners[owner]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(b.owners, owner)
		}
	}
}

// deleteLocked deletes the record under key, which the caller holds the
// lock of.
func (b *Backend) deleteLocked(key [sha256.Size]byte) {
	if v, ok := b.records.LoadAndDelete(key); ok {
		b.count.Add(-1)
		b.unindex(v.(*record).owner, key)
	}
}

// liveVersion returns the version of the live record under key, or 0.
func (b *Backend) liveVersion(key [sha256.Size]byte, now time.Time) uint64 {
	if rec, ok := b.live(key, now); ok {
		return rec.version
	}
	return 0
}

// RemoveIfVersion removes the record for token if its version is the given
// one, and fails with [sessions.ErrConflict] otherwise.
func (b *Backend) RemoveIfVersion(_ context.Context, token string, version uint64) error {
	key := sessions.HashToken(token)
	mu := b.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if b.liveVersion(key, b.now()) != version {
		return sessions.ErrConflict
	}
	b.deleteLocked(key)
	return nil
}

// Remove deletes the record for token, if there is one.
func (b *Backend) Remove(_ context.Context, token string) error {
	key := sessions.HashToken(token)
	mu := b.lock(key)
	mu.Lock()
	b.deleteLocked(key)
	mu.Unlock()
	return nil
}

// Owned returns the live records whose owner is owner.
func (b *Backend) Owned(_ context.Context, owner string) ([]sessions.OwnedRecord, error) {
	b.indexMu.Lock()
	keys := make([][sha256.Size]byte, 0, len(b.owners[owner]))
	for key := range b.owners[owner] {
		keys = append(keys, key)
	}
	b.indexMu.Unlock()
	now := b.now()
	out := make([]sessions.OwnedRecord, 0, len(keys))
	for _, key := range keys {
		if rec, ok := b.live(key, now); ok && rec.owner == owner {
			out = append(out, sessions.OwnedRecord{Key: key, Record: sessions.Record{
				Data: rec.data, Version: rec.version, ExpiresAt: time.Unix(0, rec.expires)}})
		}
	}
	return out, nil
}

// RemoveOwned removes the live record under key if its owner is owner.
func (b *Backend) RemoveOwned(_ context.Context, owner string, key [sha256.Size]byte) (bool, error) {
	mu := b.lock(key)
	mu.Lock()
	defer mu.Unlock()
	rec, ok := b.live(key, b.now())
	if !ok || rec.owner != owner {
		return false, nil
	}
	b.deleteLocked(key)
	return true, nil
}

// Touch sets the expiry of the live record for token to ttl from now. It
// does nothing for an unknown or expired record.
func (b *Backend) Touch(_ context.Context, token string, ttl time.Duration) error {
	key := sessions.HashToken(token)
	mu := b.lock(key)
	mu.Lock()
	defer mu.Unlock()
	now := b.now()
	if rec, ok := b.live(key, now); ok {
		touched := *rec
		touched.expires = now.Add(ttl).UnixNano()
		b.records.Store(key, &touched)
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
			b.sweep()
		}
	}
}

// sweep deletes expired records. Reads go on meanwhile; each delete takes
// the record's lock, and leaves alone a record that a writer replaced
// since the sweep saw it.
func (b *Backend) sweep() {
	now := b.now().UnixNano()
	b.records.Range(func(k, v any) bool {
		if now < v.(*record).expires {
			return true
		}
		key := k.([sha256.Size]byte)
		mu := b.lock(key)
		mu.Lock()
		if cur, ok := b.records.Load(key); ok && cur == v {
			b.deleteLocked(key)
		}
		mu.Unlock()
		return true
	})
}

// Len returns the number of records held, expired ones not yet swept
// included.
func (b *Backend) Len() int { return int(b.count.Load()) }

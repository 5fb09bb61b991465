// Package syncmapstore is the memory backend as it was before its records
// moved into pointer-free arenas (commit 8fe3218): a sync.Map of records,
// each a pointer-laden object the garbage collector must scan. The
// benchmarks keep it to measure the new design against, in the same run.
package syncmapstore

import (
	"context"
	"crypto/sha256"
	"sync"
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
}

var (
	_ sessions.Backend          = (*Backend)(nil)
	_ sessions.VersionedBackend = (*Backend)(nil)
	_ sessions.Toucher          = (*Backend)(nil)
)

// ReadRecord is ReadVersioned in the shape this package's interfaces have
// now.
func (b *Backend) ReadRecord(ctx context.Context, token string) (sessions.Record, bool, error) {
	data, v, found, err := b.ReadVersioned(ctx, token)
	return sessions.Record{Data: data, Version: v}, found, err
}

// An Option configures a [Backend].
type Option func(*config)

type config struct {
	sweepInterval time.Duration
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
	b := &Backend{now: time.Now, stop: make(chan struct{}), stopped: make(chan struct{})}
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
	data, _, found, err := b.ReadVersioned(ctx, token)
	return data, found, err
}

// ReadVersioned is Read that also returns the record's version.
func (b *Backend) ReadVersioned(_ context.Context, token string) ([]byte, uint64, bool, error) {
	if !sessions.ValidID(token) {
		return nil, 0, false, nil
	}
	rec, ok := b.live(sessions.HashToken(token), b.now())
	if !ok {
		return nil, 0, false, nil
	}
	// Records are replaced, never changed in place, so the slice can be
	// shared with the caller.
	return rec.data, rec.version, true, nil
}

// Write stores a copy of data under id, to expire after ttl, and returns id
// as the token.
func (b *Backend) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	return b.write(id, data, ttl, 0, false)
}

// WriteIfVersion is Write that succeeds only if the live record for id has
// the given version (0: there is none), and fails with
// [sessions.ErrConflict] otherwise.
func (b *Backend) WriteIfVersion(_ context.Context, w sessions.VersionedWrite) (string, error) {
	return b.write(w.ID, w.Data, w.TTL, w.Version, true)
}

func (b *Backend) write(id string, data []byte, ttl time.Duration, version uint64, conditional bool) (string, error) {
	key := sessions.HashToken(id)
	data = append([]byte(nil), data...)
	mu := b.lock(key)
	mu.Lock()
	defer mu.Unlock()
	now := b.now()
	current := b.liveVersion(key, now)
	if conditional && current != version {
		return "", sessions.ErrConflict
	}
	b.records.Store(key, &record{data: data, expires: now.Add(ttl).UnixNano(), version: current + 1})
	return id, nil
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
	b.records.Delete(key)
	return nil
}

// Remove deletes the record for token, if there is one.
func (b *Backend) Remove(_ context.Context, token string) error {
	key := sessions.HashToken(token)
	mu := b.lock(key)
	mu.Lock()
	b.records.Delete(key)
	mu.Unlock()
	return nil
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

// sweep deletes expired records. It takes no lock: a record that a
// writer replaces meanwhile is left alone, because the delete is
// conditional on the record being the expired one.
func (b *Backend) sweep() {
	now := b.now()
	b.records.Range(func(key, v any) bool {
		if now.UnixNano() >= v.(*record).expires {
			b.records.CompareAndDelete(key, v)
		}
		return true
	})
}

// Len returns the number of records held, expired ones not yet swept
// included.
func (b *Backend) Len() int {
	n := 0
	b.records.Range(func(any, any) bool {
		n++
		return true
	})
	return n
}

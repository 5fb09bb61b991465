package memory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"

	"github.com/starsessions/sessions"
)

// The entries that retired tokens leave (sessions.Renewer) are few beside
// the records, short-lived, and read only when a retired token comes back,
// so they live in one plain map of their own rather than the arenas.

var _ sessions.Renewer = (*Backend)(nil)

// retiredEntries holds what RetireIfVersion keeps, by the retired token's
// key. Its lock is taken after a shard's, never before.
type retiredEntries struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]retiredEntry
}

type retiredEntry struct {
	tombstone, forward  []byte
	successor           [sha256.Size]byte
	forwardUntil, until int64 // Unix nanoseconds
}

func (r *retiredEntries) put(key [sha256.Size]byte, e retiredEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[[sha256.Size]byte]retiredEntry{}
	}
	r.m[key] = e
}

func (r *retiredEntries) remove(key [sha256.Size]byte) {
	r.mu.Lock()
	delete(r.m, key)
	r.mu.Unlock()
}

// sweep drops the entries that have expired at now.
func (r *retiredEntries) sweep(now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.m {
		if now >= e.until {
			delete(r.m, k)
		}
	}
}

// RetireIfVersion removes the record for token if its version is the given
// one, as RemoveIfVersion does, and keeps r under the token's key: the
// forwarding bytes for r.ForwardTTL, the tombstone for r.TTL.
func (b *Backend) RetireIfVersion(_ context.Context, token string, version uint64, r sessions.Retirement) error {
	key := sessions.HashToken(token)
	sh := b.shardOf(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := b.now().UnixNano()
	e, ok := sh.find(&key)
	if !ok || !e.liveAt(now) || e.version() != version {
		return sessions.ErrConflict
	}
	b.deleteLocked(sh, &key)
	b.retired.put(key, retiredEntry{
		tombstone: bytes.Clone(r.Tombstone), forward: bytes.Clone(r.Forward), successor: r.Successor,
		forwardUntil: expiry(now, r.ForwardTTL), until: expiry(now, max(r.TTL, r.ForwardTTL)),
	})
	return nil
}

// Retired returns the entry a retired token's key holds, and while its
// forwarding lasts, the successor's live record.
func (b *Backend) Retired(_ context.Context, key [sha256.Size]byte) (sessions.RetiredEntry, bool, error) {
	now := b.now().UnixNano()
	b.retired.mu.Lock()
	e, ok := b.retired.m[key]
	b.retired.mu.Unlock()
	if !ok || now >= e.until {
		return sessions.RetiredEntry{}, false, nil
	}
	out := sessions.RetiredEntry{Tombstone: bytes.Clone(e.tombstone), Successor: e.successor}
	if now < e.forwardUntil {
		out.Forward = bytes.Clone(e.forward)
		// The entry's lock is released first: a shard's lock comes
		// before it, never after.
		out.Record, _ = b.readKey(&e.successor)
	}
	return out, true, nil
}

// RemoveKey removes the record and the retired token's entry under key.
func (b *Backend) RemoveKey(_ context.Context, key [sha256.Size]byte) error {
	sh := b.shardOf(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b.deleteLocked(sh, &key)
	b.retired.remove(key)
	return nil
}

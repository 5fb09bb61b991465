package sessions

import (
	"context"
	"sync"
)

// keyLocks orders the saves of one process's requests on one session: a
// lock per token, made when a save first asks for it and dropped when the
// last holder or waiter lets go, so that a busy session never delays
// another. The map's own mutex is held only to find or drop an entry, never
// across a backend call or a pause.
//
// The lock orders saves, not the span from load to save: two requests
// that loaded the same version still conflict, and the second one's save
// reloads and replays. What the order buys is that the reload sees the
// first save, so that a save conflicts at most once with each request of
// its own process.
type keyLocks struct {
	mu   sync.Mutex
	held map[string]*keyLock
}

// A keyLock is held by whoever has put a token into ch.
type keyLock struct {
	key  string
	refs int // holders and waiters
	ch   chan struct{}
}

var keyLockPool = sync.Pool{New: func() any { return &keyLock{ch: make(chan struct{}, 1)} }}

// lock waits for the lock of key, or for ctx to end.
func (k *keyLocks) lock(ctx context.Context, key string) (*keyLock, error) {
	k.mu.Lock()
	l := k.held[key]
	if l == nil {
		if k.held == nil {
			k.held = make(map[string]*keyLock)
		}
		l = keyLockPool.Get().(*keyLock)
		l.key = key
		k.held[key] = l
	}
	l.refs++
	k.mu.Unlock()
	select { // the usual case, and cheaper than a select with two cases
	case l.ch <- struct{}{}:
		return l, nil
	default:
	}
	select {
	case l.ch <- struct{}{}:
		return l, nil
	case <-ctx.Done():
		k.drop(l)
		return nil, ctx.Err()
	}
}

// unlock lets go of l, which lock returned.
func (k *keyLocks) unlock(l *keyLock) {
	<-l.ch
	k.drop(l)
}

// drop forgets one holder or waiter of l, and l itself after the last.
func (k *keyLocks) drop(l *keyLock) {
	k.mu.Lock()
	l.refs--
	last := l.refs == 0
	if last {
		delete(k.held, l.key)
	}
	k.mu.Unlock()
	if last {
		// Nobody can reach l any more, and its channel is empty.
		l.key = ""
		keyLockPool.Put(l)
	}
}

// len returns how many keys have a lock, held or awaited; tests check
// that none is left behind.
func (k *keyLocks) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.held)
}

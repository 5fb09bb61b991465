package memory

import (
	"context"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/sessionstest"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestBackend returns a backend on a fake clock, closed when the test
// ends.
func newTestBackend(t *testing.T, opts ...Option) (*Backend, *fakeClock) {
	clock := newFakeClock()
	b := New(opts...)
	b.now = clock.Now
	t.Cleanup(func() { b.Close() })
	return b, clock
}

func (b *Backend) storedKeys() []string {
	var keys []string
	b.records.Range(func(k, _ any) bool {
		key := k.([32]byte)
		keys = append(keys, string(key[:]), hex.EncodeToString(key[:]))
		return true
	})
	return keys
}

func TestConformance(t *testing.T) {
	sessionstest.Run(t, sessionstest.Config{
		New: func(t *testing.T) sessionstest.Subject {
			b, clock := newTestBackend(t)
			return sessionstest.Subject{Backend: b, Advance: clock.Advance, StoredKeys: b.storedKeys}
		},
	})
}

func TestKeysAreTokenHashes(t *testing.T) {
	b, _ := newTestBackend(t)
	id := sessions.NewID()
	if _, err := b.Write(context.Background(), id, []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.records.Load(sessions.HashToken(id)); !ok {
		t.Errorf("no record under SHA-256(token)")
	}
}

func TestReadRefusesMalformedTokens(t *testing.T) {
	b, _ := newTestBackend(t)
	// A record stored under a non-ID key must still not be found through a
	// token that is not shaped like an ID.
	if _, err := b.Write(context.Background(), "short", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := b.Read(context.Background(), "short"); found {
		t.Errorf("Read looked up a token that is not a session ID")
	}
}

func TestSweepFreesExpiredRecords(t *testing.T) {
	b, clock := newTestBackend(t, WithSweepInterval(0))
	ctx := context.Background()
	live, _ := b.Write(ctx, sessions.NewID(), []byte("live"), time.Hour)
	b.Write(ctx, sessions.NewID(), []byte("dead"), time.Second)
	clock.Advance(2 * time.Second)
	if got := b.Len(); got != 2 {
		t.Fatalf("before the sweep Len = %d, want 2", got)
	}
	b.sweep()
	if got := b.Len(); got != 1 {
		t.Errorf("after the sweep Len = %d, want 1", got)
	}
	if _, found, _ := b.Read(ctx, live); !found {
		t.Errorf("the sweep removed a live record")
	}
}

func TestCloseStopsSweep(t *testing.T) {
	b := New(WithSweepInterval(time.Millisecond))
	done := make(chan struct{})
	go func() {
		b.Close()
		b.Close() // a second Close must not block or panic
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-b.stopped:
	default:
		t.Error("the sweep goroutine is still running after Close")
	}
}

func TestWriteCopiesData(t *testing.T) {
	b, _ := newTestBackend(t)
	data := []byte("abc")
	token, _ := b.Write(context.Background(), sessions.NewID(), data, time.Hour)
	data[0] = 'X'
	got, _, _ := b.Read(context.Background(), token)
	if string(got) != "abc" {
		t.Errorf("Read = %q after the caller changed its slice; want %q", got, "abc")
	}
}

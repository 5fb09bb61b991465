package memory

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
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

// It starts at the real time, as managers beside the backend read it.
func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

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
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.RLock()
		sh.each(func(e entry) {
			key := e.key()
			keys = append(keys, string(key[:]), hex.EncodeToString(key[:]))
		})
		sh.mu.RUnlock()
	}
	return keys
}

func TestConformance(t *testing.T) {
	sessionstest.Run(t, sessionstest.Config{
		New: func(t *testing.T) sessionstest.Subject {
			b, clock := newTestBackend(t)
			return sessionstest.Subject{Backend: b, Advance: clock.Advance, Now: clock.Now, StoredKeys: b.storedKeys}
		},
	})
}

func TestKeysAreTokenHashes(t *testing.T) {
	b, _ := newTestBackend(t)
	id := sessions.NewID()
	if _, err := b.Write(context.Background(), id, []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	key := sessions.HashToken(id)
	if _, ok := b.shardOf(&key).find(&key); !ok {
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
	b.Sweep()
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

func TestMaxSessions(t *testing.T) {
	b, clock := newTestBackend(t, WithMaxSessions(3), WithSweepInterval(0))
	ctx := context.Background()
	ids := []string{sessions.NewID(), sessions.NewID(), sessions.NewID(), sessions.NewID()}
	for _, id := range ids[:3] {
		if _, err := b.Write(ctx, id, []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Write(ctx, ids[3], []byte("x"), time.Minute); !errors.Is(err, ErrFull) {
		t.Fatalf("a fourth session: err = %v, want ErrFull", err)
	}
	_, err := b.WriteIfVersion(ctx, sessions.VersionedWrite{ID: ids[3], Data: []byte("x"), TTL: time.Minute})
	if !errors.Is(err, ErrFull) {
		t.Fatalf("a fourth session, conditionally: err = %v, want ErrFull", err)
	}
	// Sessions already stored keep working.
	if _, err := b.Write(ctx, ids[0], []byte("y"), time.Minute); err != nil {
		t.Errorf("rewriting a stored session in a full store: %v", err)
	}
	if err := b.Remove(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write(ctx, ids[3], []byte("x"), time.Minute); err != nil {
		t.Errorf("after a removal: %v", err)
	}
	// Expired records make room, swept when the store is full.
	clock.Advance(2 * time.Minute)
	for _, id := range ids[:2] {
		if _, err := b.Write(ctx, id, []byte("z"), time.Minute); err != nil {
			t.Errorf("after the others expired: %v", err)
		}
	}
	if got := b.Len(); got != 2 {
		t.Errorf("Len = %d after the sweep, want 2", got)
	}
}

// TestMaxSessionsThroughManager fills a bounded store with anonymous
// visitors: the next one reaches the error handler, and a signed-in user
// keeps their session.
func TestMaxSessionsThroughManager(t *testing.T) {
	b, _ := newTestBackend(t, WithMaxSessions(2))
	var handled error
	m := sessions.New[struct{ N int }](b, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		handled = err
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.Update(func(v *struct{ N int }) { v.N++ })
	}))
	visit := func(c *http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/", nil)
		if c != nil {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	user := visit(nil).Result().Cookies()[0]
	visit(nil)
	if rec := visit(nil); rec.Code != http.StatusServiceUnavailable || !errors.Is(handled, ErrFull) {
		t.Errorf("a third visitor: status %d, error %v; want the error handler with ErrFull", rec.Code, handled)
	}
	if rec := visit(user); rec.Code != http.StatusOK {
		t.Errorf("the first visitor in a full store: status %d", rec.Code)
	}
}

// TestForeverDoesNotWrap writes and touches records with the longest TTL
// there is, as a "never expires" lifetime asks for: the expiry saturates
// instead of wrapping into the past, where the record would be dead as
// soon as written.
func TestForeverDoesNotWrap(t *testing.T) {
	ctx := context.Background()
	b, _ := newTestBackend(t)
	id := sessions.NewID()
	if _, err := b.Write(ctx, id, []byte("x"), math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := b.Read(ctx, id); !found {
		t.Error("a record written to last forever is gone at once")
	}
	if err := b.Touch(ctx, id, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if rec, found, _ := b.ReadRecord(ctx, id); !found || rec.ExpiresAt.Before(time.Now().AddDate(200, 0, 0)) {
		t.Errorf("after a touch for ever: found %t, expires %v", found, rec.ExpiresAt)
	}

	m := sessions.New[struct{ N int }](b, sessions.WithLifetime(math.MaxInt64))
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.Update(func(v *struct{ N int }) { v.N++ })
		fmt.Fprint(w, s.Value().N)
	}))
	var c *http.Cookie
	var got string
	for range 3 {
		req := httptest.NewRequest("GET", "https://example.com/", nil)
		if c != nil {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got = rec.Body.String()
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			c = cs[0]
		}
	}
	if got != "3" {
		t.Errorf("the third visit with a lifetime of for ever counts %s, want 3", got)
	}
}

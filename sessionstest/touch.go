package sessionstest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/starsessions/sessions"
)

// touchCounter wraps a backend that is a Toucher and a RecordReader, and
// counts its touches and writes.
type touchCounter struct {
	sessions.Backend
	reader  sessions.RecordReader
	toucher sessions.Toucher
	touches atomic.Int64
	writes  atomic.Int64
}

func (c *touchCounter) ReadRecord(ctx context.Context, token string) (sessions.Record, bool, error) {
	return c.reader.ReadRecord(ctx, token)
}

func (c *touchCounter) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	c.writes.Add(1)
	return c.Backend.Write(ctx, id, data, ttl)
}

func (c *touchCounter) Touch(ctx context.Context, token string, ttl time.Duration) error {
	c.touches.Add(1)
	return c.toucher.Touch(ctx, token, ttl)
}

// versionedTouchCounter is a touchCounter for a VersionedBackend.
type versionedTouchCounter struct {
	*touchCounter
	versioned sessions.VersionedBackend
}

func (c versionedTouchCounter) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	c.writes.Add(1)
	return c.versioned.WriteIfVersion(ctx, w)
}

func (c versionedTouchCounter) RemoveIfVersion(ctx context.Context, token string, version uint64) error {
	return c.versioned.RemoveIfVersion(ctx, token, version)
}

// testManagerIdleTouchesRarely checks the idle timeout's touch rule: a
// request that only reads extends the record only once its expiry has
// fallen the timeout's slack (a hundredth of it, at least a second)
// behind, so that a session in use is touched at most once per slack.
func testManagerIdleTouchesRarely(t *testing.T, s env) {
	tb, ok := s.Backend.(sessions.Toucher)
	if !ok {
		t.Skip("the backend is not a sessions.Toucher")
	}
	rr, ok := s.Backend.(sessions.RecordReader)
	if !ok {
		t.Skip("the backend is not a sessions.RecordReader: without the expiry it reports, every read touches")
	}
	c := &touchCounter{Backend: s.Backend, reader: rr, toucher: tb}
	var b sessions.Backend = c
	if vb, ok := s.Backend.(sessions.VersionedBackend); ok {
		b = versionedTouchCounter{c, vb}
	}
	// 200 s: a slack of 2 s, twice the second to which times are kept.
	m := s.newManager(b, sessions.WithIdleTimeout(200*time.Second))
	cl := newClient(t, app(m))
	cl.get("/inc")
	token := cl.cookie.Value
	if rec, found, err := rr.ReadRecord(context.Background(), token); err != nil || !found || rec.ExpiresAt.IsZero() {
		t.Skipf("the backend does not report Record.ExpiresAt (found %t, %v): every read touches", found, err)
	}
	writes := c.writes.Load()
	s.advance(500 * time.Millisecond) // idle/400
	for range 3 {
		cl.get("/read")
	}
	if n := c.touches.Load(); n != 0 {
		t.Errorf("reads at a four-hundredth of the idle timeout touched the record %d times, want 0", n)
	}
	s.advance(2100 * time.Millisecond) // past idle/100
	for range 3 {
		cl.get("/read")
	}
	if n := c.touches.Load(); n != 1 {
		t.Errorf("reads past a hundredth of the idle timeout touched the record %d times, want once", n)
	}
	if n := c.writes.Load() - writes; n != 0 {
		t.Errorf("read-only requests wrote %d times", n)
	}
	if got := cl.get("/read"); got != "/1/" || cl.cookie.Value != token {
		t.Errorf("the session after the reads: %q, token kept %t", got, cl.cookie.Value == token)
	}
}

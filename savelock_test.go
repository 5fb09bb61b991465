package sessions_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// gatedBackend is a memory backend whose conditional writes wait at a
// gate: each announces itself on entered, then waits for release.
type gatedBackend struct {
	*memory.Backend
	entered chan struct{}
	release chan struct{}
}

func (b *gatedBackend) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	if ctx.Value(gateKey{}) != nil {
		b.entered <- struct{}{}
		<-b.release
	}
	return b.Backend.WriteIfVersion(ctx, w)
}

type gateKey struct{}

// failAfter fails the test if ch yields nothing before the deadline: the
// event the test waits for is being held up.
func failAfter(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("gave up waiting: %s", what)
	}
}

// TestSaveLockIsPerSession holds the saves of 65 sessions inside the
// backend at once. Saves are ordered per session: with locks shared by
// stripes (there used to be 64), two of them would share one, and one save
// would wait for an unrelated session's.
func TestSaveLockIsPerSession(t *testing.T) {
	const n = 65
	store := memory.New()
	defer store.Close()
	b := &gatedBackend{Backend: store, entered: make(chan struct{}), release: make(chan struct{})}
	m := sessions.New[profile](b)
	h := app(m, func(s *sessions.Session[profile]) { s.Update(func(p *profile) { p.Visits++ }) })
	cookies := make([]*http.Cookie, n)
	for i := range cookies {
		res := (&browser{t: t, h: h}).do("GET", "/")
		cookies[i] = res.Cookies()[0]
	}
	var wg sync.WaitGroup
	for _, c := range cookies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("GET", "/", nil).WithContext(context.WithValue(context.Background(), gateKey{}, true))
			req.AddCookie(c)
			h.ServeHTTP(httptest.NewRecorder(), req)
		}()
	}
	for i := range n {
		failAfter(t, b.entered, strconv.Itoa(i+1)+" of "+strconv.Itoa(n)+" unrelated saves in the backend at once")
	}
	close(b.release)
	wg.Wait()
	if held := sessions.SaveLocksHeld(m); held != 0 {
		t.Errorf("%d save locks left behind", held)
	}
}

// conflictingBackend is a memory backend on which requests that carry
// gateKey meet a conflict on their first two conditional writes, as if
// another process saved first.
type conflictingBackend struct {
	*memory.Backend
	conflicts atomic.Int32
}

func (b *conflictingBackend) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	if ctx.Value(gateKey{}) != nil && b.conflicts.Add(1) <= 2 {
		return "", sessions.ErrConflict
	}
	return b.Backend.WriteIfVersion(ctx, w)
}

// TestBackoffDoesNotHoldTheSaveLock pauses a save in its backoff, after
// its second conflict, and saves the same session from another request
// meanwhile: that save must not wait for the pause to end.
func TestBackoffDoesNotHoldTheSaveLock(t *testing.T) {
	store := memory.New()
	defer store.Close()
	b := &conflictingBackend{Backend: store}
	m := sessions.New[profile](b)
	sleeping, wake := make(chan struct{}), make(chan struct{})
	sessions.SetSleep(m, func(ctx context.Context, d time.Duration) error {
		sleeping <- struct{}{}
		<-wake
		return nil
	})
	h := app(m, func(s *sessions.Session[profile]) { s.Update(func(p *profile) { p.Visits++ }) })
	br := &browser{t: t, h: h}
	br.do("GET", "/")
	slowDone := make(chan int)
	go func() {
		req := httptest.NewRequest("GET", "/", nil).WithContext(context.WithValue(context.Background(), gateKey{}, true))
		req.AddCookie(br.cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		slowDone <- rec.Code
	}()
	failAfter(t, sleeping, "the first request's backoff")
	fastDone := make(chan struct{})
	go func() {
		defer close(fastDone)
		if res := br.do("GET", "/"); res.StatusCode != http.StatusOK {
			t.Errorf("the second request: status %d", res.StatusCode)
		}
	}()
	failAfter(t, fastDone, "a save of the same session while another one backs off")
	close(wake)
	if code := <-slowDone; code != http.StatusOK {
		t.Fatalf("the request that backed off: status %d", code)
	}
	reader := &browser{t: t, h: app(m, read), cookie: br.cookie}
	if got := body(reader.do("GET", "/")); !hasVisits(got, 3) {
		t.Errorf("after three increments the session reads %q", got)
	}
}

func hasVisits(shown string, n int) bool {
	return strings.Contains(shown, " visits="+strconv.Itoa(n)+" ")
}

// TestSaveLockWaitEndsWithTheContext saves a session whose save lock
// another request holds, with a context that has ended: the wait ends with
// the context's error, which reaches the error handler, and once the other
// save finishes no lock is left behind.
func TestSaveLockWaitEndsWithTheContext(t *testing.T) {
	store := memory.New()
	defer store.Close()
	b := &gatedBackend{Backend: store, entered: make(chan struct{}), release: make(chan struct{})}
	var handled error
	m := sessions.New[profile](b, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		handled = err
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	h := app(m, func(s *sessions.Session[profile]) { s.Update(func(p *profile) { p.Visits++ }) })
	br := &browser{t: t, h: h}
	br.do("GET", "/")
	holderDone := make(chan int)
	go func() {
		req := httptest.NewRequest("GET", "/", nil).WithContext(context.WithValue(context.Background(), gateKey{}, true))
		req.AddCookie(br.cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		holderDone <- rec.Code
	}()
	failAfter(t, b.entered, "the first save, holding the lock, in the backend")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	req.AddCookie(br.cookie)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !errors.Is(handled, context.Canceled) {
		t.Errorf("a save waiting for the lock with an ended context: status %d, error %v", rec.Code, handled)
	}
	close(b.release)
	if code := <-holderDone; code != http.StatusOK {
		t.Fatalf("the save that held the lock: status %d", code)
	}
	if n := sessions.SaveLocksHeld(m); n != 0 {
		t.Errorf("%d save locks left behind", n)
	}
	reader := &browser{t: t, h: app(m, read), cookie: br.cookie}
	if got := body(reader.do("GET", "/")); !hasVisits(got, 2) {
		t.Errorf("after two saved increments the session reads %q", got)
	}
}

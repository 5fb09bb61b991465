package sessions_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
)

// profile is the session type of most tests: scalars, a slice and a map,
// so that changes deep inside the value are exercised.
type profile struct {
	Name   string
	Visits int
	Roles  []string
	Prefs  map[string]string
}

var testSecret = bytes.Repeat([]byte("s"), 32)

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

// fakeBackend is a server-side backend that counts its calls, fails on
// demand and expires records by a fake clock.
type fakeBackend struct {
	mu      sync.Mutex
	clock   *fakeClock
	records map[[32]byte]fakeRecord
	calls   map[string]int
	fail    map[string]error // method name -> error to return
}

type fakeRecord struct {
	data    []byte
	expires time.Time
}

func newFakeBackend(clock *fakeClock) *fakeBackend {
	return &fakeBackend{clock: clock, records: map[[32]byte]fakeRecord{}, calls: map[string]int{}, fail: map[string]error{}}
}

func (b *fakeBackend) enter(method string) error {
	b.calls[method]++
	return b.fail[method]
}

func (b *fakeBackend) Read(_ context.Context, token string) ([]byte, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("Read"); err != nil {
		return nil, false, err
	}
	rec, ok := b.records[sessions.HashToken(token)]
	if !ok || !b.clock.Now().Before(rec.expires) {
		return nil, false, nil
	}
	return rec.data, true, nil
}

func (b *fakeBackend) Write(_ context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("Write"); err != nil {
		return "", err
	}
	b.records[sessions.HashToken(id)] = fakeRecord{bytes.Clone(data), b.clock.Now().Add(ttl)}
	return id, nil
}

func (b *fakeBackend) Remove(_ context.Context, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("Remove"); err != nil {
		return err
	}
	delete(b.records, sessions.HashToken(token))
	return nil
}

func (b *fakeBackend) count(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[method]
}

func (b *fakeBackend) failWith(method string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail[method] = err
}

func (b *fakeBackend) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.records)
}

// fakeToucher is a fakeBackend that can also extend an expiry.
type fakeToucher struct{ *fakeBackend }

func (b fakeToucher) Touch(_ context.Context, token string, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("Touch"); err != nil {
		return err
	}
	key := sessions.HashToken(token)
	if rec, ok := b.records[key]; ok && b.clock.Now().Before(rec.expires) {
		rec.expires = b.clock.Now().Add(ttl)
		b.records[key] = rec
	}
	return nil
}

// newManager returns a manager on the given clock.
func newManager[T any](clock *fakeClock, b sessions.Backend, opts ...sessions.Option) *sessions.Manager[T] {
	m := sessions.New[T](b, opts...)
	sessions.SetNow(m, clock.Now)
	return m
}

// newCookieBackend returns the cookie backend the tests share.
func newCookieBackend() sessions.Backend { return cookie.New(testSecret) }

// browser sends requests with the session cookie it was last given, as a
// browser would.
type browser struct {
	t      testing.TB
	h      http.Handler
	cookie *http.Cookie
}

// do sends a request and returns the recorded response; the cookie jar
// follows the response's Set-Cookie.
func (b *browser) do(method, path string) *http.Response {
	b.t.Helper()
	req := httptest.NewRequest(method, "https://example.com"+path, nil)
	if b.cookie != nil {
		req.AddCookie(&http.Cookie{Name: b.cookie.Name, Value: b.cookie.Value})
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	res := rec.Result()
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			b.cookie = nil
		} else {
			b.cookie = c
		}
	}
	return res
}

func body(res *http.Response) string {
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	return buf.String()
}

// reportingToucher is a fakeToucher that reports each record's expiry, as
// the memory, Redis and PostgreSQL backends do.
type reportingToucher struct{ fakeToucher }

func (b reportingToucher) ReadRecord(_ context.Context, token string) (sessions.Record, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("Read"); err != nil {
		return sessions.Record{}, false, err
	}
	rec, ok := b.records[sessions.HashToken(token)]
	if !ok || !b.clock.Now().Before(rec.expires) {
		return sessions.Record{}, false, nil
	}
	return sessions.Record{Data: rec.data, ExpiresAt: rec.expires}, true, nil
}

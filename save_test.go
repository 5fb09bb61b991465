package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// TestLogoutCookieNotCached checks that the cookie that deletes a session
// carries the same Cache-Control as any other Set-Cookie: a shared cache
// that replayed it would sign other users out.
func TestLogoutCookieNotCached(t *testing.T) {
	for name, b := range backends(newFakeClock()) {
		t.Run(name, func(t *testing.T) {
			br := &browser{t: t, h: routes(sessions.New[profile](b), standardActs)}
			br.do("GET", "/login")
			res := br.do("POST", "/logout")
			if !strings.Contains(res.Header.Get("Set-Cookie"), "Max-Age=0") {
				t.Fatalf("no deletion cookie: %q", res.Header["Set-Cookie"])
			}
			if got := res.Header.Values("Cache-Control"); !cmp.Equal(got, []string{`no-cache="Set-Cookie"`}) {
				t.Errorf("Cache-Control = %q, want no-cache=\"Set-Cookie\"", got)
			}
		})
	}
}

// tokenBackend is a fake backend that returns, for every write, the token
// that token gives, and stores the record under it.
type tokenBackend struct {
	*fakeBackend
	token func(id string) string
}

func (b tokenBackend) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	return b.fakeBackend.Write(ctx, b.token(id), data, ttl)
}

// TestBadTokenFromBackend checks that a token a backend returns is checked
// before it goes into a header: one that is not a cookie value, or too
// large, reaches the error handler and no Set-Cookie goes out.
func TestBadTokenFromBackend(t *testing.T) {
	tests := map[string]func(id string) string{
		"semicolon":  func(id string) string { return id + ";Domain=evil.example" },
		"CR LF":      func(id string) string { return id + "\r\nSet-Cookie: evil=1" },
		"space":      func(id string) string { return id + " x" },
		"non-ASCII":  func(id string) string { return id + "é" },
		"empty":      func(string) string { return "" },
		"too large":  func(id string) string { return id + strings.Repeat("A", sessions.MaxCookieSize) },
		"just fits":  func(id string) string { return strings.Repeat("A", sessions.MaxCookieSize-len("__Host-session=")) },
		"one over":   func(id string) string { return strings.Repeat("A", sessions.MaxCookieSize-len("__Host-session=")+1) },
		"plain ID":   func(id string) string { return id },
		"quote":      func(id string) string { return id + `"` },
		"backslash":  func(id string) string { return id + `\` },
		"comma":      func(id string) string { return id + "," },
		"DEL":        func(id string) string { return id + "\x7f" },
		"NUL":        func(id string) string { return id + "\x00" },
		"tab inside": func(id string) string { return id[:5] + "\t" + id[5:] },
	}
	valid := map[string]bool{"just fits": true, "plain ID": true}
	for name, token := range tests {
		t.Run(name, func(t *testing.T) {
			var handled error
			b := tokenBackend{newFakeBackend(newFakeClock()), token}
			m := sessions.New[profile](b, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				handled = err
				http.Error(w, "sorry", http.StatusInternalServerError)
			}))
			res := (&browser{t: t, h: app(m, visit)}).do("GET", "/")
			if valid[name] {
				if res.StatusCode != http.StatusOK || len(res.Header["Set-Cookie"]) != 1 {
					t.Errorf("status %d, Set-Cookie %q; want 200 and the cookie", res.StatusCode, res.Header["Set-Cookie"])
				}
				return
			}
			if res.StatusCode != http.StatusInternalServerError || handled == nil {
				t.Errorf("status %d, error handler saw %v; want the error handler's 500", res.StatusCode, handled)
			}
			if got := res.Header["Set-Cookie"]; len(got) > 0 {
				t.Errorf("Set-Cookie %q went out", got)
			}
			if name == "too large" || name == "one over" {
				if !errors.Is(handled, sessions.ErrCookieTooLarge) {
					t.Errorf("error %v, want ErrCookieTooLarge", handled)
				}
			}
			if n := b.len(); n != 0 {
				t.Errorf("%d records left behind under a token no client can hold", n)
			}
		})
	}
}

// hugeVersioned is a memory backend whose conditional writes, once huge
// is set, store new records under a token too large for a cookie.
type hugeVersioned struct {
	*memory.Backend
	mu   sync.Mutex
	huge bool
}

func (b *hugeVersioned) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	b.mu.Lock()
	huge := b.huge
	b.mu.Unlock()
	if huge && w.Version == 0 {
		w.ID += strings.Repeat("A", sessions.MaxCookieSize)
	}
	return b.Backend.WriteIfVersion(ctx, w)
}

// TestTooLargeTokenLosesNothing regenerates a stored session on a backend
// that hands out a token too large for a cookie: the request fails, the
// old record is still there for the client's cookie, and the new one is
// not left behind.
func TestTooLargeTokenLosesNothing(t *testing.T) {
	clock := newFakeClock()
	plain := newFakeBackend(clock)
	huge := false
	tb := tokenBackend{plain, func(id string) string {
		if huge {
			return id + strings.Repeat("A", sessions.MaxCookieSize)
		}
		return id
	}}
	store := memory.New()
	defer store.Close()
	hv := &hugeVersioned{Backend: store}
	cases := map[string]struct {
		b       sessions.Backend
		goHuge  func()
		records func() int
	}{
		"last-write-wins": {tb, func() { huge = true }, plain.len},
		"versioned":       {hv, func() { hv.mu.Lock(); hv.huge = true; hv.mu.Unlock() }, store.Len},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var handled error
			m := newManager[profile](clock, c.b, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				handled = err
				http.Error(w, "sorry", http.StatusInternalServerError)
			}))
			br := &browser{t: t, h: routes(m, standardActs)}
			br.do("GET", "/visit")
			before := c.records()
			c.goHuge()
			if res := br.do("POST", "/login"); res.StatusCode != http.StatusInternalServerError || !errors.Is(handled, sessions.ErrCookieTooLarge) {
				t.Fatalf("login: status %d, error %v; want 500 and ErrCookieTooLarge", res.StatusCode, handled)
			}
			if got := c.records(); got != before {
				t.Errorf("%d records after the failed login, %d before", got, before)
			}
			if got := body(br.do("GET", "/read")); !strings.Contains(got, "visits=1 ") {
				t.Errorf("the old cookie reads %q after the failed login", got)
			}
		})
	}
}

// rotatingVersioned is a memory backend that asks for every token to be
// reissued: a backend with both capabilities, versions and rotation.
type rotatingVersioned struct {
	*memory.Backend
	mu     sync.Mutex
	calls  map[string]int
	rotate bool
}

func (b *rotatingVersioned) count(method string) {
	b.mu.Lock()
	b.calls[method]++
	b.mu.Unlock()
}

func (b *rotatingVersioned) ReadRecord(ctx context.Context, token string) (sessions.Record, bool, error) {
	rec, found, err := b.Backend.ReadRecord(ctx, token)
	b.mu.Lock()
	rec.Rotate = b.rotate
	b.mu.Unlock()
	return rec, found, err
}

func (b *rotatingVersioned) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	b.count("Write")
	return b.Backend.Write(ctx, id, data, ttl)
}

func (b *rotatingVersioned) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	b.count("WriteIfVersion")
	return b.Backend.WriteIfVersion(ctx, w)
}

// TestCapabilitiesCombine checks that a backend both versioned and
// rotating gets both: a read-only request on a token to reissue saves, and
// saves through the conditional write.
func TestCapabilitiesCombine(t *testing.T) {
	store := memory.New()
	defer store.Close()
	b := &rotatingVersioned{Backend: store, calls: map[string]int{}}
	m := sessions.New[profile](b)
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/visit")
	b.mu.Lock()
	b.rotate = true
	b.calls = map[string]int{}
	b.mu.Unlock()
	br.do("GET", "/read")
	b.mu.Lock()
	defer b.mu.Unlock()
	if diff := cmp.Diff(map[string]int{"WriteIfVersion": 1}, b.calls); diff != "" {
		t.Errorf("writes for a read-only request on a token to reissue (-want +got):\n%s", diff)
	}
}

// rotatingBackend names each write's record by a new token, the ID and a
// count, while it keeps one record per ID: every token of an ID names it.
type rotatingBackend struct {
	*fakeBackend
	writes *int
}

func (b rotatingBackend) id(token string) string {
	id, _, _ := strings.Cut(token, ".")
	return id
}

func (b rotatingBackend) Read(ctx context.Context, token string) ([]byte, bool, error) {
	return b.fakeBackend.Read(ctx, b.id(token))
}

func (b rotatingBackend) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	id = b.id(id) // the manager writes a loaded session under its token
	if _, err := b.fakeBackend.Write(ctx, id, data, ttl); err != nil {
		return "", err
	}
	*b.writes++
	return id + "." + strconv.Itoa(*b.writes), nil
}

func (b rotatingBackend) Remove(ctx context.Context, token string) error {
	return b.fakeBackend.Remove(ctx, b.id(token))
}

// TestNewTokenAfterHeaderKeepsTheSession saves after the header on a
// backend that gives every write a new token: the token cannot reach the
// client, so Save fails with ErrHeaderWritten as a save of unknown
// outcome, after which the session saves no more and the middleware does
// not warn again; the record the client's token names must survive.
func TestNewTokenAfterHeaderKeepsTheSession(t *testing.T) {
	b := rotatingBackend{newFakeBackend(newFakeClock()), new(int)}
	var logs strings.Builder
	m := sessions.New[profile](b, sessions.WithLogger(newDebugLogger(&logs)))
	var saveErr, again error
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := m.Get(r)
		if r.URL.Path == "/late" {
			io.WriteString(w, "late ")
			s.Update(func(p *profile) { p.Visits += 10 })
			saveErr = s.Save(r.Context())
			s.Update(func(p *profile) { p.Visits += 100 })
			again = s.Save(r.Context())
		} else {
			s.Update(func(p *profile) { p.Visits++ })
		}
		fmt.Fprintf(w, "visits=%d", s.Value().Visits)
	}))
	br := &browser{t: t, h: h}
	br.do("GET", "/")
	br.do("GET", "/late")
	if !errors.Is(saveErr, sessions.ErrHeaderWritten) {
		t.Errorf("Save after the header with a new token: %v, want ErrHeaderWritten", saveErr)
	}
	if again == nil {
		t.Error("a second Save after one of unknown outcome succeeded; it could apply the first's updates twice")
	}
	if strings.Contains(logs.String(), "not saved") {
		t.Errorf("the middleware warned after Save had reported the outcome: %q", logs.String())
	}
	// The late write landed under the ID before the backend named it anew.
	if got := body(br.do("GET", "/")); got != "visits=12" {
		t.Errorf("the client's token after the late save reads %q, want visits=12", got)
	}
}

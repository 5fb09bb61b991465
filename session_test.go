package sessions_test

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// TestSessionMethodsConcurrently drives every Session method and a Write
// from several goroutines of one request at once, many times over. Under
// -race it fails if any of them touches the session's state without the
// Session's lock, or if the save at the first Write races a change.
func TestSessionMethodsConcurrently(t *testing.T) {
	store := memory.New()
	defer store.Close()
	for name, b := range map[string]sessions.Backend{"cookie": newCookieBackend(), "memory": store} {
		t.Run(name, func(t *testing.T) {
			// Changes after the first Write are expected here, and warned of.
			m := sessions.New[profile](b, sessions.WithLogger(newTextLogger(io.Discard)),
				sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}))
			acts := []func(s *sessions.Session[profile], w http.ResponseWriter){
				func(s *sessions.Session[profile], _ http.ResponseWriter) { _ = s.Value().Visits },
				func(s *sessions.Session[profile], _ http.ResponseWriter) { _ = s.Data() },
				func(s *sessions.Session[profile], _ http.ResponseWriter) {
					s.Update(func(p *profile) { p.Visits++; p.Roles = append(p.Roles, "r") })
				},
				func(s *sessions.Session[profile], _ http.ResponseWriter) { s.Destroy() },
				func(s *sessions.Session[profile], _ http.ResponseWriter) { s.Regenerate() },
				func(s *sessions.Session[profile], _ http.ResponseWriter) { s.SetPersistent(true) },
				func(s *sessions.Session[profile], _ http.ResponseWriter) {
					_, _, _, _ = s.Token(), s.Handle(), s.CreatedAt(), s.ExpiresAt()
					_, _, _ = s.Persistent(), s.Owner(), s.IsNew()
				},
				func(s *sessions.Session[profile], _ http.ResponseWriter) { s.SetOwner("ann") },
				func(s *sessions.Session[profile], _ http.ResponseWriter) {
					// Before or after the header, or refused: any outcome
					// but a race.
					_ = s.Save(context.Background())
				},
			}
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := m.Get(r)
				if err != nil {
					t.Error(err)
					return
				}
				start := make(chan struct{})
				var wg sync.WaitGroup
				for _, act := range acts {
					for range 2 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							act(s, w)
						}()
					}
				}
				// The response writer is not for concurrent use: one
				// goroutine writes, and so commits, beside the others.
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					w.Write([]byte("x"))
				}()
				close(start)
				wg.Wait()
			}))
			br := &browser{t: t, h: h}
			for range 200 {
				if res := br.do("GET", "/"); res.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", res.StatusCode, body(res))
				}
			}
		})
	}
}

func TestSessionMetadata(t *testing.T) {
	clock := newFakeClock()
	for name, b := range map[string]sessions.Backend{"cookie": newCookieBackend(), "server-side": newFakeBackend(clock)} {
		t.Run(name, func(t *testing.T) {
			m := newManager[profile](clock, b, sessions.WithLifetime(10*time.Hour), sessions.WithIdleTimeout(time.Hour))
			type seen struct {
				token, handle     string
				created, expires  time.Time
				persistent, isNew bool
			}
			var got seen
			h := routes(m, map[string]func(*sessions.Session[profile]){
				"/visit": func(s *sessions.Session[profile]) { visit(s) },
				"/look": func(s *sessions.Session[profile]) {
					got = seen{token: s.Token(), handle: s.Handle(), created: s.CreatedAt(), expires: s.ExpiresAt(), persistent: s.Persistent(), isNew: s.IsNew()}
				},
			})
			br := &browser{t: t, h: h}
			start := clock.Now()
			br.do("GET", "/look")
			if got.token != "" || got.handle != "" || !got.isNew {
				t.Errorf("a new session: Token %q, Handle %q, IsNew %t; want empty, empty, true", got.token, got.handle, got.isNew)
			}
			br.do("GET", "/visit")
			clock.Advance(2 * time.Hour) // past the idle timeout: the next visit starts afresh
			br.do("GET", "/visit")
			br.do("GET", "/visit")
			clock.Advance(30 * time.Minute)
			sent := br.cookie.Value
			br.do("GET", "/look")
			if got.token != sent {
				t.Errorf("Token() is not the cookie's value")
			}
			if got.handle == "" || strings.Contains(got.token, got.handle) || got.handle == got.token {
				t.Errorf("Handle() = %q; want a non-empty identifier that is not part of the token", got.handle)
			}
			created := start.Add(2 * time.Hour) // the session made after the idle timeout
			if !got.created.Equal(created) {
				t.Errorf("CreatedAt() = %v, want %v", got.created, created)
			}
			if want := clock.Now().Add(time.Hour + 36*time.Second); !got.expires.Equal(want) {
				t.Errorf("ExpiresAt() = %v, want the idle end %v: the idle timeout and its hundredth", got.expires, want)
			}
			if got.persistent {
				t.Errorf("Persistent() = true by default")
			}
			// Close to the absolute end, the lifetime decides. Visits every
			// 45 minutes keep the session from going idle.
			for range 12 {
				clock.Advance(45 * time.Minute)
				br.do("GET", "/look")
			}
			if now := clock.Now(); !now.Equal(created.Add(9*time.Hour + 30*time.Minute)) {
				t.Fatalf("the clock reads %v", now)
			}
			if want := created.Add(10 * time.Hour); !got.expires.Equal(want) {
				t.Errorf("near the end of the lifetime, ExpiresAt() = %v, want %v", got.expires, want)
			}
		})
	}
}

func TestHandleStableAcrossSaves(t *testing.T) {
	store := memory.New()
	defer store.Close()
	m := sessions.New[profile](store)
	var handles []string
	h := routes(m, map[string]func(*sessions.Session[profile]){
		"/visit": func(s *sessions.Session[profile]) { visit(s) },
		"/login": func(s *sessions.Session[profile]) { s.Regenerate() },
		"/look":  func(s *sessions.Session[profile]) { handles = append(handles, s.Handle()) },
	})
	br := &browser{t: t, h: h}
	br.do("GET", "/visit")
	br.do("GET", "/look")
	br.do("GET", "/visit")
	br.do("GET", "/look")
	br.do("GET", "/login")
	br.do("GET", "/look")
	if len(handles) != 3 || handles[0] != handles[1] || handles[1] == handles[2] {
		t.Errorf("handles %q: want the same across saves and a new one after Regenerate", handles)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/look", nil)
	req.AddCookie(br.cookie)
	h.ServeHTTP(rec, req)
	if strings.Contains(handles[2], br.cookie.Value) || strings.Contains(br.cookie.Value, handles[2]) {
		t.Errorf("the handle shows the token")
	}
}

// TestForeverIsACentury asks for a lifetime and an idle timeout of for
// ever: both are taken as 100 years, so that no expiry overflows on its
// way to a store, and the session keeps counting.
func TestForeverIsACentury(t *testing.T) {
	m := sessions.New[profile](memory.New(), sessions.WithLifetime(math.MaxInt64), sessions.WithIdleTimeout(math.MaxInt64))
	var expires time.Time
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.Update(func(p *profile) { p.Visits++ })
		expires = s.ExpiresAt()
		io.WriteString(w, strconv.Itoa(s.Value().Visits))
	}))
	br := &browser{t: t, h: h}
	var got string
	for range 3 {
		got = body(br.do("GET", "/"))
	}
	if got != "3" {
		t.Errorf("the third visit counts %q, want 3", got)
	}
	century := time.Now().Add(100 * 365 * 24 * time.Hour)
	if expires.Before(century.Add(-time.Hour)) || expires.After(century.Add(time.Hour)) {
		t.Errorf("ExpiresAt = %v, want about %v", expires, century)
	}
}

// TestExpiresAtWithIdleTimeout reads a session's ExpiresAt under an idle
// timeout of an hour, whose slack is 36 s: a read within the slack leaves
// the expiry where the last extension put it, a later one extends it.
func TestExpiresAtWithIdleTimeout(t *testing.T) {
	clock := newFakeClock()
	start := clock.Now()
	m := newManager[profile](clock, newFakeBackend(clock), sessions.WithIdleTimeout(time.Hour))
	var expires time.Time
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := m.Get(r)
		if r.URL.Path == "/visit" {
			s.Update(func(p *profile) { p.Visits++ })
		}
		expires = s.ExpiresAt()
	}))
	br := &browser{t: t, h: h}
	window := time.Hour + 36*time.Second
	steps := []struct {
		after time.Duration // since start
		path  string
		want  time.Duration // since start
	}{
		{0, "/visit", window},
		{10 * time.Second, "/read", window},
		{40 * time.Second, "/read", 40*time.Second + window},
		{50 * time.Second, "/read", 40*time.Second + window},
	}
	for _, st := range steps {
		clock.Advance(start.Add(st.after).Sub(clock.Now()))
		br.do("GET", st.path)
		if want := start.Add(st.want).Truncate(time.Second); !expires.Equal(want) {
			t.Errorf("%v in, %s: ExpiresAt %v, want %v", st.after, st.path, expires, want)
		}
	}
}

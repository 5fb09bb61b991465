package sessions_test

import (
	"strings"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// TestIdentityAfterRegenerateAndDestroy checks what Token, Handle and
// IsNew say within the request that regenerates or destroys its session:
// a login handler that logs Handle, or passes it to RevokeAll as keep,
// must get the new session's, and after a logout nothing may name the
// retired record.
func TestIdentityAfterRegenerateAndDestroy(t *testing.T) {
	type seen struct{ before, after, handle, oldHandle string }
	for _, backend := range []string{"memory", "cookie"} {
		t.Run(backend, func(t *testing.T) {
			var b sessions.Backend = newCookieBackend()
			if backend == "memory" {
				mb := memory.New()
				t.Cleanup(func() { mb.Close() })
				b = mb
			}
			clock := newFakeClock()
			m := newManager[profile](clock, b)
			var got seen
			var afterDestroy struct {
				token, handle string
				isNew         bool
			}
			h := routes(m, map[string]func(*sessions.Session[profile]){
				"/visit": visit,
				"/login": func(s *sessions.Session[profile]) {
					got.before, got.oldHandle = s.Token(), s.Handle()
					s.Regenerate()
					got.after, got.handle = s.Token(), s.Handle()
				},
				"/logout": func(s *sessions.Session[profile]) {
					s.Destroy()
					afterDestroy.token, afterDestroy.handle, afterDestroy.isNew = s.Token(), s.Handle(), s.IsNew()
				},
			})
			br := &browser{t: t, h: h}
			br.do("GET", "/visit")
			br.do("GET", "/login")
			if got.before == "" || got.after == got.before || got.handle == got.oldHandle {
				t.Fatalf("Regenerate left Token/Handle naming the retired record: %+v", got)
			}
			switch backend {
			case "memory":
				// A server-side backend's new token exists at once, and is
				// the one the response gives the client.
				if got.after == "" || got.after != br.cookie.Value {
					t.Errorf("Token after Regenerate = %q, the response's cookie %q", got.after, br.cookie.Value)
				}
				if got.handle == "" {
					t.Error("Handle after Regenerate is empty")
				}
			case "cookie":
				// The cookie is the session: there is no new token until
				// the save makes it.
				if got.after != "" || got.handle != "" {
					t.Errorf("cookie backend: Token %q, Handle %q after Regenerate, want both empty until the save", got.after, got.handle)
				}
			}
			br.do("GET", "/logout")
			if afterDestroy.token != "" || afterDestroy.handle != "" || !afterDestroy.isNew {
				t.Errorf("after Destroy: Token %q, Handle %q, IsNew %t; want \"\", \"\", true", afterDestroy.token, afterDestroy.handle, afterDestroy.isNew)
			}
		})
	}
}

// TestRegenerateStartsANewLifetime logs in 23 h 59 min into an anonymous
// session's 24 h lifetime: the login must not end a minute later, for the
// absolute timeout counts from the login.
func TestRegenerateStartsANewLifetime(t *testing.T) {
	for name, b := range backends(newFakeClock()) {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			if fb, ok := b.(*fakeBackend); ok {
				fb.clock = clock
			}
			if ft, ok := b.(fakeToucher); ok {
				ft.clock = clock
			}
			m := newManager[profile](clock, b, sessions.WithLifetime(24*time.Hour))
			var created time.Time
			acts := map[string]func(*sessions.Session[profile]){
				"/login": func(s *sessions.Session[profile]) {
					s.Regenerate()
					s.Data().Name = "ann"
					created = s.CreatedAt()
				},
			}
			for p, a := range standardActs {
				if p != "/login" {
					acts[p] = a
				}
			}
			br := &browser{t: t, h: routes(m, acts)}
			br.do("GET", "/visit")
			clock.Advance(23*time.Hour + 59*time.Minute)
			br.do("GET", "/login")
			if !created.Equal(clock.Now()) {
				t.Errorf("CreatedAt after Regenerate = %v, want the login's time %v", created, clock.Now())
			}
			clock.Advance(2 * time.Minute)
			if got := body(br.do("GET", "/read")); !strings.Contains(got, "name=ann visits=1 ") || strings.HasSuffix(got, "new=true") {
				t.Errorf("two minutes after the login: %q, want still signed in", got)
			}
			clock.Advance(24 * time.Hour)
			if got := body(br.do("GET", "/read")); !strings.HasSuffix(got, "new=true") {
				t.Errorf("a lifetime after the login: %q, want a new session", got)
			}
		})
	}
}

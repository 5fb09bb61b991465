package sessionstest

import (
	"net/http"
	"testing"

	"github.com/starsessions/sessions"
)

// race runs slow and fast on one session: slow loads it, waits while fast
// runs to its end, then acts and saves. It returns slow's status and the
// cookies each response left the client with (nil for a deletion, c when
// none came).
func race(t *testing.T, m *sessions.Manager[suiteSession], c *http.Cookie, slow, fast func(*sessions.Session[suiteSession])) (slowCode int, slowCookie, fastCookie *http.Cookie) {
	loaded, proceed := make(chan struct{}), make(chan struct{})
	h := func(act func(*sessions.Session[suiteSession]), wait bool) http.Handler {
		return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := m.Get(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if wait {
				close(loaded)
				<-proceed
			}
			act(s)
		}))
	}
	type result struct {
		code   int
		cookie *http.Cookie
	}
	done := make(chan result)
	go func() {
		rec, nc := send(h(slow, true), "/slow", c)
		done <- result{rec.Code, nc}
	}()
	<-loaded
	rec, fc := send(h(fast, false), "/fast", c)
	if rec.Code != http.StatusOK {
		t.Fatalf("the fast request: status %d: %s", rec.Code, rec.Body)
	}
	close(proceed)
	r := <-done
	return r.code, r.cookie, fc
}

// testManagerMerge races two requests on one session, each changing it
// through Data: changes to different fields are both kept, changes of one
// field to one value agree, changes of one field to different values fail
// the later save with ErrConflict and keep the first; a merge never brings
// back a session destroyed or regenerated meanwhile, and a login that
// regenerates keeps a change another request made meanwhile.
func testManagerMerge(t *testing.T, s env) {
	versioned(t, s.Backend)
	setCount := func(n int) func(*sessions.Session[suiteSession]) {
		return func(se *sessions.Session[suiteSession]) { se.Data().Count = n }
	}
	setUser := func(u string) func(*sessions.Session[suiteSession]) {
		return func(se *sessions.Session[suiteSession]) { se.Data().User = u }
	}
	addTag := func(se *sessions.Session[suiteSession]) { se.Data().Tags = append(se.Data().Tags, "fast") }
	logout := func(se *sessions.Session[suiteSession]) { se.Destroy() }
	login := func(se *sessions.Session[suiteSession]) { se.Regenerate(); se.Data().User = "ann" }
	tests := []struct {
		name       string
		slow, fast func(*sessions.Session[suiteSession])
		wantSlow   int
		// want is what the session reads afterwards, through the cookie
		// of the response named by via: "slow" or "fast".
		want, via string
		// wantOld is what the cookie from before the race reads, if
		// checked.
		wantOld string
	}{
		{"different fields", setUser("slow"), addTag, http.StatusOK, "slow/1/fast", "slow", ""},
		{"one field, one value", setCount(7), setCount(7), http.StatusOK, "/7/", "slow", ""},
		{"one field, two values", setCount(7), setCount(9), http.StatusConflict, "/9/", "fast", ""},
		{"a merge after a logout", setUser("slow"), logout, http.StatusConflict, "/0/", "fast", "/0/"},
		{"a merge after a login", setUser("slow"), login, http.StatusConflict, "ann/1/", "fast", "/0/"},
		{"a login beside a change", login, addTag, http.StatusOK, "ann/1/fast", "slow", "/0/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := s.newManager(s.Backend, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				http.Error(w, err.Error(), http.StatusConflict)
			}))
			c := newClient(t, app(m))
			c.get("/inc")
			old := c.cookie
			code, slowCookie, fastCookie := race(t, m, old, tt.slow, tt.fast)
			if code != tt.wantSlow {
				t.Errorf("the slow request: status %d, want %d", code, tt.wantSlow)
			}
			reader := newClient(t, app(m))
			reader.cookie = fastCookie
			if tt.via == "slow" {
				reader.cookie = slowCookie
			}
			if got := reader.get("/read"); got != tt.want {
				t.Errorf("the session reads %q, want %q", got, tt.want)
			}
			if tt.wantOld != "" {
				stale := newClient(t, app(m))
				stale.cookie = old
				if got := stale.get("/read"); got != tt.wantOld {
					t.Errorf("the cookie from before the race reads %q, want %q", got, tt.wantOld)
				}
			}
		})
	}
}

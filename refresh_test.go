package sessions_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/starsessions/sessions"
)

// TestRefreshNeverUndoesAWrite overlaps a read-only request that is due an
// idle refresh with a logout, or a change, that another request saves
// first, on a backend without versions: the refresh, which writes back
// what it loaded, must neither bring the logged-out session back nor undo
// the change.
func TestRefreshNeverUndoesAWrite(t *testing.T) {
	for _, other := range []string{"/logout", "/visit"} {
		t.Run(other, func(t *testing.T) {
			clock := newFakeClock()
			fb := newFakeBackend(clock)
			m := newManager[profile](clock, fb, sessions.WithIdleTimeout(100*time.Second))
			loaded, proceed := make(chan struct{}), make(chan struct{})
			acts := map[string]func(*sessions.Session[profile]){
				"/slow-read": func(*sessions.Session[profile]) { close(loaded); <-proceed },
			}
			for path, act := range standardActs {
				acts[path] = act
			}
			h := routes(m, acts)
			br := &browser{t: t, h: h}
			br.do("GET", "/visit")
			clock.Advance(2 * time.Second) // a read-only request is now due a refresh
			cookie := br.cookie

			done := make(chan struct{})
			go func() {
				defer close(done)
				req := httptest.NewRequest("GET", "https://example.com/slow-read", nil)
				req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
				h.ServeHTTP(httptest.NewRecorder(), req)
			}()
			<-loaded
			br.do("GET", other)
			close(proceed)
			<-done

			br.cookie = cookie
			got := body(br.do("GET", "/read"))
			want := map[string]string{"/logout": "visits=0 ", "/visit": "visits=2 "}[other]
			if !strings.Contains(got, want) {
				t.Errorf("after the refresh: %q, want %q: the refresh undid the other request's %s", got, want, other)
			}
			if other == "/logout" && fb.len() != 0 {
				t.Errorf("%d records stored after the logout, want 0", fb.len())
			}
		})
	}
}

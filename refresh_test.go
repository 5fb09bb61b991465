package sessions_test

import (
	"context"
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

// lazyToucher is a Toucher that reports no expiries and keeps its records
// for ever, whatever the TTL: only the manager can enforce the idle
// timeout on it.
type lazyToucher struct{ fakeToucher }

func (b lazyToucher) Write(ctx context.Context, id string, data []byte, _ time.Duration) (string, error) {
	return b.fakeToucher.Write(ctx, id, data, 100*365*24*time.Hour)
}

func (b lazyToucher) Touch(context.Context, string, time.Duration) error { return nil }

// TestIdleTimeoutOnAToucherThatReportsNoExpiry checks that the manager
// enforces the idle timeout itself on a Toucher that does not report its
// records' expiry: it cannot rely on a touch it cannot time.
func TestIdleTimeoutOnAToucherThatReportsNoExpiry(t *testing.T) {
	clock := newFakeClock()
	b := lazyToucher{fakeToucher{newFakeBackend(clock)}}
	m := newManager[profile](clock, b, sessions.WithIdleTimeout(10*time.Minute))
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/visit")
	for range 3 {
		clock.Advance(8 * time.Minute)
		if got := body(br.do("GET", "/read")); !strings.Contains(got, "visits=1 ") {
			t.Fatalf("a session in use expired: %q", got)
		}
	}
	clock.Advance(10*time.Minute + 7*time.Second)
	if got := body(br.do("GET", "/read")); !strings.HasSuffix(got, "new=true") {
		t.Errorf("after 10 idle minutes: %q, want a new session", got)
	}
}

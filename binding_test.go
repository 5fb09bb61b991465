package sessions_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
	"github.com/starsessions/sessions/memory"
)

// TestTokenBoundToCookieName runs two managers on one backend value, and
// so one secret or one store: a "second factor pending" manager and a
// "signed in" one. A token issued by one and copied under the other's
// cookie name must be a fresh session there, while each manager keeps
// reading its own.
func TestTokenBoundToCookieName(t *testing.T) {
	store := memory.New()
	defer store.Close()
	backends := map[string]sessions.Backend{
		"cookie":           cookie.New(testSecret),
		"cookie encrypted": cookie.New(testSecret, cookie.WithEncryption()),
		"memory":           store,
		"fake":             newFakeBackend(newFakeClock()),
	}
	for name, b := range backends {
		t.Run(name, func(t *testing.T) {
			pending := sessions.New[profile](b, sessions.WithCookieName("pending"))
			signedIn := sessions.New[profile](b, sessions.WithCookieName("signed_in"))
			login := func(m *sessions.Manager[profile], user string) *http.Cookie {
				res := (&browser{t: t, h: app(m, func(s *sessions.Session[profile]) { s.Data().Name = user })}).do("GET", "/")
				if len(res.Cookies()) != 1 {
					t.Fatalf("no cookie from the manager")
				}
				return res.Cookies()[0]
			}
			readAs := func(m *sessions.Manager[profile], c *http.Cookie) string {
				req := httptest.NewRequest("GET", "/", nil)
				req.AddCookie(c)
				rec := httptest.NewRecorder()
				app(m, read).ServeHTTP(rec, req)
				return rec.Body.String()
			}
			p := login(pending, "half")
			s := login(signedIn, "full")
			if got := readAs(pending, p); !strings.HasPrefix(got, "name=half ") {
				t.Errorf("the pending manager reads its own cookie as %q", got)
			}
			if got := readAs(signedIn, s); !strings.HasPrefix(got, "name=full ") {
				t.Errorf("the signed-in manager reads its own cookie as %q", got)
			}
			moved := &http.Cookie{Name: "signed_in", Value: p.Value}
			if got := readAs(signedIn, moved); !strings.HasSuffix(got, "new=true") {
				t.Errorf("a pending token under the signed-in name reads %q, want a fresh session", got)
			}
			back := &http.Cookie{Name: "pending", Value: s.Value}
			if got := readAs(pending, back); !strings.HasSuffix(got, "new=true") {
				t.Errorf("a signed-in token under the pending name reads %q, want a fresh session", got)
			}
		})
	}
}

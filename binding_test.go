package sessions_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// TestLegacyRecordsAreFreshSessions plants records in the format that
// pre-release builds wrote, before records named their cookie: each gives
// a fresh session, as a record of another cookie name does, never a 500;
// the same bytes with flags that format never had are corrupt.
func TestLegacyRecordsAreFreshSessions(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	m := sessions.New[profile](store)
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "name=%q new=%t", s.Value().Name, s.IsNew())
	}))
	legacy := func(flags byte) []byte {
		// Format 1: created 60 s after the epoch, accessed then, JSON.
		return append([]byte{1<<4 | flags, 120, 0}, `{"Name":"ann"}`...)
	}
	tests := []struct {
		name       string
		record     []byte
		wantStatus int
		wantBody   string
	}{
		{"legacy record", legacy(0), http.StatusOK, `name="" new=true`},
		{"legacy record, persistent", legacy(1), http.StatusOK, `name="" new=true`},
		{"legacy record with an owner flag", legacy(1 << 3), http.StatusInternalServerError, sessions.ErrCorrupt.Error()},
		{"legacy record with a tag flag", legacy(1 << 2), http.StatusInternalServerError, sessions.ErrCorrupt.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := sessions.NewID()
			if _, err := store.Write(ctx, id, tt.record, time.Hour); err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("GET", "https://example.com/", nil)
			req.AddCookie(&http.Cookie{Name: sessions.DefaultHostCookieName, Value: id})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("status %d, body %q; want %d, %q", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

package sessions_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
	"github.com/starsessions/sessions/memory"
)

// TestHostileInputs sends what an attacker would, on the cookie backend and
// on a server-side one. Every case must end in a 200 with a fresh session
// (the attacker gains nothing) or, for the valid control, the session.
func TestHostileInputs(t *testing.T) {
	type setup struct {
		h      http.Handler
		clock  *fakeClock
		valid  *http.Cookie // a live session: name=ann visits=1
		before *http.Cookie // the same session's cookie before login (regenerate)
		logout *http.Cookie // a session's cookie from before its logout
		stale  func() *http.Cookie
	}
	build := func(t *testing.T, b sessions.Backend) setup {
		clock := newFakeClock()
		m := newManager[profile](clock, b, sessions.WithLifetime(time.Hour))
		h := routes(m, standardActs)
		br := &browser{t: t, h: h}
		br.do("GET", "/visit")
		before := br.cookie
		br.do("POST", "/login")
		valid := br.cookie

		other := &browser{t: t, h: h}
		other.do("POST", "/login")
		logout := other.cookie
		other.do("POST", "/logout")

		return setup{h: h, clock: clock, valid: valid, before: before, logout: logout}
	}
	forge := func(c *http.Cookie) string { // flip one character in the middle
		v := []byte(c.Value)
		i := len(v) / 2
		if v[i] == 'A' {
			v[i] = 'B'
		} else {
			v[i] = 'A'
		}
		return string(v)
	}
	otherSecret := func(t *testing.T) string {
		m := sessions.New[profile](cookie.New([]byte(strings.Repeat("o", 32))))
		return (&browser{t: t, h: app(m, visit)}).do("GET", "/").Cookies()[0].Value
	}
	tests := []struct {
		name       string
		serverOnly bool // a cookie session cannot be revoked, by design
		header     func(t *testing.T, s setup) []string
		advance    time.Duration
		wantValid  bool // the request should see the live session
	}{
		{name: "control: the valid cookie", header: func(t *testing.T, s setup) []string { return []string{"__Host-session=" + s.valid.Value} }, wantValid: true},
		{name: "forged signature or token", header: func(t *testing.T, s setup) []string { return []string{"__Host-session=" + forge(s.valid)} }},
		{name: "cookie from another app's secret", header: func(t *testing.T, s setup) []string { return []string{"__Host-session=" + otherSecret(t)} }},
		{name: "replayed after expiry", header: func(t *testing.T, s setup) []string { return []string{"__Host-session=" + s.valid.Value} }, advance: time.Hour},
		{name: "replayed after logout", serverOnly: true, header: func(t *testing.T, s setup) []string { return []string{"__Host-session=" + s.logout.Value} }},
		{name: "replayed after regenerate", serverOnly: true, header: func(t *testing.T, s setup) []string { return []string{"__Host-session=" + s.before.Value} }},
		{name: "unknown token", header: func(t *testing.T, s setup) []string { return []string{"__Host-session=" + sessions.NewID()} }},
		{name: "oversized", header: func(t *testing.T, s setup) []string { return []string{"__Host-session=" + strings.Repeat("A", 8000)} }},
		{name: "many cookies with the name, forged first", header: func(t *testing.T, s setup) []string {
			var parts []string
			for range 50 {
				parts = append(parts, "__Host-session="+sessions.NewID())
			}
			return []string{strings.Join(append(parts, "__Host-session="+s.valid.Value), "; ")}
		}},
		{name: "CR/LF in the value", header: func(t *testing.T, s setup) []string {
			return []string{"__Host-session=" + s.valid.Value[:10] + "\r\nX-Evil: 1"}
		}},
		{name: "non-ASCII in the value", header: func(t *testing.T, s setup) []string { return []string{"__Host-session=" + s.valid.Value + "\xff\xfe"} }},
		{name: "NUL in the value", header: func(t *testing.T, s setup) []string { return []string{"__Host-session=\x00" + s.valid.Value} }},
	}
	backends := map[string]func() (sessions.Backend, func()){
		"cookie": func() (sessions.Backend, func()) { return cookie.New(testSecret), func() {} },
		"memory": func() (sessions.Backend, func()) { b := memory.New(); return b, func() { b.Close() } },
	}
	for bname, newBackend := range backends {
		for _, tt := range tests {
			t.Run(bname+"/"+tt.name, func(t *testing.T) {
				if tt.serverOnly && bname == "cookie" {
					t.Skip("a cookie session cannot be revoked: see SECURITY.md")
				}
				b, closeBackend := newBackend()
				defer closeBackend()
				s := build(t, b)
				if tt.advance > 0 {
					// The memory backend expires by its own clock, which the
					// test cannot move; the manager's signed timestamps
					// enforce the lifetime for both.
					s.clock.Advance(tt.advance)
				}
				sent := tt.header(t, s)
				req := httptest.NewRequest(http.MethodGet, "https://example.com/visit", nil)
				req.Header["Cookie"] = sent
				rec := httptest.NewRecorder()
				s.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d", rec.Code)
				}
				got := rec.Body.String()
				if tt.wantValid {
					if !strings.Contains(got, "name=ann ") || strings.HasSuffix(got, "new=true") {
						t.Errorf("the valid session reads %q", got)
					}
					return
				}
				if strings.Contains(got, "name=ann") || !strings.HasSuffix(got, "new=true") {
					t.Errorf("the attack reached a session: %q", got)
				}
				// The change the request made was saved under a fresh ID,
				// never under a token the client chose.
				for _, c := range rec.Result().Cookies() {
					if strings.Contains(strings.Join(sent, ";"), c.Value) {
						t.Errorf("the client's token was adopted: %q", c.Value)
					}
				}
				for _, h := range rec.Result().Header["Set-Cookie"] {
					if strings.ContainsAny(h, "\r\n") {
						t.Errorf("Set-Cookie carries CR/LF: %q", h)
					}
				}
			})
		}
	}
}

package sessions_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
)

// apiClient is an API client that keeps its token itself and sends it in a
// header, as mobile apps do.
type apiClient struct {
	t     *testing.T
	h     http.Handler
	token string
}

const tokenHeader = "X-Session-Token"

func (c *apiClient) do(path string) *http.Response {
	c.t.Helper()
	req := httptest.NewRequest("POST", "https://api.example.com"+path, nil)
	if c.token != "" {
		req.Header.Set(tokenHeader, c.token)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	res := rec.Result()
	if v, ok := res.Header[tokenHeader]; ok {
		c.token = v[0]
	}
	return res
}

func TestTokenHeader(t *testing.T) {
	for name, b := range backends(newFakeClock()) {
		t.Run(name, func(t *testing.T) {
			m := sessions.New[profile](b, sessions.WithTokenHeader("x-session-token"))
			c := &apiClient{t: t, h: routes(m, standardActs)}

			res := c.do("/visit")
			if c.token == "" {
				t.Fatal("a new session's token did not come in the response header")
			}
			if got := res.Header["Set-Cookie"]; len(got) != 0 {
				t.Errorf("Set-Cookie %q with header tokens", got)
			}
			if got := res.Header.Values("Vary"); !cmp.Equal(got, []string{tokenHeader}) {
				t.Errorf("Vary = %q, want %s", got, tokenHeader)
			}
			if got := res.Header.Get("Cache-Control"); got != `no-cache="X-Session-Token"` {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := body(c.do("/visit")); !strings.Contains(got, "visits=2 ") {
				t.Fatalf("the token did not bring the session back: %q", got)
			}
			before := c.token
			c.do("/login")
			if c.token == before {
				t.Errorf("Regenerate: the response did not carry a new token")
			}
			if got := body(c.do("/read")); !strings.Contains(got, "name=ann visits=2 ") {
				t.Errorf("after Regenerate: %q", got)
			}
			res = c.do("/logout")
			if v, ok := res.Header[tokenHeader]; !ok || v[0] != "" {
				t.Errorf("logout: %s = %q (present %t), want an empty value", tokenHeader, v, ok)
			}
			if name != "cookie" {
				// The old token names nothing now.
				c.token = before
				if got := body(c.do("/read")); !strings.HasSuffix(got, "new=true") {
					t.Errorf("a token from before logout reads %q", got)
				}
			}
		})
	}
}

// TestTokenHeaderIgnoresCookies sends a valid session cookie and a header
// token to a manager that reads the header: only the header counts, and a
// cookie on its own gives a fresh session.
func TestTokenHeaderIgnoresCookies(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	cookieMgr := newManager[profile](clock, fb)
	headerMgr := newManager[profile](clock, fb, sessions.WithTokenHeader(tokenHeader))
	br := &browser{t: t, h: routes(cookieMgr, standardActs)}
	br.do("GET", "/visit")
	api := &apiClient{t: t, h: routes(headerMgr, standardActs)}
	api.do("/visit")
	api.do("/visit")

	req := httptest.NewRequest("GET", "/read", nil)
	req.AddCookie(br.cookie)
	req.Header.Set(tokenHeader, api.token)
	rec := httptest.NewRecorder()
	routes(headerMgr, standardActs).ServeHTTP(rec, req)
	if got := rec.Body.String(); !strings.Contains(got, "visits=2 ") {
		t.Errorf("with both a cookie and a header: %q, want the header's session", got)
	}
	// The cookie's token is bound to the cookie's name: under the header's
	// name it is nothing.
	req = httptest.NewRequest("GET", "/read", nil)
	req.Header.Set(tokenHeader, br.cookie.Value)
	rec = httptest.NewRecorder()
	routes(headerMgr, standardActs).ServeHTTP(rec, req)
	if got := rec.Body.String(); !strings.HasSuffix(got, "new=true") {
		t.Errorf("a cookie's token in the header: %q, want a fresh session", got)
	}
}

func TestTokenHeaderBadTokens(t *testing.T) {
	m := sessions.New[profile](newCookieBackend(), sessions.WithTokenHeader(tokenHeader))
	for name, v := range map[string]string{
		"garbage":   "garbage",
		"empty":     "",
		"oversized": strings.Repeat("A", 5000),
		"non-ASCII": "caf\xc3\xa9",
	} {
		req := httptest.NewRequest("GET", "/read", nil)
		req.Header.Set(tokenHeader, v)
		rec := httptest.NewRecorder()
		routes(m, standardActs).ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.HasSuffix(rec.Body.String(), "new=true") {
			t.Errorf("%s: status %d %q, want a fresh session", name, rec.Code, rec.Body)
		}
	}
}

func TestTokenHeaderWithCookieOptionsPanics(t *testing.T) {
	for _, opt := range []sessions.Option{
		sessions.WithCookieName("s"), sessions.WithCookiePath("/"), sessions.WithCookieDomain("example.com"),
		sessions.WithCookieSecure(true), sessions.WithCookieSameSite(http.SameSiteStrictMode), sessions.WithCookiePartitioned(false),
	} {
		func() {
			defer func() {
				if msg, _ := recover().(string); !strings.Contains(msg, "WithTokenHeader") {
					t.Errorf("panic %q, want one about WithTokenHeader", msg)
				}
			}()
			sessions.New[profile](newCookieBackend(), sessions.WithTokenHeader(tokenHeader), opt)
		}()
	}
	for _, name := range []string{"", "Bad Header", "Cookie", "set-cookie", "Vary"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("WithTokenHeader(%q) did not panic", name)
				}
			}()
			sessions.New[profile](newCookieBackend(), sessions.WithTokenHeader(name))
		}()
	}
}

func TestClearSiteData(t *testing.T) {
	clock := newFakeClock()
	m := newManager[profile](clock, newFakeBackend(clock), sessions.WithClearSiteData("cache", "storage"))
	br := &browser{t: t, h: routes(m, standardActs)}
	if got := br.do("GET", "/login").Header.Get("Clear-Site-Data"); got != "" {
		t.Errorf("a login sent Clear-Site-Data %q", got)
	}
	if got := br.do("POST", "/logout").Header.Get("Clear-Site-Data"); got != `"cache", "storage"` {
		t.Errorf("logout: Clear-Site-Data = %q", got)
	}
	// A logout that starts a new session for a flash message clears the
	// site too, unless that would delete the new session's cookie.
	br.do("GET", "/login")
	if got := br.do("POST", "/flash").Header.Get("Clear-Site-Data"); got != `"cache", "storage"` {
		t.Errorf("logout with a flash: Clear-Site-Data = %q", got)
	}
	withCookies := &browser{t: t, h: routes(newManager[profile](clock, newFakeBackend(clock), sessions.WithClearSiteData("cookies")), standardActs)}
	withCookies.do("GET", "/login")
	if res := withCookies.do("POST", "/flash"); res.Header.Get("Clear-Site-Data") != "" || withCookies.cookie == nil {
		t.Errorf("logout with a flash and \"cookies\": Clear-Site-Data %q, cookie kept %t", res.Header.Get("Clear-Site-Data"), withCookies.cookie != nil)
	}
	if got := withCookies.do("POST", "/logout").Header.Get("Clear-Site-Data"); got != `"cookies"` {
		t.Errorf("logout with \"cookies\": Clear-Site-Data = %q", got)
	}
	// Off by default.
	plain := &browser{t: t, h: routes(newManager[profile](clock, newFakeBackend(clock)), standardActs)}
	plain.do("GET", "/login")
	if got := plain.do("POST", "/logout").Header.Get("Clear-Site-Data"); got != "" {
		t.Errorf("without the option, logout sent Clear-Site-Data %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("an unknown directive did not panic")
		}
	}()
	sessions.New[profile](newCookieBackend(), sessions.WithClearSiteData("everything"))
}

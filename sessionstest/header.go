package sessionstest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
)

const tokenHeader = "X-Session-Token"

// apiClient keeps its token itself and sends it in a header.
type apiClient struct {
	t     *testing.T
	h     http.Handler
	token string
}

// do sends a request and returns the body and the response; it fails the
// test on any status but 200.
func (c *apiClient) do(path string, cookie *http.Cookie) (string, *http.Response) {
	c.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://api.example.com"+path, nil)
	if c.token != "" {
		req.Header.Set(tokenHeader, c.token)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	res := rec.Result()
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("POST %s: status %d: %s", path, res.StatusCode, rec.Body)
	}
	if v, ok := res.Header[tokenHeader]; ok {
		c.token = v[0]
	}
	return rec.Body.String(), res
}

// testManagerTokenHeader runs a session whose token travels in a header:
// new, change, regenerate, destroy, a bad token, and a cookie beside it.
func testManagerTokenHeader(t *testing.T, s env) {
	m := s.newManager(s.Backend, sessions.WithTokenHeader(tokenHeader))
	c := &apiClient{t: t, h: app(m)}
	if got, res := c.do("/inc", nil); got != "/1/" || c.token == "" || len(res.Header["Set-Cookie"]) > 0 {
		t.Fatalf("a new session: %q, token %t, Set-Cookie %q", got, c.token != "", res.Header["Set-Cookie"])
	}
	if got, res := c.do("/inc", nil); got != "/2/" || res.Header.Get("Vary") != tokenHeader {
		t.Errorf("the token brought back %q, Vary %q", got, res.Header.Get("Vary"))
	}
	before := c.token
	if got, _ := c.do("/login", nil); got != "ann/2/" || c.token == before {
		t.Errorf("Regenerate: %q, new token %t", got, c.token != before)
	}
	if got, _ := c.do("/read", nil); got != "ann/2/" {
		t.Errorf("after Regenerate: %q", got)
	}
	// A valid cookie beside the header changes nothing; the header counts.
	cookieMgr := s.newManager(s.Backend)
	browser := newClient(t, app(cookieMgr))
	browser.get("/tag")
	if got, _ := c.do("/read", browser.cookie); got != "ann/2/" {
		t.Errorf("with a cookie beside the header: %q", got)
	}
	// A cookie alone is no session to a header manager.
	alone := &apiClient{t: t, h: app(m)}
	if got, _ := alone.do("/read", browser.cookie); got != "/0/" {
		t.Errorf("a cookie without the header: %q", got)
	}
	if got, res := c.do("/logout", nil); got != "/0/" || res.Header.Get(tokenHeader) != "" || len(res.Header[tokenHeader]) != 1 {
		t.Errorf("logout: %q, header %q", got, res.Header[tokenHeader])
	}
	// A bad token is a fresh session.
	bad := &apiClient{t: t, h: app(m), token: strings.Repeat("!", 50)}
	if got, _ := bad.do("/read", nil); got != "/0/" {
		t.Errorf("a bad token: %q", got)
	}
	if s.stateless {
		return
	}
	// The token from before logout names nothing.
	c.token = before
	if got, _ := c.do("/read", nil); got != "/0/" {
		t.Errorf("a token from before logout and Regenerate: %q", got)
	}
}

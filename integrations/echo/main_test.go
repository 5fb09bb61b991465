package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// TestRouter drives Echo's own router through httptest: a counter, a
// login that regenerates the token, a handler that fails through Echo's
// HTTPErrorHandler, and a logout.
func TestRouter(t *testing.T) {
	store := memory.New()
	defer store.Close()
	h := newServer(sessions.New[Session](store))
	var cookie *http.Cookie
	do := func(method, path string, wantStatus int) (string, *http.Response) {
		t.Helper()
		req := httptest.NewRequest(method, "https://example.com"+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode != wantStatus {
			t.Fatalf("%s %s: status %d, want %d", method, path, res.StatusCode, wantStatus)
		}
		for _, c := range res.Cookies() {
			if c.MaxAge < 0 {
				cookie = nil
			} else {
				cookie = c
			}
		}
		return rec.Body.String(), res
	}
	do("GET", "/", 200)
	if got, _ := do("GET", "/", 200); got != "user \"\", visit 2\n" {
		t.Errorf("counter: %q", got)
	}
	before := cookie.Value
	do("POST", "/login/ann", 200)
	if cookie.Value == before {
		t.Errorf("login kept the token")
	}
	// The failing handler's change is saved before Echo's error handler
	// writes its response.
	if got, _ := do("GET", "/fail", http.StatusTeapot); !strings.Contains(got, "failed") {
		t.Errorf("Echo's error handler did not answer: %q", got)
	}
	if got, _ := do("GET", "/", 200); got != "user \"ann\", visit 4\n" {
		t.Errorf("after login and a failed request: %q", got)
	}
	if _, res := do("POST", "/logout", 200); !strings.Contains(res.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout did not delete the cookie: %q", res.Header["Set-Cookie"])
	}
	if got, _ := do("GET", "/", 200); got != "user \"\", visit 1\n" {
		t.Errorf("after logout: %q", got)
	}
}

// TestErrorBeforeSessionCookie fails the first request of a new visitor:
// Echo's error response carries the new session's cookie, because the
// session was saved when the chain returned.
func TestErrorBeforeSessionCookie(t *testing.T) {
	store := memory.New()
	defer store.Close()
	h := newServer(sessions.New[Session](store))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/fail", nil))
	if rec.Code != http.StatusTeapot || len(rec.Result().Cookies()) != 1 {
		t.Errorf("status %d, cookies %v; want Echo's 418 with the session cookie", rec.Code, rec.Result().Cookies())
	}
}

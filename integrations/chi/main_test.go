package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// TestRouter drives chi's own router through httptest: a counter, a login
// that regenerates the token, a logout that deletes the cookie.
func TestRouter(t *testing.T) {
	store := memory.New()
	defer store.Close()
	h := routes(sessions.New[Session](store))
	var cookie *http.Cookie
	do := func(method, path string) (string, *http.Response) {
		t.Helper()
		req := httptest.NewRequest(method, "https://example.com"+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d", method, path, res.StatusCode)
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
	do("GET", "/")
	if got, _ := do("GET", "/"); got != "user \"\", visit 2\n" {
		t.Errorf("counter: %q", got)
	}
	before := cookie.Value
	do("POST", "/login/ann")
	if cookie.Value == before {
		t.Errorf("login kept the token")
	}
	if got, _ := do("GET", "/"); got != "user \"ann\", visit 3\n" {
		t.Errorf("after login: %q", got)
	}
	if _, res := do("POST", "/logout"); !strings.Contains(res.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout did not delete the cookie: %q", res.Header["Set-Cookie"])
	}
	if cookie != nil {
		t.Errorf("the cookie survived logout")
	}
	if got, _ := do("GET", "/"); got != "user \"\", visit 1\n" {
		t.Errorf("after logout: %q", got)
	}
}

package main

import (
	"bytes"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
)

// TestClickThrough walks the example the way a person would: visit,
// reload, log in, log out.
func TestClickThrough(t *testing.T) {
	srv := httptest.NewServer(newApp(cookie.New(bytes.Repeat([]byte("e"), 32)), sessions.WithCookieSecure(false)).routes())
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	u, _ := url.Parse(srv.URL)

	get := func() string {
		t.Helper()
		res, err := c.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		return b.String()
	}
	if got := get(); !strings.Contains(got, "<strong>1</strong> time in") {
		t.Fatalf("first visit: %s", got)
	}
	if got := get(); !strings.Contains(got, "<strong>2</strong> times") {
		t.Fatalf("second visit: %s", got)
	}
	before := jar.Cookies(u)[0].Value
	res, err := c.PostForm(srv.URL+"/login", url.Values{"name": {"Ada"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if after := jar.Cookies(u)[0].Value; after == before {
		t.Errorf("login kept the cookie value")
	}
	if got := get(); !strings.Contains(got, "Hello, Ada!") || !strings.Contains(got, "<strong>4</strong>") {
		t.Errorf("after login: %s", got)
	}
	res, err = c.PostForm(srv.URL+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// The redirect after logout counted the new session's first visit.
	if got := get(); !strings.Contains(got, "Hello, visitor!") || !strings.Contains(got, "<strong>2</strong>") {
		t.Errorf("after logout: %s", got)
	}
}

// TestOversizedSession grows a cookie session past what a cookie holds:
// the user gets a page that says so, and the session stays as it was.
func TestOversizedSession(t *testing.T) {
	srv := httptest.NewServer(newApp(cookie.New(bytes.Repeat([]byte("e"), 32)), sessions.WithCookieSecure(false)).routes())
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	read := func(res *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		return res.StatusCode, b.String()
	}
	read(c.Get(srv.URL + "/"))
	read(c.PostForm(srv.URL+"/notes", url.Values{"note": {"a small note"}}))
	code, body := read(c.PostForm(srv.URL+"/notes", url.Values{"note": {strings.Repeat("x", 5000)}}))
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too large to keep in a cookie") {
		t.Fatalf("oversized note: %d %s", code, body)
	}
	code, body = read(c.Get(srv.URL + "/"))
	if code != http.StatusOK || !strings.Contains(body, "a small note") || strings.Contains(body, "xxxx") {
		t.Errorf("after the refused note: %d %s", code, body)
	}
}

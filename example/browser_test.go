package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-rod/rod"
	"github.com/go-rod/rod/lib/proto"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
	"github.com/starsessions/sessions/internal/testbrowser"
	"github.com/starsessions/sessions/memory"
)

// These tests drive Debian's headless Chromium through the DevTools
// protocol, against the example app on a loopback port. Without a browser
// they skip, saying what to install; SESSIONS_REQUIRE_BROWSER=1 makes that
// a failure.

func chromium(t *testing.T) *rod.Browser { return testbrowser.Launch(t) }

// serve starts the example app on the cookie backend on a loopback port
// and returns its URL on "localhost", where browsers accept Secure cookies
// over plain HTTP.
func serve(t *testing.T, opts ...sessions.Option) string {
	t.Helper()
	return serveOn(t, cookie.New(bytes.Repeat([]byte("b"), 32)), opts...)
}

// serveOn is serve on another backend.
func serveOn(t *testing.T, b sessions.Backend, opts ...sessions.Option) string {
	t.Helper()
	srv := httptest.NewServer(newApp(b, settings{visitsSecret: testVisitsSecret}, opts...).routes())
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

// open opens url in a new tab and waits for it to load.
func open(t *testing.T, b *rod.Browser, url string) *rod.Page { return testbrowser.Open(t, b, url) }

// sessionCookie returns the browser's cookie named name for url, or nil.
// The DevTools protocol sees HttpOnly cookies, which page scripts cannot.
func sessionCookie(t *testing.T, page *rod.Page, url, name string) *proto.NetworkCookie {
	t.Helper()
	cookies, err := page.Cookies([]string{url})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func text(t *testing.T, page *rod.Page, selector string) string {
	t.Helper()
	el, err := page.Element(selector)
	if err != nil {
		t.Fatalf("%s: %v", selector, err)
	}
	s, err := el.Text()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signIn logs in as name from the start page, ticking "Keep me signed in"
// if remember, and waits for the page after the redirect.
func signIn(t *testing.T, page *rod.Page, name string, remember bool) {
	t.Helper()
	page.MustElement("input[name=name]").MustInput(name)
	if remember {
		page.MustElement("input[name=remember]").MustClick()
	}
	wait := page.MustWaitNavigation()
	page.MustElement("form[action='/login'] button").MustClick()
	wait()
	page.MustWaitLoad()
	if got := text(t, page, "h1"); got != "Hello, "+name+"!" {
		t.Fatalf("after login: %q", got)
	}
}

func TestBrowserVisitsLoginLogout(t *testing.T) {
	b := chromium(t)
	url := serve(t)
	page := open(t, b, url+"/")
	if got := text(t, page, "#visits"); !strings.Contains(got, "visited this page 1 time ") {
		t.Fatalf("first visit: %q", got)
	}
	// An anonymous visitor has no session, only the counter's cookie.
	if c := sessionCookie(t, page, url, sessions.DefaultHostCookieName); c != nil {
		t.Errorf("an anonymous visit set the session cookie: %+v", c)
	}
	c := sessionCookie(t, page, url, visitsHostCookie)
	if c == nil {
		t.Fatal("no visit counter cookie after the first visit")
	}
	if !c.HTTPOnly || !c.Secure || c.SameSite != proto.NetworkCookieSameSiteLax || c.Path != "/" {
		t.Errorf("cookie attributes: HttpOnly=%t Secure=%t SameSite=%s Path=%s", c.HTTPOnly, c.Secure, c.SameSite, c.Path)
	}
	// An anonymous visitor's cookie dies with the browser.
	if !c.Session {
		t.Errorf("an anonymous visitor's cookie is persistent, expiring %v", time.Unix(int64(c.Expires), 0))
	}

	page.MustReload().MustWaitLoad()
	if got := text(t, page, "#visits"); !strings.Contains(got, "2 times") {
		t.Fatalf("after a reload: %q", got)
	}

	signIn(t, page, "Ada", true)
	c = sessionCookie(t, page, url, sessions.DefaultHostCookieName)
	if c == nil {
		t.Fatalf("login set no %s cookie", sessions.DefaultHostCookieName)
	}
	if !c.HTTPOnly || !c.Secure || c.SameSite != proto.NetworkCookieSameSiteLax || c.Path != "/" || c.Domain != "localhost" {
		t.Errorf("session cookie attributes: HttpOnly=%t Secure=%t SameSite=%s Path=%s Domain=%s", c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Domain)
	}
	// "Keep me signed in" was ticked: the example keeps sessions for a
	// week, and the browser holds the cookie that long, and not longer.
	if expires := time.Unix(int64(c.Expires), 0); c.Session || time.Until(expires) < 6*24*time.Hour || time.Until(expires) > 7*24*time.Hour+time.Minute {
		t.Errorf("cookie expiry: session=%t expires=%v, want a week from now", c.Session, expires)
	}

	wait := page.MustWaitNavigation()
	page.MustElement("form[action='/logout'] button").MustClick()
	wait()
	page.MustWaitLoad()
	// The redirect after logout lands on / and starts a new session; what
	// matters is that the logged-in cookie is gone.
	if got := text(t, page, "h1"); got != "Hello, visitor!" {
		t.Errorf("after logout: %q", got)
	}
}

func TestBrowserLogoutRemovesCookie(t *testing.T) {
	b := chromium(t)
	url := serve(t)
	page := open(t, b, url+"/")
	signIn(t, page, "Ada", false)
	// Post the logout from a script, so that no redirect follows and the
	// jar shows what the logout response did.
	page.MustEval(`() => fetch("/logout", {method: "POST", redirect: "manual"})`)
	for _, name := range []string{sessions.DefaultHostCookieName, visitsHostCookie} {
		if c := sessionCookie(t, page, url, name); c != nil {
			t.Errorf("the %s cookie survived logout: %+v", name, c)
		}
	}
}

// TestBrowserHostPrefixCookie signs in over plain http://localhost with the
// default options: Chromium takes the Secure cookie there, named
// sessions.DefaultHostCookieName, and the user stays signed in across
// reloads and navigations.
func TestBrowserHostPrefixCookie(t *testing.T) {
	b := chromium(t)
	url := serve(t)
	if !strings.HasPrefix(url, "http://localhost:") {
		t.Fatalf("the app is served at %s, want plain http://localhost", url)
	}
	page := open(t, b, url+"/")
	signIn(t, page, "Ada", false)
	if c := sessionCookie(t, page, url, sessions.DefaultHostCookieName); c == nil {
		t.Fatalf("the browser refused the %s cookie over http://localhost", sessions.DefaultHostCookieName)
	}
	page.MustReload().MustWaitLoad()
	page.MustNavigate(url + "/sessions").MustWaitLoad()
	page.MustNavigate(url + "/").MustWaitLoad()
	if got := text(t, page, "h1"); got != "Hello, Ada!" {
		t.Errorf("after a reload and a navigation: %q, want the user still signed in", got)
	}
}

func TestBrowserOversizedSession(t *testing.T) {
	b := chromium(t)
	url := serve(t)
	page := open(t, b, url+"/")
	signIn(t, page, "Ada", false)
	visits := 2 // the first visit, and the redirect after the login
	for range maxNotes {
		page.MustElement("textarea[name=note]").MustInput(strings.Repeat("x", maxNoteLength))
		wait := page.MustWaitNavigation()
		page.MustElement("form[action='/notes'] button").MustClick()
		wait()
		page.MustWaitLoad()
		if _, err := page.Sleeper(rod.NotFoundSleeper).Element("#error"); err == nil {
			break
		}
		visits++ // the redirect after a kept note counts a visit
	}
	if got := text(t, page, "#error"); !strings.Contains(got, "too large to keep in a cookie") {
		t.Fatalf("oversized session: the page says %q", got)
	}
	page.MustNavigate(url + "/").MustWaitLoad()
	if got, want := text(t, page, "#visits"), fmt.Sprintf("%d times", visits+1); !strings.Contains(got, want) {
		t.Errorf("after the refused note the session reads %q, want %q: intact", got, want)
	}
}

// TestBrowserSessionsAcrossDevices signs one user in from two browser
// contexts, which share no cookies, as two devices would: the sessions
// page of each lists both; signing the other out from the first signs it
// out on its next load; "sign out all other devices" leaves only the first.
func TestBrowserSessionsAcrossDevices(t *testing.T) {
	b := chromium(t)
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	url := serveOn(t, store)
	login := func(ctx *rod.Browser) *rod.Page {
		page := open(t, ctx, url+"/")
		page.MustElement("input[name=name]").MustInput("Ada")
		wait := page.MustWaitNavigation()
		page.MustElement("form[action='/login'] button").MustClick()
		wait()
		page.MustWaitLoad()
		if got := text(t, page, "h1"); got != "Hello, Ada!" {
			t.Fatalf("after login: %q", got)
		}
		return page
	}
	sessionsOf := func(page *rod.Page) int {
		page.MustNavigate(url + "/sessions").MustWaitLoad()
		return len(page.MustElements("tr.session"))
	}
	click := func(page *rod.Page, selector string) {
		wait := page.MustWaitNavigation()
		page.MustElement(selector).MustClick()
		wait()
		page.MustWaitLoad()
	}

	first := login(b.MustIncognito())
	second := login(b.MustIncognito())
	third := login(b.MustIncognito())
	if n := sessionsOf(first); n != 3 {
		t.Fatalf("the first device lists %d sessions, want 3", n)
	}
	if got := text(t, first, "strong.current"); got != "(this device)" {
		t.Errorf("the current session is marked %q", got)
	}
	// Sign the second device out from the first: its row is the one whose
	// handle the second device's own page marks as current.
	sessionsOf(second)
	handle := second.MustElement("strong.current").MustEval(`function() { return this.closest("tr").dataset.handle }`).String()
	sessionsOf(first)
	click(first, fmt.Sprintf(`tr[data-handle=%q] button`, handle))
	if n := len(first.MustElements("tr.session")); n != 2 {
		t.Errorf("after signing one device out the first lists %d sessions, want 2", n)
	}
	second.MustNavigate(url + "/").MustWaitLoad()
	if got := text(t, second, "h1"); got != "Hello, visitor!" {
		t.Errorf("the signed-out device reads %q on its next load", got)
	}

	click(first, "#revoke-others")
	if n := len(first.MustElements("tr.session")); n != 1 {
		t.Errorf("after signing out all other devices the first lists %d sessions, want 1", n)
	}
	third.MustNavigate(url + "/").MustWaitLoad()
	if got := text(t, third, "h1"); got != "Hello, visitor!" {
		t.Errorf("the third device reads %q after 'sign out all other devices'", got)
	}
	first.MustNavigate(url + "/").MustWaitLoad()
	if got := text(t, first, "h1"); got != "Hello, Ada!" {
		t.Errorf("the first device reads %q", got)
	}
}

// TestBrowserSameSiteLax checks what SameSite=Lax promises, with the
// browser's own account of which cookies each request carried or had
// blocked (Network.requestWillBeSentExtraInfo). A page on 127.0.0.1 is
// another site than localhost: its form POST to the app goes without the
// session cookie, its top-level link with it. A page on another port of
// localhost is the same site, and its POST carries the cookie.
func TestBrowserSameSiteLax(t *testing.T) {
	b := chromium(t)
	app := serve(t)
	attacker := func(host string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/notes"><input name="note" value="from elsewhere"></form>
<a id="link" href="%s/">visit</a>`, app, app)
		}))
		t.Cleanup(srv.Close)
		return strings.Replace(srv.URL, "127.0.0.1", host, 1)
	}

	page := open(t, b, app+"/")
	signIn(t, page, "Ada", false)
	if sessionCookie(t, page, app, sessions.DefaultHostCookieName) == nil {
		t.Fatal("no session to protect")
	}

	// sent records, per request to the app, whether the session cookie was
	// sent; only the first event of a request counts, as a redirect reuses
	// the request ID. checked holds the requests carried has answered for;
	// they stay in urls so that a redirect event arriving after the answer
	// is not taken for a new request.
	var mu sync.Mutex
	sent := map[proto.NetworkRequestID]bool{}
	urls := map[proto.NetworkRequestID]string{}
	methods := map[proto.NetworkRequestID]string{}
	checked := map[proto.NetworkRequestID]bool{}
	var order []proto.NetworkRequestID // request IDs as first seen
	// changed wakes carried after every event.
	changed := make(chan struct{}, 1)
	wake := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	go page.EachEvent(
		func(e *proto.NetworkRequestWillBeSent) {
			mu.Lock()
			defer mu.Unlock()
			if _, seen := urls[e.RequestID]; !seen {
				urls[e.RequestID], methods[e.RequestID] = e.Request.URL, e.Request.Method
				order = append(order, e.RequestID)
			}
			wake()
		},
		func(e *proto.NetworkRequestWillBeSentExtraInfo) {
			mu.Lock()
			defer mu.Unlock()
			if _, seen := sent[e.RequestID]; seen {
				return
			}
			ok := false
			for _, ac := range e.AssociatedCookies {
				if ac.Cookie != nil && ac.Cookie.Name == sessions.DefaultHostCookieName && len(ac.BlockedReasons) == 0 {
					ok = true
				}
			}
			sent[e.RequestID] = ok
			wake()
		},
	)()
	if err := (proto.NetworkEnable{}).Call(page); err != nil {
		t.Fatal(err)
	}
	// carried returns whether the first request to the app with method and
	// path carried the session cookie, waiting for its events.
	carried := func(method, path string) bool {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			mu.Lock()
			for _, id := range order {
				if !checked[id] && methods[id] == method && urls[id] == app+path {
					if ok, known := sent[id]; known {
						checked[id] = true
						mu.Unlock()
						return ok
					}
				}
			}
			mu.Unlock()
			select {
			case <-changed:
			case <-timeout:
				t.Fatalf("no %s %s request seen", method, path)
			}
		}
	}

	cross := attacker("127.0.0.1")
	page.MustNavigate(cross + "/").MustWaitLoad()
	page.MustEval(`() => document.getElementById("f").submit()`)
	if carried("POST", "/notes") {
		t.Errorf("a cross-site form POST carried the session cookie")
	}
	page.MustNavigate(cross + "/").MustWaitLoad()
	page.MustElement("#link").MustClick()
	if !carried("GET", "/") {
		t.Errorf("a top-level GET navigation from another site went without the session cookie")
	}

	same := attacker("localhost")
	page.MustNavigate(same + "/").MustWaitLoad()
	page.MustEval(`() => document.getElementById("f").submit()`)
	if !carried("POST", "/notes") {
		t.Errorf("a form POST from another port of the same site went without the session cookie")
	}
}

// TestBrowserCrossOriginPost posts a form to the app from pages of other
// origins, one on another site and one on another port of the same site,
// whose POST carries the SameSite=Lax cookie: CrossOriginProtection
// refuses both with 403, and the session is unchanged.
func TestBrowserCrossOriginPost(t *testing.T) {
	b := chromium(t)
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	app := serveOn(t, store)
	page := open(t, b, app+"/")
	signIn(t, page, "Ada", false)
	page.MustElement("textarea[name=note]").MustInput("mine")
	wait := page.MustWaitNavigation()
	page.MustElement("form[action='/notes'] button").MustClick()
	wait()
	page.MustWaitLoad()
	for _, host := range []string{"127.0.0.1", "localhost"} {
		attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/notes"><input name="note" value="forged from %s"></form>`, app, host)
		}))
		t.Cleanup(attacker.Close)
		page.MustNavigate(strings.Replace(attacker.URL, "127.0.0.1", host, 1) + "/").MustWaitLoad()
		wait := page.MustWaitNavigation()
		page.MustEval(`() => document.getElementById("f").submit()`)
		wait()
		page.MustWaitLoad()
		if got := page.MustElement("body").MustText(); !strings.Contains(got, "cross-origin request detected") {
			t.Errorf("a form posted from %s: the page reads %q, want CrossOriginProtection's refusal", host, got)
		}
	}
	page.MustNavigate(app + "/").MustWaitLoad()
	if got := text(t, page, "#notes"); got != "mine" {
		t.Errorf("the notes after the forged posts: %q", got)
	}
}

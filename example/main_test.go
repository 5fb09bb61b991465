package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
	"github.com/starsessions/sessions/memory"
)

// exampleBackends are the backends the example runs on without a server.
func exampleBackends(t *testing.T) map[string]sessions.Backend {
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	return map[string]sessions.Backend{"memory": store, "cookie": cookie.New(bytes.Repeat([]byte("e"), 32))}
}

// user is a browser with its own cookie jar.
type user struct {
	t   *testing.T
	c   *http.Client
	url string
}

func newUser(t *testing.T, srv *httptest.Server) *user {
	jar, _ := cookiejar.New(nil)
	return &user{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
}

func (u *user) read(res *http.Response, err error) (int, string) {
	u.t.Helper()
	if err != nil {
		u.t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	return res.StatusCode, b.String()
}

func (u *user) get(path string) (int, string) {
	u.t.Helper()
	return u.read(u.c.Get(u.url + path))
}

func (u *user) post(path string, form url.Values) (int, string) {
	u.t.Helper()
	return u.read(u.c.PostForm(u.url+path, form))
}

// cookie returns the value of the user's cookie named name, or "".
func (u *user) cookie(name string) string {
	base, _ := url.Parse(u.url)
	for _, c := range u.c.Jar.Cookies(base) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// session returns the value of the user's session cookie, or "". The
// tests serve plain HTTP on 127.0.0.1, whose cookies cannot be Secure: the
// name is sessions.DefaultCookieName, not DefaultHostCookieName.
func (u *user) session() string { return u.cookie(sessions.DefaultCookieName) }

// login signs the user in as name.
func (u *user) login(name string) {
	u.t.Helper()
	if code, body := u.post("/login", url.Values{"name": {name}}); code != http.StatusOK || !strings.Contains(body, "Hello, "+name+"!") {
		u.t.Fatalf("login as %s: status %d: %s", name, code, body)
	}
}

// testVisitsSecret signs the visit counter's cookie in tests.
var testVisitsSecret = bytes.Repeat([]byte("v"), 32)

// serveExample serves the example over b on plain HTTP, with cookies that
// are not Secure.
func serveExample(t *testing.T, b sessions.Backend) *httptest.Server {
	srv := httptest.NewServer(newApp(b, settings{insecure: true, visitsSecret: testVisitsSecret}).routes())
	t.Cleanup(srv.Close)
	return srv
}

// TestClickThrough walks the example the way a person would: visit,
// reload, log in, log out.
func TestClickThrough(t *testing.T) {
	for name, b := range exampleBackends(t) {
		t.Run(name, func(t *testing.T) {
			u := newUser(t, serveExample(t, b))
			if _, got := u.get("/"); !strings.Contains(got, "<strong>1</strong> time in") {
				t.Fatalf("first visit: %s", got)
			}
			if _, got := u.get("/"); !strings.Contains(got, "<strong>2</strong> times") {
				t.Fatalf("second visit: %s", got)
			}
			// An anonymous visitor's counter is in a cookie of its own:
			// there is no session to hold a cookie for.
			if got := u.session(); got != "" {
				t.Errorf("anonymous visits set a session cookie")
			}
			if u.cookie(visitsCookie) == "" {
				t.Errorf("no visit counter cookie")
			}
			u.post("/login", url.Values{"name": {"Ada"}})
			if u.session() == "" {
				t.Errorf("login set no session cookie")
			}
			if _, got := u.get("/"); !strings.Contains(got, "Hello, Ada!") || !strings.Contains(got, "<strong>4</strong>") {
				t.Errorf("after login: %s", got)
			}
			u.post("/logout", nil)
			// The redirect after logout counted the new session's first visit.
			if _, got := u.get("/"); !strings.Contains(got, "Hello, visitor!") || !strings.Contains(got, "<strong>2</strong>") {
				t.Errorf("after logout: %s", got)
			}
		})
	}
}

// TestOversizedSession grows a cookie session past what a cookie holds:
// the user gets a page that says so, and the session stays as it was.
func TestOversizedSession(t *testing.T) {
	u := newUser(t, serveExample(t, cookie.New(bytes.Repeat([]byte("e"), 32))))
	u.login("Ada")
	note := strings.Repeat("x", maxNoteLength)
	kept := 0
	for range maxNotes {
		code, body := u.post("/notes", url.Values{"note": {note}})
		if code == http.StatusRequestEntityTooLarge {
			if !strings.Contains(body, "too large to keep in a cookie") {
				t.Fatalf("oversized session: %s", body)
			}
			break
		}
		if code != http.StatusOK {
			t.Fatalf("note %d: status %d", kept+1, code)
		}
		kept++
	}
	if kept == maxNotes {
		t.Fatal("no note made the cookie too large")
	}
	code, body := u.get("/")
	if code != http.StatusOK || strings.Count(body, "<li>"+note) != kept {
		t.Errorf("after the refused note: status %d, %d notes, want %d", code, strings.Count(body, "<li>"+note), kept)
	}
}

// TestNotesBounded checks the bounds that keep a user from growing a
// server-side session without limit, and that a visitor who is not signed
// in keeps no notes at all.
func TestNotesBounded(t *testing.T) {
	store := memory.New()
	defer store.Close()
	u := newUser(t, serveExample(t, store))
	if code, body := u.post("/notes", url.Values{"note": {"anonymous"}}); code != http.StatusForbidden || !strings.Contains(body, "log in to keep notes") {
		t.Errorf("an anonymous note: status %d: %s", code, body)
	}
	if n := store.Len(); n != 0 {
		t.Errorf("an anonymous note left %d sessions in the store", n)
	}
	u.login("Ada")
	if code, _ := u.post("/notes", url.Values{"note": {strings.Repeat("x", maxNoteLength+1)}}); code != http.StatusBadRequest {
		t.Errorf("a note of %d characters: status %d, want 400", maxNoteLength+1, code)
	}
	for i := range maxNotes {
		if code, _ := u.post("/notes", url.Values{"note": {"n"}}); code != http.StatusOK {
			t.Fatalf("note %d: status %d", i+1, code)
		}
	}
	if code, _ := u.post("/notes", url.Values{"note": {"one too many"}}); code != http.StatusBadRequest {
		t.Errorf("note %d: status %d, want 400", maxNotes+1, code)
	}
}

// TestFullStoreRefusesLogin fills a bounded memory backend with logins:
// the next one gets a page that says to come back later, and a user
// already signed in keeps their session.
func TestFullStoreRefusesLogin(t *testing.T) {
	store := memory.New(memory.WithMaxSessions(5))
	defer store.Close()
	srv := serveExample(t, store)
	first := newUser(t, srv)
	first.login("Ada")
	for i := range 4 {
		newUser(t, srv).login(fmt.Sprint("user", i))
	}
	code, body := newUser(t, srv).post("/login", url.Values{"name": {"Bob"}})
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "as many sessions as it can") {
		t.Errorf("a login past the bound: status %d: %s", code, body)
	}
	if _, body := first.get("/"); !strings.Contains(body, "Hello, Ada!") {
		t.Errorf("the first user's session in a full store: %s", body)
	}
}

// countingStore is a memory backend that counts the writes it is asked
// for. It embeds the concrete type, so that the manager finds every
// optional interface the memory backend has.
type countingStore struct {
	*memory.Backend
	writes atomic.Int64
}

func (c *countingStore) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	c.writes.Add(1)
	return c.Backend.Write(ctx, id, data, ttl)
}

func (c *countingStore) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	c.writes.Add(1)
	return c.Backend.WriteIfVersion(ctx, w)
}

// TestAnonymousRequestsStoreNothing sends 20,000 requests of every kind a
// visitor who never logs in can send, a bot's, to the example over a
// memory backend that holds one session: the store is asked for no write
// and holds nothing after them, and a login then succeeds. Before, every
// anonymous GET stored a session for its visit counter, and the first
// one filled this store.
func TestAnonymousRequestsStoreNothing(t *testing.T) {
	store := &countingStore{Backend: memory.New(memory.WithMaxSessions(1))}
	defer store.Close()
	h := newApp(store, settings{insecure: true, visitsSecret: testVisitsSecret},
		sessions.WithLogger(slog.New(slog.DiscardHandler))).routes()
	forged := &http.Cookie{Name: sessions.DefaultCookieName, Value: sessions.NewID()}
	requests := []struct {
		method, path, form string
		cookie             *http.Cookie
	}{
		{"GET", "/", "", nil},
		{"GET", "/", "", forged}, // a token the store never issued
		{"GET", "/api/session", "", nil},
		{"GET", "/sessions", "", nil},
		{"POST", "/notes", "note=spam", nil},
		{"POST", "/api/notes", "note=spam", nil},
		{"POST", "/login", "name=", nil}, // refused: no name
		{"POST", "/logout", "", nil},
		{"POST", "/sessions/revoke", "handle=x", nil},
		{"POST", "/sessions/revoke-others", "", nil},
	}
	const total = 20000
	statuses := map[string]map[int]int{} // per request, how many of each status
	for i := range total {
		rq := requests[i%len(requests)]
		req := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.form))
		if rq.form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if rq.cookie != nil {
			req.AddCookie(rq.cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		key := rq.method + " " + rq.path
		if statuses[key] == nil {
			statuses[key] = map[int]int{}
		}
		statuses[key][rec.Code]++
	}
	for key, codes := range statuses {
		for code := range codes {
			if code >= 500 {
				t.Errorf("%s: %d answers with status %d", key, codes[code], code)
			}
		}
	}
	if n, w := store.Len(), store.writes.Load(); n != 0 || w != 0 {
		t.Fatalf("after %d anonymous requests the store holds %d sessions and was asked for %d writes; want none", total, n, w)
	}
	u := newUser(t, serveExample(t, store))
	u.login("Ada")
	if n := store.Len(); n != 1 {
		t.Errorf("after the login the store holds %d sessions, want 1", n)
	}
}

var handleAttr = regexp.MustCompile(`data-handle="([^"]+)"`)

// TestSessionsPage signs one user in on three devices, lists them, signs
// one out, then all but the first.
func TestSessionsPage(t *testing.T) {
	store := memory.New()
	defer store.Close()
	srv := serveExample(t, store)
	laptop, phone, tablet := newUser(t, srv), newUser(t, srv), newUser(t, srv)
	for _, u := range []*user{laptop, phone, tablet} {
		u.post("/login", url.Values{"name": {"Ada"}})
	}
	newUser(t, srv).post("/login", url.Values{"name": {"Bob"}})
	_, page := laptop.get("/sessions")
	handles := handleAttr.FindAllStringSubmatch(page, -1)
	if len(handles) != 3 || strings.Count(page, `class="current"`) != 1 {
		t.Fatalf("Ada's sessions page lists %d sessions, %d current:\n%s", len(handles), strings.Count(page, `class="current"`), page)
	}
	_, phonePage := phone.get("/sessions")
	phoneHandle := regexp.MustCompile(`data-handle="([^"]+)">\s*<td>[^<]*<strong class="current">`).FindStringSubmatch(phonePage)
	if phoneHandle == nil {
		t.Fatalf("the phone's page does not mark its own session:\n%s", phonePage)
	}
	laptop.post("/sessions/revoke", url.Values{"handle": {phoneHandle[1]}})
	if _, got := phone.get("/"); !strings.Contains(got, "Hello, visitor!") {
		t.Errorf("the phone after it was signed out from the laptop: %s", got)
	}
	if _, got := tablet.get("/"); !strings.Contains(got, "Hello, Ada!") {
		t.Errorf("the tablet after the phone was signed out: %s", got)
	}
	laptop.post("/sessions/revoke-others", nil)
	if _, got := tablet.get("/"); !strings.Contains(got, "Hello, visitor!") {
		t.Errorf("the tablet after 'sign out all other devices': %s", got)
	}
	_, page = laptop.get("/sessions")
	if n := len(handleAttr.FindAllString(page, -1)); n != 1 || !strings.Contains(page, `class="current"`) {
		t.Errorf("after 'sign out all other devices' the page lists %d sessions:\n%s", n, page)
	}
}

// TestSessionsPageOnCookies checks that the sessions page says why it
// cannot work on the cookie backend.
func TestSessionsPageOnCookies(t *testing.T) {
	u := newUser(t, serveExample(t, cookie.New(bytes.Repeat([]byte("e"), 32))))
	u.post("/login", url.Values{"name": {"Ada"}})
	code, page := u.get("/sessions")
	if code != http.StatusOK || !strings.Contains(page, `id="unsupported"`) {
		t.Errorf("the sessions page on cookies: status %d:\n%s", code, page)
	}
}

// TestAPIWithHeaderTokens drives the JSON API as curl or an app would,
// with the token in X-Session-Token.
func TestAPIWithHeaderTokens(t *testing.T) {
	store := memory.New()
	defer store.Close()
	srv := httptest.NewServer(newApp(store, settings{headerTokens: true, visitsSecret: testVisitsSecret}).routes())
	defer srv.Close()
	// token is the session's, visits the visit counter's.
	var token, visits string
	call := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if token != "" {
			req.Header.Set(tokenHeader, token)
		}
		if visits != "" {
			req.Header.Set(visitsHeader, visits)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if len(res.Header["Set-Cookie"]) > 0 {
			t.Errorf("%s %s: Set-Cookie %q with header tokens", method, path, res.Header["Set-Cookie"])
		}
		if v, ok := res.Header[tokenHeader]; ok {
			token = v[0]
		}
		if v, ok := res.Header[visitsHeader]; ok {
			visits = v[0]
		}
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		return res.StatusCode, b.String()
	}
	if code, _ := call("POST", "/api/login", url.Values{"name": {"Ada"}}); code != http.StatusNoContent || token == "" {
		t.Fatalf("login: status %d, token %t", code, token != "")
	}
	call("POST", "/api/notes", url.Values{"note": {"from curl"}})
	if _, got := call("GET", "/api/session", nil); got != `{"name":"Ada","visits":1,"notes":["from curl"]}`+"\n" {
		t.Errorf("the session: %s", got)
	}
	if _, got := call("GET", "/api/session", nil); got != `{"name":"Ada","visits":2,"notes":["from curl"]}`+"\n" {
		t.Errorf("the session, visited again: %s", got)
	}
	call("POST", "/api/logout", nil)
	if token != "" || visits != "" {
		t.Errorf("after logout the client still holds a token: session %t, visits %t", token != "", visits != "")
	}
	if _, got := call("GET", "/api/session", nil); !strings.Contains(got, `"name":""`) {
		t.Errorf("after logout: %s", got)
	}
}

// TestCrossOriginPostRefused sends what a browser sends for a form that
// another origin posts: CrossOriginProtection refuses it before the
// session is touched. The same-site case matters most: SameSite=Lax lets
// the cookie through from another port or a sibling subdomain.
func TestCrossOriginPostRefused(t *testing.T) {
	store := memory.New()
	defer store.Close()
	srv := serveExample(t, store)
	u := newUser(t, srv)
	u.post("/login", url.Values{"name": {"Ada"}})
	for _, site := range []string{"cross-site", "same-site"} {
		req, _ := http.NewRequest("POST", srv.URL+"/notes", strings.NewReader("note=forged"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site)
		code, _ := u.read(u.c.Do(req))
		if code != http.StatusForbidden {
			t.Errorf("a %s POST: status %d, want 403", site, code)
		}
	}
	if _, page := u.get("/"); strings.Contains(page, "forged") {
		t.Errorf("a forged note reached the session")
	}
	// The app's own form posts are same-origin, and pass.
	req, _ := http.NewRequest("POST", srv.URL+"/notes", strings.NewReader("note=mine"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if code, _ := u.read(u.c.Do(req)); code != http.StatusOK {
		t.Errorf("a same-origin POST: status %d", code)
	}
}

// TestNotesBoundUnderBurst sends many notes at once from one session: the
// bound holds, because it is checked inside Update, which replays on the
// session other requests saved.
func TestNotesBoundUnderBurst(t *testing.T) {
	store := memory.New()
	defer store.Close()
	srv := serveExample(t, store)
	u := newUser(t, srv)
	u.login("Ada")
	cookie := u.session()
	var wg sync.WaitGroup
	for range 3 * maxNotes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", srv.URL+"/notes", strings.NewReader("note=n"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: sessions.DefaultCookieName, Value: cookie})
			res, err := http.DefaultTransport.RoundTrip(req)
			if err == nil {
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	if _, page := u.get("/"); strings.Count(page, "<li>n</li>") > maxNotes {
		t.Errorf("%d notes after a burst, the bound is %d", strings.Count(page, "<li>n</li>"), maxNotes)
	}
}

// TestBurstOnOneSession does what a single-page app or a second tab does:
// 20 clients send 10 requests each at once, on one signed-in session: each
// adds a note of its own, then loads the page 9 times. Every request is
// answered, and every note is kept, as Update replays each on the session
// the others saved. (The visit counter is in a cookie, which is
// last-write-wins: of concurrent visits some may go uncounted.)
func TestBurstOnOneSession(t *testing.T) {
	store := memory.New()
	defer store.Close()
	srv := serveExample(t, store)
	u := newUser(t, srv)
	u.login("Ada")
	cookie := &http.Cookie{Name: sessions.DefaultCookieName, Value: u.session()}
	const clients, requests = maxNotes, 10
	type answer struct {
		req  string
		code int
	}
	answers := make(chan answer, clients*requests)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range requests {
				req, _ := http.NewRequest("GET", srv.URL+"/", nil)
				if j == 0 {
					req, _ = http.NewRequest("POST", srv.URL+"/notes", strings.NewReader(fmt.Sprintf("note=from+client+%d", i)))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				req.AddCookie(cookie)
				res, err := http.DefaultTransport.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				answers <- answer{req.Method + " " + req.URL.Path, res.StatusCode}
			}
		}()
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if want := map[string]int{"GET": http.StatusOK, "POST": http.StatusSeeOther}[strings.Fields(a.req)[0]]; a.code != want {
			t.Errorf("%s of the burst: status %d, want %d", a.req, a.code, want)
		}
	}
	_, page := u.get("/")
	for i := range clients {
		if !strings.Contains(page, fmt.Sprintf("<li>from client %d</li>", i)) {
			t.Errorf("client %d's note is lost:\n%s", i, page)
		}
	}
}

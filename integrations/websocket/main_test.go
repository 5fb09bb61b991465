package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/testbrowser"
	"github.com/starsessions/sessions/memory"
)

// slack is what a test allows, on top of the check interval, for a
// socket's check to run and its close to arrive on a loaded machine under
// -race. It bounds a read of the socket; no test sleeps.
const slack = 2 * time.Second

// testServer is the application on a loopback port.
type testServer struct {
	url string
	app *app
	// socketDone receives once for every /ws request whose handler,
	// middleware included, has returned.
	socketDone chan struct{}
}

// serveApp starts the application on a loopback port, its sockets checking
// their session every checkEvery, with the manager's options opts.
func serveApp(t *testing.T, checkEvery time.Duration, opts ...sessions.Option) *testServer {
	t.Helper()
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	a := newApp(sessions.New[Session](store, opts...), checkEvery)
	a.log = slog.New(slog.DiscardHandler)
	ts := &testServer{app: a, socketDone: make(chan struct{}, 16)}
	h := a.routes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Path == "/ws" {
			ts.socketDone <- struct{}{}
		}
	}))
	t.Cleanup(srv.Close)
	// On "localhost", browsers accept Secure cookies over plain HTTP.
	ts.url = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	return ts
}

// client is one browser: it keeps the session cookie the way a browser
// does on localhost. net/http/cookiejar would not send a Secure cookie over
// plain HTTP.
type client struct {
	t      *testing.T
	url    string
	cookie *http.Cookie
}

func newClient(t *testing.T, ts *testServer) *client { return &client{t: t, url: ts.url} }

// do sends a request, keeps the session cookie it sets, and returns the
// status and body. Redirects are not followed, so that every Set-Cookie is
// seen.
func (c *client) do(method, path string, form url.Values) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	for _, ck := range res.Cookies() {
		if ck.Name != sessions.DefaultHostCookieName {
			c.t.Fatalf("%s %s: cookie %q, want %q", method, path, ck.Name, sessions.DefaultHostCookieName)
		}
		c.cookie = ck
		if ck.MaxAge < 0 {
			c.cookie = nil
		}
	}
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// dial opens the socket with the client's cookie.
func (c *client) dial(ctx context.Context) *websocket.Conn {
	c.t.Helper()
	h := http.Header{}
	if c.cookie != nil {
		h.Set("Cookie", c.cookie.Name+"="+c.cookie.Value)
	}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.url, "http")+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// send writes msg and returns the answer.
func send(t *testing.T, ctx context.Context, conn *websocket.Conn, msg string) string {
	t.Helper()
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, got, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	return string(got)
}

// wantClosed reads the socket until ctx's deadline and fails t unless the
// server closed it with code.
func wantClosed(t *testing.T, ctx context.Context, conn *websocket.Conn, code websocket.StatusCode) {
	t.Helper()
	_, msg, err := conn.Read(ctx)
	if got := websocket.CloseStatus(err); got != code {
		t.Errorf("the socket read %q, %v; want it closed with %d (%v)", msg, err, code, code)
	}
}

// TestClicksOverSocket uses the socket from Go: every message is saved
// while the connection stays open, and a page load sees them.
func TestClicksOverSocket(t *testing.T) {
	ts := serveApp(t, time.Hour)
	c := newClient(t, ts)
	c.do("GET", "/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := c.dial(ctx)
	for i := 1; i <= 3; i++ {
		if got := send(t, ctx, conn, "click"); got != fmt.Sprint(i) {
			t.Fatalf("click %d: %q", i, got)
		}
		// Saved already, with the socket still open.
		if _, body := c.do("GET", "/", nil); !strings.Contains(body, fmt.Sprintf(`<span id="clicks">%d</span>`, i)) {
			t.Errorf("after click %d the page shows %s", i, body)
		}
	}
	if got := send(t, ctx, conn, "count"); got != "3" {
		t.Errorf("count: %q, want 3", got)
	}
}

// TestCrossOriginUpgradeRefused dials the socket with another origin's
// Origin header, as a page on another site would.
func TestCrossOriginUpgradeRefused(t *testing.T) {
	ts := serveApp(t, time.Hour)
	c := newClient(t, ts)
	c.do("GET", "/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://evil.example"}, "Cookie": {c.cookie.Name + "=" + c.cookie.Value}},
	})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-origin upgrade: %v, %v; want 403", res, err)
	}
}

// TestSocketClosedOnRevocation ends an open socket's session from another
// request while the socket is idle: the socket's periodic check sees it
// and closes the socket with 1008 within the interval.
func TestSocketClosedOnRevocation(t *testing.T) {
	const every = 100 * time.Millisecond
	tests := []struct {
		name string
		// revoke ends the session of device from another request.
		revoke func(t *testing.T, ts *testServer, device *client)
	}{
		{"logout in another tab", func(t *testing.T, ts *testServer, device *client) {
			tab := &client{t: t, url: ts.url, cookie: device.cookie}
			if code, _ := tab.do("POST", "/logout", nil); code != http.StatusSeeOther {
				t.Fatalf("logout: status %d", code)
			}
		}},
		{"sign out other devices", func(t *testing.T, ts *testServer, device *client) {
			other := newClient(t, ts)
			other.do("POST", "/login", url.Values{"name": {"Ada"}})
			if code, _ := other.do("POST", "/logout-others", nil); code != http.StatusSeeOther {
				t.Fatalf("sign out other devices: status %d", code)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := serveApp(t, every)
			device := newClient(t, ts)
			device.do("POST", "/login", url.Values{"name": {"Ada"}})
			if _, body := device.do("GET", "/", nil); !strings.Contains(body, `<strong id="user">Ada</strong>`) {
				t.Fatalf("after login: %s", body)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn := device.dial(ctx)
			if got := send(t, ctx, conn, "click"); got != "1" {
				t.Fatalf("click: %q", got)
			}
			tt.revoke(t, ts, device)
			ctx, cancel = context.WithTimeout(ctx, every+slack)
			defer cancel()
			wantClosed(t, ctx, conn, websocket.StatusPolicyViolation)
		})
	}
}

// clock is a time that moves only when a test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestMessageCheckedAfterInterval sends a message to a socket whose
// session was revoked, once the interval has passed but before the
// periodic check ran (the ticker lags, here by an hour): the socket checks
// first and closes with 1008, rather than answer with the session's data.
// Within the interval a message is answered without a check.
func TestMessageCheckedAfterInterval(t *testing.T) {
	const every = time.Hour
	ts := serveApp(t, every)
	clk := &clock{t: time.Now()}
	ts.app.now = clk.now
	c := newClient(t, ts)
	c.do("GET", "/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := c.dial(ctx)
	if got := send(t, ctx, conn, "click"); got != "1" {
		t.Fatalf("click: %q", got)
	}
	(&client{t: t, url: ts.url, cookie: c.cookie}).do("POST", "/logout", nil)
	clk.advance(every - time.Second)
	if got := send(t, ctx, conn, "count"); got != "1" {
		t.Fatalf("count within the interval: %q, want 1, answered without a check", got)
	}
	clk.advance(time.Second)
	if err := conn.Write(ctx, websocket.MessageText, []byte("count")); err != nil {
		t.Fatal(err)
	}
	wantClosed(t, ctx, conn, websocket.StatusPolicyViolation)
}

// warnings records the records at level Warn and above that reach it.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// TestSocketLogsNoWarning runs sockets to their end, with and without a
// page load first, and checks the manager warned of nothing: no change
// after the header that was not saved, no use after the request ended.
// Without a session the socket closes with 1008 and says why.
func TestSocketLogsNoWarning(t *testing.T) {
	tests := []struct {
		name      string
		loadFirst bool
		want      websocket.StatusCode // how the server closes the socket after a click
	}{
		{"page loaded first", true, -1},
		{"no page first", false, websocket.StatusPolicyViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged warnings
			ts := serveApp(t, time.Hour, sessions.WithLogger(slog.New(&logged)))
			c := newClient(t, ts)
			if tt.loadFirst {
				c.do("GET", "/", nil)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn := c.dial(ctx)
			if tt.want == -1 {
				if got := send(t, ctx, conn, "click"); got != "1" {
					t.Fatalf("click: %q", got)
				}
				conn.Close(websocket.StatusNormalClosure, "")
			} else {
				conn.Write(ctx, websocket.MessageText, []byte("click"))
				wantClosed(t, ctx, conn, tt.want)
			}
			select {
			case <-ts.socketDone:
			case <-ctx.Done():
				t.Fatal("the socket's handler did not return")
			}
			if got := logged.list(); len(got) > 0 {
				t.Errorf("the manager warned: %q", got)
			}
		})
	}
}

// TestBrowserClicks clicks through a real Chromium page: a message over the
// socket changes the session, and a reload shows the change. A page of
// another origin (another port of the same site, whose requests carry the
// Lax cookie) cannot open the socket. A logout in another tab closes the
// first tab's socket with 1008.
func TestBrowserClicks(t *testing.T) {
	b := testbrowser.Launch(t)
	ts := serveApp(t, 100*time.Millisecond)
	url := ts.url
	page := testbrowser.Open(t, b, url+"/")
	page.MustWait(`() => !document.getElementById("click").disabled`)
	for i := 1; i <= 2; i++ {
		page.MustElement("#click").MustClick()
		page.MustWait(fmt.Sprintf(`() => document.getElementById("clicks").textContent === "%d"`, i))
	}
	page.MustReload().MustWaitLoad()
	if got := page.MustElement("#clicks").MustText(); got != "2" {
		t.Errorf("after a reload the page shows %q clicks, want 2", got)
	}
	if got := page.MustElement("#visits").MustText(); got != "2" {
		t.Errorf("after a reload the page shows %q visits, want 2", got)
	}

	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><p id="result">pending</p><script>
const ws = new WebSocket(%q);
ws.onopen = () => { document.getElementById("result").textContent = "open"; ws.send("click"); };
ws.onclose = () => { if (document.getElementById("result").textContent === "pending") document.getElementById("result").textContent = "refused"; };
</script>`, "ws"+strings.TrimPrefix(url, "http")+"/ws")
	}))
	t.Cleanup(other.Close)
	attack := testbrowser.Open(t, b, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/")
	attack.MustWait(`() => document.getElementById("result").textContent !== "pending"`)
	if got := attack.MustElement("#result").MustText(); got != "refused" {
		t.Errorf("a socket from another origin: %q, want refused", got)
	}
	page.MustReload().MustWaitLoad()
	if got := page.MustElement("#clicks").MustText(); got != "2" {
		t.Errorf("after the other origin's attempt the page shows %q clicks, want 2", got)
	}

	// Sign in, open a second tab, log out there: the first tab's socket
	// closes at its next check. The attack's tab is in front: typing
	// needs the first tab's focus.
	page.MustActivate()
	page.MustElement("input[name=name]").MustInput("Ada")
	wait := page.MustWaitNavigation()
	page.MustElement("form[action='/login'] button").MustClick()
	wait()
	page.MustWaitLoad()
	page.MustWait(`() => document.getElementById("socket").textContent === "open"`)
	second := testbrowser.Open(t, b, url+"/")
	wait = second.MustWaitNavigation()
	second.MustElement("form[action='/logout'] button").MustClick()
	wait()
	page.MustWait(`() => document.getElementById("socket").textContent.startsWith("closed")`)
	if got := page.MustElement("#socket").MustText(); got != "closed (1008): signed out" {
		t.Errorf("the first tab's socket after a logout in the second: %q", got)
	}
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/testbrowser"
	"github.com/starsessions/sessions/memory"
)

// serveApp starts the application on a loopback port and returns its URL
// on "localhost", where browsers accept Secure cookies over plain HTTP.
func serveApp(t *testing.T) string {
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	srv := httptest.NewServer(routes(sessions.New[Session](store)))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

// TestClicksOverSocket uses the socket from Go: every message is saved
// while the connection stays open, and a page load sees them.
func TestClicksOverSocket(t *testing.T) {
	url := serveApp(t)
	res, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cookie := res.Cookies()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	for i := 1; i <= 3; i++ {
		if err := conn.Write(ctx, websocket.MessageText, []byte("click")); err != nil {
			t.Fatal(err)
		}
		_, got, err := conn.Read(ctx)
		if err != nil || string(got) != fmt.Sprint(i) {
			t.Fatalf("click %d: %q, %v", i, got, err)
		}
		// Saved already, with the socket still open.
		req, _ := http.NewRequest("GET", url+"/", nil)
		req.AddCookie(cookie)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		fmt.Fprint(&b, res.Body)
		buf := make([]byte, 4096)
		n, _ := res.Body.Read(buf)
		res.Body.Close()
		if want := fmt.Sprintf(`<span id="clicks">%d</span>`, i); !strings.Contains(string(buf[:n]), want) {
			t.Errorf("after click %d the page shows %s", i, buf[:n])
		}
	}
}

// TestCrossOriginUpgradeRefused dials the socket with another origin's
// Origin header, as a page on another site would.
func TestCrossOriginUpgradeRefused(t *testing.T) {
	url := serveApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://evil.example"}},
	})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-origin upgrade: %v, %v; want 403", res, err)
	}
}

// TestBrowserClicks clicks through a real Chromium page: a message over the
// socket changes the session, and a reload shows the change. A page of
// another origin (another port of the same site, whose requests carry the
// Lax cookie) cannot open the socket.
func TestBrowserClicks(t *testing.T) {
	b := testbrowser.Launch(t)
	url := serveApp(t)
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
}

package sessionstest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/starsessions/sessions"
)

// These checks are for backends that keep sessions in a shared server.
// They take a live backend rather than a Config, because the caller knows
// how to share its store or stop its server.

// scaleApp is what the checks below run: /inc counts through Update,
// /login regenerates and names the user, /logout destroys, anything else
// reads. It answers "user:count".
func scaleApp(m *sessions.Manager[suiteSession]) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/inc":
			s.Update(func(v *suiteSession) { v.Count++ })
		case "/login":
			s.Regenerate()
			s.Update(func(v *suiteSession) { v.User = "ann" })
		case "/logout":
			s.Destroy()
		}
		v := s.Value()
		w.Write([]byte(v.User + ":" + strconv.Itoa(v.Count)))
	}))
}

// send sends a request with cookie c and returns the response and the
// cookie to send next (nil after a deletion).
func send(h http.Handler, path string, c *http.Cookie) (*httptest.ResponseRecorder, *http.Cookie) {
	req := httptest.NewRequest(http.MethodPost, "https://example.com"+path, nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, nc := range rec.Result().Cookies() {
		if nc.MaxAge < 0 {
			return rec, nil
		}
		c = nc
	}
	return rec, c
}

// SharedStore runs two managers, standing for two application servers,
// on backends a and b, which must share one store: a session made on one
// is read and changed on the other, and a logout on either is a logout on
// both.
func SharedStore(t *testing.T, a, b sessions.Backend) {
	t.Helper()
	ha := scaleApp(sessions.New[suiteSession](a))
	hb := scaleApp(sessions.New[suiteSession](b))
	_, c := send(ha, "/login", nil)
	if rec, _ := send(hb, "/inc", c); rec.Body.String() != "ann:1" {
		t.Fatalf("server B sees %q after login on A", rec.Body)
	}
	if rec, _ := send(ha, "/read", c); rec.Body.String() != "ann:1" {
		t.Fatalf("server A sees %q after B's change", rec.Body)
	}
	send(hb, "/logout", c)
	if rec, _ := send(ha, "/read", c); rec.Body.String() != ":0" {
		t.Errorf("server A sees %q after logout on B", rec.Body)
	}
}

// Outage stops the backend's server in the middle of a test: requests must
// get the error handler's 5xx, never a panic or a silent 200, and once the
// server is back they must work again with the same backend and manager.
// durable says whether the server keeps its data across the restart.
func Outage(t *testing.T, b sessions.Backend, stop, start func() error, durable bool) {
	t.Helper()
	var handled atomic.Value
	m := sessions.New[suiteSession](b, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		handled.Store(err)
		http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
	}))
	h := scaleApp(m)
	if rec, _ := send(h, "/inc", nil); rec.Code != http.StatusOK {
		t.Fatalf("before the outage: status %d", rec.Code)
	}
	_, c := send(h, "/inc", nil)

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/read", "/inc"} {
		if rec, _ := send(h, path, c); rec.Code < 500 {
			t.Errorf("%s with the server down: status %d, want 5xx", path, rec.Code)
		}
	}
	// A new visitor's session is not stored until it changes: saving it
	// must fail through the error handler, never as a silent 200.
	if rec, _ := send(h, "/inc", nil); rec.Code != http.StatusServiceUnavailable || handled.Load() == nil {
		t.Errorf("a save with the server down: status %d, error handler saw %v", rec.Code, handled.Load())
	}

	if err := start(); err != nil {
		t.Fatal(err)
	}
	want := ":1" // the data was lost: the old cookie names nothing, a new session starts
	if durable {
		want = ":2" // the session goes on where it was
	}
	rec, c2 := send(h, "/inc", c)
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Fatalf("after the server came back: %d %q, want %s", rec.Code, rec.Body, want)
	}
	if rec, _ := send(h, "/read", c2); rec.Body.String() != want {
		t.Errorf("the next request reads %q, want %s", rec.Body, want)
	}
}

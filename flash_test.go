package sessions_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

type flashSession struct {
	Name  string
	Flash sessions.Flashes[string] `json:"flash,omitempty" msgpack:"flash,omitempty"`
}

// TestFlashesOverlapping overlaps two requests of one session on a backend
// with versions: the first loads, changes its flash messages and waits
// while the second runs to the end. A message must show at most once, and
// a message added must never be lost or refused because of a Pop.
func TestFlashesOverlapping(t *testing.T) {
	pop := func(s *sessions.Session[flashSession]) string { return strings.Join(s.Data().Flash.Pop(), ",") }
	add := func(msg string) func(s *sessions.Session[flashSession]) string {
		return func(s *sessions.Session[flashSession]) string { s.Data().Flash.Add(msg); return "" }
	}
	tests := []struct {
		name          string
		first, second func(*sessions.Session[flashSession]) string
		// wantFirst is the first request's status; shown, the messages
		// both showed together; left, what the session holds after.
		wantFirst   int
		shown, left string
	}{
		{"pop and pop", pop, pop, http.StatusConflict, "hello", ""},
		{"pop, then an add saves first", pop, add("more"), http.StatusOK, "hello", "more"},
		{"add, then a pop saves first", add("more"), pop, http.StatusOK, "hello", "more"},
		{"add and add", add("one"), add("two"), http.StatusOK, "", "hello,two,one"},
	}
	for _, codec := range []sessions.Codec{sessions.JSON, sessions.Msgpack} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%T/%s", codec, tt.name), func(t *testing.T) {
				b := memory.New()
				t.Cleanup(func() { b.Close() })
				m := sessions.New[flashSession](b, sessions.WithCodec(codec))
				loaded, proceed := make(chan struct{}), make(chan struct{})
				mux := http.NewServeMux()
				handle := func(path string, act func(*sessions.Session[flashSession]) string, wait bool) {
					mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
						s, err := m.Get(r)
						if err != nil {
							http.Error(w, err.Error(), http.StatusInternalServerError)
							return
						}
						shown := act(s)
						if wait {
							close(loaded)
							<-proceed
						}
						fmt.Fprint(w, shown)
					})
				}
				handle("/start", add("hello"), false)
				handle("/first", tt.first, true)
				handle("/second", tt.second, false)
				handle("/read", func(s *sessions.Session[flashSession]) string { return strings.Join(s.Value().Flash, ",") }, false)
				h := m.Middleware(mux)
				br := &browser{t: t, h: h}
				br.do("GET", "/start")
				cookie := br.cookie

				first := make(chan *http.Response)
				go func() {
					req := httptest.NewRequest("GET", "https://example.com/first", nil)
					req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					first <- rec.Result()
				}()
				<-loaded
				res2 := br.do("GET", "/second")
				close(proceed)
				res1 := <-first

				if res2.StatusCode != http.StatusOK {
					t.Errorf("second request: %d, want 200", res2.StatusCode)
				}
				if res1.StatusCode != tt.wantFirst {
					t.Errorf("first request: %d, want %d", res1.StatusCode, tt.wantFirst)
				}
				var shown []string
				for _, res := range []*http.Response{res1, res2} {
					if res.StatusCode == http.StatusOK {
						if b := body(res); b != "" {
							shown = append(shown, b)
						}
					}
				}
				if got := strings.Join(shown, ","); got != tt.shown {
					t.Errorf("messages shown: %q, want %q", got, tt.shown)
				}
				br.cookie = cookie
				if got := body(br.do("GET", "/read")); got != tt.left {
					t.Errorf("left in the session: %q, want %q", got, tt.left)
				}
			})
		}
	}
}

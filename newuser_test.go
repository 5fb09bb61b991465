package sessions_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// The mistakes below are a new user's, found by trying the library as one:
// each is now said at once rather than found in production.

type lossy struct {
	Name    string
	secret  string //nolint:unused // the point of the test
	Extra   any
	Nested  struct{ hidden int }
	Skipped int       `json:"-" msgpack:"-"`
	When    time.Time // encodes itself: not a loss
}

func TestNewWarnsOfFieldsTheCodecLoses(t *testing.T) {
	for _, codec := range []sessions.Codec{sessions.JSON, sessions.Msgpack} {
		var buf bytes.Buffer
		sessions.New[lossy](memory.New(), sessions.WithCodec(codec), sessions.WithLogger(newTextLogger(&buf)))
		out := buf.String()
		for _, want := range []string{"lossy.secret is unexported", "lossy.Extra is an interface", "lossy.Nested.hidden is unexported"} {
			if !strings.Contains(out, want) {
				t.Errorf("%T: warning lacks %q:\n%s", codec, want, out)
			}
		}
		for _, notWant := range []string{"Skipped", "When", "Name"} {
			if strings.Contains(out, notWant) {
				t.Errorf("%T: warning names %s, which round-trips:\n%s", codec, notWant, out)
			}
		}
	}
	var buf bytes.Buffer
	sessions.New[profile](memory.New(), sessions.WithLogger(newTextLogger(&buf)))
	if buf.Len() != 0 {
		t.Errorf("New warned of a type that round-trips:\n%s", buf.String())
	}
}

func TestCallInsideUpdatePanics(t *testing.T) {
	m := sessions.New[profile](memory.New())
	s, err := m.Open(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan any)
	go func() {
		defer func() { done <- recover() }()
		s.Update(func(v *profile) { v.Visits = s.Value().Visits + 1 })
	}()
	select {
	case p := <-done:
		if msg, _ := p.(string); !strings.Contains(msg, "called from inside a function given to Session.Update") {
			t.Fatalf("recovered %v, want the panic that explains the mistake", p)
		}
	case <-time.After(10 * time.Second): // only a hang reaches this
		t.Fatal("a call on the Session from inside Update hung")
	}
	// The Session is not left locked by the panic.
	s.Update(func(v *profile) { v.Visits++ })
	if got := s.Value().Visits; got != 1 {
		t.Errorf("Visits = %d after the panic and one Update, want 1", got)
	}
}

// TestCallDuringAnotherGoroutinesUpdateWaits checks that the panic is for
// the Update's own goroutine only: another goroutine's call waits its turn.
func TestCallDuringAnotherGoroutinesUpdateWaits(t *testing.T) {
	m := sessions.New[profile](memory.New())
	s, err := m.Open(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	updated := make(chan struct{})
	go func() {
		defer close(updated)
		s.Update(func(v *profile) { close(inside); <-release; v.Visits = 7 })
	}()
	<-inside
	got := make(chan int)
	go func() { got <- s.Value().Visits }()
	close(release)
	if v := <-got; v != 7 {
		t.Errorf("Value during another goroutine's Update = %d, want 7, the value after it", v)
	}
	<-updated
}

func TestUpdateAfterTheRequestWarns(t *testing.T) {
	var buf syncBuffer
	m := sessions.New[profile](memory.New(), sessions.WithLogger(newTextLogger(&buf)))
	late := make(chan *sessions.Session[profile], 1)
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := m.Get(r)
		late <- s
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "https://example.com/", nil))
	s := <-late
	s.Update(func(v *profile) { v.Visits++ })
	if !strings.Contains(buf.String(), "used after its request ended") {
		t.Errorf("an Update after the request ended logged nothing:\n%s", buf.String())
	}
}

func TestSecureCookieOverPlainHTTPWarnsOnce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		url   string
		setup func(*http.Request)
		warns bool
	}{
		{"plain HTTP from another host", "http://app.example/", nil, true},
		{"localhost", "http://localhost:8080/", nil, false},
		{"loopback address", "http://127.0.0.1:8080/", nil, false},
		{"HTTPS", "https://app.example/", nil, false},
		{"a proxy that took HTTPS", "http://app.example/", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") }, false},
		{"a proxy that says so in Forwarded", "http://app.example/", func(r *http.Request) { r.Header.Set("Forwarded", `for=192.0.2.60;proto=https`) }, false},
		{"a proxy on this machine", "http://app.example/", func(r *http.Request) { r.RemoteAddr = "127.0.0.1:5000" }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			m := sessions.New[profile](memory.New(), sessions.WithLogger(newTextLogger(&buf)))
			h := routes(m, standardActs)
			for range 3 {
				req := httptest.NewRequest("GET", tt.url+"visit", nil)
				if tt.setup != nil {
					tt.setup(req)
				}
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
			n := strings.Count(buf.String(), "over plain HTTP")
			if want := map[bool]int{true: 1, false: 0}[tt.warns]; n != want {
				t.Errorf("%d warnings, want %d:\n%s", n, want, buf.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer that a logger may write to from another
// goroutine while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

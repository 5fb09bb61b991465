package sessions_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// plainProfile has no maps or interfaces, so the manager finds its changes
// by images; profile, which has a map, by encoding.
type plainProfile struct {
	Name   string
	Visits int
}

// A change made through a pointer that Data handed out before the header,
// but made after it, cannot be saved; for types whose changes images find,
// the middleware must say so rather than lose it silently. For types with
// maps, finding it would cost an encoding per request, and the
// documentation says it is not looked for. Neither must warn of changes
// that were saved.
func TestChangesThroughAnEarlierPointer(t *testing.T) {
	t.Run("found by image", func(t *testing.T) {
		testLatePointer(t, true, func(p *plainProfile) (*string, *int) { return &p.Name, &p.Visits })
	})
	t.Run("a type with a map", func(t *testing.T) {
		testLatePointer(t, false, func(p *profile) (*string, *int) { return &p.Name, &p.Visits })
	})
}

// testLatePointer runs the cases on T, whose late pointer changes the
// middleware finds if detects.
func testLatePointer[T any](t *testing.T, detects bool, fields func(*T) (*string, *int)) {
	const warning = "after the response header"
	type stored struct {
		Name   string
		Visits int
	}
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, s *sessions.Session[T])
		want   stored
		warn   bool
	}{
		{"changed before the header and after it", func(w http.ResponseWriter, s *sessions.Session[T]) {
			name, visits := fields(s.Data())
			*name = "ann"
			io.WriteString(w, "hello")
			*visits = 42
		}, stored{Name: "ann"}, true},
		{"changed only after the header", func(w http.ResponseWriter, s *sessions.Session[T]) {
			name, _ := fields(s.Data())
			io.WriteString(w, "hello")
			*name = "ann"
		}, stored{}, true},
		{"changed before the header only", func(w http.ResponseWriter, s *sessions.Session[T]) {
			name, _ := fields(s.Data())
			*name = "ann"
			io.WriteString(w, "hello")
		}, stored{Name: "ann"}, false},
		{"read through the pointer", func(w http.ResponseWriter, s *sessions.Session[T]) {
			name, _ := fields(s.Data())
			io.WriteString(w, *name)
		}, stored{}, false},
		{"changed, then saved explicitly after the header", func(w http.ResponseWriter, s *sessions.Session[T]) {
			name, _ := fields(s.Data())
			*name = "ann"
			io.WriteString(w, "hello")
			_, visits := fields(s.Data())
			*visits = 42
			if err := s.Save(context.Background()); err != nil {
				t.Errorf("Save: %v", err)
			}
		}, stored{Name: "ann", Visits: 42}, false},
		{"changed through Update before the header", func(w http.ResponseWriter, s *sessions.Session[T]) {
			s.Update(func(v *T) {
				name, _ := fields(v)
				*name = "ann"
			})
			io.WriteString(w, "hello")
		}, stored{Name: "ann"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs strings.Builder
			m := sessions.New[T](memory.New(), sessions.WithLogger(newDebugLogger(&logs)))
			var act func(w http.ResponseWriter, s *sessions.Session[T])
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := m.Get(r)
				if err != nil {
					t.Fatal(err)
				}
				act(w, s)
			}))
			act = tt.handle
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "https://example.com/", nil))
			if warned, want := strings.Contains(logs.String(), warning), tt.warn && detects; warned != want {
				t.Errorf("warned %t, want %t: %q", warned, want, logs.String())
			}
			var got stored
			act = func(w http.ResponseWriter, s *sessions.Session[T]) {
				v := s.Value()
				name, visits := fields(&v)
				got = stored{*name, *visits}
			}
			req := httptest.NewRequest("GET", "https://example.com/", nil)
			for _, c := range rec.Result().Cookies() {
				req.AddCookie(c)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stored (-want +got):\n%s", diff)
			}
		})
	}
}

// When the middleware's save fails, the error handler has reported it;
// changes made afterwards through the pointer are not reported again as
// changes made after the header.
func TestNoLateChangeWarningAfterAFailedSave(t *testing.T) {
	var logs strings.Builder
	b := &faultyBackend{Backend: memory.New()}
	b.mode.Store(int32(failing))
	b.ops.Store("write")
	var handled error
	m := sessions.New[plainProfile](b, sessions.WithLogger(newDebugLogger(&logs)),
		sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			handled = err
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}))
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := m.Get(r)
		p := s.Data()
		p.Name = "ann"
		io.WriteString(w, "hello")
		p.Visits = 42
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://example.com/", nil))
	if rec.Code != http.StatusServiceUnavailable || handled == nil {
		t.Fatalf("status %d, error handler saw %v; want 503 from the failed save", rec.Code, handled)
	}
	if strings.Contains(logs.String(), "after the response header") {
		t.Errorf("a failed save also warned of a late change: %q", logs.String())
	}
}

package sessions_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
	"github.com/starsessions/sessions/memory"
)

// benchSession is a realistic session: a user, roles, a small cart, a CSRF
// token and a timestamp.
type benchSession struct {
	UserID int64
	Name   string
	Roles  []string
	Cart   []benchLine
	CSRF   string
	Seen   time.Time
	Count  int
}

type benchLine struct {
	SKU string
	Qty int
}

func fullSession() benchSession {
	return benchSession{
		UserID: 1234567,
		Name:   "Ada Lovelace",
		Roles:  []string{"user", "editor"},
		Cart:   []benchLine{{"SKU-0001", 1}, {"SKU-0002", 3}, {"SKU-0003", 2}},
		CSRF:   "0123456789abcdef0123456789abcdef",
		Seen:   time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
	}
}

func BenchmarkRequest(b *testing.B) {
	codecs := []struct {
		name  string
		codec sessions.Codec
	}{{"json", sessions.JSON}, {"msgpack", sessions.Msgpack}}
	stores := []struct {
		name string
		new  func(b *testing.B) sessions.Backend
	}{
		{"cookie", func(*testing.B) sessions.Backend { return cookie.New(testSecret) }},
		{"memory", func(b *testing.B) sessions.Backend {
			m := memory.New()
			b.Cleanup(func() { m.Close() })
			return m
		}},
	}
	for _, st := range stores {
		for _, c := range codecs {
			prefix := st.name + "/" + c.name
			b.Run(prefix+"/read", func(b *testing.B) {
				benchScenario(b, sessions.New[benchSession](st.new(b), sessions.WithCodec(c.codec)), true, func(s *benchSession) { _ = s.Name })
			})
			b.Run(prefix+"/write", func(b *testing.B) {
				benchScenario(b, sessions.New[benchSession](st.new(b), sessions.WithCodec(c.codec)), true, func(s *benchSession) {
					s.Count++
					s.Seen = s.Seen.Add(time.Second)
				})
			})
			b.Run(prefix+"/new", func(b *testing.B) {
				benchScenario(b, sessions.New[benchSession](st.new(b), sessions.WithCodec(c.codec)), false, func(s *benchSession) { *s = fullSession() })
			})
		}
	}
}

// BenchmarkVersioning measures what conflict detection costs a request
// that meets no conflict: the memory backend with compare-and-set writes
// (the default) against the same backend under last-write-wins.
func BenchmarkVersioning(b *testing.B) {
	benchModes(b, []benchMode{
		{"versioned", nil},
		{"last-write-wins", []sessions.Option{sessions.WithLastWriteWins()}},
	})
}

// A benchMode is a manager's options under a name, for benchmarks that
// set one mode of the manager beside another.
type benchMode struct {
	name string
	opts []sessions.Option
}

// benchModes times a read-only and a read-modify-write request on the
// memory backend with the msgpack codec, in each mode.
func benchModes(b *testing.B, modes []benchMode) {
	for _, mode := range modes {
		newManager := func(b *testing.B) *sessions.Manager[benchSession] {
			store := memory.New()
			b.Cleanup(func() { store.Close() })
			return sessions.New[benchSession](store, append([]sessions.Option{sessions.WithCodec(sessions.Msgpack)}, mode.opts...)...)
		}
		b.Run("read/"+mode.name, func(b *testing.B) {
			benchScenario(b, newManager(b), true, func(s *benchSession) { _ = s.Name })
		})
		b.Run("write/"+mode.name, func(b *testing.B) {
			benchScenario(b, newManager(b), true, func(s *benchSession) {
				s.Count++
				s.Seen = s.Seen.Add(time.Second)
			})
		})
	}
}

// benchScenario times one request through the middleware, with a cookie
// from an earlier request when withCookie is set.
func benchScenario(b *testing.B, m *sessions.Manager[benchSession], withCookie bool, act func(*benchSession)) {
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			b.Fatal(err)
		}
		act(s.Data())
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest("GET", "/", nil)
	if withCookie {
		setup := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := m.Get(r)
			*s.Data() = fullSession()
		}))
		rec := httptest.NewRecorder()
		setup.ServeHTTP(rec, req)
		req.Header.Set("Cookie", rec.Result().Cookies()[0].String())
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkConflict measures a save of a change made through Data that
// meets another request's save of another field: the reload, the field
// merge and the second write, against the same save without the other
// request. Merging runs only after a conflict; the uncontended path is
// BenchmarkRequest's write.
func BenchmarkConflict(b *testing.B) {
	store := memory.New()
	defer store.Close()
	ctx := context.Background()
	m := sessions.New[benchSession](store, sessions.WithCodec(sessions.Msgpack))
	s, _ := m.Open(ctx, "")
	s.Update(func(v *benchSession) { *v = fullSession() })
	if err := s.Save(ctx); err != nil {
		b.Fatal(err)
	}
	token := s.Token()
	for _, conflict := range []bool{false, true} {
		name := "alone"
		if conflict {
			name = "merged"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mine, _ := m.Open(ctx, token)
				if conflict {
					other, _ := m.Open(ctx, token)
					other.Data().Count++
					if err := other.Save(ctx); err != nil {
						b.Fatal(err)
					}
				}
				mine.Data().Seen = mine.Data().Seen.Add(time.Second)
				if err := mine.Save(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenewal measures what WithRenewal costs a request that does not
// renew its token (the goal: at most 5% over the same request without it),
// read-only and read-modify-write, on the memory backend.
func BenchmarkRenewal(b *testing.B) {
	benchModes(b, []benchMode{
		{"plain", nil},
		{"renewal", []sessions.Option{sessions.WithRenewal(time.Hour, 0)}},
	})
}

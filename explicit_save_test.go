package sessions_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// TestSaveBeforeHeader saves explicitly, then changes the session again
// before the header: the cookie goes out once, and the second change is
// saved by the middleware.
func TestSaveBeforeHeaderSendsCookie(t *testing.T) {
	for name, b := range backends(newFakeClock()) {
		t.Run(name, func(t *testing.T) {
			m := sessions.New[profile](b)
			var saveErr error
			var tokenAfterSave string
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := m.Get(r)
				if err != nil {
					t.Error(err)
					return
				}
				s.Update(func(p *profile) { p.Visits++ })
				saveErr = s.Save(r.Context())
				tokenAfterSave = s.Token()
				if r.URL.Path == "/twice" {
					s.Update(func(p *profile) { p.Name = "after save" })
				}
			}))
			br := &browser{t: t, h: h}
			res := br.do("GET", "/")
			if saveErr != nil {
				t.Fatal(saveErr)
			}
			if n := len(res.Header["Set-Cookie"]); n != 1 {
				t.Errorf("%d Set-Cookie headers, want exactly one", n)
			}
			if tokenAfterSave == "" || br.cookie.Value != tokenAfterSave {
				t.Errorf("Token() after Save is not the cookie sent")
			}
			res = br.do("GET", "/twice")
			if n := len(res.Header["Set-Cookie"]); name == "cookie" && n != 1 {
				t.Errorf("a cookie session saved twice before the header sent %d Set-Cookie headers, want one", n)
			}
			if got := res.Header.Values("Cache-Control"); len(got) > 1 {
				t.Errorf("Cache-Control %q: a directive given twice", got)
			}
			check := &browser{t: t, h: routes(m, standardActs), cookie: br.cookie}
			if got := body(check.do("GET", "/read")); !strings.Contains(got, "name=after save visits=2 ") {
				t.Errorf("a change after an explicit Save, before the header: %q", got)
			}
		})
	}
}

// TestSaveAfterHeader saves explicitly once the header is out, as a
// streaming handler does.
func TestSaveAfterHeader(t *testing.T) {
	tests := []struct {
		name       string
		backend    string // "memory" or "cookie"
		existing   bool   // the request carries a stored session
		act        func(s *sessions.Session[profile])
		wantErr    bool   // ErrHeaderWritten
		wantVisits string // what the next request reads
	}{
		{"stored session changed", "memory", true, func(s *sessions.Session[profile]) { s.Update(func(p *profile) { p.Visits = 10 }) }, false, "visits=10 "},
		{"stored session changed through Data", "memory", true, func(s *sessions.Session[profile]) { s.Data().Visits = 11 }, false, "visits=11 "},
		{"new session", "memory", false, func(s *sessions.Session[profile]) { s.Data().Visits = 5 }, true, "visits=0 "},
		{"regenerated", "memory", true, func(s *sessions.Session[profile]) { s.Regenerate(); s.Data().Visits = 12 }, true, "visits=1 "},
		{"destroyed", "memory", true, func(s *sessions.Session[profile]) { s.Destroy() }, false, "visits=0 "},
		// The logout happens, though the flash message cannot be kept.
		{"destroyed, then a new value", "memory", true, func(s *sessions.Session[profile]) { s.Destroy(); s.Data().Name = "bye" }, true, "name= visits=0 "},
		{"persistence changed", "memory", true, func(s *sessions.Session[profile]) { s.SetPersistent(true) }, true, "visits=1 "},
		{"nothing changed", "memory", true, func(*sessions.Session[profile]) {}, false, "visits=1 "},
		{"cookie session changed", "cookie", true, func(s *sessions.Session[profile]) { s.Data().Visits = 13 }, true, "visits=1 "},
		{"cookie session destroyed", "cookie", true, func(s *sessions.Session[profile]) { s.Destroy() }, true, "visits=1 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memory.New()
			defer store.Close()
			var b sessions.Backend = store
			if tt.backend == "cookie" {
				b = newCookieBackend()
			}
			var logs strings.Builder
			m := sessions.New[profile](b, sessions.WithLogger(newTextLogger(&logs)))
			var saveErr error
			streaming := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := m.Get(r)
				if err != nil {
					t.Error(err)
					return
				}
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				tt.act(s)
				saveErr = s.Save(r.Context())
			}))
			br := &browser{t: t, h: routes(m, standardActs)}
			if tt.existing {
				br.do("GET", "/visit")
			}
			records := store.Len()
			br.h = streaming
			if res := br.do("GET", "/"); len(res.Header["Set-Cookie"]) != 0 {
				t.Errorf("Set-Cookie %q after the header", res.Header["Set-Cookie"])
			}
			if tt.wantErr != errors.Is(saveErr, sessions.ErrHeaderWritten) {
				t.Errorf("Save = %v, want ErrHeaderWritten: %t", saveErr, tt.wantErr)
			}
			if !tt.wantErr && saveErr != nil {
				t.Errorf("Save = %v", saveErr)
			}
			if tt.wantErr && store.Len() != records && tt.name != "destroyed, then a new value" {
				t.Errorf("a refused Save left %d records, %d before", store.Len(), records)
			}
			if warned := strings.Contains(logs.String(), "not saved"); warned != tt.wantErr {
				t.Errorf("warning about unsaved changes: %t, want %t: %q", warned, tt.wantErr, logs.String())
			}
			br.h = routes(m, standardActs)
			if got := body(br.do("GET", "/read")); !strings.Contains(got, tt.wantVisits) {
				t.Errorf("the next request reads %q, want %q", got, tt.wantVisits)
			}
		})
	}
}

// TestSaveAfterHijack saves a stored session from a hijacked connection,
// as a WebSocket handler does while the socket is open.
func TestSaveAfterHijack(t *testing.T) {
	store := memory.New()
	defer store.Close()
	var logs strings.Builder
	m := sessions.New[profile](store, sessions.WithLogger(newTextLogger(&logs)))
	var saveErrs []error
	done := make(chan struct{})
	mw := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			t.Error(err)
			return
		}
		if r.URL.Path != "/ws" {
			s.Update(func(p *profile) { p.Visits++ })
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		for range 3 { // three messages, each saved at once
			s.Update(func(p *profile) { p.Visits++ })
			saveErrs = append(saveErrs, s.Save(r.Context()))
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		buf.Flush()
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mw.ServeHTTP(w, r)
		if r.URL.Path == "/ws" {
			close(done)
		}
	}))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cookie := res.Cookies()[0]
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nCookie: " + cookie.Name + "=" + cookie.Value + "\r\n\r\n"))
	if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
		t.Fatal(err)
	}
	<-done
	if diff := cmp.Diff([]error{nil, nil, nil}, saveErrs, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
		t.Errorf("Save errors (-want +got):\n%s", diff)
	}
	if strings.Contains(logs.String(), "not saved") {
		t.Errorf("a warning although every change was saved: %q", logs.String())
	}
	br := &browser{t: t, h: routes(m, standardActs), cookie: cookie}
	if got := body(br.do("GET", "/read")); !strings.Contains(got, "visits=4 ") {
		t.Errorf("after three saved messages: %q, want 4 visits", got)
	}
}

func TestOpen(t *testing.T) {
	store := memory.New()
	defer store.Close()
	for name, b := range map[string]sessions.Backend{"memory": store, "cookie": newCookieBackend()} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m := sessions.New[profile](b)
			s, err := m.Open(ctx, "")
			if err != nil || !s.IsNew() || s.Token() != "" {
				t.Fatalf("Open(\"\") = new %t, token %q, %v", s.IsNew(), s.Token(), err)
			}
			s.Update(func(p *profile) { p.Name = "job" })
			s.SetOwner("ann")
			if err := s.Save(ctx); err != nil {
				t.Fatal(err)
			}
			token := s.Token()
			if token == "" {
				t.Fatal("no token after Save")
			}
			// A request with the token sees what Open saved.
			br := &browser{t: t, h: routes(m, standardActs), cookie: &http.Cookie{Name: sessions.DefaultHostCookieName, Value: token}}
			if got := body(br.do("GET", "/visit")); !strings.Contains(got, "name=job visits=1 ") {
				t.Errorf("a request with Open's token: %q", got)
			}
			// Open finds what the request saved, and saves again.
			s2, err := m.Open(ctx, br.cookie.Value)
			if err != nil || s2.IsNew() || s2.Value().Visits != 1 || s2.Owner() != "ann" {
				t.Fatalf("Open(token) = new %t, %+v, owner %q, %v", s2.IsNew(), s2.Value(), s2.Owner(), err)
			}
			s2.Update(func(p *profile) { p.Visits += 10 })
			if err := s2.Save(ctx); err != nil {
				t.Fatal(err)
			}
			s2.Update(func(p *profile) { p.Visits++ })
			if err := s2.Save(ctx); err != nil {
				t.Fatalf("a second Save: %v", err)
			}
			s3, err := m.Open(ctx, s2.Token())
			if err != nil || s3.Value().Visits != 12 {
				t.Errorf("after two Saves: %+v, %v", s3.Value(), err)
			}
			// Garbage gives a new session.
			if s4, err := m.Open(ctx, "garbage;\r\n"); err != nil || !s4.IsNew() {
				t.Errorf("Open(garbage) = new %t, %v", s4.IsNew(), err)
			}
		})
	}
}

// flashed is a session type with flash messages.
type flashed struct {
	User  string
	Flash sessions.Flashes[string]
}

func TestFlashes(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	m := newManager[flashed](clock, fb)
	var popped []string
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			t.Error(err)
			return
		}
		switch r.URL.Path {
		case "/save":
			s.Data().User = "ann"
			s.Data().Flash.Add("saved")
			s.Data().Flash.Add("and sent")
		default:
			popped = s.Data().Flash.Pop()
		}
	}))
	br := &browser{t: t, h: h}
	br.do("GET", "/save")
	writes := fb.count("Write")
	br.do("GET", "/")
	if diff := cmp.Diff([]string{"saved", "and sent"}, popped); diff != "" {
		t.Errorf("first page (-want +got):\n%s", diff)
	}
	if fb.count("Write") != writes+1 {
		t.Errorf("popping messages saved %d times, want once", fb.count("Write")-writes)
	}
	br.do("GET", "/")
	if popped != nil {
		t.Errorf("second page popped %q, want nothing", popped)
	}
	if fb.count("Write") != writes+1 {
		t.Errorf("popping an empty list saved the session")
	}
}

// TestRepeatedSavesWithConflicts saves one session again and again while
// another writer changes it between the saves, as a long-lived socket's
// session meets the page requests of the same user. Each save must replay
// only its own new updates, on what the last save stored.
func TestRepeatedSavesWithConflicts(t *testing.T) {
	store := memory.New()
	defer store.Close()
	ctx := context.Background()
	m := sessions.New[profile](store)
	s, err := m.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	s.Update(func(p *profile) { p.Name = "socket" })
	if err := s.Save(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		other, err := m.Open(ctx, s.Token())
		if err != nil {
			t.Fatal(err)
		}
		other.Update(func(p *profile) { p.Visits++ })
		if err := other.Save(ctx); err != nil {
			t.Fatalf("the other writer, round %d: %v", i, err)
		}
		s.Update(func(p *profile) { p.Roles = append(p.Roles, "r") })
		if err := s.Save(ctx); err != nil {
			t.Fatalf("the long-lived session, round %d: %v", i, err)
		}
	}
	final, err := m.Open(ctx, s.Token())
	if err != nil {
		t.Fatal(err)
	}
	if v := final.Value(); v.Visits != 3 || len(v.Roles) != 3 || v.Name != "socket" {
		t.Errorf("after three rounds: %+v, want 3 visits and 3 roles", v)
	}
}

// landsThenFails is a memory backend whose next conditional write lands
// and then reports an error, as a write whose reply is lost would.
type landsThenFails struct {
	*memory.Backend
	fail atomic.Bool
}

func (b *landsThenFails) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	token, err := b.Backend.WriteIfVersion(ctx, w)
	if err == nil && b.fail.CompareAndSwap(true, false) {
		return "", errors.New("connection reset")
	}
	return token, err
}

// TestSaveAfterUnknownOutcome fails a save whose write landed: a second
// save must not replay the first one's updates on top of it, which would
// apply them twice.
func TestSaveAfterUnknownOutcome(t *testing.T) {
	store := memory.New()
	defer store.Close()
	b := &landsThenFails{Backend: store}
	m := sessions.New[profile](b, sessions.WithLogger(newTextLogger(io.Discard)))
	var saveErr error
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			t.Error(err)
			return
		}
		s.Update(func(p *profile) { p.Visits++ })
		if r.URL.Path == "/save" {
			b.fail.Store(true)
			saveErr = s.Save(r.Context())
		}
	}))
	br := &browser{t: t, h: h}
	br.do("GET", "/")
	res := br.do("GET", "/save")
	if saveErr == nil || res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("Save = %v, then status %d; want an error, then the error handler's 500", saveErr, res.StatusCode)
	}
	check := &browser{t: t, h: routes(m, standardActs), cookie: br.cookie}
	if got := body(check.do("GET", "/read")); !strings.Contains(got, "visits=2 ") {
		t.Errorf("after a save that landed and failed: %q, want 2 visits, not 3", got)
	}
}

// touchCounting is a memory backend that counts touches and writes.
type touchCounting struct {
	*memory.Backend
	touches, writes atomic.Int64
}

func (b *touchCounting) Touch(ctx context.Context, token string, ttl time.Duration) error {
	b.touches.Add(1)
	return b.Backend.Touch(ctx, token, ttl)
}

func (b *touchCounting) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	b.writes.Add(1)
	return b.Backend.WriteIfVersion(ctx, w)
}

// TestSaveLeavesMiddlewareNothing saves explicitly before the header, with
// an idle timeout: the middleware neither writes nor touches after it.
func TestSaveLeavesMiddlewareNothing(t *testing.T) {
	store := memory.New()
	defer store.Close()
	b := &touchCounting{Backend: store}
	m := sessions.New[profile](b, sessions.WithIdleTimeout(time.Hour))
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			t.Error(err)
			return
		}
		s.Update(func(p *profile) { p.Visits++ })
		if err := s.Save(r.Context()); err != nil {
			t.Error(err)
		}
		w.Write([]byte("ok"))
	}))
	br := &browser{t: t, h: h}
	br.do("GET", "/")
	b.writes.Store(0)
	br.do("GET", "/")
	if w, tc := b.writes.Load(), b.touches.Load(); w != 1 || tc != 0 {
		t.Errorf("a request that saved explicitly: %d writes, %d touches; want 1 and 0", w, tc)
	}
}

// TestCookieSaveAfterHeader checks what README and ErrHeaderWritten say of
// the cookie backend once the header is out: a Save with nothing to store
// returns nil, and one with a change fails with ErrHeaderWritten.
func TestCookieSaveAfterHeader(t *testing.T) {
	m := sessions.New[profile](newCookieBackend())
	var readOnly, changed error
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			t.Fatal(err)
		}
		w.WriteHeader(http.StatusOK)
		readOnly = s.Save(r.Context())
		s.Data().Visits++
		changed = s.Save(r.Context())
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "https://example.com/", nil))
	if readOnly != nil {
		t.Errorf("read-only Save after the header: %v, want nil", readOnly)
	}
	if !errors.Is(changed, sessions.ErrHeaderWritten) {
		t.Errorf("Save of a change after the header: %v, want ErrHeaderWritten", changed)
	}
}

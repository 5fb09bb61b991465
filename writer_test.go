package sessions_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

func TestFlushErrorReportsFailedSave(t *testing.T) {
	for name, fail := range map[string]bool{"save fails": true, "save succeeds": false} {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			fb := newFakeBackend(clock)
			if fail {
				fb.failWith("Write", errors.New("backend down"))
			}
			m := newManager[profile](clock, fb, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				http.Error(w, "sorry", http.StatusServiceUnavailable)
			}))
			var flushErr error
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, _ := m.Get(r)
				if s != nil {
					s.Data().Visits++
				}
				flushErr = http.NewResponseController(w).Flush()
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if fail != errors.Is(flushErr, sessions.ErrNotSaved) {
				t.Errorf("ResponseController.Flush() = %v; want ErrNotSaved: %t", flushErr, fail)
			}
			if !fail && (flushErr != nil || !rec.Flushed || len(rec.Result().Cookies()) != 1) {
				t.Errorf("Flush() = %v, flushed %t, cookies %d", flushErr, rec.Flushed, len(rec.Result().Cookies()))
			}
		})
	}
}

// readerFromRecorder is a recorder that, like the server's own writer,
// takes a body from a reader itself (with sendfile, on a real connection).
type readerFromRecorder struct {
	*httptest.ResponseRecorder
	readFroms int
	cookieSet bool
}

func (w *readerFromRecorder) ReadFrom(r io.Reader) (int64, error) {
	w.readFroms++
	w.cookieSet = len(w.Header()["Set-Cookie"]) > 0
	return io.Copy(w.ResponseRecorder, r)
}

func TestReadFromPassesThrough(t *testing.T) {
	m := sessions.New[profile](newCookieBackend())
	h := app(m, visit)
	h = m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := m.Get(r)
		s.Data().Visits++
		// A reader without WriteTo, as an *os.File falls back to when
		// the destination is not a socket, so that io.Copy asks w.
		if _, err := io.Copy(w, struct{ io.Reader }{strings.NewReader("a body")}); err != nil {
			t.Error(err)
		}
	}))
	rec := &readerFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.readFroms != 1 || !rec.cookieSet {
		t.Errorf("the server writer's ReadFrom ran %d times, after the cookie was set: %t; want once, true", rec.readFroms, rec.cookieSet)
	}
	if rec.Body.String() != "a body" {
		t.Errorf("body %q", rec.Body)
	}
	// Without a ReadFrom below, the copy still works.
	plain := httptest.NewRecorder()
	h.ServeHTTP(plain, httptest.NewRequest("GET", "/", nil))
	if plain.Body.String() != "a body" || len(plain.Result().Cookies()) != 1 {
		t.Errorf("through a plain writer: body %q, %d cookies", plain.Body, len(plain.Result().Cookies()))
	}
}

// TestHijackSavesNothing hijacks the connection before the header, once
// directly and once through a ResponseController: no cookie can be sent,
// so the backend must not be written to, and the lost change is logged.
func TestHijackSavesNothing(t *testing.T) {
	hijackers := map[string]func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error){
		"direct": func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) { return w.(http.Hijacker).Hijack() },
		"ResponseController": func(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
			return http.NewResponseController(w).Hijack()
		},
	}
	for name, hijack := range hijackers {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			fb := newFakeBackend(clock)
			var logs strings.Builder
			m := newManager[profile](clock, fb, sessions.WithLogger(newTextLogger(&logs)))
			done := make(chan struct{}) // the middleware has returned
			mw := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, _ := m.Get(r)
				s.Data().Visits++
				conn, buf, err := hijack(w)
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
				buf.Flush()
			}))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(done)
				mw.ServeHTTP(w, r)
			}))
			defer srv.Close()
			res, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			<-done
			if n := fb.count("Write"); n != 0 {
				t.Errorf("%d backend writes for a session whose cookie could never be sent", n)
			}
			if len(res.Cookies()) != 0 {
				t.Errorf("cookies %v on a hijacked connection", res.Cookies())
			}
			if !strings.Contains(logs.String(), "not saved") {
				t.Errorf("no warning that the change was not saved: %q", logs.String())
			}
		})
	}
}

// TestVaryNotShared changes one response's Vary header in place, after the
// middleware set it: another response must not see the change.
func TestVaryNotShared(t *testing.T) {
	m := sessions.New[profile](newCookieBackend())
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := m.Get(r)
		s.Data().Visits++
		w.WriteHeader(http.StatusOK)
		if r.URL.Path == "/meddle" {
			w.Header()["Vary"][0] = "X-Meddled"
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/meddle", nil))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Header().Get("Vary"); got != "Cookie" {
		t.Errorf("Vary = %q after another response changed its own", got)
	}
}

// TestUpgradeCarriesCookie upgrades a connection the way WebSocket
// libraries such as coder/websocket do: the 101 header is written, then the
// connection hijacked. The header is the response header, so the session
// is saved and its cookie rides on the 101.
func TestUpgradeCarriesCookie(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	m := newManager[profile](clock, fb)
	srv := httptest.NewServer(m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			t.Error(err)
			return
		}
		s.Data().Visits++
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "test")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || len(res.Cookies()) != 1 {
		t.Errorf("status %d, cookies %v; want 101 with the session cookie", res.StatusCode, res.Cookies())
	}
	if n := fb.count("Write"); n != 1 {
		t.Errorf("%d backend writes, want 1", n)
	}
}

// TestEarlyHintsCarryNoCookie sends 103 Early Hints before the response:
// they pass through, without the session cookie, which goes out with the
// response itself, and the session is saved.
func TestEarlyHintsCarryNoCookie(t *testing.T) {
	m := sessions.New[profile](memory.New())
	srv := httptest.NewServer(m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		s, _ := m.Get(r)
		s.Update(func(p *profile) { p.Visits++ })
		io.WriteString(w, "ok")
	})))
	defer srv.Close()
	var hints []http.Header
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
		hints = append(hints, http.Header(header).Clone())
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", srv.URL, nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(hints) != 1 || hints[0].Get("Link") == "" || hints[0].Get("Set-Cookie") != "" {
		t.Errorf("early hints %v; want one, with the Link and no cookie", hints)
	}
	if res.StatusCode != http.StatusOK || len(res.Cookies()) != 1 {
		t.Errorf("the response: status %d, cookies %v; want 200 and the session cookie", res.StatusCode, res.Cookies())
	}
}

// plainWriter is a ResponseWriter with no optional interface at all.
type plainWriter struct {
	h    http.Header
	code int
	body strings.Builder
}

func (w *plainWriter) Header() http.Header         { return w.h }
func (w *plainWriter) Write(b []byte) (int, error) { return w.body.Write(b) }
func (w *plainWriter) WriteHeader(code int)        { w.code = code }

// unwrappingWriter is another middleware's wrapper: it has no optional
// interface of its own, and reaches the writer beneath through Unwrap.
type unwrappingWriter struct{ http.ResponseWriter }

func (w unwrappingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestWriterExposesWhatItWraps checks that the handler's writer offers
// exactly the optional interfaces of the writer the middleware wraps: a
// handler that asks for a Flusher or a Hijacker must not get one whose
// Flush does nothing or whose Hijack fails.
func TestWriterExposesWhatItWraps(t *testing.T) {
	type offers struct{ Flusher, Hijacker, ReaderFrom, Unwrap bool }
	probe := func(w http.ResponseWriter) offers {
		_, f := w.(http.Flusher)
		_, h := w.(http.Hijacker)
		_, r := w.(io.ReaderFrom)
		_, u := w.(interface{ Unwrap() http.ResponseWriter })
		return offers{f, h, r, u}
	}
	m := sessions.New[profile](memory.New())
	var got offers
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = probe(w) }))
	for _, tt := range []struct {
		name string
		w    func() http.ResponseWriter
	}{
		{"no optional interface", func() http.ResponseWriter { return &plainWriter{h: http.Header{}} }},
		{"recorder", func() http.ResponseWriter { return httptest.NewRecorder() }},
		{"wrapper around a recorder", func() http.ResponseWriter { return unwrappingWriter{httptest.NewRecorder()} }},
		{"wrapper around nothing", func() http.ResponseWriter { return unwrappingWriter{&plainWriter{h: http.Header{}}} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w()
			h.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
			want := probe(w)
			// Flush and Hijack count through an Unwrap chain, as
			// ResponseController finds them; Unwrap is always there.
			want.Flusher = want.Flusher || http.NewResponseController(w).Flush() == nil
			want.Unwrap = true
			if got != want {
				t.Errorf("the handler's writer offers %+v, want %+v", got, want)
			}
		})
	}
	t.Run("server", func(t *testing.T) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		res, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if want := (offers{true, true, true, true}); got != want {
			t.Errorf("behind net/http's writer the handler's offers %+v, want %+v", got, want)
		}
	})
}

// TestLoadFailureReachesTheErrorHandler checks the rule for a request
// whose lazy load failed: a handler that goes on as if it had loaded is
// answered by the error handler, and one that answers with a 5xx of its
// own keeps that answer.
func TestLoadFailureReachesTheErrorHandler(t *testing.T) {
	for _, tt := range []struct {
		name     string
		handler  func(w http.ResponseWriter, err error)
		wantCode int
		wantBody string
	}{
		{"ignores the error and writes", func(w http.ResponseWriter, err error) { io.WriteString(w, "welcome") }, http.StatusTeapot, "backend down"},
		{"ignores the error and answers 404", func(w http.ResponseWriter, err error) { http.NotFound(w, nil) }, http.StatusTeapot, "backend down"},
		{"ignores the error and writes nothing", func(w http.ResponseWriter, err error) {}, http.StatusTeapot, "backend down"},
		{"answers with its own 503", func(w http.ResponseWriter, err error) {
			http.Error(w, "own answer", http.StatusServiceUnavailable)
		}, http.StatusServiceUnavailable, "own answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			fb := newFakeBackend(clock)
			m := newManager[profile](clock, fb, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				w.WriteHeader(http.StatusTeapot)
				io.WriteString(w, "handled: "+err.Error())
			}))
			br := &browser{t: t, h: routes(m, standardActs)}
			br.do("GET", "/visit")
			fb.failWith("Read", errors.New("backend down"))
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := m.Get(r)
				if err == nil {
					t.Error("Get succeeded on a failing backend")
				}
				tt.handler(w, err)
			}))
			req := httptest.NewRequest("GET", "https://example.com/", nil)
			req.AddCookie(&http.Cookie{Name: br.cookie.Name, Value: br.cookie.Value})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("answer %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}

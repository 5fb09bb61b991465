package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
)

// show renders what a handler sees of a session.
func show(s *sessions.Session[profile]) string {
	d := s.Data()
	return fmt.Sprintf("name=%s visits=%d roles=%v prefs=%v new=%t", d.Name, d.Visits, d.Roles, d.Prefs, s.IsNew())
}

// app runs act on the request's session, then writes show's rendering.
func app(m *sessions.Manager[profile], act func(s *sessions.Session[profile])) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, "Get: "+err.Error(), http.StatusInternalServerError)
			return
		}
		act(s)
		fmt.Fprint(w, show(s))
	}))
}

// routes dispatches on the request path, so that one browser can take
// several actions on one manager.
func routes(m *sessions.Manager[profile], acts map[string]func(s *sessions.Session[profile])) http.Handler {
	mux := http.NewServeMux()
	for path, act := range acts {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			s, err := m.Get(r)
			if err != nil {
				http.Error(w, "Get: "+err.Error(), http.StatusInternalServerError)
				return
			}
			act(s)
			w.Header().Set("X-Persistent", strconv.FormatBool(s.Persistent()))
			fmt.Fprint(w, show(s))
		})
	}
	return m.Middleware(mux)
}

func read(*sessions.Session[profile])    {}
func visit(s *sessions.Session[profile]) { s.Data().Visits++ }

var standardActs = map[string]func(s *sessions.Session[profile]){
	"/read":     read,
	"/visit":    visit,
	"/role":     func(s *sessions.Session[profile]) { s.Data().Roles = append(s.Data().Roles, "admin") },
	"/pref":     func(s *sessions.Session[profile]) { setPref(s.Data(), "theme", "dark") },
	"/login":    func(s *sessions.Session[profile]) { s.Regenerate(); s.Data().Name = "ann" },
	"/logout":   func(s *sessions.Session[profile]) { s.Destroy() },
	"/flash":    func(s *sessions.Session[profile]) { s.Destroy(); s.Data().Name = "bye" },
	"/remember": func(s *sessions.Session[profile]) { s.SetPersistent(true) },
	"/forget":   func(s *sessions.Session[profile]) { s.SetPersistent(false) },
}

func setPref(p *profile, k, v string) {
	if p.Prefs == nil {
		p.Prefs = map[string]string{}
	}
	p.Prefs[k] = v
}

// backends lists the backends most behaviour tests run on.
func backends(clock *fakeClock) map[string]sessions.Backend {
	return map[string]sessions.Backend{
		"cookie":  newCookieBackend(),
		"fake":    newFakeBackend(clock),
		"toucher": fakeToucher{newFakeBackend(clock)},
	}
}

func TestRoundTripAndChangeDetection(t *testing.T) {
	steps := []struct {
		path  string
		want  string
		saves bool // the step changes the session
	}{
		{"/read", "name= visits=0 roles=[] prefs=map[] new=true", false},
		{"/read", "name= visits=0 roles=[] prefs=map[] new=true", false},
		{"/visit", "name= visits=1 roles=[] prefs=map[] new=true", true},
		{"/read", "name= visits=1 roles=[] prefs=map[] new=false", false},
		{"/visit", "name= visits=2 roles=[] prefs=map[] new=false", true},
		{"/role", "name= visits=2 roles=[admin] prefs=map[] new=false", true},
		{"/pref", "name= visits=2 roles=[admin] prefs=map[theme:dark] new=false", true},
		{"/pref", "name= visits=2 roles=[admin] prefs=map[theme:dark] new=false", false},
		{"/read", "name= visits=2 roles=[admin] prefs=map[theme:dark] new=false", false},
	}
	for name, b := range backends(newFakeClock()) {
		for _, codec := range []struct {
			name string
			c    sessions.Codec
		}{{"json", sessions.JSON}, {"msgpack", sessions.Msgpack}} {
			t.Run(name+"/"+codec.name, func(t *testing.T) {
				m := sessions.New[profile](b, sessions.WithCodec(codec.c))
				br := &browser{t: t, h: routes(m, standardActs)}
				for i, st := range steps {
					res := br.do("GET", st.path)
					if got := body(res); got != st.want {
						t.Errorf("step %d %s: got %q, want %q", i, st.path, got, st.want)
					}
					// A save sends the cookie when its value changes: always
					// for the cookie backend; for the others, only for a new
					// session, since a stored one keeps its token.
					wantCookie := st.saves && (name == "cookie" || strings.HasSuffix(st.want, "new=true"))
					if got := len(res.Header["Set-Cookie"]) > 0; got != wantCookie {
						t.Errorf("step %d %s: Set-Cookie sent = %t, want %t", i, st.path, got, wantCookie)
					}
				}
			})
		}
	}
}

func TestBackendCalls(t *testing.T) {
	tests := []struct {
		name string
		// before prepares the browser's session; nil for none.
		before    string
		handler   func(m *sessions.Manager[profile]) http.Handler
		wantCalls map[string]int
		wantVary  bool
	}{
		{
			name: "handler never calls Get",
			handler: func(m *sessions.Manager[profile]) http.Handler {
				return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			},
			before:    "/visit",
			wantCalls: map[string]int{},
		},
		{
			name:      "read of an existing session",
			before:    "/visit",
			handler:   func(m *sessions.Manager[profile]) http.Handler { return app(m, read) },
			wantCalls: map[string]int{"Read": 1},
			wantVary:  true,
		},
		{
			name:      "change of an existing session",
			before:    "/visit",
			handler:   func(m *sessions.Manager[profile]) http.Handler { return app(m, visit) },
			wantCalls: map[string]int{"Read": 1, "Write": 1},
			wantVary:  true,
		},
		{
			name:      "new session left at its zero value",
			handler:   func(m *sessions.Manager[profile]) http.Handler { return app(m, read) },
			wantCalls: map[string]int{},
			wantVary:  true,
		},
		{
			name: "new session set back to its zero value",
			handler: func(m *sessions.Manager[profile]) http.Handler {
				return app(m, func(s *sessions.Session[profile]) { s.Data().Visits = 1; s.Data().Visits = 0 })
			},
			wantCalls: map[string]int{},
			wantVary:  true,
		},
		{
			name:   "Get twice in a request loads once",
			before: "/visit",
			handler: func(m *sessions.Manager[profile]) http.Handler {
				return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					s1, _ := m.Get(r)
					s2, _ := m.Get(r)
					if s1 != s2 {
						t.Errorf("two Gets returned different sessions")
					}
				}))
			},
			wantCalls: map[string]int{"Read": 1},
			wantVary:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			fb := newFakeBackend(clock)
			m := newManager[profile](clock, fb)
			br := &browser{t: t, h: routes(m, standardActs)}
			if tt.before != "" {
				br.do("GET", tt.before)
			}
			fb.calls = map[string]int{}
			br.h = tt.handler(m)
			res := br.do("GET", "/")
			if diff := cmp.Diff(tt.wantCalls, fb.calls); diff != "" {
				t.Errorf("backend calls (-want +got):\n%s", diff)
			}
			if got := res.Header.Get("Vary") == "Cookie"; got != tt.wantVary {
				t.Errorf("Vary: Cookie = %t, want %t", got, tt.wantVary)
			}
			if tt.wantCalls["Write"] == 0 && len(res.Header["Set-Cookie"]) > 0 {
				t.Errorf("Set-Cookie %q without a write", res.Header["Set-Cookie"])
			}
		})
	}
}

func TestGetOutsideMiddleware(t *testing.T) {
	m := sessions.New[profile](newCookieBackend())
	other := sessions.New[profile](newCookieBackend())
	var err error
	h := other.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, err = m.Get(r) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if !errors.Is(err, sessions.ErrNoMiddleware) {
		t.Errorf("Get through another manager's middleware: err = %v, want ErrNoMiddleware", err)
	}
	if _, err := m.Get(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, sessions.ErrNoMiddleware) {
		t.Errorf("Get without middleware: err = %v, want ErrNoMiddleware", err)
	}
}

func TestDefaultCookieAttributes(t *testing.T) {
	m := sessions.New[profile](newCookieBackend())
	res := (&browser{t: t, h: app(m, visit)}).do("GET", "/")
	raw := res.Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-session=", "; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax"} {
		if !strings.Contains(raw, want) {
			t.Errorf("Set-Cookie %q lacks %q", raw, want)
		}
	}
	for _, unwanted := range []string{"Max-Age", "Expires", "Domain"} {
		if strings.Contains(raw, unwanted) {
			t.Errorf("Set-Cookie %q has %s; the default is a host-only browser-session cookie", raw, unwanted)
		}
	}
	if got := res.Header.Get("Cache-Control"); got != "" && !strings.Contains(got, "no-cache") {
		t.Errorf("Cache-Control = %q", got)
	}
}

func TestCookieOptions(t *testing.T) {
	m := sessions.New[profile](newCookieBackend(),
		sessions.WithCookieName("sid"), sessions.WithCookiePath("/app"), sessions.WithCookieDomain("example.com"),
		sessions.WithCookieSameSite(http.SameSiteStrictMode), sessions.WithCookiePartitioned(true))
	raw := (&browser{t: t, h: app(m, visit)}).do("GET", "/").Header.Get("Set-Cookie")
	for _, want := range []string{"sid=", "; Path=/app", "; Domain=example.com", "; SameSite=Strict", "; Partitioned", "; Secure"} {
		if !strings.Contains(raw, want) {
			t.Errorf("Set-Cookie %q lacks %q", raw, want)
		}
	}
	insecure := sessions.New[profile](newCookieBackend(), sessions.WithCookieSecure(false))
	if raw := (&browser{t: t, h: app(insecure, visit)}).do("GET", "/").Header.Get("Set-Cookie"); strings.Contains(raw, "Secure") {
		t.Errorf("WithSecure(false): Set-Cookie %q is Secure", raw)
	}
}

func TestConfigurationPanics(t *testing.T) {
	tests := map[string][]sessions.Option{
		"__Host- with Domain":              {sessions.WithCookieName("__Host-s"), sessions.WithCookieDomain("example.com")},
		"__Host- with Path":                {sessions.WithCookieName("__Host-s"), sessions.WithCookiePath("/app")},
		"__Host- without Secure":           {sessions.WithCookieName("__Host-s"), sessions.WithCookieSecure(false)},
		"__Secure- without Secure":         {sessions.WithCookieName("__Secure-s"), sessions.WithCookieSecure(false)},
		"SameSite=None, not Secure":        {sessions.WithCookieSameSite(http.SameSiteNoneMode), sessions.WithCookieSecure(false)},
		"Partitioned, not Secure":          {sessions.WithCookiePartitioned(true), sessions.WithCookieSecure(false)},
		"cookie name with separator":       {sessions.WithCookieName("a;b")},
		"empty cookie name":                {sessions.WithCookieName("")},
		"Path with semicolon":              {sessions.WithCookiePath("/;Domain=evil.com")},
		"__HOST- in capitals, with Domain": {sessions.WithCookieName("__HOST-s"), sessions.WithCookieDomain("example.com")},
		"__host- in lower case, Path":      {sessions.WithCookieName("__host-s"), sessions.WithCookiePath("/app")},
		"__SeCuRe- without Secure":         {sessions.WithCookieName("__SeCuRe-s"), sessions.WithCookieSecure(false)},
		"Path not starting with /":         {sessions.WithCookiePath("app")},
		"empty Path":                       {sessions.WithCookiePath("")},
		"Path with a control character":    {sessions.WithCookiePath("/a\x01b")},
		"Path with DEL":                    {sessions.WithCookiePath("/a\x7fb")},
		"Path with CR LF":                  {sessions.WithCookiePath("/\r\nX: y")},
		"Path of 1025 bytes":               {sessions.WithCookiePath("/" + strings.Repeat("a", 1024))},
		"Domain with a control character":  {sessions.WithCookieDomain("example.com\x00")},
		"Domain with a space":              {sessions.WithCookieDomain("example.com x")},
		"Domain with semicolon":            {sessions.WithCookieDomain("example.com;Secure")},
		"Domain of 1025 bytes":             {sessions.WithCookieDomain(strings.Repeat("a", 1025))},
		"zero lifetime":                    {sessions.WithLifetime(0)},
		"negative lifetime":                {sessions.WithLifetime(-time.Hour)},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("New did not panic")
				}
			}()
			sessions.New[profile](newCookieBackend(), opts...)
		})
	}
	// Valid configurations must not panic: __Host- in any case, and the
	// longest attributes allowed.
	sessions.New[profile](newCookieBackend(), sessions.WithCookieName("__Host-s"))
	sessions.New[profile](newCookieBackend(), sessions.WithCookieName("__HOST-s"))
	sessions.New[profile](newCookieBackend(), sessions.WithCookiePath("/"+strings.Repeat("a", 1023)), sessions.WithCookieDomain(strings.Repeat("a", 1024)))
}

func TestLifetimeAndPersistence(t *testing.T) {
	tests := []struct {
		name       string
		opts       []sessions.Option
		path       string
		wantMaxAge int
	}{
		{"default is a browser-session cookie", nil, "/visit", 0},
		{"a lifetime alone keeps a browser-session cookie", []sessions.Option{sessions.WithLifetime(time.Hour)}, "/visit", 0},
		{"persistent cookies end with the lifetime", []sessions.Option{sessions.WithPersistent(true), sessions.WithLifetime(time.Hour)}, "/visit", 3600},
		{"Max-Age is capped at 400 days", []sessions.Option{sessions.WithPersistent(true), sessions.WithLifetime(1000 * 24 * time.Hour)}, "/visit", 400 * 24 * 3600},
		{"remember me with the default lifetime", nil, "/remember", int(sessions.DefaultLifetime / time.Second)},
		{"forget me on a persistent manager", []sessions.Option{sessions.WithPersistent(true), sessions.WithLifetime(time.Hour)}, "/forget", 0},
		{"WithPersistent(false) after true", []sessions.Option{sessions.WithPersistent(true), sessions.WithPersistent(false)}, "/visit", 0},
	}
	for _, tt := range tests {
		for _, backend := range []string{"cookie", "server-side"} {
			t.Run(tt.name+"/"+backend, func(t *testing.T) {
				clock := newFakeClock()
				b := newCookieBackend()
				if backend == "server-side" {
					// Its token stays the same, so the cookie is sent again
					// only when its kind changes.
					b = newFakeBackend(clock)
				}
				m := newManager[profile](clock, b, tt.opts...)
				br := &browser{t: t, h: routes(m, standardActs)}
				br.do("GET", "/visit")
				clock.Advance(time.Second)
				res := br.do("GET", tt.path)
				if br.cookie == nil {
					t.Fatal("no cookie")
				}
				wantPersistent := tt.wantMaxAge > 0
				if got := strings.Contains(res.Header.Get("X-Persistent"), "true"); got != wantPersistent {
					t.Errorf("Session.Persistent() = %t, want %t", got, wantPersistent)
				}
				// The choice sticks: a later save keeps the same kind of cookie.
				br.do("GET", "/visit")
				// Max-Age counts down to the end of the session's lifetime
				// from when the cookie was last sent: a second after the
				// session's creation, unless a server-side session kept
				// its token and its kind of cookie since.
				resent := backend == "cookie" || tt.path == "/remember" || tt.path == "/forget"
				want := tt.wantMaxAge
				if want > 0 && want < 400*24*3600 && resent {
					want -= 1
				}
				if br.cookie.MaxAge != want {
					t.Errorf("Max-Age = %d, want %d", br.cookie.MaxAge, want)
				}
			})
		}
	}
}

func TestExpiryEnforcedByServer(t *testing.T) {
	tests := []struct {
		name    string
		opts    []sessions.Option
		advance time.Duration
		wantNew bool
	}{
		{"within lifetime", []sessions.Option{sessions.WithLifetime(time.Hour)}, 59 * time.Minute, false},
		{"lifetime over", []sessions.Option{sessions.WithLifetime(time.Hour)}, time.Hour, true},
		{"within the default lifetime", nil, sessions.DefaultLifetime - time.Minute, false},
		{"past the default lifetime", nil, sessions.DefaultLifetime, true},
		{"a persistent cookie within its lifetime", []sessions.Option{sessions.WithPersistent(true), sessions.WithLifetime(time.Hour)}, 59 * time.Minute, false},
		{"a persistent cookie past its lifetime", []sessions.Option{sessions.WithPersistent(true), sessions.WithLifetime(time.Hour)}, time.Hour, true},
		{"within idle timeout", []sessions.Option{sessions.WithIdleTimeout(10 * time.Minute)}, 9 * time.Minute, false},
		{"idle timeout and its hundredth not over", []sessions.Option{sessions.WithIdleTimeout(10 * time.Minute)}, 10*time.Minute + 5*time.Second, false},
		{"idle timeout and its hundredth over", []sessions.Option{sessions.WithIdleTimeout(10 * time.Minute)}, 10*time.Minute + 6*time.Second, true},
	}
	for _, tt := range tests {
		for name, b := range backends(newFakeClock()) {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				clock := newFakeClock()
				if fb, ok := b.(*fakeBackend); ok {
					fb.clock = clock
				}
				if ft, ok := b.(fakeToucher); ok {
					ft.clock = clock
				}
				m := newManager[profile](clock, b, tt.opts...)
				br := &browser{t: t, h: routes(m, standardActs)}
				br.do("GET", "/visit")
				replay := br.cookie
				clock.Advance(tt.advance)
				br.cookie = replay
				got := body(br.do("GET", "/read"))
				if isNew := strings.HasSuffix(got, "new=true"); isNew != tt.wantNew {
					t.Errorf("after %v: %q, want new=%t", tt.advance, got, tt.wantNew)
				}
			})
		}
	}
}

func TestIdleTimeoutSlides(t *testing.T) {
	for name, b := range backends(newFakeClock()) {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			if fb, ok := b.(*fakeBackend); ok {
				fb.clock = clock
			}
			if ft, ok := b.(fakeToucher); ok {
				ft.clock = clock
			}
			m := newManager[profile](clock, b, sessions.WithLifetime(24*time.Hour), sessions.WithIdleTimeout(10*time.Minute))
			br := &browser{t: t, h: routes(m, standardActs)}
			br.do("GET", "/visit")
			for i := range 6 { // 48 minutes of activity, every 8 minutes
				clock.Advance(8 * time.Minute)
				if got := body(br.do("GET", "/read")); !strings.Contains(got, "visits=1 ") || strings.HasSuffix(got, "new=true") {
					t.Fatalf("read %d: %q; an active session expired", i, got)
				}
			}
			// An unused session ends between the idle timeout and the idle
			// timeout plus a hundredth of it.
			clock.Advance(10*time.Minute + 6*time.Second)
			if got := body(br.do("GET", "/read")); !strings.HasSuffix(got, "new=true") {
				t.Errorf("after 10 idle minutes and 6 s: %q, want a new session", got)
			}
		})
	}
}

func TestIdleRefreshWrites(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	ft := fakeToucher{newFakeBackend(clock)}
	rt := reportingToucher{fakeToucher{newFakeBackend(clock)}}
	idle := 100 * time.Second // rewrites are due after idle/100 = 1s
	for name, tt := range map[string]struct {
		b                      sessions.Backend
		calls                  func() map[string]int
		wantQuick, wantLater   map[string]int
		wantCookieQuick, later bool
	}{
		// The rewrite keeps the token the client holds, so it sends no
		// cookie either. Without versions, it reads the record again
		// first, so as not to bring back or undo what another request
		// saved meanwhile.
		"rewrite": {fb, func() map[string]int { return fb.calls },
			map[string]int{"Read": 1}, map[string]int{"Read": 2, "Write": 1}, false, false},
		// A Toucher that does not report its expiries cannot be touched
		// only when due: its records are rewritten, as often.
		"toucher that reports no expiry": {ft, func() map[string]int { return ft.calls },
			map[string]int{"Read": 1}, map[string]int{"Read": 2, "Write": 1}, false, false},
		"touch": {rt, func() map[string]int { return rt.calls },
			map[string]int{"Read": 1}, map[string]int{"Read": 1, "Touch": 1}, false, false},
	} {
		t.Run(name, func(t *testing.T) {
			m := newManager[profile](clock, tt.b, sessions.WithIdleTimeout(idle))
			br := &browser{t: t, h: routes(m, standardActs)}
			br.do("GET", "/visit")
			clear(tt.calls())
			res := br.do("GET", "/read")
			if diff := cmp.Diff(tt.wantQuick, tt.calls()); diff != "" {
				t.Errorf("read at once (-want +got):\n%s", diff)
			}
			if got := len(res.Cookies()) > 0; got != tt.wantCookieQuick {
				t.Errorf("read at once: Set-Cookie = %t", got)
			}
			clear(tt.calls())
			clock.Advance(2 * time.Second)
			res = br.do("GET", "/read")
			if diff := cmp.Diff(tt.wantLater, tt.calls()); diff != "" {
				t.Errorf("read 2s later (-want +got):\n%s", diff)
			}
			if got := len(res.Cookies()) > 0; got != tt.later {
				t.Errorf("read 2s later: Set-Cookie = %t", got)
			}
		})
	}
}

func TestDestroy(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	m := newManager[profile](clock, fb, sessions.WithCookiePath("/"), sessions.WithCookieDomain("example.com"))
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/login")
	stolen := br.cookie
	res := br.do("POST", "/logout")
	raw := res.Header.Get("Set-Cookie")
	for _, want := range []string{"session=;", "Max-Age=0", "Path=/", "Domain=example.com"} {
		if !strings.Contains(raw, want) {
			t.Errorf("logout Set-Cookie %q lacks %q", raw, want)
		}
	}
	if br.cookie != nil {
		t.Errorf("the browser kept the cookie")
	}
	if fb.len() != 0 {
		t.Errorf("%d records left after Destroy", fb.len())
	}
	br.cookie = stolen
	if got := body(br.do("GET", "/read")); !strings.HasSuffix(got, "new=true") {
		t.Errorf("replay after logout: %q, want a new session", got)
	}
}

func TestDestroyThenSet(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	m := newManager[profile](clock, fb)
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/login")
	old := br.cookie.Value
	br.do("POST", "/flash")
	if br.cookie == nil || br.cookie.Value == old {
		t.Fatalf("a value set after Destroy was not saved under a new ID")
	}
	if got := body(br.do("GET", "/read")); got != "name=bye visits=0 roles=[] prefs=map[] new=false" {
		t.Errorf("after Destroy and set: %q", got)
	}
	if fb.len() != 1 {
		t.Errorf("%d records, want only the new one", fb.len())
	}
}

func TestRegenerate(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	m := newManager[profile](clock, fb)
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/visit")
	before := br.cookie.Value
	br.do("POST", "/login")
	if br.cookie.Value == before {
		t.Fatal("Regenerate kept the ID")
	}
	if got := body(br.do("GET", "/read")); got != "name=ann visits=1 roles=[] prefs=map[] new=false" {
		t.Errorf("after Regenerate: %q", got)
	}
	if fb.len() != 1 {
		t.Errorf("%d records after Regenerate, want 1", fb.len())
	}
}

func TestRegenerateKeepsOldRecordWhenSaveFails(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	m := newManager[profile](clock, fb, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/visit")
	fb.failWith("Write", errors.New("disk full"))
	if res := br.do("POST", "/login"); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want the error handler's 503", res.StatusCode)
	}
	fb.failWith("Write", nil)
	if got := body(br.do("GET", "/read")); !strings.Contains(got, "visits=1 ") {
		t.Errorf("after a failed login the old session reads %q", got)
	}
}

func TestSaveErrors(t *testing.T) {
	errBoom := errors.New("backend down")
	tests := []struct {
		name     string
		method   string // the backend method that fails
		before   string // what the browser did first
		path     string
		autoload bool
	}{
		{"write fails", "Write", "", "/visit", false},
		{"remove fails on logout", "Remove", "/visit", "/logout", false},
		{"remove fails on regenerate", "Remove", "/visit", "/login", false},
		{"read fails on Get", "Read", "/visit", "/read", false},
		{"read fails on autoload", "Read", "/visit", "/read", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			fb := newFakeBackend(clock)
			var handled error
			opts := []sessions.Option{sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				handled = err
				http.Error(w, "sorry", http.StatusInternalServerError)
			})}
			if tt.autoload {
				opts = append(opts, sessions.WithAutoload())
			}
			m := newManager[profile](clock, fb, opts...)
			br := &browser{t: t, h: routes(m, standardActs)}
			if tt.before != "" {
				br.do("GET", tt.before)
			}
			fb.failWith(tt.method, errBoom)
			res := br.do("GET", tt.path)
			if res.StatusCode != http.StatusInternalServerError {
				t.Errorf("status %d, want 500", res.StatusCode)
			}
			if b := body(res); strings.Contains(b, "visits=") {
				t.Errorf("the handler's response %q went out", b)
			}
			if tt.method == "Read" && !tt.autoload {
				return // Get returned the error to the handler, which answered itself
			}
			if !errors.Is(handled, errBoom) {
				t.Errorf("error handler got %v, want %v", handled, errBoom)
			}
			if len(res.Header["Set-Cookie"]) > 0 {
				t.Errorf("a failed save sent Set-Cookie %q", res.Header["Set-Cookie"])
			}
		})
	}
}

func TestDefaultErrorHandler(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	var logs strings.Builder
	m := newManager[profile](clock, fb, sessions.WithLogger(newTextLogger(&logs)))
	fb.failWith("Write", errors.New("backend down"))
	res := (&browser{t: t, h: app(m, visit)}).do("GET", "/")
	if res.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", res.StatusCode)
	}
	if !strings.Contains(logs.String(), "backend down") {
		t.Errorf("log %q does not name the error", logs.String())
	}
}

func TestSaveBeforeHeader(t *testing.T) {
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
	}{
		{"WriteHeader", func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated) }},
		{"Write", func(w http.ResponseWriter) { w.Write([]byte("hello")) }},
		{"Flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }},
		{"ResponseController.Flush", func(w http.ResponseWriter) { http.NewResponseController(w).Flush() }},
		{"handler returns", func(w http.ResponseWriter) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sessions.New[profile](newCookieBackend())
			var afterHeader bool
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, _ := m.Get(r)
				s.Data().Visits = 7
				tt.write(w)
				afterHeader = len(w.Header()["Set-Cookie"]) > 0
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			// The recorder snapshots the header when it is written, so a
			// cookie added later would be missing here.
			if len(rec.Result().Cookies()) != 1 {
				t.Errorf("the response header went out without the session cookie")
			}
			if tt.name != "handler returns" && !afterHeader {
				t.Errorf("the cookie was not set by the time %s returned", tt.name)
			}
		})
	}
}

func TestUnwrap(t *testing.T) {
	m := sessions.New[profile](newCookieBackend())
	rec := httptest.NewRecorder()
	var got http.ResponseWriter
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = w.(interface{ Unwrap() http.ResponseWriter }).Unwrap()
	}))
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got != rec {
		t.Errorf("Unwrap returned %T, want the server's writer", got)
	}
}

func TestHostileCookies(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	m := newManager[profile](clock, fb)
	valid := &browser{t: t, h: routes(m, standardActs)}
	valid.do("GET", "/visit")
	tests := []struct {
		name       string
		header     []string
		wantReads  int
		wantVisits string
	}{
		{"no cookie", nil, 0, "visits=0"},
		{"empty value", []string{"__Host-session="}, 0, "visits=0"},
		{"unknown token", []string{"__Host-session=" + sessions.NewID()}, 1, "visits=0"},
		{"oversized", []string{"__Host-session=" + strings.Repeat("a", 5000)}, 0, "visits=0"},
		{"non-ASCII", []string{"__Host-session=caf\xc3\xa9"}, 0, "visits=0"},
		{"control characters", []string{"__Host-session=a\x01b"}, 0, "visits=0"},
		{"backslash", []string{`session=a\b`}, 0, "visits=0"},
		{"other cookies only", []string{"sessionx=1; xsession=2"}, 0, "visits=0"},
		{"valid among others", []string{"a=1; __Host-session=" + valid.cookie.Value + "; b=2"}, 1, "visits=1"},
		{"quoted", []string{`__Host-session="` + valid.cookie.Value + `"`}, 1, "visits=1"},
		{"first of several", []string{"__Host-session=" + valid.cookie.Value + "; __Host-session=" + sessions.NewID()}, 1, "visits=1"},
		{"garbage first of several", []string{"__Host-session=" + sessions.NewID() + "; __Host-session=" + valid.cookie.Value}, 1, "visits=0"},
		{"second header line", []string{"a=1", "__Host-session=" + valid.cookie.Value}, 1, "visits=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb.calls = map[string]int{}
			req := httptest.NewRequest("GET", "/read", nil)
			req.Header["Cookie"] = tt.header
			rec := httptest.NewRecorder()
			routes(m, standardActs).ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if !strings.Contains(rec.Body.String(), tt.wantVisits+" ") {
				t.Errorf("body %q, want %s", rec.Body, tt.wantVisits)
			}
			if got := fb.calls["Read"]; got != tt.wantReads {
				t.Errorf("backend reads = %d, want %d", got, tt.wantReads)
			}
		})
	}
}

func TestTamperedCookieGivesFreshSession(t *testing.T) {
	m := sessions.New[profile](newCookieBackend())
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/visit")
	v := br.cookie.Value
	for name, value := range map[string]string{
		"flipped":     v[:20] + string(v[20]^1) + v[21:],
		"truncated":   v[:len(v)/2],
		"other app":   mustToken(t, cookie.New([]byte(strings.Repeat("x", 32)))),
		"not base64":  "!!!!",
		"extra bytes": v + "AAAA",
	} {
		t.Run(name, func(t *testing.T) {
			br.cookie.Value = value
			res := br.do("GET", "/read")
			if res.StatusCode != http.StatusOK || !strings.HasSuffix(body(res), "new=true") {
				t.Errorf("status %d, want 200 and a new session", res.StatusCode)
			}
		})
	}
}

func mustToken(t *testing.T, b sessions.Backend) string {
	t.Helper()
	m := sessions.New[profile](b)
	res := (&browser{t: t, h: app(m, visit)}).do("GET", "/")
	return res.Cookies()[0].Value
}

func TestUndecodableDataAfterTypeChange(t *testing.T) {
	b := newCookieBackend()
	old := sessions.New[struct{ Visits string }](b)
	h := old.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := old.Get(r)
		s.Data().Visits = "many"
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var logs strings.Builder
	m := sessions.New[profile](b, sessions.WithLogger(newDebugLogger(&logs)))
	br := &browser{t: t, h: routes(m, standardActs), cookie: rec.Result().Cookies()[0]}
	res := br.do("GET", "/read")
	if got := body(res); res.StatusCode != http.StatusOK || !strings.HasSuffix(got, "new=true") {
		t.Errorf("status %d %q, want a new session", res.StatusCode, got)
	}
	if !strings.Contains(logs.String(), "cannot decode") {
		t.Errorf("debug log %q does not say why the session was dropped", logs.String())
	}
	if strings.Contains(logs.String(), br.cookie.Value) {
		t.Errorf("the log shows the token")
	}
}

func TestCookieTooLarge(t *testing.T) {
	var handled error
	m := sessions.New[profile](newCookieBackend(), sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		handled = err
		http.Error(w, "session too large", http.StatusInternalServerError)
	}))
	res := (&browser{t: t, h: app(m, func(s *sessions.Session[profile]) {
		s.Data().Name = strings.Repeat("x", 4000)
	})}).do("GET", "/")
	if res.StatusCode != http.StatusInternalServerError || !errors.Is(handled, sessions.ErrCookieTooLarge) {
		t.Errorf("status %d, error %v; want 500 and sessions.ErrCookieTooLarge", res.StatusCode, handled)
	}
}

func TestKeyRotationReissues(t *testing.T) {
	oldSecret := []byte(strings.Repeat("o", 32))
	oldMgr := sessions.New[profile](cookie.New(oldSecret))
	br := &browser{t: t, h: routes(oldMgr, standardActs)}
	br.do("GET", "/visit")
	rotated := cookie.New(testSecret, cookie.WithOldSecrets(oldSecret))
	br.h = routes(sessions.New[profile](rotated), standardActs)
	res := br.do("GET", "/read")
	if got := body(res); !strings.Contains(got, "visits=1 ") {
		t.Fatalf("a cookie under the old secret reads %q", got)
	}
	if len(res.Cookies()) != 1 {
		t.Fatal("the cookie was not reissued")
	}
	// The reissued cookie is signed with the current secret alone.
	br.h = routes(sessions.New[profile](cookie.New(testSecret)), standardActs)
	if got := body(br.do("GET", "/read")); !strings.Contains(got, "visits=1 ") {
		t.Errorf("the reissued cookie reads %q under the current secret", got)
	}
}

func TestChangesAfterHeaderAreNotSaved(t *testing.T) {
	var logs strings.Builder
	m := sessions.New[profile](newCookieBackend(), sessions.WithLogger(newDebugLogger(&logs)))
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		s, _ := m.Get(r)
		s.Regenerate()
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(logs.String(), "after the response header") {
		t.Errorf("no warning for Regenerate after the header: %q", logs.String())
	}
}

func TestCancelledContextReachesBackend(t *testing.T) {
	clock := newFakeClock()
	var seen error
	b := ctxBackend{fakeBackend: newFakeBackend(clock), seen: &seen}
	m := newManager[profile](clock, b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	app(m, visit).ServeHTTP(rec, req)
	if !errors.Is(seen, context.Canceled) {
		t.Errorf("the backend saw ctx.Err() = %v, want the request's context", seen)
	}
}

type ctxBackend struct {
	*fakeBackend
	seen *error
}

func (b ctxBackend) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	*b.seen = ctx.Err()
	return b.fakeBackend.Write(ctx, id, data, ttl)
}

package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/testserver"
)

// serverErr records why the server-backed variants are missing, if they
// are.
var serverErr error

// redisAddr and postgresDSN locate the servers TestMain started, or are
// "".
var redisAddr, postgresDSN string

// TestMain starts a Redis and a PostgreSQL server on loopback ports, when
// their binaries are installed, and adds the variants that use them.
func TestMain(m *testing.M) {
	redis, err := testserver.StartRedis()
	if err == nil {
		redisAddr = redis.Addr
		Variants = append(Variants, RedisVariants(redis.Addr)...)
	} else {
		serverErr = err
	}
	pg, err := testserver.StartPostgres()
	if err == nil {
		postgresDSN = pg.DSN
		vs, err := PostgresVariants(pg.DSN)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: preparing PostgreSQL:", err)
			pg.Close()
			os.Exit(1)
		}
		Variants = append(Variants, vs...)
	} else {
		serverErr = err
	}
	code := m.Run()
	if redis != nil {
		redis.Close()
	}
	if pg != nil {
		pg.Close()
	}
	os.Exit(code)
}

// TestServers reports, as a skip or (with SESSIONS_REQUIRE_SERVERS=1) a
// failure, that the Redis and PostgreSQL variants could not run.
func TestServers(t *testing.T) {
	if serverErr != nil {
		testserver.Skip(t, serverErr)
	}
}

// newRequest is the one way every variant's requests are built: a GET
// with the session cookie, if any. Each call returns a fresh shallow copy,
// because gorilla/sessions keeps state in the request it is given.
func newRequest(cookie string) func() *http.Request {
	base := httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
	if name, value, ok := strings.Cut(cookie, ": "); ok {
		base.Header.Set(name, value) // a token header
	} else if cookie != "" {
		base.Header.Set("Cookie", cookie)
	}
	return func() *http.Request { return base.WithContext(context.Background()) }
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// sessionToken returns how the next request carries the token a response
// gave: "name=value" of the session cookie, "Header: value" of a token
// header, or "".
func sessionToken(v Variant, rec *httptest.ResponseRecorder) string {
	if v.TokenHeader != "" {
		if t := rec.Header().Get(v.TokenHeader); t != "" {
			return v.TokenHeader + ": " + t
		}
		return ""
	}
	return sessionCookie(rec)
}

// sessionCookie returns the "name=value" of the session cookie a response
// set, or "". The other libraries' variants name it "session"; this
// library's take sessions.DefaultHostCookieName over HTTPS, the default.
func sessionCookie(rec *httptest.ResponseRecorder) string {
	for _, c := range rec.Result().Cookies() {
		if (c.Name == sessions.DefaultCookieName || c.Name == sessions.DefaultHostCookieName) && c.MaxAge >= 0 {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

// setup is one variant and scenario ready to be timed.
type setup struct {
	h         http.Handler
	req       func() *http.Request
	cookieLen int // bytes of "name=value" of the session cookie in play
}

// prepare builds variant v for scenario s, with a stored session unless s
// is Create, and checks that it behaves as the scenario says.
func prepare(tb testing.TB, v Variant, s Scenario) setup {
	tb.Helper()
	inst := v.New()
	tb.Cleanup(inst.Close)
	h := inst.Handler(s)
	if v.Name == "bare" {
		return setup{h: h, req: newRequest("")}
	}
	var cookie string
	if s != Create {
		cookie = sessionToken(v, serve(inst.Handler(Create), newRequest("")()))
		if cookie == "" {
			tb.Fatalf("%s: creating a session set no cookie", v.Name)
		}
	}
	st := setup{h: h, req: newRequest(cookie), cookieLen: len(cookie)}

	rec := serve(h, st.req())
	got := rec.Body.String()
	set := sessionToken(v, rec)
	switch {
	case rec.Code != http.StatusOK:
		tb.Fatalf("%s/%s: status %d: %s", v.Name, s, rec.Code, got)
	case s == Read && (got != "Ada Lovelace:0" || set != ""):
		tb.Fatalf("%s/read: body %q, Set-Cookie %q; want the stored session and no cookie", v.Name, got, set)
	case s == Write && got != "Ada Lovelace:1":
		tb.Fatalf("%s/write: body %q", v.Name, got)
	case s == Create && (got != "Ada Lovelace:0" || set == ""):
		tb.Fatalf("%s/new: body %q, Set-Cookie %q", v.Name, got, set)
	}
	if s == Write {
		// The change must stick: a later read sees it, through the new
		// cookie for cookie stores, the same one for server-side stores.
		next := cookie
		if set != "" {
			next = set
		}
		if body := serve(inst.Handler(Read), newRequest(next)()).Body.String(); body != "Ada Lovelace:1" {
			tb.Fatalf("%s/write: a later read saw %q", v.Name, body)
		}
	}
	if s == Create {
		st.cookieLen = len(set)
	}
	return st
}

// TestVariants checks every variant in every scenario, so that a broken
// variant fails the test suite and not just the benchmark run.
func TestVariants(t *testing.T) {
	for _, v := range Variants {
		for _, s := range []Scenario{Read, Write, Create} {
			if v.ReadOnly && s != Read {
				continue
			}
			t.Run(v.Name+"/"+s.String(), func(t *testing.T) { prepare(t, v, s) })
		}
	}
}

// BenchmarkSessions times every variant in every scenario: A) read,
// B) write, C) new, and A under RunParallel (read-parallel).
func BenchmarkSessions(b *testing.B) {
	for _, s := range []Scenario{Read, Write, Create} {
		for _, v := range Variants {
			if v.ReadOnly && s != Read {
				continue
			}
			b.Run(fmt.Sprintf("%s/%s", s, v.Name), func(b *testing.B) {
				st := prepare(b, v, s)
				b.ReportAllocs()
				for b.Loop() {
					serve(st.h, st.req())
				}
				b.ReportMetric(float64(st.cookieLen), "cookie-B")
			})
		}
	}
	for _, v := range Variants {
		b.Run("read-parallel/"+v.Name, func(b *testing.B) {
			st := prepare(b, v, Read)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					serve(st.h, st.req())
				}
			})
			b.ReportMetric(float64(st.cookieLen), "cookie-B")
		})
	}
}

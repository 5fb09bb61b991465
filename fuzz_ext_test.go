package sessions_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// FuzzMiddleware sends arbitrary Cookie headers through the whole stack,
// over the cookie and memory backends: every request gets a 200 and a
// session, and a session that is not new holds exactly what the server
// stored (one visit). Any cookie this test's secret signed counts as
// issued, since fuzz workers each issue their own.
func FuzzMiddleware(f *testing.F) {
	mem := memory.New()
	f.Cleanup(func() { mem.Close() })
	type target struct {
		h     http.Handler
		valid string
	}
	var targets []target
	for _, b := range []sessions.Backend{newCookieBackend(), mem} {
		m := sessions.New[profile](b)
		h := routes(m, standardActs)
		res := (&browser{t: f, h: h}).do("GET", "/visit")
		targets = append(targets, target{h, res.Cookies()[0].Value})
	}
	f.Add("__Host-session=" + targets[0].valid)
	f.Add("__Host-session=" + targets[1].valid)
	f.Add("__Host-session=" + targets[0].valid + "; __Host-session=x")
	f.Add(`__Host-session="` + targets[1].valid + `"`)
	f.Add("__Host-session=\x00\xff")
	f.Fuzz(func(t *testing.T, header string) {
		for _, tg := range targets {
			req := httptest.NewRequest("GET", "/read", nil)
			req.Header.Set("Cookie", header)
			rec := httptest.NewRecorder()
			tg.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d for Cookie %q", rec.Code, header)
			}
			if body := rec.Body.String(); !strings.HasSuffix(body, "new=true") && !strings.Contains(body, "visits=1 ") {
				t.Fatalf("Cookie %q loaded a session the server never stored: %q", header, body)
			}
		}
	})
}

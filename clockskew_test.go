package sessions_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// TestClockSkewBetweenServers runs one browser's session across two app
// servers on one backend whose clocks differ, in every order of creating,
// changing and reading it: a server behind the one that created the
// session must not store an access before the creation (which the header
// cannot hold: it was refused as corrupt, a 500 on every later request),
// and neither server may refuse the session or lose its change.
func TestClockSkewBetweenServers(t *testing.T) {
	for _, backend := range []string{"cookie", "memory"} {
		for _, skew := range []time.Duration{2 * time.Second, -2 * time.Second, time.Hour, -time.Hour} {
			for order := range 8 {
				// Bit i of order says which server does step i.
				steps := [3]int{order & 1, order >> 1 & 1, order >> 2 & 1}
				name := fmt.Sprintf("%s/skew %v/servers %v", backend, skew, steps)
				t.Run(name, func(t *testing.T) {
					var b sessions.Backend = newCookieBackend()
					if backend == "memory" {
						mb := memory.New()
						t.Cleanup(func() { mb.Close() })
						b = mb
					}
					clocks := [2]*fakeClock{newFakeClock(), newFakeClock()}
					clocks[1].Advance(skew)
					var servers [2]http.Handler
					for i := range servers {
						m := newManager[profile](clocks[i], b, sessions.WithIdleTimeout(3*time.Hour))
						servers[i] = routes(m, standardActs)
					}
					br := &browser{t: t}
					step := func(server int, path, want string) {
						t.Helper()
						br.h = servers[server]
						res := br.do("GET", path)
						got := body(res)
						if res.StatusCode != http.StatusOK || !strings.Contains(got, want) {
							t.Fatalf("%s on server %d: %d %q, want 200 and %q", path, server, res.StatusCode, got, want)
						}
					}
					step(steps[0], "/visit", "visits=1 ")
					for _, c := range clocks {
						c.Advance(time.Second)
					}
					step(steps[1], "/visit", "visits=2 ")
					for _, c := range clocks {
						c.Advance(time.Minute)
					}
					step(steps[2], "/read", "visits=2 roles=[] prefs=map[] new=false")
					step(1-steps[2], "/read", "visits=2 roles=[] prefs=map[] new=false")
				})
			}
		}
	}
}

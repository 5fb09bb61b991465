package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
	"github.com/starsessions/sessions/internal/testserver"
	"github.com/starsessions/sessions/memory"
	"github.com/starsessions/sessions/postgres"
	"github.com/starsessions/sessions/redis"
)

var soak = flag.Duration("soak", 0, "run the soak test over each backend for this long in all (CI uses 1m); pass it after -args")

// soakSession is what the soak clients keep.
type soakSession struct {
	User  string
	Count int
}

// soakApp serves the soak clients: /login regenerates and names the user,
// /inc increments through Update, /read reads, /regen regenerates, /logout
// destroys. Every answer is the counter.
func soakApp(m *sessions.Manager[soakSession]) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/login":
			s.Regenerate()
			s.Update(func(v *soakSession) { v.User = "user" })
		case "/inc":
			s.Update(func(v *soakSession) { v.Count++ })
		case "/regen":
			s.Regenerate()
		case "/logout":
			s.Destroy()
		}
		io.WriteString(w, strconv.Itoa(s.Value().Count))
	}))
}

// soakBackend is a backend to soak and what it holds open.
type soakBackend struct {
	name string
	open func(t *testing.T) (sessions.Backend, func())
	// burst is how many increments a client sends at once. A cookie
	// session keeps the last Set-Cookie the browser receives, so
	// concurrent changes to one cookie session cannot all survive (see the
	// cookie package): its clients send one at a time.
	burst int
}

func soakBackends() []soakBackend {
	return []soakBackend{
		{name: "cookie", burst: 1, open: func(*testing.T) (sessions.Backend, func()) {
			return cookie.New([]byte("a soak-test secret of 32 bytes or more")), func() {}
		}},
		{name: "memory", burst: 3, open: func(*testing.T) (sessions.Backend, func()) {
			b := memory.New(memory.WithSweepInterval(time.Second))
			return b, func() { b.Close() }
		}},
		{name: "redis", burst: 3, open: func(t *testing.T) (sessions.Backend, func()) {
			srv, err := testserver.StartRedis()
			if err != nil {
				testserver.Skip(t, err)
			}
			client := goredis.NewClient(&goredis.Options{Addr: srv.Addr, PoolSize: 32})
			return redis.New(client), func() { client.Close(); srv.Close() }
		}},
		{name: "postgres", burst: 3, open: func(t *testing.T) (sessions.Backend, func()) {
			srv, err := testserver.StartPostgres()
			if err != nil {
				testserver.Skip(t, err)
			}
			pool, err := pgxpool.New(context.Background(), srv.DSN)
			if err != nil {
				srv.Close()
				t.Fatal(err)
			}
			b := postgres.New(pool, postgres.WithCleanupInterval(time.Second))
			if err := b.CreateTable(context.Background()); err != nil {
				t.Fatal(err)
			}
			return b, func() { b.Close(); pool.Close(); srv.Close() }
		}},
	}
}

// TestSoak runs 64 clients, each with its own cookie jar, against a real
// HTTPS server on loopback, over each backend in turn. Each client logs in,
// increments its counter (in concurrent bursts where the backend is
// versioned), regenerates, reads and logs out, checking its counter all
// along. The test fails on any 5xx, any lost
// increment, a heap that grows between the first and last third of the
// run, or a goroutine left behind.
func TestSoak(t *testing.T) {
	if *soak <= 0 {
		t.Skip("the soak test runs only with -soak, for example: go test -run TestSoak ./example/ -args -soak=1m")
	}
	backends := soakBackends()
	per := *soak / time.Duration(len(backends))
	for _, sb := range backends {
		t.Run(sb.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			backend, closeBackend := sb.open(t)
			defer closeBackend()
			runSoak(t, backend, per, sb.burst)
		})
	}
}

func runSoak(t *testing.T, backend sessions.Backend, d time.Duration, burst int) {
	const clients = 64
	m := sessions.New[soakSession](backend, sessions.WithIdleTimeout(time.Hour))
	srv := httptest.NewTLSServer(soakApp(m))
	defer srv.Close()

	var requests, serverErrors, lost, conflicts atomic.Int64
	deadline := time.Now().Add(d)
	var heap heapSamples
	stopSampling := heap.sample(d / 30)

	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jar, _ := cookiejar.New(nil)
			transport := srv.Client().Transport.(*http.Transport).Clone()
			transport.MaxIdleConnsPerHost = 4 // room for a burst without new TLS handshakes
			defer transport.CloseIdleConnections()
			c := &http.Client{Jar: jar, Transport: transport, Timeout: 30 * time.Second}
			get := func(path string) (int, bool) {
				requests.Add(1)
				res, err := c.Get(srv.URL + path)
				if err != nil {
					t.Errorf("client %d: %s: %v", i, path, err)
					return 0, false
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode >= 500 {
					serverErrors.Add(1)
					t.Errorf("client %d: %s: %d %s", i, path, res.StatusCode, body)
					return 0, false
				}
				if res.StatusCode == http.StatusConflict {
					conflicts.Add(1)
					return 0, false
				}
				n, _ := strconv.Atoi(string(body))
				return n, true
			}
			for time.Now().Before(deadline) {
				get("/login")
				want := 0
				for round := 0; round < 5 && time.Now().Before(deadline); round++ {
					// A burst of concurrent increments on the client's own
					// session: none may be lost.
					var wave sync.WaitGroup
					var ok atomic.Int64
					for range burst {
						wave.Add(1)
						go func() {
							defer wave.Done()
							if _, good := get("/inc"); good {
								ok.Add(1)
							}
						}()
					}
					wave.Wait()
					want += int(ok.Load())
					if got, good := get("/read"); good && got != want {
						lost.Add(int64(want - got))
						t.Errorf("client %d: counter %d after %d increments", i, got, want)
						want = got
					}
				}
				get("/regen")
				if got, good := get("/read"); good && got != want {
					t.Errorf("client %d: counter %d after regenerate, want %d", i, got, want)
				}
				get("/logout")
				if got, good := get("/read"); good && got != 0 {
					t.Errorf("client %d: counter %d after logout", i, got)
				}
			}
		}()
	}
	wg.Wait()
	stopSampling()
	t.Logf("%d requests in %v (%.0f/s), %d conflicts answered 409", requests.Load(), d, float64(requests.Load())/d.Seconds(), conflicts.Load())
	if serverErrors.Load() > 0 || lost.Load() > 0 {
		t.Errorf("%d server errors, %d lost increments", serverErrors.Load(), lost.Load())
	}
	if first, last, ok := heap.thirds(); ok {
		t.Logf("heap after GC: %.1f MiB in the first third, %.1f MiB in the last", first/(1<<20), last/(1<<20))
		// Flat means no steady growth: the last third may not exceed the
		// first by more than half, with 8 MiB of slack for a small heap.
		if last > first*1.5+8<<20 {
			t.Errorf("the heap grew from %.1f MiB to %.1f MiB", first/(1<<20), last/(1<<20))
		}
	}
}

// heapSamples records the live heap after GC at intervals.
type heapSamples struct {
	mu      sync.Mutex
	samples []float64
}

func (h *heapSamples) sample(every time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(max(every, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				h.mu.Lock()
				h.samples = append(h.samples, float64(ms.HeapAlloc))
				h.mu.Unlock()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// thirds returns the mean heap in the first and the last third of the run.
func (h *heapSamples) thirds() (first, last float64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.samples) / 3
	if n == 0 {
		return 0, 0, false
	}
	mean := func(xs []float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	return mean(h.samples[:n]), mean(h.samples[len(h.samples)-n:]), true
}

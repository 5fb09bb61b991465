package redis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/testserver"
	"github.com/starsessions/sessions/sessionstest"
)

var (
	single     *testserver.Redis
	singleErr  error
	cluster    *testserver.RedisCluster
	clusterErr error
)

func TestMain(m *testing.M) {
	single, singleErr = testserver.StartRedis()
	cluster, clusterErr = testserver.StartRedisCluster()
	code := m.Run()
	if single != nil {
		single.Close()
	}
	if cluster != nil {
		cluster.Close()
	}
	os.Exit(code)
}

// prefixes gives each test its own key space on the shared servers.
var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

func singleClient(t *testing.T) *goredis.Client {
	t.Helper()
	if singleErr != nil {
		testserver.Skip(t, singleErr)
	}
	c := goredis.NewClient(&goredis.Options{Addr: single.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func clusterClient(t *testing.T) *goredis.ClusterClient {
	t.Helper()
	if clusterErr != nil {
		testserver.Skip(t, clusterErr)
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cluster.Addrs})
	t.Cleanup(func() { c.Close() })
	return c
}

// keysWithPrefix lists the keys under prefix, on every node of a cluster.
func keysWithPrefix(t *testing.T, c goredis.UniversalClient, prefix string) []string {
	ctx := context.Background()
	var keys []string
	scan := func(ctx context.Context, node *goredis.Client) error {
		iter := node.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*goredis.ClusterClient); ok {
		var mu = make(chan struct{}, 1)
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
			mu <- struct{}{}
			defer func() { <-mu }()
			return scan(ctx, node)
		})
	} else {
		err = scan(ctx, c.(*goredis.Client))
	}
	if err != nil {
		t.Fatalf("scanning keys: %v", err)
	}
	return keys
}

func conformance(t *testing.T, client goredis.UniversalClient) {
	sessionstest.Run(t, sessionstest.Config{
		New: func(t *testing.T) sessionstest.Subject {
			prefix := newPrefix()
			return sessionstest.Subject{
				Backend:    New(client, WithPrefix(prefix)),
				StoredKeys: func() []string { return keysWithPrefix(t, client, prefix) },
			}
		},
	})
}

func TestConformanceSingle(t *testing.T)  { conformance(t, singleClient(t)) }
func TestConformanceCluster(t *testing.T) { conformance(t, clusterClient(t)) }

func TestKeyIsHashOfToken(t *testing.T) {
	client := singleClient(t)
	prefix := newPrefix()
	b := New(client, WithPrefix(prefix))
	id := sessions.NewID()
	if _, err := b.Write(context.Background(), id, []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	keys := keysWithPrefix(t, client, prefix)
	if len(keys) != 1 || keys[0] != b.key(id) || strings.Contains(keys[0], id) {
		t.Fatalf("keys %q; want one key, the prefix and the token's hash", keys)
	}
	vals, err := client.HGetAll(context.Background(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	for f, v := range vals {
		if strings.Contains(v, id) {
			t.Errorf("field %s holds the raw token", f)
		}
	}
	ttl := client.PTTL(context.Background(), keys[0]).Val()
	if ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL = %v, want the write's TTL of 1m", ttl)
	}
}

// visits is the session type of the application tests.
type visits struct {
	User  string
	Count int
}

// app is a tiny application: /inc counts, /login sets the user, /logout
// destroys, anything else reads.
func app(m *sessions.Manager[visits]) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/inc":
			s.Update(func(v *visits) { v.Count++ })
		case "/login":
			s.Regenerate()
			s.Update(func(v *visits) { v.User = "ann" })
		case "/logout":
			s.Destroy()
		}
		fmt.Fprintf(w, "%s:%d", s.Value().User, s.Value().Count)
	}))
}

func do(h http.Handler, path string, c *http.Cookie) (*httptest.ResponseRecorder, *http.Cookie) {
	req := httptest.NewRequest(http.MethodPost, "https://example.com"+path, nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, nc := range rec.Result().Cookies() {
		if nc.MaxAge < 0 {
			return rec, nil
		}
		c = nc
	}
	return rec, c
}

// TestTwoAppServers runs two managers, standing for two application
// servers, on one Redis: a session made on one is read and changed on the
// other, and a logout on either is a logout on both.
func TestTwoAppServers(t *testing.T) {
	prefix := newPrefix()
	a := app(sessions.New[visits](New(singleClient(t), WithPrefix(prefix))))
	b := app(sessions.New[visits](New(singleClient(t), WithPrefix(prefix))))
	_, c := do(a, "/login", nil)
	if rec, _ := do(b, "/inc", c); rec.Body.String() != "ann:1" {
		t.Fatalf("server B sees %q after login on A", rec.Body)
	}
	if rec, _ := do(a, "/read", c); rec.Body.String() != "ann:1" {
		t.Fatalf("server A sees %q after B's change", rec.Body)
	}
	do(b, "/logout", c)
	if rec, _ := do(a, "/read", c); rec.Body.String() != ":0" {
		t.Errorf("server A sees %q after logout on B", rec.Body)
	}
}

// TestServerDown stops Redis in the middle of a test: requests get the
// error handler's 5xx, and once Redis is back they work again without a
// new client or manager.
func TestServerDown(t *testing.T) {
	if singleErr != nil {
		testserver.Skip(t, singleErr)
	}
	srv, err := testserver.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond, MaxRetries: 1})
	defer client.Close()
	var handled atomic.Value
	m := sessions.New[visits](New(client), sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		handled.Store(err)
		http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
	}))
	h := app(m)
	_, c := do(h, "/inc", nil)

	srv.Stop()
	for _, path := range []string{"/read", "/inc"} {
		rec, _ := do(h, path, c)
		if rec.Code < 500 {
			t.Errorf("%s with Redis down: status %d, want 5xx", path, rec.Code)
		}
	}
	// A new visitor's session is not stored until it changes: saving it
	// must fail through the error handler, never as a silent 200.
	if rec, _ := do(h, "/inc", nil); rec.Code != http.StatusServiceUnavailable || handled.Load() == nil {
		t.Errorf("save with Redis down: status %d, error handler saw %v", rec.Code, handled.Load())
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Redis lost its data (persistence is off): the old cookie now names
	// nothing, and the request gets a new session.
	rec, c2 := do(h, "/inc", c)
	if rec.Code != http.StatusOK || rec.Body.String() != ":1" {
		t.Fatalf("after Redis came back: %d %q", rec.Code, rec.Body)
	}
	if rec, _ := do(h, "/inc", c2); rec.Body.String() != ":2" {
		t.Errorf("the session made after the outage reads %q", rec.Body)
	}
}

// TestDeadlineHonoured freezes Redis: a request whose context has a
// deadline fails at the deadline, not when the client's own timeouts end.
func TestDeadlineHonoured(t *testing.T) {
	if singleErr != nil {
		testserver.Skip(t, singleErr)
	}
	srv, err := testserver.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr, ReadTimeout: time.Minute, ContextTimeoutEnabled: true})
	defer client.Close()
	b := New(client)
	token, err := b.Write(context.Background(), sessions.NewID(), []byte("x"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = b.Read(ctx, token)
	if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Errorf("Read with a frozen server: err = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Read returned after %v; the 200ms deadline was not honoured", d)
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

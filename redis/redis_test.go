package redis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// privateRedis starts a server of the test's own, for tests that stop,
// freeze or reconfigure it, with args added to its command line.
func privateRedis(t *testing.T, args ...string) *testserver.Redis {
	t.Helper()
	if singleErr != nil {
		testserver.Skip(t, singleErr)
	}
	srv, err := testserver.StartRedis(args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestTwoAppServers runs two managers, standing for two application
// servers, on one Redis.
func TestTwoAppServers(t *testing.T) {
	prefix := newPrefix()
	sessionstest.SharedStore(t, New(singleClient(t), WithPrefix(prefix)), New(singleClient(t), WithPrefix(prefix)))
}

// TestServerDown stops Redis in the middle of a test. Persistence is off,
// so Redis comes back empty.
func TestServerDown(t *testing.T) {
	srv := privateRedis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond, MaxRetries: 1})
	defer client.Close()
	stop := func() error { srv.Stop(); return nil }
	sessionstest.Outage(t, New(client), stop, srv.Start, false)
}

// TestDeadlineHonoured freezes Redis: a request whose context has a
// deadline fails at the deadline, not when the client's own timeouts end.
func TestDeadlineHonoured(t *testing.T) {
	srv := privateRedis(t)
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

// TestReadOnlyReplica points the backend at a replica, as a client may be
// during a failover: saves fail with Redis's READONLY error, which reaches
// the error handler as a 5xx; reads still work.
func TestReadOnlyReplica(t *testing.T) {
	if singleErr != nil {
		testserver.Skip(t, singleErr)
	}
	replica := privateRedis(t)
	client := goredis.NewClient(&goredis.Options{Addr: replica.Addr})
	defer client.Close()
	host, port, _ := strings.Cut(single.Addr, ":")
	if err := client.SlaveOf(context.Background(), host, port).Err(); err != nil {
		t.Fatal(err)
	}
	b := New(client, WithPrefix(newPrefix()))
	_, err := b.WriteIfVersion(context.Background(), sessions.VersionedWrite{ID: sessions.NewID(), Data: []byte("x"), TTL: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Fatalf("a write to a replica: err = %v, want READONLY", err)
	}
	var handled error
	m := sessions.New[struct{ N int }](b, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		handled = err
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := m.Get(r)
		s.Data().N++
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://example.com/", nil))
	if rec.Code != http.StatusServiceUnavailable || handled == nil || !strings.Contains(handled.Error(), "READONLY") {
		t.Errorf("a save on a replica: status %d, error handler saw %v", rec.Code, handled)
	}
}

// TestSentinel runs the backend through a failover client, as
// goredis.NewUniversalClient makes one when given a master name: first the
// conformance suite, then a failover: the primary stops and the Sentinel
// promotes the replica. Requests during the switch fail through the error
// handler; afterwards the same client finds the new primary, and the
// session written before the failover (and replicated, as WAIT makes sure)
// is still there.
func TestSentinel(t *testing.T) {
	if singleErr != nil {
		testserver.Skip(t, singleErr)
	}
	s, err := testserver.StartRedisSentinel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{
		MasterName: s.MasterName,
		Addrs:      []string{s.SentinelAddr},
		MaxRetries: -1, // let every failure show, rather than hide it in retries
	})
	t.Cleanup(func() { client.Close() })

	t.Run("conformance", func(t *testing.T) { conformance(t, client) })

	// A failover client sends WAIT to the primary, where the removal went.
	t.Run("wait replicas", func(t *testing.T) {
		ctx := context.Background()
		b := New(client, WithPrefix(newPrefix()), WithWaitReplicas(1, 5*time.Second))
		token, err := b.Write(ctx, sessions.NewID(), []byte("x"), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Remove(ctx, token); err != nil {
			t.Fatalf("Remove with the replica running: %v", err)
		}
	})

	t.Run("failover", func(t *testing.T) {
		prefix := newPrefix()
		m := sessions.New[struct{ N int }](New(client, WithPrefix(prefix)),
			sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			}))
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := m.Get(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			s.Update(func(v *struct{ N int }) { v.N++ })
			fmt.Fprintf(w, "n=%d new=%t", s.Value().N, s.IsNew())
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://example.com/", nil))
		cookies := rec.Result().Cookies()
		if rec.Code != http.StatusOK || len(cookies) != 1 {
			t.Fatalf("first request: status %d, %d cookies", rec.Code, len(cookies))
		}
		if n, err := client.Do(context.Background(), "WAIT", 1, 5000).Int(); err != nil || n != 1 {
			t.Fatalf("WAIT for the replica: %d, %v", n, err)
		}

		if err := s.Failover(); err != nil {
			t.Fatal(err)
		}

		failed := 0
		deadline := time.Now().Add(30 * time.Second)
		for {
			req := httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
			req.AddCookie(cookies[0])
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code == http.StatusOK {
				if got, want := rec.Body.String(), "n=2 new=false"; got != want {
					t.Fatalf("after the failover: %q, want %q", got, want)
				}
				break
			}
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("during the failover: status %d %q, want the error handler's 503", rec.Code, rec.Body)
			}
			failed++
			if time.Now().After(deadline) {
				t.Fatalf("no success within 30s of the failover; last error: %s", rec.Body)
			}
			time.Sleep(50 * time.Millisecond) // waiting on another process's failover
		}
		t.Logf("%d requests failed through the error handler during the switch", failed)

		// The save after the failover went to the new primary.
		direct := goredis.NewClient(&goredis.Options{Addr: s.Primary.Addr})
		defer direct.Close()
		data, found, err := New(direct, WithPrefix(prefix)).Read(context.Background(), cookies[0].Value)
		if err != nil || !found {
			t.Fatalf("the session on the new primary %s: found %t, %v", s.Primary.Addr, found, err)
		}
		if !strings.Contains(string(data), `{"N":2}`) {
			t.Errorf("the new primary holds %q, want the record with N=2", data)
		}
	})
}

// roundTrips counts the commands and pipelines a client sends, each one
// round trip to the server.
type roundTrips struct {
	mu    sync.Mutex
	names []string
}

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.mu.Lock()
		r.names = append(r.names, cmd.Name())
		r.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.mu.Lock()
		r.names = append(r.names, "pipeline")
		r.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (r *roundTrips) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := r.names
	r.names = nil
	return names
}

// TestOwnerIndexRoundTrips checks what the index by owner costs on one
// server: nothing, for the script that writes a session whose owner
// changes updates the index too, and reads and ordinary writes of a
// session with an owner do not touch it.
func TestOwnerIndexRoundTrips(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: singleClient(t).Options().Addr})
	defer client.Close()
	rt := &roundTrips{}
	m := sessions.New[struct{ N int }](New(client, WithPrefix(newPrefix())))
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/login":
			s.Regenerate()
			s.SetOwner("ann")
		case "/inc":
			s.Update(func(v *struct{ N int }) { v.N++ })
		}
	}))
	// Load the scripts, so that every call below is one EVALSHA.
	_, c := send(h, "/inc", nil)
	_, c = send(h, "/login", c)
	_, c = send(h, "/inc", c)
	client.AddHook(rt)
	steps := []struct {
		path string
		want []string
	}{
		{"/login", []string{"evalsha", "evalsha", "evalsha"}}, // read, write and index, remove the old key
		{"/inc", []string{"evalsha", "evalsha"}},              // read, write
		{"/read", []string{"evalsha"}},
	}
	for _, st := range steps {
		_, c = send(h, st.path, c)
		if diff := cmp.Diff(st.want, rt.take()); diff != "" {
			t.Errorf("%s: round trips (-want +got):\n%s", st.path, diff)
		}
	}
}

// send sends a request with cookie c and returns the response and the
// cookie to send next.
func send(h http.Handler, path string, c *http.Cookie) (*httptest.ResponseRecorder, *http.Cookie) {
	req := httptest.NewRequest(http.MethodPost, "https://example.com"+path, nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, nc := range rec.Result().Cookies() {
		c = nc
	}
	return rec, c
}

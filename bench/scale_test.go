package bench

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/bench/syncmapstore"
	"github.com/starsessions/sessions/memory"
	"github.com/starsessions/sessions/postgres"
	sredis "github.com/starsessions/sessions/redis"
)

// scaleSizes are the numbers of stored sessions the curves are drawn at.
var scaleSizes = []int{1000, 10000, 100000, 1000000}

// A scaleStore is one store measured as it fills with other sessions.
type scaleStore struct {
	name string
	// handler returns the store's handler for a scenario; idle, when set,
	// the handler of a manager with a 30-minute idle timeout.
	handler, idle func(Scenario) http.Handler
	// fill stores the sessions of others numbered from to to, below the
	// library, as copies of sample, the stored bytes of a real session.
	fill func(tb testing.TB, sample []byte, from, to int)
	// sample returns the stored bytes of the session token names.
	sample func(tb testing.TB, token string) []byte
	// size returns the bytes the store takes outside the process, or 0
	// for a store in the process, whose heap is measured instead.
	size  func(tb testing.TB) float64
	close func()
}

// otherID returns the i-th session ID of the fill: a valid ID, and a
// different one for every i.
func otherID(i int) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	sum := sha256.Sum256(b[:])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// tokenOf returns the token of the session cookie "session=value".
func tokenOf(cookie string) string { return strings.TrimPrefix(cookie, "session=") }

// ourScaleStore returns the name, handlers and sample of a store of this
// library's, through backend b; the caller adds how to fill and size it.
func ourScaleStore(name string, b sessions.Backend) scaleStore {
	m := sessions.New[Session](b, sessions.WithCodec(sessions.Msgpack))
	mi := sessions.New[Session](b, sessions.WithCodec(sessions.Msgpack), sessions.WithIdleTimeout(30*time.Minute))
	return scaleStore{
		name:    name,
		handler: func(s Scenario) http.Handler { return starHandler(m, s, viaValue) },
		idle:    func(s Scenario) http.Handler { return starHandler(mi, s, viaValue) },
		sample: func(tb testing.TB, token string) []byte {
			data, _, err := b.Read(context.Background(), token)
			if err != nil || data == nil {
				tb.Fatalf("no sample: %v", err)
			}
			return data
		},
	}
}

// scsScaleStore is ourScaleStore for scs with store.
func scsScaleStore(name string, store scs.Store) scaleStore {
	sm := scs.New()
	sm.Store = store
	sm.Cookie.Name = "session"
	return scaleStore{
		name:    name,
		handler: func(s Scenario) http.Handler { return scsHandler(sm, s) },
		sample: func(tb testing.TB, token string) []byte {
			data, found, err := store.Find(token)
			if err != nil || !found {
				tb.Fatalf("no sample: %v", err)
			}
			return data
		},
	}
}

func memoryScaleStores() []func() scaleStore {
	// inProcess measures one of our in-process stores, reached only
	// through the Backend interface so both designs get the same calls.
	type inProcessStore interface {
		sessions.Backend
		Close() error
	}
	inProcess := func(name string, newStore func() inProcessStore) func() scaleStore {
		return func() scaleStore {
			b := newStore()
			st := ourScaleStore(name, b)
			st.fill = func(tb testing.TB, data []byte, from, to int) {
				ctx := context.Background()
				for i := from; i < to; i++ {
					if _, err := b.Write(ctx, otherID(i), data, time.Hour); err != nil {
						tb.Fatal(err)
					}
				}
			}
			st.close = func() { b.Close() }
			return st
		}
	}
	return []func() scaleStore{
		inProcess("starsessions-memory", func() inProcessStore { return memory.New(memory.WithSweepInterval(0)) }),
		inProcess("starsessions-memory-syncmap", func() inProcessStore { return syncmapstore.New(syncmapstore.WithSweepInterval(0)) }),
		func() scaleStore {
			store := memstore.NewWithCleanupInterval(0)
			st := scsScaleStore("scs-memstore", store)
			st.fill = func(tb testing.TB, data []byte, from, to int) {
				for i := from; i < to; i++ {
					// memstore keeps the slice it is given: each
					// session gets its own, as a real one would.
					store.Commit(otherID(i), append([]byte(nil), data...), time.Now().Add(time.Hour))
				}
			}
			st.close = func() {}
			return st
		},
	}
}

func redisScaleStores(addr string) []func() scaleStore {
	return []func() scaleStore{
		func() scaleStore {
			client := goredis.NewClient(&goredis.Options{Addr: addr})
			const prefix = "scale:"
			b := sredis.New(client, sredis.WithPrefix(prefix))
			st := ourScaleStore("starsessions-redis", b)
			st.fill = func(tb testing.TB, data []byte, from, to int) {
				ctx := context.Background()
				for start := from; start < to; start += 10000 {
					pipe := client.Pipeline()
					for i := start; i < min(start+10000, to); i++ {
						sum := sha256.Sum256([]byte(otherID(i)))
						key := prefix + base64.RawURLEncoding.EncodeToString(sum[:])
						pipe.HSet(ctx, key, "d", data, "v", 1)
						pipe.PExpire(ctx, key, time.Hour)
					}
					if _, err := pipe.Exec(ctx); err != nil {
						tb.Fatal(err)
					}
				}
			}
			st.size = func(tb testing.TB) float64 { return redisUsedMemory(tb, client) }
			st.close = func() { client.Close() }
			return st
		},
		func() scaleStore {
			pool := &redigo.Pool{MaxIdle: 16, Dial: func() (redigo.Conn, error) { return redigo.Dial("tcp", addr) }}
			client := goredis.NewClient(&goredis.Options{Addr: addr})
			store := redisstore.New(pool)
			st := scsScaleStore("scs-redisstore", store)
			st.fill = func(tb testing.TB, data []byte, from, to int) {
				ctx := context.Background()
				for start := from; start < to; start += 10000 {
					pipe := client.Pipeline()
					for i := start; i < min(start+10000, to); i++ {
						pipe.Set(ctx, "scs:session:"+otherID(i), data, time.Hour)
					}
					if _, err := pipe.Exec(ctx); err != nil {
						tb.Fatal(err)
					}
				}
			}
			st.size = func(tb testing.TB) float64 { return redisUsedMemory(tb, client) }
			st.close = func() { pool.Close(); client.Close() }
			return st
		},
	}
}

// redisUsedMemory returns the Redis server's used_memory.
func redisUsedMemory(tb testing.TB, c *goredis.Client) float64 {
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	tb.Fatal("no used_memory in INFO")
	return 0
}

func postgresScaleStores(dsn string) []func() scaleStore {
	relSize := func(tb testing.TB, pool *pgxpool.Pool, table string) float64 {
		var n float64
		if err := pool.QueryRow(context.Background(), `SELECT pg_total_relation_size($1::regclass)`, table).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		return n
	}
	return []func() scaleStore{
		func() scaleStore {
			ctx := context.Background()
			pool, _ := pgxpool.New(ctx, dsn)
			b := postgres.New(pool, postgres.WithTable("scale"), postgres.WithCleanupInterval(0))
			if err := b.CreateTable(ctx); err != nil {
				panic(err)
			}
			st := ourScaleStore("starsessions-postgres", b)
			st.fill = func(tb testing.TB, data []byte, from, to int) {
				_, err := pool.Exec(ctx, `INSERT INTO scale (token_hash, data, version, expires_at)
SELECT sha256(('other:' || i)::bytea), $1, 1, now() + interval '1 hour' FROM generate_series($2::int, $3::int - 1) AS i`, data, from, to)
				if err != nil {
					tb.Fatal(err)
				}
				pool.Exec(ctx, `VACUUM ANALYZE scale`)
			}
			st.size = func(tb testing.TB) float64 { return relSize(tb, pool, "scale") }
			st.close = func() { b.Close(); pool.Close() }
			return st
		},
		func() scaleStore {
			ctx := context.Background()
			pool, _ := pgxpool.New(ctx, dsn)
			db := sql.OpenDB(stdlib.GetConnector(*mustConfig(dsn)))
			store := postgresstore.NewWithCleanupInterval(db, 0)
			st := scsScaleStore("scs-postgresstore", store)
			st.fill = func(tb testing.TB, data []byte, from, to int) {
				_, err := pool.Exec(ctx, `INSERT INTO sessions (token, data, expiry)
SELECT md5('other:' || i), $1, now() + interval '1 hour' FROM generate_series($2::int, $3::int - 1) AS i`, data, from, to)
				if err != nil {
					tb.Fatal(err)
				}
				pool.Exec(ctx, `VACUUM ANALYZE sessions`)
			}
			st.size = func(tb testing.TB) float64 { return relSize(tb, pool, "sessions") }
			st.close = func() { db.Close(); pool.Close() }
			return st
		},
	}
}

// heapInUse returns the bytes of live heap, after a collection.
func heapInUse() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc)
}

// gcTime returns the median of five forced collections' durations.
func gcTime() time.Duration {
	var ds []time.Duration
	for range 5 {
		start := time.Now()
		runtime.GC()
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[2]
}

// BenchmarkScale times reads and read-modify-writes of one session while
// its store fills with the sessions of others: 1,000, 10,000, 100,000 and
// 1,000,000 of them. Beside the time, it reports the store's bytes per
// session and, for stores in the process, how long a forced collection
// takes: none of it may grow with the store but the bytes.
func BenchmarkScale(b *testing.B) {
	stores := memoryScaleStores()
	if redisAddr != "" {
		stores = append(stores, redisScaleStores(redisAddr)...)
	}
	if postgresDSN != "" {
		stores = append(stores, postgresScaleStores(postgresDSN)...)
	}
	for _, newStore := range stores {
		scaleOne(b, newStore)
	}
}

// scaleOne fills one store and measures it at every size, as a benchmark
// of its own, so that -bench can pick stores without filling the others.
func scaleOne(b *testing.B, newStore func() scaleStore) {
	baseHeap := heapInUse()
	st := newStore()
	b.Run(st.name, func(b *testing.B) {
		var baseSize float64
		if st.size != nil {
			baseSize = st.size(b)
		}
		cookie := sessionCookie(serve(st.handler(Create), newRequest("")()))
		if cookie == "" {
			b.Fatalf("%s: no session", st.name)
		}
		sample := st.sample(b, tokenOf(cookie))
		filled := 0
		for _, size := range scaleSizes {
			st.fill(b, sample, filled, size)
			filled = size
			var perSession, gc float64
			if st.size != nil {
				perSession = (st.size(b) - baseSize) / float64(size)
			} else {
				perSession = (heapInUse() - baseHeap) / float64(size)
				gc = float64(gcTime()) / float64(time.Millisecond)
			}
			runs := []struct {
				scenario string
				h        http.Handler
			}{{"read", st.handler(Read)}, {"write", st.handler(Write)}}
			if st.idle != nil {
				runs = append(runs, struct {
					scenario string
					h        http.Handler
				}{"read-idle", st.idle(Read)})
			}
			for _, run := range runs {
				b.Run(fmt.Sprintf("sessions=%d/%s", size, run.scenario), func(b *testing.B) {
					req := newRequest(cookie)
					if rec := serve(run.h, req()); rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "Ada Lovelace:") {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
					b.ReportAllocs()
					for b.Loop() {
						serve(run.h, req())
					}
					b.ReportMetric(perSession, "B/session")
					if gc > 0 {
						b.ReportMetric(gc, "gc-ms")
					}
				})
			}
		}
	})
	st.close()
	runtime.GC()
}

// BenchmarkIdleTouches sends read-only requests to one session under a
// 30-minute idle timeout and counts what the store did beyond reading:
// PEXPIRE calls in Redis (INFO commandstats), rows updated in PostgreSQL
// (pg_stat_user_tables). With one touch per hundredth of the timeout, a
// run of a few seconds makes at most one.
func BenchmarkIdleTouches(b *testing.B) {
	ctx := context.Background()
	if redisAddr != "" {
		b.Run("redis", func(b *testing.B) {
			client := goredis.NewClient(&goredis.Options{Addr: redisAddr})
			defer client.Close()
			m := sessions.New[Session](sredis.New(client, sredis.WithPrefix("touch:")), sessions.WithCodec(sessions.Msgpack), sessions.WithIdleTimeout(30*time.Minute))
			pexpires := func() float64 {
				info, _ := client.Info(ctx, "commandstats").Result()
				for _, line := range strings.Split(info, "\r\n") {
					if rest, ok := strings.CutPrefix(line, "cmdstat_pexpire:calls="); ok {
						n, _ := strconv.ParseFloat(rest[:strings.IndexByte(rest, ',')], 64)
						return n
					}
				}
				return 0
			}
			touchRun(b, m, pexpires, "PEXPIRE")
		})
	}
	if postgresDSN != "" {
		b.Run("postgres", func(b *testing.B) {
			pool, _ := pgxpool.New(ctx, postgresDSN)
			defer pool.Close()
			pb := postgres.New(pool, postgres.WithTable("touches"), postgres.WithCleanupInterval(0))
			defer pb.Close()
			if err := pb.CreateTable(ctx); err != nil {
				b.Fatal(err)
			}
			m := sessions.New[Session](pb, sessions.WithCodec(sessions.Msgpack), sessions.WithIdleTimeout(30*time.Minute))
			updates := func() float64 {
				var n float64
				// Statistics reach the view within a second or so.
				time.Sleep(1500 * time.Millisecond)
				pool.QueryRow(ctx, `SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'touches'`).Scan(&n)
				return n
			}
			touchRun(b, m, updates, "UPDATE")
		})
	}
}

// touchRun times read-only requests on one session, and reports how many
// times the store extended it, as count tells.
func touchRun(b *testing.B, m *sessions.Manager[Session], count func() float64, what string) {
	cookie := sessionCookie(serve(starHandler(m, Create, viaValue), newRequest("")()))
	h := starHandler(m, Read, viaValue)
	req := newRequest(cookie)
	before := count()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		serve(h, req())
		n++
	}
	b.StopTimer()
	touches := count() - before
	b.ReportMetric(touches, strings.ToLower(what)+"s")
	b.ReportMetric(float64(n), "reads")
}

// latencies serves req through h for d and returns the sorted latencies.
func latencies(h http.Handler, req func() *http.Request, d time.Duration) []time.Duration {
	var out []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		start := time.Now()
		serve(h, req())
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}

func quantile(ds []time.Duration, q float64) time.Duration { return ds[int(q*float64(len(ds)-1))] }

// BenchmarkCleanupReads measures read latency on a store holding a million
// expired sessions, first at rest, then while its cleanup deletes them:
// the memory backend's sweep and PostgreSQL's cleanup. It reports the
// 50th and 99th percentiles of both, in microseconds. The cleanup must not
// stall reads: p99 during cleanup within twice the p99 at rest.
func BenchmarkCleanupReads(b *testing.B) {
	const expired = 1000000
	type subject struct {
		name    string
		handler func(Scenario) http.Handler
		fill    func(tb testing.TB)
		cleanup func(tb testing.TB)
		close   func()
	}
	var subjects []func() subject
	subjects = append(subjects, func() subject {
		store := memory.New(memory.WithSweepInterval(0))
		m := sessions.New[Session](store, sessions.WithCodec(sessions.Msgpack))
		return subject{
			name:    "memory",
			handler: func(s Scenario) http.Handler { return starHandler(m, s, viaValue) },
			fill: func(tb testing.TB) {
				data := make([]byte, 120)
				for i := range expired {
					store.Write(context.Background(), otherID(i), data, time.Millisecond)
				}
				time.Sleep(10 * time.Millisecond)
			},
			cleanup: func(tb testing.TB) { store.Sweep() },
			close:   func() { store.Close() },
		}
	})
	if postgresDSN != "" {
		subjects = append(subjects, func() subject {
			ctx := context.Background()
			pool, _ := pgxpool.New(ctx, postgresDSN)
			pb := postgres.New(pool, postgres.WithTable("cleanup"), postgres.WithCleanupInterval(0))
			if err := pb.CreateTable(ctx); err != nil {
				panic(err)
			}
			m := sessions.New[Session](pb, sessions.WithCodec(sessions.Msgpack))
			return subject{
				name:    "postgres",
				handler: func(s Scenario) http.Handler { return starHandler(m, s, viaValue) },
				fill: func(tb testing.TB) {
					_, err := pool.Exec(ctx, `INSERT INTO cleanup (token_hash, data, version, expires_at)
SELECT sha256(('expired:' || i)::bytea), $1, 1, now() - interval '1 minute' FROM generate_series(1, $2::int) AS i`, make([]byte, 120), expired)
					if err != nil {
						tb.Fatal(err)
					}
					pool.Exec(ctx, `VACUUM ANALYZE cleanup`)
				},
				cleanup: func(tb testing.TB) {
					if n, err := pb.Cleanup(ctx); err != nil || n != expired {
						tb.Errorf("Cleanup = %d, %v; want %d", n, err, expired)
					}
				},
				close: func() { pb.Close(); pool.Close() },
			}
		})
	}
	for _, newSubject := range subjects {
		sub := newSubject()
		b.Run(sub.name, func(b *testing.B) {
			cookie := sessionCookie(serve(sub.handler(Create), newRequest("")()))
			sub.fill(b)
			h, req := sub.handler(Read), newRequest(cookie)
			for b.Loop() {
				serve(h, req())
			}
			b.StopTimer()
			rest := latencies(h, req, 2*time.Second)
			var during []time.Duration
			var wg sync.WaitGroup
			done := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(done)
				start := time.Now()
				sub.cleanup(b)
				b.ReportMetric(float64(time.Since(start).Milliseconds()), "cleanup-ms")
			}()
			for running := true; running; {
				select {
				case <-done:
					running = false
				default:
					start := time.Now()
					serve(h, req())
					during = append(during, time.Since(start))
				}
			}
			wg.Wait()
			slices.Sort(during)
			us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
			b.ReportMetric(us(quantile(rest, 0.5)), "rest-p50-us")
			b.ReportMetric(us(quantile(rest, 0.99)), "rest-p99-us")
			if len(during) > 0 {
				b.ReportMetric(us(quantile(during, 0.5)), "cleanup-p50-us")
				b.ReportMetric(us(quantile(during, 0.99)), "cleanup-p99-us")
			}
		})
		sub.close()
	}
}

package bench

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
	"github.com/starsessions/sessions/postgres"
	sredis "github.com/starsessions/sessions/redis"
)

// ownerStore is a backend with an index by owner, and a way to fill it
// with other sessions quickly, below the manager.
type ownerStore struct {
	name    string
	backend sessions.Backend
	// fill stores n sessions of no owner; they are told apart from the
	// others by seed.
	fill  func(tb testing.TB, n, seed int)
	close func()
}

// otherRecord is what the filler stores: bytes of a session's size. They
// are never decoded: listing an owner reads none of them.
var otherRecord = make([]byte, 120)

func otherKey(seed, i int) [sha256.Size]byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	return sha256.Sum256(b[:])
}

func ownerStores(tb testing.TB) []ownerStore {
	var stores []ownerStore
	mem := memory.New()
	stores = append(stores, ownerStore{name: "memory", backend: mem, close: func() { mem.Close() },
		fill: func(tb testing.TB, n, seed int) {
			for i := range n {
				k := otherKey(seed, i)
				if _, err := mem.Write(context.Background(), base64.RawURLEncoding.EncodeToString(k[:]), otherRecord, time.Hour); err != nil {
					tb.Fatal(err)
				}
			}
		}})
	if redisAddr != "" {
		client := goredis.NewClient(&goredis.Options{Addr: redisAddr})
		const prefix = "owners:"
		stores = append(stores, ownerStore{name: "redis", backend: sredis.New(client, sredis.WithPrefix(prefix)), close: func() { client.Close() },
			fill: func(tb testing.TB, n, seed int) {
				ctx := context.Background()
				for start := 0; start < n; start += 10000 {
					pipe := client.Pipeline()
					for i := start; i < min(start+10000, n); i++ {
						k := otherKey(seed, i)
						key := prefix + base64.RawURLEncoding.EncodeToString(k[:])
						pipe.HSet(ctx, key, "d", otherRecord, "v", 1)
						pipe.PExpire(ctx, key, time.Hour)
					}
					if _, err := pipe.Exec(ctx); err != nil {
						tb.Fatal(err)
					}
				}
			}})
	}
	if postgresDSN != "" {
		ctx := context.Background()
		pool, err := pgxpool.New(ctx, postgresDSN)
		if err != nil {
			tb.Fatal(err)
		}
		b := postgres.New(pool, postgres.WithTable("owners"))
		if err := b.CreateTable(ctx); err != nil {
			tb.Fatal(err)
		}
		stores = append(stores, ownerStore{name: "postgres", backend: b, close: func() { b.Close(); pool.Close() },
			fill: func(tb testing.TB, n, seed int) {
				_, err := pool.Exec(ctx, `INSERT INTO owners (token_hash, data, version, expires_at)
SELECT sha256(($1::text || ':' || i)::bytea), $2, 1, now() + interval '1 hour' FROM generate_series(1, $3) AS i
ON CONFLICT DO NOTHING`, fmt.Sprint(seed), otherRecord, n)
				if err != nil {
					tb.Fatal(err)
				}
				if _, err := pool.Exec(ctx, `ANALYZE owners`); err != nil {
					tb.Fatal(err)
				}
			}})
	}
	return stores
}

// ownerHandler signs a new session in as owner.
func ownerHandler(m *sessions.Manager[Session], owner string) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.Regenerate()
		s.SetOwner(owner)
		s.Update(func(v *Session) { *v = Full() })
	}))
}

// BenchmarkOwnerSessions times Manager.Sessions for an owner with five
// sessions, in a store that holds 1,000 and then 1,000,000 sessions of
// others: the cost must not grow with the store.
func BenchmarkOwnerSessions(b *testing.B) {
	for _, st := range ownerStores(b) {
		m := sessions.New[Session](st.backend, sessions.WithCodec(sessions.Msgpack))
		owner := "owner-" + st.name
		h := ownerHandler(m, owner)
		for range 5 {
			if cookie := sessionCookie(serve(h, newRequest("")())); cookie == "" {
				b.Fatalf("%s: no session for the owner", st.name)
			}
		}
		filled := 0
		for seed, others := range []int{1000, 1000000} {
			st.fill(b, others-filled, seed)
			filled = others
			b.Run(fmt.Sprintf("%s/others=%d", st.name, others), func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					list, err := m.Sessions(ctx, owner)
					if err != nil || len(list) != 5 {
						b.Fatalf("Sessions: %d, %v", len(list), err)
					}
				}
			})
		}
		st.close()
	}
}

package bench

import (
	"context"
	"database/sql"
	"net/http"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/postgres"
	sredis "github.com/starsessions/sessions/redis"
)

// RedisVariants returns the variants that keep sessions on the Redis
// server at addr: this library, scs's redisstore, and a floor of one GET
// and one SET through go-redis.
func RedisVariants(addr string) []Variant {
	return []Variant{
		{Name: "floor-redis", New: func() Instance {
			client := goredis.NewClient(&goredis.Options{Addr: addr})
			load := func(ctx context.Context, token string) ([]byte, error) {
				data, err := client.Get(ctx, "floor:"+token).Bytes()
				if err == goredis.Nil {
					return nil, nil
				}
				return data, err
			}
			save := func(ctx context.Context, token string, payload []byte) error {
				return client.Set(ctx, "floor:"+token, payload, 24*time.Hour).Err()
			}
			return Instance{Handler: func(s Scenario) http.Handler { return floorServerSide(load, save, s) }, Close: func() { client.Close() }}
		}},
		{Name: "starsessions-redis-msgpack", New: func() Instance {
			client := goredis.NewClient(&goredis.Options{Addr: addr})
			m := sessions.New[Session](sredis.New(client), sessions.WithCodec(sessions.Msgpack))
			return Instance{Handler: func(s Scenario) http.Handler { return starHandler(m, s, viaValue) }, Close: func() { client.Close() }}
		}},
		{Name: "starsessions-redis-msgpack-idle", ReadOnly: true, New: func() Instance {
			client := goredis.NewClient(&goredis.Options{Addr: addr})
			m := sessions.New[Session](sredis.New(client), sessions.WithCodec(sessions.Msgpack), sessions.WithIdleTimeout(30*time.Minute))
			return Instance{Handler: func(s Scenario) http.Handler { return starHandler(m, s, viaValue) }, Close: func() { client.Close() }}
		}},
		{Name: "scs-redisstore", New: func() Instance {
			pool := &redigo.Pool{MaxIdle: 16, Dial: func() (redigo.Conn, error) { return redigo.Dial("tcp", addr) }}
			sm := scs.New()
			sm.Store = redisstore.New(pool)
			sm.Cookie.Name = "session"
			sm.Cookie.Secure = true
			return Instance{Handler: func(s Scenario) http.Handler { return scsHandler(sm, s) }, Close: func() { pool.Close() }}
		}},
	}
}

// PostgresVariants returns the variants that keep sessions in the
// PostgreSQL database at dsn: this library, scs's postgresstore, and a
// floor of one SELECT and one upsert through pgx.
func PostgresVariants(dsn string) ([]Variant, error) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expiry)`,
		`CREATE TABLE IF NOT EXISTS floor_sessions (token TEXT PRIMARY KEY, data BYTEA NOT NULL)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return nil, err
		}
	}
	star := postgres.New(pool, postgres.WithTable("starsessions"))
	defer star.Close()
	if err := star.CreateTable(ctx); err != nil {
		return nil, err
	}
	return []Variant{
		{Name: "floor-postgres", New: func() Instance {
			pool, _ := pgxpool.New(ctx, dsn)
			load := func(ctx context.Context, token string) ([]byte, error) {
				var data []byte
				err := pool.QueryRow(ctx, `SELECT data FROM floor_sessions WHERE token = $1`, token).Scan(&data)
				if err == pgx.ErrNoRows {
					return nil, nil
				}
				return data, err
			}
			save := func(ctx context.Context, token string, payload []byte) error {
				_, err := pool.Exec(ctx, `INSERT INTO floor_sessions (token, data) VALUES ($1, $2) ON CONFLICT (token) DO UPDATE SET data = EXCLUDED.data`, token, payload)
				return err
			}
			return Instance{Handler: func(s Scenario) http.Handler { return floorServerSide(load, save, s) }, Close: pool.Close}
		}},
		{Name: "starsessions-postgres-msgpack", New: func() Instance {
			pool, _ := pgxpool.New(ctx, dsn)
			b := postgres.New(pool, postgres.WithTable("starsessions"), postgres.WithCleanupInterval(0))
			m := sessions.New[Session](b, sessions.WithCodec(sessions.Msgpack))
			return Instance{Handler: func(s Scenario) http.Handler { return starHandler(m, s, viaValue) }, Close: func() { b.Close(); pool.Close() }}
		}},
		{Name: "starsessions-postgres-msgpack-idle", ReadOnly: true, New: func() Instance {
			pool, _ := pgxpool.New(ctx, dsn)
			b := postgres.New(pool, postgres.WithTable("starsessions"), postgres.WithCleanupInterval(0))
			m := sessions.New[Session](b, sessions.WithCodec(sessions.Msgpack), sessions.WithIdleTimeout(30*time.Minute))
			return Instance{Handler: func(s Scenario) http.Handler { return starHandler(m, s, viaValue) }, Close: func() { b.Close(); pool.Close() }}
		}},
		{Name: "scs-postgresstore", New: func() Instance {
			db := sql.OpenDB(stdlib.GetConnector(*mustConfig(dsn)))
			store := postgresstore.NewWithCleanupInterval(db, 0)
			sm := scs.New()
			sm.Store = store
			sm.Cookie.Name = "session"
			sm.Cookie.Secure = true
			return Instance{Handler: func(s Scenario) http.Handler { return scsHandler(sm, s) }, Close: func() { db.Close() }}
		}},
	}, nil
}

func mustConfig(dsn string) *pgx.ConnConfig {
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		panic(err)
	}
	return c
}

package postgres

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/testserver"
	"github.com/starsessions/sessions/sessionstest"
)

var (
	server    *testserver.Postgres
	serverErr error
)

func TestMain(m *testing.M) {
	server, serverErr = testserver.StartPostgres()
	code := m.Run()
	if server != nil {
		server.Close()
	}
	os.Exit(code)
}

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	if serverErr != nil {
		testserver.Skip(t, serverErr)
	}
	pool, err := pgxpool.New(context.Background(), server.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

var tables atomic.Int64

// newBackend returns a backend on a table of its own.
func newBackend(t *testing.T, pool *pgxpool.Pool, opts ...Option) (*Backend, string) {
	t.Helper()
	name := fmt.Sprintf("sessions_test_%d", tables.Add(1))
	b := New(pool, append([]Option{WithTable(name)}, opts...)...)
	t.Cleanup(func() { b.Close() })
	if err := b.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b, name
}

func TestConformance(t *testing.T) {
	pool := newPool(t)
	sessionstest.Run(t, sessionstest.Config{
		New: func(t *testing.T) sessionstest.Subject {
			b, table := newBackend(t, pool)
			return sessionstest.Subject{Backend: b, StoredKeys: func() []string { return storedKeys(t, pool, table) }}
		},
	})
}

// storedKeys returns the primary keys of table, raw and in hex.
func storedKeys(t *testing.T, pool *pgxpool.Pool, table string) []string {
	rows, err := pool.Query(context.Background(), `SELECT token_hash, encode(token_hash, 'hex') FROM `+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var raw []byte
		var hex string
		if err := rows.Scan(&raw, &hex); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(raw), hex)
	}
	return keys
}

func TestCreateTableIsIdempotent(t *testing.T) {
	pool := newPool(t)
	b, table := newBackend(t, pool)
	if err := b.CreateTable(context.Background()); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	var n int
	err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%expires_at%'`, table).Scan(&n)
	if err != nil || n != 1 {
		t.Errorf("indexes on expires_at: %d, %v; want 1", n, err)
	}
}

func TestSchemaQualifiedTable(t *testing.T) {
	pool := newPool(t)
	if _, err := pool.Exec(context.Background(), `CREATE SCHEMA IF NOT EXISTS app`); err != nil {
		t.Fatal(err)
	}
	b := New(pool, WithTable("app.sessions"), WithCleanupInterval(0))
	defer b.Close()
	if err := b.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	token, err := b.Write(context.Background(), sessions.NewID(), []byte("x"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if data, found, err := b.Read(context.Background(), token); !found || err != nil || string(data) != "x" {
		t.Errorf("Read = %q, %t, %v", data, found, err)
	}
}

func TestCleanupDeletesExpiredInBatches(t *testing.T) {
	pool := newPool(t)
	b, table := newBackend(t, pool, WithCleanupInterval(0))
	ctx := context.Background()
	// 2500 expired rows and one live one, inserted directly.
	if _, err := pool.Exec(ctx, `INSERT INTO `+table+` SELECT sha256(i::text::bytea), 'x', 1, now() - interval '1 hour' FROM generate_series(1, 2500) i`); err != nil {
		t.Fatal(err)
	}
	live, _ := b.Write(ctx, sessions.NewID(), []byte("live"), time.Hour)
	deleted, err := b.Cleanup(ctx)
	if err != nil || deleted != 2500 {
		t.Fatalf("Cleanup = %d, %v; want 2500", deleted, err)
	}
	if _, found, _ := b.Read(ctx, live); !found {
		t.Errorf("Cleanup deleted a live row")
	}
}

func TestBackgroundCleanupStopsOnClose(t *testing.T) {
	pool := newPool(t)
	b, table := newBackend(t, pool, WithCleanupInterval(10*time.Millisecond))
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO `+table+` VALUES (sha256('x'::bytea), 'x', 1, now() - interval '1 second')`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background cleanup did not delete the expired row")
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { b.Close(); b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}

func TestTwoAppServers(t *testing.T) {
	poolA, poolB := newPool(t), newPool(t)
	a, table := newBackend(t, poolA)
	b := New(poolB, WithTable(table), WithCleanupInterval(0))
	defer b.Close()
	sessionstest.SharedStore(t, a, b)
}

// TestServerDown stops PostgreSQL in the middle of a test; its data
// survives the restart.
func TestServerDown(t *testing.T) {
	if serverErr != nil {
		testserver.Skip(t, serverErr)
	}
	srv, err := testserver.StartPostgres()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pool, err := pgxpool.New(context.Background(), srv.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	b := New(pool, WithCleanupInterval(0))
	defer b.Close()
	if err := b.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	sessionstest.Outage(t, b, srv.Stop, srv.Start, true)
}

func TestDeadlineHonoured(t *testing.T) {
	pool := newPool(t)
	b, table := newBackend(t, pool)
	ctx := context.Background()
	token, err := b.Write(ctx, sessions.NewID(), []byte("x"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Hold a lock on the row from another transaction, so that a write
	// waits for it.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+table+` WHERE token_hash = $1 FOR UPDATE`, hash(token)); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = b.Write(dctx, token, []byte("y"), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "cancel") && dctx.Err() == nil {
		t.Errorf("Write on a locked row: err = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Write returned after %v; the 200ms deadline was not honoured", d)
	}
}

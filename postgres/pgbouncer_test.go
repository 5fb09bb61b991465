package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/testserver"
	"github.com/starsessions/sessions/sessionstest"
)

// bouncerModes are the pgx query modes that work behind PgBouncer in
// transaction mode, as the package documentation says: neither prepares a
// named statement, which would stay behind on one server connection.
var bouncerModes = []string{"exec", "simple_protocol"}

// newBouncerPool returns a pool that connects through PgBouncer in
// transaction mode, with pgx's default_query_exec_mode set to mode. It
// first holds conns transactions open at once, so that PgBouncer has that
// many server connections, which it then hands out in turn: consecutive
// statements of one pool connection run on different server sessions.
func newBouncerPool(t *testing.T, mode string, conns int) *pgxpool.Pool {
	t.Helper()
	if bouncerErr != nil {
		testserver.Skip(t, bouncerErr)
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, bouncer.DSN+"&default_query_exec_mode="+mode+"&pool_max_conns=8")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for range conns {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
	}
	return pool
}

// randomSuffix returns eight random characters that may end an unquoted
// identifier.
func randomSuffix() string {
	return strings.ToLower(strings.ReplaceAll(sessions.NewID()[:8], "-", "_"))
}

// migrationLocks counts the sessions that hold b's migration lock, as the
// server itself sees them rather than through PgBouncer.
func migrationLocks(t *testing.T, direct *pgxpool.Pool, b *Backend) int {
	t.Helper()
	// A bigint key shows as its high half in classid, its low half in
	// objid.
	var n int
	err := direct.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted
	AND (classid::bigint << 32 | objid::bigint) = hashtext($1)::bigint`, b.lockKey()).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConformanceThroughPgBouncer runs the conformance suite through
// PgBouncer in transaction mode, in each query mode that works there.
func TestConformanceThroughPgBouncer(t *testing.T) {
	direct := newPool(t)
	for _, mode := range bouncerModes {
		t.Run(mode, func(t *testing.T) {
			pool := newBouncerPool(t, mode, 4)
			sessionstest.Run(t, sessionstest.Config{
				New: func(t *testing.T) sessionstest.Subject {
					b, table := newBackend(t, pool)
					return sessionstest.Subject{Backend: b, StoredKeys: func() []string { return storedKeys(t, direct, table) }}
				},
			})
		})
	}
}

// TestCreateTableThroughPgBouncer calls CreateTable twice, then from three
// instances at once, through PgBouncer in transaction mode, on a new table
// and on an earlier release's, which takes the concurrent index builds.
// Consecutive statements run on different server sessions there, so a
// session-level advisory lock would be unlocked on a session that does
// not hold it and stay behind, and the next CreateTable would wait for it
// until its deadline: every call must succeed in time and leave no
// advisory lock held.
func TestCreateTableThroughPgBouncer(t *testing.T) {
	direct := newPool(t)
	for _, mode := range bouncerModes {
		for _, start := range []string{"new", "earlier"} {
			t.Run(mode+"/"+start, func(t *testing.T) {
				pool := newBouncerPool(t, mode, 4)
				var table string
				if start == "new" {
					table = "bouncer_" + randomSuffix()
				} else {
					table = earlierTable(t, direct, 20_000)
				}
				b := New(pool, WithTable(table), WithCleanupInterval(0))
				defer b.Close()
				create := func() error {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					b := New(pool, WithTable(table), WithCleanupInterval(0))
					defer b.Close()
					return b.CreateTable(ctx)
				}
				for i := range 2 {
					if err := create(); err != nil {
						t.Fatalf("CreateTable %d: %v", i+1, err)
					}
					if n := migrationLocks(t, direct, b); n != 0 {
						t.Fatalf("after CreateTable %d, %d sessions hold the migration lock", i+1, n)
					}
				}
				errs := make([]error, 3)
				var wg sync.WaitGroup
				for i := range errs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs[i] = create()
					}()
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("instance %d of three at once: %v", i, err)
					}
				}
				if n := migrationLocks(t, direct, b); n != 0 {
					t.Errorf("after three CreateTables at once, %d sessions hold the migration lock", n)
				}
				indexes, _ := schema(t, direct, table)
				if diff := cmp.Diff([]string{table + "_owner_idx", table + "_pkey"}, indexes); diff != "" {
					t.Errorf("indexes (-want +got):\n%s", diff)
				}
				want := []string{table + "_retired_expires_idx", table + "_retired_forward_idx", table + "_retired_pkey"}
				if diff := cmp.Diff(want, retiredIndexes(t, direct, b)); diff != "" {
					t.Errorf("the retired table's indexes (-want +got):\n%s", diff)
				}
			})
		}
	}
}

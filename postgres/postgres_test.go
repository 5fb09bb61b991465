package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/testserver"
	"github.com/starsessions/sessions/sessionstest"
)

var (
	server     *testserver.Postgres
	serverErr  error
	bouncer    *testserver.PgBouncer // in front of server, in transaction mode
	bouncerErr error
)

func TestMain(m *testing.M) {
	server, serverErr = testserver.StartPostgres()
	if bouncerErr = serverErr; server != nil {
		bouncer, bouncerErr = testserver.StartPgBouncer(server)
	}
	code := m.Run()
	if bouncer != nil {
		bouncer.Close()
	}
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

// schema returns a table's indexes and storage options.
func schema(t *testing.T, pool *pgxpool.Pool, table string) (indexes, options []string) {
	t.Helper()
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes WHERE tablename = $1`, table).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE relname = $1`, table).Scan(&options); err != nil {
		t.Fatal(err)
	}
	return indexes, options
}

// TestCreateTable checks the table's shape, that CreateTable is
// idempotent, and that it brings a table of an earlier version to the
// same shape: no index on expires_at, so that touches are HOT updates.
func TestCreateTable(t *testing.T) {
	pool := newPool(t)
	b, table := newBackend(t, pool)
	if err := b.CreateTable(context.Background()); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	want := []string{table + "_owner_idx", table + "_pkey"}
	indexes, options := schema(t, pool, table)
	if diff := cmp.Diff(want, indexes); diff != "" {
		t.Errorf("indexes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"fillfactor=80"}, options); diff != "" {
		t.Errorf("storage options (-want +got):\n%s", diff)
	}

	old := "old" + table
	_, err := pool.Exec(context.Background(), `CREATE TABLE `+old+` (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL);
CREATE INDEX `+old+`_expires_at_idx ON `+old+` (expires_at);
INSERT INTO `+old+` VALUES (sha256('x'::bytea), 'kept', 1, now() + interval '1 hour')`)
	if err != nil {
		t.Fatal(err)
	}
	ob := New(pool, WithTable(old), WithCleanupInterval(0))
	defer ob.Close()
	if err := ob.CreateTable(context.Background()); err != nil {
		t.Fatalf("CreateTable over an earlier version's table: %v", err)
	}
	indexes, options = schema(t, pool, old)
	if diff := cmp.Diff([]string{old + "_owner_idx", old + "_pkey"}, indexes); diff != "" {
		t.Errorf("an earlier version's table, indexes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"fillfactor=80"}, options); diff != "" {
		t.Errorf("an earlier version's table, storage options (-want +got):\n%s", diff)
	}
	var data string
	if err := pool.QueryRow(context.Background(), `SELECT convert_from(data, 'UTF8') FROM `+old).Scan(&data); err != nil || data != "kept" {
		t.Errorf("the earlier version's row: %q, %v", data, err)
	}
}

// TestMigrationInSchema migrates an earlier version's table in a schema of
// its own, while a long transaction has read the table: the index on
// expires_at, which lives in the table's schema, is dropped, and reads go
// on while the migration waits for that transaction.
func TestMigrationInSchema(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	schemaName := "migrate" + randomSuffix()
	_, err := pool.Exec(ctx, `CREATE SCHEMA `+schemaName+`;
CREATE TABLE `+schemaName+`.sessions (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL, owner text);
CREATE INDEX `+schemaName+`_sessions_expires_at_idx ON `+schemaName+`.sessions (expires_at)`)
	if err != nil {
		t.Fatal(err)
	}
	b := New(pool, WithTable(schemaName+".sessions"), WithCleanupInterval(0))
	defer b.Close()
	token, err := b.Write(ctx, sessions.NewID(), []byte("x"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A long transaction that has read the table: a report, a backup, an
	// old instance's cleanup.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT count(*) FROM `+schemaName+`.sessions`); err != nil {
		t.Fatal(err)
	}
	migrated := make(chan error, 1)
	go func() { migrated <- b.CreateTable(ctx) }()
	// Wait until the migration waits for the transaction.
	for deadline := time.Now().Add(time.Minute); ; {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid())`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the migration never waited for the transaction")
		}
		select {
		case err := <-migrated:
			t.Fatalf("the migration ended without waiting for the transaction: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, found, err := b.Read(rctx, token); err != nil || !found {
		t.Errorf("a read during the migration: found %t, %v", found, err)
	}
	if _, err := b.Write(rctx, sessions.NewID(), []byte("y"), time.Hour); err != nil {
		t.Errorf("a write during the migration: %v", err)
	}
	tx.Rollback(ctx)
	if err := <-migrated; err != nil {
		t.Fatal(err)
	}
	var indexes []string
	if err := pool.QueryRow(ctx, `SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes WHERE schemaname = $1`, schemaName).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	// The table of retired tokens lives in the same schema, named after
	// the table alone; its indexes are named as the owner index is.
	want := []string{schemaName + "_sessions_owner_idx", schemaName + "_sessions_retired_expires_idx",
		schemaName + "_sessions_retired_forward_idx", "sessions_pkey", "sessions_retired_pkey"}
	if diff := cmp.Diff(want, indexes); diff != "" {
		t.Errorf("indexes after the migration (-want +got):\n%s", diff)
	}
}

// TestUpdatesAreHOT saves and touches a session many times: every one of
// those updates must be a HOT update, which writes no index.
func TestUpdatesAreHOT(t *testing.T) {
	pool := newPool(t)
	b, table := newBackend(t, pool, WithCleanupInterval(0))
	ctx := context.Background()
	vw := sessions.VersionedWrite{ID: sessions.NewID(), Data: []byte("x"), TTL: time.Hour, Owner: "ann", Deadline: time.Now().Add(time.Hour)}
	if _, err := b.WriteIfVersion(ctx, vw); err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		vw.Version, vw.PreviousOwner = uint64(i+1), "ann"
		vw.Data = []byte(strings.Repeat("y", i%7))
		if _, err := b.WriteIfVersion(ctx, vw); err != nil {
			t.Fatal(err)
		}
		if err := b.Touch(ctx, vw.ID, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Statistics reach pg_stat_user_tables within a few seconds.
	var upd, hot int64
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := pool.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&upd, &hot)
		if err != nil {
			t.Fatal(err)
		}
		if upd >= 2*n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if upd != 2*n || hot != upd {
		t.Errorf("%d updates, %d of them HOT; want %d, all HOT", upd, hot, 2*n)
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
	// 100,000 expired rows, over several ranges of pages, with live rows
	// among them, inserted directly.
	if _, err := pool.Exec(ctx, `INSERT INTO `+table+` SELECT sha256(i::text::bytea), 'x', 1,
	now() + CASE WHEN i % 1000 = 0 THEN interval '1 hour' ELSE interval '-1 hour' END FROM generate_series(1, 100000) i`); err != nil {
		t.Fatal(err)
	}
	live, _ := b.Write(ctx, sessions.NewID(), []byte("live"), time.Hour)
	deleted, err := b.Cleanup(ctx)
	if err != nil || deleted != 99900 {
		t.Fatalf("Cleanup = %d, %v; want 99900", deleted, err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&left); err != nil || left != 101 {
		t.Errorf("%d rows left, %v; want the 101 live ones", left, err)
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

// earlierTable makes the table of a release before owners, with the index
// on expires_at that those releases had, holding rows rows.
func earlierTable(t *testing.T, pool *pgxpool.Pool, rows int) string {
	t.Helper()
	table := "earlier_" + randomSuffix()
	_, err := pool.Exec(context.Background(), `CREATE TABLE `+table+` (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL);
CREATE INDEX `+table+`_expires_at_idx ON `+table+` (expires_at);
INSERT INTO `+table+` SELECT sha256(i::text::bytea), 'x', 1, now() + interval '1 hour' FROM generate_series(1, `+strconv.Itoa(rows)+`) i`)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestConcurrentMigrations starts three instances at once on an earlier
// release's table, as a rolling deploy does. The one that migrates builds
// an index CONCURRENTLY, which waits for every older snapshot: the others
// must not wait for their turn inside a statement, or PostgreSQL ends the
// deadlock by failing one.
func TestConcurrentMigrations(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	table := earlierTable(t, pool, 200_000)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := New(pool, WithTable(table), WithCleanupInterval(0))
			defer b.Close()
			errs[i] = b.CreateTable(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	var indexes []string
	if err := pool.QueryRow(ctx, `SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes WHERE tablename = $1`, table).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{table + "_owner_idx", table + "_pkey"}, indexes); diff != "" {
		t.Errorf("indexes after the migration (-want +got):\n%s", diff)
	}
}

// TestMigrationGivesUpOnALongLock adds the owner column while a long
// transaction holds the table: rather than queue every request behind it,
// the step fails after its second of waiting, and succeeds when called
// again once the transaction is over.
func TestMigrationGivesUpOnALongLock(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	table := earlierTable(t, pool, 10)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT count(*) FROM `+table); err != nil {
		t.Fatal(err)
	}
	b := New(pool, WithTable(table), WithCleanupInterval(0))
	defer b.Close()
	err = b.CreateTable(ctx)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" { // lock_not_available
		t.Fatalf("CreateTable beside a long transaction: %v, want a lock timeout", err)
	}
	tx.Rollback(ctx)
	if err := b.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable once the transaction is over: %v", err)
	}
	vw := sessions.VersionedWrite{ID: sessions.NewID(), Data: []byte("x"), TTL: time.Hour, Owner: "ann", Deadline: time.Now().Add(time.Hour)}
	if _, err := b.WriteIfVersion(ctx, vw); err != nil {
		t.Fatalf("a write with an owner after the migration: %v", err)
	}
}

// TestLongTableNames makes tables whose names leave no room, or not
// enough, for their owner index's name within PostgreSQL's 63 bytes:
// CreateTable, called twice, gives each its own index under a name that
// fits, and refuses a name that PostgreSQL itself would cut.
func TestLongTableNames(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	schemaName := "long_" + randomSuffix()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+schemaName); err != nil {
		t.Fatal(err)
	}
	// name returns a table name of n bytes, unique to this test.
	name := func(n int) string {
		prefix := "t" + randomSuffix()
		return prefix + strings.Repeat("x", n-len(prefix))
	}
	shared := name(62)
	tests := []struct {
		name  string
		table string
		index string // the index's name, when it is the whole name
	}{
		{name: "index name fits", table: name(53), index: "_owner_idx"},
		{name: "index name one byte over", table: name(54)},
		{name: "longest table name", table: name(63)},
		{name: "alike in 62 bytes, one", table: shared + "a"},
		{name: "alike in 62 bytes, two", table: shared + "b"},
		{name: "multibyte characters", table: "t" + randomSuffix() + strings.Repeat("é", 27)},
		{name: "schema-qualified", table: schemaName + "." + name(60)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(pool, WithTable(tt.table), WithCleanupInterval(0))
			defer b.Close()
			for i := range 2 {
				if err := b.CreateTable(ctx); err != nil {
					t.Fatalf("CreateTable %d: %v", i+1, err)
				}
			}
			indexes := secondaryIndexes(t, pool, b)
			if len(indexes) != 1 || len(indexes[0]) > 63 || !strings.HasSuffix(indexes[0], "_owner_idx") {
				t.Fatalf("valid indexes besides the primary key: %q, want one owner index with a name of at most 63 bytes", indexes)
			}
			if want := strings.ReplaceAll(tt.table, ".", "_") + tt.index; tt.index != "" && indexes[0] != want {
				t.Errorf("index %q, want %q", indexes[0], want)
			}
			vw := sessions.VersionedWrite{ID: sessions.NewID(), Data: []byte("x"), TTL: time.Hour, Owner: "ann", Deadline: time.Now().Add(time.Hour)}
			if _, err := b.WriteIfVersion(ctx, vw); err != nil {
				t.Fatal(err)
			}
			if owned, err := b.Owned(ctx, "ann"); err != nil || len(owned) != 1 {
				t.Errorf("Owned = %d records, %v; want 1", len(owned), err)
			}
			// The retired table, and its indexes, have names that fit too.
			if n := len(retiredIndexes(t, pool, b)); n != 3 {
				t.Errorf("the retired table has %d valid indexes, want 3", n)
			}
			if err := b.RetireIfVersion(ctx, vw.ID, 1, retirement(sessions.NewID(), time.Minute, time.Hour)); err != nil {
				t.Errorf("RetireIfVersion: %v", err)
			}
			if _, found, err := b.Retired(ctx, sessions.HashToken(vw.ID)); err != nil || !found {
				t.Errorf("Retired: found %t, %v", found, err)
			}
		})
	}
	for _, table := range []string{name(64), schemaName + "." + name(64), "", schemaName + "."} {
		b := New(pool, WithTable(table), WithCleanupInterval(0))
		if err := b.CreateTable(ctx); !errors.Is(err, ErrTableName) {
			t.Errorf("CreateTable with a table named %q: %v, want ErrTableName", table, err)
		}
		b.Close()
	}
}

// TestMigrationOfLongNames migrates tables of earlier releases whose
// names were too long for their indexes' names, which PostgreSQL cut to 63
// bytes: each ends up with one valid owner index, the one it had if that
// was valid and its own, else under a name that fits, and no other index.
func TestMigrationOfLongNames(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	tests := []struct {
		name string
		n    int    // the table name's length
		ddl  string // makes {t}
		kept bool   // whether the index under the cut name stays
	}{
		{name: "before owners", n: 55, ddl: `CREATE TABLE {t} (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL);
CREATE INDEX {t}_expires_at_idx ON {t} (expires_at)`},
		{name: "owner index name cut", n: 60, ddl: `CREATE TABLE {t} (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL, owner text) WITH (fillfactor = 80);
CREATE INDEX {t}_owner_idx ON {t} (owner) WHERE owner IS NOT NULL`, kept: true},
		// A build that failed, as the catalog shows one (the tests run as
		// a superuser).
		{name: "owner index name cut, build failed", n: 60, ddl: `CREATE TABLE {t} (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL, owner text) WITH (fillfactor = 80);
CREATE INDEX {t}_owner_idx ON {t} (owner) WHERE owner IS NOT NULL;
UPDATE pg_index SET indisvalid = false WHERE indrelid = '{t}'::regclass AND NOT indisprimary`},
		{name: "owner index name cut, and another", n: 60, ddl: `CREATE TABLE {t} (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL, owner text) WITH (fillfactor = 80);
CREATE INDEX {t}_owner_idx ON {t} (owner) WHERE owner IS NOT NULL;
CREATE INDEX {new} ON {t} (owner) WHERE owner IS NOT NULL`},
		// The index's name, cut, was the table's: it was never made.
		{name: "owner index name the table's", n: 63, ddl: `CREATE TABLE {t} (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL, owner text) WITH (fillfactor = 80)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := "t" + randomSuffix()
			table += strings.Repeat("x", tt.n-len(table))
			ddl := strings.NewReplacer("{t}", table, "{new}", indexName(table, "_owner_idx")).Replace(tt.ddl)
			if _, err := pool.Exec(ctx, ddl); err != nil {
				t.Fatal(err)
			}
			b := New(pool, WithTable(table), WithCleanupInterval(0))
			defer b.Close()
			for i := range 2 {
				if err := b.CreateTable(ctx); err != nil {
					t.Fatalf("CreateTable %d: %v", i+1, err)
				}
			}
			want := indexName(table, "_owner_idx")
			if tt.kept {
				want = (table + "_owner_idx")[:63]
			}
			if diff := cmp.Diff([]string{want}, secondaryIndexes(t, pool, b)); diff != "" {
				t.Errorf("valid indexes besides the primary key (-want +got):\n%s", diff)
			}
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass AND NOT indisprimary`, b.table).Scan(&n); err != nil || n != 1 {
				t.Errorf("%d indexes besides the primary key, valid or not, %v; want 1", n, err)
			}
		})
	}
}

// secondaryIndexes returns the names of b's table's valid indexes other
// than its primary key's.
func secondaryIndexes(t *testing.T, pool *pgxpool.Pool, b *Backend) []string {
	t.Helper()
	var indexes []string
	err := pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND i.indisvalid`, b.table).Scan(&indexes)
	if err != nil {
		t.Fatal(err)
	}
	return indexes
}

// TestCreateTableOnAPoolOfOne creates a table through a pool of one
// connection, which takes one, then migrates an earlier release's table
// through it, whose index builds take two: that fails at once, saying so.
func TestCreateTableOnAPoolOfOne(t *testing.T) {
	if serverErr != nil {
		testserver.Skip(t, serverErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, server.DSN+"&pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	b := New(pool, WithTable("one_"+randomSuffix()), WithCleanupInterval(0))
	defer b.Close()
	for i := range 2 {
		if err := b.CreateTable(ctx); err != nil {
			t.Fatalf("CreateTable %d of a new table: %v", i+1, err)
		}
	}
	ob := New(pool, WithTable(earlierTable(t, pool, 10)), WithCleanupInterval(0))
	defer ob.Close()
	if err := ob.CreateTable(ctx); err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "two of the pool's connections") {
		t.Errorf("CreateTable of an earlier release's table: %v, want an error about the pool's size", err)
	}
}

// TestCancelledBuildIsRedone cancels CreateTable while its index build
// waits for an older transaction: the build leaves an invalid index, which
// the next CreateTable drops and builds again.
func TestCancelledBuildIsRedone(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	table := "cancelled_" + randomSuffix()
	if _, err := pool.Exec(ctx, `CREATE TABLE `+table+` (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL, owner text) WITH (fillfactor = 80)`); err != nil {
		t.Fatal(err)
	}
	b := New(pool, WithTable(table), WithCleanupInterval(0))
	defer b.Close()
	// A transaction with a snapshot older than the build.
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	migrated := make(chan error, 1)
	go func() { migrated <- b.CreateTable(cctx) }()
	waitForLockWait(t, pool, "CREATE INDEX CONCURRENTLY", migrated)
	cancel()
	if err := <-migrated; err == nil {
		t.Fatal("CreateTable returned no error once cancelled")
	}
	var valid bool
	if err := pool.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, indexName(table, "_owner_idx")).Scan(&valid); err != nil || valid {
		t.Fatalf("after the cancelled build: index valid %t, %v; want an invalid index", valid, err)
	}
	tx.Rollback(ctx)
	if err := b.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{indexName(table, "_owner_idx")}, secondaryIndexes(t, pool, b)); diff != "" {
		t.Errorf("valid indexes besides the primary key (-want +got):\n%s", diff)
	}
}

// waitForLockWait returns once a statement that begins with prefix waits
// for a lock, and fails the test if ended reports first.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool, prefix string, ended <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		var waiting bool
		err := pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND starts_with(query, $1))`, prefix).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s ever waited for a lock", prefix)
		}
		select {
		case err := <-ended:
			t.Fatalf("ended before %s waited for a lock: %v", prefix, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

package postgres

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/seam"
	"github.com/starsessions/sessions/internal/testserver"
)

// retirement is a Retirement for the tests, leading to successor.
func retirement(successor string, grace, ttl time.Duration) sessions.Retirement {
	return sessions.Retirement{Successor: sessions.HashToken(successor), Forward: []byte("forward"), ForwardTTL: grace,
		Tombstone: []byte("ann"), TTL: ttl}
}

// retiredColumns returns the columns of b's retired table, in order, with
// their types and whether they may be null.
func retiredColumns(t *testing.T, pool *pgxpool.Pool, b *Backend) []string {
	t.Helper()
	var cols []string
	err := pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END ORDER BY attnum), '{}')
	FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`, b.retired).Scan(&cols)
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// retiredIndexes returns the names of the valid indexes of b's retired
// table, the primary key's included.
func retiredIndexes(t *testing.T, pool *pgxpool.Pool, b *Backend) []string {
	t.Helper()
	var indexes []string
	err := pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	WHERE i.indrelid = to_regclass($1) AND i.indisvalid`, b.retired).Scan(&indexes)
	if err != nil {
		t.Fatal(err)
	}
	return indexes
}

var wantRetiredColumns = []string{
	"token_hash bytea not null",
	"successor bytea not null",
	"forward bytea",
	"forward_until timestamp with time zone not null",
	"tombstone bytea not null",
	"expires_at timestamp with time zone not null",
}

// TestMigrationToRenewal runs CreateTable over the table of the release
// before renewal, which has no retired table: it creates one beside it,
// with its indexes, and leaves the records as they were, so that a session
// from before the migration can be renewed. Before the migration, the
// cleanup has no retired table to clean, and is content with that.
func TestMigrationToRenewal(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	table := "prerenewal_" + randomSuffix()
	token := sessions.NewID()
	_, err := pool.Exec(ctx, `CREATE TABLE `+table+` (token_hash bytea PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz NOT NULL, owner text) WITH (fillfactor = 80);
CREATE INDEX `+table+`_owner_idx ON `+table+` (owner) WHERE owner IS NOT NULL;
INSERT INTO `+table+` VALUES (sha256(convert_to('`+token+`', 'UTF8')), 'kept', 3, now() + interval '1 hour', 'ann')`)
	if err != nil {
		t.Fatal(err)
	}
	b := New(pool, WithTable(table), WithCleanupInterval(0))
	defer b.Close()
	if _, err := b.Cleanup(ctx); err != nil {
		t.Errorf("Cleanup before the migration: %v, want none: there is no retired table to clean yet", err)
	}
	if err := b.RetireIfVersion(ctx, token, 3, retirement(sessions.NewID(), time.Minute, time.Hour)); err == nil {
		t.Fatal("RetireIfVersion before the migration succeeded; the test's table has a retired table already")
	}
	for i := range 2 {
		if err := b.CreateTable(ctx); err != nil {
			t.Fatalf("CreateTable %d: %v", i+1, err)
		}
	}
	if diff := cmp.Diff(wantRetiredColumns, retiredColumns(t, pool, b)); diff != "" {
		t.Errorf("the retired table's columns (-want +got):\n%s", diff)
	}
	want := []string{table + "_retired_expires_idx", table + "_retired_forward_idx", table + "_retired_pkey"}
	if diff := cmp.Diff(want, retiredIndexes(t, pool, b)); diff != "" {
		t.Errorf("the retired table's indexes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{table + "_owner_idx"}, secondaryIndexes(t, pool, b)); diff != "" {
		t.Errorf("the records table's indexes besides its primary key (-want +got):\n%s", diff)
	}

	successor, err := b.WriteIfVersion(ctx, sessions.VersionedWrite{ID: sessions.NewID(), Data: []byte("moved"), TTL: time.Hour, Owner: "ann", Deadline: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RetireIfVersion(ctx, token, 3, retirement(successor, time.Minute, time.Hour)); err != nil {
		t.Fatalf("RetireIfVersion of a session from before the migration: %v", err)
	}
	e, found, err := b.Retired(ctx, sessions.HashToken(token))
	if err != nil || !found || string(e.Forward) != "forward" || string(e.Record.Data) != "moved" || e.Record.Version != 1 {
		t.Errorf("Retired = %+v, %t, %v; want the entry and the successor's record", e, found, err)
	}
	if owned, err := b.Owned(ctx, "ann"); err != nil || len(owned) != 1 || string(owned[0].Data) != "moved" {
		t.Errorf("Owned = %v, %v; want the successor alone", owned, err)
	}
}

// TestCleanupOfRetiredTokens fills the retired table with entries in each
// stage of their life: the cleanup deletes the expired ones, over several
// batches, erases the forwarding of those past their grace, and leaves the
// rest. Reads stop returning the forwarding at the end of the grace
// without it, by the database's clock.
func TestCleanupOfRetiredTokens(t *testing.T) {
	pool := newPool(t)
	b, _ := newBackend(t, pool, WithCleanupInterval(0))
	ctx := context.Background()
	const expired, pastGrace, inGrace = 2*cleanupRows + 10, 100, 10
	_, err := pool.Exec(ctx, `INSERT INTO `+b.retired+` SELECT sha256(i::text::bytea), sha256(('s' || i)::text::bytea),
	CASE WHEN i % 2 = 0 THEN 'forward'::bytea END, now() - interval '2 hours', 't', now() - interval '1 hour'
FROM generate_series(1, $1) i`, expired)
	if err != nil {
		t.Fatal(err)
	}
	pastKey, inKey := sessions.HashToken(sessions.NewID()), sessions.HashToken(sessions.NewID())
	successor := mustWrite(t, b, "live")
	for i, row := range []struct {
		key   []byte
		n     int
		grace string
	}{{pastKey[:], pastGrace, "-1 minute"}, {inKey[:], inGrace, "1 hour"}} {
		_, err := pool.Exec(ctx, `INSERT INTO `+b.retired+` SELECT CASE WHEN i = 1 THEN $1 ELSE sha256(($2::text || i)::bytea) END, $3,
	'forward', now() + $4::interval, 't', now() + interval '1 hour' FROM generate_series(1, $5) i`,
			row.key, "live"+string(rune('a'+i)), hash(successor), row.grace, row.n)
		if err != nil {
			t.Fatal(err)
		}
	}
	if e, found, err := b.Retired(ctx, pastKey); err != nil || !found || e.Forward != nil || e.Record.Data != nil || string(e.Tombstone) != "t" {
		t.Errorf("Retired past the grace, before the cleanup = %+v, %t, %v; want the tombstone alone", e, found, err)
	}
	if e, found, err := b.Retired(ctx, inKey); err != nil || !found || string(e.Forward) != "forward" || string(e.Record.Data) != "live" {
		t.Errorf("Retired within the grace = %+v, %t, %v; want the forwarding and the successor's record", e, found, err)
	}

	deleted, err := b.Cleanup(ctx)
	if err != nil || deleted != expired {
		t.Fatalf("Cleanup = %d, %v; want %d", deleted, err, expired)
	}
	var rows, forwards int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(forward) FROM `+b.retired).Scan(&rows, &forwards); err != nil {
		t.Fatal(err)
	}
	if rows != pastGrace+inGrace || forwards != inGrace {
		t.Errorf("after the cleanup, %d entries, %d with their forwarding; want %d, %d", rows, forwards, pastGrace+inGrace, inGrace)
	}
	if e, found, err := b.Retired(ctx, inKey); err != nil || !found || string(e.Forward) != "forward" {
		t.Errorf("Retired within the grace, after the cleanup = %+v, %t, %v; want the forwarding", e, found, err)
	}
	if _, found, _ := b.Read(ctx, successor); !found {
		t.Error("the cleanup deleted a live record")
	}
	if deleted, err := b.Cleanup(ctx); err != nil || deleted != 0 {
		t.Errorf("a second Cleanup = %d, %v; want 0", deleted, err)
	}
}

func mustWrite(t *testing.T, b *Backend, data string) string {
	t.Helper()
	token, err := b.Write(context.Background(), sessions.NewID(), []byte(data), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestRemoveKeyBesideRetirement removes a key while it is being retired,
// many times: whichever goes first, no entry may outlive both, as it would
// if RemoveKey read the entries before the retirement committed. An
// entry left behind would lead, within the grace, to a session whose
// end was asked for.
func TestRemoveKeyBesideRetirement(t *testing.T) {
	pool := newPool(t)
	b, _ := newBackend(t, pool, WithCleanupInterval(0))
	ctx := context.Background()
	successor := mustWrite(t, b, "successor")
	retiredFirst := 0
	for range 200 {
		token := mustWrite(t, b, "rec")
		key := sessions.HashToken(token)
		var retireErr, removeErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			retireErr = b.RetireIfVersion(ctx, token, 1, retirement(successor, time.Minute, time.Hour))
		}()
		go func() {
			defer wg.Done()
			removeErr = b.RemoveKey(ctx, key)
		}()
		wg.Wait()
		if removeErr != nil || retireErr != nil && !errors.Is(retireErr, sessions.ErrConflict) {
			t.Fatalf("RemoveKey: %v; RetireIfVersion: %v", removeErr, retireErr)
		}
		if retireErr == nil {
			retiredFirst++
		}
		if _, found, err := b.Retired(ctx, key); err != nil || found {
			t.Fatalf("after RemoveKey beside RetireIfVersion (which returned %v), Retired found %t, %v; want no entry", retireErr, found, err)
		}
		if _, found, _ := b.Read(ctx, token); found {
			t.Fatal("after RemoveKey, the record is still there")
		}
	}
	t.Logf("the retirement went first %d times in 200", retiredFirst)
}

// statementLog is a pgx tracer that keeps the statements a pool runs.
type statementLog struct {
	mu  sync.Mutex
	sql []string
}

func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	l.sql = append(l.sql, d.SQL)
	l.mu.Unlock()
	return ctx
}

func (l *statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the statements run since the last take.
func (l *statementLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.sql
	l.sql = nil
	return out
}

// TestRenewalStatements counts the statements a manager with WithRenewal
// runs on PostgreSQL: a request with the current token runs the read it
// runs without renewal, and no more; the request that renews adds the
// retirement, and one with the retired token within its grace the lookup
// of its entry, with the successor's record.
func TestRenewalStatements(t *testing.T) {
	if serverErr != nil {
		testserver.Skip(t, serverErr)
	}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(server.DSN)
	if err != nil {
		t.Fatal(err)
	}
	log := &statementLog{}
	cfg.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b, _ := newBackend(t, pool, WithCleanupInterval(0))

	type visits struct{ N int }
	m := sessions.New[visits](b, sessions.WithCookieName("sid"), sessions.WithRenewal(time.Minute, 10*time.Second))
	var mu sync.Mutex
	now := time.Now()
	seam.SetNow(m, func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	})
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if r.URL.Path == "/inc" {
			s.Update(func(v *visits) { v.N++ })
		}
	}))
	// send sends a request with token, and returns the token the response
	// set, or token when it set none.
	send := func(path, token string) string {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "https://example.com"+path, nil)
		if token != "" {
			req.AddCookie(&http.Cookie{Name: "sid", Value: token})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == "sid" {
				return c.Value
			}
		}
		return token
	}
	check := func(what string, want ...string) {
		t.Helper()
		if diff := cmp.Diff(want, log.take()); diff != "" {
			t.Errorf("%s: statements (-want +got):\n%s", what, diff)
		}
	}

	first := send("/inc", "")
	log.take()
	if send("/read", first) != first {
		t.Fatal("the token changed before its renewal was due")
	}
	check("a read with the current token", b.q.read)

	mu.Lock()
	now = now.Add(time.Minute + time.Second)
	mu.Unlock()
	successor := send("/read", first)
	if successor == first {
		t.Fatal("no renewal once due")
	}
	check("the read that renews", b.q.read, b.q.create0, b.q.retire)

	if got := send("/read", first); got != successor {
		t.Error("the retired token within its grace was not sent its successor")
	}
	check("a read with the retired token within its grace", b.q.read, b.q.retired)

	send("/read", successor)
	check("a read with the successor", b.q.read)
}

// TestRetiredTableNameTaken makes a table of another shape under the
// retired table's name: CreateTable fails, saying so, rather than let
// every retirement fail later.
func TestRetiredTableNameTaken(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	table := "taken_" + randomSuffix()
	if _, err := pool.Exec(ctx, `CREATE TABLE `+table+`_retired (id int)`); err != nil {
		t.Fatal(err)
	}
	b := New(pool, WithTable(table), WithCleanupInterval(0))
	defer b.Close()
	if err := b.CreateTable(ctx); err == nil || !strings.Contains(err.Error(), "another shape") {
		t.Errorf("CreateTable beside a foreign table under the retired table's name: %v, want an error about it", err)
	}
}

// TestRetiredTableNames checks the retired table's names that long table
// names give: each fits, is in the table's schema, and differs for
// tables whose names begin alike.
func TestRetiredTableNames(t *testing.T) {
	long := strings.Repeat("x", 60)
	tests := []struct{ table, want string }{
		{"sessions", "sessions_retired"},
		{"app.sessions", "app.sessions_retired"},
		{strings.Repeat("x", 55), strings.Repeat("x", 55) + "_retired"},
	}
	for _, tt := range tests {
		if got := strings.Join(retiredName(tt.table), "."); got != tt.want {
			t.Errorf("retiredName(%q) = %q, want %q", tt.table, got, tt.want)
		}
	}
	var names []string
	for _, table := range []string{long + "abc", long + "abd", "app." + long + "abc", strings.Repeat("x", 56), strings.Repeat("é", 31)} {
		parts := retiredName(table)
		last := parts[len(parts)-1]
		if len(last) > maxIdentifier || !strings.HasSuffix(last, "_retired") {
			t.Errorf("retiredName(%q) = %q: too long, or without its suffix", table, parts)
		}
		names = append(names, strings.Join(parts, "."))
	}
	slices.Sort(names)
	if unique := slices.Compact(slices.Clone(names)); len(unique) != len(names) {
		t.Errorf("two tables were given one retired table: %q", names)
	}
}

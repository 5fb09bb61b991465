// Package postgres provides a [sessions.Backend] on PostgreSQL, through
// github.com/jackc/pgx/v5.
//
// # Schema
//
// [Backend.CreateTable] creates two tables, idempotently: the records,
//
//	CREATE TABLE IF NOT EXISTS sessions (
//		token_hash bytea PRIMARY KEY,        -- SHA-256 of the token, never the token
//		data       bytea NOT NULL,           -- the manager's record
//		version    bigint NOT NULL,          -- advanced by every write
//		expires_at timestamptz NOT NULL,     -- not indexed: see below
//		owner      text                      -- the session's owner, if any
//	) WITH (fillfactor = 80);
//	CREATE INDEX sessions_owner_idx ON sessions (owner) WHERE owner IS NOT NULL;
//
// and the entries that tokens retired by [sessions.WithRenewal] leave:
//
//	CREATE TABLE IF NOT EXISTS sessions_retired (
//		token_hash    bytea PRIMARY KEY,     -- SHA-256 of the retired token
//		successor     bytea NOT NULL,        -- SHA-256 of the token it moved to
//		forward       bytea,                 -- the manager's sealed successor, for the grace
//		forward_until timestamptz NOT NULL,  -- the end of the grace
//		tombstone     bytea NOT NULL,        -- the manager's bytes for after the grace
//		expires_at    timestamptz NOT NULL   -- when the entry goes
//	);
//	CREATE INDEX sessions_retired_expires_idx ON sessions_retired (expires_at);
//	CREATE INDEX sessions_retired_forward_idx ON sessions_retired (forward_until) WHERE forward IS NOT NULL;
//
// The second table is created whether or not renewal is on, and stays
// empty without it. It lives in the first one's schema and is named after
// it, without the schema's name ("app.sessions" gives
// app.sessions_retired); a relation of another kind already under that
// name, that is not such a table, makes CreateTable fail.
//
// An index is named after its table, with its schema's name joined by
// "_" when it has one ("app.sessions" gives app_sessions_owner_idx). When
// that name would pass PostgreSQL's limit of 63 bytes on identifiers, it
// is cut to fit, and eight hex digits of a hash of the whole table name
// go before the suffix ("_owner_idx"), so that tables whose long names
// begin alike still get an index each; the retired table's own name is
// cut and tagged the same way before "_retired". (A table that an earlier
// release made keeps the index it has under the name PostgreSQL cut,
// rather than wait for a new build.) A table name with an empty part, or
// a schema or table part past the limit, is refused with [ErrTableName].
//
// Saves and touches change only columns no index covers (data, version,
// expires_at, and owner only at login), and the table leaves a fifth of
// each page free, so that PostgreSQL can make most of them HOT updates:
// when the new row version fits on the same page, none of the table's
// indexes is written, which keeps session tables from bloating under
// load. (A record large enough to be stored out of line, over about 2 kB,
// still writes its TOAST table's index.) Cleanup therefore finds expired
// rows without an index, walking the table in ranges of pages rather than
// scanning it in one statement; that takes the TID range scans of
// PostgreSQL 14 or later, without which each range reads the whole table.
// CreateTable also brings a table made by an earlier version to this
// shape: it adds the owner column and its index, sets the fillfactor,
// drops the index on expires_at, and creates the retired table beside it.
//
// The retired table, unlike the records table, is written once per entry
// and never updated by a request, so an index on its expiry costs little,
// and its cleanup finds expired entries through it. Its cleanup also
// erases the forwarding bytes of entries past their grace, which reads
// stopped returning then, so that copies of the store made after hold
// none; the partial index on forward_until finds them, and holds only the
// entries still within their grace or awaiting that erasure.
// The table name is configurable with [WithTable]. Expiry is measured by
// the database's clock (now()), so that every application server agrees;
// reads return the time a row has left rather than its timestamp, so that
// an application server whose clock is off still decides touches right.
//
// # Guarantees
//
// The backend implements [sessions.VersionedBackend], [sessions.OwnerIndex],
// [sessions.Toucher] and [sessions.Renewer]. The owner is a column of the
// session's own row, written by the same statement as the data, so the
// index by owner is exact. Each operation is a single statement, atomic
// under PostgreSQL's default isolation: a conditional write is
// UPDATE … WHERE version = $n (or an INSERT that only replaces an expired
// row, for a new session), a conditional remove a DELETE … WHERE
// version = $n, and a touch an UPDATE of expires_at on a live row only, so
// it never brings a removed session back. A retirement is the conditional
// remove with an INSERT of the retired token's entry that takes its rows
// from the DELETE's (a data-modifying WITH), so that the entry is stored
// if and only if the record went; reading an entry reads the successor's
// record in the same SELECT. The one operation of two statements is
// [Backend.RemoveKey], which ends a session whose retired token came back
// too late: it runs them in one read-committed transaction, so that a
// retirement of the same key at the same moment either fails or has its
// entry removed too. Reads ignore expired rows and forwarding past its
// grace, by the database's clock; a background cleanup deletes expired
// rows from both tables until [Backend.Close] stops it.
//
// # PgBouncer
//
// The backend works through PgBouncer in transaction pooling mode with
// pgx's query mode set to exec or simple_protocol in the connection
// string (default_query_exec_mode=exec); the tests run the conformance
// suite, and CreateTable from several instances at once, that way in
// both. Neither mode prepares a named statement. pgx's default mode,
// cache_statement, does, on whichever server connection PgBouncer lent
// for that transaction, and later transactions find it missing, or
// already there, on the connection they get (SQLSTATE 26000 or 42P05),
// unless that PgBouncer tracks prepared statements itself (its
// max_prepared_statements setting). Nothing else needs a server
// connection to outlive a transaction: each operation is one statement
// or one transaction, and CreateTable's lock is transaction-scoped.
//
// # Cost
//
// One round trip per read, save or touch; a regenerate adds one for
// removing the old row. With [sessions.WithRenewal], a renewal is a save
// and one round trip that retires the old token; a request with the
// current token costs nothing more, and one with a retired token within
// its grace one round trip more, the lookup of its entry with the
// successor's record. Every statement honours the request context's
// deadline. When the database is down, calls fail, the manager's error
// handler answers with a 5xx, and the pool reconnects by itself once the
// database is back.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/starsessions/sessions"
)

// DefaultTable is the table name unless [WithTable] says otherwise.
const DefaultTable = "sessions"

// ErrTableName reports a table name, given with [WithTable], with an empty
// part or one that PostgreSQL would cut short: [Backend.CreateTable]
// refuses it rather than make a table under another name than the one
// asked for.
var ErrTableName = errors.New("postgres: table name does not fit PostgreSQL's identifiers")

// maxIdentifier is the longest identifier PostgreSQL keeps whole, in
// bytes (NAMEDATALEN-1 in a default build); it cuts longer ones short.
const maxIdentifier = 63

// indexName names an index of table: the table's name with its schema's
// joined by "_", then suffix. When that does not fit in an identifier,
// the name is cut and a hash of the whole table name added before suffix.
// PostgreSQL would cut the suffix instead: tables whose names begin alike
// would then share one index name, so that only the first got an index,
// and a table of 63 bytes would give its index its own name.
func indexName(table, suffix string) string {
	return fitName(strings.ReplaceAll(table, ".", "_"), table, suffix)
}

// fitName returns base+suffix when that fits in an identifier, and
// otherwise base cut short, then a hash of table, the whole name of the
// table it derives from, then suffix: see indexName.
func fitName(base, table, suffix string) string {
	name := base + suffix
	if len(name) <= maxIdentifier {
		return name
	}
	sum := sha256.Sum256([]byte(table))
	tag := "_" + hex.EncodeToString(sum[:4]) + suffix
	cut := maxIdentifier - len(tag)
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + tag
}

// retiredName names the table of retired tokens' entries, in table's
// schema: the table's own name, without its schema's, then "_retired",
// cut and tagged as indexName does when that does not fit.
func retiredName(table string) []string {
	parts := strings.Split(table, ".")
	last := len(parts) - 1
	return append(parts[:last:last], fitName(parts[last], table, "_retired"))
}

// DefaultCleanupInterval is how often expired rows are deleted unless
// [WithCleanupInterval] says otherwise.
const DefaultCleanupInterval = 5 * time.Minute

// cleanupPages bounds how many pages of the table one cleanup statement
// looks at, and so how many rows it deletes and locks at once: for
// sessions of a few hundred bytes, a few thousand rows, up to about twenty
// thousand for tiny ones; a few milliseconds of work.
const cleanupPages = 200

// cleanupRows bounds how many retired tokens' entries one cleanup
// statement deletes or erases the forwarding of, found through an index.
const cleanupRows = 5000

// Backend is a [sessions.Backend] on PostgreSQL. It is safe for concurrent
// use.
type Backend struct {
	pool    *pgxpool.Pool
	table   string // quoted identifier
	retired string // quoted identifier of the table of retired tokens' entries
	nameErr error  // what is wrong with the table's name, for CreateTable
	q       queries

	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	logger    *slog.Logger
}

var (
	_ sessions.Backend          = (*Backend)(nil)
	_ sessions.RecordReader     = (*Backend)(nil)
	_ sessions.VersionedBackend = (*Backend)(nil)
	_ sessions.OwnerIndex       = (*Backend)(nil)
	_ sessions.Toucher          = (*Backend)(nil)
	_ sessions.Renewer          = (*Backend)(nil)
)

// An Option configures a [Backend].
type Option func(*config)

type config struct {
	table    string
	interval time.Duration
	logger   *slog.Logger
}

// WithTable sets the table's name, which may be schema-qualified
// ("app.sessions"); the default is [DefaultTable]. Each part is at most 63
// bytes, PostgreSQL's limit: see Schema in the package documentation.
func WithTable(name string) Option { return func(c *config) { c.table = name } }

// WithCleanupInterval sets how often the background cleanup deletes
// expired rows; the default is [DefaultCleanupInterval]. Zero or less
// turns it off: expired rows are still never read, but stay in the table.
func WithCleanupInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithLogger sets the logger for cleanup failures; the default is
// [slog.Default].
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// remaining is the milliseconds a row has left to live.
const remaining = `(extract(epoch FROM expires_at - now()) * 1000)::bigint`

// queries are the statements, with the table name filled in.
type queries struct {
	create, createIndex, read, write, writeIf, create0, remove, removeIf, touch, pages, cleanup, owned, removeOwned string

	// The table of retired tokens' entries (see renew.go).
	retiredShape                                                        string
	retiredShapeArgs                                                    []any
	createRetired, createRetiredExpiresIndex, createRetiredForwardIndex string
	retire, retired, removeRetired, cleanupRetired, scrubRetired        string

	// The migration of a table an earlier release made.
	shape                                                                        string
	shapeArgs                                                                    []any
	addOwner, fillfactor, dropOldIndex, dropOwnerIndex, ownerIndex, dropCutIndex string
}

// New returns a backend that stores sessions through pool, and starts the
// background cleanup. The caller owns the pool and closes it, after
// [Backend.Close]. Call [Backend.CreateTable] once to create the table.
func New(pool *pgxpool.Pool, opts ...Option) *Backend {
	c := config{table: DefaultTable, interval: DefaultCleanupInterval}
	for _, opt := range opts {
		opt(&c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	parts := strings.Split(c.table, ".")
	table := pgx.Identifier(parts).Sanitize()
	// An index lives in its table's schema: name it there, or DROP INDEX
	// would look for it on the search path.
	inSchema := func(name string) string {
		return pgx.Identifier(append(parts[:len(parts)-1:len(parts)-1], name)).Sanitize()
	}
	base := strings.ReplaceAll(c.table, ".", "_")
	// Earlier releases named this index in full and PostgreSQL cut the
	// name to its limit: the same cut finds it again.
	oldIndex := inSchema(base + "_expires_at_idx")
	ownerIndexBare := indexName(c.table, "_owner_idx")
	ownerIndex := inSchema(ownerIndexBare)
	// Where that name is not the whole one, earlier releases made the
	// index under the whole name, and PostgreSQL cut it.
	cutOwnerIndex := inSchema(base + "_owner_idx")
	ownerIndexName := pgx.Identifier{ownerIndexBare}.Sanitize()
	retiredParts := retiredName(c.table)
	retired := pgx.Identifier(retiredParts).Sanitize()
	retiredWhole := strings.Join(retiredParts, ".")
	retiredExpiresIndex := pgx.Identifier{indexName(retiredWhole, "_expires_idx")}.Sanitize()
	retiredForwardIndex := pgx.Identifier{indexName(retiredWhole, "_forward_idx")}.Sanitize()
	var nameErr error
	for _, part := range parts {
		if part == "" || len(part) > maxIdentifier {
			nameErr = fmt.Errorf("%w: %q: each dot-separated part must be 1 to %d bytes", ErrTableName, c.table, maxIdentifier)
		}
	}
	t := strings.NewReplacer("{table}", table, "{retired}", retired).Replace
	b := &Backend{
		pool:    pool,
		table:   table,
		retired: retired,
		nameErr: nameErr,
		logger:  c.logger,
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		q: queries{
			create: t(`CREATE TABLE {table} (
	token_hash bytea PRIMARY KEY,
	data bytea NOT NULL,
	version bigint NOT NULL,
	expires_at timestamptz NOT NULL,
	owner text
) WITH (fillfactor = 80)`),
			// Inside the transaction that creates the table, which nobody
			// else can see yet, so nothing waits for the build.
			createIndex: t(`CREATE INDEX ` + ownerIndexName + ` ON {table} (owner) WHERE owner IS NOT NULL`),
			// The indexes of earlier releases have names that PostgreSQL
			// may have cut, to the table's own name or another's: only an
			// index of this table counts.
			shape: `SELECT
	EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'owner' AND NOT attisdropped),
	coalesce((SELECT 'fillfactor=80' = ANY(reloptions) FROM pg_class WHERE oid = to_regclass($1)), false),
	EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($2) AND indrelid = to_regclass($1)),
	coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($3)), false),
	to_regclass($3) IS NOT NULL,
	$4 <> $3 AND EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($4) AND indrelid = to_regclass($1)),
	$4 <> $3 AND coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($4) AND indrelid = to_regclass($1)), false)`,
			shapeArgs:      []any{table, oldIndex, ownerIndex, cutOwnerIndex},
			dropCutIndex:   `DROP INDEX CONCURRENTLY IF EXISTS ` + cutOwnerIndex,
			addOwner:       t(`ALTER TABLE {table} ADD COLUMN IF NOT EXISTS owner text`),
			fillfactor:     t(`ALTER TABLE {table} SET (fillfactor = 80)`),
			dropOldIndex:   `DROP INDEX CONCURRENTLY IF EXISTS ` + oldIndex,
			dropOwnerIndex: `DROP INDEX CONCURRENTLY IF EXISTS ` + ownerIndex,
			ownerIndex:     t(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ` + ownerIndexName + ` ON {table} (owner) WHERE owner IS NOT NULL`),
			// The expiry goes out as the time left, in milliseconds, so that
			// the application adds it to its own clock: the two clocks
			// need not agree.
			read: t(`SELECT data, version, ` + remaining + ` FROM {table} WHERE token_hash = $1 AND expires_at > now()`),
			// A plain write: insert, or replace whatever is there, keeping
			// a live row's owner.
			write: t(`INSERT INTO {table} AS s (token_hash, data, version, expires_at)
VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
ON CONFLICT (token_hash) DO UPDATE SET
	data = EXCLUDED.data,
	version = CASE WHEN s.expires_at > now() THEN s.version + 1 ELSE 1 END,
	owner = CASE WHEN s.expires_at > now() THEN s.owner END,
	expires_at = EXCLUDED.expires_at`),
			// A conditional write over a live row at version $4.
			writeIf: t(`UPDATE {table} SET data = $2, version = version + 1, expires_at = now() + $3 * interval '1 millisecond', owner = NULLIF($5, '')
WHERE token_hash = $1 AND version = $4 AND expires_at > now()`),
			// A conditional write of a new session: it may replace only an
			// expired row.
			create0: t(`INSERT INTO {table} AS s (token_hash, data, version, expires_at, owner)
VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond', NULLIF($4, ''))
ON CONFLICT (token_hash) DO UPDATE SET data = EXCLUDED.data, version = 1, expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner
WHERE s.expires_at <= now()`),
			owned:       t(`SELECT token_hash, data, version, ` + remaining + ` FROM {table} WHERE owner = $1 AND expires_at > now()`),
			removeOwned: t(`DELETE FROM {table} WHERE token_hash = $1 AND owner = $2 AND expires_at > now()`),
			remove:      t(`DELETE FROM {table} WHERE token_hash = $1`),
			removeIf:    t(`DELETE FROM {table} WHERE token_hash = $1 AND version = $2 AND expires_at > now()`),
			touch:       t(`UPDATE {table} SET expires_at = now() + $2 * interval '1 millisecond' WHERE token_hash = $1 AND expires_at > now()`),
			pages:       `SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint`,
			cleanup: t(`DELETE FROM {table} WHERE ctid >= format('(%s,0)', $1::bigint)::tid
	AND ctid < format('(%s,0)', $1::bigint + ` + fmt.Sprint(cleanupPages) + `)::tid AND expires_at <= now()`),

			// Whether a relation has the retired table's name, and whether
			// it is one: a table with the column only it has.
			retiredShape: `SELECT to_regclass($1) IS NOT NULL,
	EXISTS (SELECT 1 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
		WHERE c.oid = to_regclass($1) AND c.relkind = 'r' AND a.attname = 'forward_until' AND NOT a.attisdropped)`,
			retiredShapeArgs: []any{retired},
			createRetired: t(`CREATE TABLE {retired} (
	token_hash bytea PRIMARY KEY,
	successor bytea NOT NULL,
	forward bytea,
	forward_until timestamptz NOT NULL,
	tombstone bytea NOT NULL,
	expires_at timestamptz NOT NULL
)`),
			// Both inside the transaction that creates the table, as the
			// records table's index is.
			createRetiredExpiresIndex: t(`CREATE INDEX ` + retiredExpiresIndex + ` ON {retired} (expires_at)`),
			createRetiredForwardIndex: t(`CREATE INDEX ` + retiredForwardIndex + ` ON {retired} (forward_until) WHERE forward IS NOT NULL`),
			// One statement, so that the record goes if and only if the
			// entry comes: the DELETE returns the row it removed, and the
			// INSERT makes an entry for each row returned, none when the
			// version did not match. An entry already under the key, left
			// by an earlier retirement of a token written again since,
			// gives way to the new one. The casts are for the simple
			// protocol, whose parameters come as untyped literals.
			retire: t(`WITH gone AS (
	DELETE FROM {table} WHERE token_hash = $1 AND version = $2 AND expires_at > now() RETURNING token_hash
)
INSERT INTO {retired} AS r (token_hash, successor, forward, forward_until, tombstone, expires_at)
SELECT token_hash, $3::bytea, $4::bytea, now() + $5::bigint * interval '1 millisecond', $6::bytea, now() + $7::bigint * interval '1 millisecond'
FROM gone
ON CONFLICT (token_hash) DO UPDATE SET successor = EXCLUDED.successor, forward = EXCLUDED.forward,
	forward_until = EXCLUDED.forward_until, tombstone = EXCLUDED.tombstone, expires_at = EXCLUDED.expires_at`),
			// The entry, and while its forwarding lasts the successor's
			// live record, under one snapshot: one round trip, and an
			// entry and a record that belong together.
			retired: t(`SELECT r.successor, r.tombstone, CASE WHEN r.forward_until > now() THEN r.forward END,
	s.data, s.version, (extract(epoch FROM s.expires_at - now()) * 1000)::bigint
FROM {retired} r LEFT JOIN {table} s ON r.forward_until > now() AND s.token_hash = r.successor AND s.expires_at > now()
WHERE r.token_hash = $1 AND r.expires_at > now()`),
			removeRetired: t(`DELETE FROM {retired} WHERE token_hash = $1`),
			// Entries go through the index on expires_at, a batch at a
			// time. The rows are locked, skipping those another
			// instance's cleanup holds, so that the expiry is checked
			// again on the row as it is now: an entry that a new
			// retirement replaced meanwhile stays.
			cleanupRetired: t(`DELETE FROM {retired} WHERE token_hash IN (
	SELECT token_hash FROM {retired} WHERE expires_at <= now() LIMIT ` + fmt.Sprint(cleanupRows) + ` FOR UPDATE SKIP LOCKED)`),
			// The forwarding bytes of an entry past its grace are never
			// read again; erasing them keeps them out of the copies of
			// the store made from then on.
			scrubRetired: t(`UPDATE {retired} SET forward = NULL WHERE token_hash IN (
	SELECT token_hash FROM {retired} WHERE forward IS NOT NULL AND forward_until <= now() LIMIT ` + fmt.Sprint(cleanupRows) + ` FOR UPDATE SKIP LOCKED)`),
		},
	}
	if c.interval > 0 {
		go b.cleanupEvery(c.interval)
	} else {
		close(b.stopped)
	}
	return b
}

// CreateTable creates the table and its index, and the table of retired
// tokens' entries with its indexes, if they do not exist, and brings a
// table that an earlier release made to this release's shape, creating
// the retired table beside it (see Schema in the package documentation). It is safe to call from every
// instance as it starts, directly or through PgBouncer in transaction
// mode: instances take turns through a transaction-scoped advisory lock,
// and each step runs only when the table needs it.
//
// On a table in use, none of the steps holds up reads or writes for
// long: indexes are dropped and built CONCURRENTLY, which blocks nobody
// but waits for every transaction older than the build to end, anywhere
// in the database, so a long transaction delays the migration; the one
// step that needs an exclusive lock, adding the owner column to a table
// from before owners, waits for it at most a second, during which the
// table's other statements wait behind it, and then fails rather than
// queue them all behind a long transaction; call CreateTable again then.
// The new fillfactor applies to pages written from then on. While it
// builds or drops an index, CreateTable uses two of the pool's
// connections, so it fails at once on a pool of one, before building.
// A build that failed, or was cancelled with ctx, leaves an invalid
// index, which the next CreateTable drops and builds again.
//
// Dropping the earlier releases' index on expires_at makes their cleanup
// scan the table: migrate once the instances of those releases are gone.
// Turn [sessions.WithRenewal] on once they are gone too: an earlier
// release finds no record for a token renewed meanwhile, knows nothing of
// its entry, and starts a new session.
//
// It fails with [ErrTableName] when the table's name does not fit in
// PostgreSQL's identifiers.
func (b *Backend) CreateTable(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("postgres: creating table %s: %w", b.table, err)
		}
	}()
	if b.nameErr != nil {
		return b.nameErr
	}
	// First the steps that can run in a transaction, in one, which holds
	// the lock: creating the table, or reshaping an earlier one.
	var s shape
	err = b.locked(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, b.table).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if _, err := tx.Exec(ctx, b.q.create); err != nil {
				return err
			}
			s = shape{hasOwner: true, hasFillfactor: true, ownerIndexValid: true, hasOwnerIndex: true}
			if _, err := tx.Exec(ctx, b.q.createIndex); err != nil {
				return err
			}
			return b.createRetired(ctx, tx)
		}
		var err error
		if s, err = b.shape(ctx, tx); err != nil {
			return err
		}
		if !s.hasFillfactor {
			if _, err := tx.Exec(ctx, b.q.fillfactor); err != nil {
				return err
			}
		}
		// A table from before renewal has no retired table beside it.
		if err := b.createRetired(ctx, tx); err != nil {
			return err
		}
		if !s.hasOwner {
			// Last, so that the exclusive lock it takes is held only
			// until the commit that follows.
			if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '1s'`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, b.q.addOwner); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(s.concurrentSteps(b.q)) == 0 {
		return err
	}
	if b.pool.Stat().MaxConns() < 2 {
		return errors.New("building or dropping an index CONCURRENTLY takes two of the pool's connections, and its MaxConns is 1")
	}
	// Then the steps that cannot run in a transaction block. They run on
	// another connection, one statement each, while a transaction on this
	// one holds the lock and nothing else: it has no snapshot for the
	// builds to wait for, and locks no table.
	return b.locked(ctx, func(tx pgx.Tx) error {
		// Another instance may have taken its turn between the two.
		s, err := b.shape(ctx, tx)
		if err != nil {
			return err
		}
		// The build may wait long for older transactions: the server's
		// idle timeout must not end this one and let go of the lock.
		if _, err := tx.Exec(ctx, `SET LOCAL idle_in_transaction_session_timeout = 0`); err != nil {
			return err
		}
		for _, step := range s.concurrentSteps(b.q) {
			if _, err := b.pool.Exec(ctx, step); err != nil {
				return err
			}
		}
		return nil
	})
}

// createRetired creates the table of retired tokens' entries, with its
// indexes, unless it exists. A table made in this transaction is not seen
// by others before the commit, so its indexes are built at once, not
// CONCURRENTLY, and nobody waits for them.
func (b *Backend) createRetired(ctx context.Context, tx pgx.Tx) error {
	var exists, shaped bool
	if err := tx.QueryRow(ctx, b.q.retiredShape, b.q.retiredShapeArgs...).Scan(&exists, &shaped); err != nil {
		return err
	}
	if exists {
		if !shaped {
			return fmt.Errorf("%s, the name of the table of retired tokens, is taken by a relation of another shape: rename it, or choose another table name with WithTable", b.retired)
		}
		return nil
	}
	for _, q := range []string{b.q.createRetired, b.q.createRetiredExpiresIndex, b.q.createRetiredForwardIndex} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// shape is what an existing table lacks.
type shape struct {
	hasOwner, hasFillfactor, hasOldIndex, ownerIndexValid, hasOwnerIndex bool
	// The owner index that an earlier release made under a name too
	// long, which PostgreSQL cut.
	hasCutIndex, cutIndexValid bool
}

// concurrentSteps returns the statements, each to run CONCURRENTLY, that
// the table still needs, in order.
func (s shape) concurrentSteps(q queries) []string {
	var steps []string
	if s.hasOldIndex {
		steps = append(steps, q.dropOldIndex)
	}
	// A build that failed leaves an invalid index behind, still written
	// by every insert: drop it. An index under the cut name serves as
	// well as one under the new name, but both is one too many.
	if s.hasCutIndex && (!s.cutIndexValid || s.ownerIndexValid) {
		steps = append(steps, q.dropCutIndex)
	}
	if s.hasOwnerIndex && !s.ownerIndexValid {
		steps = append(steps, q.dropOwnerIndex)
	}
	if !s.ownerIndexValid && !s.cutIndexValid {
		steps = append(steps, q.ownerIndex)
	}
	return steps
}

func (b *Backend) shape(ctx context.Context, tx pgx.Tx) (shape, error) {
	var s shape
	err := tx.QueryRow(ctx, b.q.shape, b.q.shapeArgs...).Scan(&s.hasOwner, &s.hasFillfactor, &s.hasOldIndex, &s.ownerIndexValid, &s.hasOwnerIndex, &s.hasCutIndex, &s.cutIndexValid)
	return s, err
}

// locked runs f in a transaction that holds the table's migration lock,
// and commits it. The lock is transaction-scoped because behind PgBouncer
// in transaction mode a session-level one would be taken on one server
// session and released on another, which does not hold it, and so stay
// behind. Its key is the one earlier releases took at session level, so
// that they take turns with this one during a rolling deploy.
//
// It tries for the lock again and again, each time in a new transaction,
// rather than wait inside pg_advisory_xact_lock: a waiting statement holds
// a snapshot, which the lock holder's CREATE INDEX CONCURRENTLY would
// wait for in turn, while the holder waits for its build; and between
// tries this instance holds no connection, so that instances waiting for
// their turn cannot take the connections the holder needs.
func (b *Backend) locked(ctx context.Context, f func(pgx.Tx) error) error {
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 250*time.Millisecond) {
		done, err := b.tryLocked(ctx, f)
		if err != nil || done {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// tryLocked is one try of locked: it runs f only if the lock is free.
func (b *Backend) tryLocked(ctx context.Context, f func(pgx.Tx) error) (done bool, err error) {
	// Read committed, whatever the server's default: each statement must
	// see what the previous holder of the lock committed.
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx) // after Commit, a no-op
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext($1))`, b.lockKey()).Scan(&locked); err != nil || !locked {
		return false, err
	}
	if err := f(tx); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// lockKey names the advisory lock that instances take turns through.
func (b *Backend) lockKey() string { return "starsessions:" + b.table }

func hash(token string) []byte {
	sum := sessions.HashToken(token)
	return sum[:]
}

// Read returns the record for token; see ReadRecord.
func (b *Backend) Read(ctx context.Context, token string) ([]byte, bool, error) {
	rec, found, err := b.ReadRecord(ctx, token)
	return rec.Data, found, err
}

// ReadRecord returns the live record for token and its version. A token
// not shaped like a session ID is not looked up.
func (b *Backend) ReadRecord(ctx context.Context, token string) (sessions.Record, bool, error) {
	if !sessions.ValidID(token) {
		return sessions.Record{}, false, nil
	}
	var rec sessions.Record
	var version, left int64
	start := time.Now()
	err := b.pool.QueryRow(ctx, b.q.read, hash(token)).Scan(&rec.Data, &version, &left)
	if errors.Is(err, pgx.ErrNoRows) {
		return sessions.Record{}, false, nil
	}
	if err != nil {
		return sessions.Record{}, false, fmt.Errorf("postgres: reading session: %w", err)
	}
	rec.Version = uint64(version)
	rec.ExpiresAt = start.Add(time.Duration(left) * time.Millisecond)
	return rec, true, nil
}

// Write stores data under id, to expire after ttl, and returns id as the
// token.
func (b *Backend) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	if _, err := b.pool.Exec(ctx, b.q.write, hash(id), data, ttl.Milliseconds()); err != nil {
		return "", fmt.Errorf("postgres: saving session: %w", err)
	}
	return id, nil
}

// WriteIfVersion is Write that succeeds only if the live row for w.ID has
// version w.Version (0: there is none), and fails with
// [sessions.ErrConflict] otherwise. The row's owner becomes w.Owner, in the
// same statement.
func (b *Backend) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	q, args := b.q.writeIf, []any{hash(w.ID), w.Data, w.TTL.Milliseconds(), int64(w.Version), w.Owner}
	if w.Version == 0 {
		q, args = b.q.create0, []any{hash(w.ID), w.Data, w.TTL.Milliseconds(), w.Owner}
	}
	tag, err := b.pool.Exec(ctx, q, args...)
	if err != nil {
		return "", fmt.Errorf("postgres: saving session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return "", sessions.ErrConflict
	}
	return w.ID, nil
}

// Owned returns the live rows whose owner is owner, through the owner
// column's index.
func (b *Backend) Owned(ctx context.Context, owner string) ([]sessions.OwnedRecord, error) {
	start := time.Now()
	rows, err := b.pool.Query(ctx, b.q.owned, owner)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing an owner's sessions: %w", err)
	}
	defer rows.Close()
	var out []sessions.OwnedRecord
	for rows.Next() {
		var o sessions.OwnedRecord
		var key []byte
		var version, left int64
		if err := rows.Scan(&key, &o.Data, &version, &left); err != nil {
			return nil, fmt.Errorf("postgres: listing an owner's sessions: %w", err)
		}
		if len(key) != len(o.Key) {
			return nil, fmt.Errorf("postgres: a session row has a %d-byte token hash", len(key))
		}
		copy(o.Key[:], key)
		o.Version = uint64(version)
		o.ExpiresAt = start.Add(time.Duration(left) * time.Millisecond)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: listing an owner's sessions: %w", err)
	}
	return out, nil
}

// RemoveOwned deletes the live row whose token hash is key if its owner is
// owner.
func (b *Backend) RemoveOwned(ctx context.Context, owner string, key [sha256.Size]byte) (bool, error) {
	tag, err := b.pool.Exec(ctx, b.q.removeOwned, key[:], owner)
	if err != nil {
		return false, fmt.Errorf("postgres: revoking session: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Remove deletes the row for token.
func (b *Backend) Remove(ctx context.Context, token string) error {
	if _, err := b.pool.Exec(ctx, b.q.remove, hash(token)); err != nil {
		return fmt.Errorf("postgres: removing session: %w", err)
	}
	return nil
}

// RemoveIfVersion deletes the live row for token if its version is the
// given one, and fails with [sessions.ErrConflict] otherwise.
func (b *Backend) RemoveIfVersion(ctx context.Context, token string, version uint64) error {
	tag, err := b.pool.Exec(ctx, b.q.removeIf, hash(token), int64(version))
	if err != nil {
		return fmt.Errorf("postgres: removing session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return sessions.ErrConflict
	}
	return nil
}

// Touch sets the expiry of the live row for token to ttl from now; it does
// nothing to an expired or missing row.
func (b *Backend) Touch(ctx context.Context, token string, ttl time.Duration) error {
	if _, err := b.pool.Exec(ctx, b.q.touch, hash(token), ttl.Milliseconds()); err != nil {
		return fmt.Errorf("postgres: extending session: %w", err)
	}
	return nil
}

// Cleanup deletes expired rows, walking the table a range of pages at a
// time, each range one short statement, until it reaches the table's end
// as it was when it began, or ctx ends. Then it deletes the retired
// tokens' expired entries, and erases the forwarding bytes of those past
// their grace, through the retired table's indexes, a few thousand rows
// a statement. deleted counts the rows deleted from both tables. The
// background cleanup calls it; call it yourself when that is turned off.
func (b *Backend) Cleanup(ctx context.Context) (deleted int64, err error) {
	var pages int64
	if err := b.pool.QueryRow(ctx, b.q.pages, b.table).Scan(&pages); err != nil {
		return 0, fmt.Errorf("postgres: deleting expired sessions: %w", err)
	}
	for first := int64(0); first < pages; first += cleanupPages {
		tag, err := b.pool.Exec(ctx, b.q.cleanup, first)
		if err != nil {
			return deleted, fmt.Errorf("postgres: deleting expired sessions: %w", err)
		}
		deleted += tag.RowsAffected()
	}
	n, err := b.cleanRetired(ctx)
	return deleted + n, err
}

// Close stops the background cleanup, cancelling a statement in flight,
// and waits for it to finish. It does not close the pool. It is safe to
// call more than once.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() { close(b.stop) })
	<-b.stopped
	return nil
}

func (b *Backend) cleanupEvery(interval time.Duration) {
	defer close(b.stopped)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-b.stop
		cancel()
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := b.Cleanup(ctx); err != nil && ctx.Err() == nil {
				b.logger.Warn("postgres: session cleanup failed", "err", err)
			}
		}
	}
}

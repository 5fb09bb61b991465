package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/starsessions/sessions"
)

// The entries that retired tokens leave (sessions.Renewer) live in a table
// of their own beside the records, rather than in extra columns of the
// records' rows: a retired token has no record any more, an entry is
// written once and never updated by a request, and most of them outlive
// their session's last use. Keeping them apart leaves the records table
// and its HOT updates as they were, and lets its cleanup walk stay short.

// RetireIfVersion deletes the live row for token if its version is the
// given one, and in the same statement stores r under the token's hash in
// the table of retired tokens: the forwarding bytes for r.ForwardTTL, the
// tombstone and the successor's key for r.TTL (or r.ForwardTTL, if that is
// longer). It fails with [sessions.ErrConflict], storing nothing, when the
// row is missing, expired, or at another version.
func (b *Backend) RetireIfVersion(ctx context.Context, token string, version uint64, r sessions.Retirement) error {
	tombstone := r.Tombstone
	if tombstone == nil {
		// pgx sends a nil slice as NULL.
		tombstone = []byte{}
	}
	tag, err := b.pool.Exec(ctx, b.q.retire, hash(token), int64(version), r.Successor[:], r.Forward,
		r.ForwardTTL.Milliseconds(), tombstone, max(r.TTL, r.ForwardTTL).Milliseconds())
	if err != nil {
		return fmt.Errorf("postgres: retiring session token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return sessions.ErrConflict
	}
	return nil
}

// Retired returns the entry stored under key while it lasts, and while
// its forwarding lasts, the successor's live record, read in the same
// statement. Both expiries are judged by the database's clock.
func (b *Backend) Retired(ctx context.Context, key [sha256.Size]byte) (sessions.RetiredEntry, bool, error) {
	var e sessions.RetiredEntry
	var successor []byte
	var version, left *int64
	start := time.Now()
	err := b.pool.QueryRow(ctx, b.q.retired, key[:]).Scan(&successor, &e.Tombstone, &e.Forward, &e.Record.Data, &version, &left)
	if errors.Is(err, pgx.ErrNoRows) {
		return sessions.RetiredEntry{}, false, nil
	}
	if err != nil {
		return sessions.RetiredEntry{}, false, fmt.Errorf("postgres: reading retired session token: %w", err)
	}
	if len(successor) != len(e.Successor) {
		return sessions.RetiredEntry{}, false, fmt.Errorf("postgres: a retired token's row has a %d-byte successor", len(successor))
	}
	copy(e.Successor[:], successor)
	if version != nil && left != nil {
		if e.Record.Data == nil {
			// A record of no bytes is still a record: nil means none.
			e.Record.Data = []byte{}
		}
		e.Record.Version = uint64(*version)
		e.Record.ExpiresAt = start.Add(time.Duration(*left) * time.Millisecond)
	}
	return e, true, nil
}

// RemoveKey deletes the row and the retired token's entry under key,
// whichever exist.
//
// It takes two statements, in this order, in one read-committed
// transaction, where one statement would not do: a retirement of the same
// key running meanwhile deletes the row and inserts the entry in one
// statement. Deleting the row first waits for that retirement to commit,
// if it holds the row, and then the second statement, whose snapshot is
// taken after, sees its entry and deletes it too; if RemoveKey takes the
// row first, the retirement finds it gone and fails with ErrConflict. A
// single statement would read the entries under a snapshot taken before
// the retirement committed, and leave its entry behind.
func (b *Backend) RemoveKey(ctx context.Context, key [sha256.Size]byte) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("postgres: removing session: %w", err)
		}
	}()
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after Commit, a no-op
	if _, err := tx.Exec(ctx, b.q.remove, key[:]); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, b.q.removeRetired, key[:]); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// cleanRetired deletes the retired tokens' entries that have expired, and
// erases the forwarding bytes of those past their grace, a batch at a
// time. It returns how many entries it deleted.
//
// A table that an earlier release made, and that no CreateTable of this
// one has migrated yet, has no table of retired tokens, and so nothing to
// clean: that is not an error, or every instance would warn of it until the
// migration.
func (b *Backend) cleanRetired(ctx context.Context) (deleted int64, err error) {
	deleted, err = b.inBatches(ctx, b.q.cleanupRetired)
	if err == nil {
		_, err = b.inBatches(ctx, b.q.scrubRetired)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return deleted, nil
	}
	if err != nil {
		return deleted, fmt.Errorf("postgres: deleting expired retired session tokens: %w", err)
	}
	return deleted, nil
}

// inBatches runs q, a statement that changes at most cleanupRows rows,
// until it changes fewer, and returns how many rows it changed.
func (b *Backend) inBatches(ctx context.Context, q string) (changed int64, err error) {
	for {
		tag, err := b.pool.Exec(ctx, q)
		if err != nil {
			return changed, err
		}
		changed += tag.RowsAffected()
		if tag.RowsAffected() < cleanupRows {
			return changed, nil
		}
	}
}

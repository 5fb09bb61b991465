package sessions

import (
	"context"
	"crypto/sha256"
	"time"
)

// A Backend stores session records as opaque bytes.
//
// The manager encodes the typed session value, together with the
// timestamps it needs to enforce expiry, before a Backend sees it, so a
// Backend only moves bytes. Server-side backends key their records by
// [HashToken] of the token, never by the token itself, so that a copy of the
// store does not hand out live sessions. Implementations must be safe for
// concurrent use.
//
// A backend can offer more through optional interfaces, discovered by type
// assertion, in any combination: [RecordReader] reports what the store
// knows about a record beside its bytes (its version, its expiry, whether
// its token should be reissued); [VersionedBackend] writes conditionally,
// so that concurrent requests never lose each other's updates; [Toucher]
// extends an expiry without rewriting data; [OwnerIndex] finds the sessions
// of one owner; and [NameBinder] binds tokens to the name they travel
// under. A backend without VersionedBackend saves with
// last-write-wins: of two requests that change one session at the same
// time, the later save replaces the earlier. With an idle timeout, a
// request that only read such a backend's session and is due to extend it
// reads the record again and rewrites it only if it is unchanged, so that
// it does not bring back a session another request destroyed, nor undo
// its change; a save that lands between that read and the rewrite can
// still be undone. A backend that is a [Toucher] and reports its records'
// expiry ([Record.ExpiresAt]) is touched instead, and a [VersionedBackend]
// rewrites on condition of the version: both close that window.
type Backend interface {
	// Read returns the bytes stored for token; found is false, with a nil error, when it is unknown or expired.
	// The caller does not modify the returned slice. Bytes that are not a
	// record Write was given make the manager report [ErrCorrupt].
	Read(ctx context.Context, token string) (data []byte, found bool, err error)
	// Write stores data for the session id, to expire after ttl, and returns the token the client keeps.
	// Write does not keep data after it returns.
	Write(ctx context.Context, id string, data []byte, ttl time.Duration) (token string, err error)
	// Remove deletes what is stored for token; removing an unknown token is not an error.
	Remove(ctx context.Context, token string) error
}

// A Record is a stored session as a [RecordReader] returns it: the bytes
// that Write was given, and what the backend knows about them. Later
// versions of this package may add fields; a backend sets those it knows.
type Record struct {
	// Data is the stored bytes. The caller does not modify them.
	Data []byte
	// Version is the record's version, for a [VersionedBackend]; 0
	// otherwise.
	Version uint64
	// ExpiresAt is when the backend will drop the record unless it is
	// written or touched again; the zero Time when the backend does not
	// say.
	ExpiresAt time.Time
	// Rotate asks for the token to be reissued although it is still
	// valid, as for a cookie signed with a retired secret: the manager
	// then saves the session at the end of the request even if its data
	// did not change, so that the client gets a fresh token.
	Rotate bool
	// ClientSide reports that the record lives in the token itself, as with
	// the cookie backend: every write makes a new token, and removing the
	// record on the server does nothing. The manager needs to know once
	// the response header is out, when no new token can reach the client.
	ClientSide bool
}

// A RecordReader is a [Backend] that reports, with a record's bytes, what
// it knows about the record. When a backend offers it, the manager reads
// through ReadRecord rather than Read.
type RecordReader interface {
	// ReadRecord is Read that returns a Record. found is false, with a
	// nil error, when the token is unknown or expired.
	ReadRecord(ctx context.Context, token string) (rec Record, found bool, err error)
}

// A VersionedBackend is a [Backend] whose records carry a version that
// every successful write advances, and that can write and remove on
// condition of the version (compare-and-set). The manager uses it so that no
// update is lost silently: a request saves only over the version it loaded,
// and on [ErrConflict] reloads the record, replays the changes it made
// through [Session.Update], and tries again.
//
// Versions start at 1 for a new record and grow by 1 with every write;
// version 0 stands for "no record". ReadRecord reports them in
// [Record.Version]. Each method must be atomic with respect to the others on
// the same token.
//
// A plain Write on a VersionedBackend advances the version too, and leaves
// the record's owner (see [VersionedWrite.Owner]) as it was.
type VersionedBackend interface {
	Backend
	RecordReader
	// WriteIfVersion stores w.Data under w.ID, as Write does, only if the
	// live record for w.ID has version w.Version, 0 meaning that there must
	// be none. Otherwise it writes nothing and returns an error that matches
	// [ErrConflict]. A record that was removed is never recreated by a
	// write for version 1 or more.
	WriteIfVersion(ctx context.Context, w VersionedWrite) (token string, err error)
	// RemoveIfVersion removes the record for token only if its version is
	// the given one, and returns an error matching [ErrConflict] otherwise,
	// a missing record included.
	RemoveIfVersion(ctx context.Context, token string, version uint64) error
}

// A VersionedWrite is a conditional write, as the manager asks a
// [VersionedBackend] for it.
type VersionedWrite struct {
	// ID is the session ID to store the record under.
	ID string
	// Data is the record. The backend does not keep it after the write
	// returns.
	Data []byte
	// TTL is how long to keep the record, unless it is written or touched
	// again.
	TTL time.Duration
	// Version is the version the live record under ID must have; 0 means
	// that there must be none.
	Version uint64
	// Owner is the session's owner ("" for none), which the backend stores
	// with the record, replacing the one it had. A backend that is an
	// [OwnerIndex] lists the record under it; others may ignore it, for the
	// manager keeps the owner inside Data too.
	Owner string
	// PreviousOwner is the owner of the record this write replaces, as the
	// manager last read it: "" for a new record. When it equals Owner the
	// owner did not change, and an index kept apart from the record needs
	// no update.
	PreviousOwner string
	// Deadline is the latest moment the record may live: the end of the
	// session's lifetime, which no touch extends. An index may use it to
	// forget entries of records that can no longer exist.
	Deadline time.Time
}

// An OwnerIndex is a [VersionedBackend] that keeps, beside its records, an
// index by their owner ([VersionedWrite.Owner]), so that the manager can
// list and end the sessions of one user at a cost that grows with that
// user's sessions, never with the store ([Manager.Sessions],
// [Manager.Revoke], [Manager.RevokeAll]).
//
// An index kept apart from the records, as in Redis Cluster, where it lives
// in another slot, may lag: Owned must check each record's stored owner
// when it reads it, and may prune entries that no longer match.
type OwnerIndex interface {
	VersionedBackend
	// Owned returns the live records whose owner is owner, in any order.
	Owned(ctx context.Context, owner string) ([]OwnedRecord, error)
	// RemoveOwned removes the live record stored under key, the HashToken
	// of its token, if, and only if, its owner is owner, and reports
	// whether it did. Like any removal, it is final: no conditional write
	// brings the record back.
	RemoveOwned(ctx context.Context, owner string, key [sha256.Size]byte) (removed bool, err error)
}

// An OwnedRecord is a record that [OwnerIndex.Owned] found.
type OwnedRecord struct {
	// Key is the HashToken of the record's token.
	Key [sha256.Size]byte
	Record
}

// A Toucher is a [Backend] that can extend a record's expiry without
// rewriting its data. With an idle timeout, a request that read the session
// without changing it touches the record when its expiry, as the backend
// reported it, has fallen a hundredth of the timeout (at least a second)
// behind; a backend that is not a Toucher has its record rewritten instead,
// as often.
type Toucher interface {
	// Touch sets the expiry of the live record for token to ttl from now.
	// It does nothing, and returns nil, when the record is unknown or has
	// expired: a touch never brings a removed session back.
	Touch(ctx context.Context, token string, ttl time.Duration) error
}

// A Renewer is a [VersionedBackend] that can retire a token in favour of
// its successor, as [WithRenewal] needs: the retired token's record goes,
// and an entry under the retired token's key says where the session went,
// for a short grace and, in less detail, for longer. Its entries are the
// manager's bytes, opaque to the backend; they hold no token in a form the
// store could use.
//
// Every method must be atomic with respect to the others, and to the
// [VersionedBackend] methods, on the same key.
type Renewer interface {
	VersionedBackend
	// RetireIfVersion removes the record for token only if its version is
	// version, as RemoveIfVersion does (ErrConflict otherwise, a missing
	// record included), and in the same step stores r under the token's
	// key, HashToken(token).
	RetireIfVersion(ctx context.Context, token string, version uint64, r Retirement) error
	// Retired returns the entry stored under key by RetireIfVersion while
	// its TTL lasts; found is false when there is none. While the
	// forwarding lasts, it also reads the live record of the successor
	// (Retirement.Successor) in the same step, so that a retired token
	// costs one lookup more than a current one, not two.
	Retired(ctx context.Context, key [sha256.Size]byte) (e RetiredEntry, found bool, err error)
	// RemoveKey removes the record and the retirement entry stored under
	// key, whichever exist; removing nothing is not an error. Like any
	// removal it is final, and an OwnerIndex forgets the record.
	RemoveKey(ctx context.Context, key [sha256.Size]byte) error
}

// A Retirement is what a [Renewer] keeps for a retired token.
type Retirement struct {
	// Successor is the key (HashToken) of the token the session moved to.
	Successor [sha256.Size]byte
	// Forward leads to the token's successor; the backend keeps it for
	// ForwardTTL, the grace, and then must drop it (an expiry in the
	// store, not a sweep that may come late).
	Forward    []byte
	ForwardTTL time.Duration
	// Tombstone says that the token was retired, and which session it
	// belonged to, without leading to it; the backend keeps it for TTL,
	// which is at least ForwardTTL.
	Tombstone []byte
	TTL       time.Duration
}

// A RetiredEntry is a retired token's entry, as [Renewer.Retired] returns
// it.
type RetiredEntry struct {
	// Tombstone and Successor are the Retirement's.
	Tombstone []byte
	Successor [sha256.Size]byte
	// Forward is the Retirement's while its ForwardTTL lasts, nil after.
	Forward []byte
	// Record is the successor's live record, read with the entry, while
	// Forward is set; its Data is nil when there is none, or after the
	// forwarding's TTL.
	Record Record
}

// A NameBinder is a [Backend] whose tokens can be bound to the name they
// travel under, such as the cookie backend, which signs the cookie's name
// into every value. [New] calls BindName with the manager's cookie name and
// uses the backend it returns, so that a token issued under one name is
// worth nothing under another, even when two managers share one backend
// value and its secret.
//
// For backends that are not NameBinders the manager binds the name itself:
// it stores a tag of the name in each record and refuses records with
// another tag.
type NameBinder interface {
	// BindName returns a backend, sharing the receiver's store, whose
	// tokens are valid under name only. It must not change the receiver.
	BindName(name string) Backend
}

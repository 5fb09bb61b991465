package sessions

import (
	"encoding/binary"
	"errors"
)

// A record is what the manager hands a backend: a few bytes of header, then
// the codec's bytes. Keeping the timestamps inside the record (and so inside
// the signed payload of a cookie) lets the server refuse an old record that
// a client replays after its lifetime or idle timeout.
//
//	byte 0   format, recordFormat
//	byte 1   flags: bits 0-1 persistence (persistDefault, persistOn, persistOff)
//	uvarint  creation time, Unix seconds
//	uvarint  seconds from creation to last access
//	rest     the codec's bytes
type recordHeader struct {
	created  int64 // Unix seconds
	accessed int64 // Unix seconds, >= created
	persist  persistence
}

const recordFormat = 1

// maxRecordHeader is the most bytes appendRecordHeader writes.
const maxRecordHeader = 2 + 2*binary.MaxVarintLen64

// persistence is a session's choice between a browser-session cookie and a
// persistent one.
type persistence uint8

const (
	persistDefault persistence = iota // as the manager's lifetime says
	persistOn                         // persistent cookie
	persistOff                        // browser-session cookie
)

var errBadRecord = errors.New("malformed session record")

func appendRecordHeader(dst []byte, h recordHeader) []byte {
	dst = append(dst, recordFormat, byte(h.persist))
	dst = binary.AppendUvarint(dst, uint64(h.created))
	return binary.AppendUvarint(dst, uint64(h.accessed-h.created))
}

// parseRecord splits a record into its header and the codec's bytes, which
// alias b.
func parseRecord(b []byte) (recordHeader, []byte, error) {
	var h recordHeader
	if len(b) < 2 || b[0] != recordFormat || b[1] > byte(persistOff) {
		return h, nil, errBadRecord
	}
	h.persist = persistence(b[1])
	b = b[2:]
	created, n := binary.Uvarint(b)
	if n <= 0 || created > 1<<40 {
		return h, nil, errBadRecord
	}
	b = b[n:]
	age, n := binary.Uvarint(b)
	if n <= 0 || age > 1<<40 {
		return h, nil, errBadRecord
	}
	h.created = int64(created)
	h.accessed = h.created + int64(age)
	return h, b[n:], nil
}

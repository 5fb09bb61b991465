package sessions

import "encoding/binary"

// A record is what the manager hands a backend: a few bytes of header, then
// the codec's bytes. Keeping the timestamps inside the record (and so inside
// the signed payload of a cookie) lets the server refuse an old record that
// a client replays after its lifetime or idle timeout.
//
//	byte 0   bits 4-7: format, recordFormat; bits 0-1: persistence
//	varint   creation time, seconds since recordEpoch
//	uvarint  seconds from creation to last access
//	rest     the codec's bytes
//
// The header is 6 or 7 bytes for sessions created within four years of the
// epoch, and every byte counts twice in a cookie, which securecookie
// encodes in base64 twice.
type recordHeader struct {
	created  int64 // Unix seconds
	accessed int64 // Unix seconds, >= created
	persist  persistence
}

const recordFormat = 1

// recordEpoch is the time from which creation times count: 2026-01-01 UTC.
const recordEpoch = 1767225600

// maxRecordHeader is the most bytes appendRecordHeader writes.
const maxRecordHeader = 1 + 2*binary.MaxVarintLen64

// persistence is a session's choice between a browser-session cookie and a
// persistent one.
type persistence uint8

const (
	persistDefault persistence = iota // as the manager's lifetime says
	persistOn                         // persistent cookie
	persistOff                        // browser-session cookie
)

func appendRecordHeader(dst []byte, h recordHeader) []byte {
	dst = append(dst, recordFormat<<4|byte(h.persist))
	dst = binary.AppendVarint(dst, h.created-recordEpoch)
	return binary.AppendUvarint(dst, uint64(h.accessed-h.created))
}

// parseRecord splits a record into its header and the codec's bytes, which
// alias b. It returns ErrCorrupt for bytes that are not a record.
func parseRecord(b []byte) (recordHeader, []byte, error) {
	var h recordHeader
	if len(b) < 1 || b[0]>>4 != recordFormat || b[0]&0x0F > byte(persistOff) {
		return h, nil, ErrCorrupt
	}
	h.persist = persistence(b[0] & 0x0F)
	b = b[1:]
	created, n := binary.Varint(b)
	if n <= 0 || created < -recordEpoch || created > 1<<40 {
		return h, nil, ErrCorrupt
	}
	b = b[n:]
	age, n := binary.Uvarint(b)
	if n <= 0 || age > 1<<40 {
		return h, nil, ErrCorrupt
	}
	h.created = recordEpoch + created
	h.accessed = h.created + int64(age)
	return h, b[n:], nil
}

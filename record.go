package sessions

import (
	"crypto/sha256"
	"encoding/binary"
)

// A record is what the manager hands a backend: a few bytes of header, then
// the codec's bytes. Keeping the timestamps inside the record (and so inside
// the signed payload of a cookie) lets the server refuse an old record that
// a client replays after its lifetime or idle timeout.
//
//	byte 0   bits 4-7: format, recordFormat or renewedFormat
//	         bit 3: an owner follows; bit 2: a name tag follows
//	         bits 0-1: persistence
//	varint   creation time, seconds since recordEpoch
//	uvarint  seconds from creation to last access
//	uvarint  seconds from creation to the current token's issue, in
//	         renewedFormat only: a session whose token was renewed
//	         (WithRenewal) since it was created
//	[4]byte  name tag, if bit 2 is set
//	uvarint  owner's length, then the owner, if bit 3 is set
//	rest     the codec's bytes
//
// The header is 6 or 7 bytes for sessions created within four years of the
// epoch, without tag or owner, and every byte counts twice in a cookie,
// which securecookie encodes in base64 twice.
type recordHeader struct {
	created  int64 // Unix seconds
	accessed int64 // Unix seconds, >= created: a write clamps it, a read too
	issued   int64 // Unix seconds, >= created: when the current token was issued
	persist  persistence
	tagged   bool
	tag      nameTag
	owner    string
	// legacy is set for a record in format 1, which pre-release builds
	// wrote before records were bound to their cookie name.
	legacy bool
}

// A nameTag stands for the name a session's token travels under. Records of
// backends that do not bind tokens to names themselves (see [NameBinder])
// carry it, so that a manager refuses a record that another manager, under
// another name, stored in the same backend.
type nameTag [4]byte

func tagOf(name string) nameTag {
	sum := sha256.Sum256([]byte("starsessions token name\x00" + name))
	return nameTag(sum[:4])
}

const recordFormat = 2

// renewedFormat is recordFormat with the issue time of a renewed token.
// Records of sessions never renewed stay in recordFormat, which releases
// before renewal read.
const renewedFormat = 3

// legacyFormat is the format before name tags and owners: the same layout
// with bits 2 and 3 clear.
const legacyFormat = 1

const (
	flagOwner  = 1 << 3
	flagTagged = 1 << 2
)

// recordEpoch is the time from which creation times count: 2026-01-01 UTC.
const recordEpoch = 1767225600

// maxOwnerLength bounds a session's owner, which travels in every record.
const maxOwnerLength = 256

// maxRecordHeader is the most bytes appendRecordHeader writes.
const maxRecordHeader = 1 + 3*binary.MaxVarintLen64 + len(nameTag{}) + binary.MaxVarintLen16 + maxOwnerLength

// persistence is a session's choice between a browser-session cookie and a
// persistent one.
type persistence uint8

const (
	persistDefault persistence = iota // as the manager's WithPersistent says
	persistOn                         // persistent cookie
	persistOff                        // browser-session cookie
)

func appendRecordHeader(dst []byte, h recordHeader) []byte {
	format := byte(recordFormat)
	if h.issued > h.created {
		format = renewedFormat
	}
	b := format<<4 | byte(h.persist)
	if h.tagged {
		b |= flagTagged
	}
	if h.owner != "" {
		b |= flagOwner
	}
	dst = append(dst, b)
	dst = binary.AppendVarint(dst, h.created-recordEpoch)
	dst = binary.AppendUvarint(dst, uint64(max(h.accessed-h.created, 0)))
	if format == renewedFormat {
		dst = binary.AppendUvarint(dst, uint64(h.issued-h.created))
	}
	if h.tagged {
		dst = append(dst, h.tag[:]...)
	}
	if h.owner != "" {
		dst = binary.AppendUvarint(dst, uint64(len(h.owner)))
		dst = append(dst, h.owner...)
	}
	return dst
}

// parseRecord splits a record into its header and the codec's bytes, which
// alias b. It returns ErrCorrupt for bytes that are not a record.
func parseRecord(b []byte) (recordHeader, []byte, error) {
	var h recordHeader
	if len(b) < 1 || b[0]&0x03 > byte(persistOff) {
		return h, nil, ErrCorrupt
	}
	format := b[0] >> 4
	switch format {
	case recordFormat, renewedFormat:
	case legacyFormat:
		if b[0]&(flagOwner|flagTagged) != 0 {
			return h, nil, ErrCorrupt
		}
		h.legacy = true
	default:
		return h, nil, ErrCorrupt
	}
	flags := b[0] & 0x0F
	h.persist = persistence(flags & 0x03)
	b = b[1:]
	created, n := binary.Varint(b)
	if n <= 0 || created < -recordEpoch || created > 1<<40 {
		return h, nil, ErrCorrupt
	}
	b = b[n:]
	age, n := binary.Uvarint(b)
	if n <= 0 || int64(age) > 1<<40 || int64(age) < -1<<40 {
		return h, nil, ErrCorrupt
	}
	b = b[n:]
	h.created = recordEpoch + created
	// Releases before clamping stored an access before the creation, by a
	// server whose clock was behind the creator's, as the two's complement
	// of a negative age: such a record loads, accessed at its creation.
	h.accessed = h.created + max(int64(age), 0)
	h.issued = h.created
	if format == renewedFormat {
		since, n := binary.Uvarint(b)
		if n <= 0 || since == 0 || since > 1<<40 {
			return h, nil, ErrCorrupt
		}
		b = b[n:]
		h.issued = h.created + int64(since)
	}
	if flags&flagTagged != 0 {
		if len(b) < len(h.tag) {
			return h, nil, ErrCorrupt
		}
		h.tagged = true
		h.tag = nameTag(b[:len(h.tag)])
		b = b[len(h.tag):]
	}
	if flags&flagOwner != 0 {
		size, n := binary.Uvarint(b)
		if n <= 0 || size == 0 || size > maxOwnerLength || size > uint64(len(b)-n) {
			return h, nil, ErrCorrupt
		}
		h.owner = string(b[n : n+int(size)])
		b = b[n+int(size):]
	}
	return h, b, nil
}

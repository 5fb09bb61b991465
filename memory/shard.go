package memory

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"sync"
)

// A shard holds the records whose keys end in one byte value: their bytes
// in an arena, and where each starts in an index. Neither holds a pointer
// per record, so the garbage collector has nothing per record to scan: the
// arena is one []byte, and the maps hold only integers.
type shard struct {
	mu sync.RWMutex
	// index maps the first eight bytes of a key to the offset of its
	// record in arena. Two keys whose first eight bytes are equal, which
	// takes about four billion records to happen by chance, go to
	// overflow, keyed by the whole key.
	index    map[uint64]uint32
	overflow map[[sha256.Size]byte]uint32
	arena    []byte
	live     int // bytes of arena that live records use; the rest is garbage
	compacts int // how many times the arena was compacted, for tests
}

// An entry is a record in its arena:
//
//	[0:32]   key, the SHA-256 of the token
//	[32:40]  expiry, Unix nanoseconds (the one field changed in place)
//	[40:48]  version
//	[48:50]  owner's length
//	[50:54]  data's length
//	[54:]    owner, then data
type entry []byte

const (
	headerSize = 54
	maxOwner   = math.MaxUint16
	// maxData bounds a record's data, far below what its length field
	// holds: a session is small, and a shard's offsets are 32-bit.
	maxData = 64 << 20
	// maxArena is the most a shard's arena may hold, so that every
	// offset into it fits the index's uint32.
	maxArena = math.MaxUint32
)

func (e entry) key() (k [sha256.Size]byte) { copy(k[:], e[:sha256.Size]); return k }
func (e entry) expires() int64             { return int64(binary.LittleEndian.Uint64(e[32:40])) }
func (e entry) setExpires(t int64)         { binary.LittleEndian.PutUint64(e[32:40], uint64(t)) }
func (e entry) version() uint64            { return binary.LittleEndian.Uint64(e[40:48]) }
func (e entry) ownerLen() int              { return int(binary.LittleEndian.Uint16(e[48:50])) }
func (e entry) dataLen() int               { return int(binary.LittleEndian.Uint32(e[50:54])) }
func (e entry) owner() []byte              { return e[headerSize : headerSize+e.ownerLen()] }
func (e entry) size() int                  { return headerSize + e.ownerLen() + e.dataLen() }
func (e entry) liveAt(now int64) bool      { return now < e.expires() }

// data returns the record's data, capped so that an append to it cannot
// reach into the arena.
func (e entry) data() []byte {
	start := headerSize + e.ownerLen()
	end := start + e.dataLen()
	return e[start:end:end]
}

func prefix(key *[sha256.Size]byte) uint64 { return binary.LittleEndian.Uint64(key[:8]) }

// at returns the entry at offset off.
func (sh *shard) at(off uint32) entry {
	e := entry(sh.arena[off:])
	return e[:e.size()]
}

// find returns the entry of key, live or expired.
func (sh *shard) find(key *[sha256.Size]byte) (entry, bool) {
	off, ok := sh.index[prefix(key)]
	if !ok {
		return nil, false
	}
	if e := sh.at(off); [sha256.Size]byte(e[:sha256.Size]) == *key {
		return e, true
	}
	if off, ok := sh.overflow[*key]; ok {
		return sh.at(off), true
	}
	return nil, false
}

// put appends a record for key and points the index at it; a record it
// replaces becomes garbage. It reports false, and changes nothing, when
// the shard's arena cannot take the record even once compacted.
func (sh *shard) put(key *[sha256.Size]byte, expires int64, version uint64, owner string, data []byte) bool {
	n := uint64(headerSize + len(owner) + len(data))
	if uint64(len(sh.arena))+n > maxArena {
		sh.compact(int(n))
		if uint64(len(sh.arena))+n > maxArena {
			return false
		}
	}
	if old, ok := sh.find(key); ok {
		sh.live -= old.size()
	}
	off := len(sh.arena)
	var h [headerSize]byte
	copy(h[:32], key[:])
	binary.LittleEndian.PutUint64(h[32:40], uint64(expires))
	binary.LittleEndian.PutUint64(h[40:48], version)
	binary.LittleEndian.PutUint16(h[48:50], uint16(len(owner)))
	binary.LittleEndian.PutUint32(h[50:54], uint32(len(data)))
	sh.arena = append(append(append(sh.arena, h[:]...), owner...), data...)
	sh.live += headerSize + len(owner) + len(data)
	sh.point(key, uint32(off))
	sh.compactIfSparse()
	return true
}

// point makes the index find key's record at off.
func (sh *shard) point(key *[sha256.Size]byte, off uint32) {
	p := prefix(key)
	if cur, ok := sh.index[p]; !ok || [sha256.Size]byte(sh.arena[cur:cur+sha256.Size]) == *key {
		sh.index[p] = off
		return
	}
	if sh.overflow == nil {
		sh.overflow = map[[sha256.Size]byte]uint32{}
	}
	sh.overflow[*key] = off
}

// remove forgets key's record e, whose space becomes garbage.
func (sh *shard) remove(key *[sha256.Size]byte, e entry) {
	sh.live -= e.size()
	if _, ok := sh.overflow[*key]; ok {
		delete(sh.overflow, *key)
	} else {
		delete(sh.index, prefix(key))
		// A key in overflow with the same prefix moves into the index.
		for k, off := range sh.overflow {
			if prefix(&k) == prefix(key) {
				sh.index[prefix(key)] = off
				delete(sh.overflow, k)
				break
			}
		}
	}
	sh.compactIfSparse()
}

// each calls f with every record of the shard, live or expired.
func (sh *shard) each(f func(entry)) {
	for _, off := range sh.index {
		f(sh.at(off))
	}
	for _, off := range sh.overflow {
		f(sh.at(off))
	}
}

// minCompact is the least garbage worth a compaction: below it, a shard
// keeps its arena.
const minCompact = 64 << 10

// compactIfSparse copies the live records into a fresh arena once garbage
// takes more than half of the arena.
func (sh *shard) compactIfSparse() {
	if garbage := len(sh.arena) - sh.live; garbage > minCompact && garbage > sh.live {
		sh.compact(0)
	}
}

// compact copies the live records into a fresh arena with room for extra
// bytes more. The old arena is left as it was, for readers that still hold
// slices of it, and goes to the collector when they let go.
//
// The fresh arena has room for the garbage the next compaction waits for
// (compactIfSparse), so that appends until then never copy it: growing by
// doubling would allocate about twice the record's size again per write.
func (sh *shard) compact(extra int) {
	arena := make([]byte, 0, sh.live+max(sh.live, minCompact)+extra)
	move := func(off uint32) uint32 {
		e := sh.at(off)
		n := uint32(len(arena))
		arena = append(arena, e...)
		return n
	}
	for p, off := range sh.index {
		sh.index[p] = move(off)
	}
	for k, off := range sh.overflow {
		sh.overflow[k] = move(off)
	}
	sh.arena = arena
	sh.compacts++
}

package memory

import (
	"crypto/sha256"
	"encoding/binary"
)

// An ownerIndex lists the keys of each owner's records, as linked lists
// in one slice of nodes: like the shards, it holds no pointer per owner or
// per record, so that it adds nothing to what a collection scans.
type ownerIndex struct {
	heads map[uint64]uint32 // owner hash to its first node, plus one
	nodes []ownerNode
	free  uint32 // the first unused node, plus one; 0 when none
}

// An ownerNode is one record's key in its owner's list.
type ownerNode struct {
	key  [sha256.Size]byte
	next uint32 // the next node, plus one; 0 at the end of the list
}

// ownerHash is the key of an owner in the owner index. Two owners whose
// hashes collide share a list; readers check each record's stored owner.
func ownerHash(owner string) uint64 {
	sum := sha256.Sum256([]byte(owner))
	return binary.LittleEndian.Uint64(sum[:8])
}

// add puts key at the head of owner's list.
func (ix *ownerIndex) add(owner uint64, key *[sha256.Size]byte) {
	var n uint32
	if ix.free != 0 {
		n = ix.free
		ix.free = ix.nodes[n-1].next
	} else {
		ix.nodes = append(ix.nodes, ownerNode{})
		n = uint32(len(ix.nodes))
	}
	ix.nodes[n-1] = ownerNode{key: *key, next: ix.heads[owner]}
	ix.heads[owner] = n
}

// remove takes key out of owner's list, if it is there.
func (ix *ownerIndex) remove(owner uint64, key *[sha256.Size]byte) {
	prev := uint32(0)
	for n := ix.heads[owner]; n != 0; prev, n = n, ix.nodes[n-1].next {
		if ix.nodes[n-1].key != *key {
			continue
		}
		next := ix.nodes[n-1].next
		switch {
		case prev != 0:
			ix.nodes[prev-1].next = next
		case next != 0:
			ix.heads[owner] = next
		default:
			delete(ix.heads, owner)
		}
		ix.nodes[n-1] = ownerNode{next: ix.free}
		ix.free = n
		return
	}
}

// keys returns a copy of the keys in owner's list.
func (ix *ownerIndex) keys(owner uint64) [][sha256.Size]byte {
	var keys [][sha256.Size]byte
	for n := ix.heads[owner]; n != 0; n = ix.nodes[n-1].next {
		keys = append(keys, ix.nodes[n-1].key)
	}
	return keys
}

package memory

import (
	"crypto/sha256"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOwnerIndex runs random adds and removes on an ownerIndex and on a
// plain map of slices, and compares the two after every step.
func TestOwnerIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ix := ownerIndex{heads: map[uint64]uint32{}}
	model := map[uint64][][sha256.Size]byte{}
	keyOf := func(i int) (k [sha256.Size]byte) { k[0], k[1] = byte(i), byte(i>>8); return k }
	sorted := func(keys [][sha256.Size]byte) [][sha256.Size]byte {
		keys = slices.Clone(keys)
		slices.SortFunc(keys, func(a, b [sha256.Size]byte) int { return slices.Compare(a[:], b[:]) })
		return keys
	}
	for step := range 5000 {
		owner := uint64(rng.IntN(8))
		key := keyOf(rng.IntN(64))
		if rng.IntN(2) == 0 && !slices.Contains(model[owner], key) {
			ix.add(owner, &key)
			model[owner] = append(model[owner], key)
		} else {
			ix.remove(owner, &key)
			if i := slices.Index(model[owner], key); i >= 0 {
				model[owner] = slices.Delete(model[owner], i, i+1)
			}
		}
		// A step changes one owner's list, but a broken link could
		// reach into another's: check them all now and then.
		owners := []uint64{owner}
		if step%500 == 0 {
			owners = []uint64{0, 1, 2, 3, 4, 5, 6, 7}
		}
		for _, o := range owners {
			if !slices.Equal(sorted(model[o]), sorted(ix.keys(o))) {
				t.Fatalf("step %d, owner %d: %s", step, o, cmp.Diff(sorted(model[o]), sorted(ix.keys(o))))
			}
			if _, ok := ix.heads[o]; ok != (len(model[o]) > 0) {
				t.Fatalf("step %d: owner %d has a list: %t, with %d keys", step, o, ok, len(model[o]))
			}
		}
	}
	if len(ix.nodes) > 8*64 {
		t.Errorf("%d nodes for at most %d keys: removed nodes are not reused", len(ix.nodes), 8*64)
	}
}

// TestNothingPerRecordHoldsPointers checks the promise of the package
// documentation: what the backend keeps per record and per owner holds no
// pointer, so a collection does not scan it.
func TestNothingPerRecordHoldsPointers(t *testing.T) {
	var b Backend
	for name, typ := range map[string]reflect.Type{
		"shard index":    reflect.TypeOf(b.shards[0].index),
		"shard overflow": reflect.TypeOf(b.shards[0].overflow),
		"arena":          reflect.TypeOf(b.shards[0].arena),
		"owner heads":    reflect.TypeOf(b.owners.heads),
		"owner nodes":    reflect.TypeOf(b.owners.nodes),
	} {
		// The container itself is one pointer; what it holds must be
		// pointer-free.
		var elems []reflect.Type
		switch typ.Kind() {
		case reflect.Map:
			elems = []reflect.Type{typ.Key(), typ.Elem()}
		case reflect.Slice:
			elems = []reflect.Type{typ.Elem()}
		}
		for _, e := range elems {
			if hasPointers(e) {
				t.Errorf("%s: %s holds pointers", name, e)
			}
		}
	}
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	}
	return true
}

package memory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
)

// TestCompactionKeepsRecords rewrites records until their shards compact:
// every record reads back as last written, and bytes handed out before a
// compaction are unchanged after it.
func TestCompactionKeepsRecords(t *testing.T) {
	b, _ := newTestBackend(t, WithSweepInterval(0))
	ctx := context.Background()
	ids := make([]string, 300)
	for i := range ids {
		ids[i] = sessions.NewID()
	}
	first, _, _ := b.Read(ctx, "")
	for round := range 60 {
		for i, id := range ids {
			data := bytes.Repeat([]byte{byte(round)}, 1000+i%50)
			if _, err := b.Write(ctx, id, data, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if round == 0 {
			first, _, _ = b.Read(ctx, ids[0])
		}
	}
	compacted := 0
	for i := range b.shards {
		compacted += b.shards[i].compacts
	}
	if compacted == 0 {
		t.Fatal("no shard compacted; the test proves nothing")
	}
	for i, id := range ids {
		rec, found, err := b.ReadRecord(ctx, id)
		if err != nil || !found || !bytes.Equal(rec.Data, bytes.Repeat([]byte{59}, 1000+i%50)) || rec.Version != 60 {
			t.Fatalf("record %d: found %t, version %d, %v", i, found, rec.Version, err)
		}
	}
	if !bytes.Equal(first, bytes.Repeat([]byte{0}, 1000)) {
		t.Errorf("bytes read before the compactions changed: %v", first[:8])
	}
	if got := b.Len(); got != len(ids) {
		t.Errorf("Len = %d, want %d", got, len(ids))
	}
}

// collidingKey returns a key whose first eight bytes, the index's, are
// prefix, and that is told apart by n.
func collidingKey(prefix uint64, n byte) [sha256.Size]byte {
	var k [sha256.Size]byte
	binary.LittleEndian.PutUint64(k[:8], prefix)
	k[20] = n
	return k
}

// FuzzShard runs a shard through puts, removes and compactions on a few
// keys, some of which share the eight bytes the index knows them by, and
// holds it to a map.
func FuzzShard(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5})
	f.Add([]byte{0, 0, 8, 8, 16, 1, 9, 17, 24})
	f.Add(bytes.Repeat([]byte{0, 8, 1, 9, 24, 16}, 20))
	f.Fuzz(func(t *testing.T, ops []byte) {
		sh := &shard{index: map[uint64]uint32{}}
		model := map[[sha256.Size]byte]string{}
		for i, op := range ops {
			// Keys 0-3 share one prefix, 4-7 another.
			key := collidingKey(uint64(op&4)>>2, op&7)
			switch op >> 3 % 4 {
			case 0, 1:
				data := fmt.Sprintf("%d:%d", i, op)
				sh.put(&key, 1, uint64(i), "", []byte(data))
				model[key] = data
			case 2:
				if e, ok := sh.find(&key); ok {
					sh.remove(&key, e)
				}
				delete(model, key)
			case 3:
				sh.compact(0)
			}
			got := map[[sha256.Size]byte]string{}
			sh.each(func(e entry) { got[e.key()] = string(e.data()) })
			if diff := cmp.Diff(model, got); diff != "" {
				t.Fatalf("after op %d (%d): records (-want +got):\n%s", i, op, diff)
			}
			for k, want := range model {
				if e, ok := sh.find(&k); !ok || string(e.data()) != want {
					t.Fatalf("after op %d: find(%x) = %q, %t; want %q", i, k[20], e.data(), ok, want)
				}
			}
			live := 0
			for _, v := range model {
				live += headerSize + len(v)
			}
			if sh.live != live {
				t.Fatalf("after op %d: live = %d bytes, want %d", i, sh.live, live)
			}
		}
	})
}

// TestConcurrentUse hammers one backend from many goroutines, with sweeps
// of expired records and compactions among the writes, under the race
// detector: the bytes a read handed out never change, at the end every key
// holds its last write and Len counts the records.
func TestConcurrentUse(t *testing.T) {
	b, clock := newTestBackend(t, WithSweepInterval(0))
	ctx := context.Background()
	const workers, keys, rounds = 8, 16, 400
	// All keys in one shard, so that its garbage passes minCompact and
	// the shard is compacted while the others write and read.
	ids := make([]string, 0, keys)
	for len(ids) < keys {
		if id := sessions.NewID(); sessions.HashToken(id)[sha256.Size-1] == 7 {
			ids = append(ids, id)
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var kept [][]byte // bytes earlier reads handed out
			for r := range rounds {
				id := ids[(w*rounds+r)%keys]
				switch r % 5 {
				case 0, 1:
					ttl := time.Hour
					if r%3 == 0 {
						ttl = time.Second // expired once the clock moves on
					}
					b.Write(ctx, id, bytes.Repeat([]byte{byte(w)}, 500+r), ttl)
				case 2:
					if rec, found, _ := b.ReadRecord(ctx, id); found {
						kept = append(kept, rec.Data)
					}
				case 3:
					b.Touch(ctx, id, time.Hour)
				case 4:
					if w == 0 {
						clock.Advance(2 * time.Second)
						b.Sweep()
					} else {
						b.Remove(ctx, id)
					}
				}
			}
			for _, data := range kept {
				if len(data) < 500 || len(bytes.Trim(data, string(data[:1]))) != 0 {
					t.Errorf("a record read earlier changed under its reader: %d bytes, %q...", len(data), data[:min(len(data), 8)])
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, id := range ids {
		if _, found, _ := b.Read(ctx, id); found {
			n++
		}
	}
	sh := &b.shards[7]
	sh.mu.RLock()
	compacts := sh.compacts
	sh.mu.RUnlock()
	if compacts == 0 {
		t.Error("the shard was never compacted: the test did not test compaction")
	}
	b.Sweep()
	if live := b.Len(); live != n {
		t.Errorf("Len = %d after a sweep, but %d records are found", live, n)
	}
}

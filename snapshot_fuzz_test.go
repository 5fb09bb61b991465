package sessions

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// imaged is the value FuzzImagesImplyEncodings changes: every kind of
// field an image plan handles, times in several zones among them.
type imaged struct {
	S   string
	N   int64
	B   []byte
	L   []string
	P   *int
	T   time.Time
	TP  *time.Time
	TS  []time.Time
	Sub struct {
		A []int
		F bool
	}
}

// fuzzBytes hands out the fuzzer's bytes as small values, and zeros once
// they run out.
type fuzzBytes []byte

func (b *fuzzBytes) byte() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

func (b *fuzzBytes) string() string {
	n := int(b.byte() % 8)
	s := make([]byte, n)
	for i := range s {
		s[i] = 'a' + b.byte()%4
	}
	return string(s)
}

// zone returns a location: UTC, Local, or a fixed zone, often one whose
// offset is not whole hours; each call makes a new *time.Location.
func (b *fuzzBytes) zone() *time.Location {
	switch c := b.byte(); c % 4 {
	case 0:
		return time.UTC
	case 1:
		return time.Local
	default:
		minutes := (int(int8(b.byte())) % 56) * 15 // -13:45 .. +13:45
		return time.FixedZone(fmt.Sprintf("Z%d", c%3), minutes*60)
	}
}

func (b *fuzzBytes) time() time.Time {
	secs := int64(binary.LittleEndian.Uint16([]byte{b.byte(), b.byte()})) * 3607
	return time.Unix(1_767_225_600+secs, int64(b.byte())*1_000_000).In(b.zone())
}

// change applies one change, chosen by the fuzzer, to v.
func (b *fuzzBytes) change(v *imaged) {
	switch b.byte() % 16 {
	case 0:
		v.S = b.string()
	case 1:
		v.N = int64(int8(b.byte()))
	case 2:
		v.B = append(v.B, b.byte())
	case 3:
		v.B = nil
	case 4:
		v.B = []byte{}
	case 5:
		v.L = append(v.L, b.string())
	case 6:
		v.L = nil
	case 7:
		v.L = []string{}
	case 8:
		n := int(b.byte())
		v.P = &n
	case 9:
		v.P = nil
	case 10:
		v.T = v.T.In(b.zone()) // the same instant in another zone
	case 11:
		v.T = b.time()
	case 12:
		t := b.time()
		v.TP = &t
	case 13:
		v.TS = append(v.TS, b.time())
	case 14:
		if len(v.TS) > 0 {
			v.TS[int(b.byte())%len(v.TS)] = v.TS[0].In(b.zone())
		}
	case 15:
		v.Sub.A = append(v.Sub.A, int(b.byte()))
		v.Sub.F = !v.Sub.F
	}
}

// FuzzImagesImplyEncodings checks the invariant change detection rests
// on: when the image taken at commit time equals the snapshot that Data
// took, the value encodes as it did then, in JSON and in msgpack. The
// fuzzer builds a value, decodes it through a codec as a load does (JSON
// makes a new location for every time with an offset), takes a snapshot,
// changes the value, collects garbage, and compares.
func FuzzImagesImplyEncodings(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, []byte{10, 2, 5, 0}, true)
	f.Add([]byte{11, 2, 3, 2, 7, 13, 4, 5, 2, 9}, []byte{10, 0, 14, 0, 3}, true)
	f.Add([]byte{6, 7, 3, 4}, []byte{4, 7}, false)
	f.Add([]byte{8, 5, 12, 1, 1, 3, 30}, []byte{9, 11, 2, 2, 3, 40}, true)
	plan := planImage(reflect.TypeFor[imaged]())
	if plan == nil {
		f.Fatal("no image plan for the fuzzed type")
	}
	f.Fuzz(func(t *testing.T, build, changes []byte, viaJSON bool) {
		codec := Msgpack
		if viaJSON {
			codec = JSON
		}
		var start imaged
		for in := fuzzBytes(build); len(in) > 0; {
			in.change(&start)
		}
		stored, err := codec.Marshal(&start)
		if err != nil {
			t.Skip(err) // nothing to load
		}
		var v imaged
		if err := codec.Unmarshal(stored, &v); err != nil {
			t.Fatalf("decoding what the codec encoded: %v", err)
		}
		beforeJSON, err1 := JSON.Marshal(&v)
		beforeMsgpack, err2 := Msgpack.Marshal(&v)
		if err1 != nil || err2 != nil {
			t.Skip("the loaded value does not encode")
		}
		sn := takeSnapshot(plan, &v)
		defer sn.release()
		for in := fuzzBytes(changes); len(in) > 0; {
			in.change(&v)
		}
		runtime.GC()
		if !sn.matches(plan, unsafe.Pointer(&v)) {
			return // the images differ: the value will be encoded and compared
		}
		afterJSON, err1 := JSON.Marshal(&v)
		afterMsgpack, err2 := Msgpack.Marshal(&v)
		if err1 != nil || err2 != nil {
			t.Fatalf("the value encoded before the change and not after: %v %v", err1, err2)
		}
		if !bytes.Equal(beforeJSON, afterJSON) {
			t.Fatalf("equal images, JSON encodings differ:\n%s\n%s", beforeJSON, afterJSON)
		}
		if !bytes.Equal(beforeMsgpack, afterMsgpack) {
			t.Fatalf("equal images, msgpack encodings differ:\n%x\n%x", beforeMsgpack, afterMsgpack)
		}
	})
}

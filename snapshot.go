package sessions

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"sync"
	"time"
	"unsafe"
)

// A handler that reads the session through Data may have changed it through
// the pointer, so the manager must find out before it saves. Encoding the
// value and comparing the bytes with what was loaded answers that, but
// costs a full run of the codec on every such request, and most of them
// change nothing. A snapshot answers it for less: when Data first hands
// out the pointer, the manager copies everything the value reaches into a
// flat image, and at commit time it takes the image again. Equal images
// prove the value unchanged, and the codec is skipped; different images
// send the session down the encoding path as before, so an image may be
// too strict (padding bytes, a float's -0) but is never too lenient.
//
// Images are built from a plan made once per type: byte ranges of scalars,
// then strings, slices and pointers followed to what they point at. Types a
// plan cannot image exactly, because their contents have no fixed order
// (maps) or no fixed type (interfaces), or hold channels, functions, unsafe
// pointers or themselves, get no plan, and their sessions are always
// encoded.
//
// The invariant everything rests on: two equal images, one taken by Data
// and one at commit time, imply equal encodings of the two values, for
// every codec that encodes a value from its contents. A time.Time's
// *time.Location is the one pointer imaged by its address rather than its
// contents, which are private; locations are never changed once made, so
// the same address means the same zone, but only while the object at that
// address is alive: once collected, a new location (a time.FixedZone that
// JSON decoding made, say) can be allocated at the same address. A snapshot
// therefore keeps every location it imaged by address reachable until it
// is released, and the commit-time image compares against it while the
// value keeps its own locations reachable. FuzzImagesImplyEncodings checks
// the invariant, with collections in between.

// An imagePlan lists what an image of one type holds, in order.
type imagePlan struct {
	ops []imageOp
	// raw is set when the type is a single run of scalar bytes, which a
	// slice of it can image in one copy.
	raw  bool
	size uintptr
}

type imageOpKind uint8

const (
	imageBytes   imageOpKind = iota // size bytes at off
	imageString                     // the string at off
	imageSlice                      // the slice at off, of elements of size bytes laid out by elem
	imagePointer                    // the pointer at off, and what it points at, laid out by elem
	imageAddress                    // the pointer at off, by address only
)

type imageOp struct {
	kind imageOpKind
	off  uintptr
	size uintptr
	elem *imagePlan
}

// sliceHeader is the layout of every Go slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

var locationType = reflect.TypeFor[time.Location]()

// planImage returns the plan for images of t, or nil when t cannot be
// imaged exactly.
func planImage(t reflect.Type) *imagePlan {
	p, ok := buildPlan(t, map[reflect.Type]bool{})
	if !ok {
		return nil
	}
	return p
}

func buildPlan(t reflect.Type, visiting map[reflect.Type]bool) (*imagePlan, bool) {
	if visiting[t] {
		return nil, false // a recursive type: its images could be endless
	}
	visiting[t] = true
	defer delete(visiting, t)

	p := &imagePlan{size: t.Size()}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		p.add(imageOp{kind: imageBytes, size: t.Size()})
	case reflect.String:
		p.add(imageOp{kind: imageString})
	case reflect.Slice:
		elem, ok := buildPlan(t.Elem(), visiting)
		if !ok {
			return nil, false
		}
		p.add(imageOp{kind: imageSlice, size: t.Elem().Size(), elem: elem})
	case reflect.Pointer:
		if t.Elem() == locationType {
			// A time.Time's zone: locations are not changed after they
			// are made, so the address stands for the contents while
			// the snapshot keeps the location alive.
			p.add(imageOp{kind: imageAddress})
			break
		}
		elem, ok := buildPlan(t.Elem(), visiting)
		if !ok {
			return nil, false
		}
		p.add(imageOp{kind: imagePointer, elem: elem})
	case reflect.Array:
		elem, ok := buildPlan(t.Elem(), visiting)
		if !ok {
			return nil, false
		}
		for i := range t.Len() {
			p.addShifted(elem, uintptr(i)*t.Elem().Size())
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			fp, ok := buildPlan(f.Type, visiting)
			if !ok {
				return nil, false
			}
			p.addShifted(fp, f.Offset)
		}
	default: // maps, interfaces, channels, functions, unsafe pointers
		return nil, false
	}
	p.raw = len(p.ops) == 0 || len(p.ops) == 1 && p.ops[0].kind == imageBytes && p.ops[0].off == 0 && p.ops[0].size == p.size
	return p, true
}

// add appends op, merging byte ranges that meet.
func (p *imagePlan) add(op imageOp) {
	if op.kind == imageBytes && op.size == 0 {
		return
	}
	if n := len(p.ops); n > 0 && op.kind == imageBytes {
		if last := &p.ops[n-1]; last.kind == imageBytes && last.off+last.size == op.off {
			last.size += op.size
			return
		}
	}
	p.ops = append(p.ops, op)
}

// addShifted appends the ops of q, for a value at offset off.
func (p *imagePlan) addShifted(q *imagePlan, off uintptr) {
	for _, op := range q.ops {
		op.off += off
		p.add(op)
	}
}

// A snapshot is the image of a session's value from when Data first
// handed out a pointer to it.
type snapshot struct {
	image []byte
	// keep holds the pointers the image records by address, so that no
	// other object can be allocated at one of those addresses while the
	// snapshot is alive.
	keep []unsafe.Pointer
}

var snapshots = sync.Pool{New: func() any { return &snapshot{image: make([]byte, 0, 512)} }}

// takeSnapshot images *v, whose type p describes.
func takeSnapshot[T any](p *imagePlan, v *T) *snapshot {
	sn := snapshots.Get().(*snapshot)
	sn.image = p.appendImage(sn.image[:0], &sn.keep, unsafe.Pointer(v))
	return sn
}

// matches reports whether the value at v, whose type p describes, still
// has the snapshot's image.
func (sn *snapshot) matches(p *imagePlan, v unsafe.Pointer) bool {
	buf := frames.Get().(*[]byte)
	image := p.appendImage((*buf)[:0], nil, v)
	same := bytes.Equal(image, sn.image)
	*buf = image[:0]
	putFrame(buf)
	return same
}

// release returns the snapshot to its pool; it must not be used after.
func (sn *snapshot) release() {
	clear(sn.keep) // the pool must not keep locations alive
	sn.keep = sn.keep[:0]
	if cap(sn.image) <= 64<<10 {
		snapshots.Put(sn)
	}
}

// appendImage appends the image of the value at v, whose type p describes.
// Pointers imaged by address are appended to *keep, unless keep is nil.
func (p *imagePlan) appendImage(b []byte, keep *[]unsafe.Pointer, v unsafe.Pointer) []byte {
	for _, op := range p.ops {
		at := unsafe.Add(v, op.off)
		switch op.kind {
		case imageBytes:
			b = append(b, unsafe.Slice((*byte)(at), op.size)...)
		case imageString:
			s := *(*string)(at)
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		case imageSlice:
			h := (*sliceHeader)(at)
			if h.data == nil {
				b = append(b, 0) // nil, which codecs tell from empty
				continue
			}
			b = append(b, 1)
			b = binary.AppendUvarint(b, uint64(h.len))
			if op.elem.raw {
				b = append(b, unsafe.Slice((*byte)(h.data), uintptr(h.len)*op.size)...)
				continue
			}
			for i := range uintptr(h.len) {
				b = op.elem.appendImage(b, keep, unsafe.Add(h.data, i*op.size))
			}
		case imagePointer:
			target := *(*unsafe.Pointer)(at)
			if target == nil {
				b = append(b, 0)
				continue
			}
			b = append(b, 1)
			b = op.elem.appendImage(b, keep, target)
		case imageAddress:
			target := *(*unsafe.Pointer)(at)
			// The address is compared, never dereferenced: keep holds
			// the object so that the address keeps naming it.
			b = binary.LittleEndian.AppendUint64(b, uint64(uintptr(target)))
			if keep != nil && target != nil {
				*keep = append(*keep, target)
			}
		}
	}
	return b
}

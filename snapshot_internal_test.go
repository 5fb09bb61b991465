package sessions

import (
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

type recursive struct {
	Next *recursive
	N    int
}

// TestPlanImage lists which types snapshot images cover: those whose
// contents have one order and one type; the others are always encoded.
func TestPlanImage(t *testing.T) {
	tests := []struct {
		t    reflect.Type
		want bool
	}{
		{reflect.TypeFor[int](), true},
		{reflect.TypeFor[string](), true},
		{reflect.TypeFor[time.Time](), true},
		{reflect.TypeFor[struct {
			A []string
			B *struct{ C [2]float64 }
			D []struct{ E []byte }
			e bool // unexported fields are imaged too
		}](), true},
		{reflect.TypeFor[struct{}](), true},
		{reflect.TypeFor[map[string]string](), false},
		{reflect.TypeFor[struct{ M map[string]int }](), false},
		{reflect.TypeFor[[]any](), false},
		{reflect.TypeFor[struct{ C chan int }](), false},
		{reflect.TypeFor[func()](), false},
		{reflect.TypeFor[unsafe.Pointer](), false},
		{reflect.TypeFor[recursive](), false},
	}
	for _, tt := range tests {
		if got := planImage(tt.t) != nil; got != tt.want {
			t.Errorf("planImage(%v) != nil is %t, want %t", tt.t, got, tt.want)
		}
	}
}

// TestImageTellsApart checks pairs of values a codec encodes differently
// but that a careless image would mistake for each other.
func TestImageTellsApart(t *testing.T) {
	type v struct {
		A, B string
		S    []int
		P    *int
	}
	one := 1
	pairs := []struct {
		name string
		x, y v
	}{
		{"bytes moved between strings", v{A: "ab", B: "c"}, v{A: "a", B: "bc"}},
		{"nil and empty slice", v{S: nil}, v{S: []int{}}},
		{"nil and zero pointer", v{P: nil}, v{P: new(int)}},
		{"pointee", v{P: new(int)}, v{P: &one}},
		{"slice length", v{S: []int{0}}, v{S: []int{0, 0}}},
	}
	plan := planImage(reflect.TypeFor[v]())
	for _, p := range pairs {
		x := plan.appendImage(nil, nil, unsafe.Pointer(&p.x))
		y := plan.appendImage(nil, nil, unsafe.Pointer(&p.y))
		if string(x) == string(y) {
			t.Errorf("%s: the images are equal: %q", p.name, x)
		}
	}
}

// TestSnapshotKeepsLocationsAlive checks the one pointer an image compares
// by address. Once the value no longer holds the location its time was in,
// only the snapshot does; if it did not, the collector could free the
// location and a new one, in another zone, could be allocated at its
// address: the commit-time image would then equal the snapshot while the
// JSON encoding, which carries the zone's offset, differs, and the change
// would not be saved.
func TestSnapshotKeepsLocationsAlive(t *testing.T) {
	type zoned struct{ T time.Time }
	plan := planImage(reflect.TypeFor[zoned]())
	instant := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := zoned{T: instant.In(time.FixedZone("", 5*3600+1800))}
	before, _ := JSON.Marshal(v)
	sn := takeSnapshot(plan, &v)
	defer sn.release()
	v.T = time.Time{} // the value lets go of its location

	var made []*time.Location // kept, so that each new one gets a new address
	for i := range 3000 {
		if i%50 == 0 {
			runtime.GC()
		}
		loc := time.FixedZone("", -(3*3600 + 1800))
		made = append(made, loc)
		v.T = instant.In(loc) // same wall clock bytes, another zone
		if sn.matches(plan, unsafe.Pointer(&v)) {
			after, _ := JSON.Marshal(v)
			t.Fatalf("after %d new locations: the images are equal, the encodings %s and %s are not", i+1, before, after)
		}
	}
	runtime.KeepAlive(made)
}

// TestSliceHeaderLayout states what the image's reading of slices assumes:
// a slice is its data pointer, then its length, then its capacity, each a
// machine word, as reflect and the runtime lay it out.
func TestSliceHeaderLayout(t *testing.T) {
	var h sliceHeader
	if unsafe.Sizeof(h) != unsafe.Sizeof([]int(nil)) || unsafe.Sizeof(h) != 3*unsafe.Sizeof(uintptr(0)) {
		t.Fatalf("sliceHeader is %d bytes, a slice %d", unsafe.Sizeof(h), unsafe.Sizeof([]int(nil)))
	}
	if unsafe.Offsetof(h.data) != 0 || unsafe.Offsetof(h.len) != unsafe.Sizeof(uintptr(0)) || unsafe.Offsetof(h.cap) != 2*unsafe.Sizeof(uintptr(0)) {
		t.Fatalf("sliceHeader fields at %d, %d, %d", unsafe.Offsetof(h.data), unsafe.Offsetof(h.len), unsafe.Offsetof(h.cap))
	}
	for _, s := range [][]int{nil, {}, make([]int, 3, 7)} {
		got := (*sliceHeader)(unsafe.Pointer(&s))
		if got.data != unsafe.Pointer(unsafe.SliceData(s)) || got.len != len(s) || got.cap != cap(s) {
			t.Errorf("slice %v (len %d cap %d) read as %+v", s, len(s), cap(s), *got)
		}
		// nil and empty differ in the data pointer alone, which is what
		// the image tells them apart by.
		if (got.data == nil) != (s == nil) {
			t.Errorf("slice %v: data pointer nil is %t, slice nil is %t", s, got.data == nil, s == nil)
		}
	}
}

package sessions

import (
	"reflect"
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

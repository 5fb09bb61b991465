// Package fieldname lists the names under which encoding/json and
// vmihailenco/msgpack encode the fields of a struct, for package sessions
// (which carries fields it does not know through a save) and package
// sessionstest (which checks stored sessions against a struct).
package fieldname

import (
	"reflect"
	"strings"
)

// Each calls fn with the index path and the encoded name of each field of
// the struct type t, as a codec that reads the struct tag key tag encodes
// it: the tag's name, or the field's; "-" leaves a field out, and the
// fields of an embedded struct without a name of its own are the outer
// struct's.
func Each(t reflect.Type, tag string, fn func(index []int, name string)) {
	each(t, tag, nil, fn)
}

func each(t reflect.Type, tag string, path []int, fn func([]int, string)) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get(tag), ",")
		if name == "-" {
			continue
		}
		index := append(path[:len(path):len(path)], i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			// Through a pointer too: a value's pointer may be nil, so
			// reach such fields with reflect.Value.FieldByIndexErr.
			each(ft, tag, index, fn)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fn(index, name)
	}
}

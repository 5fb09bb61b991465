// Package fieldname lists the names under which encoding/json and
// vmihailenco/msgpack encode the fields of a struct, for package sessions
// (which carries fields it does not know through a save) and package
// sessionstest (which checks stored sessions against a struct).
package fieldname

import (
	"reflect"
	"strings"
	"unicode"
)

// Each calls fn with the index path and the encoded name of each field of
// the struct type t, as the codec whose struct tag key is tag ("json" or
// "msgpack") encodes it: the tag's name, or the field's; "-" leaves a field
// out, and the fields of an embedded struct are the outer struct's when
// the codec inlines them.
//
// The names are a superset of the keys the codec writes, never a subset:
// where the codec's choice depends on more than the types (msgpack inlines
// an embedded struct only when none of its fields is shadowed and it has
// no encoder of its own), Each gives the names of both outcomes, and the
// fields of shadowed embedded fields too. A caller that takes a name Each
// gives for a field of the struct can be wrong only towards dropping a
// key, never towards keeping a stale copy of one the codec writes. When
// two names are equal, the one with the shorter index path is the one the
// codecs use.
func Each(t reflect.Type, tag string, fn func(index []int, name string)) {
	each(t, tag, nil, fn)
}

func each(t reflect.Type, tag string, path []int, fn func([]int, string)) {
	for i := range t.NumField() {
		f := t.Field(i)
		tagValue := f.Tag.Get(tag)
		tagName, opts, _ := strings.Cut(tagValue, ",")
		if tag != "json" {
			// msgpack trims its tag's parts, and a first part with a
			// colon is an option, not a name.
			tagName = strings.TrimSpace(tagName)
			if strings.Contains(tagName, ":") {
				tagName, opts = "", tagName+","+opts
			}
		}
		if tagName == "-" && (tag != "json" || tagValue == "-") {
			continue // encoding/json writes a field tagged "-," under the key "-"
		}
		index := append(path[:len(path):len(path)], i)
		ft := f.Type
		for ft.Kind() == reflect.Pointer && (tag != "json" || ft == f.Type) {
			ft = ft.Elem() // encoding/json looks through one pointer, msgpack through all
		}
		if tag == "json" && !validJSONName(tagName) {
			tagName = ""
		}
		name := f.Name
		if tagName != "" {
			name = tagName
		}
		switch tag {
		case "json":
			if f.Anonymous && tagName == "" && ft.Kind() == reflect.Struct {
				each(ft, tag, index, fn) // through a pointer too: reach it with FieldByIndexErr
				continue
			}
			if !f.IsExported() && !(f.Anonymous && ft.Kind() == reflect.Struct) {
				continue // an embedded struct counts even when its type is unexported
			}
			fn(index, name)
		default:
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			fn(index, name)
			if alias, ok := option(opts, "alias:"); ok {
				fn(index, alias)
			}
			if f.Anonymous && ft.Kind() == reflect.Struct && !hasOption(opts, "noinline") {
				each(ft, tag, index, fn)
			}
		}
	}
}

// validJSONName reports whether encoding/json takes name, a struct tag's
// name, as a key; it ignores other names and uses the field's.
func validJSONName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// hasOption reports whether the comma-separated options opts include opt.
func hasOption(opts, opt string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if strings.TrimSpace(o) == opt {
			return true
		}
	}
	return false
}

// option returns the value of the option in opts that starts with prefix.
func option(opts, prefix string) (string, bool) {
	for o := range strings.SplitSeq(opts, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(o), prefix); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

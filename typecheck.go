package sessions

import (
	"fmt"
	"reflect"
	"strings"
)

// A session type's fields that its codec cannot bring back are lost
// without an error: encoding/json and msgpack skip unexported fields, and
// decode into an interface field a map or a float64 rather than the type
// that was stored. New warns of them, once, so that a new user sees the
// loss at start-up rather than in a bug report. It warns rather than
// panics: a field may be unexported on purpose, holding something derived
// that the application rebuilds on every request.

// lossyFields returns a line for each field reachable from the struct
// type t that the codec with struct tag key tag drops or changes on a round
// trip, or nil. Types that encode themselves, by the methods in encoders,
// are their own business, and so are fields tagged "-".
func lossyFields(t reflect.Type, tag string, encoders []reflect.Type) []string {
	var out []string
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || encodesItself(t, encoders) {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			name := path + "." + f.Name
			if strings.HasPrefix(f.Name, "_") || f.Tag.Get(tag) == "-" {
				continue // blank or a codec's marker (_msgpack), or left out on purpose
			}
			ft := f.Type
			if !f.IsExported() {
				// An embedded struct's exported fields are encoded
				// inline whatever the struct's own name.
				if f.Anonymous && deref(ft).Kind() == reflect.Struct {
					walk(ft, path)
					continue
				}
				out = append(out, name+" is unexported: it is not saved, and is the zero value on every load")
				continue
			}
			if deref(ft).Kind() == reflect.Interface && !encodesItself(ft, encoders) {
				out = append(out, name+" is an interface ("+ft.String()+"): it comes back as the codec's generic value, such as a map[string]any or a float64, not as the type stored")
				continue
			}
			walk(ft, name)
		}
	}
	walk(t, t.Name())
	return out
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// warnLossyFields logs, once at New, the fields of T that the codec
// cannot bring back. Only the package's own codecs are checked: a codec of
// one's own may well keep what they cannot.
func (m *Manager[T]) warnLossyFields() {
	var tag string
	var encoders []reflect.Type
	switch m.codec.(type) {
	case jsonCodec:
		tag, encoders = "json", jsonMethods
	case msgpackCodec:
		tag, encoders = "msgpack", msgpackMethods
	default:
		return
	}
	if lines := lossyFields(reflect.TypeFor[T](), tag, encoders); len(lines) > 0 {
		var zero T
		m.logger().Warn(fmt.Sprintf("sessions: New: the session type %T has fields the %s codec does not bring back", zero, tag),
			"fields", strings.Join(lines, "; "))
	}
}

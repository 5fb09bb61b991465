package sessions

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/starsessions/sessions/internal/fieldname"
	"github.com/vmihailenco/msgpack/v5"
)

// The JSON and msgpack codecs encode a struct as a map from field names to
// values, so the top level of an encoded session can be taken apart into
// key-value pairs and put back together without decoding it. That is what
// carrying fields T does not know through a save rests on (a session
// written by a newer release keeps what this one cannot read), and what
// merging disjoint changes of two requests rests on: a field is a pair.
//
// Only the top level is taken apart: a change inside a struct field is a
// change of that field, and a field unknown to a nested struct is lost when
// this release saves the struct.

// A pair is one field of an encoded map: its key, as the codec compares
// keys, and its bytes.
type pair struct {
	key   []byte // the key, decoded
	raw   []byte // the key and the value, as encoded
	value []byte // the value, as encoded
}

// A fieldCodec takes the top level of a codec's encodings apart and puts it
// together again. Only the package's own codecs are fieldCodecs; with
// another codec, unknown fields are not carried and changes are not
// merged.
type fieldCodec interface {
	// split appends the pairs of data, an encoded map, to pairs, or
	// reports false when data is not an encoded map.
	split(pairs []pair, data []byte) ([]pair, bool)
	// join appends the encoding of a map of pairs to dst.
	join(dst []byte, pairs []pair) []byte
	// fields returns the set of keys the codec decodes into a struct of
	// type t, or nil when t is not a struct.
	fields(t reflect.Type) *fieldSet
	// anyUnknown reports whether data, an encoded map, has a key that fs
	// does not know. It allocates nothing: every write asks it.
	anyUnknown(data []byte, fs *fieldSet) bool
	// tag is the struct tag key the codec reads field names from.
	tag() string
}

// A fieldSet is the keys a codec decodes into the fields of a struct.
type fieldSet struct {
	names map[string]bool
	// order is the names in the order of the struct's fields, which is
	// the order both codecs encode them in: a key that is the next name
	// is known without a map lookup.
	order []string
	fold  bool // keys match names whatever their case, as encoding/json does
}

// hasNext is has for the keys of one encoding, in order: *next is the
// position in order where the previous key was found, plus one.
func (fs *fieldSet) hasNext(key []byte, next *int) bool {
	if *next < len(fs.order) && fs.order[*next] == string(key) {
		*next++
		return true
	}
	return fs.has(key)
}

// has reports whether key names one of the fields.
func (fs *fieldSet) has(key []byte) bool {
	if fs.names[string(key)] {
		return true
	}
	if !fs.fold {
		return false
	}
	for name := range fs.names {
		if equalFold(name, key) {
			return true
		}
	}
	return false
}

// equalFold is strings.EqualFold for a string and bytes, without the
// conversion: ASCII letters fold, other bytes must be equal. encoding/json
// folds the few non-ASCII letters too; a key that differs from a field's
// name only in such a letter is taken for unknown, and carried.
func equalFold(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := range len(b) {
		x, y := s[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func newFieldSet(t reflect.Type, tag string, fold bool) *fieldSet {
	if t.Kind() != reflect.Struct {
		return nil
	}
	fs := &fieldSet{names: map[string]bool{}, fold: fold}
	fieldname.Each(t, tag, func(_ []int, name string) {
		fs.names[name] = true
		fs.order = append(fs.order, name)
	})
	return fs
}

// appendUnknown appends to pairs the pairs of data, an encoding of a T,
// whose keys T does not know: fields that a newer release wrote. A key that
// pairs already holds is not appended twice, whatever fs says: a decoder
// takes the last of two equal keys, which would bring back an old value.
func appendUnknown(pairs []pair, fs *fieldSet, fc fieldCodec, data []byte) []pair {
	if len(data) == 0 || !fc.anyUnknown(data, fs) {
		return pairs
	}
	all, ok := fc.split(nil, data)
	if !ok {
		return pairs
	}
	have := len(pairs)
	for _, p := range all {
		if !fs.has(p.key) && !fs.among(p.key, pairs[:have]) {
			pairs = append(pairs, p)
		}
	}
	return pairs
}

// among reports whether one of pairs has key, compared as the codec
// compares keys.
func (fs *fieldSet) among(key []byte, pairs []pair) bool {
	for _, p := range pairs {
		if bytes.Equal(p.key, key) || fs.fold && equalFold(string(p.key), key) {
			return true
		}
	}
	return false
}

// JSON objects.

func (jsonCodec) tag() string { return "json" }

func (jsonCodec) fields(t reflect.Type) *fieldSet {
	if encodesItself(t, jsonMethods) {
		return nil
	}
	return newFieldSet(t, "json", true)
}

// jsonMethods are the methods by which a type takes its JSON encoding or
// decoding into its own hands.
var jsonMethods = []reflect.Type{
	reflect.TypeFor[json.Marshaler](), reflect.TypeFor[json.Unmarshaler](),
	reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler](),
}

// encodesItself reports whether t, or a pointer to t, has one of methods:
// its encoding is then whatever its methods make it, so the top level is
// not taken apart. A struct whose encoding method reads a key of its own
// would otherwise find it carried as unknown, and read its stale copy back
// on every load.
func encodesItself(t reflect.Type, methods []reflect.Type) bool {
	for _, m := range methods {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	return false
}

func (jsonCodec) join(dst []byte, pairs []pair) []byte {
	dst = append(dst, '{')
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, p.raw...)
	}
	return append(dst, '}')
}

func (jsonCodec) split(pairs []pair, data []byte) ([]pair, bool) {
	it := jsonIter{data: data}
	for it.next() {
		key, ok := jsonKey(it.key)
		if !ok {
			return pairs, false
		}
		pairs = append(pairs, pair{key: key, raw: data[it.start:it.end], value: data[it.valueStart:it.end]})
	}
	return pairs, it.ok
}

func (jsonCodec) anyUnknown(data []byte, fs *fieldSet) bool {
	it := jsonIter{data: data}
	next := 0
	for it.next() {
		inner := it.key[1 : len(it.key)-1]
		if bytes.IndexByte(inner, '\\') >= 0 {
			return true // escaped keys are rare: let split decode them
		}
		if !fs.hasNext(inner, &next) {
			return true
		}
	}
	return false
}

// A jsonIter walks the members of a JSON object.
type jsonIter struct {
	data       []byte
	i          int
	started    bool
	key        []byte // the member's key, quoted
	start, end int    // the member's bytes, key to value
	valueStart int
	ok         bool // the object ended well
}

// next moves to the next member, and reports whether there was one.
func (it *jsonIter) next() bool {
	data := it.data
	i := it.i
	if !it.started {
		it.started = true
		i = jsonSpace(data, 0)
		if i >= len(data) || data[i] != '{' {
			return false
		}
		i = jsonSpace(data, i+1)
		if i < len(data) && data[i] == '}' {
			it.ok = jsonSpace(data, i+1) == len(data)
			return false
		}
	} else {
		i = jsonSpace(data, it.end)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = jsonSpace(data, i+1)
		case '}':
			it.ok = jsonSpace(data, i+1) == len(data)
			return false
		default:
			return false
		}
	}
	start := i
	end, ok := jsonString(data, i)
	if !ok {
		return false
	}
	i = jsonSpace(data, end)
	if i >= len(data) || data[i] != ':' {
		return false
	}
	valueStart := jsonSpace(data, i+1)
	valueEnd, ok := jsonValue(data, valueStart)
	if !ok {
		return false
	}
	it.key, it.start, it.valueStart, it.end = data[start:end], start, valueStart, valueEnd
	return true
}

func jsonSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// jsonString returns the end of the string that starts at data[i].
func jsonString(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// jsonKey decodes a quoted key.
func jsonKey(quoted []byte) ([]byte, bool) {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, utf8.Valid(inner)
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

// jsonValue returns the end of the value that starts at data[i].
func jsonValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch data[i] {
	case '"':
		return jsonString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				end, ok := jsonString(data, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	}
	start := i
	for i < len(data) && !strings.ContainsRune(",}] \t\r\n", rune(data[i])) {
		i++
	}
	return i, i > start
}

// msgpack maps.

func (msgpackCodec) tag() string { return "msgpack" }

func (msgpackCodec) fields(t reflect.Type) *fieldSet {
	if encodesItself(t, msgpackMethods) || msgpackArray(t) {
		return nil
	}
	return newFieldSet(t, "msgpack", false)
}

// msgpackMethods are the methods by which a type takes its msgpack
// encoding or decoding into its own hands.
var msgpackMethods = []reflect.Type{
	reflect.TypeFor[msgpack.CustomEncoder](), reflect.TypeFor[msgpack.CustomDecoder](),
	reflect.TypeFor[msgpack.Marshaler](), reflect.TypeFor[msgpack.Unmarshaler](),
	reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.BinaryUnmarshaler](),
	reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler](),
}

// msgpackArray reports whether msgpack encodes the struct type t as an
// array, as its _msgpack field's as_array option asks.
func msgpackArray(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	f, ok := t.FieldByName("_msgpack")
	if !ok {
		return false
	}
	_, opts, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
	for o := range strings.SplitSeq(opts, ",") {
		if o = strings.TrimSpace(o); o == "as_array" || o == "asArray" {
			return true
		}
	}
	return false
}

func (msgpackCodec) join(dst []byte, pairs []pair) []byte {
	switch n := len(pairs); {
	case n < 16:
		dst = append(dst, 0x80|byte(n))
	case n < 1<<16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xde), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(n))
	}
	for _, p := range pairs {
		dst = append(dst, p.raw...)
	}
	return dst
}

func (msgpackCodec) split(pairs []pair, data []byte) ([]pair, bool) {
	it := msgpackIter{data: data}
	for it.next() {
		pairs = append(pairs, pair{key: it.key, raw: data[it.start:it.end], value: data[it.valueStart:it.end]})
	}
	return pairs, it.ok
}

func (msgpackCodec) anyUnknown(data []byte, fs *fieldSet) bool {
	it := msgpackIter{data: data}
	next := 0
	for it.next() {
		if !fs.hasNext(it.key, &next) {
			return true
		}
	}
	return false
}

// A msgpackIter walks the entries of a msgpack map whose keys are strings.
type msgpackIter struct {
	data       []byte
	left       int // entries not yet walked, -1 before the header is read
	started    bool
	key        []byte
	start, end int // the entry's bytes, key to value
	valueStart int
	ok         bool // the map ended well
}

// next moves to the next entry, and reports whether there was one.
func (it *msgpackIter) next() bool {
	data := it.data
	i := it.end
	if !it.started {
		it.started = true
		if len(data) == 0 {
			return false
		}
		switch c := data[0]; {
		case c >= 0x80 && c <= 0x8f:
			it.left, i = int(c&0x0f), 1
		case c == 0xde && len(data) >= 3:
			it.left, i = int(binary.BigEndian.Uint16(data[1:])), 3
		case c == 0xdf && len(data) >= 5:
			it.left, i = int(binary.BigEndian.Uint32(data[1:])), 5
		default:
			return false
		}
	}
	if it.left == 0 {
		it.ok = i == len(data)
		return false
	}
	it.left--
	key, keyEnd, ok := msgpackStr(data, i)
	if !ok {
		return false
	}
	end, ok := msgpackSkip(data, keyEnd)
	if !ok {
		return false
	}
	it.key, it.start, it.valueStart, it.end = key, i, keyEnd, end
	return true
}

// msgpackStr returns the bytes of the string at data[i], and its end.
func msgpackStr(data []byte, i int) ([]byte, int, bool) {
	if i >= len(data) {
		return nil, 0, false
	}
	var n, head int
	switch c := data[i]; {
	case c >= 0xa0 && c <= 0xbf:
		n, head = int(c&0x1f), 1
	case c == 0xd9 && i+2 <= len(data):
		n, head = int(data[i+1]), 2
	case c == 0xda && i+3 <= len(data):
		n, head = int(binary.BigEndian.Uint16(data[i+1:])), 3
	case c == 0xdb && i+5 <= len(data):
		n, head = int(binary.BigEndian.Uint32(data[i+1:])), 5
	default:
		return nil, 0, false
	}
	end := i + head + n
	if n < 0 || end > len(data) || end < i {
		return nil, 0, false
	}
	return data[i+head : end], end, true
}

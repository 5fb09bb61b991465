package sessions

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vmihailenco/msgpack/v5"
)

type inner struct{ Deep []int }

type fielded struct {
	Name    string
	Renamed int `json:"renamed_json" msgpack:"renamed_mp"`
	Skipped int `json:"-" msgpack:"-"`
	hidden  int
	inner
	Nested inner
}

func TestFieldSets(t *testing.T) {
	typ := reflect.TypeFor[fielded]()
	jsonKnown := jsonCodec{}.fields(typ)
	mpKnown := msgpackCodec{}.fields(typ)
	for _, tt := range []struct {
		set  *fieldSet
		key  string
		want bool
	}{
		{jsonKnown, "Name", true},
		{jsonKnown, "name", true}, // encoding/json matches keys in any case
		{jsonKnown, "renamed_json", true},
		{jsonKnown, "Renamed", false},
		{jsonKnown, "Skipped", false},
		{jsonKnown, "hidden", false},
		{jsonKnown, "Deep", true}, // promoted from the embedded struct
		{jsonKnown, "Nested", true},
		{jsonKnown, "Theme", false},
		{mpKnown, "Name", true},
		{mpKnown, "name", false}, // msgpack matches exactly
		{mpKnown, "renamed_mp", true},
		{mpKnown, "Deep", true},
		{mpKnown, "Theme", false},
	} {
		if got := tt.set.has([]byte(tt.key)); got != tt.want {
			t.Errorf("fold=%t has(%q) = %t, want %t", tt.set.fold, tt.key, got, tt.want)
		}
	}
	if (jsonCodec{}).fields(reflect.TypeFor[map[string]int]()) != nil {
		t.Error("a map type has a field set")
	}
	// Types that take their encoding into their own hands are not taken
	// apart: their keys are whatever their methods make them.
	for _, tt := range []struct {
		name  string
		codec fieldCodec
		typ   reflect.Type
	}{
		{"json.Marshaler", jsonCodec{}, reflect.TypeFor[selfJSON]()},
		{"encoding.TextMarshaler", jsonCodec{}, reflect.TypeFor[selfText]()},
		{"msgpack.CustomEncoder", msgpackCodec{}, reflect.TypeFor[selfMsgpack]()},
		{"encoding.TextMarshaler", msgpackCodec{}, reflect.TypeFor[selfText]()},
		{"as_array", msgpackCodec{}, reflect.TypeFor[asArray]()},
	} {
		if tt.codec.fields(tt.typ) != nil {
			t.Errorf("%T: a %s has a field set", tt.codec, tt.name)
		}
	}
}

type selfJSON struct{ A int }

func (selfJSON) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }

type selfText struct{ A int }

func (*selfText) UnmarshalText([]byte) error { return nil }

type selfMsgpack struct{ A int }

func (selfMsgpack) EncodeMsgpack(*msgpack.Encoder) error { return nil }

type asArray struct {
	_msgpack struct{} `msgpack:",as_array"`
	A        int
}

// TestFieldNames checks the names a codec may write for fields whose name
// its rules decide beyond the field's tag: every name the codec writes
// must be among them.
func TestFieldNames(t *testing.T) {
	type base struct{ A int }
	type shadowing struct {
		A int
		base
	}
	type tagged struct {
		base `json:"b" msgpack:"b"`
	}
	type dash struct {
		D int `json:"-,"`
	}
	type badTag struct {
		E int `json:"é\\"`
	}
	for _, v := range []any{fielded{}, shadowing{A: 1, base: base{2}}, tagged{base{1}}, dash{1}, badTag{1}} {
		typ := reflect.TypeOf(v)
		for _, c := range []struct {
			codec fieldCodec
			enc   func(any) ([]byte, error)
		}{{jsonCodec{}, json.Marshal}, {msgpackCodec{}, msgpack.Marshal}} {
			fs := c.codec.fields(typ)
			data, err := c.enc(v)
			if err != nil {
				t.Fatal(err)
			}
			pairs, ok := c.codec.split(nil, data)
			if !ok {
				t.Fatalf("%T: cannot split %q", c.codec, data)
			}
			for _, p := range pairs {
				if !fs.has(p.key) {
					t.Errorf("%T %s: the codec writes %q, which the field set does not know", c.codec, typ, p.key)
				}
			}
		}
	}
}

// TestSplitJoin takes encodings of maps apart and puts them together: the
// pairs are the encoding's, and joining them gives an encoding of the same
// map.
func TestSplitJoin(t *testing.T) {
	value := map[string]any{
		"a":     1,
		"b":     "x,\"}]",
		"c":     []any{1, map[string]any{"d": "{["}},
		"e":     nil,
		"f\"g":  true,
		"empty": map[string]any{},
	}
	for name, fc := range map[string]fieldCodec{"json": jsonCodec{}, "msgpack": msgpackCodec{}} {
		t.Run(name, func(t *testing.T) {
			codec := fc.(Codec)
			data, err := codec.Marshal(value)
			if err != nil {
				t.Fatal(err)
			}
			pairs, ok := fc.split(nil, data)
			if !ok || len(pairs) != len(value) {
				t.Fatalf("split: %d pairs, %t", len(pairs), ok)
			}
			keys := map[string]bool{}
			for _, p := range pairs {
				keys[string(p.key)] = true
			}
			for k := range value {
				if !keys[k] {
					t.Errorf("no pair for key %q", k)
				}
			}
			var back map[string]any
			if err := codec.Unmarshal(fc.join(nil, pairs[1:]), &back); err != nil {
				t.Fatalf("join of all pairs but the first does not decode: %v", err)
			}
			if len(back) != len(value)-1 || back[string(pairs[0].key)] != nil {
				t.Errorf("join of all pairs but %q gives %v", pairs[0].key, back)
			}
			for _, bad := range [][]byte{nil, []byte("[1]"), data[:len(data)-1], append(append([]byte{}, data...), ' ', 'x')} {
				if _, ok := fc.split(nil, bad); ok {
					t.Errorf("split accepted %q", bad)
				}
			}
		})
	}
}

// FuzzSplitFields checks the top-level splitters on any input: no panic,
// and when they accept the input, joining the pairs again gives an
// encoding that decodes to what the input decodes to.
func FuzzSplitFields(f *testing.F) {
	for _, v := range []any{
		map[string]any{"a": 1, "b": []any{"x", 2.5}},
		fielded{Name: "n", Renamed: 3, inner: inner{Deep: []int{1}}},
		map[string]any{},
	} {
		j, _ := json.Marshal(v)
		m, _ := msgpack.Marshal(v)
		f.Add(j, false)
		f.Add(m, true)
	}
	f.Add([]byte(`{"a" : "b\\"" , "c":{"d":[1,{"e":"]"}]}}`), false)
	f.Add([]byte{0x81, 0xa1, '0', 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1}, true) // {"0": NaN}
	f.Fuzz(func(t *testing.T, data []byte, mp bool) {
		var fc fieldCodec = jsonCodec{}
		if mp {
			fc = msgpackCodec{}
		}
		codec := fc.(Codec)
		pairs, ok := fc.split(nil, data)
		if !ok {
			return
		}
		var want, got map[string]any
		if err := codec.Unmarshal(data, &want); err != nil {
			return // the splitter is lenient about what it does not look into
		}
		if err := codec.Unmarshal(fc.join(nil, pairs), &got); err != nil {
			t.Fatalf("the joined pairs do not decode: %v", err)
		}
		if len(pairs) != len(want) && !hasDuplicateKeys(pairs) {
			t.Fatalf("%d pairs for %d keys", len(pairs), len(want))
		}
		// NaN is a value msgpack can carry, and never equals itself.
		if diff := cmp.Diff(want, got, cmpopts.EquateNaNs()); diff != "" {
			t.Fatalf("joined pairs decode differently (-want +got):\n%s", diff)
		}
	})
}

func hasDuplicateKeys(pairs []pair) bool {
	seen := map[string]bool{}
	for _, p := range pairs {
		if seen[string(p.key)] {
			return true
		}
		seen[string(p.key)] = true
	}
	return false
}

package sessions

import (
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestMsgpackHugeLengthClaims feeds headers that claim billions of
// elements: decoding must fail at once instead of allocating for them.
func TestMsgpackHugeLengthClaims(t *testing.T) {
	type line struct{ SKU string }
	type cart struct{ Lines []line }
	tests := map[string][]byte{
		"array32 of structs": {0x81, 0xa5, 'L', 'i', 'n', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"array16 of structs": {0x81, 0xa5, 'L', 'i', 'n', 'e', 's', 0xdc, 0xff, 0xff, 0x80},
		"map32":              {0xdf, 0xff, 0xff, 0xff, 0xff},
		"str32":              {0x81, 0xa5, 'L', 'i', 'n', 'e', 's', 0x91, 0x81, 0xa3, 'S', 'K', 'U', 0xdb, 0xff, 0xff, 0xff, 0xff},
		"truncated":          {0x82, 0xa1, 'a'},
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			var v cart
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := Msgpack.Unmarshal(data, &v)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Errorf("Unmarshal accepted %x", data)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Errorf("%d bytes allocated for a %d-byte input", n, len(data))
			}
		})
	}
	// Well-formed data still decodes, and the check accepts everything the
	// encoder writes.
	want := cart{Lines: []line{{"a"}, {"b"}}}
	b, err := msgpack.Marshal(&want)
	if err != nil {
		t.Fatal(err)
	}
	var got cart
	if err := Msgpack.Unmarshal(b, &got); err != nil || len(got.Lines) != 2 || got.Lines[1].SKU != "b" {
		t.Errorf("a well-formed value: %+v, %v", got, err)
	}
}

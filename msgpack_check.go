package sessions

import (
	"encoding/binary"
	"errors"
)

// errMsgpackBounds reports msgpack data that declares more values than it
// has bytes for.
var errMsgpackBounds = errors.New("msgpack: data declares more values than it holds")

// checkMsgpack walks one msgpack value and checks that every array and map
// declares no more elements than bytes remain to hold them, and that every
// string, binary and extension fits in what remains.
//
// It guards the decoder: vmihailenco/msgpack v5.4.1 sizes a slice of
// structs by the length its header claims, so an array header of four
// billion elements costs gigabytes before a single element is read. With
// this check, what decoding allocates is bounded by the input's size.
func checkMsgpack(b []byte) error {
	if _, ok := msgpackSkip(b, 0); !ok {
		return errMsgpackBounds
	}
	return nil
}

// msgpackSkip returns the end of the value that starts at data[i], and
// false when the value is malformed or declares more than data holds.
func msgpackSkip(data []byte, i int) (int, bool) {
	pending := 1 // values still to read
	for pending > 0 {
		if i >= len(data) {
			return 0, false
		}
		c := data[i]
		i++
		pending--
		var skip, values uint64
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			values = 2 * uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			values = uint64(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		case c == 0xc0 || c == 0xc2 || c == 0xc3: // nil, false, true
		case c == 0xca: // float32
			skip = 4
		case c == 0xcb: // float64
			skip = 8
		case c >= 0xcc && c <= 0xd3: // uint8..int64
			skip = 1 << ((c - 0xcc) % 4)
		case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16
			skip = 1 + 1<<(c-0xd4)
		default:
			// A length follows: 1, 2 or 4 bytes.
			var width int
			switch c {
			case 0xc4, 0xc7, 0xd9: // bin8, ext8, str8
				width = 1
			case 0xc5, 0xc8, 0xda, 0xdc, 0xde: // bin16, ext16, str16, array16, map16
				width = 2
			case 0xc6, 0xc9, 0xdb, 0xdd, 0xdf: // bin32, ext32, str32, array32, map32
				width = 4
			default:
				return 0, false // 0xc1, never used
			}
			if width > len(data)-i {
				return 0, false
			}
			var n uint64
			switch width {
			case 1:
				n = uint64(data[i])
			case 2:
				n = uint64(binary.BigEndian.Uint16(data[i:]))
			case 4:
				n = uint64(binary.BigEndian.Uint32(data[i:]))
			}
			i += width
			switch c {
			case 0xdc, 0xdd:
				values = n
			case 0xde, 0xdf:
				values = 2 * n
			case 0xc7, 0xc8, 0xc9:
				skip = 1 + n // the type byte, then the data
			default:
				skip = n
			}
		}
		if skip > uint64(len(data)-i) {
			return 0, false
		}
		i += int(skip)
		// Every value still to read takes at least one byte.
		if values+uint64(pending) > uint64(len(data)-i) {
			return 0, false
		}
		pending += int(values)
	}
	return i, true
}

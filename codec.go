package sessions

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// A Codec turns a typed session value into bytes for a [Backend] and back.
//
// Marshal must be deterministic: the manager compares the bytes of a
// session before and after a request to decide whether to save it, and
// with the encoding of T's zero value to decide whether a new session is
// worth storing. A codec that encodes equal values differently causes
// needless writes, conflicts with concurrent requests where there were
// none, and stores new sessions that still hold the zero value. Unmarshal
// is given a pointer to a zero value.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// An AppendMarshaler is a [Codec] that can append its encoding of v to dst.
// The manager uses it, when a codec offers it, to encode sessions into
// reused buffers instead of a new slice per request.
type AppendMarshaler interface {
	AppendMarshal(dst []byte, v any) ([]byte, error)
}

// JSON is the default [Codec]: encoding/json, readable and portable. With
// it and with [Msgpack], a save keeps the stored session's top-level fields
// that T does not know; with a Codec of one's own, or a T that has
// encoding methods of its own (MarshalJSON, EncodeMsgpack and the like), it
// drops them.
var JSON Codec = jsonCodec{}

// Msgpack is a [Codec] built on github.com/vmihailenco/msgpack/v5. Its
// output is smaller and faster to produce than JSON's, and integers and
// floats take the fewest bytes that hold their value. Map keys are sorted
// so that equal values always encode to equal bytes.
var Msgpack Codec = msgpackCodec{}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

type msgpackCodec struct{}

// appendWriter is an io.Writer (and io.ByteWriter) that appends to a
// slice, so that msgpack can encode straight into the caller's buffer.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

// msgpackEncoder pairs an encoder with the writer it writes to, so both
// are reused across calls.
type msgpackEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

var msgpackEncoders = sync.Pool{New: func() any {
	e := &msgpackEncoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	e.enc.SetSortMapKeys(true)
	e.enc.UseCompactInts(true)
	e.enc.UseCompactFloats(true)
	return e
}}

// msgpackDecoder pairs a decoder with the reader it reads from.
type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var msgpackDecoders = sync.Pool{New: func() any {
	d := &msgpackDecoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	d.dec.UsePreallocateValues(true)
	return d
}}

func (c msgpackCodec) Marshal(v any) ([]byte, error) { return c.AppendMarshal(nil, v) }

func (msgpackCodec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	e := msgpackEncoders.Get().(*msgpackEncoder)
	e.w.b = dst
	err := e.enc.Encode(v)
	out := e.w.b
	e.w.b = nil // the pool must not keep the caller's buffer
	msgpackEncoders.Put(e)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func (msgpackCodec) Unmarshal(data []byte, v any) error {
	if err := checkMsgpack(data); err != nil {
		return err
	}
	d := msgpackDecoders.Get().(*msgpackDecoder)
	d.r.Reset(data)
	d.dec.ResetReader(&d.r) // keeps the decoder's options
	err := d.dec.Decode(v)
	d.r.Reset(nil) // the pool must not keep the caller's data
	msgpackDecoders.Put(d)
	return err
}

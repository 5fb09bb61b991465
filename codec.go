package sessions

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// A Codec turns a typed session value into bytes for a [Backend] and back.
//
// Marshal should be deterministic: the manager compares the bytes of a
// session before and after a request to decide whether to save it, so a
// codec that encodes equal values differently only causes needless writes.
// Unmarshal is given a pointer to a zero value.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default [Codec]: encoding/json, readable and portable.
var JSON Codec = jsonCodec{}

// Msgpack is a [Codec] built on github.com/vmihailenco/msgpack/v5. Its
// output is smaller and faster to produce than JSON's. Map keys are sorted so
// that equal values always encode to equal bytes.
var Msgpack Codec = msgpackCodec{}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

type msgpackCodec struct{}

// msgpackEncoder pairs an encoder with the buffer it writes to, so both are
// reused across calls.
type msgpackEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var msgpackEncoders = sync.Pool{New: func() any {
	e := &msgpackEncoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

var msgpackDecoders = sync.Pool{New: func() any { return msgpack.NewDecoder(nil) }}

func (msgpackCodec) Marshal(v any) ([]byte, error) {
	e := msgpackEncoders.Get().(*msgpackEncoder)
	defer msgpackEncoders.Put(e)
	e.buf.Reset()
	e.enc.Reset(&e.buf)
	e.enc.SetSortMapKeys(true)
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(e.buf.Bytes()), nil
}

func (msgpackCodec) Unmarshal(data []byte, v any) error {
	d := msgpackDecoders.Get().(*msgpack.Decoder)
	defer msgpackDecoders.Put(d)
	d.Reset(bytes.NewReader(data))
	return d.Decode(v)
}

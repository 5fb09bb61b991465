package sessions

import (
	"encoding/binary"
	"testing"
)

// TestRecordWithAccessBeforeCreation loads a record that a release before
// the clamp wrote on a server whose clock was behind the creator's: the
// age is a negative number's two's complement, once refused as corrupt on
// every request until the cookie expired. It must load, accessed at its
// creation; an age past any negative one a clock could give stays corrupt.
func TestRecordWithAccessBeforeCreation(t *testing.T) {
	const created = recordEpoch + 1000
	for _, tt := range []struct {
		age     int64
		corrupt bool
	}{
		{age: -1},
		{age: -3600},
		{age: -1 << 40},
		{age: -1<<40 - 1, corrupt: true},
		{age: 1<<40 + 1, corrupt: true},
	} {
		b := []byte{recordFormat << 4}
		b = binary.AppendVarint(b, created-recordEpoch)
		b = binary.AppendUvarint(b, uint64(tt.age))
		h, _, err := parseRecord(append(b, "{}"...))
		if tt.corrupt {
			if err != ErrCorrupt {
				t.Errorf("age %d: err = %v, want ErrCorrupt", tt.age, err)
			}
			continue
		}
		if err != nil || h.created != created || h.accessed != created {
			t.Errorf("age %d: created %d, accessed %d, err %v; want %d, %d, nil", tt.age, h.created, h.accessed, err, created, created)
		}
	}
	// And a write never stores such an age again.
	h := recordHeader{created: created, accessed: created - 5}
	got, _, err := parseRecord(appendRecordHeader(nil, h))
	if err != nil || got.accessed != created {
		t.Errorf("header with an access before its creation: accessed %d, err %v; want %d, nil", got.accessed, err, created)
	}
}

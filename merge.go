package sessions

import (
	"bytes"
	"fmt"
)

// Two tabs, or a page and its XHRs, often change one session at once, each
// a different field. A change made through Data cannot be replayed as an
// Update can, but it can be merged: on a conflict, the manager takes the
// encodings apart into fields (fields.go) and works out which top-level
// fields this request changed through Data, and which the requests that
// saved meanwhile changed. When no field was changed on both sides to
// different values, this request's fields go onto the current record and
// the save is tried again; otherwise the request fails with ErrConflict, as
// it must: taking either value would lose the other.
//
// A change anywhere inside a top-level field is a change of that field. A
// codec that does not encode T as a map (a codec of one's own, a struct
// encoded as an array, a T with encoding methods of its own) cannot be
// merged, and such conflicts fail as before.

// merge returns the encoding of the current record, theirs, with the
// fields this request changed through Data, and its value. loaded is the
// record the request loaded; base is what the request's Update functions
// make of it, encoded, and mine what the request holds, encoded: the
// fields where mine and base differ are the request's changes through
// Data. replayed is theirs with the request's Update functions applied.
func (m *Manager[T]) merge(loaded, base, mine, theirs []byte, replayed T) (frame, T, error) {
	var zero T
	fc := m.fields
	refused := fmt.Errorf("%w: changes made through Data cannot be merged with this codec; use Session.Update", ErrConflict)
	// Another release may spell a field's key differently (encoding/json
	// matches keys whatever their case), so the records are compared as
	// this release encodes them.
	loadedHere, err := m.recode(loaded)
	if err != nil {
		return nil, zero, err
	}
	theirsHere, err := m.recode(theirs)
	if err != nil {
		return nil, zero, err
	}
	replayedBytes, err := m.codec.Marshal(&replayed)
	if err != nil {
		return nil, zero, fmt.Errorf("sessions: encoding session: %w", err)
	}
	loadedPairs, ok1 := fc.split(nil, loadedHere)
	basePairs, ok2 := fc.split(nil, base)
	minePairs, ok3 := fc.split(nil, mine)
	theirPairs, ok4 := fc.split(nil, theirsHere)
	result, ok5 := fc.split(nil, replayedBytes)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return nil, zero, refused
	}
	for _, key := range changedKeys(basePairs, minePairs) {
		ours, ourOK := find(minePairs, key)
		was, wasOK := find(loadedPairs, key)
		now, nowOK := find(theirPairs, key)
		theyChanged := wasOK != nowOK || wasOK && !bytes.Equal(was.value, now.value)
		if ft, ok := m.flashType(key); ok && theyChanged {
			// Two equal changes of a queue are not one: see Flashes.
			if ours, ourOK, err = m.mergeFlashes(ft, key, was, ours, now, wasOK, ourOK, nowOK); err != nil {
				return nil, zero, err
			}
			result = put(result, key, ours, ourOK)
			continue
		}
		if theyChanged && (ourOK != nowOK || ourOK && !bytes.Equal(ours.value, now.value)) {
			return nil, zero, fmt.Errorf("%w: field %q was changed here through Data and by another request too", ErrConflict, key)
		}
		result = put(result, key, ours, ourOK)
	}
	// Fields T does not know, a newer release's, stay as the current
	// record has them.
	result = appendUnknown(result, m.known, fc, theirs)
	merged := frame(fc.join(make(frame, maxRecordHeader, maxRecordHeader+len(theirs)+len(mine)), result))
	var v T
	if err := m.codec.Unmarshal(merged.payload(), &v); err != nil {
		return nil, zero, fmt.Errorf("sessions: decoding merged session: %w", err)
	}
	return merged, v, nil
}

// recode returns data, an encoding of a T, as this release encodes it.
func (m *Manager[T]) recode(data []byte) ([]byte, error) {
	var v T
	if err := m.codec.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("sessions: decoding reloaded session: %w", err)
	}
	b, err := m.codec.Marshal(&v)
	if err != nil {
		return nil, fmt.Errorf("sessions: encoding session: %w", err)
	}
	return b, nil
}

// changedKeys returns the keys whose values differ between a and b, or that
// one of them lacks.
func changedKeys(a, b []pair) [][]byte {
	var keys [][]byte
	for _, p := range b {
		if q, ok := find(a, p.key); !ok || !bytes.Equal(p.value, q.value) {
			keys = append(keys, p.key)
		}
	}
	for _, p := range a {
		if _, ok := find(b, p.key); !ok {
			keys = append(keys, p.key)
		}
	}
	return keys
}

func find(pairs []pair, key []byte) (pair, bool) {
	for _, p := range pairs {
		if bytes.Equal(p.key, key) {
			return p, true
		}
	}
	return pair{}, false
}

// put sets key to p in pairs when ok, and removes it otherwise.
func put(pairs []pair, key []byte, p pair, ok bool) []pair {
	for i := range pairs {
		if bytes.Equal(pairs[i].key, key) {
			if ok {
				pairs[i] = p
				return pairs
			}
			return append(pairs[:i], pairs[i+1:]...)
		}
	}
	if ok {
		pairs = append(pairs, p)
	}
	return pairs
}

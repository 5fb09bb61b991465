package sessions

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/starsessions/sessions/internal/fieldname"
)

// Flashes is a list of one-time messages, such as "Your changes were
// saved", for a field of a session type: a handler adds a message before a
// redirect, and the next page pops it and shows it once.
//
//	type Session struct {
//		UserID int64
//		Flash  sessions.Flashes[string]
//	}
//
//	s.Data().Flash.Add("Your changes were saved.")
//	...
//	for _, msg := range s.Data().Flash.Pop() { ... }
//
// Popping an empty list leaves it as it was, so a page that shows no
// message saves nothing. M may be any type the session's codec encodes, a
// struct with a level and a text for example.
//
// A message is shown at most once, also when two requests of one session
// overlap, on a backend with versions (see [VersionedBackend]) and the
// JSON or msgpack codec: the manager merges a Flashes field as a queue
// rather than as a value. Messages that one request adds survive another
// request's Pop, and of two requests that Pop the same messages, the one
// that saves second fails with [ErrConflict], before its response (which
// would show them again) is written. Under [WithLastWriteWins], or on a
// backend without versions, both may show them. This holds for Pop through
// [Session.Data]; a Pop inside [Session.Update] is replayed on a conflict,
// and may pop messages that were added meanwhile, unseen.
type Flashes[M any] []M

// flashList marks the Flashes types, which the merge treats as queues.
func (Flashes[M]) flashList() {}

type flashList interface{ flashList() }

// Add appends a message.
func (f *Flashes[M]) Add(msg M) { *f = append(*f, msg) }

// Pop returns the messages, oldest first, and empties the list; it returns
// nil, and changes nothing, when there are none.
func (f *Flashes[M]) Pop() []M {
	if len(*f) == 0 {
		return nil
	}
	msgs := *f
	*f = nil
	return msgs
}

// Len returns the number of messages waiting.
func (f Flashes[M]) Len() int { return len(f) }

// flashFields returns the keys under which the codec whose struct tag key
// is tag encodes the Flashes fields of the struct type t, with their
// types; nil when there are none.
func flashFields(t reflect.Type, tag string) map[string]reflect.Type {
	if t.Kind() != reflect.Struct {
		return nil
	}
	marker := reflect.TypeFor[flashList]()
	var out map[string]reflect.Type
	fieldname.Each(t, tag, func(index []int, name string) {
		ft := t.FieldByIndex(index).Type
		if ft.Kind() == reflect.Slice && ft.Implements(marker) {
			if out == nil {
				out = map[string]reflect.Type{}
			}
			out[name] = ft
		}
	})
	return out
}

// flashType returns the Flashes type encoded under key, if key is one.
func (m *Manager[T]) flashType(key []byte) (reflect.Type, bool) {
	if m.flashes == nil {
		return nil, false
	}
	if ft, ok := m.flashes[string(key)]; ok {
		return ft, true
	}
	if m.known.fold {
		for name, ft := range m.flashes {
			if equalFold(name, key) {
				return ft, true
			}
		}
	}
	return nil, false
}

// mergeFlashes merges a Flashes field that this request and another both
// changed, as queues: each side either kept the loaded messages and added
// some, or popped them all (and maybe added some after). The result keeps
// what neither popped, then their additions, then this request's. When both
// popped the loaded messages, both would show them: the merge fails with
// ErrConflict, so that this request's response, written after the save,
// never shows them a second time.
func (m *Manager[T]) mergeFlashes(ft reflect.Type, key []byte, was, ours, now pair, wasOK, ourOK, nowOK bool) (pair, bool, error) {
	decode := func(p pair, ok bool) (reflect.Value, error) {
		v := reflect.New(ft).Elem()
		if !ok {
			return v, nil
		}
		if err := m.codec.Unmarshal(p.value, v.Addr().Interface()); err != nil {
			return v, fmt.Errorf("sessions: decoding flash messages: %w", err)
		}
		return v, nil
	}
	loaded, err := decode(was, wasOK)
	if err != nil {
		return pair{}, false, err
	}
	mine, err := decode(ours, ourOK)
	if err != nil {
		return pair{}, false, err
	}
	theirs, err := decode(now, nowOK)
	if err != nil {
		return pair{}, false, err
	}
	iPopped, mineAdded := queueChange(loaded, mine)
	theyPopped, theirAdded := queueChange(loaded, theirs)
	if iPopped && theyPopped {
		return pair{}, false, fmt.Errorf("%w: flash messages in %q were popped by another request too, which showed them", ErrConflict, key)
	}
	merged := reflect.MakeSlice(ft, 0, loaded.Len()+theirAdded.Len()+mineAdded.Len())
	if !iPopped && !theyPopped {
		merged = reflect.AppendSlice(merged, loaded)
	}
	merged = reflect.AppendSlice(reflect.AppendSlice(merged, theirAdded), mineAdded)
	if merged.Len() == 0 {
		merged = reflect.Zero(ft) // as Pop leaves it
	}
	value, err := m.codec.Marshal(merged.Interface())
	if err != nil {
		return pair{}, false, fmt.Errorf("sessions: encoding flash messages: %w", err)
	}
	// The key's encoding comes from any side that has it.
	var prefix []byte
	switch {
	case ourOK:
		prefix = ours.raw[:len(ours.raw)-len(ours.value)]
	case nowOK:
		prefix = now.raw[:len(now.raw)-len(now.value)]
	case wasOK:
		prefix = was.raw[:len(was.raw)-len(was.value)]
	default:
		return pair{}, false, nil
	}
	raw := append(bytes.Clone(prefix), value...)
	return pair{key: key, raw: raw, value: raw[len(prefix):]}, true, nil
}

// queueChange tells what one side did to the loaded queue to make x: kept
// it and appended added, or popped it (when it was not empty) and then
// appended added, all of x.
func queueChange(loaded, x reflect.Value) (popped bool, added reflect.Value) {
	n := loaded.Len()
	if x.Len() >= n {
		prefix := true
		for i := range n {
			if !reflect.DeepEqual(loaded.Index(i).Interface(), x.Index(i).Interface()) {
				prefix = false
				break
			}
		}
		if prefix {
			return false, x.Slice(n, x.Len())
		}
	}
	return n > 0, x
}

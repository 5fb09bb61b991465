package sessionstest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/fieldname"
	"github.com/vmihailenco/msgpack/v5"
)

var update = flag.Bool("sessionstest.update", false, "have Freeze write the encodings of the samples anew")

// Freeze catches, in an application's own tests, a change to its session
// type T that would break the sessions its users already hold: a field
// whose type changed without a migration, a field renamed or removed. It
// keeps the encoding of each sample, under the test's testdata directory
// (testdata/sessions/<sample>.<codec>), written on the first run and when
// the test runs with -sessionstest.update; every later run decodes what
// was kept into T and compares it with the sample:
//
//   - Encodings that no longer decode fail the test with the codec's
//     error: users holding such sessions would be signed out.
//   - Each field the kept encoding holds must decode into the sample's
//     value, compared with go-cmp: a field whose type changed needs a
//     migration (the type's own json.Unmarshaler or
//     msgpack.CustomDecoder) that reads the old form.
//   - A field the kept encoding holds that no field of T decodes (renamed
//     or removed) fails the test: the store keeps it, but T cannot read it.
//   - Fields of T the kept encoding does not hold, as after adding one,
//     are not compared: old sessions decode with their zero value.
//
// Change the samples along with T, as they should decode now. When a
// failure is meant (a field dropped on purpose), rerun with
// -sessionstest.update to keep the new encodings. Field names are checked
// for sessions.JSON and sessions.Msgpack; with another codec, Freeze
// compares whole values.
func Freeze[T any](t testing.TB, codec sessions.Codec, samples map[string]T) {
	t.Helper()
	ext, tag, fold := "bin", "", false
	switch codec {
	case sessions.JSON:
		ext, tag, fold = "json", "json", true
	case sessions.Msgpack:
		ext, tag = "msgpack", "msgpack"
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range samples {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		sample := samples[name]
		path := filepath.Join("testdata", "sessions", name+"."+ext)
		kept, err := os.ReadFile(path)
		if *update || os.IsNotExist(err) {
			data, err := codec.Marshal(&sample)
			if err != nil {
				t.Fatalf("sample %q: encoding: %v", name, err)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("sample %q: kept its encoding in %s", name, path)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var got T
		if err := codec.Unmarshal(kept, &got); err != nil {
			t.Errorf("sample %q: the sessions kept in %s no longer decode into %T: %v\n"+
				"Users holding such sessions would be signed out: give the changed field's type a migration that reads the old form.",
				name, path, got, err)
			continue
		}
		if tag == "" {
			if diff := cmp.Diff(sample, got); diff != "" {
				t.Errorf("sample %q: the session kept in %s decodes differently (-sample +decoded):\n%s", name, path, diff)
			}
			continue
		}
		keys, err := topKeys(kept, ext)
		if err != nil {
			t.Errorf("sample %q: %s is not an encoded map: %v", name, path, err)
			continue
		}
		checkFields(t, name, path, reflect.ValueOf(&sample).Elem(), reflect.ValueOf(&got).Elem(), keys, tag, fold)
	}
}

// topKeys returns the keys of an encoded map.
func topKeys(data []byte, ext string) ([]string, error) {
	var m map[string]any
	var err error
	if ext == "json" {
		err = json.Unmarshal(data, &m)
	} else {
		err = msgpack.NewDecoder(bytes.NewReader(data)).Decode(&m)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, err
}

// checkFields compares, for each key of the kept encoding, the field it
// decodes into with the sample's.
func checkFields(t testing.TB, name, path string, sample, got reflect.Value, keys []string, tag string, fold bool) {
	t.Helper()
	type field struct {
		name  string
		index []int
	}
	var fields []field
	fieldname.Each(sample.Type(), tag, func(index []int, n string) { fields = append(fields, field{n, index}) })
	var problems []string
	for _, key := range keys {
		// Of the fields with the key's name, the codecs use the one
		// nearest the top (fieldname.Each).
		i := -1
		for j, f := range fields {
			if (f.name == key || fold && strings.EqualFold(f.name, key)) && (i < 0 || len(f.index) < len(fields[i].index)) {
				i = j
			}
		}
		if i < 0 {
			problems = append(problems, fmt.Sprintf("field %q: no field of %s decodes it any more (renamed or removed): the store keeps it, but the application cannot read it", key, sample.Type()))
			continue
		}
		want, err1 := sample.FieldByIndexErr(fields[i].index)
		have, err2 := got.FieldByIndexErr(fields[i].index)
		if err1 != nil || err2 != nil {
			continue
		}
		if diff := cmp.Diff(want.Interface(), have.Interface()); diff != "" {
			problems = append(problems, fmt.Sprintf("field %q decodes differently (-sample +decoded):\n%s", key, diff))
		}
	}
	if len(problems) > 0 {
		t.Errorf("sample %q: the session kept in %s, decoded into %s:\n%s\n"+
			"Give a changed field a migration that reads the old form; if the change is meant, rerun with -sessionstest.update.",
			name, path, sample.Type(), strings.Join(problems, "\n"))
	}
}

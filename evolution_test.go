package sessions_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// Session types whose encoding a codec decides by rules beyond field tags.
type (
	embeddedBase   struct{ A int }
	taggedEmbedded struct {
		embeddedBase `json:"base" msgpack:"base"` // msgpack inlines it even so
		B            int
	}
	shadowedInner struct {
		Name string
		A    int
	}
	shadowedEmbedded struct {
		Name          string
		shadowedInner // msgpack does not inline it: its Name is shadowed
	}
	dashKey struct {
		A int `json:"-,omitempty"` // encoding/json writes it under the key "-"
	}
	aliased struct {
		A int `msgpack:"a,alias:old_a,omitempty"`
	}
	// ownJSON encodes itself, under keys of its own.
	ownJSON struct{ A int }
)

func (v ownJSON) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]int{"v": 2, "count": v.A})
}

func (v *ownJSON) UnmarshalJSON(b []byte) error {
	var m struct{ Count int }
	err := json.Unmarshal(b, &m)
	v.A = m.Count
	return err
}

// TestSavesKeepOnlyTheLatestValue saves session types whose keys a codec
// chooses by rules beyond field tags, changing one field each time: every
// save must read back the value it wrote, and the stored record must not
// grow, as it would if the manager took a key the codec writes for a field
// it does not know and carried the loaded copy beside the new one.
func TestSavesKeepOnlyTheLatestValue(t *testing.T) {
	t.Run("msgpack tagged embedded", func(t *testing.T) {
		checkSaves(t, sessions.Msgpack, func(v *taggedEmbedded, i int) { v.A = i }, func(v taggedEmbedded) int { return v.A })
	})
	t.Run("json tagged embedded", func(t *testing.T) {
		checkSaves(t, sessions.JSON, func(v *taggedEmbedded, i int) { v.A = i }, func(v taggedEmbedded) int { return v.A })
	})
	t.Run("msgpack shadowed embedded", func(t *testing.T) {
		checkSaves(t, sessions.Msgpack, func(v *shadowedEmbedded, i int) { v.A = i }, func(v shadowedEmbedded) int { return v.A })
	})
	t.Run("json shadowed embedded", func(t *testing.T) {
		checkSaves(t, sessions.JSON, func(v *shadowedEmbedded, i int) { v.A = i }, func(v shadowedEmbedded) int { return v.A })
	})
	t.Run("json dash key", func(t *testing.T) {
		checkSaves(t, sessions.JSON, func(v *dashKey, i int) { v.A = i }, func(v dashKey) int { return v.A })
	})
	t.Run("msgpack alias", func(t *testing.T) {
		checkSaves(t, sessions.Msgpack, func(v *aliased, i int) { v.A = i }, func(v aliased) int { return v.A })
	})
	t.Run("json own methods", func(t *testing.T) {
		checkSaves(t, sessions.JSON, func(v *ownJSON, i int) { v.A = i }, func(v ownJSON) int { return v.A })
	})
}

// checkSaves sets a field of a T through Data, one request each, to
// values and to zero in turn (a zero the codec may leave out), and checks
// what each next request reads and the record's size.
func checkSaves[T any](t *testing.T, codec sessions.Codec, set func(*T, int), get func(T) int) {
	t.Helper()
	store := memory.New()
	defer store.Close()
	m := sessions.New[T](store, sessions.WithCodec(codec))
	var got int
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			t.Error(err)
			return
		}
		got = get(s.Value())
		if i, err := strconv.Atoi(r.URL.Query().Get("set")); err == nil {
			set(s.Data(), i)
		}
	}))
	var c *http.Cookie
	sizes := map[bool]int{} // by whether the value is zero
	values := []int{1, 2, 0, 4, 0, 6, 7}
	for i, v := range values {
		req := httptest.NewRequest("GET", "/?set="+strconv.Itoa(v), nil)
		if c != nil {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			c = cs[0]
		}
		if i > 0 && got != values[i-1] {
			t.Fatalf("after setting %d, the next request reads %d", values[i-1], got)
		}
		data, _, err := store.Read(context.Background(), c.Value)
		if err != nil {
			t.Fatal(err)
		}
		if size, ok := sizes[v == 0]; ok && len(data) != size {
			t.Fatalf("setting %d: the record went from %d to %d bytes: %q", v, size, len(data), data)
		}
		sizes[v == 0] = len(data)
	}
}

// legacyAliased is aliased as an earlier release declared it.
type legacyAliased struct {
	A int `msgpack:"old_a"`
}

// TestAliasReplacesLegacyKey loads a session an earlier release wrote under
// a key that is now the alias of a field, and saves it: the old key must
// not be carried as unknown, or the decoder, which takes the last of the
// two, would read its stale value back on every load.
func TestAliasReplacesLegacyKey(t *testing.T) {
	store := memory.New()
	defer store.Close()
	earlier := sessions.New[legacyAliased](store, sessions.WithCodec(sessions.Msgpack))
	now := sessions.New[aliased](store, sessions.WithCodec(sessions.Msgpack))
	var c *http.Cookie
	var got int
	send := func(h http.Handler) {
		req := httptest.NewRequest("GET", "/", nil)
		if c != nil {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			c = cs[0]
		}
	}
	send(earlier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := earlier.Get(r)
		s.Data().A = 1
	})))
	for want := 1; want <= 3; want++ {
		send(now.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := now.Get(r)
			got = s.Value().A
			s.Data().A = want + 1
		})))
		if got != want {
			t.Fatalf("request %d reads %d, want %d", want, got, want)
		}
	}
}

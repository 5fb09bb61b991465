package sessions_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/starsessions/sessions"
)

// account is a session type without maps or interfaces, so that changes
// made through Data are found by snapshot images rather than by encoding.
type account struct {
	ID      int64
	Name    string
	Admin   bool
	Score   float64
	Roles   []string
	Empty   []string
	Cart    []line
	Avatar  []byte
	Manager *person
	Seen    time.Time
	Last3   [3]int
	Nested  struct{ Tags []string }
}

type line struct {
	SKU string
	Qty int
}

type person struct {
	Name string
	Age  int
}

func seedAccount() account {
	a := account{
		ID: 7, Name: "ada", Score: 1.5,
		Roles:   []string{"user", "editor"},
		Cart:    []line{{"A-1", 1}, {"B-2", 2}},
		Avatar:  []byte{1, 2, 3},
		Manager: &person{"grace", 40},
		Seen:    time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC),
		Last3:   [3]int{1, 2, 3},
	}
	a.Nested.Tags = []string{"x"}
	return a
}

// countingCodec counts encodings, to show which requests skipped them.
type countingCodec struct {
	sessions.Codec
	marshals atomic.Int64
}

func (c *countingCodec) Marshal(v any) ([]byte, error) {
	c.marshals.Add(1)
	return c.Codec.Marshal(v)
}

// TestDataChangesFoundWithoutEncoding changes a stored session through
// Data in every way its type allows and checks that exactly the changes
// that alter its encoding are saved, and that a handler that changed
// nothing cost no encoding at all.
func TestDataChangesFoundWithoutEncoding(t *testing.T) {
	tests := []struct {
		name   string
		change func(a *account)
	}{
		{"nothing", func(a *account) {}},
		{"equal values written back", func(a *account) {
			a.Name = strings.Clone(a.Name)
			a.Roles = append([]string(nil), a.Roles...)
			a.Manager = &person{a.Manager.Name, a.Manager.Age}
			a.Seen = a.Seen.Add(0)
		}},
		{"int", func(a *account) { a.ID++ }},
		{"string", func(a *account) { a.Name = "grace" }},
		{"string, same length", func(a *account) { a.Name = "bob" }},
		{"bool", func(a *account) { a.Admin = true }},
		{"float", func(a *account) { a.Score = 2.5 }},
		{"slice element", func(a *account) { a.Roles[1] = "admin" }},
		{"slice append", func(a *account) { a.Roles = append(a.Roles, "admin") }},
		{"slice shortened", func(a *account) { a.Roles = a.Roles[:1] }},
		{"slice to nil", func(a *account) { a.Roles = nil }},
		{"nil slice to empty", func(a *account) { a.Empty = []string{} }},
		{"struct in a slice", func(a *account) { a.Cart[1].Qty = 5 }},
		{"byte in a byte slice", func(a *account) { a.Avatar[0] = 9 }},
		{"pointer to nil", func(a *account) { a.Manager = nil }},
		{"through a pointer", func(a *account) { a.Manager.Age++ }},
		{"time", func(a *account) { a.Seen = a.Seen.Add(time.Second) }},
		{"array element", func(a *account) { a.Last3[2] = 4 }},
		{"nested struct's slice", func(a *account) { a.Nested.Tags[0] = "y" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := seedAccount()
			after := seedAccount()
			tt.change(&after)
			wantSave := !bytes.Equal(mustJSON(t, before), mustJSON(t, after))

			clock := newFakeClock()
			fb := newFakeBackend(clock)
			codec := &countingCodec{Codec: sessions.JSON}
			m := newManager[account](clock, fb, sessions.WithCodec(codec))
			act := func(a *account) { *a = seedAccount() }
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := m.Get(r)
				if err != nil {
					t.Fatal(err)
				}
				act(s.Data())
			}))
			br := &browser{t: t, h: h}
			br.do("GET", "/")
			if fb.calls["Write"] != 1 {
				t.Fatalf("storing the seed: %d writes", fb.calls["Write"])
			}

			act = tt.change
			fb.calls = map[string]int{}
			marshals := codec.marshals.Load()
			br.do("GET", "/")
			if saved := fb.calls["Write"] == 1; saved != wantSave {
				t.Errorf("saved = %t, want %t (the change alters the encoding: %t)", saved, wantSave, wantSave)
			}
			if !wantSave && codec.marshals.Load() != marshals {
				t.Errorf("an unchanged session was encoded %d times", codec.marshals.Load()-marshals)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSnapshotDoesNotOutliveTheValue checks the cases where an image taken
// by Data no longer speaks for the value: after Destroy, a session given
// back the very values it had is a new session and must be saved; after
// Update, the change must be saved even though Data came first.
func TestSnapshotDoesNotOutliveTheValue(t *testing.T) {
	tests := []struct {
		name string
		act  func(s *sessions.Session[account])
	}{
		{"Destroy, then the same values", func(s *sessions.Session[account]) {
			_ = s.Data().Name
			s.Destroy()
			*s.Data() = seedAccount()
		}},
		{"Destroy through a pointer taken before it", func(s *sessions.Session[account]) {
			a := s.Data()
			s.Destroy()
			*a = seedAccount()
		}},
		{"Data, then Update", func(s *sessions.Session[account]) {
			_ = s.Data().Name
			s.Update(func(a *account) { a.ID++ })
		}},
		{"Regenerate after Data", func(s *sessions.Session[account]) {
			_ = s.Data().Name
			s.Regenerate()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			fb := newFakeBackend(clock)
			m := newManager[account](clock, fb)
			act := func(s *sessions.Session[account]) { *s.Data() = seedAccount() }
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := m.Get(r)
				if err != nil {
					t.Fatal(err)
				}
				act(s)
			}))
			br := &browser{t: t, h: h}
			br.do("GET", "/")
			first := br.cookie.Value

			act = tt.act
			fb.calls = map[string]int{}
			br.do("GET", "/")
			if fb.calls["Write"] != 1 {
				t.Errorf("%d writes, want the session saved", fb.calls["Write"])
			}
			if br.cookie == nil || br.cookie.Value == first && tt.name != "Data, then Update" {
				t.Errorf("the client kept the old token")
			}
		})
	}
}

// TestDataBesideUpdate calls Data and Update from two goroutines of one
// request: the image Data takes must not race with Update's change (the
// race detector would say), and the change must be saved.
func TestDataBesideUpdate(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	m := newManager[account](clock, fb)
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Update(func(a *account) { a.ID++ })
		}()
		_ = s.Data().Name
		<-done
	}))
	br := &browser{t: t, h: h}
	for i := range 50 {
		fb.calls = map[string]int{}
		br.do("GET", "/")
		if fb.calls["Write"] != 1 {
			t.Fatalf("request %d: %d writes, want the Update saved", i, fb.calls["Write"])
		}
	}
}

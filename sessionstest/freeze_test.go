package sessionstest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/starsessions/sessions"
)

// recorder is a testing.TB that keeps the failures it is told of.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Logf(string, ...any) {}

// freeze runs Freeze on a recorder and returns what it failed with.
func freeze[T any](t *testing.T, codec sessions.Codec, sample T) string {
	t.Helper()
	r := &recorder{TB: t}
	Freeze(r, codec, map[string]T{"signed-in": sample})
	return strings.Join(r.errors, "\n")
}

func TestFreeze(t *testing.T) {
	type v1 struct {
		Name string
		Plan int
	}
	type planChanged struct {
		Name string
		Plan string
	}
	type planMigrated struct {
		Name string
		Plan tier // reads the old number
	}
	type renamed struct {
		Name string
		Tier int
	}
	type added struct {
		Name  string
		Plan  int
		Theme string
	}
	for name, codec := range map[string]sessions.Codec{"json": sessions.JSON, "msgpack": sessions.Msgpack} {
		t.Run(name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			if got := freeze(t, codec, v1{Name: "ann", Plan: 2}); got != "" {
				t.Fatalf("the first run failed: %s", got)
			}
			steps := []struct {
				name string
				run  func() string
				want string // a part of the failure; "" for none
			}{
				{"unchanged", func() string { return freeze(t, codec, v1{Name: "ann", Plan: 2}) }, ""},
				{"a type changed without a migration", func() string { return freeze(t, codec, planChanged{Name: "ann", Plan: "team"}) }, "no longer decode"},
				{"a type changed with a migration", func() string { return freeze(t, codec, planMigrated{Name: "ann", Plan: "team"}) }, ""},
				{"a migration that reads the old form wrongly", func() string { return freeze(t, codec, planMigrated{Name: "ann", Plan: "pro"}) }, `field "Plan" decodes differently`},
				{"a field renamed", func() string { return freeze(t, codec, renamed{Name: "ann", Tier: 2}) }, `field "Plan": no field`},
				{"a field added", func() string { return freeze(t, codec, added{Name: "ann", Plan: 2, Theme: "dark"}) }, ""},
				{"a value changed", func() string { return freeze(t, codec, v1{Name: "bob", Plan: 2}) }, "-sample +decoded"},
			}
			for _, st := range steps {
				got := st.run()
				if st.want == "" && got != "" || st.want != "" && !strings.Contains(got, st.want) {
					t.Errorf("%s: failure %q, want one containing %q", st.name, got, st.want)
				}
			}
		})
	}
}

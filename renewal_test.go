package sessions_test

import (
	"context"
	"crypto/sha256"
	"errors"

	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

func TestRenewalOptions(t *testing.T) {
	mb := memory.New()
	t.Cleanup(func() { mb.Close() })
	for _, tt := range []struct {
		name    string
		backend sessions.Backend
		opts    []sessions.Option
		panic   string
	}{
		{"memory", mb, []sessions.Option{sessions.WithRenewal(time.Minute, 10*time.Second)}, ""},
		{"default grace", mb, []sessions.Option{sessions.WithRenewal(2*time.Second, 0)}, ""},
		{"the cookie backend", newCookieBackend(), []sessions.Option{sessions.WithRenewal(time.Minute, 0)}, "needs a backend that is a sessions.Renewer"},
		{"a backend without versions", newFakeBackend(newFakeClock()), []sessions.Option{sessions.WithRenewal(time.Minute, 0)}, "needs a backend that is a sessions.Renewer"},
		{"last write wins", mb, []sessions.Option{sessions.WithRenewal(time.Minute, 0), sessions.WithLastWriteWins()}, "conflict detection"},
		{"grace as long as the interval", mb, []sessions.Option{sessions.WithRenewal(time.Minute, time.Minute)}, "shorter than its renewal interval"},
		{"an interval under a second", mb, []sessions.Option{sessions.WithRenewal(time.Millisecond, 0)}, "a second or more"},
		{"a negative grace", mb, []sessions.Option{sessions.WithRenewal(time.Minute, -time.Second)}, "a grace of 0 or more"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				got, _ := recover().(string)
				if tt.panic == "" && got != "" || !strings.Contains(got, tt.panic) {
					t.Errorf("New panicked with %q, want %q", got, tt.panic)
				}
			}()
			sessions.New[profile](tt.backend, tt.opts...)
		})
	}
}

// countingRenewer counts the round trips a manager makes to a memory
// backend.
type countingRenewer struct {
	*memory.Backend
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingRenewer) count(name string) {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
}

func (c *countingRenewer) ReadRecord(ctx context.Context, token string) (sessions.Record, bool, error) {
	c.count("ReadRecord")
	return c.Backend.ReadRecord(ctx, token)
}

func (c *countingRenewer) Retired(ctx context.Context, key [sha256.Size]byte) (sessions.RetiredEntry, bool, error) {
	c.count("Retired")
	return c.Backend.Retired(ctx, key)
}

func (c *countingRenewer) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	c.count("WriteIfVersion")
	return c.Backend.WriteIfVersion(ctx, w)
}

func (c *countingRenewer) RetireIfVersion(ctx context.Context, token string, version uint64, r sessions.Retirement) error {
	c.count("RetireIfVersion")
	return c.Backend.RetireIfVersion(ctx, token, version, r)
}

func (c *countingRenewer) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

// TestRenewalRoundTrips counts what renewal costs: nothing for a request
// with the current token, one lookup more for a retired one.
func TestRenewalRoundTrips(t *testing.T) {
	mb := memory.New()
	t.Cleanup(func() { mb.Close() })
	clock := newFakeClock()
	cb := &countingRenewer{Backend: mb, calls: map[string]int{}}
	m := newManager[profile](clock, cb, sessions.WithRenewal(time.Minute, 10*time.Second))
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/visit")
	cb.take()
	check := func(what string, want map[string]int) {
		t.Helper()
		got := cb.take()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %v, want %v", what, got, want)
				return
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	br.do("GET", "/read")
	check("a read with the current token", map[string]int{"ReadRecord": 1})
	clock.Advance(time.Minute)
	retired := br.cookie.Value
	br.do("GET", "/read")
	check("the read that renews", map[string]int{"ReadRecord": 1, "WriteIfVersion": 1, "RetireIfVersion": 1})
	br.cookie.Value = retired
	if got := body(br.do("GET", "/read")); !strings.Contains(got, "visits=1 ") {
		t.Fatalf("the retired token within its grace: %q", got)
	}
	check("a read with the retired token", map[string]int{"ReadRecord": 1, "Retired": 1})
}

// TestRenewalOverAHeaderToken renews a header token: the client gets the
// successor in the response header, within the grace too.
func TestRenewalOverAHeaderToken(t *testing.T) {
	mb := memory.New()
	t.Cleanup(func() { mb.Close() })
	clock := newFakeClock()
	m := newManager[profile](clock, mb, sessions.WithTokenHeader("X-Session"), sessions.WithRenewal(time.Minute, 10*time.Second))
	h := routes(m, standardActs)
	do := func(path, token string) (string, string) {
		req := httptest.NewRequest("GET", "https://example.com"+path, nil)
		if token != "" {
			req.Header.Set("X-Session", token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Body.String(), rec.Header().Get("X-Session")
	}
	_, token := do("/visit", "")
	clock.Advance(time.Minute)
	_, successor := do("/read", token)
	if successor == "" || successor == token {
		t.Fatalf("a due header token got %q back, want a successor", successor)
	}
	body, again := do("/visit", token)
	if again != successor || !strings.Contains(body, "visits=2 ") {
		t.Errorf("the retired header token within its grace: %q, header %q; want visits=2 and the successor", body, again)
	}
}

// TestRenewalAndOpenSessions checks a session from Open under renewal: it
// is not renewed by its own Save (a socket or a job cannot hand the browser
// a successor), Check follows a renewal that a request made, and a logout
// through it ends the successor too.
func TestRenewalAndOpenSessions(t *testing.T) {
	mb := memory.New()
	t.Cleanup(func() { mb.Close() })
	clock := newFakeClock()
	m := newManager[profile](clock, mb, sessions.WithRenewal(time.Minute, 10*time.Second))
	ctx := context.Background()
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/visit")
	first := br.cookie.Value
	clock.Advance(time.Minute)

	s, _ := m.Open(ctx, first)
	s.Update(func(v *profile) { v.Visits++ })
	if err := s.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Token() != first {
		t.Fatal("a Save of a session from Open renewed its token")
	}

	socket, _ := m.Open(ctx, first)
	logout, _ := m.Open(ctx, first)
	br.do("GET", "/read") // renews
	successor := br.cookie.Value
	if successor == first {
		t.Fatal("no renewal")
	}
	if err := socket.Check(ctx); err != nil {
		t.Errorf("Check after another request renewed the token: %v, want nil: the session stands", err)
	}
	if socket.Token() != successor {
		t.Error("Check did not follow the renewal")
	}
	logout.Destroy()
	if err := logout.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Open(ctx, successor); !s.IsNew() {
		t.Error("a logout on the retired token left its successor live")
	}
	if err := socket.Check(ctx); !errors.Is(err, sessions.ErrRevoked) {
		t.Errorf("Check after the logout: %v, want ErrRevoked", err)
	}
}

package sessions_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// ownerRoutes are the actions of the owner tests: /login?user=... ties the
// session to a user, /visit changes it, /read does nothing.
func ownerRoutes(m *sessions.Manager[profile]) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/login":
			s.Regenerate()
			s.SetOwner(r.URL.Query().Get("user"))
		case "/visit":
			s.Update(func(p *profile) { p.Visits++ })
		}
		w.Write([]byte(s.Owner() + " " + s.Handle()))
	}))
}

// TestSessionsOrderAndTimes checks the order Sessions lists in and the
// times it reports, on a manager clock the test moves.
func TestSessionsOrderAndTimes(t *testing.T) {
	store := memory.New()
	defer store.Close()
	clock := newFakeClock()
	m := newManager[profile](clock, store, sessions.WithLifetime(10*time.Hour))
	h := ownerRoutes(m)
	start := clock.Now()
	var devices []*browser
	var handles []string
	for range 3 {
		d := &browser{t: t, h: h}
		d.do("GET", "/login?user=ann")
		devices = append(devices, d)
		// The handle is the token's: a login's shows from the next request.
		handles = append(handles, strings.Fields(body(d.do("GET", "/read")))[1])
		clock.Advance(10 * time.Second)
	}
	devices[0].do("GET", "/visit") // at start+30s
	infos, err := m.Sessions(context.Background(), "ann")
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		Handle              string
		Created, LastSeen   time.Duration
		Persistent          bool
		Owner               string
		LifetimeEndsAfterMe time.Duration
	}
	var got []seen
	for _, i := range infos {
		got = append(got, seen{i.Handle, i.CreatedAt.Sub(start), i.LastSeenAt.Sub(start), i.Persistent, i.Owner, i.ExpiresAt.Sub(i.CreatedAt)})
	}
	want := []seen{
		{handles[0], 0, 30 * time.Second, false, "ann", 10 * time.Hour},
		{handles[2], 20 * time.Second, 20 * time.Second, false, "ann", 10 * time.Hour},
		{handles[1], 10 * time.Second, 10 * time.Second, false, "ann", 10 * time.Hour},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Sessions (-want +got):\n%s", diff)
	}
}

// TestOwnerWithoutData checks that a session with an owner and nothing
// else is stored and listed: an application may keep its login in the
// owner alone.
func TestOwnerWithoutData(t *testing.T) {
	store := memory.New()
	defer store.Close()
	m := sessions.New[profile](store)
	d := &browser{t: t, h: ownerRoutes(m)}
	d.do("GET", "/login?user=ann")
	if d.cookie == nil {
		t.Fatal("a session with an owner and zero data was not stored")
	}
	if got := body(d.do("GET", "/read")); !strings.HasPrefix(got, "ann ") {
		t.Errorf("the next request reads owner %q", got)
	}
	if infos, err := m.Sessions(context.Background(), "ann"); err != nil || len(infos) != 1 {
		t.Errorf("Sessions: %d, %v", len(infos), err)
	}
}

// TestOwnerOnCookies checks that a cookie session keeps its owner, though
// the server cannot list it.
func TestOwnerOnCookies(t *testing.T) {
	m := sessions.New[profile](newCookieBackend())
	d := &browser{t: t, h: ownerRoutes(m)}
	d.do("GET", "/login?user=ann")
	if got := body(d.do("GET", "/read")); !strings.HasPrefix(got, "ann ") {
		t.Errorf("the owner did not survive in the cookie: %q", got)
	}
	if _, err := m.Sessions(context.Background(), "ann"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Sessions on cookies: err = %v, want errors.ErrUnsupported", err)
	}
}

func TestOwnerTooLong(t *testing.T) {
	store := memory.New()
	defer store.Close()
	var handled error
	m := sessions.New[profile](store, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		handled = err
		http.Error(w, "sorry", http.StatusInternalServerError)
	}))
	res := (&browser{t: t, h: ownerRoutes(m)}).do("GET", "/login?user="+strings.Repeat("u", 257))
	if res.StatusCode != http.StatusInternalServerError || handled == nil || !strings.Contains(handled.Error(), "owner") {
		t.Errorf("status %d, error %v; want the error handler, about the owner", res.StatusCode, handled)
	}
	if store.Len() != 0 {
		t.Errorf("%d records stored", store.Len())
	}
}

// stubbornIndex is a memory backend whose RemoveOwned never removes: a
// session that keeps coming back, as one that regenerates faster than
// RevokeAll lists.
type stubbornIndex struct{ *memory.Backend }

func (stubbornIndex) RemoveOwned(context.Context, string, [32]byte) (bool, error) { return false, nil }

// TestRevokeAllReportsSessionsItCouldNotEnd checks that RevokeAll does not
// report success while sessions outside keep are still listed.
func TestRevokeAllReportsSessionsItCouldNotEnd(t *testing.T) {
	mb := memory.New()
	t.Cleanup(func() { mb.Close() })
	m := sessions.New[profile](stubbornIndex{mb})
	ctx := context.Background()
	s, err := m.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	s.SetOwner("ann")
	if err := s.Save(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := m.RevokeAll(ctx, "ann")
	if !errors.Is(err, sessions.ErrRevokeIncomplete) || n != 0 {
		t.Errorf("RevokeAll = %d, %v; want 0, ErrRevokeIncomplete", n, err)
	}
	if n, err := m.RevokeAll(ctx, "ann", s.Handle()); err != nil || n != 0 {
		t.Errorf("RevokeAll keeping the only session = %d, %v; want 0, nil", n, err)
	}
}

package sessionstest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
)

// These tests are for backends that implement sessions.OwnerIndex; the
// others skip them, but for testManagerOwnersUnsupported.

func ownerIndex(t *testing.T, b sessions.Backend) sessions.OwnerIndex {
	ix, ok := b.(sessions.OwnerIndex)
	if !ok {
		t.Skip("the backend is not a sessions.OwnerIndex")
	}
	return ix
}

// owned returns the data of owner's records, keyed by the hash of their
// token, as Owned lists them.
func owned(t *testing.T, ix sessions.OwnerIndex, owner string) map[[32]byte]string {
	t.Helper()
	recs, err := ix.Owned(context.Background(), owner)
	if err != nil {
		t.Fatalf("Owned(%q): %v", owner, err)
	}
	out := map[[32]byte]string{}
	for _, r := range recs {
		if _, dup := out[r.Key]; dup {
			t.Errorf("Owned(%q) lists a record twice", owner)
		}
		out[r.Key] = string(r.Data)
		if r.Version == 0 {
			t.Errorf("Owned(%q) returned a record without its version", owner)
		}
	}
	return out
}

func testOwnerIndex(t *testing.T, s env) {
	ix := ownerIndex(t, s.Backend)
	ctx := context.Background()
	put := func(id, data, owner, previous string, version uint64, ttl time.Duration) {
		t.Helper()
		_, err := ix.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte(data), TTL: ttl, Version: version,
			Owner: owner, PreviousOwner: previous, Deadline: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatalf("WriteIfVersion(%s, owner %q): %v", data, owner, err)
		}
	}
	want := func(owner string, records ...string) {
		t.Helper()
		wantMap := map[[32]byte]string{}
		for i := 0; i < len(records); i += 2 {
			wantMap[sessions.HashToken(records[i])] = records[i+1]
		}
		if diff := cmp.Diff(wantMap, owned(t, ix, owner)); diff != "" {
			t.Errorf("Owned(%q) (-want +got):\n%s", owner, diff)
		}
	}
	a1, a2, b1, none := sessions.NewID(), sessions.NewID(), sessions.NewID(), sessions.NewID()
	put(a1, "a1", "ann", "", 0, time.Hour)
	put(a2, "a2", "ann", "", 0, time.Hour)
	put(b1, "b1", "bob", "", 0, time.Hour)
	put(none, "none", "", "", 0, time.Hour)
	want("ann", a1, "a1", a2, "a2")
	want("bob", b1, "b1")
	want("nobody")

	// The owner changes, or goes.
	put(a2, "a2 for bob", "bob", "ann", 1, time.Hour)
	put(a1, "a1 untied", "", "ann", 1, time.Hour)
	want("ann")
	want("bob", b1, "b1", a2, "a2 for bob")

	// A plain Write keeps the owner; an ordinary write that keeps the owner
	// keeps the record listed.
	if _, err := ix.Write(ctx, b1, []byte("b1 plain"), time.Hour); err != nil {
		t.Fatal(err)
	}
	put(a2, "a2 again", "bob", "bob", 2, time.Hour)
	want("bob", b1, "b1 plain", a2, "a2 again")

	// A removed record leaves the listing.
	if err := ix.Remove(ctx, a2); err != nil {
		t.Fatal(err)
	}
	want("bob", b1, "b1 plain")

	// So does an expired one.
	short := sessions.NewID()
	put(short, "short", "cat", "", 0, time.Second)
	want("cat", short, "short")
	s.advance(1200 * time.Millisecond)
	want("cat")

	// RemoveOwned removes only the owner's record, and for good.
	key := sessions.HashToken(b1)
	if removed, err := ix.RemoveOwned(ctx, "ann", key); removed || err != nil {
		t.Errorf("RemoveOwned by another owner = %t, %v; want false, nil", removed, err)
	}
	if read(t, ix, b1) == nil {
		t.Fatal("RemoveOwned by another owner removed the record")
	}
	if removed, err := ix.RemoveOwned(ctx, "bob", key); !removed || err != nil {
		t.Errorf("RemoveOwned by the owner = %t, %v; want true, nil", removed, err)
	}
	if got := read(t, ix, b1); got != nil {
		t.Errorf("the record survived RemoveOwned: %q", got)
	}
	want("bob")
	_, err := ix.WriteIfVersion(ctx, sessions.VersionedWrite{ID: b1, Data: []byte("zombie"), TTL: time.Hour, Version: 2, Owner: "bob", PreviousOwner: "bob"})
	if !errors.Is(err, sessions.ErrConflict) {
		t.Errorf("a write over a revoked record: err = %v, want ErrConflict", err)
	}
	if removed, err := ix.RemoveOwned(ctx, "bob", key); removed || err != nil {
		t.Errorf("RemoveOwned of a missing record = %t, %v; want false, nil", removed, err)
	}
}

// ownerApp is scaleApp's sibling with an owner: /login regenerates and
// ties the session to the user named in the query, /relogin only
// regenerates, /handle answers the session's handle.
func ownerApp(m *sessions.Manager[suiteSession]) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/login":
			s.Regenerate()
			user := r.URL.Query().Get("user")
			s.SetOwner(user)
			s.Update(func(v *suiteSession) { v.User = user })
		case "/relogin":
			s.Regenerate()
		case "/inc":
			s.Update(func(v *suiteSession) { v.Count++ })
		case "/logout":
			s.Destroy()
		case "/handle":
			w.Write([]byte(s.Handle()))
			return
		}
		v := s.Value()
		w.Write([]byte(v.User + ":" + s.Owner() + ":" + strings.Repeat("+", v.Count)))
	}))
}

// device is one browser of a user.
type device struct {
	t *testing.T
	h http.Handler
	c *http.Cookie
}

func (d *device) do(path string) string {
	d.t.Helper()
	rec, c := send(d.h, path, d.c)
	if rec.Code != http.StatusOK {
		d.t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
	}
	d.c = c
	return rec.Body.String()
}

func handles(infos []sessions.Info[suiteSession]) []string {
	var hs []string
	for _, i := range infos {
		hs = append(hs, i.Handle)
	}
	return hs
}

func testManagerSessions(t *testing.T, s env) {
	ownerIndex(t, s.Backend)
	ctx := context.Background()
	m := s.newManager(s.Backend)
	h := ownerApp(m)
	list := func(owner string) []sessions.Info[suiteSession] {
		t.Helper()
		infos, err := m.Sessions(ctx, owner)
		if err != nil {
			t.Fatalf("Sessions(%q): %v", owner, err)
		}
		return infos
	}
	laptop, phone, other := &device{t: t, h: h}, &device{t: t, h: h}, &device{t: t, h: h}
	laptop.do("/inc") // anonymous first: no owner, not listed
	if got := list("ann"); len(got) != 0 {
		t.Fatalf("an anonymous session is listed: %+v", got)
	}
	start := time.Now().Add(-time.Second)
	laptop.do("/login?user=ann")
	s.advance(1100 * time.Millisecond)
	phone.do("/login?user=ann")
	other.do("/login?user=bob")
	lh, ph := laptop.do("/handle"), phone.do("/handle")

	// Both of ann's sessions, the phone's last seen most recently. The
	// manager's clock is the real one: on a subject whose Advance moves
	// only the backend's clock, the two were seen in the same second, and
	// only the set is checked.
	infos := list("ann")
	ordered := s.Advance == nil
	sameHandles := func(want, got []string) string {
		if !ordered {
			want, got = slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(got))
		}
		return cmp.Diff(want, got)
	}
	if diff := sameHandles([]string{ph, lh}, handles(infos)); diff != "" {
		t.Fatalf("Sessions(ann) handles, most recently seen first (-want +got):\n%s", diff)
	}
	for _, i := range infos {
		if i.Owner != "ann" || i.Value.User != "ann" || i.Persistent {
			t.Errorf("info %+v: want owner and user ann, not persistent", i)
		}
		if i.CreatedAt.Before(start.Truncate(time.Second)) || i.LastSeenAt.Before(i.CreatedAt) || !i.ExpiresAt.After(time.Now()) {
			t.Errorf("info times: created %v, last seen %v, expires %v", i.CreatedAt, i.LastSeenAt, i.ExpiresAt)
		}
	}
	if got := handles(list("bob")); len(got) != 1 || slices.Contains(got, lh) || slices.Contains(got, ph) {
		t.Errorf("Sessions(bob) = %v", got)
	}
	// Use brings a session to the front.
	s.advance(1100 * time.Millisecond)
	laptop.do("/inc")
	if diff := sameHandles([]string{lh, ph}, handles(list("ann"))); diff != "" {
		t.Errorf("after the laptop's visit (-want +got):\n%s", diff)
	}

	// Revoke ends one session, of its owner only.
	if err := m.Revoke(ctx, "bob", ph); err != nil {
		t.Fatal(err)
	}
	if got := phone.do("/read"); got != "ann:ann:" {
		t.Fatalf("another owner's Revoke ended the session: %q", got)
	}
	if err := m.Revoke(ctx, "ann", ph); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, "ann", "no such handle"); err != nil {
		t.Errorf("Revoke of an unknown handle: %v", err)
	}
	if got := phone.do("/read"); got != "::" {
		t.Errorf("the revoked phone reads %q, want a fresh session", got)
	}
	if got := laptop.do("/read"); got != "ann:ann:++" {
		t.Errorf("the laptop reads %q after the phone's revocation", got)
	}

	// RevokeAll keeps the sessions it is asked to keep.
	tablet := &device{t: t, h: h}
	tablet.do("/login?user=ann")
	n, err := m.RevokeAll(ctx, "ann", lh)
	if err != nil || n != 1 {
		t.Errorf("RevokeAll = %d, %v; want 1", n, err)
	}
	if got := tablet.do("/read"); got != "::" {
		t.Errorf("the tablet reads %q after RevokeAll", got)
	}
	if diff := cmp.Diff([]string{lh}, handles(list("ann"))); diff != "" {
		t.Errorf("after RevokeAll keeping the laptop (-want +got):\n%s", diff)
	}

	// Regenerate keeps the owner under a new handle; Destroy drops it.
	laptop.do("/relogin")
	nh := laptop.do("/handle")
	if nh == lh {
		t.Fatal("Regenerate kept the handle")
	}
	if diff := cmp.Diff([]string{nh}, handles(list("ann"))); diff != "" {
		t.Errorf("after Regenerate (-want +got):\n%s", diff)
	}
	laptop.do("/logout")
	if got := list("ann"); len(got) != 0 {
		t.Errorf("after logout the owner still has %d sessions", len(got))
	}

	// A manager under another cookie name lists only its own sessions.
	twin := s.newManager(s.Backend, sessions.WithCookieName("twin"))
	(&device{t: t, h: ownerApp(twin)}).do("/login?user=bob")
	if got := len(list("bob")); got != 1 {
		t.Errorf("Sessions(bob) lists %d sessions; the other manager's must not count", got)
	}
	// RevokeAll reaches every manager's sessions of the owner.
	if n, err := m.RevokeAll(ctx, "bob"); err != nil || n != 2 {
		t.Errorf("RevokeAll(bob) = %d, %v; want both managers' sessions", n, err)
	}
	twinList, err := twin.Sessions(ctx, "bob")
	if err != nil || len(twinList) != 0 {
		t.Errorf("the other manager's session after RevokeAll: %d listed, %v; want 0", len(twinList), err)
	}
}

// testManagerRevokeDuringRequest revokes a session while a request on it
// is between its load and its save: the request's write must not bring
// the session back, and the next request gets a fresh one.
func testManagerRevokeDuringRequest(t *testing.T, s env) {
	ownerIndex(t, s.Backend)
	for _, tt := range []struct {
		name string
		act  func(*sessions.Session[suiteSession])
		opts []sessions.Option
	}{
		{"Update", func(s *sessions.Session[suiteSession]) { s.Update(func(v *suiteSession) { v.Count++ }) }, nil},
		{"Data", func(s *sessions.Session[suiteSession]) { s.Data().Count++ }, nil},
		{"Regenerate", func(s *sessions.Session[suiteSession]) { s.Regenerate() }, nil},
		{"read with idle timeout", func(*sessions.Session[suiteSession]) {}, []sessions.Option{sessions.WithIdleTimeout(time.Hour)}},
		{"last-write-wins", func(s *sessions.Session[suiteSession]) { s.Data().Count++ }, []sessions.Option{sessions.WithLastWriteWins()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			// The refused saves are expected: keep their log out of the
			// test's output.
			m := s.newManager(s.Backend, append(tt.opts, sessions.WithLogger(slog.New(slog.DiscardHandler)))...)
			loaded, proceed := make(chan struct{}), make(chan struct{})
			slow := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sess, err := m.Get(r)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				close(loaded)
				<-proceed
				tt.act(sess)
			}))
			d := &device{t: t, h: ownerApp(m)}
			d.do("/login?user=ann")
			handle := d.do("/handle")
			done := make(chan int)
			go func() {
				req := httptest.NewRequest(http.MethodPost, "https://example.com/", nil)
				req.AddCookie(d.c)
				rec := httptest.NewRecorder()
				slow.ServeHTTP(rec, req)
				done <- rec.Code
			}()
			<-loaded
			if err := m.Revoke(ctx, "ann", handle); err != nil {
				t.Fatal(err)
			}
			close(proceed)
			code := <-done
			if code == http.StatusOK && tt.name != "read with idle timeout" {
				t.Errorf("the request that changed a revoked session answered 200")
			}
			if infos, err := m.Sessions(ctx, "ann"); err != nil || len(infos) != 0 {
				t.Errorf("after the request, ann has %d sessions (%v); the revoked one came back", len(infos), err)
			}
			if got := d.do("/read"); got != "::" {
				t.Errorf("the next request reads %q, want a fresh session", got)
			}
		})
	}
}

func testManagerOwnersUnsupported(t *testing.T, s env) {
	if _, ok := s.Backend.(sessions.OwnerIndex); ok {
		t.Skip("the backend is a sessions.OwnerIndex")
	}
	m := s.newManager(s.Backend)
	ctx := context.Background()
	_, err1 := m.Sessions(ctx, "ann")
	err2 := m.Revoke(ctx, "ann", "h")
	_, err3 := m.RevokeAll(ctx, "ann")
	for _, err := range []error{err1, err2, err3} {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("err = %v, want errors.ErrUnsupported", err)
		}
	}
}

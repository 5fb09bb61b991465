// Package sessionstest is a conformance suite for [sessions.Backend]
// implementations, in the spirit of testing/slogtest: one table of
// behaviours that every backend's tests run, built-in or user-written.
//
//	func TestConformance(t *testing.T) {
//		sessionstest.Run(t, sessionstest.Config{
//			New: func(t *testing.T) sessionstest.Subject {
//				return sessionstest.Subject{Backend: mybackend.New()}
//			},
//		})
//	}
package sessionstest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/seam"
)

// Config describes the backend under test.
type Config struct {
	// New returns an empty backend for one test, with what the suite needs
	// to drive it. It is called once for each test in the suite.
	New func(t *testing.T) Subject
	// Stateless is true for a backend that keeps no server-side state, such
	// as the cookie backend: it cannot revoke a token or expire it on its
	// own, and the tests that need that are skipped.
	Stateless bool
}

// Subject is one backend under test.
type Subject struct {
	Backend sessions.Backend
	// Advance moves the backend's clock forward by d. When nil, the suite
	// sleeps for d, which suits a real server whose clock cannot be moved.
	Advance func(d time.Duration)
	// StoredKeys returns the keys under which the backend holds its records
	// now, so that the suite can check that no key contains a token. It is
	// required unless [Config.Stateless] is set: a store keyed by tokens
	// hands out live sessions to whoever reads it.
	StoredKeys func() []string
	// Now returns the backend's time. When set, the suite's managers use
	// it as their clock, as they must when Advance moves the backend's
	// clock: a manager compares the expiry a backend reports with its own
	// time. When nil, they use the real time.
	Now func() time.Time
}

// newManager returns a manager over b on the subject's clock.
func (s env) newManager(b sessions.Backend, opts ...sessions.Option) *sessions.Manager[suiteSession] {
	return withSubjectClock(s, sessions.New[suiteSession](b, opts...))
}

// withSubjectClock sets m's clock to the subject's, if it has one.
func withSubjectClock[T any](s env, m *sessions.Manager[T]) *sessions.Manager[T] {
	if s.Now != nil {
		seam.SetNow(m, s.Now)
	}
	return m
}

// env is a Subject as the tests see it.
type env struct {
	Subject
	stateless bool
}

func (s Subject) advance(d time.Duration) {
	if s.Advance != nil {
		s.Advance(d)
		return
	}
	time.Sleep(d)
}

// Run runs the whole suite as parallel subtests of t; New is called once
// for each, so their backends must not share state that one test could see
// another's records in.
func Run(t *testing.T, cfg Config) {
	tests := []struct {
		name      string
		stateful  bool // needs server-side state
		run       func(t *testing.T, s env)
		needsKeys bool
	}{
		{name: "RoundTrip", run: testRoundTrip},
		{name: "UnknownToken", run: testUnknownToken},
		{name: "RemoveUnknown", run: testRemoveUnknown},
		{name: "Remove", stateful: true, run: testRemove},
		{name: "Overwrite", stateful: true, run: testOverwrite},
		{name: "TTL", stateful: true, run: testTTL},
		{name: "Touch", stateful: true, run: testTouch},
		{name: "TouchNeverResurrects", stateful: true, run: testTouchNeverResurrects},
		{name: "TokenHashing", stateful: true, needsKeys: true, run: testTokenHashing},
		{name: "ConditionalWrite", stateful: true, run: testConditionalWrite},
		{name: "ConditionalRemove", stateful: true, run: testConditionalRemove},
		{name: "ManagerRoundTrip", run: testManagerRoundTrip},
		{name: "ManagerReadOnlyWritesNothing", run: testManagerReadOnly},
		{name: "ManagerDestroy", run: testManagerDestroy},
		{name: "ManagerRegenerate", run: testManagerRegenerate},
		{name: "ManagerLifetime", stateful: true, run: testManagerLifetime},
		{name: "ManagerIdleTimeout", stateful: true, run: testManagerIdle},
		{name: "ManagerConcurrentUpdates", stateful: true, run: testManagerConcurrentUpdates},
		{name: "ManagerHostileCookies", run: testManagerHostileCookies},
		{name: "ManagerTokenBoundToName", run: testManagerTokenBoundToName},
		{name: "OwnerIndex", stateful: true, run: testOwnerIndex},
		{name: "ManagerSessions", stateful: true, run: testManagerSessions},
		{name: "ManagerRevokeDuringRequest", stateful: true, run: testManagerRevokeDuringRequest},
		{name: "ManagerOwnersUnsupported", run: testManagerOwnersUnsupported},
		{name: "ManagerTokenHeader", run: testManagerTokenHeader},
		{name: "ManagerIdleTouchesRarely", stateful: true, run: testManagerIdleTouchesRarely},
		{name: "ManagerRollingDeploy", run: testManagerRollingDeploy},
		{name: "ManagerMerge", stateful: true, run: testManagerMerge},
		{name: "ManagerCheck", stateful: true, run: testManagerCheck},
		{name: "ManagerRevokeAllAcrossManagers", stateful: true, run: testManagerRevokeAllAcrossManagers},
		{name: "Renewer", stateful: true, run: testRenewer},
		{name: "ManagerRenewal", stateful: true, run: testManagerRenewal},
		{name: "ManagerRenewalParallel", stateful: true, run: testManagerRenewalParallel},
		{name: "ManagerRenewalRegenerate", stateful: true, run: testManagerRenewalRegenerate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.stateful && cfg.Stateless {
				t.Skip("the backend keeps no server-side state")
			}
			s := cfg.New(t)
			if tt.needsKeys && s.StoredKeys == nil {
				t.Fatal("Subject.StoredKeys is not set: a backend that keeps server-side state must show the keys it stores, so that the suite can check that none holds a token")
			}
			tt.run(t, env{Subject: s, stateless: cfg.Stateless})
		})
	}
}

func mustWrite(t *testing.T, b sessions.Backend, id string, data []byte, ttl time.Duration) string {
	t.Helper()
	token, err := b.Write(context.Background(), id, data, ttl)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if token == "" {
		t.Fatal("Write returned an empty token")
	}
	return token
}

// read returns the data for token, or nil when it is not found.
func read(t *testing.T, b sessions.Backend, token string) []byte {
	t.Helper()
	data, found, err := b.Read(context.Background(), token)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !found {
		if data != nil {
			t.Errorf("Read returned data with found=false")
		}
		return nil
	}
	if data == nil {
		data = []byte{}
	}
	return data
}

func testRoundTrip(t *testing.T, s env) {
	want := []byte("\x00binary\xffdata")
	token := mustWrite(t, s.Backend, sessions.NewID(), want, time.Hour)
	if diff := cmp.Diff(want, read(t, s.Backend, token)); diff != "" {
		t.Errorf("Read after Write (-want +got):\n%s", diff)
	}
}

func testUnknownToken(t *testing.T, s env) {
	for _, token := range []string{sessions.NewID(), "garbage", strings.Repeat("A", 4000), "a\r\nb"} {
		data, found, err := s.Backend.Read(context.Background(), token)
		if found || err != nil || data != nil {
			t.Errorf("Read(%.20q) = %q, %v, %v; want nil, false, nil", token, data, found, err)
		}
	}
}

func testRemoveUnknown(t *testing.T, s env) {
	if err := s.Backend.Remove(context.Background(), sessions.NewID()); err != nil {
		t.Errorf("Remove of an unknown token: %v", err)
	}
}

func testRemove(t *testing.T, s env) {
	token := mustWrite(t, s.Backend, sessions.NewID(), []byte("x"), time.Hour)
	other := mustWrite(t, s.Backend, sessions.NewID(), []byte("y"), time.Hour)
	if err := s.Backend.Remove(context.Background(), token); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := read(t, s.Backend, token); got != nil {
		t.Errorf("Read after Remove = %q, want not found", got)
	}
	if got := read(t, s.Backend, other); string(got) != "y" {
		t.Errorf("Remove of one token changed another: Read = %q, want %q", got, "y")
	}
}

func testOverwrite(t *testing.T, s env) {
	id := sessions.NewID()
	token := mustWrite(t, s.Backend, id, []byte("first"), time.Hour)
	token2 := mustWrite(t, s.Backend, id, []byte("second"), time.Hour)
	if token2 != token {
		t.Fatalf("a second Write for the same ID returned another token")
	}
	if got := read(t, s.Backend, token); string(got) != "second" {
		t.Errorf("Read after overwrite = %q, want %q", got, "second")
	}
}

func testTTL(t *testing.T, s env) {
	token := mustWrite(t, s.Backend, sessions.NewID(), []byte("x"), time.Second)
	s.advance(500 * time.Millisecond)
	if read(t, s.Backend, token) == nil {
		t.Fatal("record gone before its TTL")
	}
	s.advance(700 * time.Millisecond)
	if got := read(t, s.Backend, token); got != nil {
		t.Errorf("record read after its TTL: %q", got)
	}
}

func toucher(t *testing.T, b sessions.Backend) sessions.Toucher {
	tb, ok := b.(sessions.Toucher)
	if !ok {
		t.Skip("the backend is not a sessions.Toucher")
	}
	return tb
}

func testTouch(t *testing.T, s env) {
	tb := toucher(t, s.Backend)
	token := mustWrite(t, s.Backend, sessions.NewID(), []byte("x"), time.Second)
	s.advance(700 * time.Millisecond)
	if err := tb.Touch(context.Background(), token, 2*time.Second); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	s.advance(700 * time.Millisecond) // past the first TTL, within the second
	if got := read(t, s.Backend, token); string(got) != "x" {
		t.Errorf("Read after Touch = %q, want %q", got, "x")
	}
}

func testTouchNeverResurrects(t *testing.T, s env) {
	tb := toucher(t, s.Backend)
	removed := mustWrite(t, s.Backend, sessions.NewID(), []byte("x"), time.Hour)
	if err := s.Backend.Remove(context.Background(), removed); err != nil {
		t.Fatal(err)
	}
	expired := mustWrite(t, s.Backend, sessions.NewID(), []byte("x"), time.Second)
	s.advance(1100 * time.Millisecond)
	for name, token := range map[string]string{"removed": removed, "expired": expired, "unknown": sessions.NewID()} {
		if err := tb.Touch(context.Background(), token, time.Hour); err != nil {
			t.Errorf("Touch of an %s token: %v", name, err)
		}
		if got := read(t, s.Backend, token); got != nil {
			t.Errorf("Touch brought back the %s record: %q", name, got)
		}
	}
}

func testTokenHashing(t *testing.T, s env) {
	token := mustWrite(t, s.Backend, sessions.NewID(), []byte("x"), time.Hour)
	keys := s.StoredKeys()
	if len(keys) == 0 {
		t.Fatal("StoredKeys returned nothing after a Write")
	}
	for _, k := range keys {
		if strings.Contains(k, token) {
			t.Errorf("the store holds the raw token in key %q", k)
		}
	}
}

// counting wraps a backend and counts the calls made to it.
type counting struct {
	sessions.Backend
	mu                    sync.Mutex
	reads, writes, remove int
}

func (c *counting) Read(ctx context.Context, token string) ([]byte, bool, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Backend.Read(ctx, token)
}

func (c *counting) Write(ctx context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Backend.Write(ctx, id, data, ttl)
}

func (c *counting) Remove(ctx context.Context, token string) error {
	c.mu.Lock()
	c.remove++
	c.mu.Unlock()
	return c.Backend.Remove(ctx, token)
}

// suiteSession is the session type the suite's manager tests use.
type suiteSession struct {
	User  string
	Count int
	Tags  []string
}

// app is a small application over a manager: each request runs the
// action named by its path and answers with the session as the handler
// saw it.
func app(m *sessions.Manager[suiteSession]) http.Handler {
	mux := http.NewServeMux()
	handle := func(path string, act func(s *sessions.Session[suiteSession])) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			s, err := m.Get(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			act(s)
			d := s.Data()
			w.Write([]byte(d.User + "/" + strconv.Itoa(d.Count) + "/" + strings.Join(d.Tags, ",")))
		})
	}
	handle("/read", func(*sessions.Session[suiteSession]) {})
	handle("/inc", func(s *sessions.Session[suiteSession]) { s.Data().Count++ })
	handle("/tag", func(s *sessions.Session[suiteSession]) { s.Data().Tags = append(s.Data().Tags, "t") })
	handle("/login", func(s *sessions.Session[suiteSession]) { s.Regenerate(); s.Data().User = "ann" })
	handle("/logout", func(s *sessions.Session[suiteSession]) { s.Destroy() })
	return m.Middleware(mux)
}

// client is a browser with a one-cookie jar.
type client struct {
	t      *testing.T
	h      http.Handler
	cookie *http.Cookie
}

// get requests path and returns the body; it fails the test on any status
// but 200.
func (c *client) get(path string) string {
	c.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "https://example.com"+path, nil)
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	res := rec.Result()
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: status %d: %s", path, res.StatusCode, rec.Body)
	}
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 {
			c.cookie = nil
		} else {
			c.cookie = ck
		}
	}
	return rec.Body.String()
}

func newClient(t *testing.T, h http.Handler) *client { return &client{t: t, h: h} }

func testManagerRoundTrip(t *testing.T, s env) {
	h := app(s.newManager(s.Backend))
	c := newClient(t, h)
	steps := []struct{ path, want string }{
		{"/read", "/0/"},
		{"/inc", "/1/"},
		{"/inc", "/2/"},
		{"/tag", "/2/t"},
		{"/read", "/2/t"},
	}
	for _, st := range steps {
		if got := c.get(st.path); got != st.want {
			t.Errorf("GET %s = %q, want %q", st.path, got, st.want)
		}
	}
}

func testManagerReadOnly(t *testing.T, s env) {
	cb := &counting{Backend: s.Backend}
	c := newClient(t, app(s.newManager(cb)))
	c.get("/read")
	if cb.writes != 0 {
		t.Errorf("a new, unchanged session was written %d times", cb.writes)
	}
	c.get("/inc")
	before := c.cookie
	writes := cb.writes
	for range 3 {
		c.get("/read")
	}
	if cb.writes != writes {
		t.Errorf("read-only requests wrote %d times", cb.writes-writes)
	}
	if c.cookie != before {
		t.Errorf("a read-only request set a cookie")
	}
}

func testManagerDestroy(t *testing.T, s env) {
	c := newClient(t, app(s.newManager(s.Backend)))
	c.get("/login")
	old := c.cookie
	if got := c.get("/logout"); got != "/0/" {
		t.Errorf("after logout the handler saw %q", got)
	}
	if c.cookie != nil {
		t.Errorf("logout left the cookie in place")
	}
	if got := c.get("/read"); got != "/0/" {
		t.Errorf("after logout a request saw %q", got)
	}
	if s.stateless {
		return
	}
	// A copy of the old cookie is worth nothing after logout.
	c.cookie = old
	if got := c.get("/read"); got != "/0/" {
		t.Errorf("the cookie from before logout still reads %q", got)
	}
}

func testManagerRegenerate(t *testing.T, s env) {
	c := newClient(t, app(s.newManager(s.Backend)))
	c.get("/inc")
	before := c.cookie
	if got := c.get("/login"); got != "ann/1/" {
		t.Fatalf("login: %q", got)
	}
	if c.cookie == nil || c.cookie.Value == before.Value {
		t.Fatal("Regenerate did not change the cookie")
	}
	if got := c.get("/read"); got != "ann/1/" {
		t.Errorf("after Regenerate: %q, want the data kept", got)
	}
	if s.stateless {
		return
	}
	c.cookie = before
	if got := c.get("/read"); got != "/0/" {
		t.Errorf("the cookie from before Regenerate still reads %q", got)
	}
}

func testManagerLifetime(t *testing.T, s env) {
	c := newClient(t, app(s.newManager(s.Backend, sessions.WithLifetime(2*time.Second))))
	c.get("/inc")
	if got := c.get("/inc"); got != "/2/" {
		t.Fatalf("within lifetime: %q", got)
	}
	s.advance(2500 * time.Millisecond)
	if got := c.get("/read"); got != "/0/" {
		t.Errorf("after the lifetime: %q, want a new session", got)
	}
}

func testManagerIdle(t *testing.T, s env) {
	m := s.newManager(s.Backend, sessions.WithLifetime(time.Hour), sessions.WithIdleTimeout(2*time.Second))
	c := newClient(t, app(m))
	c.get("/inc")
	for range 3 { // 4.5 s in all, longer than the idle timeout
		s.advance(1500 * time.Millisecond)
		if got := c.get("/read"); got != "/1/" {
			t.Fatalf("an active session expired: %q", got)
		}
	}
	// An unused session ends between the idle timeout and the idle
	// timeout plus its slack, here a second.
	s.advance(3100 * time.Millisecond)
	if got := c.get("/read"); got != "/0/" {
		t.Errorf("after the idle timeout and its slack: %q, want a new session", got)
	}
}

func versioned(t *testing.T, b sessions.Backend) sessions.VersionedBackend {
	vb, ok := b.(sessions.VersionedBackend)
	if !ok {
		t.Skip("the backend is not a sessions.VersionedBackend")
	}
	return vb
}

func readVersion(t *testing.T, vb sessions.VersionedBackend, token string) (string, uint64) {
	t.Helper()
	rec, found, err := vb.ReadRecord(context.Background(), token)
	if err != nil {
		t.Fatalf("ReadRecord: %v", err)
	}
	if !found {
		return "", 0
	}
	return string(rec.Data), rec.Version
}

func testConditionalWrite(t *testing.T, s env) {
	vb := versioned(t, s.Backend)
	ctx := context.Background()
	id := sessions.NewID()
	type step struct {
		version     uint64
		data        string
		wantErr     bool
		wantData    string
		wantVersion uint64
	}
	steps := []step{
		{version: 1, data: "never", wantErr: true, wantData: "", wantVersion: 0},
		{version: 0, data: "a", wantData: "a", wantVersion: 1},
		{version: 0, data: "again", wantErr: true, wantData: "a", wantVersion: 1},
		{version: 1, data: "b", wantData: "b", wantVersion: 2},
		{version: 1, data: "stale", wantErr: true, wantData: "b", wantVersion: 2},
		{version: 3, data: "future", wantErr: true, wantData: "b", wantVersion: 2},
		{version: 2, data: "c", wantData: "c", wantVersion: 3},
	}
	var token string
	for i, st := range steps {
		tok, err := vb.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte(st.data), TTL: time.Hour, Version: st.version})
		if st.wantErr != (err != nil) {
			t.Fatalf("step %d: WriteIfVersion(v%d) err = %v, want error %t", i, st.version, err, st.wantErr)
		}
		if err != nil && !errors.Is(err, sessions.ErrConflict) {
			t.Fatalf("step %d: err = %v, want ErrConflict", i, err)
		}
		if err == nil {
			token = tok
		}
		if token == "" {
			continue
		}
		data, v := readVersion(t, vb, token)
		if data != st.wantData || v != st.wantVersion {
			t.Fatalf("step %d: record = %q v%d, want %q v%d", i, data, v, st.wantData, st.wantVersion)
		}
	}
	// A plain Write advances the version too.
	if _, err := vb.Write(ctx, id, []byte("d"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, v := readVersion(t, vb, token); v != 4 {
		t.Errorf("after a plain Write the version is %d, want 4", v)
	}
	// A removed record is never recreated by a conditional write.
	if err := vb.Remove(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := vb.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte("zombie"), TTL: time.Hour, Version: 4}); !errors.Is(err, sessions.ErrConflict) {
		t.Errorf("a write over a removed record: err = %v, want ErrConflict", err)
	}
	if data, _ := readVersion(t, vb, token); data != "" {
		t.Errorf("a removed record came back as %q", data)
	}
}

func testConditionalRemove(t *testing.T, s env) {
	vb := versioned(t, s.Backend)
	ctx := context.Background()
	token, err := vb.WriteIfVersion(ctx, sessions.VersionedWrite{ID: sessions.NewID(), Data: []byte("a"), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := vb.RemoveIfVersion(ctx, token, 2); !errors.Is(err, sessions.ErrConflict) {
		t.Errorf("RemoveIfVersion with a wrong version: err = %v, want ErrConflict", err)
	}
	if data, _ := readVersion(t, vb, token); data != "a" {
		t.Fatalf("a refused RemoveIfVersion removed the record")
	}
	if err := vb.RemoveIfVersion(ctx, token, 1); err != nil {
		t.Errorf("RemoveIfVersion with the right version: %v", err)
	}
	if data, _ := readVersion(t, vb, token); data != "" {
		t.Errorf("the record survived RemoveIfVersion")
	}
	if err := vb.RemoveIfVersion(ctx, token, 1); !errors.Is(err, sessions.ErrConflict) {
		t.Errorf("RemoveIfVersion of a missing record: err = %v, want ErrConflict", err)
	}
}

// testManagerConcurrentUpdates runs 32 clients that each send 100 requests
// incrementing one shared session's counter through Update: not one
// increment may be lost.
func testManagerConcurrentUpdates(t *testing.T, s env) {
	versioned(t, s.Backend)
	const workers, requests = 32, 100
	m := s.newManager(s.Backend)
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if r.URL.Path == "/inc" {
			sess.Update(func(v *suiteSession) { v.Count++ })
		}
		w.Write([]byte(strconv.Itoa(sess.Data().Count)))
	}))
	c := newClient(t, app(m))
	c.get("/tag") // create the session
	shared := c.cookie

	var wg sync.WaitGroup
	failures := make(chan string, workers*requests)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range requests {
				req := httptest.NewRequest(http.MethodPost, "https://example.com/inc", nil)
				req.AddCookie(shared)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					failures <- strconv.Itoa(rec.Code) + " " + rec.Body.String()
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("a request failed: %s", f)
	}
	if got, want := c.get("/read"), "/"+strconv.Itoa(workers*requests)+"/t"; got != want {
		t.Errorf("after %d concurrent increments the session reads %q, want %q", workers*requests, got, want)
	}
}

// testManagerHostileCookies sends what an attacker would: none of it may
// reach a session, cause an error, or get a client-chosen token adopted.
func testManagerHostileCookies(t *testing.T, s env) {
	m := s.newManager(s.Backend)
	h := app(m)
	victim := newClient(t, h)
	victim.get("/login")
	valid := victim.cookie.Value
	flipped := []byte(valid)
	flipped[len(flipped)/2] ^= 1
	chosen := sessions.NewID()
	cases := map[string]string{
		"forged":                     "session=" + string(flipped),
		"unknown token":              "session=" + chosen,
		"oversized":                  "session=" + strings.Repeat("A", 8000),
		"CR/LF":                      "session=" + valid[:8] + "\r\nX-Evil: 1",
		"non-ASCII":                  "session=" + valid + "\xff",
		"many cookies, forged first": strings.Repeat("session="+sessions.NewID()+"; ", 40) + "session=" + valid,
	}
	for name, header := range cases {
		req := httptest.NewRequest(http.MethodGet, "https://example.com/inc", nil)
		req.Header["Cookie"] = []string{header}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s: status %d", name, rec.Code)
			continue
		}
		if got := rec.Body.String(); got != "/1/" {
			t.Errorf("%s: the request saw %q, want a fresh session", name, got)
		}
		for _, c := range rec.Result().Cookies() {
			if strings.Contains(header, c.Value) {
				t.Errorf("%s: the client's token was adopted", name)
			}
		}
	}
	if s.stateless {
		return
	}
	// The unknown token was not stored under the client's choice.
	if got := read(t, s.Backend, chosen); got != nil {
		t.Errorf("a record exists under the token the client chose")
	}
}

// testManagerTokenBoundToName runs two managers with different cookie
// names on the backend: a token one issued is a fresh session under the
// other's name, and each still reads its own.
func testManagerTokenBoundToName(t *testing.T, s env) {
	a := s.newManager(s.Backend, sessions.WithCookieName("a_session"))
	b := s.newManager(s.Backend, sessions.WithCookieName("b_session"))
	ca, cb := newClient(t, app(a)), newClient(t, app(b))
	ca.get("/inc")
	if got := ca.get("/inc"); got != "/2/" {
		t.Fatalf("manager a reads its own session as %q", got)
	}
	cb.get("/tag")
	moved := newClient(t, app(b))
	moved.cookie = &http.Cookie{Name: "b_session", Value: ca.cookie.Value}
	if got := moved.get("/read"); got != "/0/" {
		t.Errorf("a token of manager a under b's cookie name reads %q, want a fresh session", got)
	}
	if got := cb.get("/read"); got != "/0/t" {
		t.Errorf("manager b reads its own session as %q", got)
	}
	if got := ca.get("/read"); got != "/2/" {
		t.Errorf("manager a's session reads %q after the attempt", got)
	}
}

package sessions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// These tests interleave two requests on one session deterministically: the
// slow request loads its session, then waits on a channel while the fast one
// runs to completion, then makes its own change and saves.

// interleaving is a server whose handler for /slow/... pauses between
// loading the session and acting on it.
type interleaving struct {
	t       *testing.T
	store   *memory.Backend
	m       *sessions.Manager[profile]
	h       http.Handler
	loaded  chan struct{} // the slow request has loaded its session
	proceed chan struct{} // the slow request may go on
	errs    chan error    // what reached the error handler
}

var interleavedActs = map[string]func(s *sessions.Session[profile]){
	"/read":          read,
	"/update":        func(s *sessions.Session[profile]) { s.Update(func(p *profile) { p.Visits++ }) },
	"/update10":      func(s *sessions.Session[profile]) { s.Update(func(p *profile) { p.Visits += 10 }) },
	"/data-name":     func(s *sessions.Session[profile]) { s.Data().Name = "fast" },
	"/data-visits":   func(s *sessions.Session[profile]) { s.Data().Visits = 100 },
	"/data-visits50": func(s *sessions.Session[profile]) { s.Data().Visits = 50 },
	"/data-name-update": func(s *sessions.Session[profile]) {
		s.Data().Name = "fast"
		s.Update(func(p *profile) { p.Visits++ })
	},
	// The handler saves itself and goes on whatever Save says: the save
	// when its response goes out must not then succeed where Save failed.
	"/data-visits-save": func(s *sessions.Session[profile]) {
		s.Data().Visits = 100
		s.Save(context.Background())
	},
	"/logout": func(s *sessions.Session[profile]) { s.Destroy() },
	"/login": func(s *sessions.Session[profile]) {
		s.Regenerate()
		s.Update(func(p *profile) { p.Name = "ann" })
	},
}

func newInterleaving(t *testing.T, opts ...sessions.Option) *interleaving {
	return newInterleavingOn(t, nil, opts...)
}

// newInterleavingOn builds the server over wrap(store), or the store itself
// when wrap is nil.
func newInterleavingOn(t *testing.T, wrap func(*memory.Backend) sessions.Backend, opts ...sessions.Option) *interleaving {
	it := &interleaving{
		t: t, store: memory.New(),
		loaded: make(chan struct{}), proceed: make(chan struct{}), errs: make(chan error, 1),
	}
	t.Cleanup(func() { it.store.Close() })
	var b sessions.Backend = it.store
	if wrap != nil {
		b = wrap(it.store)
	}
	opts = append(opts, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		it.errs <- err
		code := http.StatusInternalServerError
		if errors.Is(err, sessions.ErrConflict) {
			code = http.StatusConflict
		}
		http.Error(w, err.Error(), code)
	}))
	it.m = sessions.New[profile](b, opts...)
	it.h = it.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := it.m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		path := r.URL.Path
		if slow, ok := strings.CutPrefix(path, "/slow"); ok {
			it.loaded <- struct{}{}
			<-it.proceed
			path = slow
		}
		act, ok := interleavedActs[path]
		if !ok {
			t.Errorf("no action %s", path)
		}
		act(s)
		fmt.Fprint(w, show(s))
	}))
	return it
}

// do sends one request with cookie c.
func (it *interleaving) do(path string, c *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "https://example.com"+path, nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	it.h.ServeHTTP(rec, req)
	return rec
}

// session starts a session holding one visit and returns its cookie.
func (it *interleaving) session() *http.Cookie {
	rec := it.do("/update", nil)
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		it.t.Fatalf("no session cookie: %d %s", rec.Code, rec.Body)
	}
	return cookies[0]
}

// race runs slow with cookie c, and fast with cookie c while slow waits
// between load and save. It returns both responses.
func (it *interleaving) race(c *http.Cookie, slow, fast string) (slowRes, fastRes *httptest.ResponseRecorder) {
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- it.do("/slow"+slow, c) }()
	<-it.loaded
	fastRes = it.do(fast, c)
	close(it.proceed)
	return <-done, fastRes
}

// reads returns what a request with cookie c sees.
func (it *interleaving) reads(c *http.Cookie) string {
	return it.do("/read", c).Body.String()
}

// handled returns the error the error handler saw, or nil.
func (it *interleaving) handled() error {
	select {
	case err := <-it.errs:
		return err
	default:
		return nil
	}
}

func TestConcurrentUpdatesBothKept(t *testing.T) {
	it := newInterleaving(t)
	c := it.session()
	slow, fast := it.race(c, "/update10", "/update")
	if slow.Code != http.StatusOK || fast.Code != http.StatusOK {
		t.Fatalf("status slow %d (%s), fast %d", slow.Code, slow.Body, fast.Code)
	}
	if got := it.reads(c); !strings.Contains(got, "visits=12 ") {
		t.Errorf("after 1 + 10 + 1 visits the session reads %q", got)
	}
}

// TestConcurrentDataWriters races two requests that change the session
// through Data: changes to different fields are merged, changes of one
// field to one value agree, and only changes of one field to different
// values conflict, the first saver's kept.
func TestConcurrentDataWriters(t *testing.T) {
	tests := []struct {
		name, slow, fast string
		wantSlow         int
		wantRead         string
	}{
		{"different fields", "/data-visits", "/data-name", http.StatusOK, "name=fast visits=100 "},
		{"one field, one value", "/data-visits", "/data-visits", http.StatusOK, "name= visits=100 "},
		{"one field, two values", "/data-visits", "/data-visits50", http.StatusConflict, "name= visits=50 "},
		{"Data beside another's Update", "/data-name", "/update", http.StatusOK, "name=fast visits=2 "},
		{"Data against another's Update of the field", "/data-visits", "/update", http.StatusConflict, "name= visits=2 "},
		{"Update beside another's Data", "/update", "/data-name", http.StatusOK, "name=fast visits=2 "},
		{"Data and Update beside another's Data", "/data-name-update", "/data-visits50", http.StatusOK, "name=fast visits=51 "},
		{"a refused merge saved again", "/data-visits-save", "/data-visits50", http.StatusConflict, "name= visits=50 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := newInterleaving(t)
			c := it.session()
			slow, fast := it.race(c, tt.slow, tt.fast)
			if fast.Code != http.StatusOK {
				t.Fatalf("fast request: %d", fast.Code)
			}
			if slow.Code != tt.wantSlow {
				t.Errorf("slow request: status %d, want %d", slow.Code, tt.wantSlow)
			}
			if tt.wantSlow == http.StatusConflict {
				if !errors.Is(it.handled(), sessions.ErrConflict) {
					t.Errorf("the error handler did not see ErrConflict")
				}
				if strings.Contains(slow.Body.String(), "visits=") {
					t.Errorf("the conflicting response's body went out: %q", slow.Body)
				}
			}
			if got := it.reads(c); !strings.Contains(got, tt.wantRead) {
				t.Errorf("the session reads %q, want %q", got, tt.wantRead)
			}
		})
	}
}

func TestLastWriteWinsOption(t *testing.T) {
	it := newInterleaving(t, sessions.WithLastWriteWins())
	c := it.session()
	slow, _ := it.race(c, "/data-visits", "/data-name")
	if slow.Code != http.StatusOK {
		t.Fatalf("slow request: %d", slow.Code)
	}
	if got := it.reads(c); !strings.Contains(got, "name= visits=100 ") {
		t.Errorf("the session reads %q; with last-write-wins the slow save replaces the fast one", got)
	}
}

func TestLogoutDuringInFlightRequest(t *testing.T) {
	hideTouch := func(b *memory.Backend) sessions.Backend { return struct{ sessions.VersionedBackend }{b} }
	tests := []struct {
		name     string
		slow     string
		wrap     func(*memory.Backend) sessions.Backend
		wantCode int
	}{
		{"read", "/read", nil, http.StatusOK},
		{"read that touches", "/read", nil, http.StatusOK},
		{"read that rewrites to refresh", "/read", hideTouch, http.StatusOK},
		{"update", "/update", nil, http.StatusConflict},
		{"data write", "/data-visits", nil, http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []sessions.Option
			if strings.Contains(tt.name, "touch") || strings.Contains(tt.name, "refresh") {
				opts = append(opts, sessions.WithIdleTimeout(10*time.Second))
			}
			it := newInterleavingOn(t, tt.wrap, opts...)
			clock := newFakeClock()
			sessions.SetNow(it.m, clock.Now)
			c := it.session()
			clock.Advance(2 * time.Second) // a refresh is due, but the session has not expired in the store
			slow, fast := it.race(c, tt.slow, "/logout")
			if fast.Code != http.StatusOK {
				t.Fatalf("logout: %d", fast.Code)
			}
			if slow.Code != tt.wantCode {
				t.Errorf("in-flight request: status %d, want %d (%s)", slow.Code, tt.wantCode, slow.Body)
			}
			if len(slow.Result().Cookies()) > 0 {
				t.Errorf("the in-flight request set a cookie: %v", slow.Result().Cookies())
			}
			if got := it.store.Len(); got != 0 {
				t.Errorf("%d records after logout; the in-flight request brought the session back", got)
			}
			if got := it.reads(c); !strings.HasSuffix(got, "new=true") {
				t.Errorf("the old cookie reads %q after logout", got)
			}
		})
	}
}

func TestRegenerateDuringInFlightWrite(t *testing.T) {
	it := newInterleaving(t)
	c := it.session()
	slow, fast := it.race(c, "/update", "/login")
	if fast.Code != http.StatusOK {
		t.Fatalf("login: %d", fast.Code)
	}
	if slow.Code != http.StatusConflict {
		t.Errorf("the write on the replaced ID: status %d, want 409", slow.Code)
	}
	if got := it.store.Len(); got != 1 {
		t.Errorf("%d live records, want only the regenerated one", got)
	}
	if got := it.reads(c); !strings.HasSuffix(got, "new=true") {
		t.Errorf("the pre-login cookie reads %q", got)
	}
	if got := it.reads(fast.Result().Cookies()[0]); !strings.Contains(got, "name=ann visits=1 ") {
		t.Errorf("the new session reads %q", got)
	}
}

func TestWriteDuringInFlightRegenerate(t *testing.T) {
	it := newInterleaving(t)
	c := it.session()
	slow, fast := it.race(c, "/login", "/update")
	if slow.Code != http.StatusOK || fast.Code != http.StatusOK {
		t.Fatalf("status login %d (%s), update %d", slow.Code, slow.Body, fast.Code)
	}
	if got := it.store.Len(); got != 1 {
		t.Errorf("%d live records, want only the regenerated one", got)
	}
	if got := it.reads(c); !strings.HasSuffix(got, "new=true") {
		t.Errorf("the pre-login cookie still reads %q", got)
	}
	newCookie := slow.Result().Cookies()[0]
	if got := it.reads(newCookie); !strings.Contains(got, "name=ann visits=2 ") {
		t.Errorf("the regenerated session reads %q; want the concurrent visit carried over", got)
	}
}

// TestUpdateReplaysInOrder checks that Update functions are replayed on
// the reloaded value in the order they were given.
func TestUpdateReplaysInOrder(t *testing.T) {
	it := newInterleaving(t)
	interleavedActs["/order"] = func(s *sessions.Session[profile]) {
		s.Update(func(p *profile) { p.Roles = append(p.Roles, "first") })
		s.Update(func(p *profile) { p.Roles = append(p.Roles, "second") })
	}
	interleavedActs["/role"] = func(s *sessions.Session[profile]) {
		s.Update(func(p *profile) { p.Roles = append(p.Roles, "fast") })
	}
	t.Cleanup(func() { delete(interleavedActs, "/order"); delete(interleavedActs, "/role") })
	c := it.session()
	if slow, _ := it.race(c, "/order", "/role"); slow.Code != http.StatusOK {
		t.Fatalf("slow: %d", slow.Code)
	}
	got := it.reads(c)
	want := "roles=[fast first second]"
	if !strings.Contains(got, want) {
		t.Errorf("%s", cmp.Diff(want, got))
	}
}

// TestConcurrentUpdatesAcrossManagers runs the 3200 increments through
// four managers on one store, standing for four application processes:
// their saves are not ordered by a shared lock, so conflicts reach the
// backend and are resolved by reload, replay and backoff.
func TestConcurrentUpdatesAcrossManagers(t *testing.T) {
	const managers, workers, requests = 4, 32, 100
	store := memory.New()
	defer store.Close()
	var handlers []http.Handler
	for range managers {
		m := sessions.New[profile](store, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			t.Logf("error handler: %v", err)
			http.Error(w, err.Error(), http.StatusConflict)
		}))
		handlers = append(handlers, m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := m.Get(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if r.URL.Path == "/inc" {
				s.Update(func(p *profile) { p.Visits++ })
			}
			w.Write([]byte(strconv.Itoa(s.Data().Visits)))
		})))
	}
	do := func(h http.Handler, path string, c *http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, nil)
		if c != nil {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	c := do(handlers[0], "/inc", nil).Result().Cookies()[0]
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range requests {
				if do(handlers[w%managers], "/inc", c).Code != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	got, _ := strconv.Atoi(do(handlers[0], "/read", c).Body.String())
	if want := 1 + workers*requests - int(failed.Load()); got != want {
		t.Errorf("counter = %d, want %d: %d increments lost silently", got, want, want-got)
	}
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed with a conflict", failed.Load(), workers*requests)
	}
}

// alwaysNewer is a versioned backend on which another process always
// saved first: every conditional write conflicts.
type alwaysNewer struct {
	*memory.Backend
	reads atomic.Int64
}

func (b *alwaysNewer) ReadRecord(ctx context.Context, token string) (sessions.Record, bool, error) {
	rec, found, err := b.Backend.ReadRecord(ctx, token)
	rec.Version += uint64(b.reads.Add(1))
	return rec, found, err
}

func (b *alwaysNewer) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	if w.Version == 0 {
		return b.Backend.WriteIfVersion(ctx, w)
	}
	return "", sessions.ErrConflict
}

func TestRetriesAreBoundedWithBackoff(t *testing.T) {
	store := memory.New()
	defer store.Close()
	b := &alwaysNewer{Backend: store}
	m := sessions.New[profile](b)
	var pauses []time.Duration
	sessions.SetSleep(m, func(ctx context.Context, d time.Duration) error {
		pauses = append(pauses, d)
		return nil
	})
	h := app(m, func(s *sessions.Session[profile]) { s.Update(func(p *profile) { p.Visits++ }) })
	br := &browser{t: t, h: h}
	br.do("GET", "/")
	res := br.do("GET", "/")
	if res.StatusCode != http.StatusConflict {
		t.Errorf("status %d, want 409 once the retries run out", res.StatusCode)
	}
	if got, want := len(pauses), sessions.MaxSaveAttempts-2; got != want {
		t.Fatalf("%d pauses, want %d (none before the first retry)", got, want)
	}
	for i, d := range pauses {
		ceiling := time.Millisecond << min(i, 6)
		if d < ceiling/2 || d > ceiling {
			t.Errorf("pause %d = %v, want within [%v, %v]", i, d, ceiling/2, ceiling)
		}
	}
}

// newerProfile is profile as a newer release has it, with a field more.
type newerProfile struct {
	Name   string
	Visits int
	Roles  []string
	Prefs  map[string]string
	Extra  string
}

// TestMergeKeepsUnknownFields merges two disjoint changes made through
// Data on a session a newer release wrote: the newer release's field,
// which neither request's type knows, survives the merge.
func TestMergeKeepsUnknownFields(t *testing.T) {
	it := newInterleaving(t)
	newer := sessions.New[newerProfile](it.store)
	h := newer.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := newer.Get(r)
		if err != nil {
			t.Error(err)
			return
		}
		if r.URL.Path == "/write" {
			s.Update(func(p *newerProfile) { p.Extra = "kept"; p.Visits = 1 })
		}
		fmt.Fprint(w, s.Value().Extra, " ", s.Value().Name, " ", s.Value().Visits)
	}))
	req := httptest.NewRequest("GET", "/write", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	c := rec.Result().Cookies()[0]
	slow, fast := it.race(c, "/data-visits", "/data-name")
	if slow.Code != http.StatusOK || fast.Code != http.StatusOK {
		t.Fatalf("status slow %d, fast %d; want both merged", slow.Code, fast.Code)
	}
	req = httptest.NewRequest("GET", "/read", nil)
	req.AddCookie(c)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Body.String(); got != "kept fast 100" {
		t.Errorf("the newer release reads %q, want %q", got, "kept fast 100")
	}
}

// lowerProfile is profile as a later release may declare it, with JSON
// keys in lower case: encoding/json reads either spelling into either type.
type lowerProfile struct {
	Name   string            `json:"name"`
	Visits int               `json:"visits"`
	Roles  []string          `json:"roles"`
	Prefs  map[string]string `json:"prefs"`
}

// TestMergeAcrossKeySpellings races a change through Data by this release
// with one by a release that spells the keys in lower case: the same field
// is the same field, however the other release spells it.
func TestMergeAcrossKeySpellings(t *testing.T) {
	for _, tt := range []struct {
		name     string
		set      func(*lowerProfile)
		wantSlow int
		wantRead string
	}{
		{"same field", func(p *lowerProfile) { p.Visits = 50 }, http.StatusConflict, "name= visits=50 "},
		{"other field", func(p *lowerProfile) { p.Name = "later" }, http.StatusOK, "name=later visits=100 "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			it := newInterleaving(t)
			later := sessions.New[lowerProfile](it.store)
			h := later.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := later.Get(r)
				if err != nil {
					t.Error(err)
					return
				}
				if r.URL.Path == "/set" {
					tt.set(s.Data())
				} else {
					s.Update(func(p *lowerProfile) { p.Visits = 1 })
				}
			}))
			req := httptest.NewRequest("GET", "/start", nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			c := rec.Result().Cookies()[0]
			done := make(chan *httptest.ResponseRecorder)
			go func() { done <- it.do("/slow/data-visits", c) }()
			<-it.loaded
			req = httptest.NewRequest("GET", "/set", nil)
			req.AddCookie(c)
			h.ServeHTTP(httptest.NewRecorder(), req)
			close(it.proceed)
			if slow := <-done; slow.Code != tt.wantSlow {
				t.Errorf("this release's request: status %d, want %d", slow.Code, tt.wantSlow)
			}
			if got := it.reads(c); !strings.Contains(got, tt.wantRead) {
				t.Errorf("the session reads %q, want %q", got, tt.wantRead)
			}
		})
	}
}

// ownCodec is a user's codec: JSON, without the field handling the
// library's own codecs have, so changes through Data cannot be merged.
type ownCodec struct{}

func (ownCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (ownCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// TestMergeNeedsFieldCodec opens one session twice and saves changes made
// through Data to different fields, one after the other: with the JSON
// codec the second save merges, with a codec that cannot split fields it
// fails with ErrConflict, as the README says.
func TestMergeNeedsFieldCodec(t *testing.T) {
	for _, tt := range []struct {
		name  string
		codec sessions.Codec
		merge bool
	}{
		{"JSON", sessions.JSON, true},
		{"a codec of the user's own", ownCodec{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			m := sessions.New[profile](memory.New(), sessions.WithCodec(tt.codec))
			s, err := m.Open(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			s.Data().Visits = 1
			if err := s.Save(ctx); err != nil {
				t.Fatal(err)
			}
			first, _ := m.Open(ctx, s.Token())
			second, _ := m.Open(ctx, s.Token())
			first.Data().Name = "ann"
			second.Data().Visits = 5
			if err := first.Save(ctx); err != nil {
				t.Fatal(err)
			}
			err = second.Save(ctx)
			if tt.merge {
				if err != nil {
					t.Fatalf("a save of another field: %v, want a merge", err)
				}
			} else if !errors.Is(err, sessions.ErrConflict) {
				t.Fatalf("a save of another field: %v, want ErrConflict", err)
			}
			after, _ := m.Open(ctx, s.Token())
			want := profile{Name: "ann", Visits: 1}
			if tt.merge {
				want.Visits = 5
			}
			if got := after.Value(); got.Name != want.Name || got.Visits != want.Visits {
				t.Errorf("stored %+v, want %+v", got, want)
			}
		})
	}
}

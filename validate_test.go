package sessions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// signedIn is a session that remembers which "sign out everywhere" epoch
// of its user it was made in.
type signedIn struct {
	User  string
	Epoch int64
}

// TestValidateSignsOutEverywhere follows the recipe for cookie sessions,
// which the server cannot list: the user's record holds an epoch that
// "sign out everywhere" bumps, and the validator refuses sessions from an
// older epoch. It runs on the cookie and memory backends.
func TestValidateSignsOutEverywhere(t *testing.T) {
	store := memory.New()
	defer store.Close()
	for name, b := range map[string]sessions.Backend{"cookie": newCookieBackend(), "memory": store} {
		t.Run(name, func(t *testing.T) {
			var epoch atomic.Int64 // the user's row
			var validated atomic.Int64
			m := sessions.New[signedIn](b, sessions.WithValidate(func(ctx context.Context, a *signedIn) error {
				validated.Add(1)
				if a.User != "" && a.Epoch != epoch.Load() {
					return sessions.ErrRevoked
				}
				return nil
			}))
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := m.Get(r)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				if r.URL.Path == "/login" {
					s.Regenerate()
					s.Update(func(a *signedIn) { a.User, a.Epoch = "ann", epoch.Load() })
				}
				w.Write([]byte(s.Value().User + " new=" + map[bool]string{true: "yes", false: "no"}[s.IsNew()]))
			}))
			laptop, phone := &browser{t: t, h: h}, &browser{t: t, h: h}
			laptop.do("GET", "/login")
			phone.do("GET", "/login")
			if got := body(phone.do("GET", "/")); got != "ann new=no" {
				t.Fatalf("before: %q", got)
			}
			records := store.Len()
			epoch.Add(1) // "sign out everywhere"
			res := phone.do("GET", "/")
			if got := body(res); got != " new=yes" {
				t.Errorf("after the epoch moved: %q, want a fresh session", got)
			}
			if phone.cookie != nil {
				t.Errorf("the refused session's cookie was not replaced: %v", res.Header["Set-Cookie"])
			}
			if name == "memory" && store.Len() != records-1 {
				t.Errorf("records: %d, want %d: the refused session's record must go", store.Len(), records-1)
			}
			if got := body(laptop.do("GET", "/")); got != " new=yes" {
				t.Errorf("the other device after the epoch moved: %q", got)
			}
			laptop.do("GET", "/login")
			if got := body(laptop.do("GET", "/")); got != "ann new=no" {
				t.Errorf("a login after the epoch moved: %q", got)
			}
			if validated.Load() == 0 {
				t.Error("the validator never ran")
			}
		})
	}
}

func TestValidateErrorFailsTheLoad(t *testing.T) {
	errDB := errors.New("user database down")
	var handled error
	for _, autoload := range []bool{false, true} {
		opts := []sessions.Option{
			sessions.WithValidate(func(ctx context.Context, a *signedIn) error {
				if a.User != "" {
					return errDB
				}
				return nil
			}),
			sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				handled = err
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
			}),
		}
		if autoload {
			opts = append(opts, sessions.WithAutoload())
		}
		m := sessions.New[signedIn](newCookieBackend(), opts...)
		var getErr error
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := m.Get(r)
			if err != nil {
				getErr = err
				http.Error(w, "Get failed", http.StatusInternalServerError)
				return
			}
			s.Data().User = "ann"
		}))
		br := &browser{t: t, h: h}
		br.do("GET", "/")
		handled, getErr = nil, nil
		res := br.do("GET", "/")
		switch {
		case autoload && (res.StatusCode != http.StatusServiceUnavailable || !errors.Is(handled, errDB)):
			t.Errorf("autoload: status %d, error handler saw %v", res.StatusCode, handled)
		case !autoload && (res.StatusCode != http.StatusInternalServerError || !errors.Is(getErr, errDB)):
			t.Errorf("lazy: status %d, Get returned %v", res.StatusCode, getErr)
		}
	}
}

func TestValidateWrongTypePanics(t *testing.T) {
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "WithValidate") {
			t.Errorf("panic %q, want one about WithValidate", msg)
		}
	}()
	sessions.New[signedIn](newCookieBackend(), sessions.WithValidate(func(context.Context, *profile) error { return nil }))
}

// TestAuditTrail checks each event of a session's life in the audit trail,
// with handle and owner, and never a token.
func TestAuditTrail(t *testing.T) {
	store := memory.New()
	defer store.Close()
	clock := newFakeClock()
	var logs bytes.Buffer
	refuse := atomic.Bool{}
	m := newManager[signedIn](clock, store, sessions.WithAuditTrail(), sessions.WithLifetime(time.Hour),
		sessions.WithLogger(newJSONLogger(&logs)),
		sessions.WithValidate(func(ctx context.Context, a *signedIn) error {
			if refuse.Load() {
				return sessions.ErrRevoked
			}
			return nil
		}))
	var tokens []string
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/visit":
			s.Update(func(a *signedIn) { a.Epoch++ })
		case "/login":
			s.Regenerate()
			s.SetOwner("ann")
		case "/logout":
			s.Destroy()
		}
		tokens = append(tokens, s.Token())
	}))
	br := &browser{t: t, h: h}
	br.do("GET", "/visit")  // created
	br.do("GET", "/login")  // regenerated, owner set
	br.do("GET", "/logout") // destroyed
	br.do("GET", "/visit")
	br.do("GET", "/login")
	infos, err := m.Sessions(context.Background(), "ann")
	if err != nil || len(infos) != 1 {
		t.Fatalf("Sessions: %v, %v", infos, err)
	}
	if err := m.Revoke(context.Background(), "ann", infos[0].Handle); err != nil { // revoked
		t.Fatal(err)
	}
	br.do("GET", "/visit") // created
	refuse.Store(true)
	br.do("GET", "/") // refused by validator
	refuse.Store(false)
	br.do("GET", "/visit") // created
	clock.Advance(2 * time.Hour)
	br.do("GET", "/") // expired on load

	var events []string
	dec := json.NewDecoder(&logs)
	for dec.More() {
		var entry map[string]any
		if err := dec.Decode(&entry); err != nil {
			t.Fatal(err)
		}
		if entry["msg"] != "sessions: audit" {
			continue
		}
		event, _ := entry["event"].(string)
		if h, _ := entry["handle"].(string); h == "" {
			t.Errorf("event %q without a handle", event)
		}
		owner, _ := entry["owner"].(string)
		events = append(events, event+"/"+owner)
	}
	want := []string{
		"created/", "regenerated/ann", "owner set/ann", "destroyed/ann",
		"created/", "regenerated/ann", "owner set/ann", "revoked/ann",
		"not found/", // the revoked token, which names no record now
		"created/", "refused by validator/", "created/", "expired on load/",
	}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
	for _, tok := range tokens {
		if tok != "" && strings.Contains(logs.String(), tok) {
			t.Errorf("a token appears in the log")
		}
	}
}

// TestAuditExpiredOnServer lets a session expire on a backend that drops
// expired records itself, on the manager's clock: the next request with
// its token is in the audit trail as not found: the manager cannot tell
// it from a revoked or forged token.
func TestAuditExpiredOnServer(t *testing.T) {
	clock := newFakeClock()
	var logs bytes.Buffer
	m := newManager[profile](clock, newFakeBackend(clock), sessions.WithAuditTrail(), sessions.WithLifetime(time.Hour),
		sessions.WithLogger(newJSONLogger(&logs)))
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/visit")
	clock.Advance(2 * time.Hour)
	br.do("GET", "/read")
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err == nil && entry["msg"] == "sessions: audit" {
			events = append(events, entry["event"].(string))
		}
	}
	if diff := cmp.Diff([]string{"created", "not found"}, events); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
}

// TestUndecodableWarnsOncePerBurst loads sessions that no longer decode
// into the session type, as after a change to it without a migration: the
// operator sees one warning per burst, with the handle and the error and
// never the token, and the audit trail records each.
func TestUndecodableWarnsOncePerBurst(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	old := newManager[struct{ Visits string }](clock, fb)
	var tokens []string
	for range 3 {
		rec := httptest.NewRecorder()
		old.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := old.Get(r)
			s.Data().Visits = "many"
		})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		tokens = append(tokens, rec.Result().Cookies()[0].Value)
	}
	var logs bytes.Buffer
	m := newManager[profile](clock, fb, sessions.WithLogger(newJSONLogger(&logs)), sessions.WithAuditTrail())
	read := func(token string) string {
		br := &browser{t: t, h: routes(m, standardActs), cookie: &http.Cookie{Name: sessions.DefaultHostCookieName, Value: token}}
		return body(br.do("GET", "/read"))
	}
	for _, tok := range tokens {
		if got := read(tok); !strings.HasSuffix(got, "new=true") {
			t.Fatalf("an undecodable session reads %q, want a new one", got)
		}
	}
	clock.Advance(2 * time.Minute) // the burst is over
	read(tokens[0])
	var warnings, audits []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		switch {
		case e["level"] == "WARN":
			warnings = append(warnings, e)
		case e["msg"] == "sessions: audit" && e["event"] == "undecodable":
			audits = append(audits, e)
		}
	}
	if len(warnings) != 2 {
		t.Fatalf("%d warnings for two bursts, want 2: %s", len(warnings), logs.String())
	}
	if warnings[0]["handle"] == nil || warnings[0]["err"] == nil || warnings[1]["suppressed"] != float64(2) {
		t.Errorf("warnings %v: want the handle, the error, and the second one counting the 2 left out", warnings)
	}
	if len(audits) != 4 {
		t.Errorf("%d audit entries, want one per undecodable load, 4", len(audits))
	}
	for _, tok := range tokens {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("a token appears in the log")
		}
	}
}

// TestCookieLogoutAfterHeaderIsNotAudited destroys a cookie session after
// the response header is out: the cookie cannot be expired any more and
// stays valid, so Save fails with ErrHeaderWritten and the audit trail
// must not record a logout that did not happen.
func TestCookieLogoutAfterHeaderIsNotAudited(t *testing.T) {
	var logs bytes.Buffer
	m := sessions.New[profile](newCookieBackend(), sessions.WithAuditTrail(), sessions.WithLogger(newJSONLogger(&logs)))
	var saveErr error
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := m.Get(r)
		switch r.URL.Path {
		case "/visit":
			s.Update(func(p *profile) { p.Visits++ })
		case "/late-logout":
			io.WriteString(w, "bye")
			s.Destroy()
			saveErr = s.Save(r.Context())
		}
		fmt.Fprintf(w, "visits=%d", s.Value().Visits)
	}))
	br := &browser{t: t, h: h}
	br.do("GET", "/visit")
	br.do("GET", "/late-logout")
	if !errors.Is(saveErr, sessions.ErrHeaderWritten) {
		t.Errorf("Save after a late Destroy: %v, want ErrHeaderWritten", saveErr)
	}
	if got := body(br.do("GET", "/read")); got != "visits=1" {
		t.Errorf("the cookie after a late logout reads %q; it stays valid, as documented", got)
	}
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err == nil && entry["msg"] == "sessions: audit" {
			events = append(events, entry["event"].(string))
		}
	}
	if diff := cmp.Diff([]string{"created"}, events); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
}

// TestValidateWithOpenRemovesAtOnce refuses a session that Open loads: its
// record must go at once, for a session from Open may never be saved.
func TestValidateWithOpenRemovesAtOnce(t *testing.T) {
	clock := newFakeClock()
	fb := newFakeBackend(clock)
	refuse := false
	m := newManager[profile](clock, fb, sessions.WithValidate(func(context.Context, *profile) error {
		if refuse {
			return sessions.ErrRevoked
		}
		return nil
	}))
	s, err := m.Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	s.Data().Name = "ann"
	if err := s.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fb.len() != 1 {
		t.Fatalf("%d records after the save, want 1", fb.len())
	}
	refuse = true
	s, err = m.Open(context.Background(), s.Token())
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsNew() || s.Value().Name != "" {
		t.Errorf("Open of a refused session: IsNew %t, Name %q; want a new, empty session", s.IsNew(), s.Value().Name)
	}
	if fb.len() != 0 {
		t.Errorf("%d records left after the validator refused the session, want 0", fb.len())
	}
}

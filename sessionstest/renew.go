package sessionstest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starsessions/sessions"
)

// These tests are for backends that implement sessions.Renewer, which
// sessions.WithRenewal needs; the others skip them.

func renewer(t *testing.T, b sessions.Backend) sessions.Renewer {
	r, ok := b.(sessions.Renewer)
	if !ok {
		t.Skip("the backend is not a sessions.Renewer")
	}
	return r
}

// testRenewer checks the Renewer methods themselves: a retirement on
// condition of the version, entries that expire in the store, one part
// after the grace and the rest later, and RemoveKey.
func testRenewer(t *testing.T, s env) {
	rb := renewer(t, s.Backend)
	ctx := context.Background()
	id := sessions.NewID()
	token, err := rb.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte("rec"), TTL: time.Hour, Version: 0,
		Owner: "ann", Deadline: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	successor := mustWrite(t, rb, sessions.NewID(), []byte("successor"), time.Hour)
	r := sessions.Retirement{Successor: sessions.HashToken(successor), Forward: []byte("forward"), ForwardTTL: time.Second,
		Tombstone: []byte("tombstone"), TTL: 3 * time.Second}
	if err := rb.RetireIfVersion(ctx, token, 2, r); !errors.Is(err, sessions.ErrConflict) {
		t.Fatalf("RetireIfVersion of the wrong version: %v, want ErrConflict", err)
	}
	if err := rb.RetireIfVersion(ctx, sessions.NewID(), 1, r); !errors.Is(err, sessions.ErrConflict) {
		t.Fatalf("RetireIfVersion of an unknown token: %v, want ErrConflict", err)
	}
	if err := rb.RetireIfVersion(ctx, token, 1, r); err != nil {
		t.Fatalf("RetireIfVersion: %v", err)
	}
	if _, found, err := rb.Read(ctx, token); err != nil || found {
		t.Errorf("Read of a retired token: found %t, %v; want its record gone", found, err)
	}
	if ix, ok := s.Backend.(sessions.OwnerIndex); ok {
		if recs, err := ix.Owned(ctx, "ann"); err != nil || len(recs) != 0 {
			t.Errorf("Owned lists %d records after the only one retired, %v", len(recs), err)
		}
	}
	key := sessions.HashToken(token)
	check := func(when string, wantFound bool, wantForward, wantRecord string) {
		t.Helper()
		e, found, err := rb.Retired(ctx, key)
		if err != nil || found != wantFound || string(e.Forward) != wantForward || string(e.Record.Data) != wantRecord ||
			found && (string(e.Tombstone) != "tombstone" || e.Successor != r.Successor) {
			t.Errorf("Retired %s = %+v, %t, %v; want tombstone %t, forward %q, the successor's record %q",
				when, e, found, err, wantFound, wantForward, wantRecord)
		}
	}
	check("at once", true, "forward", "successor")
	s.advance(1500 * time.Millisecond)
	check("after the forwarding's TTL", true, "", "")
	s.advance(2 * time.Second)
	check("after the tombstone's TTL", false, "", "")

	// RemoveKey removes a record and an entry alike.
	other, err := rb.WriteIfVersion(ctx, sessions.VersionedWrite{ID: sessions.NewID(), Data: []byte("rec"), TTL: time.Hour, Deadline: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.RetireIfVersion(ctx, other, 1, r); err != nil {
		t.Fatal(err)
	}
	live := mustWrite(t, rb, sessions.NewID(), []byte("live"), time.Hour)
	for _, k := range [][32]byte{sessions.HashToken(other), sessions.HashToken(live), sessions.HashToken(sessions.NewID())} {
		if err := rb.RemoveKey(ctx, k); err != nil {
			t.Fatalf("RemoveKey: %v", err)
		}
	}
	if _, found, _ := rb.Retired(ctx, sessions.HashToken(other)); found {
		t.Error("RemoveKey left a retired token's entry")
	}
	if _, found, _ := rb.Read(ctx, live); found {
		t.Error("RemoveKey left a live record")
	}
}

// renewApp is app with a counter changed through Update, so that parallel
// requests lose no change, and the audit trail in a buffer.
func renewApp(s env, logs *syncBuffer, opts ...sessions.Option) (*sessions.Manager[suiteSession], http.Handler) {
	m := s.newManager(s.Backend, append([]sessions.Option{sessions.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)...)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sess, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/login":
			sess.Regenerate()
			sess.SetOwner("ann")
		case "/inc":
			sess.Update(func(v *suiteSession) { v.Count++ })
		}
		w.Write([]byte(strconv.Itoa(sess.Value().Count) + " " + sess.Handle()))
	})
	return m, m.Middleware(mux)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// call sends one request with cookie c and returns the body and the
// cookie the response set, or c when it set none.
func call(t *testing.T, h http.Handler, path string, c *http.Cookie) (string, *http.Cookie) {
	t.Helper()
	rec, nc := send(h, path, c)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
	}
	return rec.Body.String(), nc
}

// testManagerRenewal follows one token through its life under
// WithRenewal: renewed once due, still leading to its successor within the
// grace, and taken for theft after it.
func testManagerRenewal(t *testing.T, s env) {
	renewer(t, s.Backend)
	var logs syncBuffer
	_, h := renewApp(s, &logs, sessions.WithRenewal(2*time.Second, time.Second))
	_, c := call(t, h, "/login", nil)
	body, c := call(t, h, "/inc", c)
	first := c
	if !strings.HasPrefix(body, "1 ") {
		t.Fatalf("after one increment: %q", body)
	}

	// Not due yet: the token stays.
	if _, nc := call(t, h, "/read", c); nc.Value != first.Value {
		t.Fatal("the token changed before its renewal was due")
	}
	s.advance(2100 * time.Millisecond)
	body, successor := call(t, h, "/read", first)
	if successor.Value == first.Value {
		t.Fatalf("a read %v after the token was issued kept it: %q", 2100*time.Millisecond, body)
	}
	if !strings.HasPrefix(body, "1 ") {
		t.Fatalf("after the renewal: %q, want the same session", body)
	}

	// Within the grace, the retired token leads to the same successor, and
	// a change made through it is saved to the session.
	body, c2 := call(t, h, "/inc", first)
	if c2.Value != successor.Value || !strings.HasPrefix(body, "2 ") {
		t.Errorf("the retired token within its grace: %q and token changed %t; want count 2 and the same successor", body, c2.Value != successor.Value)
	}
	if body, _ := call(t, h, "/read", successor); !strings.HasPrefix(body, "2 ") {
		t.Errorf("the successor after a change through the retired token: %q, want 2", body)
	}

	// After the grace, the retired token is taken for theft: the session
	// ends, the successor with it.
	s.advance(1500 * time.Millisecond)
	if body, _ := call(t, h, "/read", first); !strings.HasPrefix(body, "0 ") {
		t.Errorf("the retired token after its grace: %q, want a fresh session", body)
	}
	if body, _ := call(t, h, "/read", successor); !strings.HasPrefix(body, "0 ") {
		t.Errorf("the successor after its predecessor's reuse: %q, want a fresh session: the session must end", body)
	}
	if out := logs.String(); !strings.Contains(out, "event=token_reuse") || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "owner=ann") {
		t.Errorf("no token_reuse warning with the owner:\n%s", out)
	}
	if strings.Contains(logs.String(), first.Value) || strings.Contains(logs.String(), successor.Value) {
		t.Error("a token appears in the log")
	}
}

// testManagerRenewalParallel sends many requests at once with a retired
// token within its grace, and many with a token due for renewal: each
// group must end on one successor, and lose no increment.
func testManagerRenewalParallel(t *testing.T, s env) {
	renewer(t, s.Backend)
	var logs syncBuffer
	_, h := renewApp(s, &logs, sessions.WithRenewal(3*time.Second, 2*time.Second))
	_, c := call(t, h, "/login", nil)
	s.advance(3100 * time.Millisecond)

	const n = 25
	parallel := func(c *http.Cookie) map[string]bool {
		t.Helper()
		var wg sync.WaitGroup
		var mu sync.Mutex
		tokens := map[string]bool{}
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := httptest.NewRequest(http.MethodPost, "https://example.com/inc", nil)
				req.AddCookie(c)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				mu.Lock()
				defer mu.Unlock()
				if rec.Code != http.StatusOK {
					t.Errorf("status %d: %s", rec.Code, rec.Body)
					return
				}
				for _, nc := range rec.Result().Cookies() {
					tokens[nc.Value] = true
				}
			}()
		}
		wg.Wait()
		return tokens
	}
	// Due for renewal, all at once.
	got := parallel(c)
	if len(got) != 1 {
		t.Fatalf("%d requests due for renewal at once were given %d successors, want 1: the session forked", n, len(got))
	}
	var successor *http.Cookie
	for v := range got {
		successor = &http.Cookie{Name: c.Name, Value: v}
	}
	// The retired token within its grace, all at once.
	again := parallel(c)
	if len(again) != 1 || !again[successor.Value] {
		t.Errorf("requests with the retired token were given %d tokens, want only the successor", len(again))
	}
	if body, _ := call(t, h, "/read", successor); !strings.HasPrefix(body, strconv.Itoa(2*n)+" ") {
		t.Errorf("after %d increments: %q", 2*n, body)
	}
}

// testManagerRenewalRegenerate checks that Regenerate keeps no grace, and
// that revoking the current handle ends the retired tokens with it.
func testManagerRenewalRegenerate(t *testing.T, s env) {
	renewer(t, s.Backend)
	var logs syncBuffer
	m, h := renewApp(s, &logs, sessions.WithRenewal(2*time.Second, time.Second))
	_, c := call(t, h, "/login", nil)
	_, c = call(t, h, "/inc", c)
	_, after := call(t, h, "/login", c)
	if body, _ := call(t, h, "/read", c); !strings.HasPrefix(body, "0 ") {
		t.Errorf("the token from before a Regenerate: %q, want a fresh session at once", body)
	}
	s.advance(2100 * time.Millisecond)
	_, successor := call(t, h, "/read", after)
	if successor.Value == after.Value {
		t.Fatal("no renewal")
	}
	// The request that renews shows the handle it loaded; the next one,
	// with the successor, the current one.
	body, _ := call(t, h, "/read", successor)
	handle := strings.Fields(body)[1]
	if err := m.Revoke(context.Background(), "ann", handle); err != nil {
		t.Fatal(err)
	}
	if body, _ := call(t, h, "/read", after); !strings.HasPrefix(body, "0 ") {
		t.Errorf("a retired token within its grace after Revoke of the current handle: %q, want a fresh session", body)
	}
}

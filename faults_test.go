package sessions_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

var errInjected = errors.New("injected backend failure")

// faultMode is what a faultyBackend does to every call.
type faultMode int32

const (
	healthy   faultMode = iota
	failing             // every call returns errInjected
	hanging             // every call blocks until its context ends
	corrupt             // reads return bytes that are not a record
	truncated           // reads return the record's first byte only
)

// faultyBackend wraps the memory backend and misbehaves on demand, in the
// operations named in ops.
type faultyBackend struct {
	*memory.Backend
	mode atomic.Int32
	ops  atomic.Value // string: the operations that misbehave, "read write remove touch"
}

func (b *faultyBackend) fault(ctx context.Context, op string) error {
	if ops, _ := b.ops.Load().(string); !strings.Contains(ops, op) {
		return nil
	}
	switch faultMode(b.mode.Load()) {
	case failing:
		return errInjected
	case hanging:
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (b *faultyBackend) ReadRecord(ctx context.Context, token string) (sessions.Record, bool, error) {
	if err := b.fault(ctx, "read"); err != nil {
		return sessions.Record{}, false, err
	}
	rec, found, err := b.Backend.ReadRecord(ctx, token)
	if ops, _ := b.ops.Load().(string); !found || !strings.Contains(ops, "read") {
		return rec, found, err
	}
	switch faultMode(b.mode.Load()) {
	case corrupt:
		rec.Data = bytes.Repeat([]byte{0xff}, len(rec.Data))
	case truncated:
		rec.Data = rec.Data[:1]
	}
	return rec, found, err
}

func (b *faultyBackend) WriteIfVersion(ctx context.Context, w sessions.VersionedWrite) (string, error) {
	if err := b.fault(ctx, "write"); err != nil {
		return "", err
	}
	return b.Backend.WriteIfVersion(ctx, w)
}

func (b *faultyBackend) Remove(ctx context.Context, token string) error {
	if err := b.fault(ctx, "remove"); err != nil {
		return err
	}
	return b.Backend.Remove(ctx, token)
}

func (b *faultyBackend) Touch(ctx context.Context, token string, ttl time.Duration) error {
	if err := b.fault(ctx, "touch"); err != nil {
		return err
	}
	return b.Backend.Touch(ctx, token, ttl)
}

// TestBackendFaults injects failures, hangs past the request deadline and
// corrupt records: each reaches the error handler as a 5xx, the next healthy
// request works, and no goroutine is left behind.
func TestBackendFaults(t *testing.T) {
	tests := []struct {
		name    string
		mode    faultMode
		ops     string
		path    string
		wantErr error
	}{
		{"read fails", failing, "read", "/read", errInjected},
		{"write fails", failing, "write", "/visit", errInjected},
		{"logout's remove fails", failing, "remove", "/logout", errInjected},
		{"idle-timeout touch fails", failing, "touch", "/read", errInjected},
		{"read hangs past the deadline", hanging, "read", "/read", context.DeadlineExceeded},
		{"write hangs past the deadline", hanging, "write", "/visit", context.DeadlineExceeded},
		{"touch hangs past the deadline", hanging, "touch", "/read", context.DeadlineExceeded},
		{"read returns bytes that are not a record", corrupt, "read", "/read", sessions.ErrCorrupt},
		{"read returns a truncated record", truncated, "read", "/read", sessions.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			store := memory.New(memory.WithSweepInterval(0))
			b := &faultyBackend{Backend: store}
			var handled []error
			// The manager's clock starts at the backend's, and moves past
			// the idle timeout's hundredth (36 s) before the faulty
			// request, so that a read touches the record.
			clock := &fakeClock{t: time.Now()}
			m := newManager[profile](clock, b, sessions.WithAutoload(), sessions.WithIdleTimeout(time.Hour),
				sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
					handled = append(handled, err)
					http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
				}))
			h := routes(m, standardActs)
			br := &browser{t: t, h: h}
			br.do("GET", "/visit")
			good := br.cookie

			clock.Advance(40 * time.Second)
			b.ops.Store(tt.ops)
			b.mode.Store(int32(tt.mode))
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			req := httptest.NewRequest(http.MethodGet, "https://example.com"+tt.path, nil).WithContext(ctx)
			req.AddCookie(&http.Cookie{Name: good.Name, Value: good.Value})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != http.StatusServiceUnavailable || len(handled) != 1 || !errors.Is(handled[0], tt.wantErr) {
				t.Fatalf("status %d, error handler saw %v; want 503 and %v", rec.Code, handled, tt.wantErr)
			}

			// The fault lost nothing: the session is still there, with the
			// one visit made before it.
			b.mode.Store(int32(healthy))
			br.cookie = good
			res := br.do("GET", "/visit")
			if got, want := body(res), "visits=2 roles=[] prefs=map[] new=false"; res.StatusCode != http.StatusOK || !strings.HasSuffix(got, want) {
				t.Errorf("the next healthy request: status %d %q, want 200 and %q", res.StatusCode, got, want)
			}

			store.Close()
			for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > baseline; {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines, %d before the test", runtime.NumGoroutine(), baseline)
				}
				runtime.Gosched()
				time.Sleep(time.Millisecond)
			}
		})
	}
}

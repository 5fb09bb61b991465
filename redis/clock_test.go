package redis

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/seam"
)

// appServer is a manager and its backend, standing for one application
// server, whose clocks both run skew ahead of the real time.
type appServer struct {
	b *Backend
	m *sessions.Manager[struct{ N int }]
	h http.Handler
}

func newAppServer(client goredis.UniversalClient, prefix string, skew time.Duration, opts ...sessions.Option) appServer {
	clock := func() time.Time { return time.Now().Add(skew) }
	b := New(client, WithPrefix(prefix))
	b.now = clock
	m := sessions.New[struct{ N int }](b, opts...)
	seam.SetNow(m, clock)
	return appServer{b: b, m: m, h: ownerHandler(m)}
}

// ownerHandler serves /login, which gives the session a new token and
// the owner "ann", /peek, which only reads the session, and /logout;
// every other path counts a request in the session. It reports whether the session
// is new.
func ownerHandler(m *sessions.Manager[struct{ N int }]) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/login":
			s.Regenerate()
			s.SetOwner("ann")
		case "/peek":
			fmt.Fprintf(w, "new=%t", s.IsNew())
			return
		case "/logout":
			s.Destroy()
			return
		}
		s.Update(func(v *struct{ N int }) { v.N++ })
		fmt.Fprintf(w, "new=%t", s.IsNew())
	}))
}

// login logs ann in on a and returns the session's cookie.
func (a appServer) login(t *testing.T) *http.Cookie {
	t.Helper()
	rec, c := send(a.h, "/login", nil)
	if rec.Code != http.StatusOK || c == nil {
		t.Fatalf("login: status %d %q", rec.Code, rec.Body)
	}
	return c
}

// isNew reports whether a request with cookie c gets a fresh session.
func (a appServer) isNew(t *testing.T, c *http.Cookie) bool {
	t.Helper()
	rec, _ := send(a.h, "/peek", c)
	if rec.Code != http.StatusOK {
		t.Fatalf("request: status %d %q", rec.Code, rec.Body)
	}
	return rec.Body.String() == "new=true"
}

// Two application servers whose clocks are an hour apart share one Redis:
// neither may hide the other's sessions from a listing, nor prune them
// from the index, for then a revocation misses them. The index must keep
// time by the Redis server's clock, not by either application's.
func TestIndexKeepsServerTime(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) goredis.UniversalClient
	}{
		{"single", func(t *testing.T) goredis.UniversalClient { return singleClient(t) }},
		{"cluster", func(t *testing.T) goredis.UniversalClient { return clusterClient(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, prefix := tc.client(t), newPrefix()
			// Shorter than the skew: by the fast clock, a session of the
			// true clock is past its lifetime's end.
			lifetime := sessions.WithLifetime(30 * time.Minute)
			onTime := newAppServer(client, prefix, 0, lifetime)
			fast := newAppServer(client, prefix, time.Hour, lifetime)

			first := onTime.login(t)
			// The fast server's login must not prune the first session's
			// entry, and its listing must not hide it.
			second := fast.login(t)
			listed, err := fast.b.Owned(ctx, "ann")
			if err != nil {
				t.Fatal(err)
			}
			if len(listed) != 2 {
				t.Errorf("the fast server's backend lists %d of ann's sessions, want 2", len(listed))
			}

			n, err := onTime.m.RevokeAll(ctx, "ann")
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Errorf("RevokeAll ended %d sessions, want 2", n)
			}
			for i, c := range []*http.Cookie{first, second} {
				if !onTime.isNew(t, c) {
					t.Errorf("session %d still loads after RevokeAll", i+1)
				}
			}
		})
	}
}

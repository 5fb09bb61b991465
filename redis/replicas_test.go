package redis

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/internal/testserver"
)

// replicated starts a primary of the test's own and a replica of it.
func replicated(t *testing.T) (primary, replica *testserver.Redis) {
	t.Helper()
	primary = privateRedis(t)
	replica, err := testserver.StartRedisReplica(primary)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(replica.Close)
	return primary, replica
}

// Every removal waits for the replica under WithWaitReplicas: while it
// runs, removals succeed; while it is frozen, they fail with
// ErrNotReplicated, and are done on the primary all the same. A Ring of
// one shard must wait as a plain client does.
func TestWaitReplicas(t *testing.T) {
	primary, replica := replicated(t)
	client := goredis.NewClient(&goredis.Options{Addr: primary.Addr})
	defer client.Close()
	ring := goredis.NewRing(&goredis.RingOptions{Addrs: map[string]string{"only": primary.Addr}})
	defer ring.Close()
	subjects := []*waitSubject{newWaitSubject("client", client), newWaitSubject("ring", ring)}
	for _, s := range subjects {
		t.Run("replica running/"+s.name, func(t *testing.T) { s.run(t, nil) })
		// RevokeAll stops at its first error: leave it one session to end.
		if _, err := s.m.RevokeAll(context.Background(), "ann"); err != nil {
			t.Fatal(err)
		}
	}
	replica.Pause()
	t.Cleanup(replica.Resume)
	for _, s := range subjects {
		t.Run("replica frozen/"+s.name, func(t *testing.T) { s.run(t, ErrNotReplicated) })
	}
}

// waitSubject is a backend under WithWaitReplicas(1, 300ms), and a
// manager over it.
type waitSubject struct {
	name    string
	b       *Backend
	m       *sessions.Manager[struct{ N int }]
	h       http.Handler
	handled error // what the manager's error handler saw last
}

func newWaitSubject(name string, client goredis.UniversalClient) *waitSubject {
	s := &waitSubject{name: name, b: New(client, WithPrefix(newPrefix()), WithWaitReplicas(1, 300*time.Millisecond))}
	s.m = sessions.New[struct{ N int }](s.b, sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		s.handled = err
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	s.h = ownerHandler(s.m)
	return s
}

// run runs every kind of removal, each of which must fail with wantErr
// (succeed if it is nil) and remove its session.
func (s *waitSubject) run(t *testing.T, wantErr error) {
	ctx := context.Background()
	owned := func(t *testing.T) string {
		t.Helper()
		id := sessions.NewID()
		if _, err := s.b.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte("x"), TTL: time.Hour,
			Owner: "ann", Deadline: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	removals := []struct {
		name string
		// remove removes the session whose token it returns
		remove func(t *testing.T) (string, error)
	}{
		{"Remove", func(t *testing.T) (string, error) { id := owned(t); return id, s.b.Remove(ctx, id) }},
		{"RemoveIfVersion", func(t *testing.T) (string, error) { id := owned(t); return id, s.b.RemoveIfVersion(ctx, id, 1) }},
		{"RemoveOwned", func(t *testing.T) (string, error) {
			id := owned(t)
			removed, err := s.b.RemoveOwned(ctx, "ann", sessions.HashToken(id))
			if !removed {
				t.Error("RemoveOwned removed nothing")
			}
			return id, err
		}},
		{"RevokeAll", func(t *testing.T) (string, error) {
			_, c := send(s.h, "/login", nil)
			_, err := s.m.RevokeAll(ctx, "ann")
			return c.Value, err
		}},
		{"regenerate", func(t *testing.T) (string, error) {
			// The old token is retired through RemoveIfVersion.
			_, c := send(s.h, "/", nil)
			s.handled = nil
			send(s.h, "/login", c)
			return c.Value, s.handled
		}},
		{"logout", func(t *testing.T) (string, error) {
			_, c := send(s.h, "/login", nil)
			s.handled = nil
			send(s.h, "/logout", c)
			return c.Value, s.handled
		}},
	}
	for _, r := range removals {
		t.Run(r.name, func(t *testing.T) {
			id, err := r.remove(t)
			if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, wantErr)
			}
			if _, found, err := s.b.Read(ctx, id); err != nil || found {
				t.Errorf("the session is still on the primary: found %t, %v", found, err)
			}
		})
	}
}

// TestClusterWithAReplica runs a Cluster of the test's own, in which only
// the first of three primaries has a replica.
func TestClusterWithAReplica(t *testing.T) {
	ctx := context.Background()
	if clusterErr != nil {
		testserver.Skip(t, clusterErr)
	}
	c, err := testserver.StartRedisCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := c.AddReplica(0); err != nil {
		t.Fatal(err)
	}
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs})
	defer client.Close()

	// WAIT must go to the primary that holds the session, on the
	// removal's connection: a removal must succeed if, and only if, its
	// session was on the first primary.
	t.Run("WAIT", func(t *testing.T) {
		first := goredis.NewClient(&goredis.Options{Addr: c.Addrs[0]})
		defer first.Close()
		b := New(client, WithPrefix(newPrefix()), WithWaitReplicas(1, 100*time.Millisecond))
		seen := map[bool]int{} // by whether the session was on the first primary
		for i := 0; seen[true] < 3 || seen[false] < 3; i++ {
			if i == 100 {
				t.Fatalf("sessions on the first primary and elsewhere: %v", seen)
			}
			id := sessions.NewID()
			if _, err := b.Write(ctx, id, []byte("x"), time.Hour); err != nil {
				t.Fatal(err)
			}
			onFirst := first.Exists(ctx, b.key(id)).Val() == 1
			seen[onFirst]++
			err := b.Remove(ctx, id)
			if onFirst && err != nil || !onFirst && !errors.Is(err, ErrNotReplicated) {
				t.Errorf("removing a session that is on the first primary: %t: err = %v", onFirst, err)
			}
			if _, found, err := b.Read(ctx, id); err != nil || found {
				t.Errorf("the session is still there: found %t, %v", found, err)
			}
		}
	})

	// An owner's index may be on any primary: one with an allkeys-*
	// policy is enough to refuse.
	t.Run("eviction policy", func(t *testing.T) {
		last := goredis.NewClient(&goredis.Options{Addr: c.Addrs[2]})
		defer last.Close()
		if err := last.ConfigSet(ctx, "maxmemory-policy", "allkeys-lfu").Err(); err != nil {
			t.Fatal(err)
		}
		b := New(client, WithPrefix(newPrefix()))
		b.logger = slog.New(&records{})
		_, err := b.Owned(ctx, "ann")
		if !errors.Is(err, ErrEvictionPolicy) || !strings.Contains(err.Error(), c.Addrs[2]) {
			t.Errorf("Owned: err = %v, want ErrEvictionPolicy naming %s", err, c.Addrs[2])
		}
	})
}

// wrapped is a client of a type the backend does not know.
type wrapped struct{ goredis.UniversalClient }

// WAIT needs the connection that sent the removal, which only the
// clients the backend knows can give it: with another, New panics rather
// than let removals go unchecked.
func TestWaitReplicasNeedsAKnownClient(t *testing.T) {
	client := wrapped{singleClient(t)}
	New(client) // without the option, any client will do
	defer func() {
		if recover() == nil {
			t.Error("New with WithWaitReplicas and an unknown client type did not panic")
		}
	}()
	New(client, WithWaitReplicas(1, time.Second))
}

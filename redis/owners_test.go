package redis

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
)

// pauseWrite holds the next EVALSHA of writeScript or writeOwnedScript
// until release is closed, once reached is closed.
type pauseWrite struct {
	reached, release chan struct{}
	once             sync.Once
}

func (p *pauseWrite) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (p *pauseWrite) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func (p *pauseWrite) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "evalsha" && isWrite(args[1]) {
			p.once.Do(func() {
				close(p.reached)
				<-p.release
			})
		}
		return next(ctx, cmd)
	}
}

// isWrite reports whether the script with hash sha writes a session.
func isWrite(sha any) bool { return sha == writeScript.Hash() || sha == writeOwnedScript.Hash() }

// A listing that runs while a login is between indexing the session and
// writing it finds no session under the entry and prunes it; the login's
// write must still leave the session listed, or RevokeAll would never
// reach it. (On one server, there is no between: one script does both.)
func TestListingDuringLoginKeepsTheSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(t *testing.T, hook goredis.Hook) goredis.UniversalClient
	}{
		{"single", hookedSingle},
		{"cluster", hookedCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pauseWrite{reached: make(chan struct{}), release: make(chan struct{})}
			prefix := newPrefix()
			listingDuringLogin(t, New(tc.client(t, p), WithPrefix(prefix)), New(tc.client(t, nil), WithPrefix(prefix)), p)
		})
	}
}

// hookedSingle returns a client of the shared server, with hook unless
// it is nil.
func hookedSingle(t *testing.T, hook goredis.Hook) goredis.UniversalClient {
	c := goredis.NewClient(&goredis.Options{Addr: singleClient(t).Options().Addr})
	t.Cleanup(func() { c.Close() })
	if hook != nil {
		c.AddHook(hook)
	}
	return c
}

// hookedCluster returns a client of the shared Cluster, with hook unless
// it is nil.
func hookedCluster(t *testing.T, hook goredis.Hook) goredis.UniversalClient {
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: clusterClient(t).Options().Addrs})
	t.Cleanup(func() { c.Close() })
	if hook != nil {
		c.AddHook(hook)
	}
	return c
}

// listingDuringLogin lists ann's sessions through lb while wb's login is
// about to write its session, held by p.
func listingDuringLogin(t *testing.T, wb, lb *Backend, p *pauseWrite) {
	ctx := context.Background()
	id := sessions.NewID()
	done := make(chan error, 1)
	go func() {
		_, err := wb.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte("x"), TTL: time.Hour,
			Owner: "ann", Deadline: time.Now().Add(time.Hour)})
		done <- err
	}()
	<-p.reached // about to write: in two steps, indexed already
	during, err := lb.Owned(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	close(p.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after, err := lb.Owned(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if len(during) != 0 || len(after) != 1 || after[0].Key != sessions.HashToken(id) {
		t.Errorf("listed %d sessions during the login and %d after it; want 0, then the new one", len(during), len(after))
	}
}

// An index entry whose session is gone, or never came (a write that
// failed after its entry was made), or went to another owner, is pruned
// by the next listing; a live one stays.
func TestListingPrunesWhatIsGone(t *testing.T) {
	ctx := context.Background()
	client := singleClient(t)
	b := New(client, WithPrefix(newPrefix()))
	write := func(id, owner, previous string) {
		t.Helper()
		if _, err := b.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte("x"), TTL: time.Hour,
			Owner: owner, PreviousOwner: previous, Deadline: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	live, removed, moved, never := sessions.NewID(), sessions.NewID(), sessions.NewID(), sessions.NewID()
	write(live, "ann", "")
	write(removed, "ann", "")
	write(moved, "ann", "")
	if err := b.Remove(ctx, removed); err != nil {
		t.Fatal(err)
	}
	// Moved to bob by a write whose clean-up of ann's index did not run:
	// the record names bob, ann's index still has it.
	if _, err := b.write(ctx, b.key(moved), []byte("x"), time.Hour, "1", "1", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := b.index(ctx, sessions.HashToken(never), sessions.VersionedWrite{Owner: "ann", TTL: time.Hour}, true); err != nil {
		t.Fatal(err)
	}
	members := func() []string {
		t.Helper()
		m, err := client.ZRange(ctx, b.ownerKey("ann"), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if n := len(members()); n != 4 {
		t.Fatalf("ann's index has %d entries before listing; want 4", n)
	}
	got, err := b.Owned(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != sessions.HashToken(live) {
		t.Errorf("listed %d sessions; want the live one", len(got))
	}
	if diff := cmp.Diff([]string{member(sessions.HashToken(live))}, members()); diff != "" {
		t.Errorf("ann's index after listing (-want +got):\n%s", diff)
	}
}

// commandNames records the name of every command, pipelined ones
// included.
type commandNames struct {
	mu    sync.Mutex
	names []string
}

func (c *commandNames) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *commandNames) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.mu.Lock()
		c.names = append(c.names, cmd.Name())
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *commandNames) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.mu.Lock()
		for _, cmd := range cmds {
			c.names = append(c.names, cmd.Name())
		}
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// Listing reads through scripts only: go-redis sends read-only commands
// to replicas when a client is set up to read from them (ReadOnly,
// RouteByLatency, RouteRandomly), and a replica could still list a
// session that was just revoked.
func TestListingReadsOnThePrimary(t *testing.T) {
	ctx := context.Background()
	client := goredis.NewClient(&goredis.Options{Addr: singleClient(t).Options().Addr})
	defer client.Close()
	b := New(client, WithPrefix(newPrefix()))
	for range 3 {
		if _, err := b.WriteIfVersion(ctx, sessions.VersionedWrite{ID: sessions.NewID(), Data: []byte("x"),
			TTL: time.Hour, Owner: "ann", Deadline: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil { // the pipeline must fall back to sending the script
		t.Fatal(err)
	}
	names := &commandNames{}
	client.AddHook(names)
	got, err := b.Owned(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("listed %d sessions; want 3", len(got))
	}
	for _, name := range names.names {
		switch name {
		case "evalsha", "eval":
		case "info": // the eviction policy check, which goes to every primary
		case "hello", "client": // a new connection's handshake
		default:
			t.Fatalf("listing sent %s, which a client may send to a replica; sent %q", name, names.names)
		}
	}
}

// A key under the prefix that this backend did not write (another type,
// or a hash without a record) is ErrCorrupt, for reads and writes: taking
// it for a missing session would overwrite it.
func TestForeignKeysAreCorrupt(t *testing.T) {
	ctx := context.Background()
	client := singleClient(t)
	b := New(client, WithPrefix(newPrefix()))
	for _, tc := range []struct {
		name  string
		plant func(key string) error
	}{
		{"string", func(key string) error { return client.Set(ctx, key, "theirs", time.Minute).Err() }},
		{"list", func(key string) error { return client.RPush(ctx, key, "theirs").Err() }},
		{"hash of other fields", func(key string) error { return client.HSet(ctx, key, "name", "theirs").Err() }},
		{"hash with a version and no record", func(key string) error { return client.HSet(ctx, key, "v", "3").Err() }},
		{"hash with a record and a version that is no number", func(key string) error {
			return client.HSet(ctx, key, "d", "theirs", "v", "three").Err()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := sessions.NewID()
			if err := tc.plant(b.key(id)); err != nil {
				t.Fatal(err)
			}
			before := client.Dump(ctx, b.key(id)).Val()
			if _, _, err := b.ReadRecord(ctx, id); !errors.Is(err, sessions.ErrCorrupt) {
				t.Errorf("read: err = %v, want ErrCorrupt", err)
			}
			_, err := b.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte("x"), TTL: time.Minute})
			if !errors.Is(err, sessions.ErrCorrupt) {
				t.Errorf("conditional write: err = %v, want ErrCorrupt", err)
			}
			_, err = b.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte("x"), TTL: time.Minute, Owner: "ann"})
			if !errors.Is(err, sessions.ErrCorrupt) {
				t.Errorf("conditional write that gives an owner: err = %v, want ErrCorrupt", err)
			}
			if _, err := b.Write(ctx, id, []byte("x"), time.Minute); !errors.Is(err, sessions.ErrCorrupt) {
				t.Errorf("write: err = %v, want ErrCorrupt", err)
			}
			if after := client.Dump(ctx, b.key(id)).Val(); after != before || before == "" {
				t.Errorf("the key changed: DUMP %q, then %q", before, after)
			}
		})
	}
}

// beforeListing runs its hooks once each: beforePipe before a listing
// reads the sessions (its pipeline of scripts), beforePrune before it
// prunes.
type beforeListing struct {
	beforePipe, beforePrune func()
}

func (h *beforeListing) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *beforeListing) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		// A new connection's handshake is a pipeline too; the listing's
		// reads are scripts.
		if f := h.beforePipe; f != nil && (cmds[0].Name() == "evalsha" || cmds[0].Name() == "eval") {
			h.beforePipe = nil
			f()
		}
		return next(ctx, cmds)
	}
}

func (h *beforeListing) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "evalsha" && args[1] == pruneScript.Hash() {
			if f := h.beforePrune; f != nil {
				h.beforePrune = nil
				f()
			}
		}
		return next(ctx, cmd)
	}
}

// TestListingKeepsWhatChangedMeanwhile runs index changes between a
// listing's reads and its pruning; an entry the listing found stale, but
// whose session is live again by the time it prunes, must stay.
func TestListingKeepsWhatChangedMeanwhile(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// run sets up the session and the listing's hooks; b writes.
		run func(t *testing.T, b *Backend, id string, h *beforeListing)
	}{
		{"a double-submitted login: the loser's pending entry after the winner's write", func(t *testing.T, b *Backend, id string, h *beforeListing) {
			w := sessions.VersionedWrite{ID: id, Data: []byte("x"), TTL: time.Hour, Owner: "ann", Deadline: time.Now().Add(time.Hour)}
			sum := sessions.HashToken(id)
			if err := b.index(ctx, sum, w, true); err != nil { // the winner's first step
				t.Fatal(err)
			}
			h.beforePrune = func() {
				if _, err := b.write(ctx, b.hashKey(sum), w.Data, w.TTL, "0", "1", "ann"); err != nil {
					t.Error(err)
				}
				b.index(ctx, sum, w, false)
				if _, err := b.WriteIfVersion(ctx, w); !errors.Is(err, sessions.ErrConflict) { // the loser
					t.Errorf("the losing login: %v, want ErrConflict", err)
				}
			}
		}},
		{"the owner goes to bob and back during the listing", func(t *testing.T, b *Backend, id string, h *beforeListing) {
			deadline := time.Now().Add(time.Hour)
			write := func(version uint64, owner, previous string) {
				if _, err := b.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte("x"), TTL: time.Hour,
					Version: version, Owner: owner, PreviousOwner: previous, Deadline: deadline}); err != nil {
					t.Error(err)
				}
			}
			write(0, "ann", "")
			h.beforePipe = func() { write(1, "bob", "ann") }
			h.beforePrune = func() { write(2, "ann", "bob") }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := newPrefix()
			listing := goredis.NewClient(&goredis.Options{Addr: singleClient(t).Options().Addr})
			defer listing.Close()
			h := &beforeListing{}
			listing.AddHook(h)
			b := New(singleClient(t), WithPrefix(prefix))
			id := sessions.NewID()
			tt.run(t, b, id, h)
			if _, err := New(listing, WithPrefix(prefix)).Owned(ctx, "ann"); err != nil {
				t.Fatal(err)
			}
			if h.beforePrune != nil {
				t.Fatal("the listing did not prune: the test set up nothing stale")
			}
			got, err := b.Owned(ctx, "ann")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Key != sessions.HashToken(id) {
				t.Errorf("ann's live session listed %d times, want once", len(got))
			}
		})
	}
}

// faultyIndex pauses the first write of a session (closing reached, then
// waiting for release), and fails every indexing of a session by owner
// that follows it, as a connection lost between the two would.
type faultyIndex struct {
	reached, release chan struct{}
	once             sync.Once
	written          atomic.Bool
}

func (f *faultyIndex) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (f *faultyIndex) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func (f *faultyIndex) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if cmd.Name() != "evalsha" && cmd.Name() != "eval" {
			return next(ctx, cmd)
		}
		switch script := cmd.Args()[1]; {
		case isWrite(script):
			f.once.Do(func() {
				close(f.reached)
				<-f.release
			})
			err := next(ctx, cmd)
			f.written.Store(true)
			return err
		case script == indexScript.Hash() && f.written.Load():
			err := errors.New("injected: connection lost")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

// When the write of a session that gains an owner succeeds and the
// indexing that follows fails, after a listing pruned the entry made
// before the write, the session must not live on unlisted, where
// RevokeAll never finds it: either the save succeeds and the session is
// listed (on one server, one script writes and indexes), or it fails and
// the session is gone.
func TestIndexFailureAfterWrite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		client func(t *testing.T, hook goredis.Hook) goredis.UniversalClient
	}{
		{"single", hookedSingle},
		{"cluster", hookedCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultyIndex{reached: make(chan struct{}), release: make(chan struct{})}
			prefix := newPrefix()
			faulty := New(tc.client(t, f), WithPrefix(prefix))
			healthy := New(tc.client(t, nil), WithPrefix(prefix))

			id := sessions.NewID()
			done := make(chan error, 1)
			go func() {
				_, err := faulty.WriteIfVersion(ctx, sessions.VersionedWrite{ID: id, Data: []byte("x"), TTL: time.Hour,
					Owner: "ann", Deadline: time.Now().Add(time.Hour)})
				done <- err
			}()
			<-f.reached
			if _, err := healthy.Owned(ctx, "ann"); err != nil { // prunes the entry of the session not written yet
				t.Fatal(err)
			}
			close(f.release)
			saveErr := <-done
			_, found, err := healthy.Read(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			listed, err := healthy.Owned(ctx, "ann")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case saveErr == nil && (!found || len(listed) != 1):
				t.Errorf("the save succeeded; the session found %t, listed %d times; want found and listed once", found, len(listed))
			case saveErr != nil && found:
				t.Errorf("the save failed (%v), and the session lives on, listed %d times; want it gone", saveErr, len(listed))
			}
			t.Logf("save: %v", saveErr)
		})
	}
}

package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
)

// infoInt returns the integer field of an INFO section.
func infoInt(t *testing.T, client *goredis.Client, section, field string) int64 {
	t.Helper()
	info, err := client.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s: %s: %v", section, field, err)
			}
			return n
		}
	}
	t.Fatalf("INFO %s has no %s", section, field)
	return 0
}

// fillPastMaxmemory sets the server's maxmemory to 2 MiB more than it uses
// and writes keys of 4 KiB, each to expire in ten minutes (before the
// sessions) and each read 120 times, until Redis has evicted as many keys
// as fill half of those 2 MiB. Before the first batch and between
// batches it runs between, as traffic on the sessions, which keeps them in
// use.
func fillPastMaxmemory(t *testing.T, client *goredis.Client, between func()) {
	t.Helper()
	ctx := context.Background()
	const room, size = 2 << 20, 4 << 10
	used := infoInt(t, client, "memory", "used_memory")
	if err := client.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used+room, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("x", size)
	for i := 0; infoInt(t, client, "stats", "evicted_keys") < room/size/2; i++ {
		if i == 1000 {
			t.Fatal("Redis evicts nothing: is maxmemory set?")
		}
		between()
		pipe := client.Pipeline()
		for j := range 10 {
			key := fmt.Sprintf("filler:%d:%d", i, j)
			pipe.Set(ctx, key, value, 10*time.Minute)
			for range 120 {
				pipe.StrLen(ctx, key)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A Redis that is full evicts under its maxmemory-policy. Under every
// volatile-* policy, the owner index must outlive its sessions, or
// RevokeAll finds none of them and a stolen session lives on: every
// session the eviction left must be revoked, and its token load a fresh
// session. As in production, the sessions are in use, read more often
// than the other keys, and the index is used by logins only. Under the
// policies that keep what is used most or what lives longest, sessions
// must outlive the eviction for the test to mean anything.
func TestEvictionSparesTheOwnerIndex(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		policy   string
		survives bool // some sessions must outlive the eviction
	}{
		// LRU's clock ticks once a second, so it cannot tell the sessions
		// from the other keys in use, and chance decides which go; the
		// index is a tick older than both, as it is in production.
		{"volatile-lru", false},
		{"volatile-lfu", true},
		{"volatile-ttl", true}, // the other keys expire first
		{"volatile-random", false},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			// With lfu-log-factor 0, LFU counts every access, so that the
			// keys' use, not chance, orders them; with 10 samples, LRU
			// finds the least recently used key sooner.
			srv := privateRedis(t, "--maxmemory-policy", tc.policy, "--lfu-log-factor", "0", "--maxmemory-samples", "10")
			client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
			defer client.Close()
			app := newAppServer(client, newPrefix(), 0, sessions.WithLifetime(time.Hour))
			var cookies []*http.Cookie
			for range 8 {
				cookies = append(cookies, app.login(t))
			}
			index := app.b.ownerKey("ann")
			if ttl := client.PTTL(ctx, index).Val(); ttl != -1 {
				t.Fatalf("the owner index's PTTL is %v; want none, so that no volatile-* policy evicts it", ttl)
			}
			use := func(times int) {
				for range times {
					for _, c := range cookies {
						send(app.h, "/peek", c)
					}
				}
			}
			// Redis's LRU clock ticks once a second: the index must be a
			// tick older than the keys in use, as it is in production, or
			// volatile-lru cannot tell them apart.
			time.Sleep(1100 * time.Millisecond)
			use(150) // more than the other keys, for volatile-lfu
			fillPastMaxmemory(t, client, func() { use(2) })
			live := 0
			for _, c := range cookies {
				if _, found, err := app.b.Read(ctx, c.Value); err != nil {
					t.Fatal(err)
				} else if found {
					live++
				}
			}
			n, err := app.m.RevokeAll(ctx, "ann")
			if err != nil {
				t.Fatalf("RevokeAll: %v", err)
			}
			// Redis may evict more meanwhile, so n can be less than live.
			t.Logf("%d of %d sessions outlived the eviction; RevokeAll ended %d", live, len(cookies), n)
			if tc.survives && live == 0 {
				t.Fatal("no session outlived the eviction: the test shows nothing")
			}
			for i, c := range cookies {
				if !app.isNew(t, c) {
					t.Errorf("session %d still loads after RevokeAll", i+1)
				}
			}
			if n := client.Exists(ctx, index).Val(); n != 0 {
				t.Error("the owner index outlived its last entry")
			}
		})
	}
}

// records keeps the messages logged through it, with their attributes.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	r.msgs = append(r.msgs, msg)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	msgs := r.msgs
	r.msgs = nil
	return msgs
}

// Under an allkeys-* policy, a full Redis may evict an owner index while
// its sessions live, expiry or none: listing and revoking must fail with
// ErrEvictionPolicy rather than report that there was nothing to revoke,
// and say why in one warning. The server has CONFIG renamed away, as
// managed Redis services do, so the policy must come from INFO.
func TestEvictionPolicyRefused(t *testing.T) {
	ctx := context.Background()
	srv := privateRedis(t, "--maxmemory-policy", "allkeys-lru", "--rename-command", "CONFIG", "")
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer client.Close()
	app := newAppServer(client, newPrefix(), 0)
	log := &records{}
	app.b.logger = slog.New(log)
	c := app.login(t) // saving is not refused: the session is there, only unsafe to list
	handle := sessions.HashToken(c.Value)

	calls := []struct {
		name string
		call func() error
	}{
		{"Sessions", func() error { _, err := app.m.Sessions(ctx, "ann"); return err }},
		{"Revoke", func() error { return app.m.Revoke(ctx, "ann", "some handle") }},
		{"RevokeAll", func() error { _, err := app.m.RevokeAll(ctx, "ann"); return err }},
		{"Owned", func() error { _, err := app.b.Owned(ctx, "ann"); return err }},
		{"RemoveOwned", func() error { _, err := app.b.RemoveOwned(ctx, "ann", handle); return err }},
	}
	for _, tc := range calls {
		if err := tc.call(); !errors.Is(err, ErrEvictionPolicy) {
			t.Errorf("%s: err = %v, want ErrEvictionPolicy", tc.name, err)
		}
	}
	if app.isNew(t, c) {
		t.Error("the refused RemoveOwned removed the session")
	}
	msgs := log.take()
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "WARN ") || !strings.Contains(msgs[0], "allkeys-lru") {
		t.Errorf("logged %q; want one warning that names the policy", msgs)
	}
}

// A server that refuses INFO leaves the policy unknown: listing and
// revoking work, and one warning says that the policy went unchecked.
func TestEvictionPolicyUnknown(t *testing.T) {
	ctx := context.Background()
	srv := privateRedis(t, "--rename-command", "INFO", "")
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer client.Close()
	app := newAppServer(client, newPrefix(), 0)
	log := &records{}
	app.b.logger = slog.New(log)
	c := app.login(t)
	for range 2 {
		if _, err := app.m.Sessions(ctx, "ann"); err != nil {
			t.Fatalf("Sessions: %v", err)
		}
	}
	if n, err := app.m.RevokeAll(ctx, "ann"); n != 1 || err != nil {
		t.Fatalf("RevokeAll: %d, %v; want 1, nil", n, err)
	}
	if !app.isNew(t, c) {
		t.Error("the session still loads after RevokeAll")
	}
	if msgs := log.take(); len(msgs) != 1 || !strings.HasPrefix(msgs[0], "WARN ") || !strings.Contains(msgs[0], "cannot check") {
		t.Errorf("logged %q; want one warning that the policy went unchecked", msgs)
	}
}

// countInfo counts the INFO commands a client sends.
type countInfo struct{ n atomic.Int64 }

func (c *countInfo) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (c *countInfo) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if cmd.Name() == "info" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *countInfo) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// The policy is checked once a minute, not on every call: a change shows
// within a minute, and only one INFO goes out meanwhile.
func TestEvictionPolicyCheckedEveryMinute(t *testing.T) {
	ctx := context.Background()
	srv := privateRedis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer client.Close()
	infos := &countInfo{}
	client.AddHook(infos)
	b := New(client, WithPrefix(newPrefix()))
	b.logger = slog.New(&records{})
	var elapsed atomic.Int64
	b.now = func() time.Time { return time.Now().Add(time.Duration(elapsed.Load())) }
	owned := func() error { _, err := b.Owned(ctx, "ann"); return err }
	setPolicy := func(p string) {
		if err := client.ConfigSet(ctx, "maxmemory-policy", p).Err(); err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		policy  string        // set before the step, unless ""
		advance time.Duration // of the clock, before the step
		refused bool
	}{
		{"", 0, false},
		{"allkeys-random", 0, false}, // not seen yet
		{"", 30 * time.Second, false},
		{"", 31 * time.Second, true},
		{"volatile-lfu", 0, true},
		{"", time.Minute, false},
	}
	for i, st := range steps {
		if st.policy != "" {
			setPolicy(st.policy)
		}
		elapsed.Add(int64(st.advance))
		before := infos.n.Load()
		for range 5 {
			if err := owned(); errors.Is(err, ErrEvictionPolicy) != st.refused {
				t.Fatalf("step %d: err = %v, want refused %t", i, err, st.refused)
			}
		}
		if sent := infos.n.Load() - before; sent > 1 {
			t.Errorf("step %d: five listings sent %d INFO commands, want at most one", i, sent)
		}
	}
	if got := infos.n.Load(); got != 3 {
		t.Errorf("sent %d INFO commands over two minutes, want 3", got)
	}
}

package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// policyInterval is how long the backend trusts what it last read of the
// servers' maxmemory-policy: a policy can change at run time (CONFIG SET),
// but reading it on every call would cost a round trip to every node.
const policyInterval = time.Minute

// policyCheck is what the backend last read of the servers'
// maxmemory-policy.
type policyCheck struct {
	lock    chan struct{} // holds a value while a check runs
	checked time.Time     // by the backend's clock; zero: never
	err     error         // what listing and revoking fail with meanwhile
	warned  bool
}

// checkPolicy returns an error that matches ErrEvictionPolicy when a
// server the backend uses has an allkeys-* maxmemory-policy, which can
// evict an owner index while its sessions live, so that RevokeAll would
// find nothing to end. It reads the policy from INFO memory, which
// managed services that rename CONFIG still answer, at most once a
// [policyInterval], and logs one warning the first time it finds a
// policy it refuses or cannot read one. A server that refuses INFO
// (renamed, or denied by an ACL) is not refused: the backend cannot tell,
// and says so in the warning.
func (b *Backend) checkPolicy(ctx context.Context) error {
	p := &b.policy
	select {
	case p.lock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("redis: checking the maxmemory-policy: %w", ctx.Err())
	}
	defer func() { <-p.lock }()
	now := b.now()
	if !p.checked.IsZero() && !now.Before(p.checked) && now.Sub(p.checked) < policyInterval {
		return p.err
	}
	policies, err := b.evictionPolicies(ctx)
	switch {
	case refused(err):
		p.err = nil
		b.warnOnce(ctx, "redis: the server refuses INFO memory, so the backend cannot check that its maxmemory-policy keeps owner indexes; use noeviction or a volatile-* policy, or RevokeAll may miss sessions",
			"err", err)
	case err != nil:
		return fmt.Errorf("redis: reading the maxmemory-policy: %w", err)
	default:
		p.err = nil
		for _, np := range policies {
			if strings.HasPrefix(np.policy, "allkeys-") {
				p.err = fmt.Errorf("%w: %s has maxmemory-policy %s, under which a full Redis can evict an owner index while its sessions live; use noeviction or a volatile-* policy",
					ErrEvictionPolicy, np.node, np.policy)
				b.warnOnce(ctx, "redis: listing and revoking sessions by owner are refused: the maxmemory-policy can evict owner indexes; use noeviction or a volatile-* policy",
					"node", np.node, "maxmemory_policy", np.policy)
				break
			}
		}
	}
	p.checked = now
	return p.err
}

// refused reports whether err is a server's refusal to run INFO: the
// command renamed away, or denied by an ACL.
func refused(err error) bool {
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return false
	}
	return strings.Contains(err.Error(), "unknown command") || goredis.HasErrorPrefix(err, "NOPERM")
}

// warnOnce logs a warning, unless checkPolicy has logged one already.
func (b *Backend) warnOnce(ctx context.Context, msg string, args ...any) {
	if b.policy.warned {
		return
	}
	b.policy.warned = true
	logger := b.logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.WarnContext(ctx, msg, args...)
}

// nodePolicy is one server's maxmemory-policy.
type nodePolicy struct{ node, policy string }

// evictionPolicies reads the maxmemory-policy of every server that holds
// keys: each primary of a Cluster, each shard of a Ring, or the one
// server (for a failover client, the current primary).
func (b *Backend) evictionPolicies(ctx context.Context) ([]nodePolicy, error) {
	var (
		mu  sync.Mutex
		out []nodePolicy
	)
	read := func(ctx context.Context, c goredis.Cmdable, node string) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok {
				mu.Lock()
				out = append(out, nodePolicy{node, v})
				mu.Unlock()
			}
		}
		return nil
	}
	var err error
	switch c := b.client.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return read(ctx, n, n.Options().Addr) })
	case *goredis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, n *goredis.Client) error { return read(ctx, n, n.Options().Addr) })
	default:
		err = read(ctx, b.client, "the server")
	}
	return out, err
}

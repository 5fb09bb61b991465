package testserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Redis is a redis-server process on a loopback port, with persistence
// off.
type Redis struct {
	Addr    string
	port    int
	dir     string
	cluster bool
	conf    string   // a config file to start with, for a Sentinel
	extra   []string // more arguments, such as --replicaof or --sentinel
	cmd     *exec.Cmd
	exited  chan struct{}
}

// StartRedis starts a redis-server on a free loopback port, with args
// added to its command line (such as "--maxmemory-policy", "allkeys-lru").
// Stop it with Close.
func StartRedis(args ...string) (*Redis, error) { return startRedis(false, args...) }

func startRedis(cluster bool, extra ...string) (*Redis, error) {
	if _, err := lookPath("redis-server", "redis-server"); err != nil {
		return nil, err
	}
	port, err := freePort(cluster)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sessions-redis-")
	if err != nil {
		return nil, err
	}
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), port: port, dir: dir, cluster: cluster, extra: extra}
	if err := r.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// Start starts the server again, on the same port, after Stop.
func (r *Redis) Start() error {
	var args []string
	if r.conf != "" {
		args = append(args, r.conf) // redis-server wants the file first
	}
	args = append(args,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log"),
	)
	if r.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
	}
	args = append(args, r.extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the tests
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testserver: starting redis-server: %w", err)
	}
	r.cmd = cmd
	r.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(r.exited)
	}()
	return waitFor("redis-server on "+r.Addr, 10*time.Second, func() error {
		select {
		case <-r.exited:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fatal{fmt.Errorf("redis-server exited: %s", strings.TrimSpace(string(log)))}
		default:
		}
		reply, err := command(r.Addr, "PING")
		if err == nil && reply != "+PONG" {
			err = fmt.Errorf("PING: %q", reply)
		}
		return err
	})
}

// Stop kills the server and waits for it to exit; its data is lost.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// Close stops the server and removes its files.
func (r *Redis) Close() {
	r.Stop()
	os.RemoveAll(r.dir)
}

// StartRedisReplica starts a redis-server that replicates primary, and
// returns once its replication link is up. Stop it with Close.
func StartRedisReplica(primary *Redis) (*Redis, error) {
	host, port, _ := strings.Cut(primary.Addr, ":")
	r, err := startRedis(false, "--replicaof", host, port)
	if err != nil {
		return nil, err
	}
	if err := waitLinkUp(r, primary.Addr); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// waitLinkUp waits until replica reports its link to the primary at addr
// up.
func waitLinkUp(replica *Redis, addr string) error {
	return waitFor("replica in sync with "+addr, 20*time.Second, func() error {
		info, err := command(replica.Addr, "INFO", "replication")
		if err == nil && !strings.Contains(info, "master_link_status:up") {
			err = errors.New("replication link not up")
		}
		return err
	})
}

// RedisCluster is three redis-server processes joined in a Cluster, each
// holding a third of the slots, without replicas unless AddReplica adds
// some.
type RedisCluster struct {
	Addrs []string
	nodes []*Redis
}

// StartRedisCluster starts a three-node Cluster on loopback ports.
func StartRedisCluster() (*RedisCluster, error) {
	if _, err := lookPath("redis-cli", "redis-tools"); err != nil {
		return nil, err
	}
	c := &RedisCluster{}
	for range 3 {
		n, err := startRedis(true)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		c.Close()
		return nil, fmt.Errorf("testserver: redis-cli --cluster create: %v: %s", err, out)
	}
	err := waitFor("cluster state ok", 20*time.Second, func() error {
		for _, addr := range c.Addrs {
			info, err := command(addr, "CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return errors.New("cluster_state not ok on " + addr)
			}
		}
		return nil
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// AddReplica starts a node that joins the Cluster as a replica of the
// primary at Addrs[i], and returns once its replication link is up. Close
// stops it with the others.
func (c *RedisCluster) AddReplica(i int) (*Redis, error) {
	n, err := startRedis(true)
	if err != nil {
		return nil, err
	}
	c.nodes = append(c.nodes, n)
	primary := c.nodes[i]
	host, port, _ := strings.Cut(primary.Addr, ":")
	if reply, err := command(n.Addr, "CLUSTER", "MEET", host, port); err != nil || reply != "+OK" {
		return nil, fmt.Errorf("testserver: CLUSTER MEET: %q, %v", reply, err)
	}
	id, err := command(primary.Addr, "CLUSTER", "MYID")
	if err != nil {
		return nil, err
	}
	// The new node knows the primary only once gossip has told it.
	if err := waitFor("CLUSTER REPLICATE", 20*time.Second, func() error {
		reply, err := command(n.Addr, "CLUSTER", "REPLICATE", id)
		if err == nil && reply != "+OK" {
			err = errors.New(reply)
		}
		return err
	}); err != nil {
		return nil, err
	}
	if err := waitLinkUp(n, primary.Addr); err != nil {
		return nil, err
	}
	return n, nil
}

// Close stops every node and removes their files.
func (c *RedisCluster) Close() {
	for _, n := range c.nodes {
		n.Close()
	}
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing
// answers, as with a server that hangs.
func (r *Redis) Pause() { r.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (r *Redis) Resume() { r.cmd.Process.Signal(syscall.SIGCONT) }

package testserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RedisSentinel is a primary, one replica and one Sentinel that watches
// them under the name MasterName, all on loopback ports.
type RedisSentinel struct {
	MasterName   string
	SentinelAddr string
	Primary      *Redis // the current primary
	Replica      *Redis // after Failover, the old primary, stopped
	sentinel     *Redis
}

// StartRedisSentinel starts a primary, a replica of it, and a Sentinel
// that knows both, and returns once the Sentinel could fail over.
func StartRedisSentinel() (*RedisSentinel, error) {
	s := &RedisSentinel{MasterName: "sessions"}
	primary, err := startRedis(false)
	if err != nil {
		return nil, err
	}
	s.Primary = primary
	host, port, _ := strings.Cut(primary.Addr, ":")
	if s.Replica, err = StartRedisReplica(primary); err != nil {
		s.Close()
		return nil, err
	}

	sentinelPort, err := freePort(false)
	if err != nil {
		s.Close()
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sessions-sentinel-")
	if err != nil {
		s.Close()
		return nil, err
	}
	// A Sentinel rewrites its config file, so it gets one of its own.
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 1\nsentinel down-after-milliseconds %[1]s 5000\nsentinel failover-timeout %[1]s 20000\n", s.MasterName, host, port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		os.RemoveAll(dir)
		s.Close()
		return nil, err
	}
	s.sentinel = &Redis{Addr: "127.0.0.1:" + strconv.Itoa(sentinelPort), port: sentinelPort, dir: dir, conf: conf, extra: []string{"--sentinel"}}
	s.SentinelAddr = s.sentinel.Addr
	if err := s.sentinel.Start(); err != nil {
		s.Close()
		return nil, err
	}
	// A forced failover needs a replica the Sentinel has discovered and
	// has heard from itself.
	if err := waitFor("Sentinel to discover the replica", 30*time.Second, func() error {
		fields, err := command(s.SentinelAddr, "SENTINEL", "REPLICAS", s.MasterName)
		if err == nil && !strings.Contains(fields, "master-link-status\nok") {
			err = errors.New("replica not known yet")
		}
		return err
	}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Failover stops the primary, as a crash would, asks the Sentinel to
// promote the replica at once, and returns once the Sentinel names the
// replica as the primary and it accepts writes. Stopping the old primary
// first keeps it from taking writes that the failover would then discard.
func (s *RedisSentinel) Failover() error {
	s.Primary.Stop()
	// The Sentinel refuses with NOGOODSLAVE while its view of the replica
	// is older than it likes.
	if err := waitFor("SENTINEL FAILOVER", 30*time.Second, func() error {
		reply, err := command(s.SentinelAddr, "SENTINEL", "FAILOVER", s.MasterName)
		switch {
		case err != nil:
			return err
		case strings.HasPrefix(reply, "-NOGOODSLAVE"):
			return errors.New(reply)
		case reply != "+OK":
			return fatal{fmt.Errorf("testserver: SENTINEL FAILOVER: %q", reply)}
		}
		return nil
	}); err != nil {
		return err
	}
	promoted := s.Replica
	err := waitFor("Sentinel to promote "+promoted.Addr, 30*time.Second, func() error {
		addr, err := command(s.SentinelAddr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
		if err != nil {
			return err
		}
		if addr != strings.Replace(promoted.Addr, ":", "\n", 1) {
			return fmt.Errorf("the Sentinel names %q", addr)
		}
		info, err := command(promoted.Addr, "INFO", "replication")
		if err == nil && !strings.Contains(info, "role:master") {
			err = errors.New("not promoted yet")
		}
		return err
	})
	if err != nil {
		return err
	}
	s.Primary, s.Replica = promoted, s.Primary
	return nil
}

// Close stops the Sentinel and both servers and removes their files.
func (s *RedisSentinel) Close() {
	for _, r := range []*Redis{s.sentinel, s.Replica, s.Primary} {
		if r != nil {
			r.Close()
		}
	}
}

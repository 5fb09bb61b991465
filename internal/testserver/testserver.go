// Package testserver starts throwaway database servers on loopback ports
// for the tests of this repository's backends: redis-server (alone, as a
// three-node Cluster, or as a primary and replica behind a Sentinel),
// PostgreSQL, and PgBouncer in front of it. It uses nothing but the
// standard library and the servers' own binaries.
//
// When a binary is missing, [Skip] skips the test with a message that says
// what to install, or fails it when SESSIONS_REQUIRE_SERVERS=1, as CI sets.
package testserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ErrMissing reports a server binary that is not installed.
var ErrMissing = errors.New("server binary not installed")

// Skip ends a test that cannot get its server: a skip, or with
// SESSIONS_REQUIRE_SERVERS=1 a failure.
func Skip(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("SESSIONS_REQUIRE_SERVERS") == "1" {
		tb.Fatalf("%v (SESSIONS_REQUIRE_SERVERS=1 makes this a failure)", err)
	}
	tb.Skip(err)
}

// lookPath finds a binary, or says what to install.
func lookPath(name, pkg string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found; install it with: apt-get install -y %s", ErrMissing, name, pkg)
	}
	return path, nil
}

// freePort returns a loopback port nobody listens on. With cluster set,
// port+10000 (a Cluster node's bus port) is free too.
func freePort(cluster bool) (int, error) {
	for range 100 {
		port := 20000 + rand.IntN(25000) // below 55535, so that port+10000 is valid
		if !portFree(port) || cluster && !portFree(port+10000) {
			continue
		}
		return port, nil
	}
	return 0, errors.New("testserver: no free loopback port found")
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// command sends one inline command to a Redis server and returns the first
// line of the reply, or a bulk string's contents.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return reply(r, line)
}

// reply reads the rest of a reply whose first line is line: a bulk
// string's contents, an array's elements one per line, or the line itself.
func reply(r *bufio.Reader, line string) (string, error) {
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "$"):
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case strings.HasPrefix(line, "*"):
		n, _ := strconv.Atoi(line[1:])
		elems := make([]string, 0, max(n, 0))
		for range n {
			next, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			elem, err := reply(r, next)
			if err != nil {
				return "", err
			}
			elems = append(elems, elem)
		}
		return strings.Join(elems, "\n"), nil
	}
	return line, nil
}

// fatal marks an error that waiting will not cure.
type fatal struct{ error }

// waitFor polls check until it succeeds, fails fatally, or the time is up.
func waitFor(what string, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if errors.As(err, new(fatal)) || time.Now().After(deadline) {
			return fmt.Errorf("testserver: %s: %w", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dial(port int) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

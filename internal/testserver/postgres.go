package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Postgres is a throwaway PostgreSQL server: a fresh data directory in a
// temporary folder, trust authentication, listening on a loopback port
// only.
type Postgres struct {
	// DSN connects as the superuser "postgres" to the "postgres" database.
	DSN  string
	dir  string
	port int
	as   *user.User // the user the server runs as, when the tests run as root
}

// StartPostgres runs initdb and starts the server. initdb refuses to run as
// root, so as root the server runs as the "postgres" user.
func StartPostgres() (*Postgres, error) {
	for _, bin := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := lookPath(bin, "postgresql"); err != nil {
			return nil, err
		}
	}
	port, err := freePort(false)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sessions-postgres-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, port: port,
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	if os.Geteuid() == 0 {
		if p.as, err = user.Lookup("postgres"); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testserver: running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(p.as.Uid)
		gid, _ := strconv.Atoi(p.as.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := p.run("initdb", "-D", p.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		p.Close()
		return nil, fmt.Errorf("testserver: initdb: %v: %s", err, out)
	}
	if err := p.Start(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

// run runs a PostgreSQL program, as the postgres user when we are root.
func (p *Postgres) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	if p.as != nil {
		uid, _ := strconv.Atoi(p.as.Uid)
		gid, _ := strconv.Atoi(p.as.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+p.dir)
	}
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

// Start starts the server, after StartPostgres made it or Stop stopped it.
// The log goes to a file: pg_ctl's server would otherwise keep the test's
// output pipe open.
func (p *Postgres) Start() error {
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off", p.port, p.dir)
	out, err := p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "server.log"), "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
		return fmt.Errorf("testserver: pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return waitFor("postgres on port "+strconv.Itoa(p.port), 10*time.Second, func() error {
		return dial(p.port)
	})
}

// Stop stops the server (fast shutdown); its data stays.
func (p *Postgres) Stop() error {
	out, err := p.run("pg_ctl", "-D", p.data(), "-m", "fast", "-w", "stop")
	if err != nil {
		return fmt.Errorf("testserver: pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Close stops the server if it runs and removes its files.
func (p *Postgres) Close() {
	if _, err := os.Stat(filepath.Join(p.data(), "postmaster.pid")); err == nil {
		p.Stop()
	}
	os.RemoveAll(p.dir)
}

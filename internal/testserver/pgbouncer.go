package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PgBouncer is a pgbouncer process in front of a [Postgres], in
// transaction pooling mode, listening on a loopback port only.
type PgBouncer struct {
	// DSN connects through pgbouncer as "postgres" to the "postgres"
	// database; append further parameters with "&".
	DSN    string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartPgBouncer starts pgbouncer in front of pg with pool_mode=transaction
// and trust authentication. Stop it with Close.
//
// Its idle server connections are handed out in turn
// (server_round_robin), rather than the most recently used first: the
// consecutive transactions of one client then land on different server
// connections as soon as there are several, which is what a busy
// production pool does and what exposes state left on a server session.
//
// pgbouncer refuses to run as root, so as root it runs as the postgres
// user, as the server does.
func StartPgBouncer(pg *Postgres) (*PgBouncer, error) {
	bin, err := lookPath("pgbouncer", "pgbouncer")
	if err != nil {
		// Debian installs it in /usr/sbin, which a user's PATH may lack.
		const sbin = "/usr/sbin/pgbouncer"
		if _, serr := os.Stat(sbin); serr != nil {
			return nil, err
		}
		bin = sbin
	}
	port, err := freePort(false)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sessions-pgbouncer-")
	if err != nil {
		return nil, err
	}
	b := &PgBouncer{dir: dir,
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	ini := fmt.Sprintf(`[databases]
postgres = host=127.0.0.1 port=%d dbname=postgres user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
server_round_robin = 1
logfile = %s
`, pg.port, port, filepath.Join(dir, "userlist.txt"), filepath.Join(dir, "pgbouncer.log"))
	files := map[string]string{"pgbouncer.ini": ini, "userlist.txt": `"postgres" ""` + "\n"}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the tests
	if pg.as != nil {                                                  // we are root
		uid, _ := strconv.Atoi(pg.as.Uid)
		gid, _ := strconv.Atoi(pg.as.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testserver: starting pgbouncer: %w", err)
	}
	b.cmd = cmd
	b.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(b.exited)
	}()
	err = waitFor("pgbouncer on port "+strconv.Itoa(port), 10*time.Second, func() error {
		select {
		case <-b.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			return fatal{fmt.Errorf("pgbouncer exited: %s", strings.TrimSpace(string(log)))}
		default:
		}
		return dial(port)
	})
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Close kills pgbouncer, waits for it to exit and removes its files.
func (b *PgBouncer) Close() {
	if b.cmd != nil {
		b.cmd.Process.Kill()
		<-b.exited
		b.cmd = nil
	}
	os.RemoveAll(b.dir)
}

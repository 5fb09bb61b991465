// Command example is a small web application that shows sessions at work:
// a visit counter, login and logout.
//
//	go run ./example              # then open http://localhost:8080
//	go run ./example -addr :9000
//	go run ./example -backend memory
//	go run ./example -backend redis -redis-addr 127.0.0.1:6379
//	go run ./example -backend postgres -postgres-dsn 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
//
// The default backend keeps sessions in signed cookies. Its secret comes
// from the SESSION_SECRET environment variable (at least 32 bytes); without
// it a random secret is made at start, and sessions do not survive a
// restart.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
	"github.com/starsessions/sessions/memory"
	"github.com/starsessions/sessions/postgres"
	"github.com/starsessions/sessions/redis"
)

// Visitor is what the application keeps in a session.
type Visitor struct {
	Name   string
	Visits int
	Since  time.Time
	Notes  []string
}

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	insecure := flag.Bool("insecure", false, "send the cookie over plain HTTP to hosts other than localhost (development only)")
	kind := flag.String("backend", "cookie", "where sessions live: cookie, memory, redis or postgres")
	redisAddr := flag.String("redis-addr", "127.0.0.1:6379", "Redis server, for -backend redis")
	postgresDSN := flag.String("postgres-dsn", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL connection string, for -backend postgres")
	flag.Parse()

	backend, closeBackend, err := openBackend(*kind, *redisAddr, *postgresDSN)
	if err != nil {
		log.Fatalf("example: %v", err)
	}
	defer closeBackend()
	app := newApp(backend, sessions.WithCookieSecure(!*insecure))
	host := *addr
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	slog.Info("example: listening", "addr", *addr, "backend", *kind, "open", "http://"+host+"/")
	srv := &http.Server{Addr: *addr, Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		slog.Error("example: serving", "err", err)
	}
}

// openBackend builds the backend the flags ask for, and a function that
// releases what it holds.
func openBackend(kind, redisAddr, postgresDSN string) (sessions.Backend, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch kind {
	case "cookie":
		return cookie.New(secret()), func() {}, nil
	case "memory":
		b := memory.New()
		return b, func() { b.Close() }, nil
	case "redis":
		client := goredis.NewClient(&goredis.Options{Addr: redisAddr})
		if err := client.Ping(ctx).Err(); err != nil {
			client.Close()
			return nil, nil, fmt.Errorf("connecting to Redis at %s: %w", redisAddr, err)
		}
		return redis.New(client), func() { client.Close() }, nil
	case "postgres":
		pool, err := pgxpool.New(ctx, postgresDSN)
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
		}
		b := postgres.New(pool)
		if err := b.CreateTable(ctx); err != nil {
			b.Close()
			pool.Close()
			return nil, nil, err
		}
		return b, func() { b.Close(); pool.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown backend %q: want cookie, memory, redis or postgres", kind)
}

// secret returns the cookie secret from SESSION_SECRET, or a random one.
func secret() []byte {
	if s := os.Getenv("SESSION_SECRET"); s != "" {
		if len(s) < cookie.MinSecretLength {
			log.Fatalf("SESSION_SECRET must be at least %d bytes", cookie.MinSecretLength)
		}
		return []byte(s)
	}
	slog.Warn("example: SESSION_SECRET is not set; using a random secret, so sessions will not survive a restart")
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

type app struct {
	mgr *sessions.Manager[Visitor]
}

// newApp returns the application over backend; opts come after its own
// options, so they can override them.
func newApp(backend sessions.Backend, opts ...sessions.Option) *app {
	opts = append([]sessions.Option{
		sessions.WithLifetime(7 * 24 * time.Hour),
		sessions.WithIdleTimeout(2 * time.Hour),
		sessions.WithErrorHandler(sessionError),
	}, opts...)
	return &app{mgr: sessions.New[Visitor](backend, opts...)}
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("POST /notes", a.addNote)
	return a.mgr.Middleware(mux)
}

// sessionError answers a request whose session could not be saved or
// loaded with a page that says what happened. The session the browser
// holds is untouched: nothing of the failed request was kept.
func sessionError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := http.StatusInternalServerError, "Your session could not be saved. Please try again."
	switch {
	case errors.Is(err, sessions.ErrCookieTooLarge):
		code, msg = http.StatusRequestEntityTooLarge, "Your session has grown too large to keep in a cookie, so this change was not saved. Your session is as it was before."
	case errors.Is(err, sessions.ErrConflict):
		code, msg = http.StatusConflict, "Your session was changed in another tab at the same time, so this change was not saved. Please reload and try again."
	default:
		slog.ErrorContext(r.Context(), "example: session error", "err", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	errorPage.Execute(w, msg)
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Session error</title></head>
<body><h1>Sorry</h1><p id="error">{{.}}</p><p><a href="/">Back to the start page</a></p></body></html>
`))

// session returns the request's session, or answers the request itself
// and returns nil.
func (a *app) session(w http.ResponseWriter, r *http.Request) *sessions.Session[Visitor] {
	s, err := a.mgr.Get(r)
	if err != nil {
		slog.ErrorContext(r.Context(), "example: loading session", "err", err)
		http.Error(w, "Your session could not be loaded. Please try again.", http.StatusInternalServerError)
		return nil
	}
	return s
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	v := s.Data()
	v.Visits++
	if v.Since.IsZero() {
		v.Since = time.Now().UTC().Truncate(time.Second)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, v); err != nil && !errors.Is(err, sessions.ErrNotSaved) {
		slog.ErrorContext(r.Context(), "example: rendering", "err", err)
	}
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || len(name) > 64 {
		http.Error(w, "Please give a name of 1 to 64 characters.", http.StatusBadRequest)
		return
	}
	// A change of privilege gets a new session ID (against session fixation).
	s.Regenerate()
	s.Data().Name = name
	// The cookie outlives the browser only when the user asks for it.
	s.SetPersistent(r.PostFormValue("remember") == "on")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// addNote appends a note to the session: an easy way to see what happens
// when a cookie session grows past what a cookie can hold.
func (a *app) addNote(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if note != "" {
		s.Update(func(v *Visitor) { v.Notes = append(v.Notes, note) })
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	s.Destroy()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>starsessions example</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;line-height:1.5}</style></head>
<body>
<h1>{{if .Name}}Hello, {{.Name}}!{{else}}Hello, visitor!{{end}}</h1>
<p id="visits">You have visited this page <strong>{{.Visits}}</strong> time{{if ne .Visits 1}}s{{end}} in this session (since {{.Since.Format "2006-01-02 15:04:05"}} UTC).</p>
{{if .Name}}
<form method="post" action="/logout"><button type="submit">Log out</button></form>
{{else}}
<form method="post" action="/login">
  <label>Name <input name="name" required maxlength="64" autofocus></label>
  <label><input type="checkbox" name="remember"> Keep me signed in for a week</label>
  <button type="submit">Log in</button>
</form>
{{end}}
<h2>Notes</h2>
{{if .Notes}}<ul id="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>No notes yet.</p>{{end}}
<form method="post" action="/notes">
  <label>Note <textarea name="note" rows="2" cols="40"></textarea></label>
  <button type="submit">Add note</button>
</form>
<p><small>Reload to count visits. Logging in gives the session a new ID; logging out destroys it.
Notes live in the session too: on the cookie backend, enough of them make the session too large for a cookie.</small></p>
</body>
</html>
`))

// Command example is a small web application that shows sessions at work:
// a visit counter, login and logout, on the default cookie backend.
//
//	go run ./example              # then open http://localhost:8080
//	go run ./example -addr :9000
//
// The cookie secret comes from the SESSION_SECRET environment variable (at
// least 32 bytes). Without it a random secret is made at start, and sessions
// do not survive a restart.
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"html/template"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
)

// Visitor is what the application keeps in a session.
type Visitor struct {
	Name   string
	Visits int
	Since  time.Time
}

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	insecure := flag.Bool("insecure", false, "send the cookie over plain HTTP to hosts other than localhost (development only)")
	flag.Parse()

	backend := cookie.New(secret())
	mgr := sessions.New[Visitor](backend,
		sessions.WithLifetime(7*24*time.Hour),
		sessions.WithIdleTimeout(2*time.Hour),
		sessions.WithSecure(!*insecure),
	)
	app := &app{mgr: mgr}
	host := *addr
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	slog.Info("example: listening", "addr", *addr, "open", "http://"+host+"/")
	srv := &http.Server{Addr: *addr, Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
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

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	return a.mgr.Middleware(mux)
}

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
  <button type="submit">Log in</button>
</form>
{{end}}
<p><small>Reload to count visits. Logging in gives the session a new ID; logging out destroys it.</small></p>
</body>
</html>
`))

// Command example is a small web application that shows sessions at work:
// a visit counter, notes, login and logout, and a page that lists the
// signed-in user's sessions on every device, each with a button that
// signs it out. A small JSON API under /api/ serves the same session to
// clients that are not browsers.
//
//	go run ./example              # then open http://localhost:8080
//	go run ./example -addr :9000
//	go run ./example -tokens header   # tokens in X-Session-Token (the visit counter in X-Visits-Token), for curl and apps
//	go run ./example -backend cookie
//	go run ./example -backend redis -redis-addr 127.0.0.1:6379
//	go run ./example -backend postgres -postgres-dsn 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
//
// Only a login stores a session on the server: what a visitor has before
// signing in, the visit counter, lives in a signed cookie of its own, made
// by a second manager on the cookie backend, so that any number of
// anonymous requests (a bot that never logs in included) costs no server
// storage, and no GET changes what the server stores. Notes need a login.
//
// The default backend keeps the signed-in users' sessions in the process's
// memory, bounded to -max-sessions of them. The cookie backend keeps them
// in signed cookies. The secrets come from the SESSION_SECRET environment
// variable (at least 32 bytes): the cookie backend's is SESSION_SECRET
// itself, the visit counter's is derived from it with HKDF for that one
// purpose. Without SESSION_SECRET random secrets are made at start, so
// that visit counters, and cookie sessions, do not survive a restart.
// Cookie sessions cannot be listed or signed out by the server, and the
// sessions page says so.
//
// Every route is behind net/http's CrossOriginProtection, outside the
// session middleware: a browser's cross-origin POST is refused with 403
// before it reaches a session. Every change is a POST.
package main

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
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

// Visitor is what the application keeps in a signed-in user's session, on
// the server (on the cookie backend, in a cookie).
type Visitor struct {
	Name  string
	Notes []string
	// LoginAt and Device say, on the sessions page, when and where the
	// user signed in.
	LoginAt time.Time
	Device  string
}

// Visits is what the application keeps for every visitor, signed in or
// not, in a signed cookie of its own: the server stores nothing for it.
type Visits struct {
	Count int
	Since time.Time
}

// tokenHeader is the header tokens travel in with -tokens header;
// visitsHeader carries the visit counter's.
const (
	tokenHeader  = "X-Session-Token"
	visitsHeader = "X-Visits-Token"
)

// The visit counter's cookie is named visitsHostCookie when it is Secure,
// which the "__Host-" prefix requires, and visitsCookie otherwise.
const (
	visitsHostCookie = "__Host-visits"
	visitsCookie     = "visits"
)

// A signed-in user must not be able to grow their session without bound:
// notes are few and short, and the memory backend holds at most
// -max-sessions sessions.
const (
	maxNotes      = 20
	maxNoteLength = 200
)

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	insecure := flag.Bool("insecure", false, "send the cookie over plain HTTP to hosts other than localhost (development only)")
	kind := flag.String("backend", "memory", "where sessions live: memory, cookie, redis or postgres")
	tokens := flag.String("tokens", "cookie", "how tokens travel: cookie, or header (X-Session-Token, for API clients)")
	maxSessions := flag.Int("max-sessions", 10000, "the most sessions, one per login, the memory backend holds")
	redisAddr := flag.String("redis-addr", "127.0.0.1:6379", "Redis server, for -backend redis")
	postgresDSN := flag.String("postgres-dsn", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL connection string, for -backend postgres")
	flag.Parse()

	sessionSecret, visitsSecret := secrets()
	backend, closeBackend, err := openBackend(*kind, *maxSessions, *redisAddr, *postgresDSN, sessionSecret)
	if err != nil {
		log.Fatalf("example: %v", err)
	}
	defer closeBackend()
	set := settings{insecure: *insecure, visitsSecret: visitsSecret}
	switch *tokens {
	case "cookie":
	case "header":
		set.headerTokens = true
		slog.Info("example: session tokens travel in the " + tokenHeader + " header, the visit counter's in " + visitsHeader + "; browsers will not keep them, use the API under /api/")
	default:
		log.Fatalf("example: unknown -tokens %q: want cookie or header", *tokens)
	}
	app := newApp(backend, set)
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
func openBackend(kind string, maxSessions int, redisAddr, postgresDSN string, cookieSecret []byte) (sessions.Backend, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch kind {
	case "memory":
		b := memory.New(memory.WithMaxSessions(maxSessions))
		return b, func() { b.Close() }, nil
	case "cookie":
		return cookie.New(cookieSecret), func() {}, nil
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
	return nil, nil, fmt.Errorf("unknown backend %q: want memory, cookie, redis or postgres", kind)
}

// secrets returns the cookie backend's secret and the visit counter's.
// From SESSION_SECRET the first is SESSION_SECRET itself, the second
// derived from it with HKDF under a label of its own, so that neither
// cookie can stand for the other whatever their names. Without it both
// are random.
func secrets() (session, visits []byte) {
	if s := os.Getenv("SESSION_SECRET"); s != "" {
		if len(s) < cookie.MinSecretLength {
			log.Fatalf("SESSION_SECRET must be at least %d bytes", cookie.MinSecretLength)
		}
		v, err := visitsSecretFrom([]byte(s))
		if err != nil {
			log.Fatalf("example: deriving the visit counter's secret: %v", err)
		}
		return []byte(s), v
	}
	slog.Warn("example: SESSION_SECRET is not set; using random secrets, so visit counters, and cookie sessions, will not survive a restart")
	session, visits = make([]byte, 32), make([]byte, 32)
	rand.Read(session)
	rand.Read(visits)
	return session, visits
}

// visitsSecretFrom derives the visit counter's secret from secret.
func visitsSecretFrom(secret []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, "starsessions example: visit counter cookie", 32)
}

// settings say how the app's tokens travel.
type settings struct {
	// insecure sends the cookies without Secure, for plain HTTP on hosts
	// other than localhost.
	insecure bool
	// headerTokens makes tokens travel in headers (tokenHeader and
	// visitsHeader) instead of cookies.
	headerTokens bool
	// visitsSecret signs the visit counter's cookie: at least
	// cookie.MinSecretLength bytes, used for nothing else.
	visitsSecret []byte
}

type app struct {
	// mgr holds signed-in users' sessions; visits every visitor's counter,
	// in a signed cookie.
	mgr    *sessions.Manager[Visitor]
	visits *sessions.Manager[Visits]
}

// newApp returns the application over backend. opts come after the
// session manager's own options, so they can override them; they do not
// reach the visit counter's manager.
func newApp(backend sessions.Backend, set settings, opts ...sessions.Option) *app {
	transport := []sessions.Option{sessions.WithTokenHeader(tokenHeader)}
	visitsTransport := []sessions.Option{sessions.WithTokenHeader(visitsHeader)}
	if !set.headerTokens {
		name := visitsHostCookie
		if set.insecure {
			name = visitsCookie
		}
		transport = []sessions.Option{sessions.WithCookieSecure(!set.insecure)}
		visitsTransport = []sessions.Option{sessions.WithCookieSecure(!set.insecure), sessions.WithCookieName(name)}
	}
	// common returns the options both managers share, then extra.
	common := func(extra ...[]sessions.Option) []sessions.Option {
		o := []sessions.Option{
			sessions.WithLifetime(7 * 24 * time.Hour),
			sessions.WithIdleTimeout(2 * time.Hour),
			sessions.WithErrorHandler(sessionError),
		}
		for _, e := range extra {
			o = append(o, e...)
		}
		return o
	}
	// The audit trail records logins, logouts and revocations: not each
	// anonymous visitor's counter, which would let a bot flood the log.
	audit := []sessions.Option{sessions.WithAuditTrail()}
	return &app{
		mgr:    sessions.New[Visitor](backend, common(audit, transport, opts)...),
		visits: sessions.New[Visits](cookie.New(set.visitsSecret), common(visitsTransport)...),
	}
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("POST /notes", a.addNote)
	mux.HandleFunc("GET /sessions", a.listSessions)
	mux.HandleFunc("POST /sessions/revoke", a.revoke)
	mux.HandleFunc("POST /sessions/revoke-others", a.revokeOthers)
	mux.HandleFunc("GET /api/session", a.apiSession)
	mux.HandleFunc("POST /api/login", a.login)
	mux.HandleFunc("POST /api/notes", a.addNote)
	mux.HandleFunc("POST /api/logout", a.logout)
	// CrossOriginProtection goes outside the session middleware, so that a
	// forged cross-origin request is refused before any session is loaded
	// or saved. Requests without Origin or Sec-Fetch-Site, such as curl's,
	// are not a browser's, and pass.
	return http.NewCrossOriginProtection().Handler(a.visits.Middleware(a.mgr.Middleware(mux)))
}

// apiSession answers the session as JSON, counting the visit.
func (a *app) apiSession(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	vs := a.countVisit(r)
	v := s.Value()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Name   string   `json:"name"`
		Visits int      `json:"visits"`
		Notes  []string `json:"notes"`
	}{v.Name, vs.Count, v.Notes})
}

// countVisit counts a visit in the visitor's counter, a signed cookie, and
// returns it. A counter that cannot be loaded (a failing cookie backend
// cannot happen: it reads no store) shows as zero.
func (a *app) countVisit(r *http.Request) Visits {
	vs, err := a.visits.Get(r)
	if err != nil {
		slog.ErrorContext(r.Context(), "example: loading the visit counter", "err", err)
		return Visits{}
	}
	// A counter is a read-modify-write: Update replays it when it can.
	// Cookies are last-write-wins, so of two tabs' visits at the same
	// moment one may be lost: a visit counter can live with that.
	now := time.Now().UTC().Truncate(time.Second)
	vs.Update(func(v *Visits) {
		v.Count++
		if v.Since.IsZero() {
			v.Since = now
		}
	})
	return vs.Value()
}

// done answers a change: a redirect for a form, a 204 for the API.
func done(w http.ResponseWriter, r *http.Request, page string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, page, http.StatusSeeOther)
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
	case errors.Is(err, memory.ErrFull):
		code, msg = http.StatusServiceUnavailable, "The server is holding as many sessions as it can. Please try again later."
	default:
		slog.ErrorContext(r.Context(), "example: session error", "err", err)
	}
	errorPage(w, code, msg)
}

func errorPage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	errorTemplate.Execute(w, msg)
}

var errorTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Session error</title></head>
<body><h1>Sorry</h1><p id="error">{{.}}</p><p><a href="/">Back to the start page</a></p></body></html>
`))

// session returns the request's session, or answers the request itself
// and returns nil.
func (a *app) session(w http.ResponseWriter, r *http.Request) *sessions.Session[Visitor] {
	s, err := a.mgr.Get(r)
	if err != nil {
		slog.ErrorContext(r.Context(), "example: loading session", "err", err)
		errorPage(w, http.StatusInternalServerError, "Your session could not be loaded. Please try again.")
		return nil
	}
	return s
}

// signedIn returns the session and its owner, the signed-in user; for a
// visitor who is not signed in it sends them home and returns nil.
func (a *app) signedIn(w http.ResponseWriter, r *http.Request) (*sessions.Session[Visitor], string) {
	s := a.session(w, r)
	if s == nil {
		return nil, ""
	}
	owner := s.Owner()
	if owner == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil, ""
	}
	return s, owner
}

// homeView is what the start page shows.
type homeView struct {
	Visitor
	Visits
}

// home shows the start page. It changes nothing on the server: the visit
// goes to the visitor's own counter cookie, and a visitor who is not
// signed in has no session to store.
func (a *app) home(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	view := homeView{Visitor: s.Value(), Visits: a.countVisit(r)}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, view); err != nil && !errors.Is(err, sessions.ErrNotSaved) {
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
		errorPage(w, http.StatusBadRequest, "Please give a name of 1 to 64 characters.")
		return
	}
	// A change of privilege gets a new session ID (against session
	// fixation), and the session is tied to its user, so that the user can
	// see and end it from any of their devices. The example has no
	// passwords: the name is the user.
	s.Regenerate()
	s.SetOwner(name)
	device := r.UserAgent()
	if len(device) > 200 {
		device = device[:200]
	}
	now := time.Now().UTC().Truncate(time.Second)
	s.Update(func(v *Visitor) { v.Name, v.LoginAt, v.Device = name, now, device })
	// The cookie outlives the browser only when the user asks for it.
	s.SetPersistent(r.PostFormValue("remember") == "on")
	done(w, r, "/")
}

// addNote appends a note to the signed-in user's session: an easy way to
// see what happens when a cookie session grows past what a cookie can
// hold. A visitor who is not signed in has no session to keep notes in,
// and gets none: storing one for them would let anonymous requests fill
// the store.
func (a *app) addNote(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	if s.Owner() == "" {
		errorPage(w, http.StatusForbidden, "Please log in to keep notes.")
		return
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if len(note) > maxNoteLength {
		errorPage(w, http.StatusBadRequest, fmt.Sprintf("A note can be at most %d characters long.", maxNoteLength))
		return
	}
	full := false
	if note != "" {
		// The bound is checked inside Update, which replays on a session
		// that a concurrent request saved meanwhile: checked outside, a
		// burst of requests could each pass it.
		s.Update(func(v *Visitor) {
			if full = len(v.Notes) >= maxNotes; !full {
				v.Notes = append(v.Notes, note)
			}
		})
	}
	if full {
		errorPage(w, http.StatusBadRequest, fmt.Sprintf("A session holds at most %d notes.", maxNotes))
		return
	}
	done(w, r, "/")
}

// logout destroys the session and the visit counter: nothing of the
// visitor stays on the device.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	s.Destroy()
	if vs, err := a.visits.Get(r); err == nil {
		vs.Destroy()
	}
	done(w, r, "/")
}

// sessionsView is what the sessions page shows.
type sessionsView struct {
	Name        string
	Unsupported bool
	Current     string
	Sessions    []sessions.Info[Visitor]
}

// listSessions shows the signed-in user's sessions on every device.
func (a *app) listSessions(w http.ResponseWriter, r *http.Request) {
	s, owner := a.signedIn(w, r)
	if s == nil {
		return
	}
	view := sessionsView{Name: owner, Current: s.Handle()}
	list, err := a.mgr.Sessions(r.Context(), owner)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		view.Unsupported = true
	case err != nil:
		slog.ErrorContext(r.Context(), "example: listing sessions", "err", err)
		errorPage(w, http.StatusInternalServerError, "Your sessions could not be listed. Please try again.")
		return
	}
	view.Sessions = list
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := sessionsPage.Execute(w, view); err != nil && !errors.Is(err, sessions.ErrNotSaved) {
		slog.ErrorContext(r.Context(), "example: rendering", "err", err)
	}
}

// revoke signs one of the user's sessions out.
func (a *app) revoke(w http.ResponseWriter, r *http.Request) {
	a.ownerAction(w, r, func(ctx context.Context, owner string, s *sessions.Session[Visitor]) error {
		return a.mgr.Revoke(ctx, owner, r.PostFormValue("handle"))
	})
}

// revokeOthers signs out every session of the user but this one.
func (a *app) revokeOthers(w http.ResponseWriter, r *http.Request) {
	a.ownerAction(w, r, func(ctx context.Context, owner string, s *sessions.Session[Visitor]) error {
		_, err := a.mgr.RevokeAll(ctx, owner, s.Handle())
		return err
	})
}

// ownerAction runs act for the signed-in user, then goes back to the
// sessions page.
func (a *app) ownerAction(w http.ResponseWriter, r *http.Request, act func(context.Context, string, *sessions.Session[Visitor]) error) {
	s, owner := a.signedIn(w, r)
	if s == nil {
		return
	}
	if err := act(r.Context(), owner, s); err != nil {
		slog.ErrorContext(r.Context(), "example: signing out a session", "err", err)
		errorPage(w, http.StatusInternalServerError, "The session could not be signed out. Please try again.")
		return
	}
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>starsessions example</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;line-height:1.5}</style></head>
<body>
<h1>{{if .Name}}Hello, {{.Name}}!{{else}}Hello, visitor!{{end}}</h1>
<p id="visits">You have visited this page <strong>{{.Count}}</strong> time{{if ne .Count 1}}s{{end}} in this session (since {{.Since.Format "2006-01-02 15:04:05"}} UTC).</p>
{{if .Name}}
<p><a id="sessions" href="/sessions">Your sessions</a></p>
<form method="post" action="/logout"><button type="submit">Log out</button></form>
{{else}}
<form method="post" action="/login">
  <label>Name <input name="name" required maxlength="64" autofocus></label>
  <label><input type="checkbox" name="remember"> Keep me signed in for a week</label>
  <button type="submit">Log in</button>
</form>
{{end}}
<h2>Notes</h2>
{{if .Name}}
{{if .Notes}}<ul id="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>No notes yet.</p>{{end}}
<form method="post" action="/notes">
  <label>Note <textarea name="note" rows="2" cols="40" maxlength="200"></textarea></label>
  <button type="submit">Add note</button>
</form>
{{else}}
<p id="notes-login">Log in to keep notes.</p>
{{end}}
<p><small>Reload to count visits: the counter lives in a signed cookie of its own, so that a
visitor who is not signed in costs the server nothing. Logging in stores a session, with a new ID,
tied to your name; logging out destroys it, and the counter. Notes live in the session: on the
cookie backend, enough of them make the session too large for a cookie.</small></p>
</body>
</html>
`))

var sessionsPage = template.Must(template.New("sessions").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Your sessions</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;line-height:1.5}
td,th{padding:.3rem .6rem;text-align:left;vertical-align:top}</style></head>
<body>
<h1>Where {{.Name}} is signed in</h1>
{{if .Unsupported}}
<p id="unsupported">This server keeps sessions in signed cookies, in the browser: the server
has no list of them and cannot sign one out. Run the example with
<code>-backend memory</code>, <code>redis</code> or <code>postgres</code> to see this page at work.</p>
{{else}}
<table id="sessions">
<tr><th>Device</th><th>Signed in</th><th>Last seen</th><th></th></tr>
{{range .Sessions}}
<tr class="session" data-handle="{{.Handle}}">
  <td>{{.Value.Device}}{{if eq .Handle $.Current}} <strong class="current">(this device)</strong>{{end}}</td>
  <td>{{.Value.LoginAt.Format "2006-01-02 15:04"}} UTC</td>
  <td>{{.LastSeenAt.UTC.Format "2006-01-02 15:04"}} UTC</td>
  <td>{{if ne .Handle $.Current}}<form method="post" action="/sessions/revoke">
    <input type="hidden" name="handle" value="{{.Handle}}"><button type="submit">Sign out</button></form>{{end}}</td>
</tr>
{{end}}
</table>
<form method="post" action="/sessions/revoke-others"><button id="revoke-others" type="submit">Sign out all other devices</button></form>
{{end}}
<p><a href="/">Back to the start page</a></p>
</body>
</html>
`))

// Command websocket keeps a session across a WebSocket connection, with
// github.com/coder/websocket: the session is loaded when the connection is
// upgraded (the request gives the token, Manager.Open the socket's own
// session), each "click" message changes it, and Session.Save stores the
// change at once, while the socket stays open, long after the response
// header went out with the 101 status.
//
//	go run ./integrations/websocket    # then open http://localhost:8083
//	go run ./integrations/websocket -check-every 5s
//
// A WebSocket upgrade is a GET, which CSRF protection such as
// http.CrossOriginProtection lets through, and browsers send cookies with
// it: the handler must check the Origin header itself (cross-site WebSocket
// hijacking). websocket.Accept does, refusing any Origin whose host is not
// the request's unless AcceptOptions.OriginPatterns allows it.
//
// An open socket outlives the request that opened it: a logout in another
// tab, or "sign out other devices" on another device, removes the session
// from the store, and nothing tells the socket. So the socket asks, with
// Session.Check, every -check-every, and before it acts on a message once
// that interval has passed since it last asked; when the session is gone it
// closes with status 1008 (policy violation). The check needs a server-side
// backend: on the cookie backend the session is the client's cookie, which
// no logout elsewhere can reach.
package main

import (
	"context"
	"errors"
	"flag"
	"html/template"
	"log"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// Session is what the application keeps for each visitor.
type Session struct {
	Visits int
	Clicks int
}

// defaultCheckEvery is how often an open socket asks whether its session
// still stands, unless -check-every says otherwise: a signed-out socket
// lives at most this long, and each check costs a read of the store.
const defaultCheckEvery = 10 * time.Second

// app is the application.
type app struct {
	mgr *sessions.Manager[Session]
	// checkEvery is how often an open socket checks its session; see
	// defaultCheckEvery.
	checkEvery time.Duration
	// now tells the time a socket last checked its session, and whether
	// checkEvery has passed since, before a message; time.Now but in tests.
	now func() time.Time
	log *slog.Logger
}

// newApp returns the application over mgr, whose sockets check their
// session every checkEvery.
func newApp(mgr *sessions.Manager[Session], checkEvery time.Duration) *app {
	return &app{mgr: mgr, checkEvery: checkEvery, now: time.Now, log: slog.Default()}
}

// routes returns the application's handler. CrossOriginProtection refuses
// a cross-origin POST (login, logout) before any session is loaded; it lets
// the upgrade through, a GET, whose Origin websocket.Accept checks.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("POST /logout-others", a.logoutOthers)
	mux.HandleFunc("GET /ws", a.socket)
	return http.NewCrossOriginProtection().Handler(a.mgr.Middleware(mux))
}

// session returns the request's session, or answers the request and
// returns nil.
func (a *app) session(w http.ResponseWriter, r *http.Request) *sessions.Session[Session] {
	s, err := a.mgr.Get(r)
	if err != nil {
		a.log.ErrorContext(r.Context(), "websocket: loading the session", "err", err)
		http.Error(w, "session unavailable", http.StatusInternalServerError)
		return nil
	}
	return s
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	// The page visit stores the session, so that the socket finds one:
	// a new session cannot be given a token once the 101 is out.
	s.Update(func(v *Session) { v.Visits++ })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page.Execute(w, struct {
		Session
		User string
	}{s.Value(), s.Owner()})
}

// login ties the session to the name given: the example has no passwords.
// SetOwner gives the session a new token as it does so (against session
// fixation), so that a socket opened before the login is not the user's.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || len(name) > 64 {
		http.Error(w, "give a name of 1 to 64 characters", http.StatusBadRequest)
		return
	}
	s.SetOwner(name)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout destroys the session: a socket open on it in another tab closes
// at its next check.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	s.Destroy()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logoutOthers ends every session of the signed-in user but this one:
// sockets open on them, on other devices, close at their next check.
func (a *app) logoutOthers(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	owner := s.Owner()
	if owner == "" {
		http.Error(w, "sign in first", http.StatusForbidden)
		return
	}
	if _, err := a.mgr.RevokeAll(r.Context(), owner, s.Handle()); err != nil {
		a.log.ErrorContext(r.Context(), "websocket: signing out other devices", "err", err)
		http.Error(w, "the other devices could not all be signed out; try again", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// socket upgrades the request and serves the socket. The request's session
// only gives the token: after the upgrade the socket works on a session of
// its own from Manager.Open. The request's session belongs to the request,
// and the middleware watches it to warn of changes the response header can
// no longer carry; a socket's changes are not such changes, since Save
// stores them under the token the client has.
func (a *app) socket(w http.ResponseWriter, r *http.Request) {
	s := a.session(w, r)
	if s == nil {
		return
	}
	token := s.Token()
	// Accept refuses a cross-origin upgrade with 403.
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx := r.Context()
	if token == "" {
		conn.Close(websocket.StatusPolicyViolation, "no session: load the page first")
		return
	}
	ss, err := a.mgr.Open(ctx, token)
	if err != nil {
		a.log.ErrorContext(ctx, "websocket: opening the session", "err", err)
		conn.Close(websocket.StatusInternalError, "the session could not be loaded")
		return
	}
	if ss.IsNew() {
		// The session ended between the upgrade's load and this one.
		conn.Close(websocket.StatusPolicyViolation, "signed out")
		return
	}
	a.serve(ctx, conn, ss)
}

// serve answers each message: "click" counts a click in the session, saves
// it at once and answers with the new count; "count" answers with the
// count and changes nothing. A watch closes the socket when the session
// ends.
func (a *app) serve(ctx context.Context, conn *websocket.Conn, s *sessions.Session[Session]) {
	w := &watch{s: s, conn: conn, every: a.checkEvery, now: a.now, log: a.log, last: a.now()}
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		w.run(ctx, stop)
	}()
	// The watch works on the socket and the session: it must be gone
	// before the handler returns and the socket is closed.
	defer func() { close(stop); <-stopped }()
	for {
		_, msg, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if m := string(msg); m != "click" && m != "count" {
			continue
		}
		// A message the watch's interval did not cover is checked first:
		// the ticker may lag, and a read-only message must not answer a
		// signed-out client with the session's data.
		if !w.beforeMessage(ctx) {
			return
		}
		if string(msg) == "click" {
			s.Update(func(v *Session) { v.Clicks++ })
			if err := s.Save(ctx); err != nil {
				// A session revoked after the check is not brought back:
				// its save fails. Check tells that from a store failure,
				// and closes the socket if the session is gone.
				if w.check(ctx) {
					a.log.ErrorContext(ctx, "websocket: saving the session", "err", err)
					conn.Close(websocket.StatusInternalError, "the session could not be saved")
				}
				return
			}
		}
		if err := conn.Write(ctx, websocket.MessageText, []byte(strconv.Itoa(s.Value().Clicks))); err != nil {
			return
		}
	}
}

// A watch checks, for one socket, that its session still stands, and
// closes the socket when it does not.
type watch struct {
	s     *sessions.Session[Session]
	conn  *websocket.Conn
	every time.Duration
	now   func() time.Time
	log   *slog.Logger

	mu   sync.Mutex
	last time.Time // when the session was last seen standing
}

// run checks the session every w.every until stop is closed or a check
// closes the socket.
func (w *watch) run(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if !w.check(ctx) {
				return
			}
		}
	}
}

// beforeMessage checks the session if w.every has passed since it was
// last seen standing, and reports whether the socket may act on a message.
func (w *watch) beforeMessage(ctx context.Context) bool {
	w.mu.Lock()
	due := w.now().Sub(w.last) >= w.every
	w.mu.Unlock()
	return !due || w.check(ctx)
}

// check asks the store whether the session still stands, and reports
// whether it does. When it does not, it closes the socket with 1008; when
// the store cannot say, with 1011: a socket that cannot confirm its session
// must not act for it, and the client's reconnect loads the session anew.
func (w *watch) check(ctx context.Context) bool {
	err := w.s.Check(ctx)
	switch {
	case err == nil:
		w.mu.Lock()
		w.last = w.now()
		w.mu.Unlock()
		return true
	case errors.Is(err, sessions.ErrRevoked):
		w.log.InfoContext(ctx, "websocket: the session ended; closing its socket", "handle", w.s.Handle(), "reason", err)
		w.conn.Close(websocket.StatusPolicyViolation, "signed out")
	case ctx.Err() != nil:
		// The request is over, and the socket with it.
	default:
		w.log.ErrorContext(ctx, "websocket: checking the session", "err", err)
		w.conn.Close(websocket.StatusInternalError, "the session could not be checked")
	}
	return false
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WebSocket sessions</title></head>
<body>
<p>{{if .User}}Signed in as <strong id="user">{{.User}}</strong>.{{else}}Not signed in.{{end}}
Visits: <span id="visits">{{.Visits}}</span>. Clicks saved in the session: <span id="clicks">{{.Clicks}}</span>.</p>
<button id="click" disabled>Click</button>
<p id="socket">connecting</p>
{{if .User}}
<form method="post" action="/logout"><button type="submit">Log out</button></form>
<form method="post" action="/logout-others"><button type="submit">Sign out other devices</button></form>
{{else}}
<form method="post" action="/login"><label>Name <input name="name" required maxlength="64"></label> <button type="submit">Log in</button></form>
{{end}}
<script>
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
const button = document.getElementById("click");
const state = document.getElementById("socket");
ws.onopen = () => { button.disabled = false; state.textContent = "open"; };
ws.onmessage = (e) => { document.getElementById("clicks").textContent = e.data; };
ws.onclose = (e) => { button.disabled = true; state.textContent = "closed (" + e.code + ")" + (e.reason ? ": " + e.reason : ""); };
button.onclick = () => ws.send("click");
</script>
</body></html>
`))

func main() {
	checkEvery := flag.Duration("check-every", defaultCheckEvery, "how often an open socket checks that its session still stands")
	flag.Parse()
	if *checkEvery <= 0 {
		log.Fatalf("websocket: -check-every must be positive, not %v", *checkEvery)
	}
	store := memory.New()
	defer store.Close()
	a := newApp(sessions.New[Session](store), *checkEvery)
	srv := &http.Server{Addr: ":8083", Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Println("listening on http://localhost:8083/")
	log.Fatal(srv.ListenAndServe())
}

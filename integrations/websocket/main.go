// Command websocket keeps a session across a WebSocket connection, with
// github.com/coder/websocket: the session is loaded when the connection is
// upgraded, each message changes it, and Session.Save stores the change at
// once, while the socket stays open, long after the response header went
// out with the 101 status.
//
//	go run ./integrations/websocket    # then open http://localhost:8083
//
// A WebSocket upgrade is a GET, which CSRF protection such as
// http.CrossOriginProtection lets through, and browsers send cookies with
// it: the handler must check the Origin header itself (cross-site WebSocket
// hijacking). websocket.Accept does, refusing any Origin whose host is not
// the request's unless AcceptOptions.OriginPatterns allows it.
package main

import (
	"context"
	"errors"
	"html/template"
	"log"
	"log/slog"
	"net/http"
	"strconv"
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

// routes returns the application over mgr.
func routes(mgr *sessions.Manager[Session]) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		// The page visit stores the session, so that the socket finds one:
		// a new session cannot be given a token once the 101 is out.
		s.Update(func(v *Session) { v.Visits++ })
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, s.Value())
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		// Accept refuses a cross-origin upgrade with 403.
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		serve(r.Context(), conn, s)
	})
	return mgr.Middleware(mux)
}

// serve counts each "click" message in the session, saves it at once, and
// answers with the new count.
func serve(ctx context.Context, conn *websocket.Conn, s *sessions.Session[Session]) {
	for {
		_, msg, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if string(msg) != "click" {
			continue
		}
		s.Update(func(v *Session) { v.Clicks++ })
		if err := s.Save(ctx); err != nil {
			slog.ErrorContext(ctx, "websocket: saving the session", "err", err)
			reason := "the session could not be saved"
			if errors.Is(err, sessions.ErrHeaderWritten) {
				reason = "load the page first"
			}
			conn.Close(websocket.StatusInternalError, reason)
			return
		}
		if err := conn.Write(ctx, websocket.MessageText, []byte(strconv.Itoa(s.Value().Clicks))); err != nil {
			return
		}
	}
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WebSocket sessions</title></head>
<body>
<p>Visits: <span id="visits">{{.Visits}}</span>. Clicks saved in the session: <span id="clicks">{{.Clicks}}</span>.</p>
<button id="click" disabled>Click</button>
<script>
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
const button = document.getElementById("click");
ws.onopen = () => { button.disabled = false; };
ws.onmessage = (e) => { document.getElementById("clicks").textContent = e.data; };
button.onclick = () => ws.send("click");
</script>
</body></html>
`))

func main() {
	store := memory.New()
	defer store.Close()
	mgr := sessions.New[Session](store)
	srv := &http.Server{Addr: ":8083", Handler: routes(mgr), ReadHeaderTimeout: 10 * time.Second}
	log.Println("listening on http://localhost:8083/")
	log.Fatal(srv.ListenAndServe())
}

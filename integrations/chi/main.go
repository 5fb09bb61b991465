// Command chi serves sessions through a chi router: the manager's
// middleware is an ordinary net/http middleware, so r.Use takes it as it
// is.
//
//	go run ./integrations/chi    # then open http://localhost:8081
package main

import (
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// Session is what the application keeps for each visitor.
type Session struct {
	User   string
	Visits int
}

// routes returns the application's router over mgr.
func routes(mgr *sessions.Manager[Session]) http.Handler {
	r := chi.NewRouter()
	r.Use(mgr.Middleware)
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		s.Update(func(v *Session) { v.Visits++ })
		v := s.Value()
		fmt.Fprintf(w, "user %q, visit %d\n", v.User, v.Visits)
	})
	r.Post("/login/{user}", func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		user := chi.URLParam(r, "user")
		s.Regenerate() // a new token on every change of privilege
		s.SetOwner(user)
		s.Update(func(v *Session) { v.User = user })
		fmt.Fprintf(w, "signed in as %q\n", user)
	})
	r.Post("/logout", func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		s.Destroy()
		fmt.Fprintln(w, "signed out")
	})
	return r
}

func main() {
	store := memory.New()
	defer store.Close()
	mgr := sessions.New[Session](store)
	srv := &http.Server{Addr: ":8081", Handler: routes(mgr), ReadHeaderTimeout: 10 * time.Second}
	log.Println("listening on http://localhost:8081/")
	log.Fatal(srv.ListenAndServe())
}

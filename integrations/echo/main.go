// Command echo serves sessions through Echo v4: echo.WrapMiddleware turns
// the manager's net/http middleware into Echo's, and handlers find the
// session with mgr.Get(c.Request()).
//
//	go run ./integrations/echo    # then open http://localhost:8082
//
// Echo's HTTPErrorHandler runs after the whole middleware chain has
// returned, the session middleware included. So when a handler returns an
// error, the session is saved first, as at the end of any handler that
// wrote nothing, with its Set-Cookie in the header, and the error handler's
// response then carries that cookie. A handler that must not keep its
// session changes when it fails should make them only once it knows it
// will succeed, or Destroy the session. If the save itself fails, the
// manager's error handler answers first; Echo's error handler, which runs
// after it, then fails to write its own response (with
// sessions.ErrNotSaved) and logs that.
package main

import (
	"errors"
	"fmt"
	"log"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/memory"
)

// Session is what the application keeps for each visitor.
type Session struct {
	User   string
	Visits int
}

// newServer returns the application's Echo instance over mgr.
func newServer(mgr *sessions.Manager[Session]) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.Use(echo.WrapMiddleware(mgr.Middleware))
	session := func(c echo.Context) (*sessions.Session[Session], error) {
		s, err := mgr.Get(c.Request())
		if err != nil {
			return nil, echo.NewHTTPError(http.StatusInternalServerError, "session unavailable").SetInternal(err)
		}
		return s, nil
	}
	e.GET("/", func(c echo.Context) error {
		s, err := session(c)
		if err != nil {
			return err
		}
		s.Update(func(v *Session) { v.Visits++ })
		v := s.Value()
		return c.String(http.StatusOK, fmt.Sprintf("user %q, visit %d\n", v.User, v.Visits))
	})
	e.POST("/login/:user", func(c echo.Context) error {
		s, err := session(c)
		if err != nil {
			return err
		}
		user := c.Param("user")
		s.Regenerate() // a new token on every change of privilege
		s.SetOwner(user)
		s.Update(func(v *Session) { v.User = user })
		return c.String(http.StatusOK, fmt.Sprintf("signed in as %q\n", user))
	})
	e.POST("/logout", func(c echo.Context) error {
		s, err := session(c)
		if err != nil {
			return err
		}
		s.Destroy()
		return c.String(http.StatusOK, "signed out\n")
	})
	// fail counts the visit, then fails: Echo's error handler answers, and
	// the visit is kept (see the package comment).
	e.GET("/fail", func(c echo.Context) error {
		s, err := session(c)
		if err != nil {
			return err
		}
		s.Update(func(v *Session) { v.Visits++ })
		return echo.NewHTTPError(http.StatusTeapot, "failed").SetInternal(errors.New("on purpose"))
	})
	return e
}

func main() {
	store := memory.New()
	defer store.Close()
	e := newServer(sessions.New[Session](store))
	log.Fatal(e.Start(":8082"))
}

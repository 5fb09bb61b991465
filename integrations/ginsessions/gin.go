// Package ginsessions runs a [sessions.Manager]'s middleware in a Gin
// engine.
//
// Gin's handlers write through their own gin.ResponseWriter, so wrapping
// the engine in the manager's middleware from outside is not enough, and
// saving the session after c.Next() is too late: a handler that has
// written its body has sent the header, and the session cookie can no
// longer join it. Middleware runs the rest of the chain inside the
// manager's middleware, with c.Request carrying the session and c.Writer
// writing through the middleware's response writer, so that the session is
// saved just before the header goes out, as with net/http.
//
//	r := gin.New()
//	r.Use(ginsessions.Middleware(mgr))
//	r.GET("/", func(c *gin.Context) {
//		s, err := mgr.Get(c.Request)
//		...
//	})
package ginsessions

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/starsessions/sessions"
)

// Middleware returns a Gin handler that makes mgr's sessions available to
// the rest of the chain, through mgr.Get(c.Request), and saves them before
// the response header is written.
func Middleware[T any](mgr *sessions.Manager[T]) gin.HandlerFunc {
	return func(c *gin.Context) {
		ginWriter := c.Writer
		reached := false
		mgr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached = true
			c.Request = r
			c.Writer = &responseWriter{ResponseWriter: ginWriter, session: w}
			c.Next()
		})).ServeHTTP(ginWriter, c.Request)
		c.Writer = ginWriter
		if !reached {
			// The middleware answered itself (WithAutoload, whose load
			// failed): the rest of the chain must not run.
			c.Abort()
		}
	}
}

// responseWriter is Gin's writer with every write going through the
// session middleware's writer first, which saves the session before the
// header goes out. Gin's own bookkeeping (Status, Size, Written) stays
// with Gin's writer, which the session middleware's writes reach.
type responseWriter struct {
	gin.ResponseWriter
	session http.ResponseWriter
}

func (w *responseWriter) WriteHeader(code int) { w.session.WriteHeader(code) }

func (w *responseWriter) Write(b []byte) (int, error) { return w.session.Write(b) }

func (w *responseWriter) WriteString(s string) (int, error) { return io.WriteString(w.session, s) }

// WriteHeaderNow writes the status Gin recorded, saving the session first.
func (w *responseWriter) WriteHeaderNow() {
	if !w.Written() {
		w.session.WriteHeader(w.Status())
		w.ResponseWriter.WriteHeaderNow()
	}
}

func (w *responseWriter) Flush() { http.NewResponseController(w.session).Flush() }

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.session).Hijack()
}

// Unwrap returns the session middleware's writer, for
// [http.ResponseController].
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.session }

package ginsessions_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/integrations/ginsessions"
	"github.com/starsessions/sessions/memory"
)

type session struct {
	User   string
	Visits int
}

func init() { gin.SetMode(gin.ReleaseMode) }

// router is an application on Gin: a counter that answers with c.String,
// a login that regenerates, a JSON page, and a logout.
func router(mgr *sessions.Manager[session]) *gin.Engine {
	r := gin.New()
	r.Use(ginsessions.Middleware(mgr))
	get := func(c *gin.Context) *sessions.Session[session] {
		s, err := mgr.Get(c.Request)
		if err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return nil
		}
		return s
	}
	r.GET("/", func(c *gin.Context) {
		if s := get(c); s != nil {
			s.Update(func(v *session) { v.Visits++ })
			v := s.Value()
			c.String(http.StatusOK, "user %q, visit %d\n", v.User, v.Visits)
		}
	})
	r.GET("/json", func(c *gin.Context) {
		if s := get(c); s != nil {
			s.Update(func(v *session) { v.Visits++ })
			c.JSON(http.StatusOK, s.Value())
		}
	})
	r.POST("/login/:user", func(c *gin.Context) {
		if s := get(c); s != nil {
			user := c.Param("user")
			s.Regenerate()
			s.SetOwner(user)
			s.Update(func(v *session) { v.User = user })
			c.String(http.StatusOK, "signed in as %q\n", user)
		}
	})
	r.POST("/logout", func(c *gin.Context) {
		if s := get(c); s != nil {
			s.Destroy()
			c.Status(http.StatusNoContent)
		}
	})
	return r
}

// TestRouter drives Gin's own router through httptest. Every handler writes
// its body itself, and the session must still be saved with it.
func TestRouter(t *testing.T) {
	store := memory.New()
	defer store.Close()
	h := router(sessions.New[session](store))
	var cookie *http.Cookie
	do := func(method, path string, want int) (string, *http.Response) {
		t.Helper()
		req := httptest.NewRequest(method, "https://example.com"+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d", method, path, res.StatusCode, want)
		}
		for _, c := range res.Cookies() {
			if c.MaxAge < 0 {
				cookie = nil
			} else {
				cookie = c
			}
		}
		return rec.Body.String(), res
	}
	if _, res := do("GET", "/", 200); len(res.Cookies()) != 1 {
		t.Fatalf("a handler that wrote its body sent no session cookie")
	}
	if got, _ := do("GET", "/", 200); got != "user \"\", visit 2\n" {
		t.Errorf("counter: %q", got)
	}
	if got, _ := do("GET", "/json", 200); got != `{"User":"","Visits":3}` {
		t.Errorf("JSON: %q", got)
	}
	before := cookie.Value
	do("POST", "/login/ann", 200)
	if cookie.Value == before {
		t.Errorf("login kept the token")
	}
	if got, _ := do("GET", "/", 200); got != "user \"ann\", visit 4\n" {
		t.Errorf("after login: %q", got)
	}
	if _, res := do("POST", "/logout", http.StatusNoContent); !strings.Contains(res.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout did not delete the cookie: %q", res.Header["Set-Cookie"])
	}
	if got, _ := do("GET", "/", 200); got != "user \"\", visit 1\n" {
		t.Errorf("after logout: %q", got)
	}
}

func Example() {
	store := memory.New()
	defer store.Close()
	mgr := sessions.New[session](store)
	r := gin.New()
	r.Use(ginsessions.Middleware(mgr))
	r.GET("/", func(c *gin.Context) {
		s, err := mgr.Get(c.Request)
		if err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		s.Update(func(v *session) { v.Visits++ })
		c.String(http.StatusOK, "visit %d", s.Value().Visits)
	})

	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	cookie := rec.Result().Cookies()[0]
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(cookie)
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	fmt.Println(rec.Body.String())
	// Output: visit 2
}

// failingStore fails every call.
type failingStore struct{}

func (failingStore) Read(context.Context, string) ([]byte, bool, error) {
	return nil, false, errors.New("store down")
}

func (failingStore) Write(context.Context, string, []byte, time.Duration) (string, error) {
	return "", errors.New("store down")
}

func (failingStore) Remove(context.Context, string) error { return errors.New("store down") }

// TestAutoloadFailureStopsTheChain makes the middleware answer itself: a
// session that WithAutoload cannot load goes to the error handler, and no
// handler of the chain runs after it.
func TestAutoloadFailureStopsTheChain(t *testing.T) {
	mgr := sessions.New[session](failingStore{}, sessions.WithAutoload(),
		sessions.WithLogger(slog.New(slog.DiscardHandler)))
	r := gin.New()
	r.Use(ginsessions.Middleware(mgr))
	ran := false
	r.GET("/", func(c *gin.Context) { ran = true; c.String(http.StatusOK, "handler body") })
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: sessions.DefaultHostCookieName, Value: sessions.NewID()})
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if ran || rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "handler body") {
		t.Errorf("handler ran %t, status %d, body %q; want only the error handler's 500", ran, rec.Code, rec.Body)
	}
}

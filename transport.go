package sessions

import (
	"net/http"
	"strings"
	"time"
)

// A transport carries a session's token between the client and the
// server: in a cookie, or in a request and response header. It plays the
// part of Spring Session's HttpSessionIdResolver.
type transport interface {
	// name is the name the token travels under, to which tokens are
	// bound.
	name() string
	// read returns the token the request carries, if any.
	read(r *http.Request) (token string, ok bool)
	// send gives the client a new token. maxAge > 0 asks for a
	// persistent cookie, where that means anything.
	send(h http.Header, token string, maxAge time.Duration)
	// clear tells the client to drop its token.
	clear(h http.Header)
	// vary names the request header that responses touching the session
	// depend on.
	vary() string
	// fits reports whether a token is small enough to travel.
	fits(token string) bool
}

// cookieTransport keeps the token in a cookie: the default.
type cookieTransport struct{ c *config }

func (t cookieTransport) name() string { return t.c.cookieName }

func (t cookieTransport) read(r *http.Request) (string, bool) {
	return cookieValue(r.Header, t.c.cookieName)
}

func (t cookieTransport) send(h http.Header, token string, maxAge time.Duration) {
	t.c.setCookie(h, token, maxAge)
}

func (t cookieTransport) clear(h http.Header) { t.c.setCookie(h, "", -1) }

func (t cookieTransport) vary() string { return "Cookie" }

func (t cookieTransport) fits(token string) bool {
	return len(t.c.cookieName)+1+len(token) <= MaxCookieSize
}

// headerTransport keeps the token in a request header, and sends new ones
// in the same header of the response.
type headerTransport struct{ header string }

func (t headerTransport) name() string { return t.header }

func (t headerTransport) read(r *http.Request) (string, bool) {
	v := r.Header[t.header]
	if len(v) == 0 {
		return "", false
	}
	return strings.TrimSpace(v[0]), true
}

func (t headerTransport) send(h http.Header, token string, _ time.Duration) {
	h[t.header] = []string{token}
	// A shared cache must not hand the token to another client.
	addCacheControl(h, `no-cache="`+t.header+`"`)
}

// clear sends the header with an empty value: the client drops its copy.
func (t headerTransport) clear(h http.Header) { t.send(h, "", 0) }

func (t headerTransport) vary() string { return t.header }

// fits holds header tokens to a cookie's limit too: it is what the
// backends' tokens are made to fit.
func (t headerTransport) fits(token string) bool {
	return len(t.header)+1+len(token) <= MaxCookieSize
}

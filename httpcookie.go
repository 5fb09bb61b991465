package sessions

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cookieValue returns the value of the first cookie named name in the
// request's Cookie headers. Browsers send the cookie with the longest path
// first, so the first one is the one this application set. It does what
// r.Cookie does without building every cookie of the request.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimLeft(part, " \t")
			rest, ok := strings.CutPrefix(part, name)
			if !ok || len(rest) == 0 || rest[0] != '=' {
				continue
			}
			v := strings.TrimRight(rest[1:], " \t")
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// validToken reports whether a cookie value is worth a backend's time: not
// empty, not larger than a cookie can be, and only cookie-octets (RFC 6265),
// which rules out separators, CR/LF, and non-ASCII.
func validToken(v string) bool {
	if len(v) == 0 || len(v) > MaxCookieSize {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !cookieOctets[v[i]] {
			return false
		}
	}
	return true
}

// cookieOctets marks the bytes allowed in a cookie value: every printable
// ASCII character but space, '"', ',', ';' and backslash. A table, because a
// cookie session's whole value passes through here on every request.
var cookieOctets = func() (t [256]bool) {
	for c := 0x21; c <= 0x7E; c++ {
		t[c] = c != '"' && c != ',' && c != ';' && c != '\\'
	}
	return t
}()

// validCookieName reports whether name is an RFC 7230 token.
func validCookieName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7F || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return name != ""
}

// setCookie adds the session cookie to h. maxAge > 0 makes it persistent,
// 0 a browser-session cookie, and < 0 deletes it. The caller has checked
// value with validToken.
func (c *config) setCookie(h http.Header, value string, maxAge time.Duration) {
	var b strings.Builder
	b.Grow(len(c.cookieName) + len(value) + 128 + len(c.path) + len(c.domain))
	b.WriteString(c.cookieName)
	b.WriteByte('=')
	b.WriteString(value)
	b.WriteString("; Path=")
	b.WriteString(c.path)
	if c.domain != "" {
		b.WriteString("; Domain=")
		b.WriteString(c.domain)
	}
	switch {
	case maxAge < 0:
		b.WriteString("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
	case maxAge > 0:
		secs := int64((min(maxAge, maxCookieAge) + time.Second - 1) / time.Second)
		var num [20]byte
		b.WriteString("; Max-Age=")
		b.Write(strconv.AppendInt(num[:0], secs, 10))
	}
	b.WriteString("; HttpOnly")
	if c.secure {
		b.WriteString("; Secure")
	}
	switch c.sameSite {
	case http.SameSiteLaxMode:
		b.WriteString("; SameSite=Lax")
	case http.SameSiteStrictMode:
		b.WriteString("; SameSite=Strict")
	case http.SameSiteNoneMode:
		b.WriteString("; SameSite=None")
	}
	if c.partitioned {
		b.WriteString("; Partitioned")
	}
	// A session saved twice before the header (Session.Save, then the
	// middleware) replaces its own cookie: one Set-Cookie per name.
	cookies := h["Set-Cookie"]
	prefix := c.cookieName + "="
	kept := cookies[:0:0]
	for _, v := range cookies {
		if !strings.HasPrefix(v, prefix) {
			kept = append(kept, v)
		}
	}
	h["Set-Cookie"] = append(kept, b.String())
	// A shared cache must not hand this response, and its cookie, to
	// another client; that goes for the cookie that deletes a session too.
	addCacheControl(h, `no-cache="Set-Cookie"`)
}

// addCacheControl adds a Cache-Control directive, once.
func addCacheControl(h http.Header, directive string) {
	if !slices.Contains(h["Cache-Control"], directive) {
		h["Cache-Control"] = append(h["Cache-Control"], directive)
	}
}

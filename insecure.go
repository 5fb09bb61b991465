package sessions

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// A browser keeps a Secure cookie only from a secure context: HTTPS, or
// http://localhost. A Secure cookie set over plain HTTP on any other host
// is dropped without a word, and every request of that browser then gets
// a fresh session: on a server-side backend, a fresh stored session per
// request. warnInsecure says so, once per manager, at the first request
// that arrives without a token, over plain HTTP, for a host that is not
// loopback, and not from a proxy that says it took the request over HTTPS.

// warnInsecure logs the warning above when r is such a request.
func (m *Manager[T]) warnInsecure(ctx context.Context, r *http.Request) {
	if m.tokenHeaderSet || !m.secure || r.TLS != nil || m.insecureWarned.Load() {
		return
	}
	if loopbackHost(r.Host) || loopbackHost(r.RemoteAddr) || forwardedHTTPS(r.Header) {
		return
	}
	if m.insecureWarned.Swap(true) {
		return
	}
	m.logger().WarnContext(ctx, "sessions: a request came over plain HTTP for a host other than localhost, while the session cookie is Secure: browsers will not keep the cookie, and each request gets a new session. Serve over HTTPS, or have the TLS-terminating proxy set X-Forwarded-Proto; for development on another host, WithCookieSecure(false)",
		"host", r.Host)
}

// loopbackHost reports whether host, a request's Host header, names this
// machine: localhost, a name under .localhost, or a loopback address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") || hasSuffixFold(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// forwardedHTTPS reports whether a proxy said it received the request over
// HTTPS, in X-Forwarded-Proto or Forwarded (RFC 7239).
func forwardedHTTPS(h http.Header) bool {
	if strings.EqualFold(strings.TrimSpace(h.Get("X-Forwarded-Proto")), "https") {
		return true
	}
	for _, v := range h["Forwarded"] {
		for part := range strings.SplitSeq(v, ";") {
			for kv := range strings.SplitSeq(part, ",") {
				k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
				if ok && strings.EqualFold(k, "proto") && strings.EqualFold(strings.Trim(val, `"`), "https") {
					return true
				}
			}
		}
	}
	return false
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

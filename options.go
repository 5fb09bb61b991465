package sessions

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// An Option configures a [Manager].
type Option func(*config)

// config holds what the options set. Its zero value, completed by
// [defaultConfig], is the documented default of every option.
type config struct {
	codec         Codec
	autoload      bool
	lifetime      time.Duration
	idleTimeout   time.Duration
	errorHandler  func(http.ResponseWriter, *http.Request, error)
	lastWriteWins bool
	logger        *slog.Logger

	cookieName  string
	path        string
	domain      string
	secure      bool
	sameSite    http.SameSite
	partitioned bool
}

// DefaultCookieName is the session cookie's name unless [WithCookieName]
// says otherwise.
const DefaultCookieName = "session"

// BrowserSessionLifetime is how long the server keeps a session whose
// cookie dies with the browser ([WithLifetime] of 0, or
// [Session.SetPersistent] false): browsers that restore their tabs keep such
// cookies for days, so the server sets its own limit.
const BrowserSessionLifetime = 24 * time.Hour

// maxCookieAge is the longest Max-Age browsers honour (RFC 6265bis: 400 days).
const maxCookieAge = 400 * 24 * time.Hour

func defaultConfig() config {
	return config{
		codec:      JSON,
		cookieName: DefaultCookieName,
		path:       "/",
		secure:     true,
		sameSite:   http.SameSiteLaxMode,
	}
}

// WithCodec sets the codec between the session value and its stored bytes.
// The default is [JSON].
func WithCodec(c Codec) Option { return func(c2 *config) { c2.codec = c } }

// WithAutoload makes the middleware load the session before the handler
// runs, as starsessions' autoload=True does. Without it, a request whose
// handler never calls [Manager.Get] costs no backend call and no decoding.
// With it, a backend error reaches the error handler and the handler is not
// called.
func WithAutoload() Option { return func(c *config) { c.autoload = true } }

// WithLifetime sets a session's absolute lifetime, counted from its
// creation: after it the server refuses the session, however active it
// was, and persistent cookies carry a Max-Age that ends with it (capped at
// 400 days, the most browsers keep).
//
// The default, 0, gives browser-session cookies, which the browser drops
// when it closes; the server still refuses such a session
// [BrowserSessionLifetime] after its creation.
func WithLifetime(d time.Duration) Option {
	return func(c *config) { c.lifetime = max(d, 0) }
}

// WithIdleTimeout sets a sliding expiry, as starsessions' rolling=True does:
// a session not used for d expires, even within its lifetime. Each request
// that loads the session extends it; see [Toucher] for what that costs. The
// default, 0, sets no idle timeout.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) { c.idleTimeout = max(d, 0) }
}

// WithLastWriteWins turns conflict detection off: a save replaces whatever
// another request saved since this one loaded the session, as in most
// session libraries. Without it, and with a [VersionedBackend], a request
// whose changes made through [Session.Data] meet a concurrent change fails
// with [ErrConflict] instead of overwriting it.
func WithLastWriteWins() Option { return func(c *config) { c.lastWriteWins = true } }

// WithCookieName sets the session cookie's name; the default is
// [DefaultCookieName]. A name starting with "__Host-" makes the browser
// insist on Secure, Path=/ and no Domain, and New panics if the other
// options break those rules; "__Secure-" likewise requires Secure.
func WithCookieName(name string) Option { return func(c *config) { c.cookieName = name } }

// WithErrorHandler sets the function that answers a request whose session
// could not be loaded or saved. It runs before any of the handler's
// response has been written. The default logs the error through the
// manager's logger and replies 409 Conflict for [ErrConflict] and 500
// Internal Server Error for anything else.
func WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(c *config) { c.errorHandler = h }
}

// WithLogger sets the logger for errors (from the default error handler)
// and, at debug level, for cookies that were refused and why. The default is
// [slog.Default]. Tokens are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithPath sets the cookie's Path attribute; the default is "/".
func WithPath(path string) Option { return func(c *config) { c.path = path } }

// WithDomain sets the cookie's Domain attribute, which shares the cookie
// with subdomains. The default sets none: the cookie goes to the host that
// set it only.
func WithDomain(domain string) Option { return func(c *config) { c.domain = domain } }

// WithSecure sets whether the cookie has the Secure attribute, which keeps
// browsers from sending it over plain HTTP. It is on by default; turn it off
// only for development over plain HTTP on a host other than localhost
// (browsers accept Secure cookies from http://localhost).
func WithSecure(secure bool) Option { return func(c *config) { c.secure = secure } }

// WithSameSite sets the cookie's SameSite attribute; the default is
// [http.SameSiteLaxMode], which keeps the cookie off cross-site form posts
// and subrequests while top-level links still carry it.
// [http.SameSiteNoneMode] requires Secure; [http.SameSiteDefaultMode] omits
// the attribute.
func WithSameSite(mode http.SameSite) Option { return func(c *config) { c.sameSite = mode } }

// WithPartitioned sets the cookie's Partitioned attribute (CHIPS), for
// sessions inside third-party iframes. It requires Secure.
func WithPartitioned() Option { return func(c *config) { c.partitioned = true } }

// check panics with a message that names the mistake when the options
// contradict each other: a configuration error is a programming error,
// found best at start-up.
func (c *config) check() {
	if c.codec == nil {
		panic("sessions: WithCodec(nil)")
	}
	if c.cookieName == "" || !validCookieName(c.cookieName) {
		panic("sessions: invalid cookie name " + `"` + c.cookieName + `"`)
	}
	needSecure := c.partitioned || c.sameSite == http.SameSiteNoneMode || strings.HasPrefix(c.cookieName, "__Secure-")
	if strings.HasPrefix(c.cookieName, "__Host-") {
		if c.path != "/" || c.domain != "" {
			panic(`sessions: a "__Host-" cookie needs Path=/ and no Domain`)
		}
		needSecure = true
	}
	if needSecure && !c.secure {
		panic("sessions: WithSecure(false) conflicts with Partitioned, SameSite=None or a __Host-/__Secure- cookie name")
	}
	if strings.ContainsAny(c.path, ";\r\n") || strings.ContainsAny(c.domain, ";\r\n ") {
		panic("sessions: cookie Path or Domain contains a forbidden character")
	}
}

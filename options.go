package sessions

import (
	"context"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// An Option configures a [Manager].
type Option func(*config)

// config holds what the options set. Its zero value, completed by
// [defaultConfig], is the documented default of every option.
type config struct {
	codec                Codec
	autoload             bool
	lifetime             time.Duration
	idleTimeout          time.Duration
	persistent           bool
	errorHandler         func(http.ResponseWriter, *http.Request, error)
	lastWriteWins        bool
	keepTokenOnOwner     bool // WithoutRegenerateOnOwnerChange
	renewEvery           time.Duration
	renewGrace           time.Duration
	reuseDetectionOff    bool
	logger               *slog.Logger
	audit                bool
	auditLogger          *slog.Logger // where the audit trail goes; nil: logger
	validate             any          // a func(context.Context, *T) error, checked by New
	clearSiteData        string
	clearSiteDataCookies bool // the directives delete cookies

	// tokenHeader is the header tokens travel in, or "" for the cookie;
	// cookieOptions names the cookie options given, which contradict it.
	tokenHeader    string
	tokenHeaderSet bool
	cookieOptions  []string

	cookieName    string
	cookieNameSet bool // WithCookieName was given; else check picks the default
	path          string
	domain        string
	secure        bool
	sameSite      http.SameSite
	partitioned   bool
}

// DefaultCookieName is the session cookie's name unless [WithCookieName]
// says otherwise, for a cookie that cannot take [DefaultHostCookieName]: one
// that is not Secure, or has a Domain, or a Path other than "/".
const DefaultCookieName = "session"

// DefaultHostCookieName is the session cookie's name, unless
// [WithCookieName] says otherwise, when the cookie is Secure, has no Domain
// and has Path "/", as it has by default. The "__Host-" prefix makes the
// browser refuse the cookie from anything but a secure page of this very
// host (a subdomain or a plain-HTTP page cannot plant or overwrite it), as
// OWASP ASVS 5.0 asks for cookies not shared across hosts. Browsers take
// Secure cookies from http://localhost too, so development on localhost
// needs no change.
const DefaultHostCookieName = "__Host-session"

// maxDuration bounds lifetimes and idle timeouts: 100 years.
const maxDuration = 100 * 365 * 24 * time.Hour

// DefaultLifetime is a session's absolute lifetime unless [WithLifetime]
// says otherwise.
const DefaultLifetime = 24 * time.Hour

// MaxCookieSize is the most bytes of name plus value that browsers keep
// for one cookie (RFC 6265bis). A session whose cookie would be larger is
// not saved: the request goes to the error handler with [ErrCookieTooLarge].
const MaxCookieSize = 4096

// maxCookieAge is the longest Max-Age browsers honour (RFC 6265bis: 400 days).
const maxCookieAge = 400 * 24 * time.Hour

// maxAttributeLength is the longest Path or Domain attribute browsers
// accept (RFC 6265bis).
const maxAttributeLength = 1024

func defaultConfig() config {
	return config{
		codec:      JSON,
		lifetime:   DefaultLifetime,
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
// was. The default is [DefaultLifetime]. New panics if d is not positive,
// and takes a d over 100 years, such as math.MaxInt64 for "for ever", as
// 100 years: stores keep expiries as times, which must not overflow.
//
// The lifetime does not decide the kind of cookie; see [WithPersistent].
func WithLifetime(d time.Duration) Option { return func(c *config) { c.lifetime = d } }

// WithPersistent sets whether session cookies are persistent: with true
// they carry a Max-Age that ends with the session's lifetime (capped at 400
// days, the most browsers keep), so they outlive the browser; with false,
// the default, as OWASP advises, the browser drops them when it closes,
// while the server still enforces the lifetime. [Session.SetPersistent]
// overrides the choice for one session: a "remember me" box.
func WithPersistent(persistent bool) Option { return func(c *config) { c.persistent = persistent } }

// WithIdleTimeout sets a sliding expiry, as starsessions' rolling=True does:
// a session not used for d expires, even within its lifetime. The default,
// 0, sets no idle timeout. As with [WithLifetime], New panics if d is
// negative, and takes a d over 100 years as 100 years.
//
// Requests that change the session extend it as they save it. A request
// that only reads extends it only once its expiry has fallen a hundredth
// of d (at least a second) behind, so that a session in use costs one
// extension per hundredth of d rather than one per request; each extension
// lasts d plus that hundredth. A session no longer used therefore ends
// between d and d plus a hundredth after its last use. A backend that is a
// [Toucher] and reports its records' expiry ([Record.ExpiresAt]) extends a
// record without rewriting it, in the read's own round trip for the
// decision; others have the record rewritten, on condition of its version
// for a [VersionedBackend]. A backend with neither is read again before
// the rewrite, which is skipped if another request changed or removed the
// record meanwhile; a save that lands between that read and the rewrite
// can still be undone by it (see [Backend]).
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) { c.idleTimeout = d }
}

// WithoutRegenerateOnOwnerChange keeps a session's token when
// [Session.SetOwner] ties it to a user, or to another user, without a
// [Session.Regenerate] in the same request. By default such a session is
// regenerated, so that a token from before the login is worth nothing
// after it. Turn it off only where every login calls Regenerate itself, or
// where the token cannot have been planted.
func WithoutRegenerateOnOwnerChange() Option {
	return func(c *config) { c.keepTokenOnOwner = true }
}

// WithRenewal gives a session in use a new token once every has passed
// since its current token was issued, as OWASP's renewal timeout asks (in
// addition to the lifetime and the idle timeout), so that a copy of the
// token that malware or a log stole soon stops working. The check is made
// when a request loads the session, and the new token goes out with that
// request's response; nothing runs in the background. It needs a backend
// that is a [Renewer] (memory, PostgreSQL): New panics otherwise,
// the cookie backend above all, whose every copy of a cookie stays valid
// until it expires whatever is rotated.
//
// The retired token keeps working for grace after it was retired (0 means
// 15 seconds, or half of every if that is shorter; New panics unless grace
// is shorter than every), so that a second tab, or a request in flight when
// the token changed, keeps its session: every request that presents it
// during the grace gets the same session, its changes are saved to it under
// the usual compare-and-set and merge rules, and its response carries the
// same successor token. Several requests that find the token due at once
// renew it once: the session never forks. After the grace the retired
// token loads nothing, and presenting it is taken for theft (reuse
// detection, as in OAuth's refresh-token rotation): the session it led to
// ends, every token of it, the request gets a fresh session, and a
// "token_reuse" audit entry is logged at warning level with the session's
// handle and owner, whether or not [WithAuditTrail] is on. The owner's
// device and the thief cannot be told apart, so both must sign in again;
// [WithoutReuseDetection] turns that off, leaving a late retired token a
// plain unknown one.
//
// [Session.Handle] changes with the token. [Session.Regenerate] is
// unchanged: the old token dies at once, with no grace. A session from
// [Manager.Open] is not renewed: a socket or a job cannot hand the
// browser a successor.
// What renewal cannot stop is a thief who uses a stolen token before its
// owner's next request renews it: then the thief holds the successor, and
// the owner's next request, with the retired token, ends the session for
// both.
func WithRenewal(every, grace time.Duration) Option {
	return func(c *config) { c.renewEvery, c.renewGrace = every, grace }
}

// WithoutReuseDetection keeps [WithRenewal] from ending a session when one
// of its retired tokens is presented after its grace: the token is then an
// unknown one, and gives a fresh session, as an expired one does.
func WithoutReuseDetection() Option { return func(c *config) { c.reuseDetectionOff = true } }

// WithLastWriteWins turns conflict detection off: a save replaces whatever
// another request saved since this one loaded the session, as in most
// session libraries. Without it, and with a [VersionedBackend], a request's
// changes are replayed ([Session.Update]) or merged field by field
// ([Session.Data]) with the other request's, and a change of a field that
// the other request changed to another value fails with [ErrConflict]
// instead of overwriting it. A session destroyed or revoked meanwhile stays
// so either way.
func WithLastWriteWins() Option { return func(c *config) { c.lastWriteWins = true } }

// WithErrorHandler sets the function that answers a request whose session
// could not be loaded or saved. It runs before any of the handler's
// response has been written. The default logs the error through the
// manager's logger and replies 409 Conflict for [ErrConflict] and 500
// Internal Server Error for anything else.
//
// A load fails in [Manager.Get], which returns the error, or, with
// [WithAutoload], before the handler runs. A handler that goes on after
// Get failed, as if it had a session, is answered by the error handler,
// with Get's error, when it writes a response with a status below 500 or
// returns without writing one: its page, built on no session, is not sent.
// A handler that answers the failure itself with a 5xx status keeps its
// answer. A later Get that succeeds ends the failure.
func WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(c *config) { c.errorHandler = h }
}

// WithLogger sets the logger for errors (from the default error handler),
// warnings and, at debug level, cookies that were refused and why. The
// default is [slog.Default]. Tokens are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithAuditTrail logs the life of every session through the manager's
// logger (see [WithLogger]; [WithAuditLogger] gives it one of its own), at [slog.LevelInfo] under the message
// "sessions: audit", as OWASP asks: created, regenerated, owner set,
// destroyed, revoked, refused by the validator, expired on load,
// undecodable, and not found. Each entry carries the event, the session's
// handle and its owner; never its token. "expired on load" is a record the
// manager found past its lifetime or idle timeout. A session that expired
// on a backend that drops expired records itself (memory, Redis,
// PostgreSQL) is gone before the manager sees it, so it shows as "not
// found", without an owner, as does a revoked session's token, or a
// well-formed token that was never issued: one entry per such request, so
// that a flood of forged tokens shows in the trail as one.
func WithAuditTrail() Option { return func(c *config) { c.audit = true } }

// WithAuditLogger turns the audit trail on (see [WithAuditTrail]) and sends
// it to l instead of the manager's logger, for a security log kept apart
// from the application's: the entries are the same, at the same levels.
// Errors and warnings still go to the manager's logger ([WithLogger]).
func WithAuditLogger(l *slog.Logger) Option {
	return func(c *config) { c.audit, c.auditLogger = true, l }
}

// WithValidate sets a function that checks every stored session after it is
// loaded and before the handler sees it, on every backend, the cookie
// backend included. When fn returns an error that matches [ErrRevoked], the
// session ends: its record is removed at once, also for a session from
// [Manager.Open] that is never saved, the request goes on with a fresh,
// empty session, and the client's cookie is replaced. Any other error fails
// the load: [Manager.Get] returns it, and with [WithAutoload] it reaches the
// error handler. New panics if T is not the manager's type. fn is given the
// loaded value to read: a change it makes is seen by the handler but saved
// only if the request saves the session for another reason.
//
// It is what makes "sign out everywhere" work for cookie sessions, which
// the server cannot list or remove: keep in T something that a password
// change or a "sign out everywhere" click changes in the user's own record,
// such as a counter or a hash of the password hash, and refuse sessions
// whose copy no longer matches.
func WithValidate[T any](fn func(ctx context.Context, v *T) error) Option {
	return func(c *config) { c.validate = fn }
}

// WithCookieName sets the session cookie's name; the default is
// [DefaultHostCookieName] for a Secure cookie with no Domain and Path "/",
// the default options, and [DefaultCookieName] otherwise. A name starting with "__Host-" makes the browser
// insist on Secure, Path=/ and no Domain, and New panics if the other
// options break those rules; "__Secure-" likewise requires Secure. Browsers
// match both prefixes in any case, and so does New.
//
// Tokens are bound to the name: a token issued under one name is a fresh
// session under another, even from a manager on the same backend and
// secret.
func WithCookieName(name string) Option {
	return func(c *config) {
		c.cookieName, c.cookieNameSet = name, true
		c.cookieOption("WithCookieName")
	}
}

// WithCookiePath sets the cookie's Path attribute; the default is "/". New
// panics unless it starts with "/" and is at most 1024 bytes without
// control characters or semicolons.
func WithCookiePath(path string) Option {
	return func(c *config) { c.path = path; c.cookieOption("WithCookiePath") }
}

// WithCookieDomain sets the cookie's Domain attribute, which shares the
// cookie with subdomains. The default, "", sets none: the cookie goes to the
// host that set it only. New panics if it is longer than 1024 bytes or holds
// control characters, spaces or semicolons.
func WithCookieDomain(domain string) Option {
	return func(c *config) { c.domain = domain; c.cookieOption("WithCookieDomain") }
}

// WithCookieSecure sets whether the cookie has the Secure attribute, which
// keeps browsers from sending it over plain HTTP. It is on by default; turn
// it off only for development over plain HTTP on a host other than
// localhost (browsers accept Secure cookies from http://localhost).
func WithCookieSecure(secure bool) Option {
	return func(c *config) { c.secure = secure; c.cookieOption("WithCookieSecure") }
}

// WithCookieSameSite sets the cookie's SameSite attribute; the default is
// [http.SameSiteLaxMode], which keeps the cookie off cross-site form posts
// and subrequests while top-level links still carry it.
// [http.SameSiteNoneMode] requires Secure; [http.SameSiteDefaultMode] omits
// the attribute.
func WithCookieSameSite(mode http.SameSite) Option {
	return func(c *config) { c.sameSite = mode; c.cookieOption("WithCookieSameSite") }
}

// WithCookiePartitioned sets whether the cookie has the Partitioned
// attribute (CHIPS), for sessions inside third-party iframes. It requires
// Secure. The default is false.
func WithCookiePartitioned(partitioned bool) Option {
	return func(c *config) { c.partitioned = partitioned; c.cookieOption("WithCookiePartitioned") }
}

func (c *config) cookieOption(name string) { c.cookieOptions = append(c.cookieOptions, name) }

// WithTokenHeader makes the token travel in the request header name (for
// example "X-Session-Token") instead of a cookie, for API and mobile
// clients that keep no cookies. A new or changed token goes out in the
// same header of the response, and after [Session.Destroy] the response
// carries the header with an empty value, so that the client drops its
// copy; no Set-Cookie is sent at all, and responses vary on the header.
// Tokens are bound to the header's name, as they are to a cookie's. New
// panics if a cookie option is given too.
//
// The trade-off: a token that the client's code can read can be stolen by
// any script that runs in the page (XSS), which an HttpOnly cookie cannot
// (OWASP); in exchange, a browser never attaches a header by itself, so
// requests authenticated by it need no CSRF protection. Keep header tokens
// for clients that are not browsers, or that keep the token out of reach
// of scripts.
func WithTokenHeader(name string) Option {
	return func(c *config) { c.tokenHeader, c.tokenHeaderSet = textproto.CanonicalMIMEHeaderKey(name), true }
}

// clearSiteDataDirectives are the directives [WithClearSiteData] accepts.
var clearSiteDataDirectives = []string{"cache", "cookies", "storage", "executionContexts", "clientHints", "prefetchCache", "prerenderCache", "*"}

// WithClearSiteData makes the response of a request that destroys its
// session send a Clear-Site-Data header with the given directives (from
// "cache", "cookies", "storage", "executionContexts", "clientHints",
// "prefetchCache", "prerenderCache" and "*"), so that the browser also
// forgets what the signed-in user left in its caches and storage. It is
// off by default; New panics on an unknown directive. When the request
// also starts a new session after Destroy (to carry a flash message, say),
// the header is left out if its directives include "cookies" or "*",
// which would delete the new session's cookie too.
func WithClearSiteData(directives ...string) Option {
	return func(c *config) {
		quoted := make([]string, len(directives))
		for i, d := range directives {
			if !slices.Contains(clearSiteDataDirectives, d) {
				panic("sessions: WithClearSiteData: unknown directive " + strconv.Quote(d))
			}
			quoted[i] = `"` + d + `"`
			c.clearSiteDataCookies = c.clearSiteDataCookies || d == "cookies" || d == "*"
		}
		c.clearSiteData = strings.Join(quoted, ", ")
	}
}

// check panics with a message that names the mistake when the options
// contradict each other: a configuration error is a programming error,
// found best at start-up.
func (c *config) check() {
	if c.codec == nil {
		panic("sessions: WithCodec(nil)")
	}
	if c.lifetime <= 0 {
		panic("sessions: WithLifetime needs a positive duration")
	}
	if c.idleTimeout < 0 {
		panic("sessions: WithIdleTimeout needs a positive duration, or 0 for none")
	}
	if c.renewEvery != 0 || c.renewGrace != 0 {
		if c.renewEvery < time.Second || c.renewGrace < 0 {
			panic("sessions: WithRenewal needs a renewal interval of a second or more, and a grace of 0 or more")
		}
		c.renewEvery = min(c.renewEvery, maxDuration)
		if c.renewGrace == 0 {
			c.renewGrace = min(defaultGrace, c.renewEvery/2)
		}
		if c.renewGrace >= c.renewEvery {
			panic("sessions: WithRenewal's grace must be shorter than its renewal interval")
		}
	}
	c.lifetime = min(c.lifetime, maxDuration)
	c.idleTimeout = min(c.idleTimeout, maxDuration)
	if c.tokenHeaderSet {
		if len(c.cookieOptions) > 0 {
			panic("sessions: WithTokenHeader sends no cookie, but " + strings.Join(c.cookieOptions, ", ") + " configures one")
		}
		switch {
		case !validCookieName(c.tokenHeader):
			panic("sessions: invalid token header name " + strconv.Quote(c.tokenHeader))
		case slices.Contains([]string{"Cookie", "Set-Cookie", "Host", "Connection", "Content-Length", "Transfer-Encoding", "Vary", "Cache-Control"}, c.tokenHeader):
			panic("sessions: WithTokenHeader cannot use the " + c.tokenHeader + " header")
		}
	}
	if !c.cookieNameSet && c.secure && c.domain == "" && c.path == "/" {
		c.cookieName = DefaultHostCookieName
	}
	if !validCookieName(c.cookieName) {
		panic("sessions: invalid cookie name " + strconv.Quote(c.cookieName))
	}
	if !strings.HasPrefix(c.path, "/") || !validAttribute(c.path, ";") {
		panic("sessions: the cookie Path must start with \"/\" and be at most 1024 bytes without control characters or \";\"")
	}
	if !validAttribute(c.domain, "; ") {
		panic("sessions: the cookie Domain must be at most 1024 bytes without control characters, spaces or \";\"")
	}
	needSecure := c.partitioned || c.sameSite == http.SameSiteNoneMode || hasPrefixFold(c.cookieName, "__Secure-")
	if hasPrefixFold(c.cookieName, "__Host-") {
		if c.path != "/" || c.domain != "" {
			panic(`sessions: a "__Host-" cookie needs Path=/ and no Domain`)
		}
		needSecure = true
	}
	if needSecure && !c.secure {
		panic("sessions: WithCookieSecure(false) conflicts with Partitioned, SameSite=None or a __Host-/__Secure- cookie name")
	}
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case,
// as browsers match cookie name prefixes (RFC 6265bis).
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// validAttribute reports whether a cookie attribute's value is at most
// maxAttributeLength bytes without control characters or any of forbidden.
func validAttribute(v, forbidden string) bool {
	if len(v) > maxAttributeLength {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7F {
			return false
		}
	}
	return !strings.ContainsAny(v, forbidden)
}
